"""Inner-product search over passage vectors, keyed by int64 passage ids (FAISS).

Every vector is kept exactly, as rows of a float32 matrix: the source of exact deletes,
upserts, re-ranking and ``similarity``. The rows saved last are memory-mapped from the index
file (start-up reads ids only, never the vectors); rows added since live in memory, and a
removed row is only forgotten (the next save compacts). Up to ``exact_max`` vectors a search
scans every row. Above, a compressed copy (``IndexPQFastScan``: 4-bit product quantisation,
one byte per 8 dimensions, scanned with SIMD lookups) proposes ``k x k_factor`` candidates
that are re-scored exactly from the stored rows; ``k_factor`` is tuned at build time for
recall@10 >= ``target_recall`` against exact search. The compressed index is trained in a
background thread on a snapshot and swapped in under the caller's lock with the changes made
meanwhile replayed, so no query waits for a training run.

Measured and rejected at one million passages of the built-in encoder's hashed n-gram vectors
(a question lights ~23 of 512 dimensions; ~250 passages share its clause, nearly tied):
an inverted file (k-means lists hold 0.79 of the true top 10 with a fifth of 1024 lists
probed, 0.84 with a fifth of 4096), HNSW over 8-bit codes (recall@10 0.86 at efSearch 512,
3 ms, already at 100k passages, 73 s to build them), and fewer sub-quantisers (64: recall
0.85 with 1280 candidates re-ranked; 32: 0.57). The scan of 128 4-bit codes per vector is
memory-bound (64 MB per query at 1M, ~7 ms); re-ranking 1280 rows adds ~1 ms.

File format: an 8-byte magic, a header (dimension, rows per checksum block, count), the ids
(int64, ascending), the vectors (float32, row-major, 64-byte aligned, in id order), a CRC-32
per block of rows, a CRC-32 of header, ids and block table, and an end magic. The ids and
table are verified at load; the vector blocks too when small, else by a background thread
after start-up. A block that fails its check marks the index ``damaged``: its file is deleted
so the next start-up embeds every passage again from the store (the source of truth), and
the caller stops trusting the vectors meanwhile. The older single-CRC FAISS file (magic
``SQAVIDX1``) still loads (read and checked whole, as before) and is rewritten in the new
format at the next save. The compressed index lives beside the exact one (``<path>.pq``):
FAISS bytes wrapped in the same magic, header and CRC trailer; if it is missing, damaged or
out of step it is rebuilt in the background while searches stay exact.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import faiss
import numpy as np

from embeddings.errors import EmbeddingError, IndexFormatError
from embeddings.files import atomic_write, fsync_directory

log = logging.getLogger(__name__)

_MAGIC = b"SQAVEC02"
_END_MAGIC = b"SQAVEND2"
_HEADER = struct.Struct("<IIQ")  # dim, rows per checksum block, count
_ALIGN = 64
_BLOCK_ROWS = 16_384  # 32 MiB of 512-dim rows per checksum
# Vector data up to this size is verified before load returns; above, in the background.
VERIFY_SYNC_MAX = 64 << 20
# The previous format: FAISS IndexIDMap2(IndexFlatIP) bytes with one CRC (still read).
_OLD_MAGIC = b"SQAVIDX1"
_OLD_END_MAGIC = b"SQAVEND1"
_OLD_HEADER = struct.Struct("<I")  # dim
_TRAILER = struct.Struct("<QI")  # payload length, CRC-32 of the payload
_PQ_MAGIC = b"SQAVPQ01"
_PQ_HEADER = struct.Struct("<II")  # dim, k_factor

# Above this many vectors the compressed scan takes over from the exact one. An exact scan of
# 512-dimensional float32 costs about 1 ms per 10k vectors on one core: ~5 ms at this size.
DEFAULT_EXACT_MAX = 50_000
DEFAULT_TARGET_RECALL = 0.97
_K_FACTORS = (8, 16, 32, 64, 128)
_TRAIN_MAX = 65_536
_TUNE_QUERIES = 200
# A filtered search over at most this many allowed ids is computed exactly from their vectors.
_EXACT_FILTER_MAX = 20_000
_SCAN_ROWS = 32_768  # rows per matrix product of an exact scan (64 MiB at 512 dimensions)


def pq_subquantizers(dim: int) -> int:
    """Sub-vectors of the product quantiser: one per 4 dimensions (a 4-bit code each, so
    ``dim / 8`` bytes per vector), or the largest divisor of ``dim`` below that."""
    for m in range(max(1, dim // 4), 0, -1):
        if dim % m == 0:
            return m
    return 1


def candidates(k: int, k_factor: int) -> int:
    """Codes proposed for exact re-ranking in a top-``k`` search.

    ``k_factor`` is tuned for recall@10, so a top-10 search re-ranks ``10 x k_factor``; a
    larger ``k`` adds only its extra ranks. Scaling the factor with ``k`` instead would make
    the retriever's pool of 100 re-rank 12,800 vectors at 1M (most of the old 18 ms). Measured
    at 1M (k_factor 128): recall@10 0.969 and recall@100 0.908 with 1,370 candidates, against
    0.983 and 0.956 with twice that for +2.5 ms; the ranks past 10 only matter to the fusion
    for passages BM25 did not find, whose exact cosine ``similarity`` supplies anyway.
    """
    return 10 * max(k_factor, 1) + max(0, k - 10)


class Rows:
    """An immutable view of stored vectors: ``ids`` (ascending) and their rows' vectors.

    Rows are never written once stored (a removal only drops the id), so a view taken under
    the caller's lock stays valid for a background build while the index changes.
    """

    def __init__(
        self, ids: np.ndarray, rows: np.ndarray, base: np.ndarray, tail: np.ndarray
    ) -> None:
        self.ids = ids
        self.rows = rows
        self.base = base
        self.tail = tail

    @classmethod
    def of(cls, ids: np.ndarray, vectors: np.ndarray) -> Rows:
        """A view of in-memory ``vectors[i]`` under ``ids[i]`` (any id order)."""
        ids = np.asarray(ids, dtype=np.int64)
        order = np.argsort(ids, kind="stable")
        vec = np.ascontiguousarray(vectors, dtype=np.float32)
        return cls(ids[order], order.astype(np.int64), vec, vec[:0])

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def dim(self) -> int:
        return int(self.base.shape[1])

    def take(self, positions: np.ndarray | slice) -> np.ndarray:
        """The vectors at these positions of ``ids`` (a float32 copy)."""
        return _gather(self.base, self.tail, self.rows[positions])

    def chunks(self, size: int = _SCAN_ROWS) -> Iterator[tuple[int, np.ndarray]]:
        """Consecutive runs of positions and their vectors: a view, not a copy, where the
        rows are consecutive within one array (the usual case: ids saved or added in order)."""
        for start in range(0, len(self), size):
            rows = self.rows[start : start + size]
            first, nb = int(rows[0]), self.base.shape[0]
            last = int(rows[-1])
            if last - first == rows.size - 1 and bool(np.all(np.diff(rows) == 1)):
                if last < nb:
                    yield start, np.asarray(self.base[first : last + 1])
                    continue
                if first >= nb:
                    yield start, self.tail[first - nb : last + 1 - nb]
                    continue
            yield start, _gather(self.base, self.tail, rows)

    def positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each of ``ids``: whether it is here, and its position (valid where found)."""
        if self.ids.size == 0 or ids.size == 0:
            return np.zeros(ids.size, dtype=bool), np.zeros(ids.size, dtype=np.int64)
        at = np.searchsorted(self.ids, ids)
        at[at == self.ids.size] = 0
        return self.ids[at] == ids, at


