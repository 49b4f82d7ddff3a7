#!/usr/bin/env bash
# Run a tgi-serverless worker in the foreground; it starts its backend and supervises it.
#
#   templates/worker.sh tgi|embedded [WORKER FLAGS] [-- BACKEND FLAGS]
#
# What the templates' onstart.sh scripts run (templates/tgi, templates/cpu). The worker's flags
# (`tgi-serverless worker --help`) and the backend's (TGI's: --quantize, --num-shard, ...,
# after --) pass through. From the environment, Vast's names where Vast has them:
#   MODEL_ID         the model (required for tgi; embedded: the built-in tiny one by default)
#   HF_TOKEN         for gated or private models: it reaches the backend's environment only
#   REPORT_ADDR      the router's URL (required)
#   TGIS_JOIN_TOKEN  the one-time token this worker joins the router with (required)
#   WORKER_PORT      the worker's port (default 3000)
#   MODEL_LOG        the backend's log (default /workspace/model.log)
#   TGIS_PUBLIC_URL  the URL clients reach this worker at; on Vast, PUBLIC_IPADDR and
#                    VAST_TCP_PORT_<WORKER_PORT> (Vast sets both) give it instead
set -euo pipefail

fail() {
    echo "onstart: $*" >&2
    exit 2
}

backend="${1:-}"
[[ "$backend" == tgi || "$backend" == embedded ]] \
    || fail "usage: worker.sh tgi|embedded [WORKER FLAGS] [-- BACKEND FLAGS]"
shift

[[ -n "${REPORT_ADDR:-}" ]] || fail "set REPORT_ADDR to the router's URL"
[[ -n "${TGIS_JOIN_TOKEN:-}" ]] \
    || fail "set TGIS_JOIN_TOKEN (tgi-serverless endpoints join-token <endpoint>)"
if [[ "$backend" == tgi && -z "${MODEL_ID:-}" ]]; then
    fail "set MODEL_ID to the model TGI serves (a Hugging Face id)"
fi

export WORKER_PORT="${WORKER_PORT:-3000}"
export MODEL_LOG="${MODEL_LOG:-/workspace/model.log}"
vast_port="VAST_TCP_PORT_${WORKER_PORT}"
if [[ -z "${TGIS_PUBLIC_URL:-}" && ( -z "${PUBLIC_IPADDR:-}" || -z "${!vast_port:-}" ) ]]; then
    fail "set TGIS_PUBLIC_URL, or PUBLIC_IPADDR and $vast_port as Vast does:" \
        "the URL clients reach this worker at"
fi
mkdir -p "$(dirname "$MODEL_LOG")"

echo "onstart: worker on port $WORKER_PORT, backend $backend" \
    "(model ${MODEL_ID:-built-in}, log $MODEL_LOG), router $REPORT_ADDR"
exec tgi-serverless worker --backend "$backend" "$@"
