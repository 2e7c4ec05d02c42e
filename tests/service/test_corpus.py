"""The realistic corpus: 87 government work reports and congress reports (1954-2025) as a folder
of mixed files, ingested in one go, their outlines checked, their sections summarised as a job.

``../shared/eval/corpus/cn_gov_reports.jsonl``; skipped when that checkout is not beside this one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from service.config import PROJECT_ROOT, Settings
from service.core import IngestReport, Speeches, normalize_text
from service.jobs import Jobs
from service.outline import parse_outline
from tests.service.builders import make_docx, make_html

CORPUS = PROJECT_ROOT.parent / "shared" / "eval" / "corpus" / "cn_gov_reports.jsonl"
HTML_YEARS = range(2010, 2015)


@dataclass
class Corpus:
    rows: dict[str, dict[str, Any]]
    speeches: Speeches
    reports: list[IngestReport]
    progress: list[int]
    folder: Path
    seconds: float


def _year(row: dict[str, Any]) -> int | None:
    return int(row["id"][4:8]) if row["kind"] == "government_work_report" else None


def _front(fields: dict[str, Any], text: str) -> str:
    return "---\n" + "".join(f"{k}: {v}\n" for k, v in fields.items()) + "---\n" + text


def _write(row: dict[str, Any], root: Path) -> None:
    """One report as a file: work reports as .txt in three encodings (five as web pages),
    resolutions as Word documents, congress reports as Markdown."""
    kind, text = row["kind"], row["text"]
    folder = root / kind
    folder.mkdir(exist_ok=True)
    year = _year(row)
    if year in HTML_YEARS:
        paragraphs = [p for p in text.split("\n") if p.strip()]
        page = make_html(paragraphs, title=row["title"], meta={"date": str(year)})
        (folder / f"{row['id']}.html").write_text(page, encoding="utf-8")
    elif year is not None:
        encoding = ("gb18030", "utf-16", "utf-8-sig")[year % 3]
        content = _front({"title": row["title"], "kind": kind, "date": year}, text)
        (folder / str(year // 10 * 10) / f"{row['id']}.txt").parent.mkdir(exist_ok=True)
        (folder / str(year // 10 * 10) / f"{row['id']}.txt").write_bytes(content.encode(encoding))
    elif kind == "npc_resolution":
        lines = ["---", f"title: {row['title']}", f"kind: {kind}", "---", *text.split("\n")]
        (folder / f"{row['id']}.docx").write_bytes(make_docx(lines))
    else:
        (folder / f"{row['id']}.md").write_text(
            _front({"title": row["title"], "kind": kind}, text), encoding="utf-8"
        )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    if not CORPUS.is_file():
        pytest.fail(f"{CORPUS} is not there: ../shared must stand beside the checkout")
    rows = {r["id"]: r for r in map(json.loads, CORPUS.read_text(encoding="utf-8").splitlines())}
    root = tmp_path_factory.mktemp("corpus")
    folder = root / "reports"
    folder.mkdir()
    for row in rows.values():
        _write(row, folder)
    progress: list[int] = []
    with Speeches(Settings(data_dir=root / "data")) as speeches:
        started = time.perf_counter()
        reports = speeches.ingest_paths(
            [folder], progress=lambda _r, done, _total: progress.append(done)
        )
        seconds = time.perf_counter() - started
        yield Corpus(rows, speeches, reports, progress, folder, seconds)


def test_every_report_is_ingested_from_its_file(corpus: Corpus) -> None:
    failed = [(r.path.name, r.error) for r in corpus.reports if r.status != "created"]
    assert failed == []
    assert len(corpus.reports) == len(corpus.rows) == 87
    assert corpus.progress == list(range(1, 88))
    stored = {r["id"]: r for r in corpus.speeches.list_documents()}
    assert set(stored) == set(corpus.rows)
    formats = {}
    for doc_id, row in corpus.rows.items():
        meta = stored[doc_id]["metadata"]
        formats[meta["format"]] = formats.get(meta["format"], 0) + 1
        if meta["format"] != "html":
            assert stored[doc_id]["title"] == row["title"]
            assert meta["kind"] == row["kind"]
        # The file's text is the report's, whatever the format and encoding it went through.
        doc = corpus.speeches.get_document(doc_id)
        expected = [p.strip() for p in normalize_text(row["text"]).split("\n") if p.strip()]
        if meta["format"] == "html":  # the page's <h1> heads the text
            expected.insert(0, row["title"])
        assert [p.strip() for p in doc.text.split("\n") if p.strip()] == expected, doc_id
    assert formats == {"text": 47, "html": 5, "docx": 20, "markdown": 15}
    assert {stored[f"gwr-{y}"]["metadata"]["encoding"] for y in (2019, 2021, 2023)} == {
        "gb18030",
        "utf_16",
        "utf_8",
    }
    print(f"\ningested 87 reports in {corpus.seconds:.1f} s")


def test_outlines_parse_into_numbered_sections_and_subsections(corpus: Corpus) -> None:
    with_parts = with_points = 0
    for doc_id, row in corpus.rows.items():
        doc = corpus.speeches.get_document(doc_id)
        # Whatever the file format, the outline is the one of the report's own text.
        own = parse_outline(normalize_text(row["text"]))
        skip = 1 if doc.metadata["format"] == "html" else 0  # the <h1> joins the preamble
        assert [(s["id"], s["title"]) for s in doc.sections[skip:]] == [
            (s.id, s.title) for s in own.sections[skip:]
        ], doc_id
        if row["kind"] != "government_work_report":
            continue
        parts = [s for s in doc.sections if (s["marker"] or "").endswith("、")]
        points = [c for s in parts for c in s["children"] if (c["marker"] or "").startswith("（")]
        with_parts += bool(parts)
        with_points += bool(points)
        year = _year(row)
        if year is not None and year >= 2003 and year != 2015:
            assert len(parts) >= 2 and points, doc_id
    assert with_parts >= 44 and with_points >= 24  # of 52 work reports
    latest = corpus.speeches.get_document("gwr-2025").sections
    assert [(s["id"], s["marker"], s["title"]) for s in latest[1:4]] == [
        ("1", "一、", "2024年工作回顾"),
        ("2", "二、", "2025年经济社会发展总体要求和政策取向"),
        ("3", "三、", "2025年政府工作任务"),
    ]
    tasks = latest[3]["children"]
    assert [c["marker"] for c in tasks] == [f"（{n}）" for n in "一二三四五六七八九十"]
    assert tasks[1]["title"].startswith("因地制宜发展新质生产力")


def test_reingesting_the_folder_changes_nothing(corpus: Corpus) -> None:
    again = corpus.speeches.ingest_paths([corpus.folder])
    assert {r.status for r in again} == {"unchanged"}


def test_filter_and_a_batch_job_summarise_every_section(corpus: Corpus) -> None:
    speeches = corpus.speeches
    recent = speeches.select_documents(
        filter={"date_from": "2019", "kind": "government_work_report"}
    )
    assert recent == ["gwr-2019", "gwr-2021", "gwr-2022", "gwr-2023", "gwr-2024", "gwr-2025"]
    assert len(speeches.select_documents(filter={"date": ["2012", "2013"]})) == 2  # the web pages
    hits = speeches.search("新质生产力", top_k=10, filter={"date_to": "2022"})
    assert all(int(h.doc_id[4:8]) <= 2022 for h in hits if h.doc_id.startswith("gwr-"))

    jobs = Jobs(speeches)
    assert jobs.acquire()
    try:
        job = jobs.submit_summaries(
            recent, selection={"filter": {"date_from": "2019"}}, include_subsections=True
        )
        started = time.perf_counter()
        job = jobs.run(job.id)
        seconds = time.perf_counter() - started
        lines = [json.loads(x) for x in jobs.result_lines(job.id)]
    finally:
        jobs.release()
    expected = sum(
        len(list(parse_outline(normalize_text(corpus.rows[d]["text"])).walk())) for d in recent
    )
    assert job.status == "done" and job.done == job.total == len(lines) == expected
    for line in lines:
        text = speeches.get_document(line["doc_id"]).text
        assert line["sentences"] or not line["summary"]
        for s in line["sentences"]:
            assert text[s["start"] : s["end"]] == s["text"]
    points = [x for x in lines if x["level"] == 2 and (x["marker"] or "").startswith("（")]
    assert len(points) >= 40
    print(f"\nsummarised {len(lines)} sections of {len(recent)} reports in {seconds:.1f} s")
