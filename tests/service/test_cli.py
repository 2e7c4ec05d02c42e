"""The ``speechqa`` command in subprocesses, and ``serve`` answering over real HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.config import PROJECT_ROOT
from tests.conftest import SEED_000, SEED_002, SEED_DIR


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "data"
    done = run_cli("ingest", SEED_DIR, "--data-dir", path)
    assert done.returncode == 0, done.stderr
    assert f"created   {SEED_000}" in done.stdout and f"created   {SEED_002}" in done.stdout
    return path


def test_ingest_is_idempotent_and_reports_failures(data_dir: Path, tmp_path: Path) -> None:
    again = run_cli("ingest", SEED_DIR, "--data-dir", data_dir)
    assert again.returncode == 0
    assert "0 created, 0 replaced, 2 unchanged, 0 failed" in again.stdout
    bad = tmp_path / "broken.txt"
    bad.write_bytes(b"\xff\xfe\xfa not utf-8 \xc3")
    good = tmp_path / "good.md"
    good.write_text("# 会议\n一、要点\n认真落实工作部署。\n", encoding="utf-8")
    mixed = run_cli("ingest", bad, good, tmp_path / "missing.txt", "--data-dir", data_dir)
    assert mixed.returncode == 1
    assert "failed    broken" in mixed.stdout and "created   good" in mixed.stdout
    assert "1 created, 0 replaced, 0 unchanged, 2 failed" in mixed.stdout
    assert "not found" in mixed.stderr


def test_ask_and_summarize_without_a_server(data_dir: Path) -> None:
    asked = run_cli("ask", "招商引资要牢树什么导向？", "--json", "--data-dir", data_dir)
    assert asked.returncode == 0, asked.stderr
    body = json.loads(asked.stdout)
    assert body["answerable"] and "两个不能" in body["answer"]
    assert body["citations"][0]["doc_id"] == SEED_000

    plain = run_cli("ask", "本县的县长是谁？", "--data-dir", data_dir)
    assert plain.returncode == 0 and "Not in these speeches." in plain.stdout

    summ = run_cli("summarize", SEED_002, "--section", "2", "--json", "--data-dir", data_dir)
    assert summ.returncode == 0, summ.stderr
    (section,) = json.loads(summ.stdout)["sections"]
    assert section["section_id"] == "2" and section["sentences"]
    assert section["sentences"][0]["text"].startswith("第二，认清历史方位")

    missing = run_cli("summarize", "nope", "--data-dir", data_dir)
    assert missing.returncode == 2 and "no document" in missing.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    # Plain `speechqa serve` from a working directory: data under it, the project's seeds.
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
    else:
        proc.kill()
        pytest.fail("server did not start")
    yield url, proc
    proc.terminate()
    proc.wait(timeout=30)


def test_serve_defaults_answer_over_http(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, proc = server
    info = httpx.get(f"{url}/v1/info", timeout=60).json()
    assert info["documents"] == 2
    assert (tmp_path / "data" / "speechqa.sqlite3").exists()
    body = httpx.post(
        f"{url}/v1/ask", json={"question": "县委的总体思路叫什么？"}, timeout=60
    ).json()
    assert body["answerable"] and "1515" in body["answer"]
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    assert f"serving on {url}" in out
    assert "loaded 2 documents" in out
