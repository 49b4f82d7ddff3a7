"""Pure helpers shared by our packages that are not wire contracts (those live in `protocol`).

`common.svg` draws self-contained SVG charts. Any package may import `common`; `common` imports
no other package of ours and does no I/O: the caller writes the text it returns.
"""
