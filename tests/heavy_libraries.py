"""Which heavy libraries (torch, transformers, llguidance) a piece of our code loads.

The code runs in a fresh interpreter (a test's own has torch loaded already), which then lists
the heavy libraries it finds in `sys.modules`.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("torch", "transformers", "llguidance")

PROBE = """
import json, sys
{code}
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def heavy_libraries_loaded_by(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has loaded after running `code` (one line)."""
    probe = PROBE.format(code=code, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded: list[str] = json.loads(done.stdout)
    return loaded
