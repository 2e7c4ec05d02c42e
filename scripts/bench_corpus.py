"""Time ingestion and batch summaries on the 87-report corpus (../shared/eval/corpus).

    .venv/bin/python scripts/bench_corpus.py [--corpus FILE] [--keep DIR]

Writes every report as a .txt file with front matter (title, kind, date) into a folder, ingests
the folder through ``Speeches.ingest_paths`` (what ``speechqa ingest`` runs), re-ingests it
(everything unchanged), then summarises every top-level section and every section at every
level as batch jobs (what ``POST /v1/batch/summaries`` and ``speechqa summarize --all`` run).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service.config import PROJECT_ROOT, Settings
from service.core import Speeches
from service.jobs import Jobs

DEFAULT = PROJECT_ROOT.parent / "shared" / "eval" / "corpus" / "cn_gov_reports.jsonl"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = [json.loads(line) for line in args.corpus.read_text(encoding="utf-8").splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        folder = root / "reports"
        folder.mkdir(parents=True, exist_ok=True)
        chars = 0
        for r in rows:
            date = r["id"][4:8] if r["kind"] == "government_work_report" else ""
            head = f"---\ntitle: {r['title']}\nkind: {r['kind']}\n" + (
                f"date: {date}\n---\n" if date else "---\n"
            )
            (folder / f"{r['id']}.txt").write_text(head + r["text"], encoding="utf-8")
            chars += len(r["text"])
        with Speeches(Settings(data_dir=root / "data")) as speeches:
            t = time.perf_counter()
            reports = speeches.ingest_paths([folder])
            ingest = time.perf_counter() - t
            failed = [r for r in reports if r.status == "failed"]
            t = time.perf_counter()
            again = speeches.ingest_paths([folder])
            reingest = time.perf_counter() - t
            print(
                f"ingest: {len(reports)} files, {chars:,} chars, {len(failed)} failed, "
                f"{ingest:.1f} s ({len(reports) / ingest:.1f} docs/s, {chars / ingest:,.0f} "
                f"chars/s); again: {sum(r.status == 'unchanged' for r in again)} unchanged "
                f"in {reingest:.2f} s"
            )
            jobs = Jobs(speeches)
            if not jobs.acquire():
                print("another process runs jobs on this data dir", file=sys.stderr)
                return 2
            try:
                for nested in (False, True):
                    job = jobs.submit_summaries(
                        speeches.select_documents(),
                        selection={"all": True},
                        include_subsections=nested,
                    )
                    t = time.perf_counter()
                    job = jobs.run(job.id)
                    took = time.perf_counter() - t
                    print(
                        f"summaries ({'every level' if nested else 'top level'}): "
                        f"{job.done} sections of {job.documents} documents, {job.failed} failed, "
                        f"{took:.1f} s ({job.done / took:.1f} sections/s)"
                    )
            finally:
                jobs.release()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
