"""Hybrid retrieval over passages: BM25 on Chinese tokens leads, a dense cosine refines.

Holds the FAISS vector index and the BM25 index, keeps them in step with the store, and fuses
their scores. Callers serialise mutations against searches (see ``Speeches``).
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from embeddings.base import Encoder
from embeddings.bm25 import BM25Index
from embeddings.bm25_kernel import warm_up
from embeddings.errors import IndexFormatError
from embeddings.hashing import HashingEncoder
from embeddings.tokens import lexical_tokens, normalize, query_tokens, tokens_of_normalized
from embeddings.vector_index import DEFAULT_EXACT_MAX, Rows, VectorIndex
from service.store import Store, StoredPassage

# A cosine of unit vectors, with room for float32 rounding.
_COS_BOUND = 1.0 + 1e-5

log = logging.getLogger(__name__)

_EMBEDDER_KEY = "embedder"


def passage_tokens(text: str, *headings: str) -> list[str]:
    """A passage's BM25 tokens: its own and its document's and section's titles.

    The titles say what a passage is about even where its text does not repeat it; measured on
    CMRC 2018 trial, adding the article title lifted R@1 from 0.978 to 0.983.
    """
    tokens = lexical_tokens(text)
    for heading in headings:
        tokens.extend(_heading_tokens(heading))
    return tokens


@lru_cache(maxsize=4096)
def _heading_tokens(heading: str) -> tuple[str, ...]:
    # Every passage of a section repeats its titles: tokenise them once.
    return tuple(lexical_tokens(heading))


@dataclass(frozen=True, slots=True)
class Scored:
    passage_id: int
    score: float
    lexical: float
    dense: float


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    loaded: int
    orphans_removed: int
    embedded: int
    rebuilt: bool


class Retriever:
    def __init__(
        self,
        encoder: Encoder,
        index_path: Path,
        *,
        dense_weight: float,
        pool: int,
        flush_seconds: float = 0.0,
        exact_max: int = DEFAULT_EXACT_MAX,
        k_factor: int | None = None,
    ) -> None:
        self.encoder = encoder
        self.index_path = index_path
        # The BM25 index is saved beside the vectors, so start-up never re-tokenises.
        self.lexical_path = index_path.with_suffix(".bm25")
        self.dense_weight = dense_weight
        self.pool = pool
        self.flush_seconds = flush_seconds
        self.exact_max = exact_max
        self.k_factor = k_factor
        self._dirty = False
        self._version = 0  # mutations so far: a save notes the one it wrote
        self._saved_at = time.monotonic()
        self._store: Store | None = None
        # BM25 tokens computed by ``embed`` (outside the write lock), by text, until ``add``.
        self._tokenized: dict[str, list[str]] = {}
        # Set when the mapped BM25 file fails its background check: see ``_lexical``.
        self._lexical_damaged = False
        self.vectors = self._new_vectors()
        self.bm25 = BM25Index()

    def _new_vectors(self) -> VectorIndex:
        return VectorIndex(self.encoder.dim, exact_max=self.exact_max, k_factor=self.k_factor)

    @property
    def embedder_id(self) -> str:
        return f"{self.encoder.kind}:{self.encoder.name}:{self.encoder.dim}"

    # -- start-up ---------------------------------------------------------------------------
    def load(self, store: Store, batch: int = 2000) -> ReconcileReport:
        """Load the saved vectors and BM25 index and bring both in line with the store.

        Entries of passages the store no longer has are dropped; passages missing from an index
        (a crash after the commit, before the index was saved) are embedded or tokenised now,
        and so are the passages of documents retitled since the BM25 save. A different encoder
        than the one that built the vectors means every passage is embedded again. Only what
        is missing is read from the store, so a start-up over saved indexes reads ids only.
        """
        self._store = store
        rebuilt = store.get_meta(_EMBEDDER_KEY) not in (None, self.embedder_id)
        loaded = 0
        if self.index_path.exists() and not rebuilt:
            try:
                self.vectors = VectorIndex.load(
                    self.index_path,
                    self.encoder.dim,
                    exact_max=self.exact_max,
                    k_factor=self.k_factor,
                )
                loaded = len(self.vectors)
            except IndexFormatError as exc:
                log.warning("vector index unreadable (%s); rebuilding it from the store", exc)
                rebuilt = True
        if rebuilt:
            log.warning("encoder changed to %s: embedding every passage again", self.embedder_id)
            self.vectors = self._new_vectors()

        stored = np.asarray(store.passage_ids(), dtype=np.int64)
        orphans = _not_in(self.vectors.ids(), stored)
        if len(orphans):
            self.vectors.remove(orphans)
        missing_vectors = stored[~self.vectors.contains(stored)]

        missing_lexical, lexical_changed = self._load_lexical(store, stored)
        todo = np.union1d(missing_vectors, missing_lexical)
        embed = set(missing_vectors.tolist())
        relex = set(missing_lexical.tolist())
        embedded = 0
        for rows in self._passages(store, todo, stored.size, batch):
            vec = [p for p in rows if p.id in embed]
            if vec:
                ids = np.asarray([p.id for p in vec], dtype=np.int64)
                # embed() also tokenises, once per text, for the BM25 adds below.
                self.vectors.add(ids, self.embed([p.text for p in vec]))
                embedded += len(vec)
            lex = [p for p in rows if p.id in relex]
            if lex:
                self.bm25.add_many(
                    [p.id for p in lex],
                    [
                        self._text_tokens(p.text)
                        + list(_heading_tokens(p.doc_title))
                        + list(_heading_tokens(p.section_title))
                        for p in lex
                    ],
                )
        self._tokenized.clear()
        if relex:
            # Bulk additions sit in the BM25 tail; one merge makes them a base that later
            # start-ups load as a few array views.
            self.bm25.compact()
        # An index file in the previous format is rewritten once, in the mappable one.
        if (
            len(orphans)
            or embedded
            or rebuilt
            or lexical_changed
            or self.vectors.upgraded
            or self.bm25.needs_rewrite
        ):
            self.save()
        store.set_meta(_EMBEDDER_KEY, self.embedder_id)
        # BM25's compiled search is loaded from numba's cache (or compiled) here, not by the
        # first query: about a second, mostly numba's own imports. Not in a background thread:
        # that slowed whatever the process did next (an ingestion, by a third), and its objects
        # would miss the API's gc.freeze() after start-up.
        warm_up()
        return ReconcileReport(loaded, len(orphans), embedded, rebuilt)

    def _load_lexical(self, store: Store, stored: np.ndarray) -> tuple[np.ndarray, bool]:
        """Load the saved BM25 index and repair it; returns the ids still to tokenise and
        whether it changed."""
        try:
            self.bm25, extra = BM25Index.load(self.lexical_path)
        except FileNotFoundError:
            self.bm25 = BM25Index()
            return stored, stored.size > 0
        except IndexFormatError as exc:
            log.warning("BM25 index unreadable (%s); rebuilding it from the store", exc)
            self.bm25 = BM25Index()
            return stored, True
        changed = False
        present = self.bm25.pids()
        for pid in _not_in(present, stored).tolist():
            self.bm25.remove(pid)
            changed = True
        # A retitle keeps passage ids but changes their tokens: compare the titles saved with
        # the index against the store's.
        saved_titles = extra.get("titles", {})
        stale = [d for d, t in _titles(store).items() if saved_titles.get(d) != t]
        for pid in store.passage_ids(stale) if stale else []:
            changed |= self.bm25.remove(pid)
        if changed:
            present = self.bm25.pids()
        missing = _not_in(stored, present)
        return missing, changed or missing.size > 0

    @staticmethod
    def _passages(
        store: Store, ids: np.ndarray, total: int, batch: int
    ) -> Iterator[list[StoredPassage]]:
        if ids.size == 0:
            return
        if ids.size * 4 >= total:
            # Most of the store: one ordered scan beats lookups by id.
            wanted = set(ids.tolist())
            for rows in store.iter_passages(batch):
                yield [p for p in rows if p.id in wanted]
            return
        for start in range(0, ids.size, batch):
            chunk = ids[start : start + batch].tolist()
            found = store.get_passages(chunk)
            yield [found[i] for i in chunk if i in found]

    @contextmanager
    def _lexical_guard(self) -> Iterator[None]:
        """Run a BM25 step; if it finds the index damaged, drop the index.

        The mapped BM25 file's large arrays are checked in the background after start-up. If
        that check fails, the index is not trusted again: it is replaced by an empty one and its
        file is deleted and not written again, so the next start-up re-tokenises every passage
        from the store; until then search runs on the vectors alone.
        """
        try:
            yield
        except IndexFormatError as exc:
            log.error("BM25 index damaged (%s); it will be rebuilt from the store", exc)
            self._lexical_damaged = True
            self.bm25 = BM25Index()
            self.lexical_path.unlink(missing_ok=True)

    # -- mutation (caller holds the write lock) ---------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts``; also tokenises them for BM25, so that ``add`` (under the
        write lock) finds their tokens ready. Called outside the lock."""
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        if isinstance(self.encoder, HashingEncoder):
            # One normalisation per text serves both the hashing and the BM25 tokens.
            normalized = [normalize(t) for t in texts]
            vectors = self.encoder.encode_normalized(normalized)
            tokens = [tokens_of_normalized(t) for t in normalized]
        else:
            vectors = self.encoder.encode(texts)
            tokens = [lexical_tokens(t) for t in texts]
        if len(self._tokenized) > 100_000:  # embedded but never added (a failed write)
            self._tokenized.clear()
        self._tokenized.update(zip(texts, tokens, strict=True))
        return vectors

    def _text_tokens(self, text: str) -> list[str]:
        tokens = self._tokenized.pop(text, None)
        return lexical_tokens(text) if tokens is None else tokens

    def add(
        self, ids: list[int], texts: list[str], vectors: np.ndarray, headings: list[str]
    ) -> None:
        """Index passages: vectors of their text; BM25 of their text and ``headings``."""
        if not ids:
            return
        self.vectors.add(np.asarray(ids, dtype=np.int64), vectors)
        tokens = [
            self._text_tokens(t) + list(_heading_tokens(h))
            for t, h in zip(texts, headings, strict=True)
        ]
        with self._lexical_guard():
            self.bm25.add_many(ids, tokens)

    def retitle(self, ids: list[int], texts: list[str], headings: list[str]) -> None:
        """A document's title changed: its passages' lexical entries change with it."""
        with self._lexical_guard():
            for pid in ids:
                self.bm25.remove(pid)
            self.bm25.add_many(
                ids, [passage_tokens(t, h) for t, h in zip(texts, headings, strict=True)]
            )
        self.changed()

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        self.vectors.remove(np.asarray(ids, dtype=np.int64))
        with self._lexical_guard():
            for pid in ids:
                self.bm25.remove(pid)

    def save(self) -> None:
        """Write both indexes and map the saved vectors (the caller holds the write lock)."""
        self.finish_save(self.write_files())

    def write_files(self) -> SavedIndexes:
        """Write both index files from the current state. It only reads the indexes, so under
        a read lock queries go on meanwhile; ``finish_save`` (under the write lock) completes
        it. A flush used to hold the write lock throughout, stalling queries ~0.3 s."""
        view = self.vectors.save(self.index_path, map_saved=False)
        if not self._lexical_damaged:
            titles = _titles(self._store) if self._store is not None else {}
            with self._lexical_guard():
                self.bm25.save(self.lexical_path, extra={"titles": titles})
        return SavedIndexes(self._version, view)

    def finish_save(self, saved: SavedIndexes) -> None:
        """Serve the saved vectors from their file, unless the index changed since they were
        written (then the next flush writes it again)."""
        current = saved.version == self._version
        if current and saved.view is not None:
            self.vectors.map_saved(self.index_path, saved.view)
        self._dirty = not current
        self._saved_at = time.monotonic()

    def changed(self) -> None:
        """Note a mutation (the caller holds the write lock); ``flush_due`` says when to save.

        Deferring is safe: the store is the source of truth and ``load`` embeds and tokenises
        whatever the saved indexes lack, so a crash costs re-indexing a few passages, never
        data. It keeps a bulk ingestion from rewriting the whole index files once per document.
        """
        self._dirty = True
        self._version += 1

    def flush_due(self) -> bool:
        """Changed, and last written more than ``flush_seconds`` ago."""
        return self._dirty and time.monotonic() - self._saved_at >= self.flush_seconds

    def flush(self) -> None:
        if self._dirty:
            self.save()

    # -- search (caller holds the read lock) ------------------------------------------------
    def _lexical(
        self, tokens: list[str], k: int, allowed: set[int] | None
    ) -> list[tuple[int, float]]:
        with self._lexical_guard():
            return self.bm25.search(tokens, k, allowed)
        return []

    def search(self, query: str, k: int, allowed_ids: list[int] | None = None) -> list[Scored]:
        """The ``k`` best passages: max-normalised BM25 plus ``dense_weight`` x cosine.

        Rank fusion lost to plain BM25 on Chinese reading-comprehension data, while a small
        weighted cosine on top of the lexical score kept its precision and breaks its ties.
        """
        pool = max(self.pool, k)
        allowed_set = None if allowed_ids is None else set(allowed_ids)
        lexical = self._lexical(query_tokens(query), pool, allowed_set)
        dense: list[tuple[int, float]] = []
        # Vectors that failed their background check are not trusted: lexical only until the
        # restart that re-embeds them from the store.
        use_dense = self.dense_weight > 0 and len(self.vectors) > 0 and not self.vectors.damaged
        if use_dense:
            qvec = self.encoder.encode([query])
            allowed = None if allowed_ids is None else np.asarray(allowed_ids, dtype=np.int64)
            dense = self.vectors.search(qvec, pool, allowed)[0]

        top_lexical = lexical[0][1] if lexical else 0.0
        lex = {pid: (s / top_lexical if top_lexical > 0 else 0.0) for pid, s in lexical}
        cos = dict(dense)
        w = self.dense_weight
        missing = [pid for pid in lex if pid not in cos]
        if missing and use_dense:
            # Lexical candidates outside the dense pool get their exact cosine, but only those
            # that could still make the top k: vectors are unit length, so a cosine moves a
            # fused score by at most ``w`` either way (gathering the vectors was a third of
            # the search's time beside FAISS at 100k passages).
            floor = _kth_largest(
                [lex.get(pid, 0.0) + w * c for pid, c in dense]
                + [lex[pid] - w * _COS_BOUND for pid in missing],
                k,
            )
            missing = [pid for pid in missing if lex[pid] + w * _COS_BOUND >= floor]
            if missing:
                cos.update(self.vectors.similarity(qvec[0], np.asarray(missing, dtype=np.int64)))
        # Best first, ties by smaller id; only the k returned get an object.
        best = heapq.nsmallest(
            k,
            [
                (-(lex.get(pid, 0.0) + w * cos.get(pid, 0.0)), pid)
                for pid in lex.keys() | cos.keys()
            ],
        )
        return [Scored(pid, -neg, lex.get(pid, 0.0), cos.get(pid, 0.0)) for neg, pid in best]


@dataclass(frozen=True)
class SavedIndexes:
    """What ``write_files`` wrote: the mutation count then and the vector rows saved (``None``
    if the vectors were damaged and not written)."""

    version: int
    view: Rows | None


def _kth_largest(values: list[float], k: int) -> float:
    """The k-th largest of ``values``; minus infinity when there are fewer."""
    if len(values) < k:
        return -math.inf
    return heapq.nlargest(k, values)[-1]


def _not_in(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The ``values`` absent from ``present`` (int64 ids, each unique), in their order.

    Binary search into ``present`` (sorted only if it is not already, as the store's ids are):
    at 1M ids ``np.setdiff1d`` sorted both sides, 0.9 s of every start-up.
    """
    if present.size == 0 or values.size == 0:
        return values.copy()
    if not bool(np.all(present[1:] >= present[:-1])):
        present = np.sort(present)
    at = np.searchsorted(present, values)
    at[at == present.size] = 0
    return values[present[at] != values]


def _titles(store: Store) -> dict[str, str]:
    """Every document's title by id (what the BM25 entries of its passages were built from)."""
    rows = store.connection().execute("SELECT id, title FROM documents")
    return {doc_id: title for doc_id, title in rows}
