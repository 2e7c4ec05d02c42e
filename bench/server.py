"""The service app for benchmarks: ``create_app`` plus yardstick routes in the same process.

- ``GET /bench/noop``: does nothing, as a sync route returning a model-checked dict: FastAPI
  runs it in the thread pool, and (as for any sync route returning data rather than a
  ``Response``) hops there once more to validate its answer;
- ``GET /bench/noop_async``: does nothing on the event loop (no hop): the cheapest route
  FastAPI has, the stricter yardstick now that /v1/search runs on the loop when it is alone
  (``service.api.inline``);
- ``GET /bench/busy``: holds the CPU for 2 ms of pure Python and returns, to tell the cost of
  the HTTP layer from the cost of running a CPU-bound handler on a loaded machine;
- ``GET /bench/search_times``: how long each ``Speeches.search`` call made by the routes took
  in this process since the last call (then forgotten), so that the HTTP layer's cost is the
  request's latency minus the very search it ran, under the same conditions;
- ``POST /bench/search_loop``: ``Speeches.search`` over the given queries in a tight loop in
  this process, the in-process figure without any request around it;
- ``POST /bench/search_shape``: /v1/search's body in and answer out (the same models, the
  same serialisation; hits found once, on the first call) without searching: the HTTP work a
  search request does, apart from the search.

Run as ``uvicorn --factory bench.server:make_app``; settings come from ``SPEECHQA_*``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

from fastapi import FastAPI, Request, Response

from service.api.app import create_app
from service.api.inline import run_blocking
from service.api.routes.search import SearchIn, SearchOut
from service.api.schemas import HitOut, model_response
from service.config import Settings
from service.core import Hit, Speeches

_SEARCH_TIMES: list[float] = []
_SEARCH_CPU: list[float] = []


def _timed(search: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(search)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return search(*args, **kwargs)
        finally:
            # list.append is atomic under the GIL: safe from the thread pool
            _SEARCH_TIMES.append((time.perf_counter() - start) * 1000)
            _SEARCH_CPU.append((time.thread_time() - cpu) * 1000)

    return wrapper


def make_app() -> FastAPI:
    # This process only serves benchmarks: every search the routes run is timed.
    if not hasattr(Speeches.search, "__wrapped__"):
        Speeches.search = _timed(Speeches.search)  # type: ignore[method-assign]
    app = create_app(Settings())

    @app.get("/bench/noop")
    def noop() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bench/noop_async")
    async def noop_async() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bench/busy")
    def busy() -> dict[str, bool]:
        start = time.perf_counter()
        while time.perf_counter() - start < 0.002:
            pass
        return {"ok": True}

    @app.get("/bench/search_times")
    def search_times() -> dict[str, list[float]]:
        out, cpu = _SEARCH_TIMES[:], _SEARCH_CPU[:]
        del _SEARCH_TIMES[: len(out)], _SEARCH_CPU[: len(cpu)]
        return {"ms": out, "cpu_ms": cpu}

    @app.post("/bench/search_loop")
    def search_loop(request_body: dict[str, Any], request: Request) -> dict[str, list[float]]:
        speeches = request.app.state.speeches
        out = []
        end = time.perf_counter() + float(request_body.get("seconds", 1.0))
        queries = request_body["queries"]
        i = 0
        while time.perf_counter() < end:
            start = time.perf_counter()
            speeches.search(queries[i % len(queries)], 5)
            out.append((time.perf_counter() - start) * 1000)
            i += 1
        del _SEARCH_TIMES[:], _SEARCH_CPU[:]
        return {"ms": out}

    canned: list[Hit] = []

    def shape(body: SearchIn, speeches: Speeches) -> Response:
        if not canned:
            canned.extend(speeches.search("经济社会发展", 50))
        hits = canned[: body.top_k]
        return model_response(SearchOut(hits=[HitOut.model_validate(h.as_dict()) for h in hits]))

    @app.post("/bench/search_shape", response_model=SearchOut)
    async def search_shape(body: SearchIn, request: Request) -> Response:
        # The route's own path: run_blocking, inline when alone, as /v1/search does.
        return await run_blocking(request, shape, body, request.app.state.speeches)

    return app
