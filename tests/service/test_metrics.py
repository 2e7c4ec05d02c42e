"""/metrics in the Prometheus text format, request ids, and one structured log line a request."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.logs import JsonFormatter
from service.config import PROJECT_ROOT, Settings

DOC = "同志们：\n一、抓好防汛\n要在汛前完成全部12座水库的除险加固，确保安全度汛。\n"
_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|\+Inf|NaN))$"
)


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample by metric name; fails on any line that is not valid exposition format."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = _SAMPLE.match(line)
        assert m, f"not exposition format: {line!r}"
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m["labels"] or ""))
        out.setdefault(m["name"], []).append((labels, float(m["value"])))
    for name in out:
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or base in types, f"{name} has no # TYPE"
    return out


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("metrics") / "data")
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/documents", json={"id": "d1", "text": DOC}).status_code == 201
        yield c


def test_metrics_count_requests_latency_documents_and_passages(app: TestClient) -> None:
    app.get("/v1/documents/d1")
    app.get("/v1/documents/nope")
    app.get("/v1/documents/nope")
    app.post("/v1/search", json={"query": "水库"})
    app.get("/no/such/path/at/all")
    resp = app.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse(resp.text)

    def requests(route: str, status: str, method: str = "GET") -> float:
        return sum(
            v
            for labels, v in samples["speechqa_http_requests_total"]
            if labels == {"method": method, "route": route, "status": status}
        )

    assert requests("/v1/documents/{doc_id}", "200") == 1
    assert requests("/v1/documents/{doc_id}", "404") == 2
    assert requests("/v1/search", "200", "POST") == 1
    assert requests("/v1/documents", "201", "POST") == 1
    assert requests("unmatched", "404") == 1  # paths do not become labels
    assert not any("nope" in str(labels) for labels, _ in samples["speechqa_http_requests_total"])
    # The histogram: cumulative buckets, +Inf equal to the count.
    name = "speechqa_http_request_duration_seconds"
    key = {"method": "GET", "route": "/v1/documents/{doc_id}"}
    buckets = [(lab["le"], v) for lab, v in samples[f"{name}_bucket"] if lab.items() > key.items()]
    values = [v for _, v in buckets]
    assert values == sorted(values) and buckets[-1] == ("+Inf", 3)
    [(_, count)] = [(lab, v) for lab, v in samples[f"{name}_count"] if lab == key]
    [(_, total)] = [(lab, v) for lab, v in samples[f"{name}_sum"] if lab == key]
    assert count == 3 and total > 0
    info = app.get("/v1/info").json()
    assert samples["speechqa_documents"] == [({}, info["documents"])]
    assert samples["speechqa_passages"] == [({}, info["passages"])]


def test_metrics_are_guarded_by_the_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_keys=["w"], read_only_api_keys=["r"])
    with TestClient(create_app(settings)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"Authorization": "Bearer r"}).status_code == 200
        text = c.get("/metrics", headers={"Authorization": "Bearer w"}).text
        assert 'route="/metrics",status="401"' in text


def test_request_ids(app: TestClient) -> None:
    given = app.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
    assert given.headers["x-request-id"] == "abc-123.x"
    made = app.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    bad = app.get("/healthz", headers={"X-Request-ID": "no spaces\tor tabs" * 20})
    assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])


def test_one_json_access_line_per_request(app: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("speechqa.access")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        app.get("/v1/documents/d1", headers={"X-Request-ID": "req-1"})
        app.post("/v1/search", json={"query": ""})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["method"] == "GET" and first["path"] == "/v1/documents/d1"
    assert first["route"] == "/v1/documents/{doc_id}" and first["status"] == 200
    assert first["request_id"] == "req-1" and first["duration_ms"] >= 0
    assert first["logger"] == "speechqa.access" and first["level"] == "info" and first["ts"]
    assert second["status"] == 422 and second["method"] == "POST"


def test_serve_writes_json_lines_and_never_the_key(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(PROJECT_ROOT),
        "SPEECHQA_LOG_FORMAT": "json",
        "SPEECHQA_API_KEYS": "secret-key-5d1e",
    }
    cmd = [sys.executable, "-m", "service.cli", "serve", "--no-seeds", "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(tmp_path / "data")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        auth = {"Authorization": "Bearer secret-key-5d1e", "X-Request-ID": "probe-7"}
        assert httpx.get(f"{url}/v1/info", headers=auth, timeout=30).status_code == 200
        assert httpx.get(f"{url}/v1/info", timeout=30).status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    access = [r for r in records if r["logger"] == "speechqa.access"]
    info = [r for r in access if r["path"] == "/v1/info"]
    assert [r["status"] for r in info] == [200, 401]
    assert info[0]["request_id"] == "probe-7"
    assert any("loaded 0 documents" in r["message"] for r in records)
    assert "secret-key-5d1e" not in err
