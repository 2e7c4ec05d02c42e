"""A request's blocking work: on the event loop when it is the only request in the server,
in the thread pool otherwise.

A sync route always runs in the thread pool: two thread wake-ups per request. On this kind of
virtual machine a sleeping thread takes a few hundred microseconds to wake, so alone on the
server a search paid about as much again as the whole do-nothing request. Run on the loop
instead, a search that is the only request costs no hop; once two requests are in the server,
each goes to the pool as before and they overlap (FAISS and the compiled BM25 search release
the GIL). The price: a request arriving during an inline search waits until it ends (a few
milliseconds) before it is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

P = ParamSpec("P")
T = TypeVar("T")


class Inflight:
    """How many requests the server holds now. Only the event loop changes it (in
    ``RequestLogMiddleware``), so it needs no lock."""

    def __init__(self) -> None:
        self.count = 0


async def run_blocking(
    request: Request, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """``fn(*args, **kwargs)``, inline if this is the server's only request, else in the pool."""
    inflight: Inflight = request.app.state.inflight
    # One turn of the loop first: requests read in the same turn as this one start and are
    # counted before it decides.
    await asyncio.sleep(0)
    if inflight.count <= 1:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)
