"""Evaluation of answers on the seed speeches, through the same core that ``/v1/ask`` uses."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.config import PROJECT_ROOT, Settings, default_seed_dir

if TYPE_CHECKING:  # the core imports FAISS; `speechqa serve` must set OpenMP up first
    from service.core import Speeches

DEFAULT_SEED_QA = PROJECT_ROOT.parent / "shared" / "eval" / "seed_qa_dev.jsonl"
# An answer counts as concise when it is no longer than a sentence a reader would quote.
CONCISE_CHARS = 80


@dataclass
class SeedQAResult:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def _share(self, rows: list[dict[str, Any]], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows) if rows else float("nan")

    def summary(self) -> dict[str, Any]:
        answerable = [r for r in self.rows if r["gold_answerable"]]
        unanswerable = [r for r in self.rows if not r["gold_answerable"]]
        latencies = [r["ms"] for r in self.rows]
        return {
            "questions": len(self.rows),
            "answerable": len(answerable),
            "accuracy": self._share(answerable, "correct"),
            "exact": self._share(answerable, "exact"),
            "citation_hit@5": self._share(answerable, "cited"),
            "wrongly_declined": self._share(answerable, "declined"),
            "unanswerable": len(unanswerable),
            "abstention": self._share(unanswerable, "declined"),
            "median_ms": statistics.median(latencies) if latencies else float("nan"),
            "max_answer_chars": max((len(r["answer"]) for r in answerable), default=0),
        }


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _compact(text: str) -> str:
    return "".join(text.split())


def run_seed_qa(
    speeches: Speeches, questions: Path = DEFAULT_SEED_QA, top_k: int = 5
) -> SeedQAResult:
    result = SeedQAResult()
    for q in _read_jsonl(questions):
        t0 = time.perf_counter()
        got = speeches.ask(q["question"], top_k=top_k)
        ms = (time.perf_counter() - t0) * 1000
        answer = _compact(got.answer)
        golds = [_compact(a) for a in q["answers"]]
        correct = (
            got.answerable
            and len(got.answer) <= CONCISE_CHARS
            and any(g and g in answer for g in golds)
        )
        cited = any(
            c.doc_id == q["doc_id"] and c.paragraph == q["paragraph"] for c in got.citations[:5]
        )
        result.rows.append(
            {
                "qid": q["qid"],
                "question": q["question"],
                "gold": q["answers"],
                "gold_answerable": q["answerable"],
                "answer": got.answer,
                "answerable": got.answerable,
                "confidence": got.confidence,
                "correct": correct,
                "exact": got.answerable and answer in golds,
                "cited": cited,
                "declined": not got.answerable,
                "ms": ms,
            }
        )
    return result


def seed_qa_on_fresh_index(
    settings: Settings, seed_dir: Path, questions: Path = DEFAULT_SEED_QA
) -> SeedQAResult:
    """Index the seeds in a throw-away data dir (the normal ingestion path), then evaluate."""
    with tempfile.TemporaryDirectory(prefix="speechqa-eval-") as tmp:
        fresh = settings.model_copy(update={"data_dir": Path(tmp), "seed_dir": None})
        from service.core import Speeches

        with Speeches(fresh) as speeches:
            reports = speeches.ingest_paths([seed_dir], recursive=False)
            failed = [r for r in reports if r.status == "failed"]
            if failed:
                raise RuntimeError(f"seed ingestion failed: {failed}")
            return run_seed_qa(speeches, questions)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--questions", type=Path, default=DEFAULT_SEED_QA)
    parser.add_argument("--seed-dir", type=Path, default=None, help="default: the project's seeds")


def run(args: argparse.Namespace, settings: Settings) -> int:
    seed_dir = args.seed_dir or default_seed_dir()
    if seed_dir is None:
        raise SystemExit("no seed directory found; pass --seed-dir")
    result = seed_qa_on_fresh_index(settings, seed_dir, args.questions)
    for r in result.rows:
        ok = r["correct"] if r["gold_answerable"] else r["declined"]
        shown = r["answer"] if r["answerable"] else "(declined)"
        print(
            f"{'ok ' if ok else 'BAD'} {r['qid']:8} {r['question']}  ->  {shown}  "
            f"[gold: {'|'.join(r['gold'])}]"
        )
    print()
    for key, value in result.summary().items():
        print(f"{key:18} {value:.3f}" if isinstance(value, float) else f"{key:18} {value}")
    return 0