def _gather(base: np.ndarray, tail: np.ndarray, rows: np.ndarray) -> np.ndarray:
    nb = base.shape[0]
    if isinstance(rows, np.ndarray) and rows.size and rows.max() < nb:
        return np.ascontiguousarray(base[rows])
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((rows.size, base.shape[1]), dtype=np.float32)
    in_base = rows < nb
    out[in_base] = base[rows[in_base]]
    out[~in_base] = tail[rows[~in_base] - nb]
    return out


class VectorIndex:
    """Exact below ``exact_max`` vectors, compressed scan plus exact re-rank above.

    Not thread-safe for mutation: the caller holds one lock around every call (searches may
    share a read lock if nothing writes meanwhile). A background build only reads its own
    snapshot; its result is swapped in by the next call that finds it ready.
    """

    def __init__(
        self,
        dim: int,
        *,
        exact_max: int = DEFAULT_EXACT_MAX,
        k_factor: int | None = None,
        target_recall: float = DEFAULT_TARGET_RECALL,
        background: bool = True,
    ) -> None:
        if dim < 1:
            raise EmbeddingError(f"dim must be positive, got {dim}")
        if exact_max < 1:
            raise EmbeddingError(f"exact_max must be positive, got {exact_max}")
        self.dim = dim
        self.exact_max = exact_max
        self.fixed_k_factor = k_factor
        self.target_recall = target_recall
        self.background = background
        # Rows: ``_base`` (memory-mapped from the last save, or in memory) then ``_tail``
        # (added since, the first ``_tail_n`` rows used). ``_sorted`` holds the live ids in
        # ascending order and ``_rows`` their row numbers; a removed id's row stays, unused.
        self._base = np.zeros((0, dim), dtype=np.float32)
        self._tail = np.zeros((0, dim), dtype=np.float32)
        self._tail_n = 0
        self._sorted = np.zeros(0, dtype=np.int64)
        self._rows = np.zeros(0, dtype=np.int64)
        self._coarse: faiss.Index | None = None
        self.k_factor = 0
        self._built_at = 0  # vectors the compressed index was trained and tuned on
        self._stale = 0  # codes in the compressed index whose id was removed since
        self.upgraded = False  # loaded from the old format: the next save rewrites it
        # Background build: the thread, its result, and the mutations made since its snapshot.
        self._swap_lock = threading.Lock()
        self._builder: threading.Thread | None = None
        self._built: tuple[faiss.Index, int] | None = None
        self._build_error: BaseException | None = None
        self._pending: list[tuple[str, np.ndarray, np.ndarray | None]] = []
        # Background check of a mapped file's vector blocks.
        self._path: Path | None = None
        self._verifier: threading.Thread | None = None
        self._damage: str | None = None
        self.damaged: str | None = None

    # -- introspection ----------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._sorted.size)

    @property
    def kind(self) -> str:
        """``"flat"`` (exact scan) or ``"pq"`` (compressed scan, exact re-rank)."""
        return "flat" if self._coarse is None else "pq"

    @property
    def building(self) -> bool:
        return self._builder is not None

    def ids(self) -> np.ndarray:
        """The stored ids (int64), sorted."""
        return self._sorted.copy()

    def rows(self) -> Rows:
        """A view of every stored vector, valid however the index changes afterwards."""
        return Rows(self._sorted, self._rows, self._base, self._tail)

    def contains(self, ids: np.ndarray | list[int]) -> np.ndarray:
        """A boolean mask: which of ``ids`` are stored."""
        return self.rows().positions(_as_ids(ids))[0]

    # -- mutation ---------------------------------------------------------------------------
    def add(self, ids: np.ndarray | list[int], vectors: np.ndarray) -> None:
        """Add ``vectors[i]`` under ``ids[i]``. All or nothing: any invalid input adds none.

        Ids already present are rejected rather than duplicated; to replace a passage's vector,
        ``remove`` it first.
        """
        self._maybe_swap()
        id_array = _as_ids(ids)
        vec = np.asarray(vectors)
        if vec.ndim != 2 or vec.shape[1] != self.dim:
            raise EmbeddingError(f"vectors must have shape (n, {self.dim}), got {vec.shape}")
        if vec.shape[0] != id_array.size:
            raise EmbeddingError(f"{id_array.size} ids for {vec.shape[0]} vectors")
        if id_array.size == 0:
            return
        vec = np.ascontiguousarray(vec, dtype=np.float32)
        if not np.isfinite(vec).all():
            raise EmbeddingError("vectors contain NaN or infinity")
        if np.unique(id_array).size != id_array.size:
            raise EmbeddingError("duplicate ids in one add")
        clash = id_array[self.contains(id_array)]
        if clash.size:
            raise EmbeddingError(f"ids already in the index: {clash[:10].tolist()}")
        rows = self._append_rows(vec)
        if self._sorted.size == 0 or id_array.min() > self._sorted[-1]:
            order = np.argsort(id_array)
            self._sorted = np.concatenate([self._sorted, id_array[order]])
            self._rows = np.concatenate([self._rows, rows[order]])
        else:
            all_ids = np.concatenate([self._sorted, id_array])
            order = np.argsort(all_ids, kind="stable")
            self._sorted = all_ids[order]
            self._rows = np.concatenate([self._rows, rows])[order]
        if self._coarse is not None:
            self._coarse.add_with_ids(vec, id_array)
        if self._builder is not None:
            self._pending.append(("add", id_array, vec))
        self._maybe_rebuild()

    def _append_rows(self, vec: np.ndarray) -> np.ndarray:
        need = self._tail_n + vec.shape[0]
        if need > self._tail.shape[0]:
            # A new array, never a resize in place: views held by a build keep the old one.
            grown = np.empty((max(need, 2 * self._tail.shape[0], 1024), self.dim), np.float32)
            grown[: self._tail_n] = self._tail[: self._tail_n]
            self._tail = grown
        self._tail[self._tail_n : need] = vec
        first = self._base.shape[0] + self._tail_n
        self._tail_n = need
        return np.arange(first, first + vec.shape[0], dtype=np.int64)

    def remove(self, ids: np.ndarray | list[int]) -> int:
        """Remove these ids; return how many were present. Unknown ids are ignored."""
        self._maybe_swap()
        id_array = _as_ids(ids)
        if id_array.size == 0 or len(self) == 0:
            return 0
        found, at = self.rows().positions(np.unique(id_array))
        at = at[found]
        if at.size == 0:
            return 0
        id_array = self._sorted[at]
        # The binary search already placed them: no second pass sorting every stored id.
        keep = np.ones(self._sorted.size, dtype=bool)
        keep[at] = False
        self._sorted = self._sorted[keep]
        self._rows = self._rows[keep]
        # The compressed index keeps removed ids' codes (FAISS's fast-scan removal misplaces
        # codes): re-ranking drops them, and a rebuild clears them once they are a quarter.
        self._stale += id_array.size
        if self._builder is not None:
            self._pending.append(("remove", id_array, None))
        return int(id_array.size)

    # -- search -----------------------------------------------------------------------------
    def search(
        self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """The ``k`` best ``(id, inner product)`` per query row, best first.

        ``allowed_ids`` restricts the candidates to those ids (so a query still gets up to
        ``k`` results however few ids are allowed; a small allowed set is scored exactly from
        its stored vectors).
        """
        self._maybe_swap()
        q = self._queries(queries)
        m = q.shape[0]
        coarse = self._coarse
        k = min(k, len(self))
        if k <= 0 or m == 0:
            return [[] for _ in range(m)]
        if allowed_ids is not None:
            allowed = _as_ids(allowed_ids)
            if allowed.size == 0:
                return [[] for _ in range(m)]
            if allowed.size <= _EXACT_FILTER_MAX:
                return self._search_exact_subset(q, k, allowed)
            return _exact_top(self.rows(), q, k, allowed)
        if coarse is None:
            return _exact_top(self.rows(), q, k)
        return self._search_reranked(coarse, q, k)

    def search_exact(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """The exact ``k`` best of every stored vector, whatever the index kind (slow above
        ``exact_max``: the yardstick the compressed search is measured against)."""
        q = self._queries(queries)
        k = min(k, len(self))
        if k <= 0:
            return [[] for _ in range(q.shape[0])]
        return _exact_top(self.rows(), q, k)

    def _queries(self, queries: np.ndarray) -> np.ndarray:
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise EmbeddingError(f"queries must have shape (m, {self.dim}), got {q.shape}")
        return np.ascontiguousarray(q, dtype=np.float32)

    def _search_reranked(
        self, coarse: faiss.Index, q: np.ndarray, k: int
    ) -> list[list[tuple[int, float]]]:
        want = min(int(coarse.ntotal), candidates(k, self.k_factor))
        _, cand = coarse.search(q, want)
        view = self.rows()
        out = []
        for row, ids in zip(q, cand, strict=True):
            # Sorted and unique (an upserted id may be proposed twice): rows read in order.
            ids = np.unique(ids[ids != -1])
            found, at = view.positions(ids)  # drops codes of removed ids
            out.append(_rerank(view, row, at[found], k))
        return out

    def _search_exact_subset(
        self, q: np.ndarray, k: int, allowed: np.ndarray
    ) -> list[list[tuple[int, float]]]:
        view = self.rows()
        found, at = view.positions(np.unique(allowed))
        return [_rerank(view, row, at[found], k) for row in q]

    def similarity(self, query: np.ndarray, ids: np.ndarray | list[int]) -> dict[int, float]:
        """Exact inner products of one query with the stored vectors of ``ids`` (unknown ids are
        left out): scores for candidates another retriever found outside the top ``k``."""
        id_array = _as_ids(ids)
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise EmbeddingError(f"query must have {self.dim} dimensions, got {q.shape[0]}")
        view = self.rows()
        found, at = view.positions(id_array)
        if not found.any():
            return {}
        known = id_array[found]
        scores = view.take(at[found]) @ q
        return dict(zip(known.tolist(), scores.tolist(), strict=True))

    # -- the compressed index ----------------------------------------------------------------
    def _maybe_rebuild(self) -> None:
        """Build when the exact index outgrew ``exact_max``; rebuild (retrain and retune the
        candidate factor) each time the collection has grown fourfold since."""
        if self._builder is not None or len(self) <= self.exact_max:
            return
        if (
            self._coarse is None
            or len(self) > 4 * self._built_at
            or self._stale > 0.25 * self._coarse.ntotal
        ):
            self.start_build()

    def start_build(self) -> None:
        """Train the compressed index on a snapshot of the current vectors (in the background
        unless ``background`` is false); the result is swapped in by the next call."""
        if self._builder is not None:
            return
        view = self.rows()
        self._built_at = max(len(view), 1)
        self._pending = []
        self._built = None
        self._build_error = None

        def run() -> None:
            try:
                self._built = build_pq(
                    view.ids, view, k_factor=self.fixed_k_factor, target_recall=self.target_recall
                )
            except BaseException as exc:  # reported at the next swap, never lost silently
                self._build_error = exc

        if self.background:
            self._builder = threading.Thread(target=run, name="pq-build", daemon=True)
            self._builder.start()
        else:
            self._builder = threading.current_thread()
            run()
            self._maybe_swap()

    def wait_for_build(self, timeout: float | None = None) -> None:
        """Block until a running build finished and was swapped in (for tools and tests)."""
        builder = self._builder
        if builder is not None and builder is not threading.current_thread():
            builder.join(timeout)
        self._maybe_swap()

    def wait_for_check(self, timeout: float | None = None) -> None:
        """Block until the background check of a loaded file's vectors is over."""
        verifier = self._verifier
        if verifier is not None:
            verifier.join(timeout)
        self._maybe_swap()

    def _maybe_swap(self) -> None:
        if self._damage is not None and self.damaged is None:
            self._on_damage()
        if self._builder is None or (self._built is None and self._build_error is None):
            return
        with self._swap_lock:
            if self._builder is None:
                return
            if self._build_error is not None:
                log.error("compressed index build failed; staying exact: %s", self._build_error)
                self._builder = None
                self._pending = []
                self._build_error = None
                return
            if self._built is None:
                return
            coarse, k_factor = self._built
            stale = 0
            for op, ids, vecs in self._pending:
                if op == "add":
                    coarse.add_with_ids(vecs, ids)
                else:
                    stale += ids.size
            self._stale = stale
            log.info("vector index: PQ fast scan, re-ranking %d x k candidates", k_factor)
            self.k_factor = k_factor
            self._coarse = coarse
            self._pending = []
            self._built = None
            self._builder = None

    def _on_damage(self) -> None:
        """A mapped block failed its checksum: delete the file (if it is still the one mapped)
        so the next start-up re-embeds from the store; ``damaged`` tells the caller."""
        with self._swap_lock:
            if self.damaged is not None:
                return
            self.damaged = self._damage
            log.error("vector index damaged (%s); it will be rebuilt from the store", self._damage)
            path = self._path
            if path is not None and _same_file(path, self._base):
                path.unlink(missing_ok=True)
                _sidecar(path).unlink(missing_ok=True)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, map_saved: bool = True) -> Rows | None:
        """Write the index to ``path`` (and the compressed one to ``path.pq``) atomically.

        The bytes go to ``path.tmp``, are fsynced, and replace ``path`` in one rename; the directory
        is fsynced so the rename survives a power cut. A crash at any point leaves either the old
        file or the new one, never a mix. The saved rows are then mapped from the new file
        (removed rows dropped, added rows out of memory). A damaged index is not written:
        its vectors cannot be trusted, so the file stays deleted for a rebuild.

        With ``map_saved=False`` nothing here changes (a caller may write while searches run)
        and the rows written are returned for ``map_saved`` later.
        """
        self.wait_for_check()
        if self.damaged is not None:
            log.error("not saving the damaged vector index (%s)", self.damaged)
            return None
        target = Path(path)
        view = self.rows()
        atomic_write(target, lambda fh: _write_rows(fh, view))
        side = _sidecar(target)
        coarse = self._coarse
        if coarse is None:
            side.unlink(missing_ok=True)
        else:
            k_factor = self.k_factor
            atomic_write(
                side,
                lambda fh: _write_wrapped(
                    fh, _PQ_MAGIC, _PQ_HEADER.pack(self.dim, k_factor), coarse
                ),
            )
        fsync_directory(target.parent)
        if map_saved:
            self.map_saved(target, view)
        return view

    def map_saved(self, path: str | os.PathLike[str], view: Rows) -> None:
        """Serve ``view``'s rows from the file ``save`` wrote them to (their memory dropped);
        nothing happens if the index no longer holds exactly those ids."""
        path = Path(path)
        try:
            _, ids, base = _open_rows(path, self.dim)
        except (IndexFormatError, OSError) as exc:  # e.g. address space: keep the rows in memory
            log.warning("cannot map the saved vectors (%s); keeping them in memory", exc)
            return
        if not np.array_equal(ids, view.ids):
            return
        self._base, self._tail, self._tail_n = base, self._tail[:0], 0
        self._sorted, self._rows = ids, np.arange(ids.size, dtype=np.int64)
        self._path = path
        self.upgraded = False

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        dim: int,
        *,
        exact_max: int = DEFAULT_EXACT_MAX,
        k_factor: int | None = None,
        target_recall: float = DEFAULT_TARGET_RECALL,
        background: bool = True,
        verify_sync_max: int = VERIFY_SYNC_MAX,
    ) -> VectorIndex:
        """Read an index written by ``save`` (or by the previous format).

        Raises ``FileNotFoundError`` if there is no file, and ``IndexFormatError`` if it is not a
        complete index of dimension ``dim``, or if its ids or (up to ``verify_sync_max`` bytes)
        its vectors fail their checksums; larger vector data is checked in the background. A
        compressed index that is missing, damaged or out of step with the exact one is rebuilt
        in the background (if over ``exact_max``).
        """
        path = Path(path)
        result = cls(
            dim,
            exact_max=exact_max,
            k_factor=k_factor,
            target_recall=target_recall,
            background=background,
        )
        with open(path, "rb") as fh:
            magic = fh.read(len(_MAGIC))
        if magic == _OLD_MAGIC:
            ids, vectors = _read_old(path, dim)
            view = Rows.of(ids, vectors)
            result._base, result._sorted, result._rows = view.base, view.ids, view.rows
            result.upgraded = True
        else:
            blocks, ids, base = _open_rows(path, dim)
            result._base, result._sorted = base, ids
            result._rows = np.arange(ids.size, dtype=np.int64)
            result._path = path
            if base.nbytes <= verify_sync_max:
                bad = _check_blocks(base, blocks)
                if bad is not None:
                    raise IndexFormatError(
                        f"{path}: checksum mismatch, the file is corrupt ({bad})"
                    )
            else:
                result._start_check(path, base, blocks)
        result._load_sidecar(path)
        result._maybe_rebuild()
        return result

    def _start_check(self, path: Path, base: np.ndarray, blocks: np.ndarray) -> None:
        def run() -> None:
            try:
                bad = _check_blocks(base, blocks)
            except (OSError, ValueError) as exc:  # an I/O error reading the mapping
                bad = f"unreadable: {exc}"
            if bad is not None:
                self._damage = f"{path}: {bad}"

        self._verifier = threading.Thread(target=run, name="vector-check", daemon=True)
        self._verifier.start()

    def _load_sidecar(self, path: Path) -> None:
        side = _sidecar(path)
        if not side.exists() or len(self) <= self.exact_max:
            return
        try:
            header, coarse = _read_wrapped(side, _PQ_MAGIC, _PQ_HEADER.size)
        except (IndexFormatError, OSError) as exc:
            log.warning("compressed index unreadable (%s); rebuilding it", exc)
            return
        side_dim, side_k = _PQ_HEADER.unpack(header)
        ok = side_dim == self.dim and isinstance(coarse, faiss.IndexIDMap | faiss.IndexIDMap2)
        if ok:
            # Every stored id must have a code; codes of removed ids are tolerated.
            # (A sort and a binary search: ``np.unique``'s hashing took 1.2 s at 1M.)
            coarse_ids = np.sort(faiss.vector_to_array(coarse.id_map))
            ok = coarse_ids.size > 0 and bool(_member(self._sorted, coarse_ids).all())
        if not ok:
            log.warning("%s is out of step with the vectors; rebuilding it", side)
            return
        self._coarse = coarse
        self.k_factor = self.fixed_k_factor or side_k
        self._built_at = len(self)
        self._stale = int(coarse.ntotal) - len(self)


