"""Batch jobs: summaries of every section of many documents, run in the background.

A job's state lives in the store (tables ``jobs`` and ``job_items``, one item per document), so it
outlives the process: each document's summaries are committed with the job's progress in one
transaction, and a finished result is on disk before the job is marked done.

One process at a time runs jobs on a data dir: the one holding ``jobs.lock`` (an advisory file
lock that the operating system releases when its holder dies). Whoever takes the lock first
recovers what a dead holder left ``running``: the job goes back to the queue and resumes at the
first document without a committed result, unless it has been interrupted
:data:`MAX_INTERRUPTIONS` times already; then it is marked ``failed`` with the reason, so that a
job that brings the process down cannot do so forever. A clean shutdown puts the running job
back in the queue without counting an interruption.

Statuses: ``queued`` -> ``running`` -> ``done`` | ``failed``. A document that cannot be summarised
(deleted meanwhile, say) does not fail the job: its line in the result carries the error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from models.errors import ModelError
from models.summarizer import Budget
from service.core import SectionSummary, Speeches
from service.errors import InvalidInput, NotFound, ServiceError
from service.store import Store

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: one process per data dir is on the user
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MAX_INTERRUPTIONS = 3
KIND_SUMMARIES = "summaries"
_PAGE = 64


class JobNotFinished(ServiceError):
    code = "job_not_finished"
    status = 409


class JobsBusy(ServiceError):
    code = "jobs_busy"
    status = 409


@dataclass(frozen=True, slots=True)
class Job:
    id: str
    kind: str
    status: str
    params: dict[str, Any]
    documents: int
    total: int
    done: int
    failed: int
    interruptions: int
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    updated_at: str

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "progress": {
                "done": self.done,
                "total": self.total,
                "documents": self.documents,
                "failed_documents": self.failed,
            },
            "params": self.params,
            "error": self.error,
            "interruptions": self.interruptions,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "updated_at": self.updated_at,
        }


_JOB_COLUMNS = (
    "id, kind, status, params, documents, total, done, failed, interruptions, error, "
    "created_at, started_at, finished_at, updated_at"
)


def _job(row: Sequence[Any]) -> Job:
    return Job(
        id=row[0],
        kind=row[1],
        status=row[2],
        params=json.loads(row[3]),
        documents=row[4],
        total=row[5],
        done=row[6],
        failed=row[7],
        interruptions=row[8],
        error=row[9],
        created_at=row[10],
        started_at=row[11],
        finished_at=row[12],
        updated_at=row[13],
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _count_sections(sections: list[dict[str, Any]], nested: bool) -> int:
    if not nested:
        return len(sections)
    return sum(1 + _count_sections(s.get("children", []), True) for s in sections)


def job_key(kind: str, params: Mapping[str, Any], doc_ids: Sequence[str]) -> str:
    """What identifies "the same job" for resuming: its kind, parameters and documents."""
    blob = json.dumps([kind, params, list(doc_ids)], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def summary_line(doc_id: str, doc_title: str, s: SectionSummary) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "doc_title": doc_title,
        "section_id": s.section_id,
        "level": s.level,
        "marker": s.marker,
        "title": s.title,
        "summary": s.summary,
        "sentences": [
            {
                "text": u.text,
                "paragraph": u.paragraph,
                "start": u.start,
                "end": u.end,
                "trimmed": u.trimmed,
            }
            for u in s.sentences
        ],
    }


class Jobs:
    """The jobs of one data dir: submit, inspect, stream results, and run them."""

    def __init__(self, speeches: Speeches, *, poll_seconds: float = 1.0) -> None:
        self.speeches = speeches
        self.poll_seconds = poll_seconds
        self.lock_path: Path = speeches.settings.data_dir / "jobs.lock"
        self._lock_file: IO[bytes] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def store(self) -> Store:
        return self.speeches.store

    # -- submitting and reading ---------------------------------------------------------------
    def submit_summaries(
        self,
        doc_ids: Sequence[str],
        *,
        selection: Mapping[str, Any],
        max_sentences: int | None = None,
        max_chars: int | None = None,
        ratio: float | None = None,
        include_subsections: bool = False,
        resume: bool = False,
    ) -> Job:
        """Queue summaries of every section of ``doc_ids``; ``selection`` is how they were chosen
        (kept in the job's parameters for the record). With ``resume``, an unfinished job with
        the same parameters and documents is returned instead of a new one."""
        if not doc_ids:
            raise InvalidInput("no documents to summarise: the selection is empty")
        try:
            Budget(max_sentences=max_sentences, max_chars=max_chars, ratio=ratio)
        except ModelError as exc:
            raise InvalidInput(str(exc)) from exc
        params = {
            "selection": dict(selection),
            "max_sentences": max_sentences,
            "max_chars": max_chars,
            "ratio": ratio,
            "include_subsections": include_subsections,
        }
        if resume:
            try:
                return self.find_resumable(KIND_SUMMARIES, params, doc_ids)
            except NotFound:
                pass
        return self._create(KIND_SUMMARIES, params, list(doc_ids))

    def _create(self, kind: str, params: dict[str, Any], doc_ids: list[str]) -> Job:
        nested = bool(params.get("include_subsections"))
        counts = self._section_counts(doc_ids, nested)
        missing = [d for d in doc_ids if d not in counts]
        if missing:
            raise NotFound(f"no document with id {missing[0]!r}")
        job_id = uuid.uuid4().hex
        now = _now()
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO jobs(id, kind, key, status, params, documents, total, done, "
                "created_at, updated_at) VALUES (?, ?, ?, 'queued', ?, ?, ?, 0, ?, ?)",
                (
                    job_id,
                    kind,
                    job_key(kind, params, doc_ids),
                    json.dumps(params, ensure_ascii=False),
                    len(doc_ids),
                    sum(counts.values()),
                    now,
                    now,
                ),
            )
            conn.executemany(
                "INSERT INTO job_items(job_id, seq, doc_id, sections, status) "
                "VALUES (?, ?, ?, ?, 'pending')",
                [(job_id, i, d, counts[d]) for i, d in enumerate(doc_ids)],
            )
        self._wake.set()
        return self.get(job_id)

    def _section_counts(self, doc_ids: Sequence[str], nested: bool) -> dict[str, int]:
        conn = self.store.connection()
        counts: dict[str, int] = {}
        ids = list(dict.fromkeys(doc_ids))
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for doc_id, sections in conn.execute(
                f"SELECT id, sections FROM documents WHERE id IN ({marks})", chunk
            ):
                counts[doc_id] = _count_sections(json.loads(sections), nested)
        return counts

    def get(self, job_id: str) -> Job:
        row = (
            self.store.connection()
            .execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
            .fetchone()
        )
        if row is None:
            raise NotFound(f"no job with id {job_id!r}")
        return _job(row)

    def list_jobs(self, limit: int = 100) -> list[Job]:
        rows = (
            self.store.connection()
            .execute(f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,))
            .fetchall()
        )
        return [_job(r) for r in rows]

    def find_resumable(self, kind: str, params: Mapping[str, Any], doc_ids: Sequence[str]) -> Job:
        """The latest unfinished job with these parameters and documents, or NotFound."""
        row = (
            self.store.connection()
            .execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE key = ? AND status IN "
                "('queued', 'running') ORDER BY created_at DESC LIMIT 1",
                (job_key(kind, dict(params), list(doc_ids)),),
            )
            .fetchone()
        )
        if row is None:
            raise NotFound("no unfinished job with these parameters")
        return _job(row)

    def delete(self, job_id: str) -> None:
        """Forget a job and its result; a running job stops after its current document."""
        with self.store.write() as conn:
            cur = conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            if cur.rowcount == 0:
                raise NotFound(f"no job with id {job_id!r}")
            conn.execute("DELETE FROM job_items WHERE job_id = ?", (job_id,))

    def result_lines(self, job_id: str, *, partial: bool = False) -> Iterator[str]:
        """The result as JSON Lines, one section per line, documents in the job's order.

        Unless ``partial``, the job must be finished (:class:`JobNotFinished` otherwise); the
        check happens here, before the first line, so an HTTP layer can still answer 409.
        """
        job = self.get(job_id)
        if not partial and not job.finished:
            raise JobNotFinished(
                f"job {job_id} is {job.status} ({job.done}/{job.total} sections); "
                "ask again when it is done, or pass partial=true"
            )
        return self._lines(job_id)

    def _lines(self, job_id: str) -> Iterator[str]:
        last = -1
        while True:
            rows = (
                self.store.connection()
                .execute(
                    "SELECT seq, doc_id, result, error FROM job_items WHERE job_id = ? AND "
                    "seq > ? AND status != 'pending' ORDER BY seq LIMIT ?",
                    (job_id, last, _PAGE),
                )
                .fetchall()
            )
            if not rows:
                return
            for seq, doc_id, result, error in rows:
                last = seq
                if error is not None:
                    yield json.dumps({"doc_id": doc_id, "error": json.loads(error)}) + "\n"
                elif result:
                    yield from (line + "\n" for line in result.split("\n"))

    # -- the runner lock ----------------------------------------------------------------------
    def acquire(self) -> bool:
        """Become this data dir's job runner; then recover what a dead runner left running."""
        if self._lock_file is not None:
            return True
        handle = open(self.lock_path, "a+b")  # noqa: SIM115 - held open while we run jobs
        if fcntl is not None:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.close()
                return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._lock_file = handle
        self.recover()
        return True

    def release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    def recover(self) -> list[Job]:
        """Jobs left ``running`` by a runner that is gone: back to the queue, or failed."""
        now = _now()
        with self.store.write() as conn:
            rows = conn.execute(
                "SELECT id, interruptions FROM jobs WHERE status = 'running'"
            ).fetchall()
            for job_id, interruptions in rows:
                if interruptions + 1 >= MAX_INTERRUPTIONS:
                    conn.execute(
                        "UPDATE jobs SET status = 'failed', interruptions = ?, error = ?, "
                        "finished_at = ?, updated_at = ? WHERE id = ?",
                        (
                            interruptions + 1,
                            f"the service stopped while this job ran, {interruptions + 1} "
                            "times; not resumed again (finished documents are in the result)",
                            now,
                            now,
                            job_id,
                        ),
                    )
                else:
                    conn.execute(
                        "UPDATE jobs SET status = 'queued', interruptions = ?, updated_at = ? "
                        "WHERE id = ?",
                        (interruptions + 1, now, job_id),
                    )
        for job_id, _ in rows:
            log.warning("job %s was interrupted by a stop: %s", job_id, self.get(job_id).status)
        return [self.get(job_id) for job_id, _ in rows]

    # -- running ------------------------------------------------------------------------------
    def run(
        self,
        job_id: str,
        *,
        progress: Callable[[Job], None] | None = None,
        stop: threading.Event | None = None,
    ) -> Job:
        """Run a queued job in this thread until it finishes or ``stop`` is set.

        The caller must hold the runner lock (:meth:`acquire`).
        """
        if self._lock_file is None:
            raise RuntimeError("Jobs.acquire() first: another process may be running jobs")
        now = _now()
        with self.store.write() as conn:
            claimed = conn.execute(
                "UPDATE jobs SET status = 'running', started_at = coalesce(started_at, ?), "
                "updated_at = ? WHERE id = ? AND status = 'queued'",
                (now, now, job_id),
            ).rowcount
        job = self.get(job_id)
        if not claimed:
            return job
        try:
            items = (
                self.store.connection()
                .execute(
                    "SELECT seq, doc_id, sections FROM job_items WHERE job_id = ? AND "
                    "status = 'pending' ORDER BY seq",
                    (job_id,),
                )
                .fetchall()
            )
            for seq, doc_id, expected in items:
                if stop is not None and stop.is_set():
                    self.requeue(job_id)
                    return self.get(job_id)
                if not self._run_item(job, seq, doc_id, expected):
                    log.info("job %s was deleted while it ran", job_id)
                    return job
                if progress is not None:
                    progress(self.get(job_id))
            now = _now()
            with self.store.write() as conn:
                conn.execute(
                    "UPDATE jobs SET status = 'done', finished_at = ?, updated_at = ? "
                    "WHERE id = ? AND status = 'running'",
                    (now, now, job_id),
                )
        except Exception as exc:
            log.exception("job %s failed", job_id)
            self._fail(job_id, f"internal error: {type(exc).__name__}: {exc}")
        try:
            return self.get(job_id)
        except NotFound:
            return job

    def _run_item(self, job: Job, seq: int, doc_id: str, expected: int) -> bool:
        """Summarise one document and commit it with the job's progress; False if the job is
        gone."""
        params = job.params
        lines: list[str] = []
        error = None
        content_hash = None
        try:
            doc = self.speeches.get_document(doc_id)
            content_hash = doc.content_hash
            summaries = self.speeches.summarize(
                doc_id,
                max_sentences=params.get("max_sentences"),
                max_chars=params.get("max_chars"),
                ratio=params.get("ratio"),
                include_subsections=bool(params.get("include_subsections")),
            )
            lines = [
                json.dumps(summary_line(doc_id, doc.title, s), ensure_ascii=False)
                for s in summaries
            ]
        except (ServiceError, ModelError) as exc:
            code = exc.code if isinstance(exc, ServiceError) else "summary_error"
            error = json.dumps({"code": code, "message": str(exc)}, ensure_ascii=False)
        now = _now()
        with self.store.write() as conn:
            updated = conn.execute(
                "UPDATE jobs SET done = done + ?, total = total - ? + ?, failed = failed + ?, "
                "updated_at = ? WHERE id = ? AND status = 'running'",
                (len(lines), expected, len(lines), error is not None, now, job.id),
            ).rowcount
            if not updated:
                return False
            conn.execute(
                "UPDATE job_items SET status = ?, sections = ?, content_hash = ?, result = ?, "
                "error = ? WHERE job_id = ? AND seq = ?",
                (
                    "failed" if error else "done",
                    len(lines),
                    content_hash,
                    "\n".join(lines),
                    error,
                    job.id,
                    seq,
                ),
            )
        return True

    def requeue(self, job_id: str) -> None:
        """A running job back to the queue (a clean stop: no interruption counted)."""
        with self.store.write() as conn:
            conn.execute(
                "UPDATE jobs SET status = 'queued', updated_at = ? WHERE id = ? AND "
                "status = 'running'",
                (_now(), job_id),
            )

    def _fail(self, job_id: str, reason: str) -> None:
        now = _now()
        try:
            with self.store.write() as conn:
                conn.execute(
                    "UPDATE jobs SET status = 'failed', error = ?, finished_at = ?, "
                    "updated_at = ? WHERE id = ?",
                    (reason, now, now, job_id),
                )
        except sqlite3.Error:
            log.exception("could not mark job %s failed", job_id)

    def next_queued(self) -> str | None:
        row = (
            self.store.connection()
            .execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at LIMIT 1")
            .fetchone()
        )
        return None if row is None else row[0]

    # -- the background worker ----------------------------------------------------------------
    def start(self) -> Jobs:
        """Run queued jobs in a daemon thread until :meth:`stop`.

        The lock is tried here first, so that jobs a dead runner left are recovered before the
        service answers; if another process holds it, the worker keeps trying.
        """
        self._stop.clear()
        self.acquire()
        self._thread = threading.Thread(target=self._loop, name="speechqa-jobs", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current document; the running job goes back to the queue."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Keep the lock: the worker still writes; the process exit releases it.
                log.warning("the job worker did not stop within %.0f s", timeout)
                return
            self._thread = None
        self.release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.acquire():
                    # Another process (a CLI batch, another server) runs jobs here now.
                    self._stop.wait(self.poll_seconds * 5)
                    continue
                job_id = self.next_queued()
                if job_id is None:
                    self._wake.wait(self.poll_seconds)
                    self._wake.clear()
                    continue
                self.run(job_id, stop=self._stop)
            except Exception:
                log.exception("job worker error; retrying")
                self._stop.wait(self.poll_seconds * 5)


# -- writing a result to a file ------------------------------------------------------------------
def write_result(jobs: Jobs, job_id: str, path: Path) -> None:
    """A finished job's result as ``.jsonl`` (the lines as served) or ``.md``, atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            lines = jobs.result_lines(job_id)
            if path.suffix.lower() == ".md":
                _write_markdown(jobs, lines, fh)
            else:
                fh.writelines(lines)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


_MD_META = ("speaker", "date", "place", "source_file")
_UNTITLED = {"preamble": "开头", "closing": "结尾"}


def _write_markdown(jobs: Jobs, lines: Iterator[str], fh: IO[str]) -> None:
    current = None
    for raw in lines:
        item = json.loads(raw)
        doc_id = item["doc_id"]
        if doc_id != current:
            current = doc_id
            try:
                doc = jobs.speeches.get_document(doc_id)
                title, metadata = doc.title, doc.metadata
            except NotFound:
                title, metadata = item.get("doc_title", doc_id), {}
            fh.write(f"# {title}\n\n")
            facts = [f"`{doc_id}`"] + [str(metadata[k]) for k in _MD_META if metadata.get(k)]
            fh.write(" · ".join(facts) + "\n\n")
        if "error" in item:
            fh.write(f"> 未能摘要 (not summarised): {item['error']['message']}\n\n")
            continue
        heading = "#" * min(item["level"] + 1, 6)
        marker = item["marker"] or ""
        marker = "" if marker.startswith("#") else marker
        title = f"{marker}{item['title']}".strip() or _UNTITLED.get(
            item["section_id"], item["section_id"]
        )
        fh.write(f"{heading} {title}\n\n{item['summary'] or '（无）'}\n\n")
