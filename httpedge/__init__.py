"""What the aiohttp servers of ours share at their edge: every error as one JSON answer.

The router (its gateway included), the PyWorker and the backend each serve an aiohttp app, and
each needs the same adapter from the error contract (`protocol.errors`: pure, no aiohttp) to
aiohttp's requests and responses. It cannot live in `protocol` (no aiohttp there) nor in `common`
(which imports no package of ours and does no I/O), and the router and the PyWorker never
import each other; so it lives here, once. `httpedge` imports only `protocol` of ours (and
aiohttp); the three servers import it; `protocol`, `common` and `client` never do.
"""
