"""The summary evaluation: character ROUGE, bootstrap intervals, splits and the CLI command."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import pytest

from models.rouge import bootstrap, lcs_length, rouge, tokens
from models.summarizer import Budget, Summarizer
from service.evals.summ import (
    body_sentences,
    evaluate_references,
    lead_baseline,
    mmr_baseline,
    split_of,
)
from tests.service.test_cli import run_cli

# --- ROUGE -------------------------------------------------------------------------------------


def test_tokens_are_characters_latin_words_and_numbers() -> None:
    assert tokens("DeFi在2020年增长了6.8倍，ETH 2.0") == [
        "defi", "在", "2020", "年", "增", "长", "了", "6", "8", "倍", "eth", "2", "0",
    ]  # fmt: skip
    assert tokens("，。！？ “”") == []


def test_rouge_on_a_hand_checked_example() -> None:
    # Prediction 加快推进乡村振兴 (8 tokens), reference 推进乡村全面振兴战略 (10 tokens).
    # 推进乡村振兴 overlap 6 -> P 6/8, R 6/10, F1 2/3.
    # 推进 进乡 乡村 振兴 overlap 4 of 7 and 9 bigrams -> F1 2*4/(7+9) = 1/2.
    # R-L: LCS 推进乡村振兴 = 6 -> F1 2/3.
    scores = rouge("加快推进乡村振兴。", "推进乡村全面振兴战略")
    assert scores["rouge1"].precision == pytest.approx(0.75)
    assert scores["rouge1"].recall == pytest.approx(0.6)
    assert scores["rouge1"].f1 == pytest.approx(2 / 3)
    assert scores["rouge2"].precision == pytest.approx(4 / 7)
    assert scores["rouge2"].recall == pytest.approx(4 / 9)
    assert scores["rouge2"].f1 == pytest.approx(0.5)
    assert scores["rougeL"].f1 == pytest.approx(2 / 3)


def test_rouge_clips_repeats_and_handles_empty_text() -> None:
    scores = rouge("的的的", "的")
    assert scores["rouge1"].precision == pytest.approx(1 / 3)
    assert scores["rouge1"].recall == pytest.approx(1.0)
    assert scores["rouge1"].f1 == pytest.approx(0.5)
    assert scores["rouge2"].f1 == 0.0
    empty = rouge("", "推进乡村振兴")
    assert all(s.f1 == 0.0 for s in empty.values())
    assert rouge("推进", "推进")["rouge2"].f1 == pytest.approx(1.0)


def test_lcs_length() -> None:
    # The classic ABCBDAB / BDCABA pair, written in characters: LCS 4 (BCBA).
    assert lcs_length(list("甲乙丙乙丁甲乙"), list("乙丁丙甲乙甲")) == 4
    assert lcs_length([], list("甲乙")) == 0


def test_bootstrap_interval() -> None:
    constant = bootstrap([0.4] * 50, resamples=200, seed=1)
    assert (constant.mean, constant.low, constant.high) == pytest.approx((0.4, 0.4, 0.4))
    values = [i / 99 for i in range(100)]
    first = bootstrap(values, resamples=500, seed=7)
    assert first == bootstrap(values, resamples=500, seed=7)
    assert first.mean == pytest.approx(0.5)
    assert first.low < first.mean < first.high
    # The standard error of the mean of 100 uniform values is about 0.029: a 95% interval is
    # about +-0.057 wide.
    assert first.high - first.low == pytest.approx(2 * 1.96 * 0.029, abs=0.02)
    assert math.isnan(bootstrap([]).mean)


# --- splitting and scoring rows ----------------------------------------------------------------


def test_body_sentences_follow_lines() -> None:
    text = "大家好。今天讨论教育。\n我觉得要提供平台，培养兴趣。\n\n谢谢"
    sentences = body_sentences(text)
    assert [text[s.start : s.end] for s in sentences] == [
        "大家好。",
        "今天讨论教育。",
        "我觉得要提供平台，培养兴趣。",
        "谢谢",
    ]
    assert [s.paragraph for s in sentences] == [1, 1, 2, 4]
    assert not any(s.topic for s in sentences)


def test_split_of() -> None:
    assert split_of("vcsum", {"id": "x", "split": "test"}) == "test"
    for row_id in ("gwr-2025-01", "gwr-2006-12", "gwr-1990-03"):
        expected = "dev" if zlib.crc32(row_id.encode()) % 2 == 0 else "test"
        assert split_of("gwr", {"id": row_id}) == expected


ROWS = [
    {
        "id": "vcsum-dev-1",
        "split": "dev",
        "text": "好的，那我们开始吧。\n"
        "我觉得关键是要提供一个平台，给学生创造好的环境和机会。\n"
        "很多学生有潜质，也很有创新能力，但是没有这样的机会。\n"
        "那个，对吧，就是这样。",
        "summary": "关键要提供一个平台，创造好的环境和机会。",
    },
    {
        "id": "vcsum-dev-2",
        "split": "dev",
        "text": "企业与高校要结合，企业出现的问题可以交给高校做课题。\n"
        "这样研究就能回到现实，更好地培养下一代。\n嗯，谢谢。",
        "summary": "企业与高校结合，回到现实培养下一代。",
    },
    {
        "id": "vcsum-test-1",
        "split": "test",
        "text": "稳中求快，会议的效率、研发的效率、决策的效率都要快。\n"
        "快中求稳，出了问题可以很快退回去。",
        "summary": "要稳中求快，也要快中求稳。",
    },
]


def test_evaluate_references_scores_the_api_summary_under_the_reference_budget() -> None:
    report = evaluate_references("vcsum", ROWS, resamples=100, seed=3)
    assert [r.id for r in report.rows] == [row["id"] for row in ROWS]
    assert [r.split for r in report.rows] == ["dev", "dev", "test"]
    summarizer = Summarizer()
    for score, row in zip(report.rows, ROWS, strict=True):
        text = row["text"]
        extracts = summarizer.summarize(
            text, body_sentences(text), Budget(max_chars=len(row["summary"]))
        )
        assert score.units == tuple(text[e.start : e.end] for e in extracts)
        prediction = "".join(score.units)
        assert 0 < len(prediction) <= len(row["summary"])
        expected = rouge(prediction, row["summary"])
        assert score.f1 == pytest.approx(
            (expected["rouge1"].f1, expected["rouge2"].f1, expected["rougeL"].f1)
        )
        lead = rouge(text[: len(row["summary"])], row["summary"])
        assert score.lead_f1[0] == pytest.approx(lead["rouge1"].f1)
    # Content, not the greeting or the fillers, answers the first row.
    assert report.rows[0].units
    assert not any(u.startswith(("好的", "那个")) for u in report.rows[0].units)
    lines = "\n".join(report.lines())
    assert "dev   n=2" in lines and "test  n=1" in lines and "all   n=3" in lines
    assert "documents/s" in lines


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.jsonl"
    path.write_text(
        "\n".join(json.dumps(row, ensure_ascii=False) for row in ROWS) + "\n", encoding="utf-8"
    )
    return path


def test_eval_summ_command_on_a_tiny_dataset(tiny_set: Path) -> None:
    done = run_cli("eval", "summ", "vcsum", "--data", tiny_set, "--resamples", "50")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "dataset vcsum: 3 rows" in out
    for needle in ("dev   n=2", "test  n=1", "all   n=3", "R-1", "R-2", "R-L", "documents/s"):
        assert needle in out
    assert "reference: 关键要提供一个平台" in out  # an example is shown

    gwr = run_cli("eval", "summ", "gwr", "--data", tiny_set, "--resamples", "50", "--show", "0")
    assert gwr.returncode == 0, gwr.stderr
    assert "dataset gwr: 3 rows" in gwr.stdout

    fitted = run_cli("eval", "summ", "vcsum", "--data", tiny_set, "--fit-register")
    assert fitted.returncode == 0, fitted.stderr
    assert fitted.stdout.startswith("_CHARS: dict[float, str] = {")
    assert "_PAIRS: dict[float, str] = {" in fitted.stdout

    bad = run_cli("eval", "summ", "nope")
    assert bad.returncode == 2


def test_eval_summ_seeds_passes_its_checks() -> None:
    done = run_cli("eval", "summ", "seeds", "--show", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "seeds: 2 documents" in out and "sections/s" in out
    checks = next(line for line in out.splitlines() if line.startswith("checks: "))
    passed, total = checks.split()[1].split("/")
    assert passed == total and int(total) > 10
    # The sample shows a numbered section under both budgets, its headline first.
    assert "(default budget)" in out and "(max_chars=200)" in out
    assert "一、持续抓好党的二十大精神的学宣贯用" in out


# --- baselines -----------------------------------------------------------------------------------


def test_lead_baseline_is_the_first_characters() -> None:
    assert lead_baseline("好的。我们开始。", 4) == "好的。我"


def test_mmr_baseline_takes_central_clauses_in_document_order_within_the_budget() -> None:
    text = "好的，谢谢。项目建设要加强资金保障，项目管理要培养人才。天气不错。项目资金要到位。"
    out = mmr_baseline(text, 20)
    assert len(out) <= 20
    # Clause units: the greeting and the weather are left out, the 项目 clauses kept in order.
    assert "天气" not in out and "谢谢" not in out
    assert out.startswith("项目建设要加强资金保障，")
    # A tight budget cuts the most relevant clause (it shares 项目 and 资金 with the rest).
    assert mmr_baseline(text, 6) == "项目资金要到"
    assert mmr_baseline("", 10) == ""


def test_report_compares_with_every_issue_baseline_by_interval() -> None:
    report = evaluate_references("vcsum", ROWS, resamples=100, seed=3)
    for score, row in zip(report.rows, ROWS, strict=True):
        budget = len(row["summary"])
        expected = rouge(mmr_baseline(row["text"], budget), row["summary"])
        assert score.mmr_f1[0] == pytest.approx(expected["rouge1"].f1)
    lines = report.lines()
    text = "\n".join(lines)
    for name in ("Lead", "TextRank", "LexRank", "SnowNLP clause units", "MMR clause units"):
        assert sum(line.strip().startswith(name) for line in lines) == 2  # test rows, all rows
    assert "oracle" not in text
    assert "[re-run]" in text and "[issue figure, interval estimated]" in text
    # The issue's TextRank figure is kept as the mean, with the re-run MMR's interval width.
    all_rows = report.baseline_intervals(None)
    mmr = all_rows["MMR clause units"][0][0]
    textrank = all_rows["TextRank"][0][0]
    assert textrank.mean == pytest.approx(0.303)
    assert textrank.high - textrank.mean == pytest.approx(mmr.high - mmr.mean)
    # Three toy rows cannot beat the issue's figures by their intervals: the verdict says so.
    verdicts = [line for line in lines if "ahead of every issue baseline" in line]
    assert len(verdicts) == 2 and all(": no (" in v for v in verdicts)
    assert "dev: ahead" not in text  # no claim on the rows the weights were tuned on


def test_rows_with_a_kind_get_a_line_per_kind() -> None:
    rows = [
        {
            "id": f"gwr-2020-{k:02d}",
            "kind": "subsection" if k % 2 else "enumerated",
            "text": "推进国资国企改革。深化国有资本投资、运营公司等改革试点，赋予更多自主权。\n"
            "支持民营企业发展。营造公平竞争环境，依法保护企业家合法权益。",
            "summary": "深化国资国企改革。",
        }
        for k in range(6)
    ]
    report = evaluate_references("gwr", rows, resamples=50, seed=1)
    assert {r.kind for r in report.rows} == {"subsection", "enumerated"}
    lines = report.lines()
    for kind in ("subsection", "enumerated"):
        kind_lines = [line for line in lines if line.endswith(f"(kind {kind})")]
        # one per split present, and one for all rows
        assert len(kind_lines) == len({r.split for r in report.rows}) + 1
        assert any(line.strip().startswith("all   n=3 ") for line in kind_lines)
    # Rows without a kind (VCSum) get none.
    assert not any("(kind " in line for line in evaluate_references("vcsum", ROWS).lines())
