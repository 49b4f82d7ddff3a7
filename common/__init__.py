"""Pure helpers shared by our packages that are not wire contracts (those live in `protocol`).

`common.trace` reads request-trace CSV text (the bench replays traces, the autoscaler simulator
simulates them); `common.svg` draws self-contained SVG charts (the bench's HTML report, the
simulator's plot); `common.flags` builds argparse `type=` checks for numbers in a range (the
bench's and the simulator's flags); `common.settings` is the base of every service's settings,
which read only the environment variables they declare; `common.records` builds a dataclass
from the same-named attributes of another object (a config from its settings). Any package may
import `common`; `common` imports no other package of ours and does no I/O: text and values in,
text and values out, the caller reads and writes files (and hands in the environment).
"""
