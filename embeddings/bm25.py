"""Okapi BM25 over token lists, kept up to date passage by passage.

Terms get integer ids. Postings (passage slots and term frequencies, int32) live in two tiers:
a *base*, one CSR block of numpy arrays sorted by term (what a load or a compaction produces,
read with zero-copy slices), and a *tail* of per-term ``array('i')`` pairs that additions
append to. Within a term, postings are in ascending slot order, so a passage's frequency is
found by binary search. Adds are batched (``add_many``: one numpy pass for a document's
passages, one ``frombytes`` per distinct term); a remove only marks its slot dead and lowers its
terms' document frequencies; ``compact`` merges the tail into the base and drops dead slots in
one linear pass, when the tail outgrows the base or a quarter of the slots are dead.

A search is exact top-k by MaxScore, compiled (``bm25_kernel``): each base term keeps an upper
bound of its postings' length-normalised frequency (taken at compaction), so the long postings
of common terms are only looked up for the passages that can still make the top k, not walked.

The index saves to one file of 64-byte-aligned arrays, each with its own CRC-32. A load maps
the file: the small arrays are checked at once, the big posting arrays are checked by a
background thread while the index already serves (a search after a failed check raises
``IndexFormatError``; ``compact`` and ``save`` wait for the check). Files of the previous
format (one CRC over a packed payload) still load.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import threading
import zlib
from array import array
from collections.abc import Iterable, Sequence
from itertools import chain, repeat
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from embeddings.bm25_kernel import maxscore
from embeddings.errors import EmbeddingError, IndexFormatError
from embeddings.files import atomic_write, fsync_directory

_MAGIC = b"SQABM25\x03"
_MAGIC_V2 = b"SQABM25\x02"  # one CRC over a packed payload; still read
_END_MAGIC = b"SQABMEND"
_LEN = struct.Struct("<Q")
_TRAILER = struct.Struct("<QI")  # v2: payload length, CRC-32 of the payload
_FOOTER = struct.Struct("<QI")  # footer JSON length, its CRC-32
_ALIGN = 64
# Arrays a load maps without reading; their checksums are verified in the background.
_LAZY = frozenset({"base_slots", "base_tfs", "bterms"})
_CRC_CHUNK = 1 << 24
# Relative margin on score bounds and thresholds: summation order moves a float sum by ulps.
_SLACK = 1e-9
# Compact once dead slots are this share of all slots (and at least _COMPACT_MIN of them), or
# once the tail holds more postings than the base (and at least _MERGE_MIN).
_COMPACT_SHARE = 0.25
_COMPACT_MIN = 4096
_MERGE_MIN = 1 << 20

_EMPTY32 = np.zeros(0, dtype=np.int32)
_NO_MASK = np.zeros(0, dtype=bool)


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
        # Per base term, the largest tf / (tf + norm) of its postings, and the average length
        # that norm was taken at (see ``_query_terms``).
        self._base_ub = np.zeros(0, dtype=np.float64)
        self._ub_avgdl = 1.0
        self._integrity: _Integrity | None = None
        # Loaded from a file of the previous format: saving it again makes later loads fast.
        self.needs_rewrite = False

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
        self._await_integrity()
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
        self._set_bounds()

    def _set_bounds(self) -> None:
        """Each base term's score bound at the current lengths (one pass over the postings)."""
        self._ub_avgdl = self._avgdl_used()
        self._base_ub = _max_ratios(self._base_off, self._base_slots, self._base_tfs, self._norms())

    def _avgdl_used(self) -> float:
        n = len(self._slot_of)
        return (self._total_length / n if n else 0.0) or 1.0

    # -- search -----------------------------------------------------------------------------
    def search(
        self, query_tokens: Iterable[str], k: int, allowed_ids: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` best ``(pid, score)`` pairs, best first, ties by smaller pid.

        Only passages sharing at least one token with the query are returned. A query token
        counts once however often it repeats: counting repeats changed no ranking on CMRC 2018,
        and once keeps a long pasted query from being steered by one repeated phrase. Tokens no
        passage holds are skipped.

        Exact top-k by MaxScore (``bm25_kernel.maxscore``): passages are walked in slot order
        on the terms whose bounds could still lift a passage into the top k; the other (long,
        common) terms are only looked up for passages that can still make it. The returned
        scores are recomputed term by term in query order, so they are bit for bit those of
        scoring every posting (``search_exhaustive``).
        """
        prepared = self._prepare(query_tokens, k)
        if prepared is None:
            return []
        terms, norm = prepared
        mask = None
        if allowed_ids is not None:
            allowed = self._slots_of(allowed_ids)
            if allowed.size == 0:
                return []
            if allowed.size * len(terms) * 8 < sum(t.slots.size for t in terms):
                # A small filter: look every term up for its passages instead of scanning.
                allowed.sort()
                return self._top(allowed, self._exact(allowed, terms, norm), terms, norm, k)
            mask = np.zeros(self._next_slot, dtype=bool)
            mask[allowed] = True
        elif self._dead:
            mask = self._alive[: self._next_slot]
        cand, scores, _ = self._maxscore(terms, norm, k, mask)
        return self._select(cand, scores, k)

    def _maxscore(
        self, terms: list[_Term], norm: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """The compiled MaxScore (``bm25_kernel.maxscore``) over the query's postings.

        It reads one pair of arrays: the base in place when every term's postings are a base
        slice, else the query's postings copied into one run (a term with a tail is a copy
        already). Choosing between two sources on every read made the kernel 4x slower."""
        n = len(terms)
        lo = np.empty(n, dtype=np.int64)
        hi = np.empty(n, dtype=np.int64)
        if all(t.span is not None for t in terms):
            slots, tfs = self._base_slots, self._base_tfs
            for i, t in enumerate(terms):
                lo[i], hi[i] = t.span  # type: ignore[misc]
        else:
            sizes = np.fromiter((t.slots.size for t in terms), dtype=np.int64, count=n)
            hi[:] = np.cumsum(sizes)
            lo[:] = hi - sizes
            slots = np.concatenate([t.slots for t in terms])
            tfs = np.concatenate([t.tfs for t in terms])
        return maxscore(
            slots,
            tfs,
            lo,
            hi,
            np.fromiter((t.w for t in terms), dtype=np.float64, count=n),
            np.fromiter((t.bound for t in terms), dtype=np.float64, count=n),
            norm,
            self.k1,
            k,
            _NO_MASK if mask is None else mask,
            _SLACK,
        )

    def search_exhaustive(
        self, query_tokens: Iterable[str], k: int, allowed_ids: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """What ``search`` returns, by scoring every posting of every query term (the
        reference the fast path is tested and measured against)."""
        prepared = self._prepare(query_tokens, k)
        if prepared is None:
            return []
        terms, norm = prepared
        scores = np.zeros(self._next_slot, dtype=np.float64)
        for t in terms:
            scores[t.slots] += t.contribution(t.slots, t.tfs, norm, self.k1)
        candidates = np.flatnonzero(scores)
        if self._dead:
            candidates = candidates[self._alive[candidates]]
        if allowed_ids is not None:
            candidates = np.intersect1d(candidates, self._slots_of(allowed_ids))
        return self._select(candidates, scores[candidates], k)

    def _slots_of(self, pids: Iterable[int]) -> np.ndarray:
        """The slots of those of ``pids`` the index holds (a filter's passages)."""
        slot_of = self._slot_of
        return np.fromiter((slot_of[p] for p in pids if p in slot_of), dtype=np.int32)

    def _prepare(
        self, query_tokens: Iterable[str], k: int
    ) -> tuple[list[_Term], np.ndarray] | None:
        """The query's terms and the length norms, or ``None`` when nothing can match."""
        self._check_integrity()
        if k <= 0 or not self._slot_of:
            return None
        terms = self._query_terms(query_tokens)
        if not terms:
            return None
        return terms, self._norms()

    def _query_terms(self, query_tokens: Iterable[str]) -> list[_Term]:
        """The query's indexed terms in query order, with postings, idf and score bound."""
        n = len(self._slot_of)
        k1 = self.k1
        norm = self._norms()
        grow = max(1.0, self._avgdl_used() / self._ub_avgdl)
        out = []
        for term, weight in self._query_weights(query_tokens).items():
            tid = self._vocab.get(term)
            if tid is None:
                continue
            df = int(self._df[tid])
            if df == 0:
                continue
            slots, tfs, tail_start = self._posting(tid)
            # Postings that are one slice of the base are read in place by the compiled search.
            span = None
            if slots.size and tail_start == slots.size:
                span = (int(self._base_off[tid]), int(self._base_off[tid + 1]))
            idf = math.log1p((n - df + 0.5) / (df + 0.5))
            # The base's bound was taken at an older average length; a longer average only
            # shrinks length normalisation, raising a posting's ratio by at most ``grow``.
            ratio = 0.0
            if tail_start:
                ratio = float(self._base_ub[tid]) * grow if tid < self._base_ub.size else 1.0
            if tail_start < slots.size:
                t_slots, t_tfs = slots[tail_start:], tfs[tail_start:].astype(np.float64)
                ratio = max(ratio, float((t_tfs / (t_tfs + norm[t_slots])).max()))
            w = weight * idf
            bound = w * (k1 + 1.0) * min(ratio, 1.0) * (1.0 + _SLACK) if weight >= 0 else math.inf
            out.append(_Term(w, slots, tfs, bound, span))
        return out

    def _top(
        self, cand: np.ndarray, approx: np.ndarray, terms: list[_Term], norm: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        """The best ``k`` of ``cand`` (ranked roughly by ``approx``) by their exact scores."""
        live = approx > 0
        cand, approx = cand[live], approx[live]
        if cand.size > k:
            # Summation order moves a score by an ulp or so: keep everything near the cut-off.
            keep = approx >= _kth(approx, k) * (1.0 - _SLACK)
            cand = cand[keep]
        return self._select(cand, self._exact(cand, terms, norm), k)

    def _exact(self, cand: np.ndarray, terms: list[_Term], norm: np.ndarray) -> np.ndarray:
        """Scores of ``cand``, summed in query order as a full scan sums them (so the same
        floats, to the bit)."""
        scores = np.zeros(cand.size, dtype=np.float64)
        for t in terms:
            scores += t.lookup(cand, norm, self.k1)
        return scores

    def _select(
        self, candidates: np.ndarray, cand_scores: np.ndarray, k: int
    ) -> list[tuple[int, float]]:
        live = cand_scores > 0
        candidates, cand_scores = candidates[live], cand_scores[live]
        if candidates.size == 0:
            return []
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

    def _posting(self, tid: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Slots (ascending) and frequencies of one term, and where its tail part starts
        (views where possible; never to be mutated)."""
        parts_s, parts_f = [], []
        if tid + 1 < self._base_off.size:
            a, z = int(self._base_off[tid]), int(self._base_off[tid + 1])
            if z > a:
                parts_s.append(self._base_slots[a:z])
                parts_f.append(self._base_tfs[a:z])
        tail_start = parts_s[0].size if parts_s else 0
        posting = self._tail.get(tid)
        if posting is not None and len(posting):
            packed = np.frombuffer(posting, dtype=np.int64)
            parts_s.append((packed >> 32).astype(np.int32))
            parts_f.append((packed & 0xFFFFFFFF).astype(np.int32))
            del packed
        if len(parts_s) == 1:
            return parts_s[0], parts_f[0], tail_start
        if not parts_s:
            return _EMPTY32, _EMPTY32, 0
        return np.concatenate(parts_s), np.concatenate(parts_f), tail_start

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
            avgdl = self._avgdl_used()
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

        ``extra`` is stored as JSON in the footer and returned by ``load``.
        """
        self._await_integrity()
        target = Path(path)
        atomic_write(target, lambda fh: self._write(fh, extra or {}))
        fsync_directory(target.parent)

    def _write(self, fh: BinaryIO, extra: dict[str, Any]) -> None:
        n = self._next_slot
        n_terms = len(self._vocab)
        tail_tids, tail_packed, tail_sizes = self._tail_arrays()
        new_sizes = np.fromiter(
            (len(t) // 4 for t in self._new_terms), dtype=np.int64, count=len(self._new_terms)
        )
        arrays = {
            "term_bytes": np.frombuffer("\x00".join(self._vocab).encode("utf-8"), np.uint8),
            "pids": self._pid_of_slot[:n],
            "lengths": self._length[:n],
            "alive": self._alive[:n].astype(np.uint8),
            "df": self._df[:n_terms],
            "base_off": self._base_off,
            "base_ub": self._base_ub,
            "base_slots": self._base_slots,
            "base_tfs": self._base_tfs,
            "tail_tids": tail_tids,
            "tail_sizes": tail_sizes,
            "tail_slots": (tail_packed >> 32).astype(np.int32),
            "tail_tfs": (tail_packed & 0xFFFFFFFF).astype(np.int32),
            "bterm_off": self._bterm_off,
            "bterms": self._bterms,
            "new_sizes": new_sizes,
            "new_terms": np.frombuffer(b"".join(self._new_terms), dtype=np.int32),
        }
        fh.write(_MAGIC)
        at = len(_MAGIC)
        table = {}
        for name, arr in arrays.items():
            pad = -at % _ALIGN
            fh.write(bytes(pad))
            at += pad
            data = memoryview(np.ascontiguousarray(arr)).cast("B")
            table[name] = [arr.dtype.str, int(arr.size), at, _crc(data)]
            fh.write(data)
            at += data.nbytes
        footer = json.dumps(
            {
                "k1": self.k1,
                "b": self.b,
                "terms": n_terms,
                "base_slots": self._base_n,
                "ub_avgdl": self._ub_avgdl,
                "arrays": table,
                "extra": extra,
            },
            ensure_ascii=False,
        ).encode("utf-8")
        fh.write(footer)
        fh.write(_FOOTER.pack(len(footer), zlib.crc32(footer)))
        fh.write(_END_MAGIC)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, background_check: bool = True
    ) -> tuple[BM25Index, dict[str, Any]]:
        """Read an index written by ``save``; returns it and the ``extra`` it was saved with.

        Raises ``FileNotFoundError`` if there is no file, ``IndexFormatError`` if it is damaged.
        The file is memory-mapped: the posting arrays are views of it, paged in as searches
        touch them, and checked by a background thread (``background_check=False`` checks
        everything before returning). Mutations never write to the mapping: compaction builds
        new arrays.
        """
        with open(path, "rb") as fh:
            magic = fh.read(len(_MAGIC))
            if magic == _MAGIC_V2:
                return cls._load_v2(path, magic + fh.read())
            size = os.fstat(fh.fileno()).st_size
            if magic != _MAGIC or size < len(_MAGIC) + _FOOTER.size + len(_END_MAGIC):
                raise IndexFormatError(f"{path}: not a speechqa BM25 index, or truncated")
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            head, arrays = _read_v3(path, buf)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"{path}: unreadable BM25 index: {exc}") from exc
        lazy = [(name, arr, crc) for name, (arr, crc) in arrays.items() if name in _LAZY]
        check = _Integrity(str(path), lazy)
        if background_check:
            check.start()
        else:
            check.run()
            check.raise_if_corrupt()
        try:
            index, extra = cls._assemble(head, {name: arr for name, (arr, _) in arrays.items()})
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"{path}: unreadable BM25 index: {exc}") from exc
        index._integrity = check
        return index, extra

    def wait_verified(self, timeout: float | None = None) -> bool:
        """Wait for the background checksum check of a loaded index; ``True`` once it is done
        (or there was none). Raises ``IndexFormatError`` if it found the file corrupt."""
        check = self._integrity
        if check is None:
            return True
        done = check.done.wait(timeout)
        check.raise_if_corrupt()
        return done

    def _await_integrity(self) -> None:
        # Mapped data is copied into new arrays or files only once known to be sound.
        self.wait_verified()
        self._integrity = None

    def _check_integrity(self) -> None:
        if self._integrity is not None:
            self._integrity.raise_if_corrupt()

    @classmethod
    def _load_v2(
        cls, path: str | os.PathLike[str], data: bytes
    ) -> tuple[BM25Index, dict[str, Any]]:
        """The previous format: one CRC over a packed payload, read and checked in full."""
        suffix = _TRAILER.size + len(_END_MAGIC)
        if len(data) < len(_MAGIC_V2) + suffix:
            raise IndexFormatError(f"{path}: not a speechqa BM25 index, or truncated")
        length, crc = _TRAILER.unpack_from(data, len(data) - suffix)
        if not data.endswith(_END_MAGIC) or length != len(data) - len(_MAGIC_V2) - suffix:
            raise IndexFormatError(f"{path}: truncated or damaged trailer")
        payload = memoryview(data)[len(_MAGIC_V2) : len(_MAGIC_V2) + length]
        if zlib.crc32(payload) != crc:
            raise IndexFormatError(f"{path}: checksum mismatch, the file is corrupt")
        try:
            head, arrays = _parse_v2(payload)
            index, extra = cls._assemble(head, arrays)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"{path}: unreadable BM25 index: {exc}") from exc
        index.needs_rewrite = True
        return index, extra

    @classmethod
    def _assemble(
        cls, head: dict[str, Any], arrays: dict[str, np.ndarray]
    ) -> tuple[BM25Index, dict[str, Any]]:
        """An index over the arrays of a saved file (views, not copies, of the big ones)."""
        n_terms = int(head["terms"])
        index = cls(float(head["k1"]), float(head["b"]))
        text = arrays["term_bytes"].tobytes().decode("utf-8")
        terms = text.split("\x00") if n_terms else []
        if len(terms) != n_terms:
            raise ValueError("term count mismatch")
        index._vocab = dict(zip(terms, range(n_terms), strict=True))
        pids = arrays["pids"]
        n = pids.size
        lengths = arrays["lengths"]
        alive = arrays["alive"].astype(bool)
        if lengths.size != n or alive.size != n or arrays["df"].size != n_terms:
            raise ValueError("per-slot or per-term arrays disagree in size")
        index._df = _grown(arrays["df"], max(n_terms, 1024))
        index._base_off = arrays["base_off"]
        index._base_slots = arrays["base_slots"]
        index._base_tfs = arrays["base_tfs"]
        if (
            index._base_off.size < 1
            or int(index._base_off[-1]) != index._base_slots.size
            or index._base_tfs.size != index._base_slots.size
        ):
            raise ValueError("base postings do not add up")
        tail_tids = arrays["tail_tids"].tolist()
        tail_sizes = arrays["tail_sizes"]
        tail_slots, tail_tfs = arrays["tail_slots"], arrays["tail_tfs"]
        if int(tail_sizes.sum()) != tail_slots.size or tail_tfs.size != tail_slots.size:
            raise ValueError("tail postings do not add up")
        packed = (tail_slots.astype(np.int64) << 32) | tail_tfs
        bounds = np.concatenate([[0], np.cumsum(tail_sizes)]).tolist()
        index._tail = {
            t: array("q", packed[bounds[i] : bounds[i + 1]].tobytes())
            for i, t in enumerate(tail_tids)
        }
        index._tail_size = int(tail_slots.size)
        base_n = int(head["base_slots"])
        index._bterm_off = arrays["bterm_off"]
        index._bterms = arrays["bterms"]
        if index._bterm_off.size != base_n + 1:
            raise ValueError("per-slot term offsets disagree with the slot count")
        new_sizes = arrays["new_sizes"]
        new_terms = arrays["new_terms"].tobytes()
        if new_sizes.size != n - base_n or int(new_sizes.sum()) * 4 != len(new_terms):
            raise ValueError("per-slot term lists do not add up")
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
        ub = arrays.get("base_ub")
        if ub is None:
            index._set_bounds()  # a v2 file: one pass over the postings
        else:
            if ub.size != index._base_off.size - 1:
                raise ValueError("term bounds disagree with the base")
            index._base_ub = ub
            index._ub_avgdl = float(head["ub_avgdl"])
        return index, dict(head.get("extra") or {})


class _Term(NamedTuple):
    """One query term: weight x idf, postings (slots ascending) and a bound of its score."""

    w: float
    slots: np.ndarray
    tfs: np.ndarray
    bound: float
    span: tuple[int, int] | None  # [start, end) in the base arrays, when that is all of them

    def contribution(
        self, slots: np.ndarray, tfs: np.ndarray, norm: np.ndarray, k1: float
    ) -> np.ndarray:
        tf = tfs.astype(np.float64)
        return self.w * tf * (k1 + 1.0) / (tf + norm[slots])

    def lookup(self, cand: np.ndarray, norm: np.ndarray, k1: float) -> np.ndarray:
        """The term's score for each of the int32 slots ``cand`` (0 where absent), by binary
        search in its ascending slots; same dtype, so the posting list is never copied."""
        out = np.zeros(cand.size, dtype=np.float64)
        if cand.size == 0 or self.slots.size == 0:
            return out
        pos = np.searchsorted(self.slots, cand)
        pos[pos == self.slots.size] = 0
        hit = self.slots[pos] == cand
        at = pos[hit]
        out[hit] = self.contribution(self.slots[at], self.tfs[at], norm, k1)
        return out


class _Integrity:
    """CRC-32 checks of mapped arrays, run in a background thread or in the caller's."""

    def __init__(self, path: str, parts: list[tuple[str, np.ndarray, int]]) -> None:
        self.path = path
        self.parts = parts
        self.error: str | None = None
        self.done = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self.run, name="bm25-verify", daemon=True).start()

    def run(self) -> None:
        name = ""
        try:
            for name, arr, crc in self.parts:
                # zlib releases the GIL on large buffers: searches go on meanwhile.
                if _crc(memoryview(arr).cast("B")) != crc:
                    self.error = f"{self.path}: checksum mismatch in {name}, the file is corrupt"
                    return
        except (OSError, ValueError, TypeError) as exc:
            # Data that could not be checked is not known to be sound: it must not be served,
            # nor copied into a new file under fresh checksums.
            self.error = f"{self.path}: {name} could not be verified ({exc})"
        finally:
            self.parts = []
            self.done.set()

    def raise_if_corrupt(self) -> None:
        if self.error is not None:
            raise IndexFormatError(self.error)


def _crc(data: memoryview) -> int:
    crc = 0
    for at in range(0, data.nbytes, _CRC_CHUNK):
        crc = zlib.crc32(data[at : at + _CRC_CHUNK], crc)
    return crc


def _read_v3(
    path: str | os.PathLike[str], buf: mmap.mmap
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, int]]]:
    """The footer and every array of a mapped file, the small arrays' checksums verified;
    returns each array with its expected CRC."""
    size = len(buf)
    end = size - len(_END_MAGIC) - _FOOTER.size
    if buf[size - len(_END_MAGIC) :] != _END_MAGIC:
        raise IndexFormatError(f"{path}: truncated or damaged trailer")
    flen, fcrc = _FOOTER.unpack_from(buf, end)
    if flen > end - len(_MAGIC):
        raise IndexFormatError(f"{path}: truncated or damaged trailer")
    footer = buf[end - flen : end]
    if zlib.crc32(footer) != fcrc:
        raise IndexFormatError(f"{path}: checksum mismatch in the footer, the file is corrupt")
    head = json.loads(footer)
    arrays = {}
    for name, (dtype, count, offset, crc) in head["arrays"].items():
        dt = np.dtype(dtype)
        if offset < len(_MAGIC) or offset + count * dt.itemsize > end - flen:
            raise ValueError(f"array {name} lies outside the file")
        arr = np.frombuffer(buf, dtype=dt, count=count, offset=offset)
        if name not in _LAZY and _crc(memoryview(arr).cast("B")) != crc:
            raise IndexFormatError(f"{path}: checksum mismatch in {name}, the file is corrupt")
        arrays[name] = (arr, crc)
    return head, arrays


def _parse_v2(payload: memoryview) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
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
    arrays = {"term_bytes": take(int(head["term_bytes"]), np.uint8)}
    arrays["pids"] = take(n, np.int64)
    arrays["lengths"] = take(n, np.float64)
    arrays["alive"] = take(n, np.uint8)
    arrays["df"] = take(n_terms, np.int64)
    arrays["base_off"] = take(int(head["base_terms"]) + 1, np.int64)
    arrays["base_slots"] = take(int(head["base_postings"]), np.int32)
    arrays["base_tfs"] = take(int(head["base_postings"]), np.int32)
    arrays["tail_tids"] = take(int(head["tail_terms"]), np.int64)
    arrays["tail_sizes"] = take(arrays["tail_tids"].size, np.int64)
    arrays["tail_slots"] = take(int(head["tail_postings"]), np.int32)
    arrays["tail_tfs"] = take(int(head["tail_postings"]), np.int32)
    arrays["bterm_off"] = take(int(head["base_slots"]) + 1, np.int64)
    arrays["bterms"] = take(int(head["base_slot_terms"]), np.int32)
    arrays["new_sizes"] = take(n - int(head["base_slots"]), np.int64)
    arrays["new_terms"] = take(int(head["new_slot_terms"]), np.int32)
    return head, arrays


def _max_ratios(
    off: np.ndarray, slots: np.ndarray, tfs: np.ndarray, norm: np.ndarray
) -> np.ndarray:
    """Per term of a CSR block, the largest ``tf / (tf + norm[slot])`` (0 for none), in
    chunks of a few million postings to bound the temporary arrays."""
    n_terms = off.size - 1
    out = np.zeros(n_terms, dtype=np.float64)
    chunk = 1 << 22
    ta = 0
    while ta < n_terms:
        # Whole terms, at least one, about ``chunk`` postings.
        tb = int(np.searchsorted(off, off[ta] + chunk, side="right")) - 1
        tb = min(max(tb, ta + 1), n_terms)
        p0, p1 = int(off[ta]), int(off[tb])
        if p1 > p0:
            tf = tfs[p0:p1].astype(np.float64)
            ratio = tf / (tf + norm[slots[p0:p1]])
            starts = off[ta:tb]
            used = np.flatnonzero(np.diff(off[ta : tb + 1]))
            out[ta + used] = np.maximum.reduceat(ratio, starts[used] - p0)
        ta = tb
    return out


def _kth(values: np.ndarray, k: int) -> float:
    """The k-th largest of ``values``, 0 if there are fewer."""
    if values.size < k:
        return 0.0
    return float(np.partition(values, values.size - k)[values.size - k])


def _grown(arr: np.ndarray, size: int) -> np.ndarray:
    """``arr`` copied into a zeroed array of ``size`` elements (``size >= len(arr)``)."""
    out = np.zeros(size, dtype=arr.dtype)
    out[: arr.size] = arr
    return out