def build_pq(
    ids: np.ndarray,
    vectors: np.ndarray | Rows,
    *,
    k_factor: int | None = None,
    target_recall: float = DEFAULT_TARGET_RECALL,
    seed: int = 1234,
) -> tuple[faiss.Index, int]:
    """An ``IndexIDMap(IndexPQFastScan)`` over ``vectors`` and the candidate factor: given,
    or the smallest of 8, 16, .. 128 whose re-ranked recall@10 reaches ``target_recall``."""
    view = vectors if isinstance(vectors, Rows) else Rows.of(ids, vectors)
    n, dim = len(view), view.dim
    pq = faiss.IndexPQFastScan(dim, pq_subquantizers(dim), 4, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, _TRAIN_MAX, replace=False)) if n > _TRAIN_MAX else slice(None)
    pq.train(view.take(sample))
    # No reverse map (IndexIDMap, not IDMap2): candidates are only translated to ids.
    index = faiss.IndexIDMap(pq)
    # The wrapper owns the quantiser, so it stays alive with the wrapper alone.
    pq.this.disown()
    index.own_fields = True
    for start, chunk in view.chunks():
        index.add_with_ids(chunk, view.ids[start : start + chunk.shape[0]])
    if k_factor is None:
        k_factor = tune_k_factor(index, view, target_recall, rng)
    return index, k_factor


