from __future__ import annotations

import math

import pytest

from embeddings.bm25 import BM25Index
from embeddings.errors import EmbeddingError
from embeddings.tokens import lexical_tokens, query_tokens

PASSAGES = {
    10: "我们要坚持以经济建设为中心，全面深化改革开放，推动经济高质量发展。",
    11: "教育是国之大计、党之大计，要办好人民满意的教育。",
    12: "生态文明建设关系人民福祉，绿水青山就是金山银山。",
    13: "科技自立自强是国家发展的战略支撑，要加强基础研究。",
    14: "二〇二三年国内生产总值增长百分之五点二，经济总体回升向好。",
    15: "全面深化改革，破除体制机制弊端，激发市场活力。",
}


def build(pids: list[int] | None = None, **params: float) -> BM25Index:
    index = BM25Index(**params)
    for pid in pids if pids is not None else PASSAGES:
        index.add(pid, lexical_tokens(PASSAGES[pid]))
    return index


def assert_same_hits(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [pid for pid, _ in got] == [pid for pid, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12)


def test_ranking_finds_the_right_passage() -> None:
    index = build()
    assert index.search(query_tokens("要办好什么样的教育？"), 3)[0][0] == 11
    assert index.search(query_tokens("绿水青山就是什么？"), 3)[0][0] == 12
    assert index.search(query_tokens("国内生产总值增长了多少"), 3)[0][0] == 14
    hits = index.search(query_tokens("如何全面深化改革"), 6)
    assert {pid for pid, _ in hits[:2]} == {10, 15}


def test_results_are_sorted_and_only_matching_passages() -> None:
    index = build()
    hits = index.search(lexical_tokens("经济发展"), 10)
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)
    # 11 and 12 share no token with the query.
    assert {pid for pid, _ in hits} == {10, 13, 14}
    assert len(index.search(lexical_tokens("经济发展"), 1)) == 1


def test_score_matches_the_formula() -> None:
    index = BM25Index(k1=1.2, b=0.75)
    index.add(1, ["a", "b", "a"])
    index.add(2, ["b", "c"])
    n, avgdl = 2, 2.5
    idf_a = math.log1p((n - 1 + 0.5) / (1 + 0.5))
    idf_b = math.log1p((n - 2 + 0.5) / (2 + 0.5))
    assert index.idf("a") == pytest.approx(idf_a)
    assert index.avgdl == pytest.approx(avgdl)

    def term(idf: float, tf: int, dl: int) -> float:
        return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl))

    hits = dict(index.search(["a", "b"], 5))
    assert hits[1] == pytest.approx(term(idf_a, 2, 3) + term(idf_b, 1, 3))
    assert hits[2] == pytest.approx(term(idf_b, 1, 2))


def test_unknown_and_repeated_query_tokens() -> None:
    index = build()
    assert index.search(["不存在的词"], 5) == []
    assert index.search([], 5) == []
    once = index.search(["教育"], 5)
    assert index.search(["教育", "教育", "没有"], 5) == once
    assert index.idf("没有") > index.idf("教育")


def test_allowed_ids_filter() -> None:
    index = build()
    hits = index.search(query_tokens("全面深化改革"), 5, allowed_ids={15, 11, 999})
    assert [pid for pid, _ in hits] == [15]
    assert index.search(query_tokens("全面深化改革"), 5, allowed_ids=set()) == []


def test_removal_keeps_statistics_exact() -> None:
    index = build()
    assert index.remove(14)
    assert index.remove(10)
    assert not index.remove(10)
    fresh = build([11, 12, 13, 15])
    assert len(index) == len(fresh) == 4
    assert 14 not in index and 11 in index
    assert index.avgdl == pytest.approx(fresh.avgdl)
    for token in ["经济", "改革", "教育", "国内", "发展"]:
        assert index.doc_freq(token) == fresh.doc_freq(token)
        assert index.idf(token) == pytest.approx(fresh.idf(token))
    for question in ["全面深化改革开放", "国家发展战略", "人民满意的教育", "经济总体回升"]:
        assert_same_hits(
            index.search(query_tokens(question), 10), fresh.search(query_tokens(question), 10)
        )


def test_readding_after_removal_and_slot_reuse() -> None:
    index = build()
    index.remove(12)
    index.add(12, lexical_tokens(PASSAGES[12]))
    index.add(99, lexical_tokens("绿水青山"))
    fresh = build()
    fresh.add(99, lexical_tokens("绿水青山"))
    question = query_tokens("绿水青山就是金山银山吗")
    assert_same_hits(index.search(question, 10), fresh.search(question, 10))


def test_remove_everything() -> None:
    index = build()
    for pid in PASSAGES:
        assert index.remove(pid)
    assert len(index) == 0
    assert index.avgdl == 0.0
    assert index.search(lexical_tokens("经济"), 5) == []
    assert index.doc_freq("经济") == 0


def test_duplicate_add_is_rejected() -> None:
    index = build()
    with pytest.raises(EmbeddingError):
        index.add(10, ["x"])


def test_many_passages_stay_consistent() -> None:
    # Enough passages to grow the internal arrays several times, then churn half of them.
    index = BM25Index()
    texts = {pid: f"{PASSAGES[10 + pid % 6]}第{pid}段" for pid in range(200)}
    for pid, text in texts.items():
        index.add(pid, lexical_tokens(text))
    for pid in range(0, 200, 2):
        index.remove(pid)
    fresh = BM25Index()
    for pid in range(1, 200, 2):
        fresh.add(pid, lexical_tokens(texts[pid]))
    question = query_tokens("第37段的经济建设")
    got, want = index.search(question, 20), fresh.search(question, 20)
    assert got[0][0] == 37
    assert_same_hits(got, want)
