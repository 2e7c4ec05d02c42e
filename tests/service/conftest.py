"""A real server on 127.0.0.1 for clients that need one (the openai package, a browser)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from service.api.app import create_app
from service.config import Settings
from tests.conftest import SEED_DIR

API_KEY = "test-key-8c1f"


@dataclass(frozen=True)
class LiveServer:
    url: str
    api_key: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app over the seeds, API key required, served by uvicorn in a thread."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("live") / "data", seed_dir=SEED_DIR, api_keys=[API_KEY]
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive(), "the server stopped during start-up"
        if time.monotonic() > deadline:
            pytest.fail("server did not start")
        time.sleep(0.05)
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    yield LiveServer(url, API_KEY)
    server.should_exit = True
    thread.join(timeout=30)
