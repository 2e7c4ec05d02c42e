"""Compiled BM25 top-k: MaxScore, document at a time, over one query's postings (numba).

In NumPy, MaxScore paid a call per array operation and a binary search per looked-up passage
from the start of a posting list; compiled, it walks cursors forward once. It runs without the
GIL, so searches in a server's thread pool use both cores. Compiled code is cached on disk by
numba (``cache=True``), so a new process loads it instead of compiling again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_INT_MAX = np.iinfo(np.int64).max
# Postings of the highest-bound term scored in full for a first threshold.
_SEED = 1024


@njit(cache=True, nogil=True)
def _seek(slots, p, hi, d):  # type: ignore[no-untyped-def]
    """The first position in ``[p, hi)`` whose slot is ``>= d`` (galloping from ``p``: cursors
    only move forward, usually by a little)."""
    if p >= hi or slots[p] >= d:
        return p
    lo = p  # slot(lo) < d
    step = 1
    while lo + step < hi and slots[lo + step] < d:
        lo += step
        step *= 2
    top = min(lo + step, hi)  # slot(top) >= d, or top == hi
    lo += 1
    while lo < top:
        mid = (lo + top) >> 1
        if slots[mid] < d:
            lo = mid + 1
        else:
            top = mid
    return lo


@njit(cache=True, nogil=True, inline="always")
def _term_score(w, tf, kp1, norm_d):  # type: ignore[no-untyped-def]
    """One posting's BM25 score, in the float operations (and order) of a full scan."""
    return w * tf * kp1 / (tf + norm_d)


@njit(cache=True, nogil=True)
def _offer(heap, filled, score):  # type: ignore[no-untyped-def]
    """Keep ``score`` if it is among the best ``len(heap)``; returns the heap's new size."""
    if filled < heap.size:
        _heap_push(heap, filled, score)
        return filled + 1
    if score > heap[0]:
        _heap_replace_min(heap, score)
    return filled


@njit(cache=True, nogil=True)
def _heap_push(hs, size, value):  # type: ignore[no-untyped-def]
    """Min-heap of the best ``len(hs)`` scores: add ``value`` (heap not full)."""
    i = size
    hs[i] = value
    while i > 0:
        parent = (i - 1) >> 1
        if hs[parent] <= hs[i]:
            break
        hs[parent], hs[i] = hs[i], hs[parent]
        i = parent


@njit(cache=True, nogil=True)
def _heap_replace_min(hs, value):  # type: ignore[no-untyped-def]
    size = hs.size
    hs[0] = value
    i = 0
    while True:
        left = 2 * i + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and hs[left + 1] < hs[left]:
            child = left + 1
        if hs[i] <= hs[child]:
            break
        hs[i], hs[child] = hs[child], hs[i]
        i = child


