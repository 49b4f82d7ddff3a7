"""`SharedState` on Redis (`TGIS_STATE_URL=redis://HOST:PORT/DB`), with the `redis` package's
asyncio client.

Keys, all under `tgis:`:

    reqnum:{worker}      the worker's reqnum counter (a Lua script: SET floor NX, INCRBY)
    worker:{worker}      its latest report as some router took it in, expiring (`report_ttl_s`)
    workers              the set of worker ids with a report (pruned when theirs expired)
    load:{router}        a hash, worker id -> that router's in-flight cost, expiring
    routers              the set of router ids with a load hash (pruned likewise)
    ring, ring:version   the key ring, sealed; its version, bumped on every write
    endpoints, groups    hashes, name -> the resource's JSON, sealed
    resources:version    bumped on every write of either (versions start at the time in
                         microseconds: after a loss of data, none repeats one seen before)
    lease:{name}         its holder, expiring (SET NX PX; renewed by its holder only)

Every command has a short timeout: a Redis that is away costs a router a timeout per flush,
never a stuck route. Errors come out as `StateUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from router.state.sealing import Sealer
from router.state.shared import Exchange, Resources, SeenReport, StateUnavailable

__all__ = ["RedisState"]

T = TypeVar("T")

PREFIX = "tgis:"
COUNTER_TTL_S = 86_400
"""An idle worker's counter goes after a day; the time floor keeps a new one above it."""

_RESERVE = """
local out = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'NX')
  out[i] = redis.call('INCRBY', key, ARGV[2 + i])
  redis.call('EXPIRE', key, ARGV[2])
end
return out
"""

