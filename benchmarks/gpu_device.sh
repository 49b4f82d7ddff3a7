#!/usr/bin/env bash
# The backend throughput benchmark on a lent GPU machine (the `device` tool's nvidia-h200).
#
# That machine's image has python3 3.12 with torch, transformers, tokenizers, aiohttp, uvloop and
# prometheus-client, but not the rest of our runtime dependencies, and it cannot download
# anything. So, in two steps:
#
#   here (this machine, with internet to PyPI), once per session:
#       bash benchmarks/gpu_device.sh prepare
#     downloads Python 3.12 wheels of the missing packages, at the versions our .venv holds,
#     into .whl/ (git-ignored through .git/info/exclude; ~15 MB);
#   there, as one device run with carry [".whl"] and a timeout of ~480 s:
#       bash benchmarks/gpu_device.sh run
#     installs them into /tmp/site and runs benchmarks/backend_throughput.py --device cuda
#     (a ~1.1B Llama built from a config, bfloat16), writing its output to $OUT/gpu.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

MISSING=(pydantic pydantic-core typing-inspection
    annotated-types typing-extensions orjson pynacl cffi pycparser cryptography llguidance)

prepare() {
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    rm -rf .whl && mkdir .whl
    local pins=()
    for name in "${MISSING[@]}"; do
        pins+=("$name==$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$name'))")")
    done
    local platforms=()
    for tag in manylinux_2_34 manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014; do
        platforms+=(--platform "${tag}_x86_64")
    done
    .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp "${platforms[@]}" -d .whl "${pins[@]}"
    ls .whl
    du -sh .whl
}

run() {
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    local out="${OUT:-/tmp}"
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
    python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" \
        | tee -a "$out/gpu.txt"
    timeout 420 python3 benchmarks/backend_throughput.py --device cuda --repeats 5 2>&1 \
        | grep -v '^Loading weights' | tee -a "$out/gpu.txt"
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash benchmarks/gpu_device.sh prepare|run" >&2; exit 2 ;;
esac
