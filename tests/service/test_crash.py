"""Crashes: SIGKILL the server (and the CLI) in the middle of ingesting a large batch, restart,
and prove the index and the metadata agree; and the data dir's version is checked at start."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from embeddings.vector_index import VectorIndex
from service.config import PROJECT_ROOT, Settings
from service.core import Speeches
from service.outline import parse_outline
from service.store import DATA_DIR_VERSION, DataDirError, Store

FILES = 200  # the most files one upload may carry (max_upload_files)


def _code(i: int) -> str:
    """Four CJK characters unique to document i: their bigrams find it and nothing else."""
    rng = random.Random(i)
    return "".join(chr(0x4E00 + rng.randrange(0x5000)) for _ in range(4))


def _speech(i: int) -> str:
    parts = [f"第{i}号专项工作会议讲话\n同志们：\n今天召开专项工作会议，本项目代号为{_code(i)}。"]
    for n, head in enumerate(["一、", "二、", "三、"]):
        parts.append(f"{head}抓好第{n + 1}项重点任务\n")
        parts.append(
            "".join(f"要把第{i}号项目的第{k}批资金用好管好，确保按期完成。" for k in range(12))
            + "\n"
        )
    return "\n".join(parts)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch")
    for i in range(FILES):
        (folder / f"s{i:04d}.txt").write_text(_speech(i), encoding="utf-8")
    return folder


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(PROJECT_ROOT),
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "service.cli", "serve", "--no-seeds", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(data_dir)],
        env=_env(SPEECHQA_INDEX_FLUSH_SECONDS="0"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server stopped during start-up"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("server did not start")


def _check_files_after_crash(data_dir: Path) -> tuple[int, int]:
    """Before anything reopens the dir: SQLite intact, the FAISS file whole (old or new, never
    torn) and holding no vector of a passage SQLite lacks. Returns (documents, passages)."""
    db = sqlite3.connect(data_dir / "speechqa.sqlite3")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in db.execute("SELECT id FROM passages")}
        docs = db.execute("SELECT count(*) FROM documents").fetchone()[0]
        # No document without its passages, no passage without its document.
        assert not db.execute(
            "SELECT id FROM documents WHERE id NOT IN (SELECT doc_id FROM passages)"
        ).fetchall()
        assert not db.execute(
            "SELECT id FROM passages WHERE doc_id NOT IN (SELECT id FROM documents)"
        ).fetchall()
    finally:
        db.close()
    index = data_dir / "passages.faiss"
    if index.exists():
        vectors = VectorIndex.load(index, 512)
        assert set(vectors.ids().tolist()) <= stored
    return docs, len(stored)


def _check_consistent(data_dir: Path, expected: set[str] | None = None) -> set[str]:
    """Open the dir (which reconciles) and prove index and metadata agree, every document whole
    and searchable by the code only it holds."""
    with Speeches(Settings(data_dir=data_dir, index_flush_seconds=0)) as s:
        assert s.startup is not None and s.startup.orphans_removed == 0
        stored = set(s.store.passage_ids())
        assert set(s.retriever.vectors.ids().tolist()) == stored
        assert set(s.retriever.bm25.pids().tolist()) == stored
        ids = s.store.document_ids()
        if expected is not None:
            assert ids == expected
        for doc_id in sorted(ids):
            doc = s.get_document(doc_id)
            i = int(doc_id[1:])
            assert doc.text == _speech(i)
            outline = parse_outline(doc.text, max_passage_chars=s.passage_chars)
            assert len(s.store.passage_ids([doc_id])) == len(outline.passages)
            hits = s.search(_code(i), 1)
            assert hits and hits[0].doc_id == doc_id, doc_id
    return ids


def test_sigkill_of_the_server_during_an_upload_batch(batch: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    files = sorted(batch.glob("*.txt"))
    parts = [("files", (p.name, p.read_bytes(), "text/plain")) for p in files]
    proc = _serve(data_dir, port)
    answers: list[httpx.Response] = []
    try:

        def upload() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
                answers.append(httpx.post(f"{url}/v1/documents/upload", files=parts, timeout=300))

        sender = threading.Thread(target=upload, daemon=True)
        sender.start()
        deadline = time.monotonic() + 120
        while True:
            n = httpx.get(f"{url}/v1/info", timeout=30).json()["documents"]
            if n >= FILES // 4:
                break
            assert not answers, answers[0].text[:500]  # it must not have finished
            assert time.monotonic() < deadline, "the upload made no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        sender.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    docs, _ = _check_files_after_crash(data_dir)
    assert FILES // 4 <= docs < FILES, "the kill did not land in the middle of the batch"

    # Restart: the same upload again completes the batch; what was stored is unchanged.
    proc = _serve(data_dir, port)
    try:
        assert httpx.get(f"{url}/v1/info", timeout=30).json()["documents"] == docs
        resp = httpx.post(f"{url}/v1/documents/upload", files=parts, timeout=300).json()
        statuses = [d["status"] for d in resp["documents"]]
        assert statuses.count("unchanged") == docs and statuses.count("created") == FILES - docs
        info = httpx.get(f"{url}/v1/info", timeout=30).json()
        assert info["documents"] == FILES
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    _check_consistent(data_dir, {f"s{i:04d}" for i in range(FILES)})


def test_sigkill_of_the_cli_ingest_and_resume(batch: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cmd = [sys.executable, "-m", "service.cli", "ingest", "--no-progress"]
    cmd += ["--data-dir", str(data_dir), str(batch)]
    proc = subprocess.Popen(
        cmd, env=_env(SPEECHQA_INDEX_FLUSH_SECONDS="0"), stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    created = 0
    for line in proc.stdout:
        created += line.startswith("created")
        if created >= FILES // 3:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    docs, _ = _check_files_after_crash(data_dir)
    assert created <= docs < FILES
    stored = _check_consistent(data_dir)
    assert len(stored) == docs
    # Run it again: the rest is ingested, nothing twice, nothing lost.
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{FILES - docs} created, 0 replaced, {docs} unchanged, 0 failed" in done.stdout
    _check_consistent(data_dir, {f"s{i:04d}" for i in range(FILES)})


# -- the data dir's version -------------------------------------------------------------------
def test_a_new_data_dir_is_stamped_and_an_old_one_migrated(tmp_path: Path) -> None:
    new = tmp_path / "new"
    with Speeches(Settings(data_dir=new)):
        pass
    assert (new / "VERSION").read_text().strip() == str(DATA_DIR_VERSION)
    # A dir from before the VERSION file (layout 0) opens, keeps its data and is stamped.
    old = tmp_path / "old"
    with Speeches(Settings(data_dir=old)) as s:
        s.put_document("一、抓好防汛\n要完成水库的除险加固。\n", doc_id="kept")
    (old / "VERSION").unlink()
    with Speeches(Settings(data_dir=old)) as s:
        assert s.store.document_ids() == {"kept"}
    assert (old / "VERSION").read_text().strip() == str(DATA_DIR_VERSION)


def test_a_newer_data_dir_is_refused_and_left_alone(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with Speeches(Settings(data_dir=data_dir)) as s:
        s.put_document("一、抓好防汛\n要完成水库的除险加固。\n", doc_id="kept")
    (data_dir / "VERSION").write_text(f"{DATA_DIR_VERSION + 1}\n")
    before = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()}
    with pytest.raises(DataDirError, match="newer than this speechqa"):
        Speeches(Settings(data_dir=data_dir)).open()
    after = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.is_file()}
    assert after == before
    # The CLI says so and exits 2.
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "ask", "水库", "--data-dir", str(data_dir)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "newer than this speechqa" in done.stderr
    # A SQLite file of a newer schema is refused too.
    (data_dir / "VERSION").write_text(f"{DATA_DIR_VERSION}\n")
    db = sqlite3.connect(data_dir / "speechqa.sqlite3")
    with db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(DataDirError, match="schema version 99"):
        Store(data_dir / "speechqa.sqlite3")
    (data_dir / "VERSION").write_text("garbage\n")
    with pytest.raises(DataDirError, match="layout number"):
        Speeches(Settings(data_dir=data_dir)).open()
