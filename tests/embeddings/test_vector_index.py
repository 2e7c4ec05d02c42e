from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

from embeddings.errors import EmbeddingError, IndexFormatError
from embeddings.vector_index import Rows, VectorIndex

DIM = 16


def unit_rows(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(
    vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int
) -> list[tuple[int, float]]:
    scores = vectors @ query
    order = np.argsort(-scores, kind="stable")[:k]
    return [(int(ids[i]), float(scores[i])) for i in order]


@pytest.fixture
def filled() -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    vectors = unit_rows(50)
    ids = np.arange(1000, 1050, dtype=np.int64)
    index = VectorIndex(DIM)
    index.add(ids, vectors)
    return index, ids, vectors


def assert_same_hits(got: list[tuple[int, float]], want: list[tuple[int, float]]) -> None:
    assert [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-6)


def test_search_matches_brute_force(filled: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = filled
    queries = unit_rows(3, seed=1)
    results = index.search(queries, 5)
    assert len(results) == 3
    for query, hits in zip(queries, results, strict=True):
        assert_same_hits(hits, brute_force(vectors, ids, query, 5))
    assert len(index) == 50
    assert sorted(index.ids().tolist()) == ids.tolist()


def test_a_stored_vector_finds_itself_first(
    filled: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    (best_id, score), *_ = index.search(vectors[7], 3)[0]
    assert best_id == ids[7]
    assert score == pytest.approx(1.0, abs=1e-5)


def test_k_larger_than_the_index_and_empty_index() -> None:
    index = VectorIndex(DIM)
    assert index.search(unit_rows(2), 5) == [[], []]
    index.add([1, 2], unit_rows(2))
    assert [i for i, _ in index.search(unit_rows(1, seed=3), 10)[0]] in ([1, 2], [2, 1])
    assert index.search(unit_rows(1), 0) == [[]]


def test_remove_is_exact(filled: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = filled
    assert index.remove([1003, 1010, 999_999]) == 2
    assert len(index) == 48
    assert index.remove([1003]) == 0
    keep = ~np.isin(ids, [1003, 1010])
    query = vectors[3]
    assert_same_hits(index.search(query, 48)[0], brute_force(vectors[keep], ids[keep], query, 48))
    assert 1003 not in index.ids()


def test_upsert_is_remove_then_add(filled: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, _, vectors = filled
    new = unit_rows(1, seed=9)
    with pytest.raises(EmbeddingError, match="already"):
        index.add([1005], new)
    index.remove([1005])
    index.add([1005], new)
    assert len(index) == 50
    (best_id, score), *_ = index.search(new, 1)[0]
    assert best_id == 1005
    assert score == pytest.approx(1.0, abs=1e-5)
    # The old vector of 1005 is gone, so it no longer finds 1005 first.
    assert index.search(vectors[5], 1)[0][0][0] != 1005


def test_add_validates_input() -> None:
    index = VectorIndex(DIM)
    with pytest.raises(EmbeddingError):
        index.add([1, 2], unit_rows(3))
    with pytest.raises(EmbeddingError):
        index.add([1], np.ones((1, DIM + 1), dtype=np.float32))
    with pytest.raises(EmbeddingError, match="duplicate"):
        index.add([4, 4], unit_rows(2))
    with pytest.raises(EmbeddingError):
        index.add(np.array([1.5]), unit_rows(1))
    bad = unit_rows(1)
    bad[0, 0] = np.nan
    with pytest.raises(EmbeddingError):
        index.add([1], bad)
    # A rejected batch adds nothing.
    assert len(index) == 0
    index.add([1], unit_rows(1))
    with pytest.raises(EmbeddingError):
        index.add([2, 1], unit_rows(2))
    assert index.ids().tolist() == [1]


def test_allowed_ids_restrict_the_search(
    filled: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, ids, vectors = filled
    query = vectors[0]
    # Allowed ids are the ones least similar to the query: a post-filter of the top-k would
    # return nothing, a filter inside the scan returns them all.
    worst = np.argsort(vectors @ query)[:4]
    allowed = ids[worst]
    hits = index.search(query, 10, allowed_ids=allowed)[0]
    assert_same_hits(hits, brute_force(vectors[worst], ids[worst], query, 10))
    assert {i for i, _ in hits} == set(allowed.tolist())
    assert index.search(query, 10, allowed_ids=np.array([], dtype=np.int64)) == [[]]
    assert index.search(query, 10, allowed_ids=np.array([5, 6])) == [[]]


def test_save_and_load_round_trip(
    tmp_path: Path, filled: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, _ = filled
    index.remove([1001])
    path = tmp_path / "passages.faiss"
    index.save(path)
    assert not path.with_name("passages.faiss.tmp").exists()
    loaded = VectorIndex.load(path, DIM)
    assert len(loaded) == 49
    np.testing.assert_array_equal(np.sort(loaded.ids()), np.sort(index.ids()))
    queries = unit_rows(2, seed=4)
    assert loaded.search(queries, 5) == index.search(queries, 5)
    # The loaded index is fully usable.
    loaded.add([5], unit_rows(1, seed=8))
    assert loaded.remove([1000]) == 1


def test_save_empty_index(tmp_path: Path) -> None:
    path = tmp_path / "empty.faiss"
    VectorIndex(DIM).save(path)
    assert len(VectorIndex.load(path, DIM)) == 0


def test_failed_save_keeps_the_last_good_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    filled: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, _, _ = filled
    path = tmp_path / "passages.faiss"
    VectorIndex(DIM).save(path)  # the last good file: empty
    good_bytes = path.read_bytes()

    def crash_midway(fh: BinaryIO, rows: Rows) -> None:
        fh.write(b"SQAVEC02 half of a file")
        raise OSError("disk full")

    monkeypatch.setattr("embeddings.vector_index._write_rows", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    assert path.read_bytes() == good_bytes
    assert len(VectorIndex.load(path, DIM)) == 0
    assert not path.with_name("passages.faiss.tmp").exists()


def test_crash_before_rename_leaves_old_file_loadable(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    filled: tuple[VectorIndex, np.ndarray, np.ndarray],
) -> None:
    index, _, _ = filled
    path = tmp_path / "passages.faiss"
    VectorIndex(DIM).save(path)

    def no_rename(src: object, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr("embeddings.vector_index.os.replace", no_rename)
    with pytest.raises(OSError, match="power cut"):
        index.save(path)
    monkeypatch.undo()
    assert len(VectorIndex.load(path, DIM)) == 0


def test_corrupt_files_raise_index_format_error(
    tmp_path: Path, filled: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, _ = filled
    path = tmp_path / "passages.faiss"
    index.save(path)
    data = path.read_bytes()

    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40  # inside the vector data: FAISS alone would load it
    truncated = data[: len(data) - 100]
    cases = {
        "flipped": bytes(flipped),
        "truncated": truncated,
        "garbage": b"not an index at all" * 10,
        "empty": b"",
        "trailing": data + b"x",
    }
    for name, content in cases.items():
        bad = tmp_path / f"{name}.faiss"
        bad.write_bytes(content)
        with pytest.raises(IndexFormatError):
            VectorIndex.load(bad, DIM)


def test_dimension_mismatch_raises_index_format_error(
    tmp_path: Path, filled: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, _ = filled
    path = tmp_path / "passages.faiss"
    index.save(path)
    with pytest.raises(IndexFormatError, match="dimension"):
        VectorIndex.load(path, DIM * 2)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        VectorIndex.load(tmp_path / "nothing.faiss", DIM)


def _old_format_file(path: Path, ids: np.ndarray, vectors: np.ndarray) -> None:
    """A file as the previous release wrote it: one CRC over FAISS IndexIDMap2 bytes."""
    import struct

    import faiss

    from embeddings.vector_index import _write_wrapped

    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    index.add_with_ids(vectors, ids)
    with open(path, "wb") as fh:
        _write_wrapped(fh, b"SQAVIDX1", struct.pack("<I", DIM), index)


def test_the_previous_format_loads_and_is_rewritten_on_save(
    tmp_path: Path, filled: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, ids, vectors = filled
    path = tmp_path / "passages.faiss"
    _old_format_file(path, ids[::-1].copy(), vectors[::-1].copy())
    loaded = VectorIndex.load(path, DIM)
    assert loaded.upgraded and len(loaded) == 50
    queries = unit_rows(3, seed=5)
    assert loaded.search(queries, 7) == index.search(queries, 7)
    loaded.save(path)
    assert path.read_bytes()[:8] == b"SQAVEC02" and not loaded.upgraded
    again = VectorIndex.load(path, DIM)
    assert not again.upgraded
    assert again.search(queries, 7) == index.search(queries, 7)
    # A damaged file of the previous format is still refused.
    _old_format_file(path, ids, vectors)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        VectorIndex.load(path, DIM)


def test_saved_vectors_are_mapped_not_read(
    tmp_path: Path, filled: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, ids, vectors = filled
    path = tmp_path / "passages.faiss"
    index.save(path)
    loaded = VectorIndex.load(path, DIM)
    assert isinstance(loaded.rows().base, np.memmap)
    # Added rows live in memory beside the mapping, removed ones are skipped, and a save
    # compacts both into a new mapped file.
    extra = unit_rows(3, seed=9)
    loaded.add([1, 2, 3], extra)
    loaded.remove([1000, 2])
    queries = unit_rows(2, seed=6)
    keep = ids != 1000
    want_vectors = np.concatenate([vectors[keep], extra[[0, 2]]])
    want_ids = np.concatenate([ids[keep], [1, 3]])
    for q, hits in zip(queries, loaded.search(queries, 60), strict=True):
        assert_same_hits(hits, brute_force(want_vectors, want_ids, q, 60))
    loaded.save(path)
    assert loaded.rows().base.shape[0] == 51 and isinstance(loaded.rows().base, np.memmap)
    assert VectorIndex.load(path, DIM).search(queries, 60) == loaded.search(queries, 60)


def test_a_damaged_vector_block_found_in_the_background(
    tmp_path: Path, filled: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, _ = filled
    path = tmp_path / "passages.faiss"
    index.save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40  # inside the vectors
    path.write_bytes(bytes(data))
    # Checked after load returns (as for a large file): load succeeds, the check flags it.
    loaded = VectorIndex.load(path, DIM, verify_sync_max=0)
    loaded.wait_for_check()
    assert loaded.damaged is not None and "checksum" in loaded.damaged
    # The file is gone, so the next start-up rebuilds from the store, and a save does not
    # write untrusted vectors back.
    assert not path.exists()
    loaded.save(path)
    assert not path.exists()
    # Damaged ids or header are caught before load returns, whatever the threshold.
    index.save(path)
    data = bytearray(path.read_bytes())
    data[30] ^= 0x01  # inside the ids
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        VectorIndex.load(path, DIM, verify_sync_max=0)


def test_an_intact_file_passes_the_background_check(
    tmp_path: Path, filled: tuple[VectorIndex, np.ndarray, np.ndarray]
) -> None:
    index, _, _ = filled
    path = tmp_path / "passages.faiss"
    index.save(path)
    loaded = VectorIndex.load(path, DIM, verify_sync_max=0)
    loaded.wait_for_check()
    assert loaded.damaged is None and path.exists()
    queries = unit_rows(2, seed=3)
    assert loaded.search(queries, 5) == index.search(queries, 5)
