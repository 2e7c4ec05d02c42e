"""Bad input: each a clear 4xx in the API's error shape, and nothing stored changes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings

DOC = "同志们：\n一、抓好防汛\n要在汛前完成全部12座水库的除险加固，确保安全度汛。\n"
LIMIT = 64 * 1024
UPLOAD_LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("bad") / "data",
        max_request_bytes=LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
        max_document_chars=10_000,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        assert c.post("/v1/documents", json={"id": "d1", "text": DOC}).status_code == 201
        yield c


def _state(c: TestClient) -> Any:
    docs = c.get("/v1/documents").json()["documents"]
    info = c.get("/v1/info").json()
    return docs, info["documents"], info["passages"], c.get("/v1/documents/d1").json()


def _rejected(c: TestClient, resp: Any, status: int | tuple[int, ...], before: Any) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert resp.status_code in statuses, (resp.status_code, resp.text[:300])
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] and body["error"]["message"]
    assert _state(c) == before
    return body["error"]["message"]


def _raw(c: TestClient, path: str, content: bytes, **headers: str) -> Any:
    return c.post(path, content=content, headers={"content-type": "application/json", **headers})


def test_bodies_over_the_limit_by_content_length_and_streamed(app: TestClient) -> None:
    before = _state(app)
    big = json.dumps({"id": "big", "text": "水" * LIMIT}).encode()
    msg = _rejected(app, _raw(app, "/v1/documents", big), 413, before)
    assert str(LIMIT) in msg

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"id": "big", "text": "'
        for _ in range(200):
            yield "水".encode() * 1000
        yield b'"}'

    resp = app.post("/v1/documents", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in resp.request.headers
    _rejected(app, resp, 413, before)
    # Uploads have their own, larger limit, streamed or not.
    files = {"files": ("big.txt", ("一、抓好防汛\n" * 30_000).encode(), "text/plain")}
    _rejected(app, app.post("/v1/documents/upload", files=files), 413, before)
    # Just under the limit is fine.
    padded = json.dumps({"query": "水库"}).encode() + b" " * 60_000
    assert _raw(app, "/v1/search", padded).status_code == 200


def test_text_length_limits(app: TestClient) -> None:
    before = _state(app)
    _rejected(app, app.post("/v1/documents", json={"text": "水库" * 6000}), 413, before)
    _rejected(app, app.post("/v1/documents", json={"text": DOC, "title": "题" * 501}), 422, before)
    for path, field in (("/v1/ask", "question"), ("/v1/search", "query")):
        _rejected(app, app.post(path, json={field: "水库" * 1001}), 422, before)
        _rejected(app, app.post(path, json={field: ""}), 422, before)
        _rejected(app, app.post(path, json={field: "   \n "}), 400, before)
        _rejected(app, app.post(path, json={field: "？？。。"}), 400, before)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/search", {"query": "水库", "top_k": 0}),
        ("/v1/search", {"query": "水库", "top_k": 51}),
        ("/v1/search", {"query": "水库", "top_k": -1}),
        ("/v1/search", {"query": "水库", "top_k": 10**30}),
        ("/v1/search", {"query": "水库", "top_k": 2.5}),
        ("/v1/search", {"query": "水库", "top_k": "many"}),
        ("/v1/ask", {"question": "水库", "top_k": 1000}),
        ("/v1/summarize", {"doc_id": "d1", "max_sentences": 0}),
        ("/v1/summarize", {"doc_id": "d1", "max_sentences": 201}),
        ("/v1/summarize", {"doc_id": "d1", "max_chars": -5}),
        ("/v1/summarize", {"doc_id": "d1", "ratio": 0}),
        ("/v1/summarize", {"doc_id": "d1", "ratio": 1.5}),
        ("/v1/batch/summaries", {"all": True, "max_chars": 0}),
        ("/v1/jobs?limit=0", None),
    ],
)
def test_top_k_and_budget_bounds(app: TestClient, path: str, body: Any) -> None:
    before = _state(app)
    resp = app.post(path, json=body) if body is not None else app.get(path)
    _rejected(app, resp, 422, before)


def test_nan_and_infinity_are_not_numbers_here(app: TestClient) -> None:
    before = _state(app)
    for raw in (b'{"doc_id": "d1", "ratio": NaN}', b'{"doc_id": "d1", "max_chars": Infinity}'):
        _rejected(app, _raw(app, "/v1/summarize", raw), 422, before)


def test_control_characters(app: TestClient) -> None:
    before = _state(app)
    for bad in ("\x00", "\x01", "\x07", "\x1b[31m", "\x7f"):
        _rejected(app, app.post("/v1/ask", json={"question": f"水库{bad}多少"}), 422, before)
        _rejected(app, app.post("/v1/search", json={"query": f"水库{bad}"}), 422, before)
        _rejected(app, app.post("/v1/documents", json={"text": DOC + bad}), 400, before)
        title = {"id": "d1", "text": DOC, "title": f"标题{bad}"}
        _rejected(app, app.post("/v1/documents", json=title), 422, before)
    # Tabs and line ends are text.
    assert app.post("/v1/search", json={"query": "水库\t除险\r\n加固"}).status_code == 200


def test_invalid_utf8_and_lone_surrogates(app: TestClient) -> None:
    before = _state(app)
    for raw in (b'{"text": "\xff\xfe\xfd"}', b'{"text": "\xe6\xb0"}'):
        msg = _rejected(app, _raw(app, "/v1/documents", raw), 400, before)
        assert "UTF-8" in msg
    # A surrogate encoded in UTF-8 bytes decodes (json's surrogatepass) to a lone surrogate.
    msg = _rejected(app, _raw(app, "/v1/documents", b'{"text": "\xed\xa0\x80"}'), 422, before)
    assert "unicode" in msg.lower()
    for raw in (
        b'{"text": "\\ud800 abc"}',
        b'{"id": "s1", "text": "\\udfff\\u6c34\\u5e93"}',
        b'{"text": "ok text", "title": "\\ud83d"}',
        b'{"text": "ok text", "metadata": {"k": "\\ud800"}}',
    ):
        _rejected(app, _raw(app, "/v1/documents", raw), (400, 422), before)
    _rejected(app, _raw(app, "/v1/ask", b'{"question": "\\udc00\\u6c34"}'), (400, 422), before)
    files = {"files": ("bad.txt", b"\xff\xfe\x00\xd8" * 10, "text/plain")}
    _rejected(app, app.post("/v1/documents/upload", files=files), (400, 415, 422), before)


@pytest.mark.parametrize("text", ["", " ", "\n\n\t\n", "\u3000\u3000", "。，！？……", "\ufeff"])
def test_empty_and_whitespace_only_documents(app: TestClient, text: str) -> None:
    before = _state(app)
    _rejected(app, app.post("/v1/documents", json={"id": "d1", "text": text}), (400, 422), before)
    files = {"files": ("blank.txt", text.encode(), "text/plain")}
    _rejected(app, app.post("/v1/documents/upload", files=files), 400, before)


def test_deeply_nested_json(app: TestClient) -> None:
    before = _state(app)
    for depth in (10_000, 100_000):
        raw = b'{"text": "x", "metadata": ' + b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
        if len(raw) <= LIMIT:
            _rejected(app, _raw(app, "/v1/documents", raw), 400, before)
        lists = b'{"query": ' + b"[" * depth + b"]" * depth + b"}"
        if len(lists) <= LIMIT:
            _rejected(app, _raw(app, "/v1/search", lists), 400, before)
    # Parsed, but deeper than metadata may be: refused before anything is stored.
    for depth in (9, 50, 500):
        raw = b'{"id": "n1", "text": "' + DOC.encode("unicode_escape") + b'", "metadata": '
        raw += b'{"a": ' * depth + b"1" + b"}" * depth + b"}"
        msg = _rejected(app, _raw(app, "/v1/documents", raw), 422, before)
        assert "nested" in msg
    wide = {"id": "n1", "text": DOC, "metadata": {"k": "v" * 70_000}}
    _rejected(app, app.post("/v1/documents", json=wide), (413, 422), before)
    files = {"files": ("n1.txt", DOC.encode(), "text/plain")}
    nested = json.dumps(json.loads("[" * 20 + "]" * 20))
    resp = app.post("/v1/documents/upload", files=files, data={"metadata": f'{{"a": {nested}}}'})
    _rejected(app, resp, 400, before)


@pytest.mark.parametrize(
    "doc_id",
    ["../x", "../../etc/passwd", "a/b", "/abs", "a\x00b", "..", ".hidden", "-x", "", "a b"],
)
def test_path_tricks_in_ids_are_refused(app: TestClient, doc_id: str) -> None:
    before = _state(app)
    _rejected(app, app.post("/v1/documents", json={"id": doc_id, "text": DOC}), 422, before)
    _rejected(app, app.post("/v1/summarize", json={"doc_id": doc_id or "x/"}), (404, 422), before)
    _rejected(app, app.post("/v1/search", json={"query": "水库", "doc_ids": [doc_id]}), 404, before)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/documents/..%2Fd1",
        "/v1/documents/..%2F..%2Fetc%2Fpasswd",
        "/v1/documents/%2e%2e",
        "/v1/documents/d1%00",
        "/v1/documents/%00",
        "/v1/documents/d1%2F..%2Fd1",
        "/v1/documents/%2Fetc%2Fpasswd",
    ],
)
def test_path_tricks_in_urls_are_not_found(app: TestClient, path: str) -> None:
    before = _state(app)
    _rejected(app, app.get(path), (404, 405), before)
    _rejected(app, app.delete(path), (404, 405), before)
    _rejected(app, app.get(path + "/sections"), (404, 405), before)


def test_upload_file_names_cannot_leave_the_data_dir(app: TestClient) -> None:
    files = {"files": ("../../outside.txt", DOC.encode(), "text/plain")}
    resp = app.post("/v1/documents/upload", files=files)
    assert resp.status_code == 201, resp.text
    [doc] = resp.json()["documents"]
    assert doc["doc_id"] == "outside" and doc["filename"] == "outside.txt"
    assert app.delete("/v1/documents/outside").status_code == 204


def test_unreadable_content_length_is_a_400(app: TestClient) -> None:
    import anyio

    from service.api.middleware import BodyLimitMiddleware

    sent: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        raise AssertionError("the app must not run")

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    mw = BodyLimitMiddleware(inner, limit=10, upload_limit=10, upload_paths=set())
    scope = {"type": "http", "path": "/v1/ask", "method": "POST", "headers": []}
    anyio.run(mw, {**scope, "headers": [(b"content-length", b"12abc")]}, receive, send)
    assert sent[0]["status"] == 400
    sent.clear()
    anyio.run(mw, {**scope, "headers": [(b"content-length", b"11")]}, receive, send)
    assert sent[0]["status"] == 413


@pytest.fixture(scope="module")
def default_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The default limits: 5,000,000 characters a document, 32 MiB a request."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("defaults") / "data")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_a_5mb_single_line_document(default_app: TestClient) -> None:
    c = default_app
    # 5 MB of UTF-8 Chinese on one line: 1.75 million characters, under the limit: stored and
    # searchable (the line is cut into passages between sentences).
    line = "改革发展稳定是全县工作的主线。" * (5 * 1024 * 1024 // 45)
    assert len(line.encode()) > 5_000_000 and "\n" not in line
    made = c.post("/v1/documents", json={"id": "one-line", "text": line})
    assert made.status_code == 201, made.text[:300]
    assert made.json()["paragraphs"] == 1 and made.json()["chars"] == len(line)
    hits = c.post("/v1/search", json={"query": "改革发展稳定", "doc_ids": ["one-line"]}).json()
    assert hits["hits"] and hits["hits"][0]["doc_id"] == "one-line"
    assert c.delete("/v1/documents/one-line").status_code == 204
    # 5 MiB of ASCII on one line is over 5,000,000 characters: a clear 413, nothing stored.
    resp = c.post("/v1/documents", json={"id": "too-long", "text": "a" * (5 * 1024 * 1024)})
    assert resp.status_code == 413 and "5000000" in resp.json()["error"]["message"]
    assert c.get("/v1/documents/too-long").status_code == 404
    assert c.get("/v1/info").json()["documents"] == 0
