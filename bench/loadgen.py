"""A closed-loop HTTP/1.1 load generator: ``c`` keep-alive connections, each sending its next
request as soon as the previous answer arrived, for a fixed time; every latency is kept.

Raw asyncio streams with pre-encoded requests rather than an HTTP client library: on a 2-core
machine the load generator shares the CPU with the server, so it must cost as little as it can.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.common import pct


@dataclass
class Load:
    p50_ms: float
    p99_ms: float
    rps: float
    n: int
    errors: int


def _requests(host: str, method: str, path: str, bodies: list[Any] | None) -> list[bytes]:
    out = []
    for body in bodies or [None]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n"
        if body is None:
            out.append((head + "\r\n").encode())
            continue
        data = json.dumps(body, ensure_ascii=False).encode()
        head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        out.append(head.encode() + data)
    return out


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> int:
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _run(
    base: str, method: str, path: str, bodies: list[Any] | None, conns: int, seconds: float
) -> Load:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    reqs = _requests(f"{host}:{port}", method, path, bodies)
    latencies: list[float] = []
    errors = 0
    streams = [await asyncio.open_connection(host, port) for _ in range(conns)]
    # One request per connection first: connection set-up is not part of the measure.
    await asyncio.gather(*(_exchange(r, w, reqs[0]) for r, w in streams))
    end = time.perf_counter() + seconds

    async def worker(i: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        j = i
        while time.perf_counter() < end:
            req = reqs[j % len(reqs)]
            j += conns
            t = time.perf_counter()
            status = await _exchange(reader, writer, req)
            latencies.append(time.perf_counter() - t)
            if status >= 400:
                errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(i, r, w) for i, (r, w) in enumerate(streams)))
    elapsed = time.perf_counter() - start
    for _, w in streams:
        w.close()
    ms = [x * 1000 for x in latencies]
    return Load(pct(ms, 50), pct(ms, 99), len(ms) / elapsed, len(ms), errors)


def run_load(
    base: str, method: str, path: str, bodies: list[Any] | None, conns: int, seconds: float
) -> Load:
    try:
        import uvloop

        return uvloop.run(_run(base, method, path, bodies, conns, seconds))
    except ImportError:
        return asyncio.run(_run(base, method, path, bodies, conns, seconds))
