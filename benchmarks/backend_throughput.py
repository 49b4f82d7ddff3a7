"""Streaming throughput of the embedded backend under concurrency, against transformers.

Starts `tgi-serverless backend` as a child process (EOS ignored, so every request runs its full
length) and, for each concurrency C, sends C streaming `POST /generate_stream` requests at once
with the same prompt and max_new_tokens, over kept-alive connections (as a relay would). It
measures output tokens per second over the round and the time to first token (p50/p99), from
the moment each request was on the wire ("TTFT"), and from the start of the round ("from
round start": that also counts the time this one-process client takes to send C requests).
Throughput figures are the best of `--repeats` rounds; the median round is printed too, with
its ratio to the static batch ("med x st"), and the slowest (the spread);
TTFT percentiles pool the requests of all rounds, and "lone" is the p50 of C = 1. Anchors,
measured in this process on the same model, between the rounds (so that both see the same
spells of load on a shared machine): sequential `model.generate` (one request at a time) and
static-batch `model.generate` with C copies of the prompt. It prints the ratios; the issue's
goals are, at C = 32: at least 10x the sequential anchor, at least 0.8x the static batch, and a
TTFT p50 within 2x a lone request's.

The server and the anchors use the same number of torch threads (`--threads`, 1 by default on
a CPU: the built-in model is too small to gain from more, and a spinning OpenMP worker would
take the core the server's event loop and this client need). The client runs on uvloop.

With `--grammar json` or `--grammar regex`, every streamed request is constrained by a grammar
that stays open for the whole run (an array of short strings; letters and spaces), so each
step pays for its token mask.

    python benchmarks/backend_throughput.py [--concurrency 1,8,32,64] [--new-tokens 64]
        [--repeats 10] [--device cpu|cuda] [--model-id ID] [--threads N]
        [--grammar none|json|regex]

With `--device cuda` and no model id, it builds a ~1B-parameter Llama from a config (random
weights, the tiny model's tokenizer) and serves that.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import torch

from client.bench.loop import event_loop_factory

PROMPT = "The keeper climbed the stairs of the lighthouse and"
GPU_ARCHITECTURE: dict[str, Any] = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_hidden_layers": 22,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "max_position_embeddings": 4096,
}
"""TinyLlama-1.1B's shape, with the tiny model's vocabulary."""
GRAMMARS: dict[str, dict[str, Any]] = {
    "json": {
        "type": "json",
        "value": {"type": "array", "items": {"type": "string", "maxLength": 8}},
    },
    "regex": {"type": "regex", "value": "[a-z ]+"},
}
"""Grammars that never close: every token of a run is generated under the constraint."""


@dataclass(frozen=True)
class Round:
    concurrency: int
    tokens: int
    seconds: float
    ttft: list[float]
    """Per request: seconds from its request being sent to its first token."""
    ttft_from_start: list[float]
    """Per request: seconds from the start of the round to its first token."""

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated levels")
    parser.add_argument("--new-tokens", type=int, default=64, help="max_new_tokens per request")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model-id", help="model to serve (default: tiny model / 1B on cuda)")
    parser.add_argument(
        "--repeats", type=int, default=10, help="rounds per figure; best and median reported"
    )
    parser.add_argument("--scheduler", choices=("batching", "sequential"), default="batching")
    parser.add_argument(
        "--route",
        choices=("generate", "chat"),
        default="generate",
        help="stream /generate_stream or /v1/chat/completions (both write through the sink)",
    )
    parser.add_argument(
        "--grammar",
        choices=("none", *GRAMMARS),
        default="none",
        help="constrain every request with a JSON Schema or a regex grammar",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads for the server and the anchors alike (default: 1 on cpu)",
    )
    args = parser.parse_args()
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_model(args: argparse.Namespace, workdir: Path) -> Path:
    """The folder (or hub id) the backend and the anchors both load."""
    from tgi_server.model.tiny import ensure_tiny_model

    if args.model_id:
        return Path(args.model_id)
    tiny = ensure_tiny_model(workdir / "cache")
    if args.device == "cpu":
        return tiny
    return build_gpu_model(tiny, workdir / "llama-1b")


def build_gpu_model(tiny: Path, target: Path) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = LlamaConfig(vocab_size=len(tokenizer), **GPU_ARCHITECTURE)
    torch.manual_seed(0)
    model: Any = LlamaForCausalLM(config)
    model.to(torch.bfloat16)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    count = sum(parameter.numel() for parameter in model.parameters())
    print(f"built a {count / 1e9:.2f}B-parameter Llama from a config")
    return target


def start_backend(model: Path, port: int, args: argparse.Namespace, workdir: Path) -> Any:
    env = {
        **os.environ,
        "TGIS_IGNORE_EOS": "true",
        "TGIS_SCHEDULER": args.scheduler,
        "TGIS_CACHE_DIR": str(workdir / "cache"),
        "MAX_CONCURRENT_REQUESTS": "256",
    }
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    command = [sys.executable, "-m", "tgi_serverless", "backend", "--port", str(port)]
    command += ["--model-id", str(model)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


async def wait_healthy(base: str, process: Any, limit_s: float = 600.0) -> None:
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit("the backend exited before it was ready")
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the backend did not become ready")


async def stream_one(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], round_started: float
) -> tuple[int, float, float]:
    """(tokens received, seconds from sent to the first one, from the round's start to it)."""
    sent = SimpleNamespace(at=None)
    first: float | None = None
    tokens = 0
    async with session.post(url, json=body, trace_request_ctx=sent) as response:
        response.raise_for_status()
        async for line in response.content:
            if line.startswith(b"data:") and not line.startswith(b"data: [DONE]"):
                tokens += 1
                if first is None:
                    first = time.perf_counter()
    if first is None or sent.at is None:
        return tokens, float("nan"), float("nan")
    return tokens, first - sent.at, first - round_started


async def _request_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: Any
) -> None:
    if context.trace_request_ctx.at is None:
        context.trace_request_ctx.at = time.perf_counter()


