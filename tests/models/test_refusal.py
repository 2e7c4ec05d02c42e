"""The refusal model: loads, behaves monotonically in the evidence, and fits separable data."""

from __future__ import annotations

import random

import pytest

from embeddings.tokens import words
from models.coverage import QuestionTerms
from models.refusal import (
    FEATURES,
    FULL_EVIDENCE,
    RefusalModel,
    aligned_share,
    evidence,
    fit,
    load_refusal_model,
)


def _idf(gram: str) -> float:
    # Rarer-looking grams weigh more; an empty collection would make every gram "never seen".
    return 2.0 + 0.1 * (sum(map(ord, gram)) % 10)


def _evidence(question: str, passages: list[str], scores: list[float]) -> list[float]:
    return evidence(question, QuestionTerms(question, _idf), passages, scores)


ANSWERS = "1603年德川家康创立德川幕府，就任征夷大将军。"
SIBLING = "德川幕府末年，德川庆喜把政权与领地交还朝廷。"
OTHER = "今年新建高效节水灌溉面积3.5万亩，灌区配套改造投资2.8亿元。"


def test_shipped_model_loads_and_prefers_the_passage_that_answers() -> None:
    model = load_refusal_model()
    assert len(model.weights) == len(FEATURES) == len(model.mean) == len(model.scale)
    assert 0.0 < model.threshold < 1.0
    question = "德川家康于何年创立德川幕府？"
    holds = model.probability(_evidence(question, [ANSWERS, SIBLING], [1.2, 0.6]))
    sibling = model.probability(_evidence(question, [SIBLING, OTHER], [1.0, 0.8]))
    unrelated = model.probability(_evidence(question, [OTHER], [0.5]))
    assert holds > sibling > unrelated
    assert model.answerable(_evidence(question, [ANSWERS, SIBLING], [1.2, 0.6]), passages=2)
    assert not model.answerable(_evidence(question, [OTHER], [0.5]), passages=1)


def test_the_coverage_floor_holds_only_where_the_evidence_is_thin() -> None:
    # Every weight on the first feature (the widest passage's coverage): 0.3 reads as sure.
    model = RefusalModel(
        mean=(0.0,) * len(FEATURES),
        scale=(0.1,) * len(FEATURES),
        weights=(1.0,) + (0.0,) * (len(FEATURES) - 1),
        bias=0.0,
        threshold=0.5,
        min_coverage=0.45,
    )
    features = [0.3] + [0.0] * (len(FEATURES) - 1)
    assert model.probability(features) > 0.9
    assert model.answerable(features, passages=FULL_EVIDENCE)
    assert model.answerable(features, passages=FULL_EVIDENCE + 3)
    assert not model.answerable(features, passages=FULL_EVIDENCE - 1)
    assert not model.answerable(features, passages=FULL_EVIDENCE, narrowed=True)
    assert model.answerable([0.5, *features[1:]], passages=1)
    assert model.answerable([0.5, *features[1:]], passages=FULL_EVIDENCE, narrowed=True)


def test_refined_terms_leave_out_question_and_frame_words() -> None:
    words = [t.word for t in QuestionTerms("張作霖曾於1919年時與哪一個人結婚?", _idf).terms]
    assert "一个" in words and "曾于" in words  # the answerer's terms, unchanged
    refined = [
        t.word for t in QuestionTerms("張作霖曾於1919年時與哪一個人結婚?", _idf, refined=True).terms
    ]
    assert refined == ["张作霖", "1919", "结婚"]
    assert [t.word for t in QuestionTerms("县里有几所高中？", _idf, refined=True).terms] == [
        "县里",
        "高中",
    ]


def test_words_every_passage_shares_count_less() -> None:
    question = "德川幕府把政权交还给谁？"
    specific = FEATURES.index("specific_top_coverage")
    alone = _evidence(question, [SIBLING, OTHER], [1.0, 0.5])
    shared = _evidence(question, [SIBLING, ANSWERS], [1.0, 0.9])
    # 德川幕府 is in both passages of the second list: only 政权/交还 single out the first.
    assert shared[specific] < alone[specific]


def test_evidence_of_nothing_is_zero() -> None:
    assert _evidence("什么？", [ANSWERS], [1.0]) == [0.0] * len(FEATURES)
    assert _evidence("德川幕府", [], []) == [0.0] * len(FEATURES)


def test_aligned_share() -> None:
    assert aligned_share("改革任务要制定时间表", "制定改革任务时间表") == 0.4  # 改革任务
    assert aligned_share("", "任何") == 0.0


def test_fit_separates_separable_evidence() -> None:
    rng = random.Random(0)

    def row(cov: float) -> list[float]:
        return [cov] * len(FEATURES)

    rows = [(row(rng.uniform(0.7, 1.0)), 1) for _ in range(200)]
    rows += [(row(rng.uniform(0.0, 0.4)), 0) for _ in range(200)]
    model = fit(rows, steps=500)
    assert isinstance(model, RefusalModel)
    wrong = sum(model.answerable(f, passages=FULL_EVIDENCE) != bool(y) for f, y in rows)
    assert wrong <= 4


def test_a_question_is_segmented_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # The answerer and the refusal evidence each build the same question's terms: jieba runs once.
    import models.coverage as coverage

    calls: list[str] = []

    def counted(text: str) -> list[str]:
        calls.append(text)
        return words(text)

    monkeypatch.setattr(coverage, "words", counted)
    coverage._question_words.cache_clear()
    question = "绿原乡的特产“红心”猕猴桃是哪一年引进的？"
    first = [t.word for t in QuestionTerms(question, _idf).terms]
    again = [t.word for t in QuestionTerms(question, _idf).terms]
    assert first == again and len(calls) == 1
    refined = QuestionTerms(question, _idf, refined=True)
    segmented = len(calls)
    assert segmented > 1  # the refined words: each piece between question words, once as well
    assert [t.word for t in refined.refined(question).terms] == [t.word for t in refined.terms]
    assert len(calls) == segmented
