"""SQLite storage of documents, their outline and their passages: the source of truth.

The FAISS and BM25 indexes are derived from what is stored here and are reconciled against it at
start-up, so a crash between the SQLite commit and the index write loses nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embeddings.files import atomic_write, fsync_directory

# 2: batch jobs (``jobs``, ``job_items``); an older file is upgraded by creating them.
SCHEMA_VERSION = 2

# The data directory's layout (which files, what they hold), in its ``VERSION`` file. A directory
# without one predates the file (layout 0, the same files). Bump with a migration below.
DATA_DIR_VERSION = 1
VERSION_FILE = "VERSION"


class DataDirError(RuntimeError):
    """The data directory (or its SQLite file) is of a newer speechqa, or unreadable."""


def _migrate_0_to_1(data_dir: Path) -> None:
    """Layout 1 only adds the VERSION file."""


# MIGRATIONS[n] turns layout n into n + 1, in place; each must be safe to run again if a crash
# interrupts it (the VERSION file is rewritten only after it returns).
MIGRATIONS: dict[int, Any] = {0: _migrate_0_to_1}


def _write_atomically(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    fsync_directory(path.parent)


def check_data_dir(data_dir: Path) -> int:
    """Refuse a newer layout, migrate an older one; returns the layout found before migrating.

    A new directory (nothing stored yet) is stamped with the current layout.
    """
    path = data_dir / VERSION_FILE
    if path.exists():
        raw = path.read_text(encoding="utf-8").strip()
        if not raw.isdigit():
            raise DataDirError(f"{path} should hold a layout number, not {raw[:40]!r}")
        found = int(raw)
    else:
        found = 0 if (data_dir / "speechqa.sqlite3").exists() else DATA_DIR_VERSION
    if found > DATA_DIR_VERSION:
        raise DataDirError(
            f"{data_dir} has data layout {found}, newer than this speechqa understands "
            f"({DATA_DIR_VERSION}); upgrade speechqa (nothing was changed)"
        )
    for version in range(found, DATA_DIR_VERSION):
        MIGRATIONS[version](data_dir)
    if found != DATA_DIR_VERSION or not path.exists():
        _write_atomically(path, f"{DATA_DIR_VERSION}\n")
    return found


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    sections TEXT NOT NULL,
    paragraphs INTEGER NOT NULL,
    outline_version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS passages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    section_id TEXT NOT NULL,
    section_title TEXT NOT NULL,
    paragraph INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS passages_by_doc ON passages(doc_id);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    status TEXT NOT NULL,
    params TEXT NOT NULL,
    documents INTEGER NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0,
    interruptions INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs(status, created_at);
CREATE TABLE IF NOT EXISTS job_items (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    doc_id TEXT NOT NULL,
    sections INTEGER NOT NULL,
    status TEXT NOT NULL,
    content_hash TEXT,
    result TEXT,
    error TEXT,
    PRIMARY KEY (job_id, seq)
);
"""
_PASSAGE_COLUMNS = (
    "SELECT p.id, p.doc_id, p.section_id, p.section_title, p.paragraph, p.start, p.end, p.text, "
    "d.title FROM passages AS p JOIN documents AS d ON d.id = p.doc_id"
)


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    content_hash: str
    sections: list[dict[str, Any]]
    paragraphs: int
    outline_version: int
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A document without its text, for listings."""

    id: str
    title: str
    sections: int
    paragraphs: int
    chars: int
    content_hash: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewPassage:
    section_id: str
    section_title: str
    paragraph: int
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class StoredPassage:
    id: int
    doc_id: str
    section_id: str
    section_title: str
    paragraph: int
    start: int
    end: int
    text: str
    doc_title: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """Thread-safe access to the SQLite file: one connection per thread, writes serialised.

    WAL mode lets readers go on while a write is in progress; ``synchronous=FULL`` makes a
    returned commit durable across a crash.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # executescript commits on its own, so it runs outside an explicit transaction.
        self._conn().executescript(_SCHEMA)
        with self._write_lock, self._transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(row[0]) > SCHEMA_VERSION:
                raise DataDirError(
                    f"{path} has schema version {row[0]}, newer than this speechqa "
                    f"({SCHEMA_VERSION}); upgrade speechqa"
                )
            elif int(row[0]) < SCHEMA_VERSION:
                # Every change so far only added tables, which the script above created.
                conn.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )

    # -- connections ------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, for reads by modules that keep their own tables here."""
        return self._conn()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction (committed on exit, rolled back on error)."""
        with self._write_lock, self._transaction() as conn:
            yield conn

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- meta -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock, self._transaction() as conn:
            conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- documents --------------------------------------------------------------------------
    def get_document(self, doc_id: str) -> StoredDocument | None:
        row = (
            self._conn()
            .execute(
                "SELECT id, title, text, metadata, content_hash, sections, paragraphs, "
                "outline_version, created_at, updated_at FROM documents WHERE id = ?",
                (doc_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return StoredDocument(
            id=row[0],
            title=row[1],
            text=row[2],
            metadata=json.loads(row[3]),
            content_hash=row[4],
            sections=json.loads(row[5]),
            paragraphs=row[6],
            outline_version=row[7],
            created_at=row[8],
            updated_at=row[9],
        )

    def list_documents(self) -> list[DocumentRow]:
        rows = (
            self._conn()
            .execute(
                "SELECT id, title, json_array_length(sections), paragraphs, length(text), "
                "content_hash, metadata FROM documents ORDER BY id"
            )
            .fetchall()
        )
        return [DocumentRow(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    def document_ids(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT id FROM documents")}

    def outdated_document_ids(self, outline_version: int) -> list[str]:
        """Ids of documents parsed by another outline version (read without their text)."""
        rows = self._conn().execute(
            "SELECT id FROM documents WHERE outline_version != ? ORDER BY id", (outline_version,)
        )
        return [r[0] for r in rows]

    def existing_ids(self, doc_ids: Iterable[str]) -> set[str]:
        return {r[0] for r in self._rows_in("SELECT id FROM documents WHERE id", doc_ids)}

    def count_documents(self) -> int:
        return self._conn().execute("SELECT count(*) FROM documents").fetchone()[0]

    def replace_document(
        self,
        *,
        doc_id: str,
        title: str,
        text: str,
        metadata: dict[str, Any],
        content_hash: str,
        sections: list[dict[str, Any]],
        paragraphs: int,
        outline_version: int,
        passages: Sequence[NewPassage],
    ) -> tuple[list[int], list[int]]:
        """Store a document and its passages in one transaction, replacing any of that id.

        Returns (removed passage ids, new passage ids); passage ids are never reused, so a
        stale vector can never be mistaken for a new passage.
        """
        now = _now()
        with self._write_lock, self._transaction() as conn:
            old = [
                r[0] for r in conn.execute("SELECT id FROM passages WHERE doc_id = ?", (doc_id,))
            ]
            created = conn.execute(
                "SELECT created_at FROM documents WHERE id = ?", (doc_id,)
            ).fetchone()
            conn.execute("DELETE FROM passages WHERE doc_id = ?", (doc_id,))
            conn.execute(
                "INSERT OR REPLACE INTO documents(id, title, text, metadata, content_hash, "
                "sections, paragraphs, outline_version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc_id,
                    title,
                    text,
                    json.dumps(metadata, ensure_ascii=False),
                    content_hash,
                    json.dumps(sections, ensure_ascii=False),
                    paragraphs,
                    outline_version,
                    created[0] if created else now,
                    now,
                ),
            )
            new_ids = []
            for p in passages:
                cur = conn.execute(
                    "INSERT INTO passages(doc_id, section_id, section_title, paragraph, start, "
                    "end, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (doc_id, p.section_id, p.section_title, p.paragraph, p.start, p.end, p.text),
                )
                new_ids.append(int(cur.lastrowid))
        return old, new_ids

    def update_document_info(self, doc_id: str, title: str, metadata: dict[str, Any]) -> None:
        with self._write_lock, self._transaction() as conn:
            conn.execute(
                "UPDATE documents SET title = ?, metadata = ?, updated_at = ? WHERE id = ?",
                (title, json.dumps(metadata, ensure_ascii=False), _now(), doc_id),
            )

    def delete_document(self, doc_id: str) -> list[int] | None:
        """Delete a document; returns its passage ids, or None if there was no such document."""
        with self._write_lock, self._transaction() as conn:
            if conn.execute("SELECT 1 FROM documents WHERE id = ?", (doc_id,)).fetchone() is None:
                return None
            ids = [
                r[0] for r in conn.execute("SELECT id FROM passages WHERE doc_id = ?", (doc_id,))
            ]
            conn.execute("DELETE FROM passages WHERE doc_id = ?", (doc_id,))
            conn.execute("DELETE FROM documents WHERE id = ?", (doc_id,))
        return ids

    # -- passages ---------------------------------------------------------------------------
    def count_passages(self) -> int:
        return self._conn().execute("SELECT count(*) FROM passages").fetchone()[0]

    def passage_ids(self, doc_ids: Iterable[str] | None = None) -> list[int]:
        if doc_ids is None:
            # No ORDER BY: SQLite then reads the small doc_id index (which holds every id)
            # instead of the table's pages with all the texts (1.4 GB at 1M passages, most of a
            # cold start-up). The index's runs are each in id order, so the sort is quick.
            ids = [r[0] for r in self._conn().execute("SELECT id FROM passages")]
            ids.sort()
            return ids
        return [r[0] for r in self._rows_in("SELECT id FROM passages WHERE doc_id", doc_ids)]

    def _rows_in(self, select_where: str, values: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows of ``{select_where} IN (values)``, asked in chunks under SQLite's bound limit."""
        for chunk in _chunks(list(dict.fromkeys(values)), 500):
            marks = ",".join("?" * len(chunk))
            yield from self._conn().execute(f"{select_where} IN ({marks})", chunk)

    def get_passages(self, ids: Sequence[int]) -> dict[int, StoredPassage]:
        out: dict[int, StoredPassage] = {}
        for chunk in _chunks(list(ids), 500):
            marks = ",".join("?" * len(chunk))
            for r in self._conn().execute(
                f"{_PASSAGE_COLUMNS} WHERE p.id IN ({marks})",
                chunk,
            ):
                out[r[0]] = StoredPassage(*r)
        return out

    def iter_passages(self, batch: int = 2000) -> Iterator[list[StoredPassage]]:
        """All passages in id order, in batches, without holding them all in memory."""
        last = -1
        while True:
            rows = (
                self._conn()
                .execute(
                    f"{_PASSAGE_COLUMNS} WHERE p.id > ? ORDER BY p.id LIMIT ?",
                    (last, batch),
                )
                .fetchall()
            )
            if not rows:
                return
            yield [StoredPassage(*r) for r in rows]
            last = rows[-1][0]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
