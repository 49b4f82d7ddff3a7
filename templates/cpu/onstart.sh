#!/usr/bin/env bash
# The CPU worker's on-start: the worker in the foreground, our embedded backend behind it.
# Environment and flags: templates/worker.sh (MODEL_ID, optional here: the built-in tiny model
# by default; HF_TOKEN, REPORT_ADDR, TGIS_JOIN_TOKEN, WORKER_PORT, MODEL_LOG, TGIS_PUBLIC_URL).
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../worker.sh" embedded "$@"
