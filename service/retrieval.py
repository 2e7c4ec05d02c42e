"""Hybrid retrieval over passages: BM25 on Chinese tokens leads, a dense cosine refines.

Holds the FAISS vector index and the BM25 index, keeps them in step with the store, and fuses
their scores. Callers serialise mutations against searches (see ``Speeches``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.base import Encoder
from embeddings.bm25 import BM25Index
from embeddings.errors import IndexFormatError
from embeddings.tokens import lexical_tokens, query_tokens
from embeddings.vector_index import VectorIndex
from service.store import Store

log = logging.getLogger(__name__)

_EMBEDDER_KEY = "embedder"


def passage_tokens(text: str, *headings: str) -> list[str]:
    """A passage's BM25 tokens: its own and its document's and section's titles.

    The titles say what a passage is about even where its text does not repeat it; measured on
    CMRC 2018 trial, adding the article title lifted R@1 from 0.978 to 0.983.
    """
    tokens = lexical_tokens(text)
    for heading in headings:
        tokens.extend(lexical_tokens(heading))
    return tokens


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
    ) -> None:
        self.encoder = encoder
        self.index_path = index_path
        self.dense_weight = dense_weight
        self.pool = pool
        self.flush_seconds = flush_seconds
        self._dirty = False
        self._saved_at = time.monotonic()
        self.vectors = VectorIndex(encoder.dim)
        self.bm25 = BM25Index()

    @property
    def embedder_id(self) -> str:
        return f"{self.encoder.kind}:{self.encoder.name}:{self.encoder.dim}"

    # -- start-up ---------------------------------------------------------------------------
    def load(self, store: Store, batch: int = 256) -> ReconcileReport:
        """Load the saved vectors and bring both indexes in line with the store.

        Vectors of passages the store no longer has are dropped; passages without a vector
        (a crash after the commit, before the index was saved) are embedded now. A different
        encoder than the one that built the index means every passage is embedded again.
        """
        rebuilt = store.get_meta(_EMBEDDER_KEY) not in (None, self.embedder_id)
        loaded = 0
        if self.index_path.exists() and not rebuilt:
            try:
                self.vectors = VectorIndex.load(self.index_path, self.encoder.dim)
                loaded = len(self.vectors)
            except IndexFormatError as exc:
                log.warning("vector index unreadable (%s); rebuilding it from the store", exc)
                rebuilt = True
        if rebuilt:
            log.warning("encoder changed to %s: embedding every passage again", self.embedder_id)
            self.vectors = VectorIndex(self.encoder.dim)

        stored = np.asarray(store.passage_ids(), dtype=np.int64)
        indexed = self.vectors.ids()
        orphans = np.setdiff1d(indexed, stored, assume_unique=True)
        if len(orphans):
            self.vectors.remove(orphans)
        missing = set(np.setdiff1d(stored, indexed, assume_unique=True).tolist())

        self.bm25 = BM25Index()
        embedded = 0
        for rows in store.iter_passages(batch):
            for p in rows:
                self.bm25.add(p.id, passage_tokens(p.text, p.doc_title, p.section_title))
            todo = [p for p in rows if p.id in missing]
            if todo:
                ids = np.asarray([p.id for p in todo], dtype=np.int64)
                self.vectors.add(ids, self.encoder.encode([p.text for p in todo]))
                embedded += len(todo)
        if len(orphans) or embedded or rebuilt:
            self.save()
        store.set_meta(_EMBEDDER_KEY, self.embedder_id)
        return ReconcileReport(loaded, len(orphans), embedded, rebuilt)

    # -- mutation (caller holds the write lock) ---------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return self.encoder.encode(texts)

    def add(
        self, ids: list[int], texts: list[str], vectors: np.ndarray, headings: list[str]
    ) -> None:
        """Index passages: vectors of their text; BM25 of their text and ``headings``."""
        if not ids:
            return
        self.vectors.add(np.asarray(ids, dtype=np.int64), vectors)
        for pid, text, heading in zip(ids, texts, headings, strict=True):
            self.bm25.add(pid, passage_tokens(text, heading))

    def retitle(self, ids: list[int], texts: list[str], headings: list[str]) -> None:
        """A document's title changed: its passages' lexical entries change with it."""
        for pid, text, heading in zip(ids, texts, headings, strict=True):
            self.bm25.remove(pid)
            self.bm25.add(pid, passage_tokens(text, heading))

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        self.vectors.remove(np.asarray(ids, dtype=np.int64))
        for pid in ids:
            self.bm25.remove(pid)

    def save(self) -> None:
        self.vectors.save(self.index_path)
        self._dirty = False
        self._saved_at = time.monotonic()

    def changed(self) -> None:
        """Note a mutation; write the index if the last write is older than ``flush_seconds``.

        Deferring is safe: the store is the source of truth and ``load`` embeds whatever the
        saved index lacks, so a crash costs re-embedding a few passages, never data. It keeps a
        bulk ingestion from rewriting the whole index file once per document.
        """
        self._dirty = True
        if time.monotonic() - self._saved_at >= self.flush_seconds:
            self.save()

    def flush(self) -> None:
        if self._dirty:
            self.save()

    # -- search (caller holds the read lock) ------------------------------------------------
    def search(self, query: str, k: int, allowed_ids: list[int] | None = None) -> list[Scored]:
        """The ``k`` best passages: max-normalised BM25 plus ``dense_weight`` x cosine.

        Rank fusion lost to plain BM25 on Chinese reading-comprehension data, while a small
        weighted cosine on top of the lexical score kept its precision and breaks its ties.
        """
        pool = max(self.pool, k)
        allowed_set = None if allowed_ids is None else set(allowed_ids)
        lexical = self.bm25.search(query_tokens(query), pool, allowed_set)
        dense: list[tuple[int, float]] = []
        if self.dense_weight > 0 and len(self.vectors):
            qvec = self.encoder.encode([query])
            allowed = None if allowed_ids is None else np.asarray(allowed_ids, dtype=np.int64)
            dense = self.vectors.search(qvec, pool, allowed)[0]

        top_lexical = lexical[0][1] if lexical else 0.0
        lex = {pid: (s / top_lexical if top_lexical > 0 else 0.0) for pid, s in lexical}
        cos = dict(dense)
        missing = [pid for pid in lex if pid not in cos]
        if missing and self.dense_weight > 0 and len(self.vectors):
            # Lexical candidates outside the dense pool still get their exact cosine.
            cos.update(self.vectors.similarity(qvec[0], np.asarray(missing, dtype=np.int64)))
        scored = [
            Scored(
                pid,
                lex.get(pid, 0.0) + self.dense_weight * cos.get(pid, 0.0),
                lex.get(pid, 0.0),
                cos.get(pid, 0.0),
            )
            for pid in lex.keys() | cos.keys()
        ]
        scored.sort(key=lambda s: (-s.score, s.passage_id))
        return scored[:k]
