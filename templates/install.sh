#!/usr/bin/env bash
# Install tgi-serverless into a virtual environment of its own.
#
#   templates/install.sh [--worker-only] [VENV]
#
# VENV      where the environment goes (default /opt/tgi-serverless/venv); made if missing.
# --worker-only
#           the PyWorker alone, without the embedded backend's libraries (torch, transformers,
#           tokenizers, llguidance) nor the router's Kubernetes client (kubernetes_asyncio):
#           for an image that brings its own backend, as TGI's does.
#
# Environment:
#   SOURCE  the project to install (default: the folder above this script's)
#   PYTHON  the interpreter to make the environment with (default python3; 3.11 or newer)
#   pip's own variables (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, ...)
#   reach pip unchanged: a CPU-only torch, say, with
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
#
# It ends by running `tgi-serverless --version` from the new environment.
set -euo pipefail

worker_only=false
if [[ "${1:-}" == "--worker-only" ]]; then
    worker_only=true
    shift
fi
venv="${1:-/opt/tgi-serverless/venv}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source_dir="${SOURCE:-$(dirname "$here")}"
python="${PYTHON:-python3}"

# What --worker-only leaves out: the embedded backend's libraries, setproctitle (for `up`'s
# fork server of embedded backends), and the router's Kubernetes client (--provider
# kubernetes; imported only then).
backend_only="torch transformers tokenizers llguidance setproctitle kubernetes_asyncio"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "install.sh: $python is older than Python 3.11" >&2; exit 1; }
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --quiet)

if [[ "$worker_only" == true ]]; then
    # The project's own dependencies (pyproject.toml), less the backend's.
    mapfile -t requirements < <(
        "$venv/bin/python" - "$source_dir/pyproject.toml" "$backend_only" <<'PY'
import re
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    dependencies = tomllib.load(handle)["project"]["dependencies"]
left_out = set(sys.argv[2].split())
for requirement in dependencies:
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()
    if name not in left_out:
        print(requirement)
PY
    )
    "${pip[@]}" "${requirements[@]}"
    "${pip[@]}" --no-deps "$source_dir"
else
    "${pip[@]}" "$source_dir"
fi
"$venv/bin/tgi-serverless" --version
