"""Run the embedded TGI-compatible backend: TGI 3.x's HTTP API on transformers and torch.

It serves POST /generate, POST /generate_stream, GET /health and GET /info the way
Text Generation Inference does (same parameters, validation messages, SSE bytes and headers),
on a GPU when there is one and on the CPU otherwise. Without a model id it serves the built-in
tiny model, a small Llama built on first start (in about a second) and cached, so everything
works offline. Like TGI, it opens its port only once the model is loaded and then logs
`Connected`.

Environment (TGI's names, exactly as spelled; flags win; all of them in docs/backend.md,
Settings):
  MODEL_ID                 hub id or local folder (default: the built-in tiny model)
  HF_TOKEN                 token for gated or private models (or HUGGING_FACE_HUB_TOKEN)
  REVISION, TRUST_REMOTE_CODE, QUANTIZE   as the flags --revision, --trust-remote-code,
                           --quantize (bitsandbytes, bitsandbytes-nf4, bitsandbytes-fp4: CUDA)
  PORT                     port to listen on (default 5001)
  TGIS_BACKEND_HOST        address to bind (default 127.0.0.1)
  MAX_INPUT_TOKENS         longest prompt, in tokens (default 1024)
  MAX_TOTAL_TOKENS         prompt + new tokens per request (default 2048)
  MAX_CONCURRENT_REQUESTS  requests in flight before 429 "Model is overloaded" (default 128)
  MAX_STOP_SEQUENCES, MAX_BEST_OF, MAX_TOP_N_TOKENS   per-request limits (4, 2, 5)
  MAX_BATCH_PREFILL_TOKENS, MAX_BATCH_TOTAL_TOKENS, MAX_BATCH_SIZE, WAITING_SERVED_RATIO,
  MAX_WAITING_TOKENS       continuous-batching admission, as TGI's router
  TGIS_SCHEDULER           batching (default) or sequential
  TGIS_CACHE_DIR           where the tiny model is cached (default ~/.cache/tgi-serverless)
  JSON_OUTPUT              log JSON lines in TGI's shape (true/false)

Examples:
  tgi-serverless backend
  curl -s localhost:5001/generate -H 'Content-Type: application/json' \\
       -d '{"inputs": "The lighthouse", "parameters": {"max_new_tokens": 20}}'
  MODEL_ID=HuggingFaceTB/SmolLM2-135M-Instruct tgi-serverless backend --port 8081
  tgi-serverless backend --model-id org/model --revision main --quantize bitsandbytes-nf4
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import get_args

import pydantic

from tgi_server.settings import BackendSettings, Quantize

__all__ = ["HELP", "add_arguments", "build_settings", "run"]

HELP = "run the embedded TGI-compatible backend (transformers + torch, CPU or GPU)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port", type=int, metavar="N", help="port to listen on (default 5001, $PORT)"
    )
    parser.add_argument(
        "--host", metavar="ADDRESS", help="address to bind (default 127.0.0.1, $TGIS_BACKEND_HOST)"
    )
    parser.add_argument(
        "--model-id",
        metavar="ID",
        help="hub id or local folder (default: the built-in tiny model, $MODEL_ID)",
    )
    parser.add_argument(
        "--revision",
        metavar="REF",
        help="hub revision of --model-id: a branch, tag or commit ($REVISION)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=None,
        help="run the model's own Python code, if it ships some ($TRUST_REMOTE_CODE)",
    )
    parser.add_argument(
        "--quantize",
        choices=get_args(Quantize),
        help="quantize while loading: bitsandbytes, bitsandbytes-nf4, bitsandbytes-fp4 "
        "(CUDA only); TGI's other methods are refused ($QUANTIZE)",
    )
    parser.add_argument(
        "--max-input-tokens", type=int, metavar="N", help="longest prompt in tokens (default 1024)"
    )
    parser.add_argument(
        "--max-total-tokens",
        type=int,
        metavar="N",
        help="prompt + new tokens per request (default 2048)",
    )
    parser.add_argument(
        "--max-concurrent-requests",
        type=int,
        metavar="N",
        help="requests in flight before answering 429 (default 128)",
    )
    for flag, kind, text in _BATCH_FLAGS:
        parser.add_argument(flag, type=kind, metavar="N", help=text)
    parser.add_argument(
        "--scheduler",
        choices=("batching", "sequential"),
        help="continuous batching (default) or one request at a time ($TGIS_SCHEDULER)",
    )
    parser.add_argument(
        "--engine",
        choices=("shard", "thread"),
        help=(
            "run the model in a process of its own, as TGI's shard (default), or on a thread of"
            " the HTTP server's process ($TGIS_ENGINE)"
        ),
    )
    parser.add_argument(
        "--json-output",
        action="store_true",
        default=None,
        help="log JSON lines in TGI's shape ($JSON_OUTPUT)",
    )


_BATCH_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("--max-batch-prefill-tokens", int, "most tokens in one prefill (default 4096)"),
    ("--max-batch-total-tokens", int, "most tokens a running batch holds (default 16000)"),
    ("--max-batch-size", int, "most requests in the running batch (default: no limit)"),
    ("--waiting-served-ratio", float, "waiting/running ratio that lets requests join (0.3)"),
    ("--max-waiting-tokens", int, "steps after which waiting requests join anyway (20)"),
)


def build_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> BackendSettings:
    """Settings from the variables `environ` sets (docs/backend.md), the flags given over them."""
    return BackendSettings.from_command_line(args, environ)


def run(args: argparse.Namespace) -> int:
    try:
        settings = build_settings(args, os.environ)
    except pydantic.ValidationError as exc:
        return _argument_error(_first_problem(exc))
    from tgi_server.model.launch_flags import launch_facts, launch_problem

    problem = launch_problem(settings, launch_facts(settings))
    if problem is not None:
        return _argument_error(problem)
    if settings.json_output:
        from tgi_server.json_logging import use_json_logs

        use_json_logs()
    from tgi_server.server import serve

    return serve(settings)


def _argument_error(problem: str) -> int:
    """TGI's launcher's way to refuse its arguments; the exit status."""
    print(f'Error: ArgumentValidation("{problem}")', file=sys.stderr)
    return 1


def _first_problem(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {message}" if field else message
