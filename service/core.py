"""``Speeches``: the one facade over storage, retrieval, answering and summarising.

The CLI, the HTTP routes, batch jobs and tests all go through it; nothing here knows HTTP.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from embeddings.errors import EmbeddingError
from embeddings.registry import get_encoder
from models.answerer import Answerer, Candidate
from models.coverage import QuestionTerms
from models.errors import ModelError
from models.reader import load_reader
from models.refusal import FULL_EVIDENCE, RefusalModel, evidence, load_refusal_model
from models.summarizer import Budget, Summarizer
from service.config import Settings
from service.errors import InvalidInput, NotFound, PayloadTooLarge, ServiceError, Unavailable
from service.filters import MetadataFilter, parse_filter
from service.formats import FORMATS, read_document
from service.outline import Outline, Section, parse_outline, section_to_dict
from service.retrieval import ReconcileReport, Retriever
from service.rwlock import RWLock
from service.store import NewPassage, Store, StoredDocument, StoredPassage, check_data_dir

log = logging.getLogger(__name__)

VERSION = "0.1.0"
# Bump when parsing changes what is stored; documents parsed by an older version are re-parsed
# and re-indexed at start-up.
OUTLINE_VERSION = 1

_DOC_ID = re.compile(r"^\w[\w.\-]{0,127}$")
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_TITLE = 500


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    section_id: str
    section_title: str
    paragraph: int
    text: str
    score: float
    start: int
    end: int
    passage_id: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "section_id": self.section_id,
            "section_title": self.section_title,
            "paragraph": self.paragraph,
            "text": self.text,
            "score": round(self.score, 6),
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True, slots=True)
class Located:
    """A piece of a document's text with its location."""

    doc_id: str
    text: str
    paragraph: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AskResult:
    answer: str
    answerable: bool
    confidence: float
    citations: list[Hit]
    located: Located | None = None
    sentence: Located | None = None


@dataclass(frozen=True, slots=True)
class SummarySentence:
    text: str
    paragraph: int
    start: int
    end: int
    trimmed: bool


@dataclass(frozen=True, slots=True)
class SectionSummary:
    section_id: str
    title: str
    summary: str
    sentences: list[SummarySentence]
    level: int = 1
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class PutResult:
    document: StoredDocument
    created: bool
    changed: bool


@dataclass(slots=True)
class IngestReport:
    path: Path
    doc_id: str | None
    status: str  # "created" | "replaced" | "unchanged" | "failed"
    error: str | None = None
    source: str | None = None  # the file's name as stored in metadata ``source_file``
    title: str | None = None
    code: str | None = None  # the error's slug when failed (e.g. "unreadable_file")


@dataclass
class _OutlineCache:
    """Parsed outlines by (doc id, content hash): parsing is cheap but not free per request."""

    size: int = 64
    items: OrderedDict[tuple[str, str], Outline] = field(default_factory=OrderedDict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, doc: StoredDocument, max_chars: int) -> Outline:
        key = (doc.id, doc.content_hash)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        outline = parse_outline(doc.text, max_passage_chars=max_chars)
        with self.lock:
            self.items[key] = outline
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return outline


def normalize_text(text: str) -> str:
    """The stored form of a document: no BOM, ``\\n`` line ends; line numbers are kept."""
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def doc_id_from_path(path: Path) -> str:
    """The file name without extension, with anything an id may not hold replaced by ``_``."""
    stem = re.sub(r"[^\w.\-]", "_", path.stem).lstrip(".-") or "document"
    return stem[:128]


