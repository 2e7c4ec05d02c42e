"""The facade without HTTP: persistence, exact upserts and deletes, crash recovery."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import embeddings.bm25 as bm25_module
import service.retrieval as retrieval_module
from embeddings.errors import IndexFormatError
from embeddings.vector_index import VectorIndex
from service.config import Settings
from service.core import Speeches
from service.errors import InvalidInput, NotFound, PayloadTooLarge
from tests.conftest import SEED_000, SEED_002, SEED_DIR, seed_text


def _vector_ids(speeches: Speeches) -> set[int]:
    return set(speeches.retriever.vectors.ids().tolist())


def _passage_ids(speeches: Speeches, doc_id: str | None = None) -> set[int]:
    return set(speeches.store.passage_ids(None if doc_id is None else [doc_id]))


def test_data_survives_a_restart(fresh_settings: Settings) -> None:
    with Speeches(fresh_settings) as speeches:
        reports = speeches.ingest_paths([SEED_DIR])
        assert sorted(r.status for r in reports) == ["created", "created"]
        before = speeches.search("美丽宜居村庄“593”工程", top_k=3)
        ids = _passage_ids(speeches)
    with Speeches(fresh_settings) as speeches:
        assert speeches.startup is not None and speeches.startup.embedded == 0
        assert _passage_ids(speeches) == ids == _vector_ids(speeches)
        assert speeches.search("美丽宜居村庄“593”工程", top_k=3) == before
        # Unchanged files are not ingested again.
        assert {r.status for r in speeches.ingest_paths([SEED_DIR])} == {"unchanged"}


def test_upsert_and_delete_touch_exactly_one_document(fresh_settings: Settings) -> None:
    with Speeches(fresh_settings) as speeches:
        speeches.ingest_paths([SEED_DIR])
        other = _passage_ids(speeches, SEED_000)
        old = _passage_ids(speeches, SEED_002)

        result = speeches.put_document(seed_text(SEED_002) + "\n补充一句新的话。", doc_id=SEED_002)
        assert not result.created and result.changed
        new = _passage_ids(speeches, SEED_002)
        assert new and not (new & old)
        assert _passage_ids(speeches, SEED_000) == other
        assert _vector_ids(speeches) == other | new
        assert all(pid in speeches.retriever.bm25 for pid in new)
        assert not any(pid in speeches.retriever.bm25 for pid in old)

        speeches.delete_document(SEED_002)
        assert _vector_ids(speeches) == other == _passage_ids(speeches)
        with pytest.raises(NotFound):
            speeches.get_document(SEED_002)
        assert all(h.doc_id == SEED_000 for h in speeches.search("小边城更要有大忠诚", top_k=20))


def test_lost_index_file_is_rebuilt_from_the_store(fresh_settings: Settings) -> None:
    with Speeches(fresh_settings) as speeches:
        speeches.ingest_paths([SEED_DIR])
        ids = _passage_ids(speeches)
    (fresh_settings.data_dir / "passages.faiss").unlink()
    with Speeches(fresh_settings) as speeches:
        assert speeches.startup is not None and speeches.startup.embedded == len(ids)
        assert _vector_ids(speeches) == ids
    assert (fresh_settings.data_dir / "passages.faiss").exists()


def test_crash_between_commit_and_index_write_is_repaired(fresh_settings: Settings) -> None:
    """Simulate the index file of an earlier state: vectors missing and vectors orphaned."""
    with Speeches(fresh_settings) as speeches:
        speeches.ingest_paths([SEED_DIR / f"{SEED_000}.txt"])
        stale = speeches.retriever.vectors.ids()
        dim = speeches.retriever.encoder.dim
    index = VectorIndex.load(fresh_settings.data_dir / "passages.faiss", dim)
    orphan = np.asarray([10_000_000], dtype=np.int64)
    index.add(orphan, np.ones((1, dim), dtype=np.float32) / np.sqrt(dim))
    index.remove(stale[:3])
    index.save(fresh_settings.data_dir / "passages.faiss")

    with Speeches(fresh_settings) as speeches:
        assert speeches.startup is not None
        assert speeches.startup.orphans_removed == 1 and speeches.startup.embedded == 3
        assert _vector_ids(speeches) == _passage_ids(speeches)


def test_changing_the_encoder_reembeds(fresh_settings: Settings) -> None:
    with Speeches(fresh_settings) as speeches:
        speeches.ingest_paths([SEED_DIR / f"{SEED_000}.txt"])
        n = speeches.store.count_passages()
    smaller = fresh_settings.model_copy(update={"builtin_dim": 64})
    with Speeches(smaller) as speeches:
        assert speeches.startup is not None and speeches.startup.rebuilt
        assert speeches.startup.embedded == n
        assert speeches.info()["embedder"]["dim"] == 64
        assert speeches.search("招商选资", top_k=1)


def test_validation_in_the_core(fresh_settings: Settings) -> None:
    with Speeches(fresh_settings.model_copy(update={"max_document_chars": 1000})) as speeches:
        with pytest.raises(PayloadTooLarge):
            speeches.put_document("字" * 1001)
        for bad_id in ("../x", "a/b", "", "x" * 129, "\x00", ".hidden"):
            with pytest.raises(InvalidInput):
                speeches.put_document("正文。", doc_id=bad_id)
        with pytest.raises(InvalidInput):
            speeches.search("党", top_k=0)
        assert speeches.store.count_documents() == 0


def test_long_paragraph_becomes_passages_of_whole_sentences(fresh_settings: Settings) -> None:
    sentence = "我们要坚持稳中求进工作总基调，推动经济社会高质量发展。"
    text = "一、总体要求\n" + sentence * 400  # one 10,000-character paragraph
    with Speeches(fresh_settings) as speeches:
        speeches.put_document(text, doc_id="long")
        rows = speeches.store.get_passages(sorted(_passage_ids(speeches, "long")))
        body = [p for p in rows.values() if p.paragraph == 2]
        assert len(body) >= 10
        limit = speeches.passage_chars
        for p in body:
            assert text[p.start : p.end] == p.text and len(p.text) <= limit
            assert p.text.endswith("。") and p.text.startswith("我们要")
        assert sum(len(p.text) for p in body) == len(sentence) * 400


def test_unflushed_index_after_a_crash_is_completed_at_start(fresh_settings: Settings) -> None:
    """With the index write deferred, a process that dies before flushing loses no document."""
    lazy = fresh_settings.model_copy(update={"index_flush_seconds": 3600.0})
    crashed = Speeches(lazy).open()
    crashed.put_document(seed_text(SEED_000), doc_id=SEED_000)
    stored = _passage_ids(crashed)
    # No close(): the process "dies" here, its index never written.
    with Speeches(lazy) as speeches:
        assert speeches.startup is not None and speeches.startup.embedded == len(stored)
        assert _vector_ids(speeches) == stored
        assert speeches.search("招商选资", top_k=1)[0].doc_id == SEED_000
    crashed.store.close()


def test_periodic_flush_writes_while_queries_run(fresh_settings: Settings) -> None:
    """The periodic index save writes its files under the read lock: a search from another
    thread finishes while the files are being written, and a process that dies after the
    flush re-indexes nothing at its next start."""
    eager = fresh_settings.model_copy(update={"index_flush_seconds": 0.0})
    speeches = Speeches(eager).open()
    retriever = speeches.retriever
    write_files = retriever.write_files
    searched_during_save: list[bool] = []

    def write_files_with_a_search() -> retrieval_module.SavedIndexes:
        worker = threading.Thread(target=lambda: speeches.search("招商选资", top_k=1))
        worker.start()
        worker.join(timeout=30)
        searched_during_save.append(not worker.is_alive())
        return write_files()

    retriever.write_files = write_files_with_a_search  # type: ignore[method-assign]
    speeches.put_document(seed_text(SEED_000), doc_id=SEED_000)
    assert searched_during_save == [True]
    assert not retriever.flush_due() and not retriever._dirty
    stored = _passage_ids(speeches)
    # No close(): the process "dies" here, after the periodic flush.
    with Speeches(fresh_settings) as again:
        assert again.startup is not None and again.startup.embedded == 0
        assert _vector_ids(again) == stored
    speeches.store.close()


def test_titles_are_searchable_and_follow_a_retitle(fresh_settings: Settings) -> None:
    body = "一、总体要求\n坚持稳中求进，推动高质量发展。\n"
    with Speeches(fresh_settings) as speeches:
        speeches.put_document(body, doc_id="r1", title="黑龙江省政府工作报告")
        speeches.put_document("一、总体要求\n坚持稳中求进，推动高质量发展。\n补充。", doc_id="r2")
        assert speeches.search("黑龙江", top_k=1)[0].doc_id == "r1"
        result = speeches.put_document(body, doc_id="r1", title="吉林省政府工作报告")
        assert result.changed and not result.created
        assert speeches.search("吉林", top_k=1)[0].doc_id == "r1"
        assert all(h.doc_id != "r1" or h.score < 0.5 for h in speeches.search("黑龙江", top_k=5))
    with Speeches(fresh_settings) as speeches:  # rebuilt from the store: the same tokens
        assert speeches.search("吉林", top_k=1)[0].doc_id == "r1"


def _flip_bm25_postings(path: Path) -> None:
    """Flip a byte in the middle of the posting slots, an array checked only in the background."""
    data = bytearray(path.read_bytes())
    end = len(data) - len(bm25_module._END_MAGIC) - bm25_module._FOOTER.size
    flen, _ = bm25_module._FOOTER.unpack_from(data, end)
    _, count, offset, _ = json.loads(data[end - flen : end])["arrays"]["base_slots"]
    data[offset + 4 * (count // 2)] ^= 0xFF
    path.write_bytes(bytes(data))


def test_bm25_found_damaged_after_start_up_is_dropped_then_rebuilt(
    fresh_settings: Settings,
) -> None:
    with Speeches(fresh_settings) as speeches:
        speeches.ingest_paths([SEED_DIR])
        ids = _passage_ids(speeches)
        speeches.retriever.bm25.compact()  # postings in the base arrays, mapped at start-up
        speeches.retriever.save()
    lexical = fresh_settings.data_dir / "passages.bm25"
    _flip_bm25_postings(lexical)

    with Speeches(fresh_settings) as speeches:
        with pytest.raises(IndexFormatError):
            speeches.retriever.bm25.wait_verified()
        # Search goes on (on the vectors), writes go on, and the damaged file is not kept.
        assert speeches.search("小边城更要有大忠诚", top_k=5)
        speeches.put_document(
            "关于乡村振兴的补充说明，共有三条意见。", doc_id="extra", title="补充"
        )
    assert not lexical.exists()

    with Speeches(fresh_settings) as speeches:
        bm25 = speeches.retriever.bm25
        assert set(bm25.pids().tolist()) == _passage_ids(speeches) > ids
        assert speeches.retriever.search("小边城更要有大忠诚", 3)[0].lexical > 0
    assert lexical.exists()


def test_fused_top_k_skips_only_cosines_that_cannot_matter(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lexical candidates outside the dense pool get a cosine only if they could still make
    the top k; the ranking equals that of giving every one its cosine."""
    import service.retrieval as retrieval_module

    settings = fresh_settings.model_copy(update={"candidate_pool": 8})
    with Speeches(settings) as speeches:
        speeches.ingest_paths([SEED_DIR])
        retriever = speeches.retriever
        asked: list[int] = []
        similarity = retriever.vectors.similarity

        def counting(query: np.ndarray, ids: np.ndarray) -> dict[int, float]:
            asked.extend(np.asarray(ids).tolist())
            return similarity(query, ids)

        monkeypatch.setattr(retriever.vectors, "similarity", counting)
        queries = ["乡村振兴", "干部作风建设", "经济发展质量", "安全生产责任", "招商引资项目"]
        for k in (1, 3, 8):
            for query in queries:
                asked.clear()
                pruned = retriever.search(query, k)
                pruned_asked = len(asked)
                monkeypatch.setattr(retrieval_module, "_COS_BOUND", float("inf"))
                asked.clear()
                everything = retriever.search(query, k)
                monkeypatch.setattr(retrieval_module, "_COS_BOUND", 1.0 + 1e-5)
                assert [s.passage_id for s in pruned] == [s.passage_id for s in everything]
                assert [s.score for s in pruned] == pytest.approx([s.score for s in everything])
                assert pruned_asked <= len(asked)
        # With k = 1 most lexical candidates cannot catch up: their vectors are never read.
        asked.clear()
        retriever.search("乡村振兴", 1)
        pruned_asked = len(asked)
        monkeypatch.setattr(retrieval_module, "_COS_BOUND", float("inf"))
        asked.clear()
        retriever.search("乡村振兴", 1)
        assert pruned_asked < len(asked)
