"""Concurrency: 16 clients ask and search over real HTTP while writers ingest, replace and delete.

No errors; no answer or hit cites a document whose DELETE had returned before the request was
sent; no lost writes (every write that returned is there, every delete that returned is gone,
index and store agree). Bounded: the clients run for a few seconds.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from service.api.app import create_app
from service.config import Settings
from service.core import Speeches

CLIENTS = 16
SECONDS = 3.0
WRITERS = 2


def _code(n: int) -> str:
    rng = random.Random(n * 7919)
    return "".join(chr(0x4E00 + rng.randrange(0x5000)) for _ in range(4))


def _speech(n: int, version: int) -> str:
    return (
        f"第{n}号项目推进会讲话\n同志们：\n本项目代号为{_code(n)}，今天是第{version}次调度。\n"
        f"一、抓好建设\n代号{_code(n)}的项目要在年底前完成投资{n * 10 + version}万元。\n"
        "二、抓好安全\n要把安全生产责任落实到每一个环节，确保万无一失。\n"
    )


@dataclass
class Ledger:
    """What the writers did and when their requests returned (monotonic seconds)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    created: list[int] = field(default_factory=list)
    latest: dict[int, str] = field(default_factory=dict)  # live document -> its latest text
    deleted_at: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LiveApp:
    url: str
    app: FastAPI


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveApp]:
    settings = Settings(data_dir=tmp_path / "data", index_flush_seconds=0.5)
    app = create_app(settings)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield LiveApp(f"http://127.0.0.1:{port}", app)
    server.should_exit = True
    thread.join(timeout=30)


def _writer(url: str, first: int, ledger: Ledger, stop: threading.Event) -> None:
    rng = random.Random(first)
    n = first
    with httpx.Client(base_url=url, timeout=60) as c:
        while not stop.is_set():
            action = rng.random()
            with ledger.lock:
                mine = [k for k in ledger.latest if k % WRITERS == first % WRITERS]
            if action < 0.5 or len(mine) < 3:
                text = _speech(n, 0)
                resp = c.post("/v1/documents", json={"id": f"p{n}", "text": text})
                if resp.status_code != 201:
                    ledger.errors.append(f"create p{n}: {resp.status_code} {resp.text[:200]}")
                with ledger.lock:
                    ledger.created.append(n)
                    ledger.latest[n] = text
                n += WRITERS
            elif action < 0.7:
                k = rng.choice(mine)
                text = _speech(k, rng.randrange(1, 1000))
                resp = c.post("/v1/documents", json={"id": f"p{k}", "text": text})
                if resp.status_code not in (200, 201):
                    ledger.errors.append(f"replace p{k}: {resp.status_code} {resp.text[:200]}")
                with ledger.lock:
                    ledger.latest[k] = text
            else:
                k = rng.choice(mine)
                with ledger.lock:
                    del ledger.latest[k]  # from now on nobody may count on it
                resp = c.delete(f"/v1/documents/p{k}")
                returned = time.monotonic()
                if resp.status_code != 204:
                    ledger.errors.append(f"delete p{k}: {resp.status_code} {resp.text[:200]}")
                with ledger.lock:
                    ledger.deleted_at[f"p{k}"] = returned


def _client(url: str, seed: int, ledger: Ledger, stop: threading.Event, out: list[str]) -> int:
    rng = random.Random(seed)
    requests = 0
    with httpx.Client(base_url=url, timeout=60) as c:
        while not stop.is_set():
            with ledger.lock:
                recent = ledger.created[-30:]
            if not recent:
                time.sleep(0.01)
                continue
            n = rng.choice(recent)
            sent = time.monotonic()
            if rng.random() < 0.5:
                resp = c.post("/v1/search", json={"query": f"代号{_code(n)}", "top_k": 5})
                cited = [h["doc_id"] for h in resp.json().get("hits", [])]
            else:
                question = f"代号{_code(n)}的项目要在年底前完成投资多少？"
                resp = c.post("/v1/ask", json={"question": question})
                cited = [h["doc_id"] for h in resp.json().get("citations", [])]
            requests += 1
            if resp.status_code != 200:
                out.append(f"{resp.status_code} {resp.text[:200]}")
                continue
            with ledger.lock:
                for doc_id in cited:
                    gone = ledger.deleted_at.get(doc_id)
                    if gone is not None and gone < sent:
                        out.append(f"{doc_id} cited by a request sent after its DELETE returned")
    return requests


def test_clients_ask_while_writers_ingest_and_delete(live: LiveApp) -> None:
    ledger = Ledger()
    stop = threading.Event()
    problems: list[list[str]] = [[] for _ in range(CLIENTS)]
    counts = [0] * CLIENTS

    def run_client(i: int) -> None:
        counts[i] = _client(live.url, i, ledger, stop, problems[i])

    writers = [
        threading.Thread(target=_writer, args=(live.url, w, ledger, stop)) for w in range(WRITERS)
    ]
    clients = [threading.Thread(target=run_client, args=(i,)) for i in range(CLIENTS)]
    for t in writers + clients:
        t.start()
    # A few seconds, and at least a few deletes per writer (writes queue behind the clients'
    # reads on a busy machine); the cap only turns a hang into a failure.
    started = time.monotonic()
    while time.monotonic() - started < SECONDS or len(ledger.deleted_at) < 2 * WRITERS:
        assert time.monotonic() - started < 120, "the writers made no progress"
        time.sleep(0.05)
    stop.set()
    for t in writers + clients:
        t.join(timeout=120)
        assert not t.is_alive()

    assert not ledger.errors, ledger.errors[:5]
    found = [p for ps in problems for p in ps]
    assert not found, found[:5]
    assert sum(counts) >= CLIENTS, "the clients hardly ran"
    print(f"{sum(counts)} reads, {len(ledger.created)} created, {len(ledger.deleted_at)} deleted")

    # No lost writes: exactly the live documents, each with its latest text, searchable.
    with httpx.Client(base_url=live.url, timeout=60) as c:
        listed = {d["id"] for d in c.get("/v1/documents").json()["documents"]}
        assert listed == {f"p{k}" for k in ledger.latest}
        for k, text in ledger.latest.items():
            assert c.get(f"/v1/documents/p{k}").json()["text"] == text
            hits = c.post("/v1/search", json={"query": f"代号{_code(k)}", "top_k": 1}).json()
            assert hits["hits"][0]["doc_id"] == f"p{k}"
        for doc_id in ledger.deleted_at:
            assert c.get(f"/v1/documents/{doc_id}").status_code == 404
    speeches: Speeches = live.app.state.speeches
    stored = set(speeches.store.passage_ids())
    assert set(speeches.retriever.vectors.ids().tolist()) == stored
    assert set(speeches.retriever.bm25.pids().tolist()) == stored