def tune_k_factor(
    coarse: faiss.Index,
    view: Rows,
    target_recall: float,
    rng: np.random.Generator,
    k: int = 10,
) -> int:
    """The smallest candidate factor whose mean re-ranked recall@k reaches ``target_recall``.

    The queries are stored vectors drowned in noise of twice their norm: far off the data, as
    real questions are (a question shares only part of its passage's words). Measured on 100k
    synthetic passages with the built-in encoder, this picks 64, where real questions reach
    recall@10 0.985 (32 would give 0.96, 16 0.91).
    """
    n, dim = len(view), view.dim
    picked = np.sort(rng.choice(n, min(_TUNE_QUERIES, n), replace=False))
    base = view.take(picked)
    noise = rng.standard_normal((picked.size, dim)).astype(np.float32)
    noise *= (
        2.0
        * np.linalg.norm(base, axis=1, keepdims=True)
        / np.linalg.norm(noise, axis=1, keepdims=True)
    )
    queries = base + noise
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    k = min(k, n)
    exact = [{i for i, _ in hits} for hits in _exact_top(view, queries, k)]
    for factor in _K_FACTORS:
        _, cand = coarse.search(queries, min(n, k * factor))
        hits = 0
        for q, c, e in zip(queries, cand, exact, strict=True):
            found, at = view.positions(np.unique(c[c != -1]))
            hits += len(e & {i for i, _ in _rerank(view, q, at[found], k)})
        if hits / (k * picked.size) >= target_recall:
            return factor
    return _K_FACTORS[-1]


