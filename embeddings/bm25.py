"""Okapi BM25 over token lists, kept up to date passage by passage.

Terms get integer ids. Postings (passage slots and term frequencies, int32) live in two tiers:
a *base*, one CSR block of numpy arrays sorted by term (what a load or a compaction produces,
read with zero-copy slices), and a *tail* of per-term ``array('i')`` pairs that additions
append to. A search costs a few vector operations per query term. Adds are batched
(``add_many``: one numpy pass for a document's passages, one ``frombytes`` per distinct term);
a remove only marks its slot dead and lowers its terms' document frequencies; ``compact``
merges the tail into the base and drops dead slots in one linear pass, when the tail outgrows
the base or a quarter of the slots are dead. The whole index saves to one checksummed file and
loads without re-tokenising or rebuilding per-term objects.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from embeddings.errors import EmbeddingError, IndexFormatError
from embeddings.files import atomic_write, fsync_directory

_MAGIC = b"SQABM25\x02"
_END_MAGIC = b"SQABMEND"
_LEN = struct.Struct("<Q")
_TRAILER = struct.Struct("<QI")  # payload length, CRC-32 of the payload
# Compact once dead slots are this share of all slots (and at least _COMPACT_MIN of them), or
# once the tail holds more postings than the base (and at least _MERGE_MIN).
_COMPACT_SHARE = 0.25
_COMPACT_MIN = 4096
_MERGE_MIN = 1 << 20

_EMPTY32 = np.zeros(0, dtype=np.int32)


class BM25Index:
    """BM25 with incremental ``add`` and exact ``remove``.

    Document count, average length and document frequencies always describe exactly the
    passages present, so scores after any sequence of adds and removes equal those of an index
    built from scratch over the same passages. Not thread-safe: the caller holds a lock
    (searches only read, so they may share a read lock).
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise EmbeddingError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = k1
        self.b = b
        self._vocab: dict[str, int] = {}  # term -> term id, ids in insertion order
        self._df = np.zeros(1024, dtype=np.int64)  # live passages per term id
        # Base postings: term t's are [_base_off[t], _base_off[t + 1]) of the two arrays.
        self._base_off = np.zeros(1, dtype=np.int64)
        self._base_slots = _EMPTY32
        self._base_tfs = _EMPTY32
        # Tail postings, appended since the base was made.
        # Each entry packs a posting in one int64: slot << 32 | term frequency.
        self._tail: dict[int, array] = {}
        self._tail_size = 0
        # Per slot. Slots of removed passages stay (dead) until the next compaction.
        self._slot_of: dict[int, int] = {}
        self._pid_of_slot = np.zeros(16, dtype=np.int64)
        self._length = np.zeros(16, dtype=np.float64)
        self._alive = np.zeros(16, dtype=bool)
        # Each slot's distinct term ids, for its removal: CSR for the base slots, bytes after.
        self._base_n = 0
        self._bterm_off = np.zeros(1, dtype=np.int64)
        self._bterms = _EMPTY32
        self._new_terms: list[bytes] = []
        self._next_slot = 0
        self._dead = 0
        self._total_length = 0
        self._norm: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, pid: object) -> bool:
        return pid in self._slot_of

    def pids(self) -> np.ndarray:
        """The indexed passage ids (int64, unordered)."""
        return np.fromiter(self._slot_of, dtype=np.int64, count=len(self._slot_of))

    @property
    def avgdl(self) -> float:
        return self._total_length / len(self._slot_of) if self._slot_of else 0.0

    def doc_freq(self, token: str) -> int:
        tid = self._vocab.get(token)
        return 0 if tid is None else int(self._df[tid])

    def idf(self, token: str) -> float:
        """``log(1 + (N - df + 0.5) / (df + 0.5))``: never negative, so a term found in most
        passages still adds a little instead of penalising them. A token that no passage holds
        gets the highest value."""
        df = self.doc_freq(token)
        return math.log1p((len(self._slot_of) - df + 0.5) / (df + 0.5))

    # -- mutation ---------------------------------------------------------------------------
    def add(self, pid: int, tokens: Iterable[str]) -> None:
        """Index passage ``pid``. An id already present is an error: ``remove`` it first."""
        self.add_many([pid], [tokens if isinstance(tokens, list) else list(tokens)])

    def add_many(self, pids: Sequence[int], token_lists: Sequence[Sequence[str]]) -> None:
        """Index several passages at once (all or nothing on a duplicate id)."""
        n = len(pids)
        if n != len(token_lists):
            raise EmbeddingError(f"{n} ids for {len(token_lists)} token lists")
        if n == 0:
            return
        seen: set[int] = set()
        for pid in pids:
            if pid in self._slot_of or pid in seen:
                raise EmbeddingError(f"passage {pid} is already in the BM25 index")
            seen.add(pid)
        vocab = self._vocab
        setdefault = vocab.setdefault
        tokens_flat = list(chain.from_iterable(token_lists))
        # Known terms through a C-level map; only new ones go through Python.
        tids = np.fromiter(
            map(vocab.get, tokens_flat, repeat(-1)), dtype=np.int64, count=len(tokens_flat)
        )
        for i in np.flatnonzero(tids < 0).tolist():
            # A new term gets the next id: len(vocab) is evaluated before setdefault inserts it.
            tids[i] = setdefault(tokens_flat[i], len(vocab))
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=n)
        base = self._next_slot
        self._reserve(base + n, len(vocab))
        if tids.size:
            rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
            # One sort of (term, passage) keys gives every posting with its frequency, by term.
            keys, tfs = np.unique(tids * n + rows, return_counts=True)
            key_tids, key_rows = np.divmod(keys, n)
            starts = np.flatnonzero(np.diff(key_tids, prepend=-1))
            ends = np.append(starts[1:], keys.size)
            batch_terms = key_tids[starts]
            self._df[batch_terms] += ends - starts
            packed = memoryview((((key_rows + base) << 32) | tfs).astype(np.int64).tobytes())
            tail = self._tail
            spans = zip(
                batch_terms.tolist(), (starts * 8).tolist(), (ends * 8).tolist(), strict=True
            )
            for tid, a, z in spans:
                posting = tail.get(tid)
                if posting is None:
                    posting = tail[tid] = array("q")
                posting.frombytes(packed[a:z])
            self._tail_size += keys.size
            # Each passage's distinct terms, for its removal.
            by_row = np.argsort(key_rows, kind="stable")
            row_tids = memoryview(key_tids[by_row].astype(np.int32).tobytes())
            bounds = np.concatenate([[0], np.cumsum(np.bincount(key_rows, minlength=n))]) * 4
            bl = bounds.tolist()
            self._new_terms.extend(bytes(row_tids[bl[i] : bl[i + 1]]) for i in range(n))
        else:
            self._new_terms.extend([b""] * n)
        slots_new = np.arange(base, base + n)
        self._pid_of_slot[slots_new] = np.asarray(pids, dtype=np.int64)
        self._length[slots_new] = lengths
        self._alive[slots_new] = True
        self._slot_of.update(zip(pids, range(base, base + n), strict=True))
        self._next_slot = base + n
        self._total_length += int(lengths.sum())
        self._norm = None
        if self._tail_size >= _MERGE_MIN and self._tail_size > self._base_slots.size:
            self.compact()

    def remove(self, pid: int) -> bool:
        """Forget passage ``pid``; ``False`` if it was not indexed."""
        slot = self._slot_of.pop(pid, None)
        if slot is None:
            return False
        self._df[self._slot_terms(slot)] -= 1
        if slot >= self._base_n:
            self._new_terms[slot - self._base_n] = b""
        self._total_length -= int(self._length[slot])
        self._length[slot] = 0.0
        self._alive[slot] = False
        self._dead += 1
        self._norm = None
        if self._dead >= _COMPACT_MIN and self._dead >= _COMPACT_SHARE * self._next_slot:
            self.compact()
        return True

    def _slot_terms(self, slot: int) -> np.ndarray:
        if slot < self._base_n:
            return self._bterms[self._bterm_off[slot] : self._bterm_off[slot + 1]]
        return np.frombuffer(self._new_terms[slot - self._base_n], dtype=np.int32)

    def compact(self) -> None:
        """Merge the tail into the base and drop removed passages, renumbering slots densely.

        One linear pass over the postings: no sort, the base and tail are already by term.
        """
        if not self._dead and not self._tail:
            return
        used = self._next_slot
        n_terms = len(self._vocab)
        keep = np.flatnonzero(self._alive[:used])
        new_slot = np.full(used, -1, dtype=np.int32)
        new_slot[keep] = np.arange(keep.size, dtype=np.int32)

        # Postings by term: each term's base slice, then its tail, placed by vectorised
        # offsets (the base and the tail are each already grouped by term).
        base_sizes = np.zeros(n_terms, dtype=np.int64)
        base_sizes[: self._base_off.size - 1] = np.diff(self._base_off)
        tail_tids, tail_packed, tail_counts = self._tail_arrays()
        tail_sizes = np.zeros(n_terms, dtype=np.int64)
        tail_sizes[tail_tids] = tail_counts
        sizes = base_sizes + tail_sizes
        off = np.concatenate([[0], np.cumsum(sizes)])
        all_slots = np.empty(int(off[-1]), dtype=np.int32)
        all_tfs = np.empty(int(off[-1]), dtype=np.int32)
        nb = int(self._base_slots.size)
        if nb:
            shift = np.repeat(
                off[:-1] - np.concatenate([[0], np.cumsum(base_sizes)])[:-1], base_sizes
            )
            dest = shift + np.arange(nb)
            all_slots[dest] = self._base_slots
            all_tfs[dest] = self._base_tfs
        if tail_packed.size:
            t_off = np.concatenate([[0], np.cumsum(tail_sizes)])
            shift = np.repeat(off[:-1] + base_sizes - t_off[:-1], tail_sizes)
            dest = shift + np.arange(int(t_off[-1]))
            all_slots[dest] = tail_packed >> 32
            all_tfs[dest] = tail_packed & 0xFFFFFFFF
        del tail_packed
        if self._dead:
            live = self._alive[all_slots]
            cum = np.concatenate([[0], np.cumsum(live, dtype=np.int64)])
            sizes = cum[off[1:]] - cum[off[:-1]]
            all_slots, all_tfs = all_slots[live], all_tfs[live]
        self._base_slots = new_slot[all_slots]
        self._base_tfs = all_tfs
        self._base_off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._tail = {}
        self._tail_size = 0

        # Per-slot term lists of the kept slots, as one CSR block: base slots' then new ones'.
        base_counts = np.diff(self._bterm_off)
        new_counts = np.fromiter(
            (len(t) // 4 for t in self._new_terms), dtype=np.int64, count=len(self._new_terms)
        )
        counts = np.concatenate([base_counts, new_counts])
        terms = np.concatenate(
            [self._bterms, np.frombuffer(b"".join(self._new_terms), dtype=np.int32)]
        )
        alive = self._alive[:used]
        self._bterms = terms[np.repeat(alive, counts)]
        self._bterm_off = np.concatenate([[0], np.cumsum(counts[alive])]).astype(np.int64)
        self._new_terms = []

        n = keep.size
        self._pid_of_slot = _grown(self._pid_of_slot[keep], max(n, 16))
        self._length = _grown(self._length[keep], max(n, 16))
        self._alive = _grown(np.ones(n, dtype=bool), max(n, 16))
        self._slot_of = dict(zip(self._pid_of_slot[:n].tolist(), range(n), strict=True))
        self._base_n = n
        self._next_slot = n
        self._dead = 0
        self._norm = None

    # -- search -----------------------------------------------------------------------------
    def search(
        self, query_tokens: Iterable[str], k: int, allowed_ids: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(pid, score)`` pairs, best first, ties by smaller pid.

        Only passages sharing at least one token with the query are returned. A query token
        counts once however often it repeats: counting repeats changed no ranking on CMRC 2018,
        and once keeps a long pasted query from being steered by one repeated phrase. Tokens no
        passage holds are skipped.
        """
        if k <= 0 or not self._slot_of:
            return []
        n = len(self._slot_of)
        k1 = self.k1
        norm = self._norms()
        scores = np.zeros(self._next_slot, dtype=np.float64)
        hit = False
        for term, weight in self._query_weights(query_tokens).items():
            tid = self._vocab.get(term)
            if tid is None:
                continue
            df = int(self._df[tid])
            if df == 0:
                continue
            slots, tfs_raw = self._posting(tid)
            tfs = tfs_raw.astype(np.float64)
            idf = math.log1p((n - df + 0.5) / (df + 0.5))
            # Slots are unique within one posting list, so fancy-index += adds each once.
            scores[slots] += weight * idf * tfs * (k1 + 1.0) / (tfs + norm[slots])
            del slots, tfs_raw
            hit = True
        if not hit:
            return []
        # Every matching passage scores above zero (idf > 0, tf >= 1).
        candidates = np.flatnonzero(scores)
        if self._dead:
            candidates = candidates[self._alive[candidates]]
        if allowed_ids is not None:
            allowed = [self._slot_of[p] for p in allowed_ids if p in self._slot_of]
            candidates = np.intersect1d(candidates, np.array(allowed, dtype=np.intp))
        if candidates.size == 0:
            return []
        cand_scores = scores[candidates]
        if candidates.size > k:
            keep = np.argpartition(-cand_scores, k - 1)[:k]
            # Ties at the cut-off would make argpartition's choice arbitrary; keep them all and
            # let the sort below decide by pid.
            threshold = cand_scores[keep].min()
            keep = np.flatnonzero(cand_scores >= threshold)
            candidates, cand_scores = candidates[keep], cand_scores[keep]
        pids = self._pid_of_slot[candidates]
        order = np.lexsort((pids, -cand_scores))[:k]
        return [(int(pids[i]), float(cand_scores[i])) for i in order]

    def _posting(self, tid: int) -> tuple[np.ndarray, np.ndarray]:
        """Slots and frequencies of one term (views where possible; never to be mutated)."""
        parts_s, parts_f = [], []
        if tid + 1 < self._base_off.size:
            a, z = int(self._base_off[tid]), int(self._base_off[tid + 1])
            if z > a:
                parts_s.append(self._base_slots[a:z])
                parts_f.append(self._base_tfs[a:z])
        posting = self._tail.get(tid)
        if posting is not None and len(posting):
            packed = np.frombuffer(posting, dtype=np.int64)
            parts_s.append((packed >> 32).astype(np.int32))
            parts_f.append((packed & 0xFFFFFFFF).astype(np.int32))
            del packed
        if len(parts_s) == 1:
            return parts_s[0], parts_f[0]
        if not parts_s:
            return _EMPTY32, _EMPTY32
        return np.concatenate(parts_s), np.concatenate(parts_f)

    def _tail_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The tail as (term ids, their packed postings concatenated by term, counts)."""
        tids = sorted(t for t, p in self._tail.items() if len(p))
        postings = [self._tail[t] for t in tids]
        counts = np.fromiter((len(p) for p in postings), dtype=np.int64, count=len(tids))
        packed = np.frombuffer(b"".join(postings), dtype=np.int64)
        return np.asarray(tids, dtype=np.int64), packed, counts

    def _query_weights(self, query_tokens: Iterable[str]) -> dict[str, float]:
        return dict.fromkeys(query_tokens, 1.0)

    def _norms(self) -> np.ndarray:
        """Per-slot length normalisation, recomputed only after a change."""
        norm = self._norm
        if norm is None:
            n = len(self._slot_of)
            avgdl = self._total_length / n or 1.0
            used = self._next_slot
            norm = self.k1 * (1.0 - self.b + self.b * self._length[:used] / avgdl)
            self._norm = norm
        return norm

    def _reserve(self, slots: int, terms: int) -> None:
        if slots > self._length.size:
            size = max(slots, 2 * self._length.size)
            self._pid_of_slot = _grown(self._pid_of_slot, size)
            self._length = _grown(self._length, size)
            self._alive = _grown(self._alive, size)
        if terms > self._df.size:
            self._df = _grown(self._df, max(terms, 2 * self._df.size))

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> None:
        """Write the index to ``path`` atomically: temporary file, fsync, rename.

        ``extra`` is stored as JSON in the header and returned by ``load``.
        """
        target = Path(path)
        atomic_write(target, lambda fh: self._write(fh, extra or {}))
        fsync_directory(target.parent)

    def _write(self, fh: BinaryIO, extra: dict[str, Any]) -> None:
        n = self._next_slot
        n_terms = len(self._vocab)
        term_bytes = "\x00".join(self._vocab).encode("utf-8")
        tail_tids, tail_packed, tail_sizes = self._tail_arrays()
        new_sizes = np.fromiter(
            (len(t) // 4 for t in self._new_terms), dtype=np.int64, count=len(self._new_terms)
        )
        header = json.dumps(
            {
                "k1": self.k1,
                "b": self.b,
                "slots": n,
                "terms": n_terms,
                "term_bytes": len(term_bytes),
                "base_terms": self._base_off.size - 1,
                "base_postings": int(self._base_slots.size),
                "tail_terms": len(tail_tids),
                "tail_postings": int(tail_sizes.sum()),
                "base_slots": self._base_n,
                "base_slot_terms": int(self._bterms.size),
                "new_slot_terms": int(new_sizes.sum()),
                "extra": extra,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        length = 0
        crc = 0

        def put(chunk: Any) -> None:
            nonlocal length, crc
            data = memoryview(
                np.ascontiguousarray(chunk) if isinstance(chunk, np.ndarray) else chunk
            )
            data = data.cast("B")
            length += data.nbytes
            crc = zlib.crc32(data, crc)
            fh.write(data)

        fh.write(_MAGIC)
        put(_LEN.pack(len(header)))
        put(header)
        put(term_bytes)
        put(self._pid_of_slot[:n])
        put(self._length[:n])
        put(self._alive[:n].astype(np.uint8))
        put(self._df[:n_terms])
        put(self._base_off)
        put(self._base_slots)
        put(self._base_tfs)
        put(tail_tids)
        put(tail_sizes)
        put((tail_packed >> 32).astype(np.int32))
        put((tail_packed & 0xFFFFFFFF).astype(np.int32))
        put(self._bterm_off)
        put(self._bterms)
        put(new_sizes)
        for terms in self._new_terms:
            if terms:
                put(terms)
        fh.write(_TRAILER.pack(length, crc))
        fh.write(_END_MAGIC)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple[BM25Index, dict[str, Any]]:
        """Read an index written by ``save``; returns it and the ``extra`` it was saved with.

        Raises ``FileNotFoundError`` if there is no file, ``IndexFormatError`` if it is damaged.
        The base arrays are views of the file's bytes: nothing is rebuilt term by term.
        """
        data = Path(path).read_bytes()
        suffix = _TRAILER.size + len(_END_MAGIC)
        if len(data) < len(_MAGIC) + suffix or not data.startswith(_MAGIC):
            raise IndexFormatError(f"{path}: not a speechqa BM25 index, or truncated")
        length, crc = _TRAILER.unpack_from(data, len(data) - suffix)
        if not data.endswith(_END_MAGIC) or length != len(data) - len(_MAGIC) - suffix:
            raise IndexFormatError(f"{path}: truncated or damaged trailer")
        payload = memoryview(data)[len(_MAGIC) : len(_MAGIC) + length]
        if zlib.crc32(payload) != crc:
            raise IndexFormatError(f"{path}: checksum mismatch, the file is corrupt")
        try:
            return cls._parse(payload)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"{path}: unreadable BM25 index: {exc}") from exc

    @classmethod
    def _parse(cls, payload: memoryview) -> tuple[BM25Index, dict[str, Any]]:
        at = 0

        def take(count: int, dtype: Any) -> np.ndarray:
            nonlocal at
            nbytes = count * np.dtype(dtype).itemsize
            if at + nbytes > len(payload):
                raise ValueError("payload shorter than its header says")
            out = np.frombuffer(payload, dtype=dtype, count=count, offset=at)
            at += nbytes
            return out

        (hlen,) = _LEN.unpack(take(_LEN.size, np.uint8).tobytes())
        head = json.loads(take(hlen, np.uint8).tobytes())
        n, n_terms = int(head["slots"]), int(head["terms"])
        index = cls(float(head["k1"]), float(head["b"]))
        text = take(int(head["term_bytes"]), np.uint8).tobytes().decode("utf-8")
        terms = text.split("\x00") if n_terms else []
        if len(terms) != n_terms:
            raise ValueError("term count mismatch")
        index._vocab = dict(zip(terms, range(n_terms), strict=True))
        pids = take(n, np.int64)
        lengths = take(n, np.float64)
        alive = take(n, np.uint8).astype(bool)
        index._df = _grown(take(n_terms, np.int64), max(n_terms, 1024))
        nb = int(head["base_terms"])
        index._base_off = take(nb + 1, np.int64)
        index._base_slots = take(int(head["base_postings"]), np.int32)
        index._base_tfs = take(int(head["base_postings"]), np.int32)
        if int(index._base_off[-1]) != index._base_slots.size:
            raise ValueError("base postings do not add up")
        tail_tids = take(int(head["tail_terms"]), np.int64).tolist()
        tail_sizes = take(len(tail_tids), np.int64).tolist()
        if sum(tail_sizes) != int(head["tail_postings"]):
            raise ValueError("tail postings do not add up")
        tail_slots = [take(size, np.int32) for size in tail_sizes]
        tail_tfs = [take(size, np.int32) for size in tail_sizes]
        index._tail = {
            t: array("q", ((s.astype(np.int64) << 32) | f).tobytes())
            for t, s, f in zip(tail_tids, tail_slots, tail_tfs, strict=True)
        }
        index._tail_size = sum(tail_sizes)
        base_n = int(head["base_slots"])
        index._bterm_off = take(base_n + 1, np.int64)
        index._bterms = take(int(head["base_slot_terms"]), np.int32)
        new_sizes = take(n - base_n, np.int64)
        new_terms = take(int(head["new_slot_terms"]), np.int32).tobytes()
        nb_bounds = (np.concatenate([[0], np.cumsum(new_sizes)]) * 4).tolist()
        index._new_terms = [
            new_terms[nb_bounds[i] : nb_bounds[i + 1]] for i in range(len(nb_bounds) - 1)
        ]
        index._base_n = base_n
        index._pid_of_slot = _grown(pids, max(n, 16))
        index._length = _grown(lengths, max(n, 16))
        index._alive = _grown(alive, max(n, 16))
        live = np.flatnonzero(alive)
        index._slot_of = dict(zip(pids[live].tolist(), live.tolist(), strict=True))
        if len(index._slot_of) != live.size:
            raise ValueError("duplicate passage ids")
        index._next_slot = n
        index._dead = n - live.size
        index._total_length = int(lengths[live].sum())
        return index, dict(head.get("extra") or {})


def _grown(arr: np.ndarray, size: int) -> np.ndarray:
    """``arr`` copied into a zeroed array of ``size`` elements (``size >= len(arr)``)."""
    out = np.zeros(size, dtype=arr.dtype)
    out[: arr.size] = arr
    return out
