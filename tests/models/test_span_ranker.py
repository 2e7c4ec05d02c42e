"""The span ranker's answer-type features: what a question asks for, which boundaries of a
sentence fit it, where the sentence repeats the question around its question word, and the span
rows built from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.span_ranker import (
    ASKED_TYPES,
    BOUNDARY_FEATURES,
    SPAN_MODEL_FEATURES,
    SPAN_TYPE_FEATURES,
    TYPE_BOUNDARY_FEATURES,
    QuestionView,
    asked_type,
    boundary_features,
    normalize_chars,
    sentence_view,
    span_matrix,
    type_boundary_columns,
)


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        ("佩內塔在哪一年跻身世界前十？", "year"),
        ("第二届比赛什么时候举行的？", "date"),
        ("地球体育场能容纳多少名观众？", "unit"),
        ("乍都节公园的面积有多大？", "number"),
        ("這部小說是誰創作的？", "person"),
        ("首屆比賽在哪裡舉行？", "place"),
        ("罗保铭本科毕业于哪所大学？", "org"),
        ("他的代表作是哪部电影？", "title"),
        ("莎莉公司的口号是什么？", "quote"),
        ("為何新北市被稱為全國最大票倉？", "how"),
        # a verb phrase after 什么 that happens to end in 人 is not a person
        ("玩家用什么泡封敌人？", "other"),
    ],
)
def test_asked_type(question: str, asked: str) -> None:
    assert ASKED_TYPES[asked_type(QuestionView.of(question))] == asked


def _columns(question: str, sentence: str) -> dict[str, np.ndarray]:
    qv = QuestionView.of(question)
    view = sentence_view(qv, sentence, normalize_chars(sentence))
    cols = type_boundary_columns(qv, view)
    assert all(len(c) == len(sentence) + 1 for c in cols)
    return dict(zip(TYPE_BOUNDARY_FEATURES, cols, strict=True))


def test_unit_question_fits_the_number_and_its_unit() -> None:
    sentence = "地球体育场可容纳6,476名观众，是当地最大的体育场。"
    cols = _columns("地球体育场能容纳多少名观众？", sentence)
    start, end = sentence.index("6,476"), sentence.index("名") + 1
    assert cols["start_fits"][start] == 1 and cols["start_fits"][start - 1] == 0
    assert cols["end_fits"][end] == 1 and cols["end_fits"][start + 2] == 0
    # before the number, the fitting end is still ahead; after the unit, none is
    assert cols["fit_end_ahead"][start] == end - start
    assert cols["fit_end_ahead"][len(sentence)] == 99
    # the sentence repeats 容纳 before the slot and 名观众 after it
    assert cols["align_left_gap"][start] == 0
    assert cols["align_right_gap"][start + len("6,476")] == 0


def test_date_and_place_questions() -> None:
    sentence = "第二届比赛于2009年9月27日在南京市举行。"
    cols = _columns("第二届比赛什么时候举行的？", sentence)
    end = sentence.index("日") + 1
    assert cols["end_fits"][end] == 1
    assert cols["end_fits"][sentence.index("南京市") + 3] == 0
    cols = _columns("第二届比赛在哪个城市举行？", sentence)
    assert cols["end_fits"][sentence.index("南京市") + 3] == 1
    # a question without an expected type says nothing about its edges
    cols = _columns("第二届比赛为什么举行？", sentence)
    assert (cols["end_fits"] == -1).all() and (cols["start_fits"] == -1).all()


def test_span_type_rows() -> None:
    question = "地球体育场能容纳多少名观众？"
    sentence = "地球体育场可容纳6,476名观众，是当地最大的体育场。"
    qv = QuestionView.of(question)
    view = sentence_view(qv, sentence, normalize_chars(sentence))
    rows = boundary_features(qv, view, 1.0, 0)
    assert rows.shape == (len(sentence) + 1, len(BOUNDARY_FEATURES))
    start = sentence.index("6,476")
    answer = (start, sentence.index("名") + 1)
    overlong = (start, sentence.index("，"))
    repeated = (0, sentence.index("可"))  # 地球体育场, the question's own words
    slot = (start, start + len("6,476"))  # between 容纳 and 名观众
    pairs = [answer, overlong, repeated, slot]
    zeros = np.zeros(len(sentence) + 1)
    matrix = span_matrix(qv, view, pairs, rows, zeros, zeros, 1.0, 0)
    assert matrix.shape == (len(pairs), len(SPAN_MODEL_FEATURES))
    col = {name: SPAN_MODEL_FEATURES.index(name) for name in SPAN_TYPE_FEATURES}
    # the overlong span runs past the fitting end 名 (and 名观, the question's unit word)
    assert matrix[0, col["fit_ends_inside"]] == 0
    assert matrix[1, col["fit_ends_inside"]] >= 1
    assert matrix[3, col["between_alignment"]] == 1
    assert matrix[2, col["between_alignment"]] == 0
    assert matrix[2, col["question_run_share"]] == 1.0
    assert matrix[0, col["question_run_share"]] < 0.5


_SENTENCE_FEATURES_SCRIPT = """
import math
from models.span_ranker import QuestionView, sentence_items

class Terms:
    def coverage(self, text):
        return 0.5

question = "第二次世界大战期间英国首相丘吉尔在伦敦发表了哪一篇著名的演说？"
texts = [
    "1940年6月4日，英国首相丘吉尔在下议院发表了著名的演说《我们将在海滩上战斗》。",
    "第二次世界大战期间，伦敦多次遭到轰炸，丘吉尔在广播中鼓舞民众。",
]
def idf(gram):
    return math.log(1.0 + 1.0 / (1 + sum(map(ord, gram)) % 97)) / 3.0
items = sentence_items(QuestionView.of(question), Terms(), texts, [2.0, 1.5], idf)
print([float(x).hex() for it in items for x in it.features])
"""


def test_sentence_features_do_not_depend_on_the_hash_seed() -> None:
    """Sums over the question's set of character pairs, taken in the set's order, moved with the
    process's string hash seed, and so did the answers (and a retrained model's bytes)."""
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", _SENTENCE_FEATURES_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": str(root)},
        ).stdout
        for seed in range(1, 7)
    }
    assert len(outputs) == 1
