"""Property-based fuzzing (hypothesis): whatever a client sends, never a 5xx, and a refused
request changes nothing. Derandomised with a fixed number of examples, so a run is reproducible.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.api.app import create_app
from service.config import Settings
from service.core import Speeches
from service.errors import ServiceError

DOC = (
    "同志们：\n今天召开全县水利工作会议。\n一、抓好防汛抗旱\n要在汛前完成全部12座水库的除险加固。\n"
    "二、抓好农田水利\n今年新建高效节水灌溉面积3.5万亩。\n"
)
FUZZ = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Any character, lone surrogates and controls included; and words the speeches hold.
any_text = st.one_of(
    st.text(st.characters(codec=None, categories=None), max_size=40),
    st.text(st.sampled_from("水库防汛一二、。，\n\t 　：（）0123abc"), max_size=40),
    st.sampled_from(
        ["", " ", "d1", "../d1", "a/b", "\x00", "水库", "speechqa:d1", "1", "preamble"]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)

FIELDS = {
    "/v1/documents": ["id", "title", "text", "metadata"],
    "/v1/search": ["query", "top_k", "doc_ids", "filter"],
    "/v1/ask": ["question", "top_k", "doc_ids", "filter"],
    "/v1/summarize": [
        "doc_id",
        "section_id",
        "doc_ids",
        "filter",
        "max_sentences",
        "max_chars",
        "ratio",
        "include_subsections",
    ],
    "/v1/batch/summaries": ["all", "doc_ids", "filter", "max_sentences", "ratio"],
    "/v1/chat/completions": ["model", "messages", "stream", "doc_ids", "n", "temperature"],
}
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "bot"]), "content": json_values}
    ),
    max_size=3,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(sorted(FIELDS)))
    names = draw(st.lists(st.sampled_from(FIELDS[path]), unique=True, max_size=5))
    body: dict[str, Any] = {}
    for name in names:
        if name == "messages":
            body[name] = draw(messages)
        elif name in ("text", "question", "query"):
            body[name] = draw(any_text)
        else:
            body[name] = draw(json_values)
    if draw(st.booleans()):
        body.update(draw(st.dictionaries(any_text, json_values, max_size=2)))
    return path, json.dumps(body, allow_nan=True).encode()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    with TestClient(create_app(Settings(data_dir=data)), raise_server_exceptions=False) as c:
        assert c.post("/v1/documents", json={"id": "d1", "text": DOC}).status_code == 201
        yield c


def _counts(c: TestClient) -> tuple[int, int]:
    info = c.app.state.speeches.info()  # type: ignore[attr-defined]
    return info["documents"], info["passages"]


def _check(c: TestClient, resp: Any, before: tuple[int, int]) -> None:
    assert resp.status_code < 500, (resp.request.url, resp.request.content[:300], resp.text)
    if resp.status_code >= 400:
        body = resp.json()
        assert body["error"]["code"] and body["error"]["message"], body
        assert _counts(c) == before, (resp.request.content[:300], resp.text)


@FUZZ
@given(request=requests())
def test_json_bodies_never_5xx(app: TestClient, request: tuple[str, bytes]) -> None:
    path, raw = request
    before = _counts(app)
    resp = app.post(path, content=raw, headers={"content-type": "application/json"})
    _check(app, resp, before)


@FUZZ
@given(
    path=st.sampled_from([*sorted(FIELDS), "/v1/documents/upload"]),
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "multipart/form-data"]),
)
def test_raw_bytes_never_5xx(app: TestClient, path: str, raw: bytes, content_type: str) -> None:
    before = _counts(app)
    resp = app.post(path, content=raw, headers={"content-type": content_type})
    _check(app, resp, before)


@FUZZ
@given(
    segment=st.text(st.characters(codec="utf-8", exclude_characters="/?#"), max_size=30),
    suffix=st.sampled_from(["", "/sections"]),
    method=st.sampled_from(["GET", "DELETE"]),
)
def test_ids_in_paths_never_5xx(app: TestClient, segment: str, suffix: str, method: str) -> None:
    from urllib.parse import quote

    if method == "DELETE" and segment == "d1":
        return  # the one document the other examples need
    before = _counts(app)
    resp = app.request(method, f"/v1/documents/{quote(segment, safe='')}{suffix}")
    _check(app, resp, before)
    resp = app.get(f"/v1/jobs/{quote(segment, safe='')}")
    _check(app, resp, before)


@pytest.fixture(scope="module")
def speeches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Speeches]:
    with Speeches(Settings(data_dir=tmp_path_factory.mktemp("core") / "data")) as s:
        s.put_document(DOC, doc_id="d1")
        yield s


@settings(FUZZ, max_examples=80)
@given(text=any_text, title=st.none() | any_text, doc_id=st.none() | any_text, query=any_text)
def test_core_raises_only_its_own_errors(
    speeches: Speeches, text: str, title: str | None, doc_id: str | None, query: str
) -> None:
    """The facade's contract: bad input is a ServiceError; what is stored is whole."""
    before = speeches.store.count_documents(), speeches.store.count_passages()
    try:
        put = speeches.put_document(text * 3, doc_id=doc_id, title=title)
    except ServiceError:
        assert (speeches.store.count_documents(), speeches.store.count_passages()) == before
    else:
        stored = speeches.get_document(put.document.id)
        assert stored.text == put.document.text
        if put.document.id != "d1":
            speeches.delete_document(put.document.id)
    for call in (speeches.search, speeches.ask):
        with contextlib.suppress(ServiceError):
            call(query, 3)
    assert len(speeches.retriever.vectors) == speeches.store.count_passages()
