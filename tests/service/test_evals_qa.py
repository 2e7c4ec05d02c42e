"""The QA evaluation: its scoring against hand-checked cases and the command on a tiny set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.cli import main
from service.evals.qa import exact, f1, tokens


def test_cmrc_style_scoring() -> None:
    assert tokens("《战国无双3》, ok") == ["战", "国", "无", "双", "3", "ok"]
    assert exact("“作战图”", ["作战图"]) and not exact("作战图表", ["作战图"])
    assert f1("作战图", ["作战图"]) == 1.0
    # pred 4 tokens, gold 3, longest common substring 3: P 3/4, R 1, F1 6/7.
    assert f1("作战图表", ["作战图", "别的"]) == pytest.approx(6 / 7)
    assert f1("", ["作战图"]) == 0.0


def _write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")


def test_eval_qa_command_on_a_tiny_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = [
        {"doc_id": "d1", "title": "水利", "text": "今年全县新建水库12座，灌溉面积达到3.5万亩。"},
        {"doc_id": "d2", "title": "交通", "text": "全年新修农村公路180公里，实现村村通客车。"},
        {
            "doc_id": "d3",
            "title": "教育",
            "text": "新建改扩建中小学校舍4万平方米，新增学位2000个。",
        },
    ]
    questions = [
        {"qid": "q1", "question": "今年全县新建水库多少座？", "answers": ["12座"], "doc_id": "d1"},
        {
            "qid": "q2",
            "question": "全年新修农村公路多少公里？",
            "answers": ["180公里"],
            "doc_id": "d2",
        },
        {"qid": "q3", "question": "新增学位多少个？", "answers": ["2000个"], "doc_id": "d3"},
    ]
    _write(tmp_path / "cmrc2018_dev.docs.jsonl", docs)
    _write(tmp_path / "cmrc2018_dev.questions.jsonl", questions)
    assert main(["eval", "qa", "cmrc2018_dev", "--qa-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dataset cmrc2018_dev: 3 questions" in out
    assert "R@1 1.000" in out
    assert "wrongly declined 0.000" in out
    assert "EM 1.000" in out
