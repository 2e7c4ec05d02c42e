"""The MaxScore search against brute-force BM25, and the mapped, block-checked file format."""

from __future__ import annotations

import json
import math
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embeddings.bm25 as bm25_module
from embeddings.bm25 import BM25Index
from embeddings.errors import IndexFormatError

# A Zipf-like vocabulary: a few terms in most passages, many in few, as in real text, so that
# the search's pruning (common terms looked up, not scanned) is exercised.
VOCAB = [f"t{i}" for i in range(40)]
WEIGHTS = [1.0 / (i + 1) for i in range(40)]


def brute_force(
    docs: dict[int, list[str]],
    query: list[str],
    k: int,
    allowed: set[int] | None = None,
    k1: float = 1.2,
    b: float = 0.75,
) -> list[tuple[int, float]]:
    """BM25 from its definition, in plain Python, the same float operations in the same order
    as the index (so scores agree to the bit)."""
    n = len(docs)
    if n == 0 or k <= 0:
        return []
    avgdl = sum(len(t) for t in docs.values()) / n or 1.0
    df: dict[str, int] = {}
    for tokens in docs.values():
        for term in set(tokens):
            df[term] = df.get(term, 0) + 1
    scores: dict[int, float] = {}
    for term in dict.fromkeys(query):
        if term not in df:
            continue
        idf = math.log1p((n - df[term] + 0.5) / (df[term] + 0.5))
        for pid, tokens in docs.items():
            tf = tokens.count(term)
            if tf:
                norm = k1 * (1.0 - b + b * len(tokens) / avgdl)
                scores[pid] = scores.get(pid, 0.0) + 1.0 * idf * tf * (k1 + 1.0) / (tf + norm)
    ranked = sorted(
        ((s, p) for p, s in scores.items() if allowed is None or p in allowed),
        key=lambda x: (-x[0], x[1]),
    )
    return [(p, s) for s, p in ranked[:k]]


def corpus(rng: np.random.Generator, n: int, first_pid: int = 0) -> dict[int, list[str]]:
    p = np.array(WEIGHTS) / sum(WEIGHTS)
    return {
        first_pid + i: list(rng.choice(VOCAB, size=int(rng.integers(1, 30)), p=p)) for i in range(n)
    }


def queries(rng: np.random.Generator, count: int) -> list[list[str]]:
    return [
        list(rng.choice([*VOCAB, "unseen"], size=int(rng.integers(1, 8)))) for _ in range(count)
    ]