def _rerank(view: Rows, q: np.ndarray, positions: np.ndarray, k: int) -> list[tuple[int, float]]:
    if positions.size == 0:
        return []
    ids = view.ids[positions]
    scores = view.take(positions) @ q
    if ids.size > k:
        top = np.argpartition(-scores, k - 1)[:k]
        ids, scores = ids[top], scores[top]
    order = np.lexsort((ids, -scores))
    return [(int(ids[i]), float(scores[i])) for i in order]


def _exact_top(
    view: Rows, q: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> list[list[tuple[int, float]]]:
    """Exact top ``k`` per query over every row of ``view`` (or only ``allowed`` ids), ties by
    id: a blocked matrix product, so memory stays bounded at any size."""
    m = q.shape[0]
    if allowed is not None:
        allowed = np.unique(allowed)  # sorted once, searched per block
    best_s = np.full((m, 0), -np.inf, dtype=np.float32)
    best_p = np.zeros((m, 0), dtype=np.int64)
    for start, chunk in view.chunks():
        scores = np.asarray(q @ chunk.T)  # (m, rows)
        pos = np.arange(start, start + chunk.shape[0], dtype=np.int64)
        if allowed is not None:
            keep = _member(view.ids[pos], allowed)
            scores, pos = scores[:, keep], pos[keep]
        scores = np.concatenate([best_s, scores], axis=1)
        pos = np.concatenate([best_p, np.broadcast_to(pos, (m, pos.size))], axis=1)
        if scores.shape[1] > k:
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            scores = np.take_along_axis(scores, top, axis=1)
            pos = np.take_along_axis(pos, top, axis=1)
        best_s, best_p = scores, pos
    out = []
    for s, p in zip(best_s, best_p, strict=True):
        ids = view.ids[p]
        order = np.lexsort((ids, -s))
        out.append([(int(ids[i]), float(s[i])) for i in order])
    return out


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    at = np.searchsorted(sorted_set, values)
    at[at == sorted_set.size] = 0
    return sorted_set[at] == values


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".pq")


