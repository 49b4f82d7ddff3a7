"""`python -m tgi_server.engine.shard FD`: the model server, serving on the socket with file
descriptor FD (`launch.start_shard` starts it so; `process.main` runs it)."""

from __future__ import annotations

import sys

from tgi_server.engine.shard.process import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