def check(index: BM25Index, docs: dict[int, list[str]], rng: np.random.Generator) -> None:
    pids = sorted(docs)
    for query in queries(rng, 12):
        k = int(rng.choice([1, 2, 3, 5, 10, 50]))
        want = brute_force(docs, query, k)
        assert index.search(query, k) == want
        assert index.search_exhaustive(query, k) == want
        for size in (1, 3, max(1, len(pids) // 2)):
            allowed = set(rng.choice(pids, size=min(size, len(pids)), replace=False).tolist())
            allowed.add(10**9)  # not indexed: ignored
            assert index.search(query, k, allowed) == brute_force(docs, query, k, allowed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    removed=st.floats(0.0, 0.6),
    compact_first=st.booleans(),
    added=st.integers(0, 80),
)
def test_fast_search_equals_brute_force(
    seed: int, n: int, removed: float, compact_first: bool, added: int
) -> None:
    """Random corpora with a base, a tail, dead slots and a drifted average length: the
    search returns exactly the brute-force ranking and scores, with and without filters."""
    rng = np.random.default_rng(seed)
    docs = corpus(rng, n)
    index = BM25Index()
    index.add_many(list(docs), list(docs.values()))
    if compact_first:
        index.compact()  # bounds taken here; what follows makes them stale
    for pid in rng.choice(sorted(docs), size=int(n * removed), replace=False).tolist():
        assert index.remove(pid)
        del docs[pid]
    # Longer passages raise the average length past the one the bounds were taken at.
    longer = {pid: tokens * 3 for pid, tokens in corpus(rng, added, first_pid=n).items()}
    index.add_many(list(longer), list(longer.values()))
    docs.update(longer)
    check(index, docs, rng)
    index.compact()
    check(index, docs, rng)


def test_common_terms_are_looked_up_not_scanned() -> None:
    """A rare term's passages outscore everything a very common term alone can give, so the
    common term's postings are only looked up for them; the result stays exact."""
    docs = {pid: ["common"] * (1 + pid % 3) for pid in range(2000)}
    for pid in range(0, 2000, 400):
        docs[pid] = ["rare", "common"]
    index = BM25Index()
    index.add_many(list(docs), list(docs.values()))
    index.compact()
    terms = index._query_terms(["common", "rare"])
    cand, _, scanned = index._maxscore(terms, index._norms(), 3, None)
    # The rare term's 5 postings and the few common ones read before the top 3 filled.
    assert scanned < 100
    assert sorted(index._pid_of_slot[cand].tolist()) == list(range(0, 2000, 400))
    assert index.search(["common", "rare"], 3) == brute_force(docs, ["common", "rare"], 3)


def test_ties_are_broken_by_pid_at_the_cut() -> None:
    docs = {pid: ["a", "b"] for pid in range(50, 0, -1)} | {100: ["a", "c"], 101: ["c"]}
    index = BM25Index()
    index.add_many(list(docs), list(docs.values()))
    index.compact()
    for k in (1, 5, 49, 50, 51, 60):
        assert index.search(["a", "b", "c"], k) == brute_force(docs, ["a", "b", "c"], k)


# -- persistence ------------------------------------------------------------------------------
def built(seed: int = 5, n: int = 400) -> tuple[BM25Index, dict[int, list[str]]]:
    rng = np.random.default_rng(seed)
    docs = corpus(rng, n)
    index = BM25Index()
    index.add_many(list(docs), list(docs.values()))
    index.compact()
    for pid in range(0, 40):
        index.remove(pid)
        del docs[pid]
    more = corpus(rng, 30, first_pid=n)
    index.add_many(list(more), list(more.values()))
    docs.update(more)
    return index, docs


def test_load_maps_the_file_and_mutations_still_work(tmp_path: Path) -> None:
    index, docs = built()
    path = tmp_path / "p.bm25"
    index.save(path, extra={"x": 1})
    loaded, extra = BM25Index.load(path)
    assert extra == {"x": 1}
    assert loaded.wait_verified(timeout=30)
    # The postings are read-only views of the mapped file, not copies.
    assert not loaded._base_slots.flags.writeable and not loaded._bterms.flags.writeable
    rng = np.random.default_rng(1)
    check(loaded, docs, rng)
    for pid in range(40, 60):
        loaded.remove(pid)
        del docs[pid]
    loaded.add(5000, ["t1", "t2", "t2"])
    docs[5000] = ["t1", "t2", "t2"]
    check(loaded, docs, rng)
    loaded.compact()
    check(loaded, docs, rng)
    loaded.save(path)  # over the file it was mapped from
    again, _ = BM25Index.load(path, background_check=False)
    check(again, docs, rng)


def _sections(path: Path) -> dict[str, list]:
    data = path.read_bytes()
    end = len(data) - len(bm25_module._END_MAGIC) - bm25_module._FOOTER.size
    flen, _ = bm25_module._FOOTER.unpack_from(data, end)
    return json.loads(data[end - flen : end])["arrays"]


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_posting_block_is_found_in_the_background(tmp_path: Path) -> None:
    index, _ = built()
    path = tmp_path / "p.bm25"
    index.save(path)
    _, count, offset, _ = _sections(path)["base_slots"]
    _flip(path, offset + 4 * (count // 2))
    with pytest.raises(IndexFormatError, match="checksum mismatch in base_slots"):
        BM25Index.load(path, background_check=False)
    loaded, _ = BM25Index.load(path)  # returns before the big arrays are checked
    with pytest.raises(IndexFormatError, match="base_slots"):
        loaded.wait_verified()
    with pytest.raises(IndexFormatError):
        loaded.search(["t1"], 5)
    with pytest.raises(IndexFormatError):
        loaded.save(tmp_path / "copy.bm25")  # never writes unverified data with fresh CRCs
    assert not (tmp_path / "copy.bm25").exists()


def test_a_check_that_fails_to_read_is_not_taken_for_sound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, _ = built()
    path = tmp_path / "p.bm25"
    index.save(path)
    checksum = bm25_module._crc

    def unreadable(data: memoryview) -> int:
        # the mapped arrays checked in the background fail to read; those read at load do not
        if threading.current_thread().name == "bm25-verify":
            raise OSError(5, "Input/output error")
        return checksum(data)

    monkeypatch.setattr(bm25_module, "_crc", unreadable)
    loaded, _ = BM25Index.load(path)
    with pytest.raises(IndexFormatError, match="base_slots could not be verified"):
        loaded.wait_verified()
    with pytest.raises(IndexFormatError):
        loaded.search(["t1"], 5)
    with pytest.raises(IndexFormatError):
        loaded.save(tmp_path / "copy.bm25")
    assert not (tmp_path / "copy.bm25").exists()


@pytest.mark.parametrize("section", ["pids", "df", "base_off", "base_ub", "term_bytes"])
def test_damaged_small_arrays_are_refused_at_load(tmp_path: Path, section: str) -> None:
    index, _ = built()
    path = tmp_path / "p.bm25"
    index.save(path)
    _, _, offset, _ = _sections(path)[section]
    _flip(path, offset)
    with pytest.raises(IndexFormatError, match=f"checksum mismatch in {section}"):
        BM25Index.load(path)


def test_damaged_footer_and_truncation_are_refused(tmp_path: Path) -> None:
    index, _ = built()
    path = tmp_path / "p.bm25"
    index.save(path)
    good = path.read_bytes()
    _flip(path, len(good) - len(bm25_module._END_MAGIC) - bm25_module._FOOTER.size - 3)
    with pytest.raises(IndexFormatError, match="footer"):
        BM25Index.load(path)
    for size in (len(good) - 1, len(good) // 2, 12, 3):
        path.write_bytes(good[:size])
        with pytest.raises(IndexFormatError):
            BM25Index.load(path)
    path.write_bytes(b"SQABM25\x01" + good[8:])  # an unknown version
    with pytest.raises(IndexFormatError):
        BM25Index.load(path)


def write_v2(index: BM25Index, path: Path, extra: dict) -> None:
    """The previous file format (one CRC over a packed payload), as the last release wrote it."""
    n, n_terms = index._next_slot, len(index._vocab)
    term_bytes = "\x00".join(index._vocab).encode("utf-8")
    tail_tids, tail_packed, tail_sizes = index._tail_arrays()
    new_sizes = np.array([len(t) // 4 for t in index._new_terms], dtype=np.int64)
    header = json.dumps(
        {
            "k1": index.k1,
            "b": index.b,
            "slots": n,
            "terms": n_terms,
            "term_bytes": len(term_bytes),
            "base_terms": index._base_off.size - 1,
            "base_postings": int(index._base_slots.size),
            "tail_terms": len(tail_tids),
            "tail_postings": int(tail_sizes.sum()),
            "base_slots": index._base_n,
            "base_slot_terms": int(index._bterms.size),
            "new_slot_terms": int(new_sizes.sum()),
            "extra": extra,
        }
    ).encode("utf-8")
    parts = [
        struct.pack("<Q", len(header)),
        header,
        term_bytes,
        index._pid_of_slot[:n].tobytes(),
        index._length[:n].tobytes(),
        index._alive[:n].astype(np.uint8).tobytes(),
        index._df[:n_terms].tobytes(),
        index._base_off.tobytes(),
        index._base_slots.tobytes(),
        index._base_tfs.tobytes(),
        tail_tids.tobytes(),
        tail_sizes.tobytes(),
        (tail_packed >> 32).astype(np.int32).tobytes(),
        (tail_packed & 0xFFFFFFFF).astype(np.int32).tobytes(),
        index._bterm_off.tobytes(),
        index._bterms.tobytes(),
        new_sizes.tobytes(),
        b"".join(index._new_terms),
    ]
    payload = b"".join(parts)
    trailer = struct.pack("<QI", len(payload), zlib.crc32(payload))
    path.write_bytes(b"SQABM25\x02" + payload + trailer + b"SQABMEND")


def test_previous_format_still_loads(tmp_path: Path) -> None:
    index, docs = built()
    path = tmp_path / "old.bm25"
    write_v2(index, path, {"titles": {"d": "t"}})
    loaded, extra = BM25Index.load(path)
    assert extra == {"titles": {"d": "t"}} and loaded.needs_rewrite
    check(loaded, docs, np.random.default_rng(3))
    loaded.save(path)  # rewritten in the current format
    assert path.read_bytes()[:8] == bm25_module._MAGIC
    again, _ = BM25Index.load(path)
    assert not again.needs_rewrite
    check(again, docs, np.random.default_rng(3))
    # A damaged old file is refused, so the caller rebuilds it from the store.
    write_v2(index, path, {})
    _flip(path, len(path.read_bytes()) // 2)
    with pytest.raises(IndexFormatError, match="checksum"):
        BM25Index.load(path)
