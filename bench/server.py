"""The service app for benchmarks: ``create_app`` plus yardstick routes in the same process.

- ``GET /bench/noop``: does nothing (a sync route, like /v1/search: same thread-pool hop);
- ``GET /bench/busy``: holds the CPU for 2 ms of pure Python and returns, to tell the cost of
  the HTTP layer from the cost of running a CPU-bound handler on a loaded machine;
- ``POST /bench/search_async`` (only with ``BENCH_EXTRA=1``): /v1/search's work called on the
  event loop itself, without the thread-pool hop.

Run as ``uvicorn --factory bench.server:make_app``; settings come from ``SPEECHQA_*``.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from fastapi import FastAPI, Request

from service.api.app import create_app
from service.config import Settings


def make_app() -> FastAPI:
    app = create_app(Settings())

    @app.get("/bench/noop")
    def noop() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bench/busy")
    def busy() -> dict[str, bool]:
        start = time.perf_counter()
        while time.perf_counter() - start < 0.002:
            pass
        return {"ok": True}

    if os.environ.get("BENCH_EXTRA"):

        @app.post("/bench/search_async")
        async def search_async(request: Request) -> dict[str, list[dict[str, object]]]:
            body = await request.json()
            hits = request.app.state.speeches.search(body["query"], body.get("top_k", 5))
            return {"hits": [h.as_dict() for h in hits]}

    return app
