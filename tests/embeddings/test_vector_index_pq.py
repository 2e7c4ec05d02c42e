"""The approximate side of ``VectorIndex``: a product-quantised scan with exact re-ranking,
chosen above ``exact_max``, built without blocking, exact deletes and upserts, saved and
loaded, recall close to exact search."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embeddings.errors import IndexFormatError
from embeddings.vector_index import VectorIndex, build_pq, candidates, pq_subquantizers

DIM = 32


def clustered(n: int, seed: int = 0, centers: int = 40) -> np.ndarray:
    """Unit vectors around a few centres (the same for every seed), like real embeddings, with
    queries drawn near the data as real questions are."""
    c = np.random.default_rng(12345).standard_normal((centers, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = c[rng.integers(0, centers, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    scores = vectors @ q
    return [int(ids[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def recall(index: VectorIndex, vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> float:
    found = index.search(queries, 10)
    hits = sum(
        len({i for i, _ in got} & set(exact_top(vectors, ids, q, 10)))
        for q, got in zip(queries, found, strict=True)
    )
    return hits / (10 * len(queries))


@pytest.fixture
def big() -> tuple[VectorIndex, np.ndarray, np.ndarray]:
    vectors = clustered(3000)
    ids = np.arange(10_000, 13_000, dtype=np.int64)
    index = VectorIndex(DIM, exact_max=1000, background=False)
    index.add(ids, vectors)
    return index, ids, vectors


def test_exact_below_the_threshold_compressed_above() -> None:
    vectors = clustered(1200)
    ids = np.arange(1200, dtype=np.int64)
    index = VectorIndex(DIM, exact_max=1000, background=False)
    index.add(ids[:1000], vectors[:1000])
    assert index.kind == "flat"
    index.add(ids[1000:], vectors[1000:])
    assert index.kind == "pq" and index.k_factor >= 1
    assert len(index) == 1200 and index.ids().tolist() == ids.tolist()
    # Scores are exact inner products whichever index proposed the candidates.
    (best, score), *_ = index.search(vectors[5], 1)[0]
    assert best == 5 and score == pytest.approx(1.0, abs=1e-5)


def test_background_build_does_not_block_and_replays_changes() -> None:
    vectors = clustered(2500, seed=3)
    ids = np.arange(2500, dtype=np.int64)
    index = VectorIndex(DIM, exact_max=1000)
    index.add(ids[:1500], vectors[:1500])  # starts the build in a thread
    # Meanwhile searches answer (exactly, from the flat index) and writes go on.
    assert index.search(vectors[7], 1)[0][0][0] == 7
    index.add(ids[1500:], vectors[1500:])
    index.remove([3, 4, 5])
    index.wait_for_build()
    assert index.kind == "pq" and not index.building
    assert len(index) == 2497
    assert set(index.ids().tolist()) == set(ids.tolist()) - {3, 4, 5}
    assert index.search(vectors[2000], 1)[0][0][0] == 2000
    assert 4 not in [i for i, _ in index.search(vectors[4], 5)[0]]


def test_recall_against_exact(big: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = big
    assert index.kind == "pq"
    assert recall(index, vectors, ids, clustered(100, seed=9)) >= 0.95


def test_deletes_and_upserts_are_exact(big: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = big
    gone = ids[:50]
    assert index.remove(np.concatenate([gone, [1, 2]])) == 50
    assert index.remove(gone) == 0
    assert not index.contains(gone).any()
    for v in vectors[:50]:
        assert not {i for i, _ in index.search(v, 10)[0]} & set(gone.tolist())
    # Upsert: remove, then add the same id with a new vector.
    new = clustered(1, seed=42)
    index.remove([ids[100]])
    index.add([ids[100]], new)
    (best, score), *_ = index.search(new[0], 1)[0]
    assert best == ids[100] and score == pytest.approx(1.0, abs=1e-5)
    sims = index.similarity(new[0], [ids[100], ids[0]])
    assert list(sims) == [int(ids[100])] and sims[int(ids[100])] == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(Exception, match="already in the index"):
        index.add([ids[101]], vectors[101:102])


def test_filtered_search_is_exact(big: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = big
    q = clustered(1, seed=5)[0]
    for allowed in (ids[::97], ids[::2]):
        got = [i for i, _ in index.search(q, 5, allowed)[0]]
        mask = np.isin(ids, allowed)
        assert got == exact_top(vectors[mask], ids[mask], q, 5)


def test_save_and_load_round_trip(
    big: tuple[VectorIndex, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    index, ids, vectors = big
    index.remove(ids[:10])
    path = tmp_path / "v.faiss"
    index.save(path)
    assert (tmp_path / "v.faiss.pq").exists()
    loaded = VectorIndex.load(path, DIM, exact_max=1000, background=False)
    assert loaded.kind == "pq" and loaded.k_factor == index.k_factor
    assert loaded.ids().tolist() == index.ids().tolist()
    queries = clustered(20, seed=11)
    assert loaded.search(queries, 10) == index.search(queries, 10)
    loaded.remove(ids[10:20])
    loaded.add(ids[:5], vectors[:5])
    assert len(loaded) == len(index) - 10 + 5
    # A compressed index out of step with the vectors is rebuilt, not trusted.
    loaded.save(tmp_path / "w.faiss")
    index.save(tmp_path / "x.faiss")
    (tmp_path / "x.faiss.pq").replace(tmp_path / "w.faiss.pq")
    again = VectorIndex.load(tmp_path / "w.faiss", DIM, exact_max=1000, background=False)
    assert again.kind == "pq" and recall(again, *_live(again, ids, vectors), queries) >= 0.9
    # A flipped byte in the vector data is caught by the checksum.
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum"):
        VectorIndex.load(path, DIM)


def _live(index: VectorIndex, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, ...]:
    keep = index.contains(ids)
    return vectors[keep], ids[keep]


def test_a_large_exact_file_loads_and_gets_its_compressed_index(tmp_path: Path) -> None:
    vectors = clustered(1500, seed=2)
    ids = np.arange(1500, dtype=np.int64)
    flat = VectorIndex(DIM)  # default threshold: stays exact, no sidecar
    flat.add(ids, vectors)
    flat.save(tmp_path / "v.faiss")
    assert not (tmp_path / "v.faiss.pq").exists()
    index = VectorIndex.load(tmp_path / "v.faiss", DIM, exact_max=1000, background=False)
    assert index.kind == "pq" and len(index) == 1500


def test_fixed_k_factor_and_build_pq_directly() -> None:
    vectors = clustered(2000, seed=4)
    ids = np.arange(2000, dtype=np.int64)
    coarse, k_factor = build_pq(ids, vectors, k_factor=4)
    assert k_factor == 4 and coarse.ntotal == 2000
    assert pq_subquantizers(512) == 128 and pq_subquantizers(384) == 96
    assert pq_subquantizers(30) == 6


def test_candidates_grow_with_k_past_ten() -> None:
    assert candidates(10, 128) == 1280
    assert candidates(5, 16) == 160
    assert candidates(100, 128) == 1370


def test_search_exact_matches_brute_force(big: tuple[VectorIndex, np.ndarray, np.ndarray]) -> None:
    index, ids, vectors = big
    assert index.kind == "pq"
    queries = clustered(5, seed=21)
    for q, got in zip(queries, index.search_exact(queries, 10), strict=True):
        assert [i for i, _ in got] == exact_top(vectors, ids, q, 10)


def test_recall_of_a_loaded_mapped_index_with_changes(
    big: tuple[VectorIndex, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    index, ids, vectors = big
    path = tmp_path / "v.faiss"
    index.save(path)
    loaded = VectorIndex.load(path, DIM, exact_max=1000, background=False, verify_sync_max=0)
    loaded.wait_for_check()
    assert loaded.kind == "pq" and loaded.damaged is None
    more = clustered(500, seed=31)
    loaded.add(np.arange(20_000, 20_500), more)
    loaded.remove(ids[:300])
    all_vectors = np.concatenate([vectors[300:], more])
    all_ids = np.concatenate([ids[300:], np.arange(20_000, 20_500)])
    assert recall(loaded, all_vectors, all_ids, clustered(50, seed=32)) >= 0.95
