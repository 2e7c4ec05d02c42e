"""Access: API keys (plain or sha256-hashed, full or read-only), public paths, CORS, exposure."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.api.security import (
    ExposureError,
    KeyRing,
    check_exposure,
    hash_key,
    is_loopback,
)
from service.config import Settings

FULL = "full-key-0a7e"
HASHED = "hashed-key-41c2"
READER = "reader-key-93bd"
DOC = "同志们：\n一、抓好防汛\n要在汛前完成全部12座水库的除险加固。\n"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return body["error"]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("keyed") / "data",
        api_keys=[FULL, hash_key(HASHED)],
        read_only_api_keys=[READER],
        cors_origins=["https://intranet.example"],
    )
    with TestClient(create_app(settings)) as c:
        assert c.post(
            "/v1/documents", json={"id": "d1", "text": DOC}, headers=_auth(FULL)
        ).is_success
        yield c


# Every API route, with a body that would be valid; the reads a read-only key may use.
READS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/info", None),
    ("GET", "/v1/documents", None),
    ("GET", "/v1/documents/d1", None),
    ("GET", "/v1/documents/d1/sections", None),
    ("POST", "/v1/search", {"query": "水库"}),
    ("POST", "/v1/ask", {"question": "要完成多少座水库的除险加固？"}),
    ("POST", "/v1/summarize", {"doc_id": "d1"}),
    ("GET", "/v1/models", None),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "你好"}]}),
    ("GET", "/v1/jobs", None),
    ("GET", "/metrics", None),
]
WRITES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", "/v1/documents", {"id": "w1", "text": DOC}),
    ("DELETE", "/v1/documents/d1", None),
    ("POST", "/v1/documents/upload", None),
    ("POST", "/v1/batch/summaries", {"all": True}),
    ("DELETE", "/v1/jobs/nope", None),
]


def test_every_route_but_the_public_ones_needs_a_key(keyed: TestClient) -> None:
    for method, path, body in READS + WRITES:
        for headers in ({}, _auth("wrong"), {"Authorization": f"Basic {FULL}"}, _auth("")):
            resp = keyed.request(method, path, json=body, headers=headers)
            assert _error(resp, 401)["code"] == "unauthorized", (method, path)
            assert resp.headers["www-authenticate"].startswith("Bearer")
    # Unknown paths too: nothing tells a caller without a key which routes exist.
    _error(keyed.get("/v1/nothing-here"), 401)
    # Public: liveness, the chat page and its files, the API's description.
    for path in ("/healthz", "/", "/chat", "/static/chat.js", "/openapi.json", "/docs"):
        assert keyed.get(path).status_code == 200, path
    # A public prefix does not open the rest by walking out of it.
    for path in ("/static/../v1/info", "/static/%2e%2e/v1/info", "/static/..%2fv1%2finfo"):
        resp = keyed.get(path)
        assert resp.status_code in (401, 404) and "documents" not in resp.text, path
    # The description declares the key, so /docs offers to send it.
    schema = keyed.get("/openapi.json").json()
    assert schema["security"] == [{"apiKey": []}]
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_full_plain_and_hashed_keys_may_do_everything(keyed: TestClient) -> None:
    for key in (FULL, HASHED):
        for method, path, body in READS:
            resp = keyed.request(method, path, json=body, headers=_auth(key))
            assert resp.status_code == 200, (key, path, resp.text)
        made = keyed.post("/v1/documents", json={"id": "w1", "text": DOC}, headers=_auth(key))
        assert made.status_code in (200, 201)
        assert keyed.delete("/v1/documents/w1", headers=_auth(key)).status_code == 204
    # The hash itself is not a key.
    _error(keyed.get("/v1/info", headers=_auth(hash_key(HASHED))), 401)


def test_a_read_only_key_reads_but_cannot_write(keyed: TestClient) -> None:
    for method, path, body in READS:
        resp = keyed.request(method, path, json=body, headers=_auth(READER))
        assert resp.status_code == 200, (path, resp.text)
    before = keyed.get("/v1/documents", headers=_auth(READER)).json()
    for method, path, body in WRITES:
        resp = keyed.request(method, path, json=body, headers=_auth(READER))
        assert _error(resp, 403)["code"] == "forbidden", (method, path)
    assert keyed.get("/v1/documents", headers=_auth(READER)).json() == before


def test_cors_for_the_configured_origin_only(keyed: TestClient) -> None:
    pre = keyed.options(
        "/v1/ask",
        headers={
            "Origin": "https://intranet.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == "https://intranet.example"
    assert "authorization" in pre.headers["access-control-allow-headers"].lower()
    other = keyed.options(
        "/v1/ask",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers
    # A refused request still carries CORS headers, so a browser front end can read the 401.
    denied = keyed.get("/v1/info", headers={"Origin": "https://intranet.example"})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == "https://intranet.example"


def test_keys_are_kept_as_digests_and_bad_hashes_fail_at_start(tmp_path: Path) -> None:
    ring = KeyRing(["plain", hash_key("other")], ["ro"])
    assert ring.access("plain") == "write" and ring.access("other") == "write"
    assert ring.access("ro") == "read" and ring.access("nope") is None
    assert "plain" not in repr(ring.__dict__)
    assert ring.access(hash_key("other")) is None
    # A key that is both: the stronger access wins.
    assert KeyRing(["k"], ["k"]).access("k") == "write"
    with pytest.raises(ValueError, match="64 hex"):
        create_app(Settings(data_dir=tmp_path, api_keys=["sha256:abc"]))


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEECHQA_API_KEYS", f" a1 ,{hash_key('b2')},")
    monkeypatch.setenv("SPEECHQA_READ_ONLY_API_KEYS", "r1")
    monkeypatch.setenv("SPEECHQA_CORS_ORIGINS", "https://a.example,https://b.example")
    monkeypatch.setenv("SPEECHQA_LOG_FORMAT", "json")
    s = Settings()
    assert s.api_keys == ["a1", hash_key("b2")] and s.read_only_api_keys == ["r1"]
    assert s.cors_origins == ["https://a.example", "https://b.example"]
    assert s.log_format == "json" and s.host == "127.0.0.1" and not s.allow_unauthenticated


def test_without_keys_loopback_is_served_with_a_warning_and_other_hosts_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("") and not is_loopback("10.1.2.3")
    open_settings = Settings(data_dir=tmp_path / "a")
    with caplog.at_level(logging.WARNING, logger="speechqa.security"):
        check_exposure(open_settings)
    assert "no API keys" in caplog.text
    for host in ("0.0.0.0", "::", "192.168.1.10"):
        with pytest.raises(ExposureError, match="SPEECHQA_API_KEYS"):
            check_exposure(open_settings, host)
    # The app itself refuses too, for whoever runs it with another server than `speechqa serve`.
    exposed = Settings(data_dir=tmp_path / "b", host="0.0.0.0")
    with pytest.raises(ExposureError), TestClient(create_app(exposed)):
        pass
    caplog.clear()
    allowed = Settings(data_dir=tmp_path / "c", host="0.0.0.0", allow_unauthenticated=True)
    with caplog.at_level(logging.WARNING, logger="speechqa.security"):
        check_exposure(allowed)
    assert "NO API KEYS" in caplog.text
    check_exposure(Settings(data_dir=tmp_path / "d", host="0.0.0.0", api_keys=["k"]))


def test_serve_refuses_a_public_host_without_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from service.cli import main

    code = main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path), "--no-seeds"])
    assert code == 2
    assert "refusing to serve on 0.0.0.0 without API keys" in capsys.readouterr().err
    assert not (tmp_path / "speechqa.sqlite3").exists()


def test_hash_key_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    import io

    from service.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret\n"))
    assert main(["hash-key"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == hash_key("s3cret") and printed.startswith("sha256:") and len(printed) == 71
