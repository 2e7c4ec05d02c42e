"""Uploads, the metadata filter over HTTP, batch summaries as jobs, and jobs across restarts."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.config import Settings
from service.core import Speeches
from service.jobs import MAX_INTERRUPTIONS, JobNotFinished, Jobs
from tests.service.builders import make_docx, make_html

PLAN = [
    "同志们：",
    "一、稳定粮食生产",
    "全年粮食播种面积稳定在45万亩以上，总产量达到21万吨。",
    "（一）抓好春耕备耕",
    "提前调运化肥1.2万吨，确保春耕生产不误农时。",
    "（二）建设高标准农田",
    "新建高标准农田3万亩，配套建设机耕道路120公里。",
    "二、发展特色产业",
    "重点发展茶叶、中药材和食用菌三大特色产业，新建标准化茶园5000亩。",
]
TOWN = [
    "各位代表：",
    "一、推进教育公平",
    "今年改造农村薄弱学校18所，新增公办幼儿园学位2400个。",
    "二、提高教育质量",
    "实施教师素质提升工程，培训乡村教师1600人次。",
    "三、保障校园安全",
    "全县中小学校全部配备专职保安，安装一键报警装置326套。",
]


def _error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def _front(fields: dict[str, str], lines: list[str]) -> str:
    return "---\n" + "".join(f"{k}: {v}\n" for k, v in fields.items()) + "---\n" + "\n".join(lines)


def _wait(client: TestClient, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("done", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _lines(resp: Any) -> list[dict[str, Any]]:
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in resp.text.splitlines()]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("batch") / "data",
        max_file_bytes=100_000,
        max_upload_bytes=400_000,
        max_upload_files=6,
    )


@pytest.fixture(scope="module")
def api(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        files = [
            (
                "files",
                ("plan.txt", _front({"speaker": "王芳", "date": "2024-02-01"}, PLAN).encode("gbk")),
            ),
            ("files", ("town.docx", make_docx(TOWN, title="教育工作报告", author="李明"))),
            (
                "files",
                (
                    "news/health.html",
                    make_html(TOWN[:2], title="卫生讲话", meta={"date": "2023-05-06"}).encode(),
                ),
            ),
        ]
        resp = c.post(
            "/v1/documents/upload", files=files, data={"metadata": '{"county": "青山县"}'}
        )
        assert resp.status_code == 201, resp.text
        yield c


# -- upload ----------------------------------------------------------------------------------
def test_upload_reports_each_file_and_keeps_metadata(api: TestClient) -> None:
    plan = api.get("/v1/documents/plan").json()
    assert plan["metadata"] == {
        "encoding": "gb18030",
        "speaker": "王芳",
        "date": "2024-02-01",
        "source_file": "plan.txt",
        "format": "text",
        "county": "青山县",
    }
    assert [s["id"] for s in plan["sections"]] == ["preamble", "1", "2"]
    assert [c["id"] for c in plan["sections"][1]["children"]] == ["1.1", "1.2"]
    town = api.get("/v1/documents/town").json()
    assert town["title"] == "教育工作报告" and town["metadata"]["author"] == "李明"
    health = api.get("/v1/documents/health").json()
    assert health["metadata"]["source_file"] == "health.html"  # the client's folders dropped

    again = api.post(
        "/v1/documents/upload",
        files=[
            ("files", ("town.docx", make_docx(TOWN, title="教育工作报告", author="李明"))),
            ("files", ("bad.pdf", b"%PDF-1.4 this is not a pdf")),
        ],
        data={"metadata": '{"county": "青山县"}'},
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["created"], body["unchanged"], body["failed"]) == (0, 1, 1)
    bad = body["documents"][1]
    assert bad["status"] == "failed" and bad["error"]["code"] == "unreadable_file"
    assert "bad.pdf" in bad["error"]["message"]
    assert api.get("/v1/documents/bad").status_code == 404


def test_upload_refuses_bad_requests_without_storing_anything(api: TestClient) -> None:
    before = len(api.get("/v1/documents").json()["documents"])
    err = _error(
        api.post(
            "/v1/documents/upload",
            files=[("files", ("a.txt", b"ok")), ("files", ("deck.pptx", b"x"))],
        ),
        415,
        "unsupported_media_type",
    )
    assert "deck.pptx" in err["message"] and ".docx" in err["message"]
    _error(
        api.post("/v1/documents/upload", files=[("files", ("big.txt", "字".encode() * 40_000))]),
        413,
        "payload_too_large",
    )
    _error(
        api.post(
            "/v1/documents/upload",
            content=b"x" * 500_000,
            headers={"content-type": "multipart/form-data; boundary=x"},
        ),
        413,
        "payload_too_large",
    )
    _error(api.post("/v1/documents/upload", json={"text": "x"}), 415)
    _error(
        api.post("/v1/documents/upload", files=[("metadata", (None, "{}"))]), 400, "invalid_input"
    )
    _error(api.post("/v1/documents/upload", data={"metadata": "{}"}), 415)  # not multipart
    _error(
        api.post("/v1/documents/upload", files=[("files", (f"f{i}.txt", b"x")) for i in range(7)]),
        400,
    )
    _error(
        api.post(
            "/v1/documents/upload",
            files=[("files", ("a.txt", "一、正文".encode()))],
            data={"metadata": "[1, 2]"},
        ),
        400,
        "invalid_input",
    )
    only_bad = _error(
        api.post("/v1/documents/upload", files=[("files", ("broken.docx", b"PK\x03\x04 no"))]),
        400,
        "unreadable_file",
    )
    assert "broken.docx" in only_bad["message"]
    assert len(api.get("/v1/documents").json()["documents"]) == before


# -- the filter over HTTP --------------------------------------------------------------------
def test_search_ask_and_summarize_take_a_filter(api: TestClient) -> None:
    hits = api.post(
        "/v1/search", json={"query": "乡村教师培训", "top_k": 10, "filter": {"author": "李明"}}
    ).json()["hits"]
    assert hits and {h["doc_id"] for h in hits} == {"town"}
    none = api.post("/v1/search", json={"query": "乡村教师培训", "filter": {"date": "1999"}})
    assert none.status_code == 200 and none.json()["hits"] == []
    asked = api.post(
        "/v1/ask",
        json={"question": "新建标准化茶园多少亩？", "filter": {"date_from": "2024-01"}},
    ).json()
    assert asked["answerable"] and "5000" in asked["answer"]
    assert asked["citations"][0]["doc_id"] == "plan"
    refused = api.post(
        "/v1/ask", json={"question": "新建标准化茶园多少亩？", "filter": {"author": "李明"}}
    ).json()
    assert not refused["answerable"]
    _error(api.post("/v1/search", json={"query": "茶园", "filter": {"date_to": "soon"}}), 400)
    _error(api.post("/v1/search", json={"query": "茶园", "filter": {"a": {"b": 1}}}), 422)

    summ = api.post(
        "/v1/summarize", json={"filter": {"county": "青山县"}, "include_subsections": True}
    ).json()
    assert summ["doc_id"] is None and summ["sections"] == []
    docs = {d["doc_id"]: d for d in summ["documents"]}
    assert sorted(docs) == ["health", "plan", "town"]
    assert [s["section_id"] for s in docs["plan"]["sections"]] == [
        "preamble",
        "1",
        "1.1",
        "1.2",
        "2",
    ]
    assert [s["level"] for s in docs["plan"]["sections"]] == [1, 1, 2, 2, 1]
    one = api.post("/v1/summarize", json={"doc_id": "plan", "section_id": "1"}).json()
    assert one["doc_id"] == "plan" and one["sections"][0]["marker"] == "一、"
    _error(api.post("/v1/summarize", json={"doc_id": "plan", "filter": {"a": "b"}}), 400)
    _error(api.post("/v1/summarize", json={"max_sentences": 2}), 400)


# -- batch summaries -------------------------------------------------------------------------
def test_batch_summaries_job_reports_progress_and_streams_sections(api: TestClient) -> None:
    resp = api.post("/v1/batch/summaries", json={"all": True, "max_sentences": 2})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert resp.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running", "done")
    assert job["progress"]["total"] == 3 + 4 + 2  # top-level sections of the three documents
    job = _wait(api, job["id"])
    assert job["status"] == "done", job
    assert job["progress"] == {"done": 9, "total": 9, "documents": 3, "failed_documents": 0}
    lines = _lines(api.get(f"/v1/jobs/{job['id']}/result"))
    assert [(x["doc_id"], x["section_id"]) for x in lines] == [
        ("health", "preamble"),
        ("health", "1"),
        ("plan", "preamble"),
        ("plan", "1"),
        ("plan", "2"),
        ("town", "preamble"),
        ("town", "1"),
        ("town", "2"),
        ("town", "3"),
    ]
    # Each line is what POST /v1/summarize gives for that section.
    single = api.post(
        "/v1/summarize", json={"doc_id": "town", "section_id": "2", "max_sentences": 2}
    ).json()["sections"][0]
    line = lines[7]
    assert line["summary"] == single["summary"] and line["sentences"] == single["sentences"]
    assert line["doc_title"] == "教育工作报告" and line["level"] == 1
    listed = api.get("/v1/jobs").json()["jobs"]
    assert job["id"] in {j["id"] for j in listed}


def test_batch_selection_by_filter_and_ids_with_subsections(api: TestClient) -> None:
    by_filter = api.post(
        "/v1/batch/summaries", json={"filter": {"speaker": "王芳"}, "include_subsections": True}
    ).json()
    job = _wait(api, by_filter["id"])
    assert job["progress"]["total"] == job["progress"]["done"] == 5
    assert job["params"]["selection"]["filter"] == {"speaker": "王芳"}
    lines = _lines(api.get(f"/v1/jobs/{job['id']}/result"))
    assert [x["section_id"] for x in lines] == ["preamble", "1", "1.1", "1.2", "2"]
    by_ids = _wait(api, api.post("/v1/batch/summaries", json={"doc_ids": ["town"]}).json()["id"])
    assert by_ids["progress"]["documents"] == 1 and by_ids["status"] == "done"

    assert api.delete(f"/v1/jobs/{by_ids['id']}").status_code == 204
    _error(api.get(f"/v1/jobs/{by_ids['id']}"), 404, "not_found")
    _error(api.get(f"/v1/jobs/{by_ids['id']}/result"), 404)


def test_batch_bad_requests(api: TestClient) -> None:
    _error(api.post("/v1/batch/summaries", json={}), 400, "invalid_input")
    _error(api.post("/v1/batch/summaries", json={"all": True, "doc_ids": ["town"]}), 400)
    _error(api.post("/v1/batch/summaries", json={"filter": {"speaker": "nobody"}}), 400)
    _error(api.post("/v1/batch/summaries", json={"doc_ids": ["town", "nope"]}), 404)
    _error(api.post("/v1/batch/summaries", json={"all": True, "max_sentences": 0}), 422)
    _error(api.post("/v1/batch/summaries", json={"all": True, "ratio": 1.5}), 422)
    _error(api.get("/v1/jobs/nope"), 404, "not_found")


# -- jobs across restarts --------------------------------------------------------------------
class _Crash(BaseException):
    """Stands for the process dying: nothing after it runs, no clean-up."""


def _crash_after_first_document(speeches: Speeches, **params: Any) -> str:
    jobs = Jobs(speeches)
    assert jobs.acquire()
    job = jobs.submit_summaries(speeches.select_documents(), selection={"all": True}, **params)

    def die(_: Any) -> None:
        raise _Crash

    with pytest.raises(_Crash):
        jobs.run(job.id, progress=die)
    state = jobs.get(job.id)
    assert state.status == "running" and 0 < state.done < state.total
    jobs.release()  # the OS releases the lock of a dead process
    return job.id


def test_finished_results_survive_and_a_running_job_resumes_after_restart(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with TestClient(create_app(settings)) as c:
        for name, lines in (("plan", PLAN), ("town", TOWN)):
            c.post("/v1/documents", json={"id": name, "text": "\n".join(lines)})
        finished = _wait(c, c.post("/v1/batch/summaries", json={"all": True}).json()["id"])
        assert finished["status"] == "done"
        before = c.get(f"/v1/jobs/{finished['id']}/result").text

    # The service dies in the middle of a second job.
    with Speeches(settings) as speeches:
        crashed = _crash_after_first_document(speeches, include_subsections=True)

    with TestClient(create_app(settings)) as c:
        assert c.get(f"/v1/jobs/{finished['id']}").json()["status"] == "done"
        assert c.get(f"/v1/jobs/{finished['id']}/result").text == before
        resumed = _wait(c, crashed)
        assert resumed["status"] == "done", resumed
        assert resumed["interruptions"] == 1
        assert resumed["progress"]["done"] == resumed["progress"]["total"] == 5 + 4
        lines = _lines(c.get(f"/v1/jobs/{crashed}/result"))
        keys = [(x["doc_id"], x["section_id"]) for x in lines]
        assert len(keys) == len(set(keys)) == 9  # the first document was not done twice


def test_a_job_interrupted_too_often_fails_with_a_reason(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    with Speeches(settings) as speeches:
        speeches.put_document("\n".join(PLAN), doc_id="plan")
        speeches.put_document("\n".join(TOWN), doc_id="town")
        job_id = _crash_after_first_document(speeches)
    with sqlite3.connect(settings.data_dir / "speechqa.sqlite3") as conn:
        conn.execute(
            "UPDATE jobs SET interruptions = ? WHERE id = ?", (MAX_INTERRUPTIONS - 1, job_id)
        )
    with TestClient(create_app(settings)) as c:
        job = c.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "failed" and "stopped" in job["error"]
        assert job["interruptions"] == MAX_INTERRUPTIONS
        # What was finished before is still there.
        partial = _lines(c.get(f"/v1/jobs/{job_id}/result"))
        assert {x["doc_id"] for x in partial} == {"plan"}


def test_a_clean_stop_requeues_without_counting_and_the_lock_is_exclusive(
    tmp_path: Path,
) -> None:
    import threading

    settings = Settings(data_dir=tmp_path / "data")
    with Speeches(settings) as speeches:
        speeches.put_document("\n".join(PLAN), doc_id="plan")
        speeches.put_document("\n".join(TOWN), doc_id="town")
        jobs, rival = Jobs(speeches), Jobs(speeches)
        assert jobs.acquire() and not rival.acquire()
        job = jobs.submit_summaries(["plan", "town"], selection={"doc_ids": ["plan", "town"]})
        with pytest.raises(JobNotFinished, match="is queued"):
            jobs.result_lines(job.id)
        assert [json.loads(x)["doc_id"] for x in jobs.result_lines(job.id, partial=True)] == []
        stop = threading.Event()
        stopped = jobs.run(job.id, progress=lambda _: stop.set(), stop=stop)
        assert (stopped.status, stopped.interruptions, stopped.done) == ("queued", 0, 3)
        again = jobs.submit_summaries(
            ["plan", "town"], selection={"doc_ids": ["plan", "town"]}, resume=True
        )
        assert again.id == job.id
        assert jobs.run(job.id).status == "done"
        jobs.release()
        assert rival.acquire()
        rival.release()
