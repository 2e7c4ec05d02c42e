"""Ingesting folders of mixed formats: statuses, failures that do not stop the rest, metadata,
and the metadata filter in search, ask and summaries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from models.refusal import RefusalModel, load_refusal_model
from service.config import Settings
from service.core import IngestReport, Speeches
from service.errors import InvalidInput, NotFound
from tests.service.builders import make_docx, make_html, make_pdf

WATER = [
    "同志们：",
    "今天召开全县水利工作会议。",
    "一、抓好防汛抗旱",
    "要在汛前完成全部12座水库的除险加固，确保安全度汛。",
    "二、抓好农田水利",
    "今年新建高效节水灌溉面积3.5万亩，灌区配套改造投资2.8亿元。",
]
FARM = [
    "同志们：",
    "一、稳定粮食生产",
    "全年粮食播种面积稳定在45万亩以上，总产量达到21万吨。",
    "二、发展特色产业",
    "重点发展茶叶、中药材和食用菌三大特色产业，新建标准化茶园5000亩。",
]
SCHOOL = [
    "各位代表：",
    "一、推进教育公平",
    "今年改造农村薄弱学校18所，新增公办幼儿园学位2400个。",
    "二、提高教育质量",
    "实施教师素质提升工程，培训乡村教师1600人次。",
]


def front(fields: dict[str, str], lines: list[str]) -> str:
    head = "".join(f"{k}: {v}\n" for k, v in fields.items())
    return f"---\n{head}---\n" + "\n".join(lines) + "\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "speeches"
    (root / "2023" / "水利").mkdir(parents=True)
    (root / "2024").mkdir()
    (root / ".git").mkdir()
    (root / "2023" / "水利" / "water.txt").write_bytes(
        front({"speaker": "李明", "date": "2023-04-10", "place": "县委礼堂"}, WATER).encode("gbk")
    )
    (root / "2024" / "farm.md").write_bytes(
        front({"title": "农业农村工作会议讲话", "speaker": "王芳", "date": "2024年2月1日"}, FARM)
        .replace("\n", "\r\n")
        .encode("utf-16")
    )
    (root / "2024" / "school.docx").write_bytes(make_docx(SCHOOL, title="教育工作报告"))
    (root / "2024" / "health.html").write_text(
        make_html(WATER[:1] + SCHOOL[1:], title="卫生工作讲话", meta={"date": "2024-06-01"}),
        encoding="utf-8",
    )
    (root / "2024" / "latin.pdf").write_bytes(
        make_pdf(["Opening remarks", "1. Goals", "We will plant 500 hectares of tea."])
    )
    (root / "2024" / "broken.docx").write_bytes(b"PK\x03\x04 not really a docx")
    (root / "2024" / "~$school.docx").write_bytes(b"lock file of an open Word document")
    (root / ".git" / "notes.txt").write_text("not a speech", encoding="utf-8")
    (root / "2024" / "slides.pptx").write_bytes(b"ignored: not a supported extension")
    return root


def _by_id(reports: list[IngestReport]) -> dict[str | None, IngestReport]:
    return {r.doc_id: r for r in reports}


def test_a_mixed_folder_is_ingested_and_a_bad_file_skipped(
    folder: Path, fresh_settings: Settings
) -> None:
    seen: list[tuple[str, int, int]] = []
    with Speeches(fresh_settings) as speeches:
        reports = speeches.ingest_paths(
            [folder], progress=lambda r, done, total: seen.append((r.status, done, total))
        )
        by_id = _by_id(reports)
        assert sorted(by_id) == ["broken", "farm", "health", "latin", "school", "water"]
        assert [(d, t) for _, d, t in seen] == [(i, 6) for i in range(1, 7)]
        assert by_id["broken"].status == "failed" and by_id["broken"].code == "unreadable_file"
        assert "broken.docx" in (by_id["broken"].error or "")
        assert all(r.status == "created" for r in reports if r.doc_id != "broken")
        with pytest.raises(NotFound):
            speeches.get_document("broken")  # never half-stored

        water = speeches.get_document("water")
        assert water.metadata == {
            "encoding": "gb18030",
            "speaker": "李明",
            "date": "2023-04-10",
            "place": "县委礼堂",
            "source_file": "2023/水利/water.txt",
            "format": "text",
        }
        assert water.text.split("\n")[5:11] == WATER  # front matter lines blanked, not removed
        farm = speeches.get_document("farm")
        assert farm.title == "农业农村工作会议讲话" and farm.metadata["encoding"] == "utf_16"
        assert "\r" not in farm.text
        school = speeches.get_document("school")
        assert school.title == "教育工作报告" and school.metadata["format"] == "docx"
        assert [s["title"] for s in school.sections] == ["", "推进教育公平", "提高教育质量"]
        health = speeches.get_document("health")
        assert health.title == "卫生工作讲话" and health.metadata["date"] == "2024-06-01"
        assert "Goals" in speeches.get_document("latin").text

        # Unchanged files change nothing; a changed one replaces its document.
        again = _by_id(speeches.ingest_paths([folder]))
        assert {r.status for k, r in again.items() if k != "broken"} == {"unchanged"}
        old_passages = set(speeches.store.passage_ids(["water"]))
        (folder / "2023" / "水利" / "water.txt").write_bytes(
            front(
                {"speaker": "李明", "date": "2023-04-10"}, [*WATER, "补充：汛期值班表另行下发。"]
            ).encode("gbk")
        )
        changed = _by_id(speeches.ingest_paths([folder / "2023"]))
        assert changed["water"].status == "replaced"
        assert "place" not in speeches.get_document("water").metadata
        assert not old_passages & set(speeches.store.passage_ids(["water"]))


def test_two_files_with_one_name_do_not_overwrite_each_other(
    tmp_path: Path, fresh_settings: Settings
) -> None:
    for year in ("2023", "2024"):
        (tmp_path / year).mkdir()
        (tmp_path / year / "report.txt").write_text(f"{year}年工作报告。\n", encoding="utf-8")
    (tmp_path / "2024" / "summary.txt").write_text(
        front({"id": "report-2024-summary"}, ["总结。"]), encoding="utf-8"
    )
    with Speeches(fresh_settings) as speeches:
        reports = speeches.ingest_paths([tmp_path])
        assert [(r.source, r.doc_id, r.status) for r in reports] == [
            ("2023/report.txt", "report", "created"),
            ("2024/report.txt", "report", "failed"),
            ("2024/summary.txt", "report-2024-summary", "created"),
        ]
        assert "2023/report.txt" in (reports[1].error or "")
        assert speeches.get_document("report").text.startswith("2023")


def test_missing_and_unsupported_paths_are_reported(
    tmp_path: Path, fresh_settings: Settings
) -> None:
    odd = tmp_path / "deck.pptx"
    odd.write_bytes(b"x")
    with Speeches(fresh_settings) as speeches:
        missing, unsupported = speeches.ingest_paths([tmp_path / "nope.txt", odd])
    assert missing.status == "failed" and "No such file" in (missing.error or "")
    assert unsupported.status == "failed" and unsupported.code == "unsupported_media_type"


def test_filter_narrows_search_ask_and_summaries(folder: Path, fresh_settings: Settings) -> None:
    with Speeches(fresh_settings) as speeches:
        speeches.ingest_paths([folder])
        assert speeches.select_documents(filter={"speaker": "李明"}) == ["water"]
        assert speeches.select_documents(filter={"date": "2024"}) == ["farm", "health"]
        assert speeches.select_documents(filter={"date_to": "2023-12-31"}) == ["water"]
        assert speeches.select_documents(filter={"format": ["docx", "pdf"]}) == ["latin", "school"]
        assert speeches.select_documents(["farm", "water"], {"date": "2024"}) == ["farm"]
        with pytest.raises(NotFound):
            speeches.select_documents(["nope"], {"date": "2024"})

        everywhere = {h.doc_id for h in speeches.search("水库除险加固", top_k=10)}
        assert "water" in everywhere
        in_2024 = speeches.search("水库除险加固", top_k=10, filter={"date": "2024"})
        assert {h.doc_id for h in in_2024} <= {"farm", "health"}
        assert speeches.search("水库", filter={"speaker": "没有这个人"}) == []
        with pytest.raises(NotFound):  # unknown ids are an error, filter or not
            speeches.search("水库", doc_ids=["water", "nope"], filter={"speaker": "李明"})

        answer = speeches.ask("今年新建标准化茶园多少亩？", filter={"speaker": "王芳"})
        assert answer.answerable and "5000" in answer.answer
        assert {c.doc_id for c in answer.citations} == {"farm"}
        refused = speeches.ask("今年新建标准化茶园多少亩？", filter={"speaker": "李明"})
        assert not refused.answerable and refused.citations == []
        # Narrowed by a document list the same way: the irrigation passage leads only because
        # the farm speech was left out of the competition.
        assert not speeches.ask("今年新建标准化茶园多少亩？", doc_ids=["water"]).answerable
        with pytest.raises(InvalidInput):
            speeches.search("水库", filter={"date_from": "someday"})

        nested = speeches.summarize("water", include_subsections=True)
        assert [(s.section_id, s.level, s.marker) for s in nested] == [
            ("preamble", 1, None),
            ("1", 1, "一、"),
            ("2", 1, "二、"),
        ]


class _Recording:
    """The shipped refusal model, noting whether each question it judged was narrowed."""

    def __init__(self, model: RefusalModel) -> None:
        self.model = model
        self.narrowed: list[bool] = []

    def probability(self, features: Sequence[float]) -> float:
        return self.model.probability(features)

    def answerable(self, features: Sequence[float], *, passages: int, narrowed: bool) -> bool:
        self.narrowed.append(narrowed)
        return self.model.answerable(features, passages=passages, narrowed=narrowed)


def test_only_a_search_that_leaves_documents_out_is_narrowed(
    folder: Path, fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The coverage floor holds under narrowed searches only; the gold-free runs of the QA
    # evaluation exclude a document to stand for a collection without it, which is no narrowing.
    with Speeches(fresh_settings) as speeches:
        speeches.ingest_paths([folder])
        recording = _Recording(load_refusal_model())
        monkeypatch.setattr(speeches, "_refusal", recording)
        every = [d["id"] for d in speeches.list_documents()]
        assert len(every) == 5
        question = "今年新建标准化茶园多少亩？"
        speeches.ask(question)
        speeches.ask(question, doc_ids=[*every, every[0]])
        speeches.ask(question, filter={"format": ["text", "markdown", "docx", "html", "pdf"]})
        speeches.ask(question, exclude_doc_ids=["farm"])
        speeches.ask(question, doc_ids=["water", "farm"])
        speeches.ask(question, filter={"speaker": "王芳"})
    assert recording.narrowed == [False, False, False, False, True, True]