_HOLD = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisState:
    def __init__(self, url: str, sealer: Sealer, *, timeout_s: float = 1.0) -> None:
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
            # no CLIENT SETINFO: it costs a round trip per connection, and finding the library's
            # version reads the disk (importlib.metadata) on the event loop
            driver_info=None,
        )
        self._sealer = sealer
        self._reserve = self._redis.register_script(_RESERVE)
        self._hold = self._redis.register_script(_HOLD)

    async def reserve_reqnums(self, sizes: Mapping[str, int], floor: int) -> dict[str, int]:
        if not sizes:
            return {}
        ids = list(sizes)
        keys = [f"{PREFIX}reqnum:{worker_id}" for worker_id in ids]
        args = [floor, COUNTER_TTL_S, *(sizes[worker_id] for worker_id in ids)]
        lasts = await _call(lambda: self._reserve(keys=keys, args=args))
        return {worker_id: int(last) for worker_id, last in zip(ids, lasts, strict=True)}

    async def exchange(
        self,
        router: str,
        reports: Mapping[str, SeenReport],
        loads: Mapping[str, float],
        *,
        report_ttl_s: float,
        load_ttl_s: float,
    ) -> Exchange:
        return await _call(lambda: self._exchange(router, reports, loads, report_ttl_s, load_ttl_s))

    async def _exchange(
        self,
        router: str,
        reports: Mapping[str, SeenReport],
        loads: Mapping[str, float],
        report_ttl_s: float,
        load_ttl_s: float,
    ) -> Exchange:
        load_key = f"{PREFIX}load:{router}"
        async with self._redis.pipeline(transaction=False) as pipe:
            for worker_id, seen in reports.items():
                body = orjson.dumps(
                    {"router": seen.router, "at": seen.at, "report": seen.report.decode()}
                )
                pipe.set(f"{PREFIX}worker:{worker_id}", body, px=_ms(report_ttl_s))
            if reports:
                pipe.sadd(f"{PREFIX}workers", *reports)
            pipe.delete(load_key)
            if loads:
                pipe.hset(load_key, mapping={wid: repr(load) for wid, load in loads.items()})
                pipe.pexpire(load_key, _ms(load_ttl_s))
            pipe.sadd(f"{PREFIX}routers", router)
            pipe.smembers(f"{PREFIX}workers")
            pipe.smembers(f"{PREFIX}routers")
            pipe.get(f"{PREFIX}ring:version")
            pipe.get(f"{PREFIX}resources:version")
            *_, worker_ids, router_ids, ring_version, resources_version = await pipe.execute()
        ids = sorted(_text(worker_id) for worker_id in worker_ids)
        others = sorted(_text(r) for r in router_ids if _text(r) != router)
        async with self._redis.pipeline(transaction=False) as pipe:
            if ids:
                pipe.mget([f"{PREFIX}worker:{worker_id}" for worker_id in ids])
            for other in others:
                pipe.hgetall(f"{PREFIX}load:{other}")
            answers = await pipe.execute() if ids or others else []
        bodies = answers[0] if ids else []
        seen_now: dict[str, SeenReport] = {}
        gone = []
        for worker_id, body in zip(ids, bodies, strict=True):
            if body is None:
                gone.append(worker_id)
                continue
            entry = orjson.loads(body)
            report = SeenReport(entry["router"], float(entry["at"]), entry["report"].encode())
            seen_now[worker_id] = report
        summed: dict[str, float] = {}
        dead = []
        for other, table in zip(others, answers[1:] if ids else answers, strict=True):
            if not table:
                dead.append(other)
            for worker_id, load in table.items():
                key = _text(worker_id)
                summed[key] = summed.get(key, 0.0) + float(load)
        if gone or dead:
            async with self._redis.pipeline(transaction=False) as pipe:
                if gone:
                    pipe.srem(f"{PREFIX}workers", *gone)
                if dead:  # an idle router's hash is gone too: it re-adds itself each flush
                    pipe.srem(f"{PREFIX}routers", *dead)
                await pipe.execute()
        return Exchange(seen_now, summed, int(ring_version or 0), int(resources_version or 0))

    async def get_ring(self) -> tuple[int, bytes] | None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.get(f"{PREFIX}ring:version")
            pipe.get(f"{PREFIX}ring")
            version, sealed = await _call(pipe.execute)
        if sealed is None:
            return None
        return int(version or 0), self._sealer.open(sealed)

    async def put_ring(self, ring: bytes, *, only_if_absent: bool = False) -> bool:
        sealed = self._sealer.seal(ring)
        stored = await _call(lambda: self._redis.set(f"{PREFIX}ring", sealed, nx=only_if_absent))
        if stored:
            await _call(lambda: self._bump(f"{PREFIX}ring:version"))
        return bool(stored)

    async def _bump(self, key: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            _bump(pipe, key)
            await pipe.execute()

    async def get_resources(self) -> Resources:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(f"{PREFIX}endpoints")
            pipe.hgetall(f"{PREFIX}groups")
            pipe.get(f"{PREFIX}resources:version")
            endpoints, groups, version = await _call(pipe.execute)
        return Resources(self._open_all(endpoints), self._open_all(groups), int(version or 0))

    def _open_all(self, table: dict[bytes, bytes]) -> dict[str, bytes]:
        return {_text(name): self._sealer.open(sealed) for name, sealed in table.items()}

    async def put_resources(
        self,
        endpoints: Mapping[str, bytes | None],
        groups: Mapping[str, bytes | None],
        *,
        only_if_absent: bool = False,
    ) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, changes in (("endpoints", endpoints), ("groups", groups)):
                for name, value in changes.items():
                    if value is None:
                        pipe.hdel(f"{PREFIX}{key}", name)
                    elif only_if_absent:
                        pipe.hsetnx(f"{PREFIX}{key}", name, self._sealer.seal(value))
                    else:
                        pipe.hset(f"{PREFIX}{key}", name, self._sealer.seal(value))
            _bump(pipe, f"{PREFIX}resources:version")
            await _call(pipe.execute)

    async def hold_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        key = f"{PREFIX}lease:{name}"
        held = await _call(lambda: self._hold(keys=[key], args=[holder, _ms(ttl_s)]))
        return bool(held)

    async def close(self) -> None:
        await self._redis.aclose()


def _bump(pipe: Any, key: str) -> None:
    """Bump a version. A new one starts at the time in microseconds, so a Redis that lost its
    data never hands out a version a router saw before."""
    pipe.set(key, time.time_ns() // 1000, nx=True)
    pipe.incr(key)


async def _call(operation: Callable[[], Awaitable[T]]) -> T:
    try:
        return await operation()
    except (RedisError, OSError) as exc:
        raise StateUnavailable(f"redis: {exc}") from exc


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
