"""Blocking work runs on the event loop only when its request is the server's only one."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace

from fastapi import Request
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.inline import Inflight, run_blocking
from service.config import Settings


def _request(inflight: Inflight) -> Request:
    app = SimpleNamespace(state=SimpleNamespace(inflight=inflight))
    return Request({"type": "http", "app": app, "headers": []})


def test_alone_inline_else_in_the_pool() -> None:
    async def main() -> tuple[int, int, int]:
        loop_thread = threading.get_ident()
        inflight = Inflight()
        inflight.count = 1
        alone = await run_blocking(_request(inflight), threading.get_ident)
        inflight.count = 3
        crowded = await run_blocking(_request(inflight), threading.get_ident)
        return loop_thread, alone, crowded

    loop_thread, alone, crowded = asyncio.run(main())
    assert alone == loop_thread
    assert crowded != loop_thread


def test_requests_that_arrive_together_see_each_other() -> None:
    """Started in the same turn of the loop, neither runs inline: each counts the other."""

    async def main() -> list[bool]:
        inflight = Inflight()
        loop_thread = threading.get_ident()

        async def one() -> bool:
            inflight.count += 1
            try:
                return await run_blocking(_request(inflight), threading.get_ident) == loop_thread
            finally:
                inflight.count -= 1

        return list(await asyncio.gather(one(), one()))

    assert asyncio.run(main()) == [False, False]


def test_the_middleware_counts_requests_in_the_server(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data"))

    @app.get("/probe")
    async def probe() -> dict[str, int]:
        return {"inflight": app.state.inflight.count}

    with TestClient(app) as client:
        assert client.get("/probe").json() == {"inflight": 1}
        assert client.post("/v1/search", json={"query": "乡村振兴"}).status_code == 200
        assert client.post("/v1/search", json={"query": ""}).status_code == 422
        assert app.state.inflight.count == 0