@njit(cache=True, nogil=True)
def maxscore(  # type: ignore[no-untyped-def]
    slots, tfs, lo, hi, w, bound, norm, k1, k, mask, slack
):
    """Candidates for the exact top ``k`` and their scores, summed in query order.

    Terms are given in query order: ``w`` (weight x idf), ``bound`` (an upper bound of the
    term's score in any passage, with slack), and their postings, ``[lo, hi)`` of ``slots``
    (ascending) and ``tfs``. ``mask`` (bool per slot, or empty for none) excludes slots.
    Returns ``(slots, scores, scanned)``: every passage that may be in the top ``k`` (ties and
    float-rounding neighbours at the cut-off included, so the caller's final selection is
    exact), its score summed term by term in query order as a full scan sums it (bit for
    bit), and the postings read in order (the rest were only looked up, or skipped).

    MaxScore: terms by rising bound; once the k-th best score ``theta`` exceeds the summed
    bounds of the first few terms, a passage holding only those cannot make the top k, so they
    are "non-essential": only the essential terms' postings are walked, and the others are
    looked up (forward seek) for each passage while its score can still reach ``theta``.
    """
    n = w.size
    order = np.argsort(bound, kind="mergesort")
    cum = np.empty(n, dtype=np.float64)
    total = 0.0
    for j in range(n):
        total += bound[order[j]]
        cum[j] = total
    # Per sorted position: where the term's postings end, and its cursor.
    s_hi = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    s_w = np.empty(n, dtype=np.float64)
    for j in range(n):
        t = order[j]
        pos[j] = lo[t]
        s_hi[j] = hi[t]
        s_w[j] = w[t]
    has_mask = mask.size > 0
    kp1 = k1 + 1.0

    heap = np.empty(k, dtype=np.float64)
    theta = 0.0  # a lower bound of the k-th best score (0 until k passages are scored)
    cut = 0.0  # theta less the slack: what a passage must reach to be kept
    first = 0  # sorted terms before ``first`` are non-essential

    # A first theta from the passages of the term with the highest bound (usually the rarest
    # and most telling), scored in full: walking from theta 0, every term stays essential, and
    # a common term's postings would be read until k good passages happened to turn up.
    top = n - 1
    cursor = pos.copy()
    filled = 0
    for p in range(pos[top], min(s_hi[top], pos[top] + _SEED)):
        d = slots[p]
        if has_mask and not mask[d]:
            continue
        score = _term_score(s_w[top], float(tfs[p]), kp1, norm[d])
        for j in range(top):
            q = _seek(slots, cursor[j], s_hi[j], d)
            cursor[j] = q
            if q < s_hi[j] and slots[q] == d:
                score += _term_score(s_w[j], float(tfs[q]), kp1, norm[d])
        filled = _offer(heap, filled, score)
    if filled == k:
        theta = heap[0]
        cut = theta * (1.0 - slack)
        while first < n and cum[first] < cut:
            first += 1
    filled = 0
    out_slots = np.empty(max(4 * k, 64), dtype=np.int64)
    out_scores = np.empty(out_slots.size, dtype=np.float64)
    kept = 0
    scanned = 0
    while True:
        d = _INT_MAX
        for j in range(first, n):
            if pos[j] < s_hi[j]:
                s = slots[pos[j]]
                if s < d:
                    d = s
        if d == _INT_MAX:
            break
        score = 0.0
        for j in range(first, n):
            p = pos[j]
            if p < s_hi[j] and slots[p] == d:
                score += _term_score(s_w[j], float(tfs[p]), kp1, norm[d])
                pos[j] = p + 1
                scanned += 1
        if has_mask and not mask[d]:
            continue
        reachable = True
        for j in range(first - 1, -1, -1):
            if score + cum[j] < cut:
                reachable = False
                break
            p = _seek(slots, pos[j], s_hi[j], d)
            pos[j] = p
            if p < s_hi[j] and slots[p] == d:
                score += _term_score(s_w[j], float(tfs[p]), kp1, norm[d])
        if not reachable or score < cut or score <= 0.0:
            continue
        if kept == out_slots.size:
            out_slots = np.concatenate((out_slots, np.empty_like(out_slots)))
            out_scores = np.concatenate((out_scores, np.empty_like(out_scores)))
        out_slots[kept] = d
        out_scores[kept] = score
        kept += 1
        filled = _offer(heap, filled, score)
        if filled == k and heap[0] > theta:
            theta = heap[0]
            cut = theta * (1.0 - slack)
            while first < n and cum[first] < cut:
                first += 1
            # Drop what fell below the cut once the kept list has grown well past k.
            if kept > 4 * k:
                m = 0
                for i in range(kept):
                    if out_scores[i] >= cut:
                        out_slots[m] = out_slots[i]
                        out_scores[m] = out_scores[i]
                        m += 1
                kept = m

    # The survivors, scored again term by term in query order (the floats of a full scan).
    m = 0
    for i in range(kept):
        if out_scores[i] >= cut:
            out_slots[m] = out_slots[i]
            m += 1
    found = np.sort(out_slots[:m])
    scores = np.zeros(m, dtype=np.float64)
    for t in range(n):
        p, z = lo[t], hi[t]
        for i in range(m):
            d = found[i]
            p = _seek(slots, p, z, d)
            if p == z:
                break
            if slots[p] == d:
                scores[i] += _term_score(w[t], float(tfs[p]), kp1, norm[d])
    return found, scores, scanned


def warm_up() -> None:
    """Compile (or load from numba's disk cache) the variants a service uses: postings in a
    mapped, read-only file and in memory. Done at start-up, so no query pays for it."""
    slots = np.array([0, 1], dtype=np.int32)
    tfs = np.array([1, 2], dtype=np.int32)
    args = (np.array([0]), np.array([2]), np.ones(1), np.full(1, 3.0), np.ones(2), 1.2, 1)
    maxscore(slots, tfs, *args, np.zeros(0, dtype=bool), 1e-9)
    frozen_slots, frozen_tfs = slots.copy(), tfs.copy()
    frozen_slots.setflags(write=False)
    frozen_tfs.setflags(write=False)
    maxscore(frozen_slots, frozen_tfs, *args, np.zeros(0, dtype=bool), 1e-9)
