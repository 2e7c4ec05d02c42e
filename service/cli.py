"""The ``speechqa`` command: serve, ingest, ask, summarize and eval on one data dir."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from service.config import Settings, default_seed_dir


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides = {k: v for k, v in extra.items() if v is not None}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    return Settings(**overrides)


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _parse_filter(items: Sequence[str] | None) -> dict[str, Any] | None:
    """``--filter key=value`` options as a filter object; a key given twice means any of."""
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise SystemExit(f"speechqa: --filter takes key=value, got {item!r}")
        if key in out:
            previous = out[key]
            out[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            out[key] = value
    return out


def _bar(args: argparse.Namespace, **kwargs: Any) -> Any:
    from tqdm import tqdm

    return tqdm(file=sys.stderr, disable=args.no_progress, dynamic_ncols=True, **kwargs)


def cmd_serve(args: argparse.Namespace) -> int:
    # FAISS's OpenMP threads fight the server's worker threads; it must be set before the
    # OpenMP runtime starts, i.e. before faiss is imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from service.api.app import create_app
    from service.api.logs import configure_logging
    from service.api.security import ExposureError, check_exposure

    seed_dir = None if args.no_seeds else (args.seed_dir or default_seed_dir())
    settings = _settings(args, host=args.host, port=args.port)
    settings = settings.model_copy(update={"seed_dir": seed_dir})
    configure_logging(settings.log_format, args.log_level)
    try:
        check_exposure(settings)
    except ExposureError as exc:
        print(f"speechqa: {exc}", file=sys.stderr)
        return 2
    keys = (
        "API keys required" if settings.api_keys or settings.read_only_api_keys else "NO API keys"
    )
    print(
        f"speechqa: serving on http://{settings.host}:{settings.port} ({keys}; "
        f"data dir {settings.data_dir.resolve()}, seeds {seed_dir or 'none'})",
        flush=True,
    )
    # Logging is configured above (text or JSON lines); the access line is our own.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        log_config=None,
        access_log=False,
    )
    return 0


def cmd_hash_key(args: argparse.Namespace) -> int:
    """Print the ``sha256:<hex>`` form of a key read from stdin, for SPEECHQA_API_KEYS."""
    from service.api.security import hash_key

    key = sys.stdin.readline().strip()
    if not key:
        print("speechqa: give the key on stdin", file=sys.stderr)
        return 2
    print(hash_key(key))
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from service.core import IngestReport, Speeches

    missing = [p for p in args.paths if not p.exists()]
    for p in missing:
        print(f"not found: {p}", file=sys.stderr)
    started = time.monotonic()
    bar: Any = None
    with Speeches(_settings(args)) as speeches:

        def progress(r: IngestReport, done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = _bar(args, total=total, unit="file", desc="ingest")
            bar.update(done - bar.n)
            if r.status != "unchanged" or args.verbose:
                line = f"{r.status:9} {r.doc_id}  {r.path}"
                tqdm.write(line + (f"  ({r.error})" if r.error else ""), file=sys.stdout)

        try:
            reports = speeches.ingest_paths(
                [p for p in args.paths if p.exists()], progress=progress
            )
        finally:
            if bar is not None:
                bar.close()
    counts = Counter(r.status for r in reports)
    counts["failed"] += len(missing)
    print(
        ", ".join(f"{counts[s]} {s}" for s in ("created", "replaced", "unchanged", "failed"))
        + f" ({len(reports)} files in {time.monotonic() - started:.1f} s)"
    )
    return 1 if counts["failed"] else 0


def cmd_ask(args: argparse.Namespace) -> int:
    from service.core import Speeches

    with Speeches(_settings(args)) as speeches:
        result = speeches.ask(
            args.question,
            top_k=args.top_k,
            doc_ids=args.doc_id or None,
            filter=_parse_filter(args.filter),
        )
    if args.json:
        _print_json(
            {
                "answer": result.answer,
                "answerable": result.answerable,
                "confidence": result.confidence,
                "citations": [c.as_dict() for c in result.citations],
            }
        )
        return 0
    if not result.answerable:
        print("Not in these speeches.")
        return 0
    print(result.answer)
    if result.sentence is not None:
        print(f"  「{result.sentence.text}」")
    for i, c in enumerate(result.citations, 1):
        print(
            f"  [{i}] {c.doc_id} §{c.section_id} {c.section_title} ¶{c.paragraph} "
            f"[{c.start}:{c.end}]"
        )
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    from service.core import Speeches

    if args.all or args.filter:
        return _summarize_batch(args)
    if args.doc_id is None:
        print("speechqa: give a DOC_ID, or --all / --filter with --out FILE", file=sys.stderr)
        return 2
    with Speeches(_settings(args)) as speeches:
        sections = speeches.summarize(
            args.doc_id,
            args.section,
            max_sentences=args.max_sentences,
            max_chars=args.max_chars,
            ratio=args.ratio,
            include_subsections=args.include_subsections,
        )
    if args.json:
        _print_json(
            {
                "doc_id": args.doc_id,
                "sections": [
                    {
                        "section_id": s.section_id,
                        "title": s.title,
                        "summary": s.summary,
                        "sentences": [asdict(u) for u in s.sentences],
                    }
                    for s in sections
                ],
            }
        )
        return 0
    for s in sections:
        print(f"§{s.section_id} {s.title}")
        for u in s.sentences:
            print(f"  ¶{u.paragraph} [{u.start}:{u.end}] {u.text}{'……' if u.trimmed else ''}")
        print()
    return 0


def _summarize_batch(args: argparse.Namespace) -> int:
    """Every section of many documents into a .jsonl or .md file, through a resumable job."""
    from service.core import Speeches
    from service.jobs import Jobs, write_result

    out: Path | None = args.out
    if out is None or out.suffix.lower() not in (".jsonl", ".md"):
        print("speechqa: --all / --filter write to --out FILE.jsonl or FILE.md", file=sys.stderr)
        return 2
    if args.doc_id is not None or args.section is not None:
        print("speechqa: DOC_ID and --section do not go with --all / --filter", file=sys.stderr)
        return 2
    where = _parse_filter(args.filter)
    settings = _settings(args)
    with Speeches(settings) as speeches:
        jobs = Jobs(speeches)
        if not jobs.acquire():
            print(
                f"speechqa: another speechqa process (a server?) runs jobs on {settings.data_dir};"
                " submit there with POST /v1/batch/summaries, or stop it first",
                file=sys.stderr,
            )
            return 2
        try:
            doc_ids = speeches.select_documents(None, where)
            job = jobs.submit_summaries(
                doc_ids,
                selection={"all": args.all, "doc_ids": None, "filter": where},
                max_sentences=args.max_sentences,
                max_chars=args.max_chars,
                ratio=args.ratio,
                include_subsections=args.include_subsections,
                resume=not args.restart,
            )
            if job.done:
                print(
                    f"resuming job {job.id}: {job.done}/{job.total} sections done",
                    file=sys.stderr,
                )
            started, first = time.monotonic(), job.done
            with _bar(args, total=job.total, initial=job.done, unit="section") as bar:

                def progress(j: Any) -> None:
                    bar.total = j.total
                    bar.update(j.done - bar.n)

                try:
                    job = jobs.run(job.id, progress=progress)
                except KeyboardInterrupt:
                    jobs.requeue(job.id)
                    bar.close()
                    print("\ninterrupted; run the same command again to resume", file=sys.stderr)
                    return 130
            if job.status != "done":
                print(f"speechqa: job {job.id} {job.status}: {job.error}", file=sys.stderr)
                return 1
            write_result(jobs, job.id, out)
        finally:
            jobs.release()
    elapsed = time.monotonic() - started
    rate = (job.done - first) / elapsed if elapsed > 0 else 0.0
    print(
        f"{job.done} sections of {job.documents} documents -> {out}"
        + (f" ({job.failed} documents failed)" if job.failed else "")
        + f" (job {job.id}, {rate:.1f} sections/s)"
    )
    return 1 if job.failed else 0


EVALS = {
    "seed-qa": ("service.evals.seed_qa", "questions on the seed speeches"),
    "qa": ("service.evals.qa", "open-retrieval QA on CMRC 2018 / DRCD"),
    "summ": ("service.evals.summ", "ROUGE of section summaries against human references"),
}


def cmd_eval(args: argparse.Namespace) -> int:
    module = importlib.import_module(EVALS[args.dataset_kind][0])
    return int(module.run(args, _settings(args)))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechqa", description="Ask and summarise Chinese speeches, grounded in the text."
    )
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: ./data)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[data], help="run the HTTP API")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--seed-dir", type=Path, default=None, help="default: the project's seeds/")
    serve.add_argument("--no-seeds", action="store_true", help="do not ingest any seeds")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    hk = sub.add_parser(
        "hash-key", help="print sha256:<hex> of an API key read from stdin, for SPEECHQA_API_KEYS"
    )
    hk.set_defaults(func=cmd_hash_key)

    progress = argparse.ArgumentParser(add_help=False)
    progress.add_argument(
        "--no-progress", action="store_true", help="no progress bar (for scripts and logs)"
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument(
        "--filter",
        action="append",
        metavar="KEY=VALUE",
        help="only documents whose metadata KEY is VALUE (repeatable; date_from=, date_to=, "
        "date= take 2019, 2019-03 or 2019-03-05)",
    )

    ingest = sub.add_parser(
        "ingest",
        parents=[data, progress],
        help="ingest .txt/.md/.docx/.pdf/.html files or folders (recursively)",
    )
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.add_argument("-v", "--verbose", action="store_true", help="list unchanged files too")
    ingest.set_defaults(func=cmd_ingest)

    ask = sub.add_parser("ask", parents=[data, filters], help="answer a question from the speeches")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=5)
    ask.add_argument("--doc-id", action="append", help="restrict to this document (repeatable)")
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(func=cmd_ask)

    summ = sub.add_parser(
        "summarize",
        parents=[data, filters, progress],
        help="summarise a document's sections, or every document's (--all) into a file",
    )
    summ.add_argument("doc_id", nargs="?", default=None)
    summ.add_argument("--all", action="store_true", help="every document (with --out)")
    summ.add_argument("--out", type=Path, default=None, help="with --all / --filter: .jsonl or .md")
    summ.add_argument(
        "--include-subsections", action="store_true", help="every section at every level"
    )
    summ.add_argument(
        "--restart", action="store_true", help="start over instead of resuming an unfinished run"
    )
    summ.add_argument("--section", default=None, help="section id, e.g. 2 or 2.1")
    summ.add_argument("--max-sentences", type=int, default=None)
    summ.add_argument("--max-chars", type=int, default=None)
    summ.add_argument("--ratio", type=float, default=None)
    summ.add_argument("--json", action="store_true")
    summ.set_defaults(func=cmd_summarize)

    ev = sub.add_parser("eval", help="measure quality on evaluation data")
    ev_sub = ev.add_subparsers(dest="dataset_kind", required=True)
    for name, (module_name, help_text) in EVALS.items():
        one = ev_sub.add_parser(name, parents=[data], help=help_text)
        importlib.import_module(module_name).add_arguments(one)
        one.set_defaults(func=cmd_eval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("faiss").setLevel(logging.WARNING)
    # A malformed PDF is reported per file; pypdf's own warnings about it are noise here.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    from service.errors import ServiceError
    from service.store import DataDirError

    try:
        return int(args.func(args))
    except ServiceError as exc:
        print(f"speechqa: {exc.message}", file=sys.stderr)
        return 2
    except DataDirError as exc:
        print(f"speechqa: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