def client_session() -> aiohttp.ClientSession:
    """One session for the whole run: connections stay open between rounds."""
    tracing = aiohttp.TraceConfig()
    tracing.on_request_chunk_sent.append(_request_sent)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=3600),
        trace_configs=[tracing],
    )


def stream_request(
    route: str, new_tokens: int, grammar: str = "none"
) -> tuple[str, dict[str, Any]]:
    """(path, body) of one streamed request of `new_tokens` tokens on `route`, constrained by
    the grammar named (`GRAMMARS`) unless "none"."""
    constraint = GRAMMARS.get(grammar)
    if route == "chat":
        messages = [{"role": "user", "content": PROMPT}]
        body = {"messages": messages, "max_tokens": new_tokens, "temperature": 0, "stream": True}
        if constraint is not None:
            body["response_format"] = constraint
        return "/v1/chat/completions", body
    parameters: dict[str, Any] = {"max_new_tokens": new_tokens}
    if constraint is not None:
        parameters["grammar"] = constraint
    return "/generate_stream", {"inputs": PROMPT, "parameters": parameters}


async def measure_round(
    session: aiohttp.ClientSession,
    base: str,
    concurrency: int,
    new_tokens: int,
    route: str = "generate",
    grammar: str = "none",
) -> Round:
    path, body = stream_request(route, new_tokens, grammar)
    url = f"{base}{path}"
    started = time.perf_counter()
    results = await asyncio.gather(
        *(stream_one(session, url, body, started) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    return Round(
        concurrency,
        sum(n for n, _, _ in results),
        elapsed,
        [t for _, t, _ in results],
        [t for _, _, t in results],
    )


async def measure_levels(
    session: aiohttp.ClientSession,
    base: str,
    levels: list[int],
    new_tokens: int,
    route: str = "generate",
    grammar: str = "none",
) -> dict[int, Round]:
    return {
        level: await measure_round(session, base, level, new_tokens, route, grammar)
        for level in levels
    }


def generate_tokens_per_second(model: Any, ids: torch.Tensor, new_tokens: int) -> float:
    with torch.inference_mode():
        started = time.perf_counter()
        output = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
        )
        if ids.device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
    generated = int((output.shape[1] - ids.shape[1]) * ids.shape[0])
    return generated / elapsed


class Anchors:
    """Sequential and static-batch `model.generate` on the served model, in this process."""

    def __init__(self, model_path: Path, args: argparse.Namespace) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if args.threads:
            torch.set_num_threads(args.threads)
        device = torch.device(args.device)
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        self._model = cast(Any, AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype))
        self._model.to(device).eval()
        self._ids = torch.tensor([tokenizer.encode(PROMPT)], device=device)
        self._new_tokens = args.new_tokens
        generate_tokens_per_second(self._model, self._ids, 8)  # warm-up

    def sequential(self) -> float:
        return generate_tokens_per_second(self._model, self._ids, self._new_tokens)

    def static(self, batch_size: int) -> float:
        ids = self._ids.repeat(batch_size, 1)
        return generate_tokens_per_second(self._model, ids, self._new_tokens)


