"""`speechqa ingest DIR` with progress and failures; `summarize --all --out`, resumed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from service.config import Settings
from service.core import Speeches
from service.jobs import Jobs
from tests.service.builders import make_docx, make_html
from tests.service.test_cli import run_cli

SPEECHES = {
    "water": (
        {"speaker": "李明", "date": "2023-04-10"},
        [
            "同志们：",
            "一、抓好防汛抗旱",
            "要在汛前完成全部12座水库的除险加固，确保安全度汛。",
            "二、抓好农田水利",
            "今年新建高效节水灌溉面积3.5万亩。",
        ],
    ),
    "farm": (
        {"speaker": "王芳", "date": "2024-02-01"},
        [
            "同志们：",
            "一、稳定粮食生产",
            "全年粮食播种面积稳定在45万亩以上。",
            "（一）抓好春耕备耕",
            "提前调运化肥1.2万吨。",
            "二、发展特色产业",
            "新建标准化茶园5000亩。",
        ],
    ),
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-batch") / "in"
    (root / "2024").mkdir(parents=True)
    for name, (fields, lines) in SPEECHES.items():
        head = "".join(f"{k}: {v}\n" for k, v in fields.items())
        (root / f"{name}.txt").write_bytes(f"---\n{head}---\n{chr(10).join(lines)}\n".encode("gbk"))
    (root / "2024" / "school.docx").write_bytes(
        make_docx(["各位代表：", "一、推进教育公平", "改造农村薄弱学校18所。"], title="教育报告")
    )
    (root / "2024" / "page.html").write_text(
        make_html(["一、卫生工作", "新建村卫生室30个。"], title="卫生讲话"), encoding="utf-8"
    )
    (root / "2024" / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    return root


@pytest.fixture(scope="module")
def data_dir(folder: Path) -> Path:
    data = folder.parent / "data"
    done = run_cli("ingest", folder, "--data-dir", data)
    assert done.returncode == 1, done.stderr  # one file failed, the others are in
    assert "failed    broken" in done.stdout and "broken.pdf" in done.stdout
    for name in ("water", "farm", "school", "page"):
        assert f"created   {name}" in done.stdout
    assert "4 created, 0 replaced, 0 unchanged, 1 failed (5 files in" in done.stdout
    assert "5/5" in done.stderr and "file/s" in done.stderr  # the progress bar
    return data


def test_ingest_again_is_quiet_and_no_progress_means_no_bar(folder: Path, data_dir: Path) -> None:
    again = run_cli("ingest", folder, "--data-dir", data_dir, "--no-progress")
    assert "0 created, 0 replaced, 4 unchanged, 1 failed" in again.stdout
    assert "unchanged" not in again.stdout.splitlines()[0]  # unchanged files are not listed
    assert again.stderr == ""


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_summarize_all_to_jsonl_and_filtered_to_markdown(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    done = run_cli("summarize", "--all", "--out", out, "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    lines = _jsonl(out)
    assert [(x["doc_id"], x["section_id"]) for x in lines] == [
        ("farm", "preamble"),
        ("farm", "1"),
        ("farm", "2"),
        ("page", "preamble"),
        ("page", "1"),
        ("school", "preamble"),
        ("school", "1"),
        ("water", "preamble"),
        ("water", "1"),
        ("water", "2"),
    ]
    assert all(x["summary"] for x in lines if x["section_id"] != "preamble")
    assert "10 sections of 4 documents -> " in done.stdout
    assert "10/10" in done.stderr

    md = tmp_path / "farm.md"
    done = run_cli(
        "summarize", "--filter", "speaker=王芳", "--include-subsections", "--out", md,
        "--data-dir", data_dir, "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = md.read_text(encoding="utf-8")
    assert text.startswith("# farm\n\n`farm` · 王芳 · 2024-02-01 · farm.txt\n")
    assert "\n## 一、稳定粮食生产\n\n" in text and "\n### （一）抓好春耕备耕\n\n" in text
    assert "\n## 开头\n\n同志们：\n" in text
    assert "\n## 二、发展特色产业\n\n二、发展特色产业新建标准化茶园5000亩。\n" in text
    assert "water" not in text
    assert done.stderr == ""


def test_summarize_resumes_an_interrupted_run(data_dir: Path, tmp_path: Path) -> None:
    class Crash(BaseException):
        pass

    with Speeches(Settings(data_dir=data_dir)) as speeches:
        jobs = Jobs(speeches)
        assert jobs.acquire()
        # What `summarize --all` submits: the same parameters are what makes it resumable.
        job = jobs.submit_summaries(
            speeches.select_documents(),
            selection={"all": True, "doc_ids": None, "filter": None},
        )

        def crash(_: Any) -> None:
            raise Crash

        with pytest.raises(Crash):
            jobs.run(job.id, progress=crash)
        jobs.release()

    out = tmp_path / "resumed.jsonl"
    done = run_cli("summarize", "--all", "--out", out, "--data-dir", data_dir)
    assert done.returncode == 0, done.stderr
    assert f"resuming job {job.id}: 3/10 sections done" in done.stderr
    assert f"(job {job.id}," in done.stdout
    keys = [(x["doc_id"], x["section_id"]) for x in _jsonl(out)]
    assert len(keys) == len(set(keys)) == 10
    with Speeches(Settings(data_dir=data_dir)) as speeches:
        finished = Jobs(speeches).get(job.id)
        assert (finished.status, finished.interruptions) == ("done", 1)


def test_summarize_batch_refusals(data_dir: Path, tmp_path: Path) -> None:
    wrong = run_cli("summarize", "--all", "--out", tmp_path / "x.csv", "--data-dir", data_dir)
    assert wrong.returncode == 2 and ".jsonl or FILE.md" in wrong.stderr
    nothing = run_cli("summarize", "--data-dir", data_dir)
    assert nothing.returncode == 2 and "--all" in nothing.stderr
    none = run_cli(
        "summarize",
        "--filter",
        "speaker=nobody",
        "--out",
        tmp_path / "n.md",
        "--data-dir",
        data_dir,
    )
    assert none.returncode == 2 and "selection is empty" in none.stderr

    with Speeches(Settings(data_dir=data_dir)) as speeches:
        holder = Jobs(speeches)
        assert holder.acquire()  # as a running server would
        try:
            busy = run_cli("summarize", "--all", "--out", tmp_path / "b.md", "--data-dir", data_dir)
        finally:
            holder.release()
    assert busy.returncode == 2 and "POST /v1/batch/summaries" in busy.stderr
    assert not (tmp_path / "b.md").exists()
