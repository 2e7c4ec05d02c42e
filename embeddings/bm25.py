"""Okapi BM25 over token lists, kept up to date passage by passage.

Postings are compact ``array('i')`` pairs (passage slots, term frequencies) per term, turned into
numpy arrays at query time, so a search costs a few vector operations per query term.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import Counter
from collections.abc import Iterable

import numpy as np

from embeddings.errors import EmbeddingError


class BM25Index:
    """BM25 with incremental ``add`` and exact ``remove``.

    Document count, average length and document frequencies always describe exactly the
    passages present, so scores after any sequence of adds and removes equal those of an index
    built from scratch over the same passages. Not thread-safe: the caller holds a lock.
    """

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise EmbeddingError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = k1
        self.b = b
        # term -> (slots of the passages holding it, its frequency in each); same order in both.
        self._postings: dict[str, tuple[array, array]] = {}
        # Passages live in reusable slots so the per-passage arrays below stay dense.
        self._slot_of: dict[int, int] = {}
        self._pid_of_slot = np.zeros(16, dtype=np.int64)
        self._length = np.zeros(16, dtype=np.float64)
        self._terms_of_slot: list[tuple[str, ...]] = [()] * 16
        self._free_slots: list[int] = []
        self._next_slot = 0
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, pid: object) -> bool:
        return pid in self._slot_of

    @property
    def avgdl(self) -> float:
        return self._total_length / len(self._slot_of) if self._slot_of else 0.0

    def doc_freq(self, token: str) -> int:
        posting = self._postings.get(token)
        return len(posting[0]) if posting else 0

    def idf(self, token: str) -> float:
        """``log(1 + (N - df + 0.5) / (df + 0.5))``: never negative, so a term found in most
        passages still adds a little instead of penalising them. A token that no passage holds
        gets the highest value."""
        df = self.doc_freq(token)
        return math.log1p((len(self._slot_of) - df + 0.5) / (df + 0.5))

    def add(self, pid: int, tokens: Iterable[str]) -> None:
        """Index passage ``pid``. An id already present is an error: ``remove`` it first."""
        if pid in self._slot_of:
            raise EmbeddingError(f"passage {pid} is already in the BM25 index")
        # Interned, so the many passages holding a term share one string object.
        counts = {sys.intern(t): tf for t, tf in Counter(tokens).items()}
        length = sum(counts.values())
        slot = self._take_slot()
        self._slot_of[pid] = slot
        self._pid_of_slot[slot] = pid
        self._length[slot] = length
        self._terms_of_slot[slot] = tuple(counts)
        self._total_length += length
        postings = self._postings
        for term, tf in counts.items():
            posting = postings.get(term)
            if posting is None:
                posting = postings[term] = (array("i"), array("i"))
            posting[0].append(slot)
            posting[1].append(tf)

    def remove(self, pid: int) -> bool:
        """Forget passage ``pid``; ``False`` if it was not indexed."""
        slot = self._slot_of.pop(pid, None)
        if slot is None:
            return False
        postings = self._postings
        for term in self._terms_of_slot[slot]:
            slots, tfs = postings[term]
            at = slots.index(slot)
            # Swap with the last entry: order inside a posting list carries no meaning.
            slots[at] = slots[-1]
            tfs[at] = tfs[-1]
            slots.pop()
            tfs.pop()
            if not slots:
                del postings[term]
        self._total_length -= int(self._length[slot])
        self._length[slot] = 0.0
        self._terms_of_slot[slot] = ()
        self._free_slots.append(slot)
        return True

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
        avgdl = self._total_length / n or 1.0
        k1, b = self.k1, self.b
        scores = np.zeros(self._next_slot, dtype=np.float64)
        # Per-passage length normalisation, computed once for every slot rather than per term.
        norm = k1 * (1.0 - b + b * self._length[: self._next_slot] / avgdl)
        touched: list[np.ndarray] = []
        for term, weight in self._query_weights(query_tokens).items():
            posting = self._postings.get(term)
            if posting is None:
                continue
            slots = np.array(posting[0], dtype=np.intp)
            tfs = np.array(posting[1], dtype=np.float64)
            df = slots.size
            idf = math.log1p((n - df + 0.5) / (df + 0.5))
            # Slots are unique within one posting list, so fancy-index += adds each once.
            scores[slots] += weight * idf * tfs * (k1 + 1.0) / (tfs + norm[slots])
            touched.append(slots)
        if not touched:
            return []
        candidates = np.unique(np.concatenate(touched))
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

    def _query_weights(self, query_tokens: Iterable[str]) -> dict[str, float]:
        return dict.fromkeys(query_tokens, 1.0)

    def _take_slot(self) -> int:
        if self._free_slots:
            return self._free_slots.pop()
        slot = self._next_slot
        if slot == self._length.size:
            grow = self._length.size
            self._length = np.concatenate([self._length, np.zeros(grow)])
            self._pid_of_slot = np.concatenate([self._pid_of_slot, np.zeros(grow, dtype=np.int64)])
            self._terms_of_slot.extend([()] * grow)
        self._next_slot += 1
        return slot
