"""The ``speechqa`` command: serve, ingest, ask, summarize and eval on one data dir."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
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


def cmd_serve(args: argparse.Namespace) -> int:
    # FAISS's OpenMP threads fight the server's worker threads; it must be set before the
    # OpenMP runtime starts, i.e. before faiss is imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from service.api.app import create_app

    seed_dir = None if args.no_seeds else (args.seed_dir or default_seed_dir())
    settings = _settings(args, host=args.host, port=args.port)
    settings = settings.model_copy(update={"seed_dir": seed_dir})
    print(
        f"speechqa: serving on http://{settings.host}:{settings.port} "
        f"(data dir {settings.data_dir.resolve()}, seeds {seed_dir or 'none'})",
        flush=True,
    )
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=args.log_level
    )
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from service.core import Speeches

    missing = [p for p in args.paths if not p.exists()]
    for p in missing:
        print(f"not found: {p}", file=sys.stderr)
    with Speeches(_settings(args)) as speeches:
        reports = speeches.ingest_paths([p for p in args.paths if p.exists()])
    for r in reports:
        line = f"{r.status:9} {r.doc_id}  {r.path}"
        print(line + (f"  ({r.error})" if r.error else ""))
    counts = Counter(r.status for r in reports)
    counts["failed"] += len(missing)
    print(", ".join(f"{counts[s]} {s}" for s in ("created", "replaced", "unchanged", "failed")))
    return 1 if counts["failed"] else 0


def cmd_ask(args: argparse.Namespace) -> int:
    from service.core import Speeches

    with Speeches(_settings(args)) as speeches:
        result = speeches.ask(args.question, top_k=args.top_k, doc_ids=args.doc_id or None)
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

    with Speeches(_settings(args)) as speeches:
        sections = speeches.summarize(
            args.doc_id,
            args.section,
            max_sentences=args.max_sentences,
            max_chars=args.max_chars,
            ratio=args.ratio,
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
            print(f"  ¶{u.paragraph} [{u.start}:{u.end}] {u.text}")
        print()
    return 0


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

    ingest = sub.add_parser("ingest", parents=[data], help="ingest .txt/.md files or folders")
    ingest.add_argument("paths", nargs="+", type=Path)
    ingest.set_defaults(func=cmd_ingest)

    ask = sub.add_parser("ask", parents=[data], help="answer a question from the speeches")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=5)
    ask.add_argument("--doc-id", action="append", help="restrict to this document (repeatable)")
    ask.add_argument("--json", action="store_true")
    ask.set_defaults(func=cmd_ask)

    summ = sub.add_parser("summarize", parents=[data], help="summarise a document's sections")
    summ.add_argument("doc_id")
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
    from service.errors import ServiceError

    try:
        return int(args.func(args))
    except ServiceError as exc:
        print(f"speechqa: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
