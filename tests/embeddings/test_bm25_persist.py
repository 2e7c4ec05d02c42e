"""BM25 saved and loaded, bulk adds, compaction: always the scores of a fresh index."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import embeddings.bm25 as bm25_module
from embeddings.bm25 import BM25Index
from embeddings.errors import EmbeddingError, IndexFormatError
from embeddings.tokens import lexical_tokens, query_tokens

SENTENCES = [
    "我们要坚持以经济建设为中心，全面深化改革开放，推动经济高质量发展。",
    "教育是国之大计、党之大计，要办好人民满意的教育。",
    "生态文明建设关系人民福祉，绿水青山就是金山银山。",
    "科技自立自强是国家发展的战略支撑，要加强基础研究。",
    "二〇二三年国内生产总值增长百分之五点二，经济总体回升向好。",
    "全面深化改革，破除体制机制弊端，激发市场活力。",
    "稳定就业是民生之本，要落实就业优先政策。",
    "推进乡村全面振兴，保障粮食安全，增加农民收入。",
]
QUERIES = ["经济发展", "教育是什么", "全面深化改革", "就业优先政策", "粮食安全", "绿水青山"]


def passages(n: int, seed: int = 0) -> dict[int, list[str]]:
    rng = random.Random(seed)
    return {
        100 + i: lexical_tokens("".join(rng.sample(SENTENCES, rng.randint(1, 3)))) for i in range(n)
    }


def fresh(docs: dict[int, list[str]]) -> BM25Index:
    index = BM25Index()
    for pid in sorted(docs):
        index.add(pid, docs[pid])
    return index


def assert_same(a: BM25Index, b: BM25Index) -> None:
    assert len(a) == len(b) and a.avgdl == pytest.approx(b.avgdl)
    for q in QUERIES:
        got, want = a.search(query_tokens(q), 10), b.search(query_tokens(q), 10)
        assert [p for p, _ in got] == [p for p, _ in want]
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12)
        for t in query_tokens(q):
            assert a.idf(t) == pytest.approx(b.idf(t), rel=1e-12)


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bm25_module, "_COMPACT_MIN", 10)
    monkeypatch.setattr(bm25_module, "_MERGE_MIN", 200)


def test_add_many_equals_one_by_one() -> None:
    docs = passages(60)
    bulk = BM25Index()
    ids = sorted(docs)
    bulk.add_many(ids[:30], [docs[i] for i in ids[:30]])
    bulk.add_many(ids[30:], [docs[i] for i in ids[30:]])
    assert_same(bulk, fresh(docs))
    with pytest.raises(EmbeddingError):
        bulk.add_many([1, 1], [["a"], ["b"]])
    with pytest.raises(EmbeddingError):
        bulk.add_many([ids[0]], [["a"]])
    assert len(bulk) == 60


def test_removes_compaction_and_merges_stay_exact(small_thresholds: None) -> None:
    docs = passages(300, seed=1)
    index = fresh(docs)
    rng = random.Random(2)
    gone = rng.sample(sorted(docs), 120)
    for pid in gone:
        assert index.remove(pid)
    back = gone[:40]
    index.add_many(back, [docs[p] for p in back])
    live = {p: t for p, t in docs.items() if p not in set(gone) - set(back)}
    assert_same(index, fresh(live))
    index.compact()
    assert_same(index, fresh(live))
    assert index._dead == 0 and not index._tail


def test_save_load_round_trip(tmp_path: Path, small_thresholds: None) -> None:
    docs = passages(200, seed=3)
    index = fresh(docs)
    index.compact()  # a base, then a tail and dead slots on top of it
    for pid in sorted(docs)[:15]:
        index.remove(pid)
    extra = {str(i): i for i in range(900, 910)}
    index.add_many(list(range(900, 910)), [lexical_tokens(SENTENCES[i % 8]) for i in range(10)])
    path = tmp_path / "p.bm25"
    index.save(path, extra={"titles": extra})
    loaded, got_extra = BM25Index.load(path)
    assert got_extra == {"titles": extra}
    assert_same(loaded, index)
    # The loaded index keeps working: removes, adds, compaction, another round trip.
    for pid in sorted(docs)[15:30]:
        loaded.remove(pid)
        index.remove(pid)
    loaded.add(999, lexical_tokens(SENTENCES[0]))
    index.add(999, lexical_tokens(SENTENCES[0]))
    assert_same(loaded, index)
    loaded.compact()
    loaded.save(path)
    again, _ = BM25Index.load(path)
    assert_same(again, index)


def test_empty_index_round_trip(tmp_path: Path) -> None:
    BM25Index().save(tmp_path / "e.bm25")
    loaded, extra = BM25Index.load(tmp_path / "e.bm25")
    assert len(loaded) == 0 and extra == {} and loaded.search(["经济"], 5) == []


def test_damaged_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.bm25"
    fresh(passages(20)).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        BM25Index.load(path)
    path.write_bytes(bytes(data[:100]))
    with pytest.raises(IndexFormatError):
        BM25Index.load(path)
    with pytest.raises(FileNotFoundError):
        BM25Index.load(tmp_path / "missing.bm25")
