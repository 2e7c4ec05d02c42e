"""The OpenAI-compatible endpoints: through the app, and with the openai package over real HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from tests.conftest import SEED_000, SEED_002, seed_text
from tests.service.conftest import LiveServer

QUESTION = "改革任务要制定“时间表”和什么？"


def _error(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] and body["error"]["message"]
    return body["error"]


def _events(resp: httpx.Response) -> list[Any]:
    """The SSE ``data:`` payloads, ``[DONE]`` kept as the string."""
    assert resp.headers["content-type"].startswith("text/event-stream")
    out: list[Any] = []
    for block in resp.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def _ask(client: TestClient, content: Any = QUESTION, **extra: Any) -> httpx.Response:
    body = {"model": "speechqa", "messages": [{"role": "user", "content": content}], **extra}
    return client.post("/v1/chat/completions", json=body)


def test_models_list_the_collection_and_each_speech(client: TestClient) -> None:
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    ids = [m["id"] for m in models["data"]]
    assert ids[0] == "speechqa"
    assert f"speechqa:{SEED_000}" in ids and f"speechqa:{SEED_002}" in ids
    one = client.get(f"/v1/models/speechqa:{SEED_000}").json()
    assert one["doc_id"] == SEED_000 and one["object"] == "model"
    assert "县委十二届三次全会" in one["name"]
    _error(client.get("/v1/models/speechqa:nope"), 404)


def test_completion_carries_the_answer_and_its_citations(client: TestClient) -> None:
    body = _ask(client, temperature=0.2, max_tokens=64, top_p=1, user="u1", seed=3).json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert "作战图" in content
    markers = {int(n) for n in re.findall(r"\[(\d+)\]", content)}
    assert markers == {c["index"] for c in body["citations"]} == {1}
    (c,) = body["citations"]
    assert c["doc_id"] == SEED_000 and c["paragraph"] == 18
    assert seed_text(SEED_000)[c["start"] : c["end"]] == c["text"]
    assert set(c) >= {"doc_id", "doc_title", "section_id", "section_title", "paragraph"}
    assert body["speechqa"]["intent"] == "ask" and body["speechqa"]["answerable"]
    assert body["usage"]["total_tokens"] > 0


def test_streamed_reply_equals_the_non_streamed_one(client: TestClient) -> None:
    messages = [
        {"role": "system", "content": "你是助手"},
        {"role": "user", "content": "县委的总体思路叫什么？"},
        {"role": "assistant", "content": "**“1515”总体思路**[1]"},
        {"role": "user", "content": [{"type": "text", "text": "第二部分讲了什么？"}]},
    ]
    plain = client.post("/v1/chat/completions", json={"model": "speechqa", "messages": messages})
    streamed = client.post(
        "/v1/chat/completions",
        json={
            "model": "speechqa",
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    body = plain.json()
    events = _events(streamed)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage = chunks[-1]
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
    final = chunks[-2]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["choices"][0]["delta"] == {}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert len(chunks) > 5  # the reply comes in pieces
    assert text == body["choices"][0]["message"]["content"]
    assert final["citations"] == body["citations"] and len(body["citations"]) >= 3
    assert final["speechqa"] == body["speechqa"]
    assert body["speechqa"]["intent"] == "summarize"
    assert body["speechqa"]["doc_ids"] == [SEED_000]  # the document carried over


def test_refusal_cites_nothing_streamed_or_not(client: TestClient) -> None:
    body = _ask(client, "本县的县长是谁？").json()
    assert body["citations"] == [] and not body["speechqa"]["answerable"]
    assert "没有找到" in body["choices"][0]["message"]["content"]
    assert "[" not in body["choices"][0]["message"]["content"]
    final = _events(_ask(client, "本县的县长是谁？", stream=True))[-2]
    assert final["citations"] == [] and final["choices"][0]["finish_reason"] == "stop"


def test_speeches_are_chosen_by_model_or_doc_ids(client: TestClient) -> None:
    by_model = client.post(
        "/v1/chat/completions",
        json={
            "model": f"speechqa:{SEED_002}",
            "messages": [{"role": "user", "content": "有哪些部分？"}],
        },
    ).json()
    assert by_model["speechqa"]["doc_ids"] == [SEED_002]
    assert by_model["model"] == f"speechqa:{SEED_002}"
    by_ids = _ask(client, "第二部分讲了什么？", doc_ids=[SEED_000]).json()
    assert {c["doc_id"] for c in by_ids["citations"]} == {SEED_000}
    # A front end's fixed model name for its own chores still gets the whole collection.
    other = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": QUESTION}]},
    ).json()
    assert other["citations"][0]["doc_id"] == SEED_000


def test_bad_bodies_are_4xx_in_the_error_shape(client: TestClient) -> None:
    url = "/v1/chat/completions"
    _error(client.post(url, json={"model": "speechqa"}), 422)
    _error(client.post(url, json={"model": "speechqa", "messages": []}), 422)
    _error(client.post(url, json={"messages": [{"role": "robot", "content": "hi"}]}), 422)
    _error(client.post(url, json={"messages": [{"role": "user", "content": 5}]}), 422)
    _error(client.post(url, json={"messages": [{"role": "user", "content": [{"x": 1}]}]}), 422)
    _error(client.post(url, json={"messages": "你好"}), 422)
    _error(
        client.post(url, content=b"{not json", headers={"content-type": "application/json"}),
        422,
    )
    _error(_ask(client, temperature=5), 422)
    _error(_ask(client, n=2), 422)
    system_only = {"messages": [{"role": "system", "content": "You are helpful."}]}
    assert _error(client.post(url, json=system_only), 400)["code"] == "invalid_input"
    assert _error(_ask(client, doc_ids=["nope"]), 404)["code"] == "not_found"
    _error(_ask(client, doc_ids=[]), 422)
    missing = {"model": "speechqa:nope", "messages": [{"role": "user", "content": "你好"}]}
    _error(client.post(url, json=missing), 404)
    # Images and tool messages are accepted; only the text counts.
    image = {"type": "image_url", "image_url": {"url": "data:,"}}
    parts = [image, {"type": "text", "text": "你好"}]
    ok = client.post(
        url,
        json={
            "messages": [
                {"role": "tool", "content": "x", "tool_call_id": "1"},
                {"role": "assistant", "content": None},
                {"role": "user", "content": parts},
            ],
            "tools": [],
            "response_format": {"type": "text"},
        },
    )
    assert ok.status_code == 200 and ok.json()["speechqa"]["intent"] == "smalltalk"


def test_api_keys_guard_the_chat_endpoints(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_keys=["k1", "k2"])
    with TestClient(create_app(settings)) as c:
        body = {"messages": [{"role": "user", "content": "你好"}]}
        assert _error(c.get("/v1/models"), 401)["code"] == "unauthorized"
        _error(c.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
        _error(c.get("/v1/models", headers={"Authorization": "Basic k1"}), 401)
        _error(c.post("/v1/chat/completions", json=body), 401)
        assert c.get("/v1/models", headers={"Authorization": "Bearer k2"}).status_code == 200
        ok = c.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer k1"})
        assert ok.status_code == 200
        assert "还没有收录" in ok.json()["choices"][0]["message"]["content"]
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    for path in ("/", "/chat"):
        page = client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<html lang="zh-CN">' in page.text and "/static/chat.js" in page.text
    for name in ("chat.js", "chat.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.text
    # Nothing is fetched from elsewhere: the page works offline.
    for text in (client.get("/").text, client.get("/static/chat.js").text):
        assert not re.search(r"(?:src|href)=[\"']?(?:https?:)?//", text)
        assert "http://" not in text and "https://" not in text


# -- the official openai package against a live server ---------------------------------------
@pytest.fixture(scope="module")
def oai(live_server: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=live_server.api_key)


def test_openai_package_lists_models_and_rejects_a_wrong_key(
    oai: openai.OpenAI, live_server: LiveServer
) -> None:
    ids = [m.id for m in oai.models.list()]
    assert ids[0] == "speechqa" and f"speechqa:{SEED_000}" in ids
    wrong = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()


def test_openai_package_non_streamed_and_streamed_agree(oai: openai.OpenAI) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "干部要做到什么？"},
        {"role": "assistant", "content": "政治信仰不变[1]"},
        {"role": "user", "content": "那党员呢？"},
    ]
    completion = oai.chat.completions.create(model="speechqa", messages=messages, temperature=0)
    content = completion.choices[0].message.content
    assert content and completion.choices[0].finish_reason == "stop"
    extra = completion.model_extra or {}
    citations = extra["citations"]
    assert citations and citations[0]["doc_id"] == SEED_002
    assert extra["speechqa"]["question"] == "党员要做到什么？"
    assert {int(n) for n in re.findall(r"\[(\d+)\]", content)} == {c["index"] for c in citations}

    stream = oai.chat.completions.create(
        model="speechqa",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, final, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            if choice.finish_reason == "stop":
                final = chunk
    assert "".join(pieces) == content
    assert final is not None and (final.model_extra or {})["citations"] == citations
    assert usage is not None and usage.completion_tokens == len(content)


def test_openai_package_refusal_and_bad_request(oai: openai.OpenAI) -> None:
    refusal = oai.chat.completions.create(
        model="speechqa", messages=[{"role": "user", "content": "县里有几所高中？"}]
    )
    assert (refusal.model_extra or {})["citations"] == []
    assert "没有找到" in (refusal.choices[0].message.content or "")
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(
            model="speechqa",
            messages=[{"role": "user", "content": "你好"}],
            extra_body={"doc_ids": ["nope"]},
        )
    with pytest.raises(openai.UnprocessableEntityError):
        oai.chat.completions.create(model="speechqa", messages=[])