class Speeches:
    """The speech collection in one data directory.

    Constructing it stores configuration only; :meth:`open` loads the store and the indexes
    (and the encoder, lazily, the first time it is needed).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = RWLock()
        self._save_lock = threading.Lock()  # one periodic index save at a time
        self._outlines = _OutlineCache()
        self._summarizer = Summarizer()
        self._store: Store | None = None
        self._retriever: Retriever | None = None
        self._answerer: Answerer | None = None
        self._refusal: RefusalModel | None = None
        self.startup: ReconcileReport | None = None

    # -- life cycle -------------------------------------------------------------------------
    def open(self) -> Speeches:
        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        check_data_dir(data_dir)  # refuses a newer layout before anything is opened
        self._store = Store(data_dir / "speechqa.sqlite3")
        try:
            encoder = get_encoder(
                self.settings.embedding_model,
                builtin_dim=self.settings.builtin_dim,
                device=self.settings.embedding_device,
            )
            self._retriever = Retriever(
                encoder,
                data_dir / "passages.faiss",
                dense_weight=self.settings.dense_weight,
                pool=self.settings.candidate_pool,
                flush_seconds=self.settings.index_flush_seconds,
                exact_max=self.settings.vector_exact_max,
                k_factor=self.settings.vector_k_factor,
            )
            self._reparse_outdated()
            self.startup = self._retriever.load(self._store)
        except EmbeddingError as exc:
            self._store.close()
            raise Unavailable(str(exc)) from exc
        try:
            reader = load_reader(self.settings.reader_model) if self.settings.reader_model else None
        except ModelError as exc:
            self._store.close()
            raise Unavailable(str(exc)) from exc
        # Refusal is the refusal model's call (see ask), not a coverage cut inside the answerer.
        self._answerer = Answerer(min_coverage=0.0, reader=reader, spans=self.settings.span_mode)
        self._refusal = load_refusal_model()
        if self.settings.refusal_threshold is not None:
            self._refusal = replace(self._refusal, threshold=self.settings.refusal_threshold)
        return self

    def close(self) -> None:
        if self._retriever is not None:
            with self._lock.write():
                self._retriever.flush()
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Speeches:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("Speeches.open() was not called")
        return self._store

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            raise RuntimeError("Speeches.open() was not called")
        return self._retriever

    @property
    def passage_chars(self) -> int:
        return min(self.settings.passage_max_chars, self.retriever.encoder.max_chars)

    def _reparse_outdated(self) -> None:
        for doc_id in self.store.outdated_document_ids(OUTLINE_VERSION):
            doc = self.store.get_document(doc_id)
            if doc is not None and doc.outline_version != OUTLINE_VERSION:
                log.info("re-parsing %s (outline version %s)", doc.id, doc.outline_version)
                self._write_document(doc.id, doc.title, doc.text, doc.metadata, index=False)

    # -- documents --------------------------------------------------------------------------
    def put_document(
        self,
        text: str,
        *,
        doc_id: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> PutResult:
        """Store (or replace) a document; searchable as soon as this returns."""
        text = self._check_text(text)
        metadata = dict(metadata or {})
        digest = content_hash(text)
        doc_id = self._check_id(doc_id) if doc_id is not None else f"doc-{digest[:16]}"
        if title is not None:
            title = self._check_title(title)

        existing = self.store.get_document(doc_id)
        if existing is not None and existing.content_hash == digest:
            new_title = title if title is not None else existing.title
            if new_title == existing.title and metadata == existing.metadata:
                return PutResult(existing, created=False, changed=False)
            with self._lock.write():
                self.store.update_document_info(doc_id, new_title, metadata)
                if new_title != existing.title:
                    rows = self.store.get_passages(self.store.passage_ids([doc_id])).values()
                    self.retriever.retitle(
                        [p.id for p in rows],
                        [p.text for p in rows],
                        [_heading(new_title, p.section_title) for p in rows],
                    )
            return PutResult(self._require(doc_id), created=False, changed=True)

        self._write_document(doc_id, title, text, metadata, index=True)
        return PutResult(self._require(doc_id), created=existing is None, changed=True)

    def _write_document(
        self,
        doc_id: str,
        title: str | None,
        text: str,
        metadata: dict[str, Any],
        *,
        index: bool,
    ) -> None:
        outline = parse_outline(text, max_passage_chars=self.passage_chars)
        titles = {s.id: s.title for s in outline.walk()}
        passages = [
            NewPassage(
                section_id=p.section_id,
                section_title=titles.get(p.section_id, ""),
                paragraph=p.paragraph,
                start=p.start,
                end=p.end,
                text=text[p.start : p.end],
            )
            for p in outline.passages
        ]
        texts = [p.text for p in passages]
        # Embedding is the slow part: do it before taking the lock so queries keep flowing.
        vectors = self.retriever.embed(texts) if index else None
        sections = [section_to_dict(s) for s in outline.sections]
        title = title if title is not None else default_title(text, outline, doc_id)
        with self._lock.write():
            removed, added = self.store.replace_document(
                doc_id=doc_id,
                title=title,
                text=text,
                metadata=metadata,
                content_hash=content_hash(text),
                sections=sections,
                paragraphs=len(outline.paragraphs),
                outline_version=OUTLINE_VERSION,
                passages=passages,
            )
            if index:
                self.retriever.remove(removed)
                self.retriever.add(
                    added, texts, vectors, [_heading(title, p.section_title) for p in passages]
                )
                self.retriever.changed()
        self._flush_if_due()

    def delete_document(self, doc_id: str) -> None:
        with self._lock.write():
            removed = self.store.delete_document(doc_id)
            if removed is None:
                raise NotFound(f"no document with id {doc_id!r}")
            self.retriever.remove(removed)
            self.retriever.changed()
        self._flush_if_due()

    def _flush_if_due(self) -> None:
        """The periodic index save: files written under the read lock, so queries go on; only
        swapping the saved vectors in takes the write lock. One saver at a time."""
        if not self.retriever.flush_due():
            return
        with self._save_lock:
            if not self.retriever.flush_due():
                return
            with self._lock.read():
                saved = self.retriever.write_files()
            with self._lock.write():
                self.retriever.finish_save(saved)

    def get_document(self, doc_id: str) -> StoredDocument:
        return self._require(doc_id)

    def list_documents(self) -> list[dict[str, Any]]:
        return [
            {
                "id": r.id,
                "title": r.title,
                "sections": r.sections,
                "paragraphs": r.paragraphs,
                "chars": r.chars,
                "metadata": r.metadata,
            }
            for r in self.store.list_documents()
        ]

    def sections(self, doc_id: str) -> list[dict[str, Any]]:
        return self._require(doc_id).sections

    def _require(self, doc_id: str) -> StoredDocument:
        doc = self.store.get_document(doc_id)
        if doc is None:
            raise NotFound(f"no document with id {doc_id!r}")
        return doc

    # -- retrieval --------------------------------------------------------------------------
    def search(
        self,
        query: str,
        top_k: int = 5,
        doc_ids: Sequence[str] | None = None,
        *,
        exclude_doc_ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """The best passages for ``query``, within ``doc_ids`` and outside ``exclude_doc_ids``.

        ``filter`` narrows to documents whose metadata match (see :mod:`service.filters`).
        """
        query = self._check_query(query)
        self._check_top_k(top_k)
        where = parse_filter(filter)
        with self._lock.read():
            return self._search(query, top_k, self._scope(doc_ids, where), exclude_doc_ids)

    def _scope(
        self, doc_ids: Sequence[str] | None, where: MetadataFilter | None
    ) -> Sequence[str] | None:
        """The documents a search may use (None: all of them); unknown ids are an error."""
        self._check_ids(doc_ids)
        return doc_ids if where is None else self._select(doc_ids, where)

    def _check_ids(self, doc_ids: Sequence[str] | None) -> None:
        if doc_ids is not None:
            unknown = set(doc_ids) - self.store.existing_ids(doc_ids)
            if unknown:
                raise NotFound(f"no document with id {sorted(unknown)[0]!r}")

    def _search(
        self,
        query: str,
        top_k: int,
        doc_ids: Sequence[str] | None,
        exclude_doc_ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        allowed = None
        if doc_ids is not None:
            allowed = self.store.passage_ids(doc_ids)
        if exclude_doc_ids:
            excluded = set(self.store.passage_ids(exclude_doc_ids))
            pool = self.store.passage_ids() if allowed is None else allowed
            allowed = [pid for pid in pool if pid not in excluded]
        if allowed is not None and not allowed:
            return []
        scored = self.retriever.search(query, top_k, allowed)
        rows = self.store.get_passages([s.passage_id for s in scored])
        return [_hit(rows[s.passage_id], s.score) for s in scored if s.passage_id in rows]

    def ask(
        self,
        question: str,
        top_k: int = 5,
        doc_ids: Sequence[str] | None = None,
        *,
        exclude_doc_ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> AskResult:
        """The shortest span of the speeches that answers, or a refusal; never invented text."""
        question = self._check_query(question)
        self._check_top_k(top_k)
        where = parse_filter(filter)
        assert self._answerer is not None
        with self._lock.read():
            scope = self._scope(doc_ids, where)
            hits = self._search(question, max(top_k, FULL_EVIDENCE), scope, exclude_doc_ids)
            # Did the caller leave some documents out of the competition? (The gold-free runs of
            # `speechqa eval qa` exclude a document to stand for a collection without it: not a
            # narrowing.)
            narrowed = scope is not None and len(set(scope)) < self.store.count_documents()
            candidates = [
                Candidate(text=h.text, offset=h.start, score=h.score, key=i)
                for i, h in enumerate(hits)
            ]
            bm25 = self.retriever.bm25
            found = self._answerer.answer(question, candidates, idf=bm25.idf)
            terms = QuestionTerms(question, bm25.idf)
            features = evidence(
                question, terms, [c.text for c in candidates], [c.score for c in candidates]
            )
        assert self._refusal is not None
        confidence = self._refusal.probability(features)
        if found is None or not self._refusal.answerable(
            features, passages=len(candidates), narrowed=narrowed
        ):
            return AskResult("", False, round(confidence, 4), [])
        holder = hits[found.key]
        citations = [holder] + [h for i, h in enumerate(hits[:top_k]) if i != found.key]
        return AskResult(
            answer=found.text,
            answerable=True,
            confidence=round(confidence, 4),
            citations=citations[:top_k],
            located=Located(holder.doc_id, found.text, holder.paragraph, found.start, found.end),
            sentence=Located(
                holder.doc_id,
                found.sentence_text,
                holder.paragraph,
                found.sentence_start,
                found.sentence_end,
            ),
        )

    # -- summaries --------------------------------------------------------------------------
    def summarize(
        self,
        doc_id: str,
        section_id: str | None = None,
        *,
        max_sentences: int | None = None,
        max_chars: int | None = None,
        ratio: float | None = None,
        include_subsections: bool = False,
    ) -> list[SectionSummary]:
        """Summaries of one section, or of every top-level section in order.

        With ``include_subsections`` every section at every level is summarised, in reading
        order (a parent before its children).
        """
        doc = self._require(doc_id)
        outline = self._outlines.get(doc, self.passage_chars)
        if section_id is None:
            sections: Sequence[Section] = (
                list(outline.walk()) if include_subsections else outline.sections
            )
        else:
            found = outline.find(section_id)
            if found is None:
                raise NotFound(f"document {doc_id!r} has no section {section_id!r}")
            sections = [found]
        budget = Budget(max_sentences=max_sentences, max_chars=max_chars, ratio=ratio)
        return [self._summarize_section(doc.text, outline, s, budget) for s in sections]

    def _summarize_section(
        self, text: str, outline: Outline, section: Section, budget: Budget
    ) -> SectionSummary:
        sentences = [s for s in outline.sentences if section.start <= s.start < section.end]
        extracts = self._summarizer.summarize(text, sentences, budget)
        units = [
            SummarySentence(text[e.start : e.end], e.paragraph, e.start, e.end, e.trimmed)
            for e in extracts
        ]
        # Trimmed units lose their ending; mark the cut so the joined summary reads honestly.
        summary = "".join(u.text + ("……" if u.trimmed else "") for u in units)
        return SectionSummary(
            section.id, section.title, summary, units, level=section.level, marker=section.marker
        )

    # -- selection by metadata -------------------------------------------------------------
    def select_documents(
        self,
        doc_ids: Sequence[str] | None = None,
        filter: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """Ids of the documents in ``doc_ids`` (all, if None) that match ``filter``, in id order.

        Every id in ``doc_ids`` must exist (:class:`NotFound` otherwise).
        """
        self._check_ids(doc_ids)
        where = parse_filter(filter)
        if where is None:
            if doc_ids is None:
                return sorted(self.store.document_ids())
            return sorted(set(doc_ids))
        return self._select(doc_ids, where)

    def _select(self, doc_ids: Sequence[str] | None, where: MetadataFilter) -> list[str]:
        wanted = None if doc_ids is None else set(doc_ids)
        return [
            row.id
            for row in self.store.list_documents()
            if (wanted is None or row.id in wanted) and where.matches(row.title, row.metadata)
        ]

    # -- ingestion from files ---------------------------------------------------------------
    def ingest_paths(
        self,
        paths: Iterable[Path],
        *,
        recursive: bool = True,
        progress: Callable[[IngestReport, int, int], None] | None = None,
    ) -> list[IngestReport]:
        """Ingest files and folders (their supported files, recursively by default).

        A file that cannot be read is reported as ``failed`` and skipped; the rest go on.
        ``progress(report, done, total)`` is called after each file.
        """
        files = expand_paths(paths, recursive=recursive)
        reports = []
        taken: dict[str, str] = {}
        for i, (path, source) in enumerate(files, 1):
            report = self._ingest_file(path, source, taken)
            reports.append(report)
            if progress is not None:
                progress(report, i, len(files))
        return reports

    def _ingest_file(self, path: Path, source: str, taken: dict[str, str]) -> IngestReport:
        try:
            size = path.stat().st_size
            if size > self.settings.max_file_bytes:
                raise PayloadTooLarge(
                    f"{source}: {size} bytes; the limit is {self.settings.max_file_bytes}"
                )
            data = path.read_bytes()
        except (OSError, PayloadTooLarge) as exc:
            code = exc.code if isinstance(exc, ServiceError) else "unreadable_file"
            return IngestReport(
                path, doc_id_from_path(path), "failed", _message(exc), source, None, code
            )
        return self.ingest_data(data, source, path=path, taken=taken)

    def ingest_data(
        self,
        data: bytes,
        filename: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        path: Path | None = None,
        taken: dict[str, str] | None = None,
    ) -> IngestReport:
        """Ingest one file's bytes (its format from ``filename``); never raises for bad input.

        The document's id is front matter ``id:`` or the file name without extension; its
        metadata is the file's (front matter, document properties) plus ``source_file`` and
        ``format``, then ``metadata``. ``taken`` maps ids already used in this batch to their
        file, so that two files with one name fail rather than overwrite each other.
        """
        path = path if path is not None else Path(Path(filename).name)
        doc_id = doc_id_from_path(path)
        try:
            extracted = read_document(data, filename)
            doc_id = extracted.doc_id or doc_id
            if taken is not None:
                if doc_id in taken:
                    raise InvalidInput(
                        f"{filename}: id {doc_id!r} is already the id of {taken[doc_id]} in this "
                        "batch; rename one file or give it an `id:` in its front matter"
                    )
                taken[doc_id] = filename
            meta: dict[str, Any] = {
                **extracted.metadata,
                "source_file": filename,
                "format": extracted.format,
            }
            meta.update(metadata or {})
            result = self.put_document(
                extracted.text, doc_id=doc_id, title=extracted.title, metadata=meta
            )
        except ServiceError as exc:
            return IngestReport(path, doc_id, "failed", exc.message, filename, None, exc.code)
        except Exception as exc:  # a reader's bug must not stop a batch of hundreds of files
            log.exception("unexpected error ingesting %s", filename)
            return IngestReport(
                path, doc_id, "failed", f"{filename}: {_message(exc)}", filename, None, "internal"
            )
        status = "created" if result.created else "replaced" if result.changed else "unchanged"
        return IngestReport(path, doc_id, status, None, filename, result.document.title)

    # -- info -------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        encoder = self.retriever.encoder
        return {
            "version": VERSION,
            "documents": self.store.count_documents(),
            "passages": self.store.count_passages(),
            "embedder": {"name": encoder.name, "dim": encoder.dim, "kind": encoder.kind},
            "reader": self.settings.reader_model,
            "lexical": "bm25-char-bigram",
            "dense_weight": self.retriever.dense_weight,
            "data_dir": str(self.settings.data_dir),
        }

    # -- validation -------------------------------------------------------------------------
    def _check_text(self, text: str) -> str:
        if not isinstance(text, str):
            raise InvalidInput("text must be a string")
        _check_encodable(text, "text")
        text = normalize_text(text)
        if len(text) > self.settings.max_document_chars:
            raise PayloadTooLarge(
                f"text has {len(text)} characters; the limit is {self.settings.max_document_chars}"
            )
        if _BAD_CONTROL.search(text):
            raise InvalidInput("text contains control characters")
        if not any(c.isalnum() for c in text):
            raise InvalidInput("text is empty or holds no words")
        return text

    @staticmethod
    def _check_id(doc_id: str) -> str:
        if not isinstance(doc_id, str) or not _DOC_ID.match(doc_id):
            raise InvalidInput(
                "id must be 1-128 letters, digits, '_', '-' or '.', starting with a letter, "
                f"digit or '_': got {doc_id!r}"
            )
        return doc_id

    @staticmethod
    def _check_title(title: str) -> str:
        _check_encodable(title, "title")
        title = " ".join(title.split())
        if len(title) > _MAX_TITLE or _BAD_CONTROL.search(title):
            raise InvalidInput(f"title must be at most {_MAX_TITLE} printable characters")
        return title

    def _check_query(self, query: str) -> str:
        _check_encodable(query, "query")
        query = query.strip()
        if not query:
            raise InvalidInput("the question is empty")
        if len(query) > self.settings.max_query_chars:
            raise InvalidInput(
                f"the question has {len(query)} characters; the limit is "
                f"{self.settings.max_query_chars}"
            )
        if not any(c.isalnum() for c in query):
            raise InvalidInput("the question holds no words")
        return query

    @staticmethod
    def _check_top_k(top_k: int) -> None:
        if not 1 <= top_k <= 50:
            raise InvalidInput("top_k must be between 1 and 50")


def default_title(text: str, outline: Outline, doc_id: str) -> str:
    """A heading-like first line (short, no sentence end, not an address) or the id."""
    if outline.paragraphs:
        first = outline.paragraphs[0]
        line = text[first.start : first.end].strip()
        if (
            line
            and len(line) <= 60
            and not re.search(r"[。！？；：:]$", line)
            and outline.sections[0].kind != "numbered"
        ):
            return line.lstrip("#").strip() or doc_id
    return doc_id


def _check_encodable(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode (lone surrogate)") from exc


def _heading(doc_title: str, section_title: str) -> str:
    return f"{doc_title}\n{section_title}"


def _hit(p: StoredPassage, score: float) -> Hit:
    return Hit(
        doc_id=p.doc_id,
        section_id=p.section_id,
        section_title=p.section_title,
        paragraph=p.paragraph,
        text=p.text,
        score=score,
        start=p.start,
        end=p.end,
        passage_id=p.id,
    )


def _message(exc: BaseException) -> str:
    if isinstance(exc, ServiceError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return f"{type(exc).__name__}: {exc}"


def expand_paths(paths: Iterable[Path], *, recursive: bool = True) -> list[tuple[Path, str]]:
    """(file, source name) for every file to ingest: files as given, folders' supported files.

    A folder's files are named by their path relative to it (``2019/report.docx``); hidden
    files and folders and Office lock files (``~$…``) are skipped.
    """
    out: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            for p in sorted(path.glob(pattern)):
                rel = p.relative_to(path)
                if (
                    p.suffix.lower() in FORMATS
                    and not any(part.startswith((".", "~$")) for part in rel.parts)
                    and p.is_file()
                ):
                    out.append((p, rel.as_posix()))
        else:
            out.append((path, path.name))
    return out