@dataclass
class Results:
    """Every round, and the best anchor figures seen."""

    rounds: dict[int, list[Round]]
    sequential: float
    static: dict[int, float]

    def add(self, rounds: dict[int, Round], sequential: float, static: dict[int, float]) -> None:
        for level, result in rounds.items():
            self.rounds.setdefault(level, []).append(result)
            self.static[level] = max(self.static.get(level, 0.0), static[level])
        self.sequential = max(self.sequential, sequential)


def measure(
    base: str, process: Any, anchors: Anchors, levels: list[int], args: argparse.Namespace
) -> Results:
    """`--repeats` passes, each the server at every level then the anchors at every level, so
    that both see the same spells of a shared machine's load; the best of each is kept."""
    results = Results({}, 0.0, {})
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(wait_healthy(base, process))
        session = runner.run(_open_session())
        try:
            warm_up = measure_round(
                session, base, max(levels), args.new_tokens, args.route, args.grammar
            )
            runner.run(warm_up)
            for _ in range(args.repeats):
                rounds = runner.run(
                    measure_levels(session, base, levels, args.new_tokens, args.route, args.grammar)
                )
                static = {level: anchors.static(level) for level in levels}
                results.add(rounds, anchors.sequential(), static)
        finally:
            runner.run(session.close())
    return results


async def _open_session() -> aiohttp.ClientSession:
    return client_session()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))])


def report(results: Results, levels: list[int]) -> None:
    def ttfts(level: int, *, from_start: bool = False) -> list[float]:
        rounds = results.rounds[level]
        return [t for r in rounds for t in (r.ttft_from_start if from_start else r.ttft)]

    lone_ttft = percentile(ttfts(1 if 1 in levels else levels[0]), 0.5)
    sequential = results.sequential
    print(f"sequential model.generate: {sequential:9.1f} tokens/s (anchor)")
    print(
        f"{'C':>4} {'ours tok/s':>11} {'median':>8} {'slowest':>8} {'static tok/s':>13} "
        f"{'x seq':>7} {'x static':>9} {'med x st':>9} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12} "
        f"{'p50/lone':>9} {'from round start p50':>21}"
    )
    for level in levels:
        speeds = [r.tokens_per_second for r in results.rounds[level]]
        best, static = max(speeds), results.static[level]
        median = percentile(speeds, 0.5)
        p50, p99 = percentile(ttfts(level), 0.5), percentile(ttfts(level), 0.99)
        print(
            f"{level:>4} {best:>11.1f} {median:>8.0f} {min(speeds):>8.0f} {static:>13.1f} "
            f"{best / sequential:>7.2f} {best / static:>9.2f} {median / static:>9.2f} "
            f"{p50 * 1000:>12.1f} {p99 * 1000:>12.1f} {p50 / lone_ttft:>9.2f} "
            f"{percentile(ttfts(level, from_start=True), 0.5) * 1000:>18.1f} ms"
        )


def main() -> None:
    args = parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="tgis-throughput-") as scratch:
        workdir = Path(scratch)
        model_path = prepare_model(args, workdir)
        anchors = Anchors(model_path, args)
        port = free_port()
        process = start_backend(model_path, port, args, workdir)
        try:
            results = measure(f"http://127.0.0.1:{port}", process, anchors, levels, args)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
    print(f"model: {model_path.name} on {args.device}, scheduler: {args.scheduler}, ", end="")
    print(f"route: {args.route}, grammar: {args.grammar}, ", end="")
    print(f"torch threads: {torch.get_num_threads()}, {args.new_tokens} new tokens, EOS ignored")
    report(results, levels)


if __name__ == "__main__":
    main()