def _same_file(path: Path, mapped: np.ndarray) -> bool:
    name = getattr(mapped, "filename", None)
    try:
        return name is not None and os.path.samefile(path, name)
    except OSError:
        return False


# -- the exact rows' file ---------------------------------------------------------------------
def _layout(dim: int, n: int, block_rows: int) -> tuple[int, int, int]:
    """Offsets of the ids, the vectors and the block table, and the file's size."""
    ids_at = len(_MAGIC) + _HEADER.size
    vec_at = -(-(ids_at + 8 * n) // _ALIGN) * _ALIGN
    table_at = vec_at + 4 * dim * n
    blocks = -(-n // block_rows)
    return vec_at, table_at, table_at + 4 * blocks + 4 + len(_END_MAGIC)


def _write_rows(fh: BinaryIO, view: Rows) -> None:
    dim, n = view.dim, len(view)
    header = _HEADER.pack(dim, _BLOCK_ROWS, n)
    ids_bytes = view.ids.astype("<i8").tobytes()
    vec_at, _, _ = _layout(dim, n, _BLOCK_ROWS)
    fh.write(_MAGIC + header + ids_bytes)
    fh.write(b"\0" * (vec_at - len(_MAGIC) - len(header) - len(ids_bytes)))
    crcs = []
    for _, chunk in view.chunks(_BLOCK_ROWS):
        data = chunk.astype("<f4", copy=False).tobytes()
        crcs.append(zlib.crc32(data))
        fh.write(data)
    table = np.asarray(crcs, dtype="<u4").tobytes()
    meta = zlib.crc32(table, zlib.crc32(ids_bytes, zlib.crc32(header)))
    fh.write(table + struct.pack("<I", meta) + _END_MAGIC)


def _open_rows(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a rows file's frame, header, ids and block table; map its vectors read-only.

    Returns the block checksums, the ids and the mapped vectors (not yet checked).
    """
    prefix = len(_MAGIC) + _HEADER.size
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(prefix)
        if len(head) < prefix or head[: len(_MAGIC)] != _MAGIC:
            raise IndexFormatError(f"{path}: not a speechqa vector index, or truncated")
        stored_dim, block_rows, n = _HEADER.unpack(head[len(_MAGIC) :])
        if stored_dim != dim:
            raise IndexFormatError(
                f"{path}: index has dimension {stored_dim}, the encoder has {dim}"
            )
        if block_rows < 1 or n > size:
            raise IndexFormatError(f"{path}: damaged header")
        vec_at, table_at, total = _layout(dim, n, block_rows)
        if total != size:
            raise IndexFormatError(f"{path}: truncated or damaged ({size} bytes, {total} expected)")
        ids_bytes = fh.read(8 * n)
        fh.seek(table_at)
        blocks = -(-n // block_rows)
        table = fh.read(4 * blocks)
        (meta,) = struct.unpack("<I", fh.read(4))
        if fh.read(len(_END_MAGIC)) != _END_MAGIC:
            raise IndexFormatError(f"{path}: truncated or damaged trailer")
    if zlib.crc32(table, zlib.crc32(ids_bytes, zlib.crc32(head[len(_MAGIC) :]))) != meta:
        raise IndexFormatError(f"{path}: checksum mismatch in the ids, the file is corrupt")
    ids = np.frombuffer(ids_bytes, dtype="<i8").astype(np.int64)
    if n > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        raise IndexFormatError(f"{path}: ids not strictly ascending")
    if n == 0:
        base = np.zeros((0, dim), dtype=np.float32)
    else:
        base = np.memmap(path, dtype="<f4", mode="r", offset=vec_at, shape=(n, dim))
    crcs = np.frombuffer(table, dtype="<u4").astype(np.uint32)
    return np.concatenate([[block_rows], crcs]).astype(np.int64), ids, base


def _check_blocks(base: np.ndarray, blocks: np.ndarray) -> str | None:
    """The first vector block whose CRC-32 does not match, or None. Read through the mapping:
    one pass both checks the file and maps its pages, so later re-ranks do not fault them in."""
    block_rows, crcs = int(blocks[0]), blocks[1:]
    n = base.shape[0]
    for b, want in enumerate(crcs):
        block = base[b * block_rows : min(n, (b + 1) * block_rows)]
        if zlib.crc32(np.ascontiguousarray(block).view(np.uint8)) != int(want):
            return f"checksum mismatch in vector block {b}"
    return None


def _read_old(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors of a file in the previous format (read and checked whole)."""
    header, index = _read_wrapped(path, _OLD_MAGIC, _OLD_HEADER.size)
    (stored_dim,) = _OLD_HEADER.unpack(header)
    if stored_dim != dim:
        raise IndexFormatError(f"{path}: index has dimension {stored_dim}, the encoder has {dim}")
    if not isinstance(index, faiss.IndexIDMap2) or index.d != dim:
        raise IndexFormatError(f"{path}: unexpected FAISS index type or dimension")
    inner = faiss.downcast_index(index.index)
    if not isinstance(inner, faiss.IndexFlatIP):
        raise IndexFormatError(f"{path}: inner index is {type(inner).__name__}, not IndexFlatIP")
    n = int(index.ntotal)
    ids = faiss.vector_to_array(index.id_map).astype(np.int64)
    if n == 0:
        return ids, np.zeros((0, dim), dtype=np.float32)
    vectors = faiss.rev_swig_ptr(inner.get_xb(), n * dim).reshape(n, dim).copy()
    return ids, vectors


# -- FAISS bytes in a checksummed frame (the compressed index; the previous exact format) ------
def _write_wrapped(fh: BinaryIO, magic: bytes, header: bytes, index: faiss.Index) -> None:
    end = _OLD_END_MAGIC
    fh.write(magic)
    fh.write(header)
    length = 0
    crc = 0

    def write_chunk(chunk: bytes) -> int:
        nonlocal length, crc
        length += len(chunk)
        crc = zlib.crc32(chunk, crc)
        return fh.write(chunk)

    # Streamed through a callback rather than serialize_index, which would hold a second
    # in-memory copy of every vector.
    writer = faiss.PyCallbackIOWriter(write_chunk)
    faiss.write_index(index, writer)
    del writer
    fh.write(_TRAILER.pack(length, crc))
    fh.write(end)


def _read_wrapped(
    path: str | os.PathLike[str], magic: bytes, header_size: int
) -> tuple[bytes, faiss.Index]:
    prefix = len(magic) + header_size
    end = _OLD_END_MAGIC
    suffix = _TRAILER.size + len(end)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < prefix + suffix or fh.read(len(magic)) != magic:
            raise IndexFormatError(f"{path}: not a speechqa vector index, or truncated")
        header = fh.read(header_size)
        fh.seek(size - suffix)
        trailer = fh.read(suffix)
        length, crc = _TRAILER.unpack(trailer[: _TRAILER.size])
        if trailer[_TRAILER.size :] != end or length != size - prefix - suffix:
            raise IndexFormatError(f"{path}: truncated or damaged trailer")
        # Verified before FAISS parses anything: a corrupt length field inside the FAISS
        # bytes could otherwise make it allocate terabytes.
        fh.seek(prefix)
        if _crc32(fh, length) != crc:
            raise IndexFormatError(f"{path}: checksum mismatch, the file is corrupt")
        fh.seek(prefix)
        index = _read_faiss(fh, length, path)
    return header, index


def _crc32(fh: BinaryIO, length: int) -> int:
    crc = 0
    remaining = length
    while remaining:
        chunk = fh.read(min(remaining, 1 << 22))
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        remaining -= len(chunk)
    return crc


def _read_faiss(fh: BinaryIO, length: int, path: str | os.PathLike[str]) -> faiss.Index:
    remaining = length

    def read_chunk(size: int) -> bytes:
        nonlocal remaining
        chunk = fh.read(min(size, remaining))
        remaining -= len(chunk)
        return chunk

    reader = faiss.PyCallbackIOReader(read_chunk)
    try:
        return faiss.read_index(reader)
    except (RuntimeError, MemoryError) as exc:
        raise IndexFormatError(f"{path}: FAISS cannot read the index: {exc}") from exc
    finally:
        del reader


def _as_ids(ids: np.ndarray | list[int]) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise EmbeddingError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise EmbeddingError(f"ids must be integers, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)
