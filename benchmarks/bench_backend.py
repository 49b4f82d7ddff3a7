"""Decode throughput of the embedded backend over HTTP, against plain `model.generate`.

Starts the backend in this process on a free port, sends N sequential greedy `POST /generate`
requests of M new tokens, and measures generated tokens per second (warm-up excluded). The
anchor, in the same run, is transformers' `model.generate` on the same model, prompt and length.
It prints both figures and the ratio ours / anchor (above 1: the backend is faster).

    python benchmarks/bench_backend.py [--requests 20] [--new-tokens 64] [--model-id ID]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import torch
from aiohttp import web
from transformers.utils import logging as transformers_logging

from tgi_server.http.app import create_app
from tgi_server.model.loading import LoadedModel, build_engine, load_model
from tgi_server.settings import BackendSettings

PROMPT = "The keeper climbed the stairs of the lighthouse and"


@dataclass(frozen=True)
class Measurement:
    tokens: int
    seconds: float
    outputs: list[list[int]]

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="measured requests (N)")
    parser.add_argument("--new-tokens", type=int, default=64, help="new tokens per request (M)")
    parser.add_argument("--warmup", type=int, default=2, help="unmeasured requests first")
    parser.add_argument("--model-id", help="model to serve (default: the built-in tiny model)")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure_backend(
    loaded: LoadedModel, settings: BackendSettings, args: argparse.Namespace
) -> Measurement:
    runner = web.AppRunner(create_app(settings, build_engine(loaded)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port).start()
    url = f"http://{settings.host}:{settings.port}/generate"
    body = {
        "inputs": PROMPT,
        "parameters": {"max_new_tokens": args.new_tokens, "details": True},
    }
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(args.warmup):
                await _post(session, url, body)
            started = time.perf_counter()
            outputs = [await _post(session, url, body) for _ in range(args.requests)]
            elapsed = time.perf_counter() - started
    finally:
        await runner.cleanup()
    return Measurement(sum(len(ids) for ids in outputs), elapsed, outputs)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> list[int]:
    async with session.post(url, json=body) as response:
        response.raise_for_status()
        payload = await response.json()
    return [int(token["id"]) for token in payload["details"]["tokens"]]


def measure_anchor(loaded: LoadedModel, args: argparse.Namespace) -> Measurement:
    inputs = loaded.tokenizer(PROMPT, return_tensors="pt").to(loaded.device)
    prompt_length = inputs["input_ids"].shape[1]

    def generate() -> list[int]:
        with torch.inference_mode():
            output = loaded.model.generate(
                **inputs,
                max_new_tokens=args.new_tokens,
                do_sample=False,
                pad_token_id=loaded.tokenizer.pad_token_id,
            )
        return [int(i) for i in output[0, prompt_length:]]

    for _ in range(args.warmup):
        generate()
    started = time.perf_counter()
    outputs = [generate() for _ in range(args.requests)]
    elapsed = time.perf_counter() - started
    return Measurement(sum(len(ids) for ids in outputs), elapsed, outputs)


def main() -> None:
    args = parse_args()
    cast(Any, transformers_logging).disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="tgis-bench-") as cache_dir:
        settings = BackendSettings(
            model_id=args.model_id,
            cache_dir=Path(cache_dir),
            host="127.0.0.1",
            port=free_port(),
        )
        loaded = load_model(settings)
        ours = asyncio.run(measure_backend(loaded, settings, args))
        anchor = measure_anchor(loaded, args)
    print(f"model: {loaded.model_id} on {loaded.device}, torch threads: {torch.get_num_threads()}")
    print(f"prompt: {PROMPT!r}; {args.requests} requests x {args.new_tokens} new tokens, greedy")
    print(f"backend  HTTP POST /generate : {ours.tokens_per_second:9.1f} tokens/s")
    print(f"anchor   model.generate      : {anchor.tokens_per_second:9.1f} tokens/s")
    print(
        f"ratio ours/anchor            : {ours.tokens_per_second / anchor.tokens_per_second:9.2f}"
    )
    same = "yes" if ours.outputs == anchor.outputs else "NO (check the greedy path)"
    print(f"same tokens as the anchor    : {same}")


if __name__ == "__main__":
    main()
