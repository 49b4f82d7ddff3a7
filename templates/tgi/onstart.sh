#!/usr/bin/env bash
# The TGI worker's on-start: the worker in the foreground, TGI 3.3.7 as its backend.
# Environment and flags: templates/worker.sh (MODEL_ID, HF_TOKEN, REPORT_ADDR, TGIS_JOIN_TOKEN,
# WORKER_PORT, MODEL_LOG, PUBLIC_IPADDR + VAST_TCP_PORT_<WORKER_PORT> or TGIS_PUBLIC_URL).
# TGI's own variables (QUANTIZE, NUM_SHARD, MAX_TOTAL_TOKENS, ...) reach the launcher.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../worker.sh" tgi "$@"
