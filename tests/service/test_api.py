"""The HTTP API as ../shared/API.md writes it, through the app with its lifespan."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SEED_000, SEED_002, seed_text

NEW_DOC = (
    "同志们：\n今天召开全县水利工作会议。\n"
    "一、抓好防汛抗旱\n要在汛前完成全部12座水库的除险加固，确保安全度汛。\n"
    "二、抓好农田水利\n今年新建高效节水灌溉面积3.5万亩，灌区配套改造投资2.8亿元。\n"
)


def _error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] and body["error"]["message"]
    return body["error"]


def _doc_count(client: TestClient) -> int:
    return len(client.get("/v1/documents").json()["documents"])


def test_health_and_info(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    info = client.get("/v1/info").json()
    assert info["documents"] >= 2 and info["passages"] > info["documents"]
    assert info["embedder"] == {"name": "builtin-hash-ngram-512", "dim": 512, "kind": "builtin"}
    assert info["version"]


def test_seeds_are_listed_with_their_outline(client: TestClient) -> None:
    docs = {d["id"]: d for d in client.get("/v1/documents").json()["documents"]}
    assert docs[SEED_000]["sections"] == 4  # preamble + 一、二、三、
    assert docs[SEED_002]["sections"] == 7  # preamble + 第一…第五 + closing
    assert docs[SEED_002]["paragraphs"] == 28
    assert docs[SEED_000]["chars"] == len(seed_text(SEED_000))


def test_get_document_and_sections_round_trip(client: TestClient) -> None:
    doc = client.get(f"/v1/documents/{SEED_002}").json()
    assert doc["text"] == seed_text(SEED_002)
    assert doc["title"]
    assert doc["metadata"] == {
        "source_file": f"{SEED_002}.txt",
        "format": "text",
        "encoding": "utf_8",
    }
    sections = client.get(f"/v1/documents/{SEED_002}/sections").json()["sections"]
    assert sections == doc["sections"]
    assert [s["id"] for s in sections] == ["preamble", "1", "2", "3", "4", "5", "closing"]
    assert [s["number"] for s in sections] == [None, 1, 2, 3, 4, 5, None]
    first = sections[1]
    assert first["title"] == "牢记领袖嘱托，紧跟核心奋斗"
    assert doc["text"][first["start"] : first["end"]].startswith("第一，牢记领袖嘱托")
    assert [c["id"] for c in first["children"]] == ["1.1", "1.2", "1.3"]
    assert [len(s["children"]) for s in sections[1:6]] == [3, 3, 3, 3, 5]
    assert sections[-1]["paragraphs"] == [28, 28]
    assert doc["text"][sections[-1]["start"] :].startswith("同志们，新征程扬帆启航")


def test_search_returns_located_hits(client: TestClient) -> None:
    hits = client.post("/v1/search", json={"query": "美丽宜居村庄工程", "top_k": 3}).json()["hits"]
    assert 1 <= len(hits) <= 3
    for h in hits:
        assert set(h) >= {"doc_id", "section_id", "section_title", "paragraph", "text", "score"}
        source = seed_text(h["doc_id"])
        assert source[h["start"] : h["end"]] == h["text"]
        assert source.split("\n")[h["paragraph"] - 1].find(h["text"]) >= 0
    assert hits[0]["doc_id"] == SEED_002 and "593" in hits[0]["text"]
    assert hits[0]["score"] >= hits[-1]["score"]


def test_search_filters_by_doc_ids(client: TestClient) -> None:
    hits = client.post(
        "/v1/search", json={"query": "党的二十大精神", "top_k": 10, "doc_ids": [SEED_000]}
    ).json()["hits"]
    assert hits and {h["doc_id"] for h in hits} == {SEED_000}
    _error(client.post("/v1/search", json={"query": "党", "doc_ids": ["nope"]}), 404)


def test_ask_answers_with_a_span_and_citations(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "改革任务要制定“时间表”和什么？"}).json()
    assert body["answerable"] is True
    assert "作战图" in body["answer"] and len(body["answer"]) <= 10
    first = body["citations"][0]
    assert first["doc_id"] == SEED_000 and first["paragraph"] == 18
    assert body["answer"] in first["text"]
    loc = body["location"]
    assert seed_text(SEED_000)[loc["start"] : loc["end"]] == body["answer"]
    assert 0 < body["confidence"] <= 1


def test_json_routes_answer_as_their_openapi_schema_says(client: TestClient) -> None:
    # The routes serialise their answer themselves: the description must still name it.
    schema = client.get("/openapi.json").json()
    models = schema["components"]["schemas"]
    requests = {
        "/v1/search": ({"query": "美丽宜居村庄工程", "top_k": 2}, "SearchOut"),
        "/v1/ask": ({"question": "改革任务要制定“时间表”和什么？"}, "AskOut"),
        "/v1/summarize": ({"doc_id": SEED_000}, "SummarizeOut"),
    }
    for path, (body, model) in requests.items():
        ok = schema["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"] == {"$ref": f"#/components/schemas/{model}"}
        resp = client.post(path, json=body)
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/json"
        assert set(resp.json()) == set(models[model]["properties"])
    hit = client.post("/v1/search", json={"query": "美丽宜居村庄工程"}).json()["hits"][0]
    assert set(hit) == set(models["HitOut"]["properties"])


def test_ask_declines_what_the_speeches_do_not_say(client: TestClient) -> None:
    body = client.post("/v1/ask", json={"question": "县里有几所高中？"}).json()
    assert body["answerable"] is False
    assert body["answer"] == "" and body["citations"] == []


def test_summarize_every_section_in_order(client: TestClient) -> None:
    body = client.post("/v1/summarize", json={"doc_id": SEED_002}).json()
    assert [s["section_id"] for s in body["sections"]] == [
        "preamble",
        "1",
        "2",
        "3",
        "4",
        "5",
        "closing",
    ]
    text = seed_text(SEED_002)
    for section in body["sections"]:
        starts = [u["start"] for u in section["sentences"]]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)
        for u in section["sentences"]:
            assert text[u["start"] : u["end"]] == u["text"]


def test_summarize_one_section_holds_its_topic_sentences(client: TestClient) -> None:
    body = client.post(
        "/v1/summarize", json={"doc_id": SEED_002, "section_id": "1", "max_sentences": 4}
    ).json()
    (section,) = body["sections"]
    texts = [u["text"] for u in section["sentences"]]
    assert len(texts) == 4
    assert texts[0].startswith("第一，牢记领袖嘱托")
    for opener in ("一要永葆绝对忠诚的政治本色", "二要深刻领会", "三要提升笃行实干"):
        assert any(t.startswith(opener) for t in texts), opener


def test_summarize_budgets(client: TestClient) -> None:
    body = client.post(
        "/v1/summarize", json={"doc_id": SEED_000, "max_chars": 60, "max_sentences": 5}
    ).json()
    for section in body["sections"]:
        assert sum(len(u["text"]) for u in section["sentences"]) <= 60
        assert len(section["sentences"]) <= 5
    _error(client.post("/v1/summarize", json={"doc_id": SEED_000, "section_id": "9"}), 404)
    _error(client.post("/v1/summarize", json={"doc_id": "missing"}), 404)
    _error(client.post("/v1/summarize", json={"doc_id": SEED_000, "ratio": 0}), 422)


def test_add_replace_delete_cycle(client: TestClient) -> None:
    created = client.post(
        "/v1/documents", json={"id": "water-2024", "title": "水利工作会议", "text": NEW_DOC}
    )
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["id"] == "water-2024" and doc["title"] == "水利工作会议"
    assert [s["id"] for s in doc["sections"]] == ["preamble", "1", "2"]
    assert client.get("/v1/documents/water-2024").json() == doc

    # Searchable as soon as the POST returned.
    ask = client.post("/v1/ask", json={"question": "要完成多少座水库的除险加固？"}).json()
    assert ask["answerable"] and "12座" in ask["answer"]
    assert ask["citations"][0]["doc_id"] == "water-2024"

    # The same content again changes nothing and answers 200.
    again = client.post("/v1/documents", json={"id": "water-2024", "text": NEW_DOC})
    assert again.status_code == 200 and again.json()["updated_at"] == doc["updated_at"]

    # A new text replaces the old one: its passages are gone from the index.
    replaced = client.post(
        "/v1/documents", json={"id": "water-2024", "text": NEW_DOC.replace("12座", "15座")}
    )
    assert replaced.status_code == 200
    hits = client.post(
        "/v1/search", json={"query": "水库除险加固", "doc_ids": ["water-2024"], "top_k": 50}
    ).json()["hits"]
    assert hits and all("12座" not in h["text"] for h in hits)
    assert any("15座" in h["text"] for h in hits)

    assert client.delete("/v1/documents/water-2024").status_code == 204
    _error(client.get("/v1/documents/water-2024"), 404)
    _error(client.delete("/v1/documents/water-2024"), 404)
    hits = client.post("/v1/search", json={"query": "水库除险加固", "top_k": 50}).json()["hits"]
    assert all(h["doc_id"] != "water-2024" for h in hits)


def test_document_without_id_gets_a_stable_one(client: TestClient) -> None:
    first = client.post("/v1/documents", json={"text": "第一次会议纪要。讨论了预算。"})
    assert first.status_code == 201
    second = client.post("/v1/documents", json={"text": "第一次会议纪要。讨论了预算。"})
    assert second.status_code == 200 and second.json()["id"] == first.json()["id"]
    assert client.delete(f"/v1/documents/{first.json()['id']}").status_code == 204


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": "   \n\t "}, 400),
        ({"text": ""}, 422),
        ({"text": "。。。！！"}, 400),
        ({"text": "正文\u0000内容"}, 400),
        ({"id": "../etc/passwd", "text": "正文内容。"}, 422),
        ({"id": "a/b", "text": "正文内容。"}, 422),
        ({"id": "", "text": "正文内容。"}, 422),
        ({"text": 123}, 422),
        ({"text": ["正文"]}, 422),
        ({"title": "x" * 501, "text": "正文内容。"}, 422),
        ({"metadata": "not an object", "text": "正文内容。"}, 422),
        ({}, 422),
    ],
)
def test_bad_documents_are_rejected_and_change_nothing(
    client: TestClient, body: dict[str, Any], status: int
) -> None:
    before = _doc_count(client)
    _error(client.post("/v1/documents", json=body), status)
    assert _doc_count(client) == before


def test_lone_surrogate_and_malformed_json(client: TestClient) -> None:
    before = _doc_count(client)
    raw = b'{"id": "bad", "text": "\\ud800 text"}'
    _error(
        client.post("/v1/documents", content=raw, headers={"content-type": "application/json"}), 422
    )
    _error(
        client.post(
            "/v1/documents", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
    )
    _error(
        client.post("/v1/ask", content=b"[1, 2]", headers={"content-type": "application/json"}), 422
    )
    assert _doc_count(client) == before


@pytest.mark.parametrize(
    "body",
    [
        {"query": ""},
        {"query": "党", "top_k": 0},
        {"query": "党", "top_k": 51},
        {"query": "党", "top_k": "many"},
        {"query": "党", "doc_ids": "000"},
        {"query": "x" * 2001},
    ],
)
def test_bad_search_bodies(client: TestClient, body: dict[str, Any]) -> None:
    _error(client.post("/v1/search", json=body), 422)


def test_questions_without_words_and_unknown_routes(client: TestClient) -> None:
    _error(client.post("/v1/ask", json={"question": "？？？"}), 400)
    _error(client.post("/v1/ask", json={"question": "   "}), 400)
    _error(client.get("/v1/nothing-here"), 404)
    _error(client.put("/v1/search", json={"query": "x"}), 405)
