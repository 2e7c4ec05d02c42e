"""Extractive section summaries: budgets, offsets, trimming, topic sentences, redundancy,
scores and the register table."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import re

import numpy as np
import pytest

from models.register import REGISTER_CHARS, REGISTER_PAIRS, _expand, fit_register, table_source
from models.summarizer import (
    FEATURES,
    HEADING_FEATURES,
    HEADLINE_MAX_CHARS,
    Budget,
    Extract,
    HeadingModel,
    HeadingNeighbours,
    Summarizer,
    SummaryError,
    Weights,
    _analyse,
    default_heading_model,
    default_max_sentences,
    fit_heading_openers,
    fit_heading_prior,
    fit_logistic,
    heading_char_stats,
    heading_design,
    heading_words,
)
from models.text import Sentence, split_clauses, split_sentences

# A heading line, numbered points ("一要…。") and supporting sentences, as in a county plenary
# speech. Lines are paragraphs.
SECTION = """二、聚焦高质量发展，以项目建设为抓手，全力推动县域经济提质增效
同志们：
发展是第一要务，项目是发展的生命线。全县上下要牢固树立“项目为王”理念，把项目建设作为推动高质量发展的主抓手，以项目建设的大突破带动县域经济的大发展。
一要坚定不移抓招商引资。招商引资是项目建设的源头活水，要围绕主导产业开展产业链招商，紧盯长三角、珠三角等重点区域，全年引进亿元以上项目30个以上。要健全招商引资考核机制，对招商成效突出的单位和个人给予表彰奖励，对工作不力的严肃问责。
二要持之以恒抓项目建设。要坚持领导包联重点项目制度，实行一个项目、一名领导、一个专班、一抓到底，确保签约项目早落地、落地项目早开工、开工项目早投产。要加快推进产业园区基础设施建设，提升园区承载能力，为项目落地提供坚实保障。
三要用心用情优化营商环境。营商环境就是生产力，要深化“放管服”改革，推行“一窗受理、集成服务”，让企业和群众办事少跑腿、好办事。要坚决查处破坏营商环境的行为，让企业安心经营、放心投资、专心发展。
谢谢大家。"""

_TOPIC = re.compile(r"[一二三四五六七八九十]+、|[一二三四五六七八九十]要")


def build(text: str, *, topics: bool = True, section_id: str = "s2") -> list[Sentence]:
    """Sentences of ``text`` by line; a line's first sentence is a topic if it is numbered."""
    sentences: list[Sentence] = []
    pos = 0
    for paragraph, line in enumerate(text.split("\n"), 1):
        for k, (start, end) in enumerate(split_sentences(text, pos, pos + len(line))):
            topic = topics and k == 0 and _TOPIC.match(text, start) is not None
            sentences.append(Sentence(start, end, paragraph, section_id, topic))
        pos += len(line) + 1
    return sentences


def check_invariants(text: str, sentences: list[Sentence], extracts: list[Extract]) -> None:
    """Document order, no repeats, and every extract a leading piece of exactly one sentence."""
    assert [e.start for e in extracts] == sorted({e.start for e in extracts})
    for before, after in itertools.pairwise(extracts):
        assert before.end <= after.start
    by_start = {s.start: s for s in sentences}
    for e in extracts:
        assert e.start in by_start, "an extract must start at a sentence start"
        own = by_start[e.start]
        assert e.start < e.end <= own.end
        assert e.paragraph == own.paragraph
        assert e.trimmed == (e.end != own.end)


def texts(text: str, extracts: list[Extract]) -> list[str]:
    return [text[e.start : e.end] for e in extracts]


def total_chars(extracts: list[Extract]) -> int:
    return sum(e.end - e.start for e in extracts)


@pytest.fixture(scope="module")
def section() -> tuple[str, list[Sentence]]:
    return SECTION, build(SECTION)


# --- Budget ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_sentences": 0},
        {"max_sentences": -2},
        {"max_chars": 0},
        {"max_chars": True},
        {"max_chars": 12.5},
        {"ratio": 0.0},
        {"ratio": -0.1},
        {"ratio": 1.5},
        {"ratio": math.nan},
        {"ratio": "0.3"},
    ],
)
def test_impossible_budgets_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(SummaryError):
        Budget(**kwargs)  # type: ignore[arg-type]


def test_summary_error_is_a_value_error() -> None:
    assert issubclass(SummaryError, ValueError)


def test_chars_for_takes_the_tightest_limit() -> None:
    assert Budget().chars_for(1000) is None
    assert Budget(max_sentences=3).chars_for(1000) is None
    assert Budget(max_chars=120).chars_for(1000) == 120
    assert Budget(ratio=0.3).chars_for(1000) == 300
    assert Budget(max_chars=120, ratio=0.3).chars_for(1000) == 120
    assert Budget(max_chars=500, ratio=0.3).chars_for(1000) == 300
    # Rounded down so that the ratio is never exceeded, and not lost to floating point.
    assert Budget(ratio=0.3).chars_for(10) == 3
    assert Budget(ratio=0.25).chars_for(10) == 2
    with pytest.raises(SummaryError):
        Budget(ratio=0.3).chars_for(-1)


def test_default_sentence_budget_follows_topic_count() -> None:
    assert [default_max_sentences(n) for n in (0, 2, 3, 5, 8, 20)] == [3, 3, 3, 5, 8, 8]


# --- budgets hold -----------------------------------------------------------------------------


@pytest.mark.parametrize("max_sentences", [1, 2, 3, 5, 100])
def test_max_sentences_holds(section: tuple[str, list[Sentence]], max_sentences: int) -> None:
    text, sentences = section
    extracts = Summarizer().summarize(text, sentences, Budget(max_sentences=max_sentences))
    check_invariants(text, sentences, extracts)
    assert 1 <= len(extracts) <= max_sentences
    assert not any(e.trimmed for e in extracts), "no character budget, nothing to trim"


@pytest.mark.parametrize("max_chars", [1, 5, 20, 40, 80, 150, 300])
def test_max_chars_holds(section: tuple[str, list[Sentence]], max_chars: int) -> None:
    text, sentences = section
    extracts = Summarizer().summarize(text, sentences, Budget(max_chars=max_chars))
    check_invariants(text, sentences, extracts)
    assert extracts
    assert total_chars(extracts) <= max_chars


@pytest.mark.parametrize("ratio", [0.05, 0.1, 0.25, 0.5])
def test_ratio_holds(section: tuple[str, list[Sentence]], ratio: float) -> None:
    text, sentences = section
    section_chars = sum(s.end - s.start for s in sentences)
    extracts = Summarizer().summarize(text, sentences, Budget(ratio=ratio))
    check_invariants(text, sentences, extracts)
    assert extracts
    assert total_chars(extracts) <= ratio * section_chars


def test_the_tightest_budget_holds(section: tuple[str, list[Sentence]]) -> None:
    text, sentences = section
    section_chars = sum(s.end - s.start for s in sentences)
    summarizer = Summarizer()
    for budget in (
        Budget(max_sentences=2, max_chars=1000, ratio=1.0),
        Budget(max_sentences=10, max_chars=60, ratio=1.0),
        Budget(max_sentences=10, max_chars=1000, ratio=0.08),
    ):
        extracts = summarizer.summarize(text, sentences, budget)
        check_invariants(text, sentences, extracts)
        assert len(extracts) <= budget.max_sentences  # type: ignore[operator]
        assert total_chars(extracts) <= min(budget.max_chars, budget.ratio * section_chars)  # type: ignore[operator,type-var]
    assert len(summarizer.summarize(text, sentences, Budget(max_sentences=2, ratio=1.0))) == 2
    assert total_chars(summarizer.summarize(text, sentences, Budget(max_chars=60))) <= 60


def test_default_budget_is_one_sentence_per_topic(section: tuple[str, list[Sentence]]) -> None:
    text, sentences = section
    extracts = Summarizer().summarize(text, sentences, Budget())
    # A headline and three points: four topic sentences, so four sentences by default.
    assert len(extracts) == 4
    few_topics = build(SECTION, topics=False)
    assert len(Summarizer().summarize(text, few_topics, Budget())) == 3


def test_a_ratio_below_one_character_gives_nothing() -> None:
    text = "加快推进乡村振兴。"
    assert Summarizer().summarize(text, build(text), Budget(ratio=0.1)) == []


# --- order, offsets, determinism ---------------------------------------------------------------


def test_extracts_are_exact_copies_in_document_order(section: tuple[str, list[Sentence]]) -> None:
    text, sentences = section
    extracts = Summarizer().summarize(text, sentences, Budget(max_sentences=6))
    check_invariants(text, sentences, extracts)
    assert len(extracts) == 6
    whole = {text[s.start : s.end] for s in sentences}
    for piece in texts(text, extracts):
        assert piece in whole
        assert piece in SECTION


def test_input_order_and_repeats_do_not_change_the_summary(
    section: tuple[str, list[Sentence]],
) -> None:
    text, sentences = section
    shuffled = sentences[::-1] + sentences[:3]
    budget = Budget(max_chars=150)
    assert Summarizer().summarize(text, shuffled, budget) == Summarizer().summarize(
        text, sentences, budget
    )


def test_summaries_are_deterministic(section: tuple[str, list[Sentence]]) -> None:
    text, sentences = section
    flat = build(SECTION, topics=False)
    shared = Summarizer()
    for sents in (sentences, flat):
        for budget in (Budget(), Budget(max_chars=100), Budget(ratio=0.3, max_sentences=4)):
            first = shared.summarize(text, sents, budget)
            assert first
            assert shared.summarize(text, sents, budget) == first
            assert Summarizer().summarize(text, sents, budget) == first


def test_empty_input_gives_an_empty_summary() -> None:
    assert Summarizer().summarize("", [], Budget()) == []
    assert Summarizer().summarize(SECTION, [], Budget(max_chars=10)) == []


def test_sentences_outside_the_text_or_overlapping_are_rejected() -> None:
    text = "加快推进乡村振兴。"
    with pytest.raises(SummaryError):
        Summarizer().summarize(text, [Sentence(0, 50, 1, "s")], Budget())
    with pytest.raises(SummaryError):
        Summarizer().summarize(text, [Sentence(3, 3, 1, "s")], Budget())
    with pytest.raises(SummaryError):
        Summarizer().summarize(text, [Sentence(0, 5, 1, "s"), Sentence(3, 9, 1, "s")], Budget())


# --- trimming ----------------------------------------------------------------------------------

LONG = (
    "要坚持把就业作为最大的民生，"
    "健全就业公共服务体系，"
    "加强重点群体就业帮扶，"
    "持续推进城乡居民增收，"
    "让发展成果更多更公平惠及全体人民。"
)


def test_a_sentence_is_trimmed_to_its_leading_clauses() -> None:
    text = LONG
    sentences = build(text)
    assert len(sentences) == 1
    extracts = Summarizer().summarize(text, sentences, Budget(max_chars=30))
    assert texts(text, extracts) == ["要坚持把就业作为最大的民生，健全就业公共服务体系"]
    (extract,) = extracts
    assert extract.trimmed
    assert extract.start == 0
    clause_ends = {end for _, end in split_clauses(text, 0, len(text))}
    # Ends at a clause end, or one short of it where the trailing "，" was dropped.
    assert extract.end in clause_ends or extract.end + 1 in clause_ends
    assert text[extract.end - 1] not in "，；："


def test_trimming_may_end_at_a_semicolon_clause() -> None:
    # split_sentences ends a sentence at "；", but a caller's sentence may span one.
    text = LONG.replace("帮扶，", "帮扶；")
    sentences = [Sentence(0, len(text), 1, "s")]
    extracts = Summarizer().summarize(text, sentences, Budget(max_chars=38))
    assert texts(text, extracts) == [
        "要坚持把就业作为最大的民生，健全就业公共服务体系，加强重点群体就业帮扶"
    ]


def test_trimmed_extracts_in_a_realistic_section_end_at_clause_ends(
    section: tuple[str, list[Sentence]],
) -> None:
    text, sentences = section
    for max_chars in range(1, 400, 7):
        extracts = Summarizer().summarize(text, sentences, Budget(max_chars=max_chars))
        check_invariants(text, sentences, extracts)
        for e in extracts:
            if not e.trimmed or len(extracts) == 1:
                continue  # a lone extract may be the last-resort cut
            own = next(s for s in sentences if s.start == e.start)
            ends = {end for _, end in split_clauses(text, own.start, own.end)}
            assert e.end in ends or e.end + 1 in ends, texts(text, [e])


def test_when_no_clause_fits_the_first_is_cut_at_the_budget() -> None:
    text = "坚持以人民为中心的发展思想推动共同富裕取得更为明显的实质性进展，努力让群众生活更美好。"
    extracts = Summarizer().summarize(text, build(text), Budget(max_chars=8))
    assert texts(text, extracts) == ["坚持以人民为中心"]
    assert extracts[0].trimmed and extracts[0].start == 0


def test_the_headline_is_kept_even_under_a_tiny_budget(
    section: tuple[str, list[Sentence]],
) -> None:
    text, sentences = section
    extracts = Summarizer().summarize(text, sentences, Budget(max_chars=10))
    assert texts(text, extracts) == ["二、聚焦高质量发展"]
    extracts = Summarizer().summarize(text, sentences, Budget(max_chars=4))
    assert texts(text, extracts) == ["二、聚焦"]


# --- choice of sentences ---------------------------------------------------------------------


def test_topic_sentences_come_first(section: tuple[str, list[Sentence]]) -> None:
    text, sentences = section
    topic_texts = [text[s.start : s.end] for s in sentences if s.topic]
    assert len(topic_texts) == 4  # the headline and three points
    extracts = Summarizer().summarize(text, sentences, Budget(max_sentences=len(topic_texts)))
    assert texts(text, extracts) == topic_texts
    # With fewer slots than topics, the headline and then the points in order.
    extracts = Summarizer().summarize(text, sentences, Budget(max_sentences=2))
    assert texts(text, extracts) == topic_texts[:2]
    # With a character budget, the topics that fit first, then supporting sentences.
    topic_chars = sum(len(t) for t in topic_texts)
    extracts = Summarizer().summarize(text, sentences, Budget(max_chars=topic_chars + 40))
    assert [t for t in texts(text, extracts) if t in topic_texts] == topic_texts
    assert len(extracts) > len(topic_texts)


def test_without_topic_flags_central_sentences_are_chosen(
    section: tuple[str, list[Sentence]],
) -> None:
    text, _ = section
    flat = build(SECTION, topics=False)
    chosen = texts(text, Summarizer().summarize(text, flat, Budget(max_sentences=3)))
    assert len(chosen) == 3
    assert "同志们：" not in chosen
    assert "谢谢大家。" not in chosen
    # Sentences on the section's theme (projects) win over the closing courtesy.
    assert any("项目" in t for t in chosen)


def test_greetings_are_not_chosen_while_content_remains() -> None:
    text = "同志们：\n今天召开全县经济工作会议。\n谢谢大家。\n好。"
    chosen = texts(text, Summarizer().summarize(text, build(text), Budget(max_sentences=2)))
    assert chosen == ["今天召开全县经济工作会议。"]
    # With nothing but greetings, the best of them is still better than an empty summary.
    text = "同志们：\n谢谢大家。"
    assert len(Summarizer().summarize(text, build(text), Budget())) == 1


HANDOVER = (
    "下面，请县委副书记就全县经济工作讲话。\n"
    "全县经济工作要稳字当头、稳中求进，推动经济工作提质增效。\n"
    "要抓好项目建设，扩大有效投资。\n"
    "要抓好消费升级，激发市场活力。\n"
    "感谢各位领导对全县经济工作的关心支持！"
)


@pytest.mark.parametrize("budget", [Budget(max_sentences=3), Budget(max_chars=60)])
def test_hand_overs_and_thanks_score_low(budget: Budget) -> None:
    # Both share the section's words ("全县经济工作") and the first opens the section, so only
    # their being stage directions keeps them out.
    text = HANDOVER
    # The ordinary unit scores (headline mode has its own test below).
    summarizer = Summarizer(headline=False)
    chosen = texts(text, summarizer.summarize(text, build(text, topics=False), budget))
    assert chosen == [
        "全县经济工作要稳字当头、稳中求进，推动经济工作提质增效。",
        "要抓好项目建设，扩大有效投资。",
        "要抓好消费升级，激发市场活力。",
    ]


NEAR_DUPLICATE = """三、强化生态环境保护
要坚决打好蓝天碧水净土保卫战，持续改善全县生态环境质量，让群众共享绿色发展成果。
要坚决打好蓝天碧水净土保卫战，持续改善全县生态环境质量，让人民群众共享绿色发展成果。
要全面落实河长制湖长制林长制，加强重点流域水环境综合治理，确保生态环境质量只升不降。
要大力推进绿色低碳发展，加快淘汰落后产能，推动生态环境保护和经济发展协调共进。"""


def test_a_near_duplicate_is_not_chosen_twice() -> None:
    text = NEAR_DUPLICATE
    sentences = build(text, topics=False)
    first, second = sentences[1], sentences[2]
    budget = Budget(max_sentences=3)
    # Without a redundancy check both copies are picked: they are the most central sentences.
    careless = Summarizer(redundancy=1.0, diversity=0.0).summarize(text, sentences, budget)
    assert {first.start, second.start} <= {e.start for e in careless}
    extracts = Summarizer().summarize(text, sentences, budget)
    check_invariants(text, sentences, extracts)
    starts = {e.start for e in extracts}
    assert len(extracts) == 3
    assert not {first.start, second.start} <= starts


# --- robustness ----------------------------------------------------------------------------------


def test_random_sections_keep_every_invariant() -> None:
    rng = random.Random(20240607)
    words = ["发展", "项目", "改革", "民生", "生态", "安全", "乡村", "振兴", "产业", "服务"]
    marks = ["，", "，", "；", "。", "！", "：", "、"]
    summarizer = Summarizer()
    for _ in range(150):
        lines = []
        for _ in range(rng.randint(1, 6)):
            n_pieces = rng.randint(1, 12)
            lines.append("".join(rng.choice(words) + rng.choice(marks) for _ in range(n_pieces)))
        text = "\n".join(lines)
        sentences = build(text, topics=False)
        sentences = [
            Sentence(s.start, s.end, s.paragraph, s.section_id, rng.random() < 0.2)
            for s in sentences
        ]
        budget = Budget(
            max_sentences=rng.choice([None, 1, 2, 4]),
            max_chars=rng.choice([None, 1, 3, 10, 25, 60]),
            ratio=rng.choice([None, 0.2, 0.6]),
        )
        extracts = summarizer.summarize(text, sentences, budget)
        check_invariants(text, sentences, extracts)
        limit = budget.chars_for(sum(s.end - s.start for s in sentences))
        if limit is not None:
            assert total_chars(extracts) <= limit
        if budget.max_sentences is not None:
            assert len(extracts) <= budget.max_sentences
        if budget.is_empty:
            assert len(extracts) <= default_max_sentences(sum(s.topic for s in sentences))
        assert bool(extracts) == (bool(sentences) and limit != 0)


# --- units, scores and the budget ----------------------------------------------------------------


def candidate_units(text: str, sentence: Sentence, min_tokens: int, min_trim: int) -> list[int]:
    """Ends of the units a sentence offers: leading clauses (mark dropped) and the whole."""
    ends = []
    for _, clause_end in split_clauses(text, sentence.start, sentence.end)[:-1]:
        end = clause_end - (text[clause_end - 1] in "，；：,;:、")
        if len(TOKEN.findall(text, sentence.start, end)) >= min_trim:
            ends.append(end)
    if len(TOKEN.findall(text, sentence.start, sentence.end)) >= min_tokens:
        ends.append(sentence.end)
    return ends


TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\W\d_A-Za-z]")


@pytest.mark.parametrize("max_chars", [30, 60, 90, 140, 200, 260])
def test_the_character_budget_is_filled_as_far_as_units_allow(
    section: tuple[str, list[Sentence]], max_chars: int
) -> None:
    # Without the redundancy check, the greedy choice stops only when no unit of a sentence not
    # yet used fits what is left. (Headline mode, for budgets up to 60, keeps at most two units
    # by design: see the headline tests.)
    text, _ = section
    flat = build(SECTION, topics=False)
    summarizer = Summarizer(redundancy=1.0, headline=False)
    extracts = summarizer.summarize(text, flat, Budget(max_chars=max_chars))
    check_invariants(text, flat, extracts)
    left = max_chars - total_chars(extracts)
    assert left >= 0
    used = {e.start for e in extracts}
    for s in flat:
        if s.start in used or re.match(r"同志们|谢谢", text[s.start :]):
            continue
        for end in candidate_units(text, s, summarizer.min_tokens, summarizer.min_trim_tokens):
            assert end - s.start > left, (text[s.start : end], left)


def test_several_sentences_may_be_trimmed_and_each_keeps_whole_leading_clauses() -> None:
    text = SECTION
    sentences = build(text, topics=False)
    most_trimmed = 0
    for max_chars in range(20, 300, 5):
        extracts = Summarizer().summarize(text, sentences, Budget(max_chars=max_chars))
        check_invariants(text, sentences, extracts)
        assert total_chars(extracts) <= max_chars
        most_trimmed = max(most_trimmed, sum(e.trimmed for e in extracts))
        for e in extracts:
            own = next(s for s in sentences if s.start == e.start)
            ends = {end for _, end in split_clauses(text, own.start, own.end)}
            assert e.end + 1 in ends or e.end in ends
            assert len(TOKEN.findall(text, e.start, e.end)) >= Summarizer().min_trim_tokens
    assert most_trimmed >= 2


def test_a_short_leading_clause_is_not_a_unit() -> None:
    # "党的十八大以来" (7 tokens) is an adverbial, not a point: never kept on its own.
    text = (
        "党的十八大以来，全县坚持把项目建设作为经济工作的生命线，引进亿元以上项目三十个。\n"
        "全县要坚持项目为王，抓招商、促落地、优服务。"
    )
    sentences = build(text, topics=False)
    # From 9 characters on, "全县要坚持项目为王" (9 tokens) fits: no last-resort cut is needed.
    for max_chars in range(9, 60):
        chosen = texts(text, Summarizer().summarize(text, sentences, Budget(max_chars=max_chars)))
        assert chosen and "党的十八大以来" not in chosen
    with_short_units = Summarizer(min_trim_tokens=6)
    assert "党的十八大以来" in texts(
        text, with_short_units.summarize(text, sentences, Budget(max_chars=8))
    )


SPOKEN = (
    "好，那我们开始吧。\n"
    "那个我觉得其实就是说这个项目嘛，你知道吧，对吧，项目那个就是很重要的。\n"
    "项目建设需要加强资金保障，完善技术支持，提升项目管理效率。\n"
    "然后你们那边其实也是这样的，对吧？\n"
    "项目管理还需要培养专业人才，建立长效机制。"
)


def test_spoken_fillers_lose_to_content_on_the_same_topic() -> None:
    text = SPOKEN
    sentences = build(text, topics=False)
    analysis = _analyse(text, sentences, trim=False)
    assert analysis.spokenness == 1.0
    assert _analyse(SECTION, build(SECTION), trim=False).spokenness == 0.0
    chosen = texts(text, Summarizer().summarize(text, sentences, Budget(max_sentences=2)))
    assert chosen == [
        "项目建设需要加强资金保障，完善技术支持，提升项目管理效率。",
        "项目管理还需要培养专业人才，建立长效机制。",
    ]
    # Scored by centrality alone, the rambling sentence (it says 项目 three times) gets in.
    plain = Summarizer(spoken=Weights(), written=Weights())
    rambling = texts(text, plain.summarize(text, sentences, Budget(max_sentences=2)))
    assert any(t.startswith("那个我觉得") for t in rambling)


def test_weights_name_every_feature() -> None:
    assert tuple(f.name for f in dataclasses.fields(Weights)) == FEATURES
    assert Weights().as_array().tolist() == [1.0] + [0.0] * (len(FEATURES) - 1)
    analysis = _analyse(SECTION, build(SECTION), trim=True)
    assert analysis.features.shape == (len(analysis.sentence), len(FEATURES))
    assert np.isfinite(analysis.features).all()


def test_keyness_is_the_share_of_sentences_holding_a_units_characters() -> None:
    # 改 and 革 are in three of the four sentences, 发 展 创 新 开 放 and 天 气 很 好 in one.
    text = "改革发展。改革创新。改革开放。天气很好。"
    sentences = [Sentence(s, e, 1, "s") for s, e in split_sentences(text)]
    analysis = _analyse(text, sentences, trim=False)
    keyness = analysis.features[:, FEATURES.index("keyness")]
    key_pairs = analysis.features[:, FEATURES.index("key_pairs")]
    assert keyness.tolist() == pytest.approx([0.5, 0.5, 0.5, 0.25])
    # 改革 3/4, 革发 1/4, 发展 1/4; a sentence of one-off pairs 1/4.
    assert key_pairs.tolist() == pytest.approx([5 / 12, 5 / 12, 5 / 12, 0.25])
    # Written heading-like choice under a tight budget: the section's recurring theme wins.
    chosen = texts(text, Summarizer().summarize(text, sentences, Budget(max_chars=5)))
    assert chosen[0].startswith("改革")


def test_topic_sentences_are_taken_outermost_first() -> None:
    text = (
        "二、推动高质量发展\n"
        "（一）抓好项目建设。\n"
        "一是抓招商。招商是源头活水。\n"
        "二是抓落地。落地才有实效。\n"
        "（二）优化营商环境。\n"
        "要深化放管服改革，让企业安心经营。"
    )
    ids = ["2", "2.1", "2.1.1", "2.1.2", "2.2", "2.2"]
    sentences = []
    pos = 0
    for paragraph, line in enumerate(text.split("\n"), 1):
        for k, (start, end) in enumerate(split_sentences(text, pos, pos + len(line))):
            sentences.append(Sentence(start, end, paragraph, ids[paragraph - 1], k == 0))
        pos += len(line) + 1
    sentences[-1] = dataclasses.replace(sentences[-1], topic=False)  # a plain sentence
    chosen = texts(text, Summarizer().summarize(text, sentences, Budget(max_sentences=3)))
    # The headline and both points, not the first point's sub-points; in document order.
    assert chosen == ["二、推动高质量发展", "（一）抓好项目建设。", "（二）优化营商环境。"]
    chosen = texts(text, Summarizer().summarize(text, sentences, Budget(max_sentences=4)))
    assert chosen == [
        "二、推动高质量发展",
        "（一）抓好项目建设。",
        "一是抓招商。",
        "（二）优化营商环境。",
    ]


# --- the register table -----------------------------------------------------------------------


def test_register_weights() -> None:
    assert REGISTER_CHARS["你"] < -3 and REGISTER_PAIRS["那个"] < -3 and REGISTER_PAIRS["对吧"] < -3
    assert REGISTER_PAIRS["以及"] > 0 and REGISTER_CHARS["需"] > 0
    assert all(len(c) == 1 for c in REGISTER_CHARS) and all(len(p) == 2 for p in REGISTER_PAIRS)
    pairs = [("那个，你知道吧，我们要加强管理。", "加强管理。")] * 30
    chars, bigrams = fit_register(pairs, min_count=20)
    assert chars["你"] < 0 < chars["加"]
    assert bigrams["那个"] < 0 < bigrams["管理"]
    # A token frequent in one text only is that text's topic, not a matter of register.
    topical = [("北京的会议，我们要加强管理。北京北京北京。", "加强管理。")] + [
        ("我们要加强管理。", "加强管理。")
    ] * 29
    chars, _ = fit_register(topical, min_count=1, min_text_share=0.0)
    assert "北" in chars
    chars, _ = fit_register(topical, min_count=1, min_text_share=0.2)
    assert "北" not in chars and chars["加"] > 0
    chars, bigrams = fit_register(pairs, min_count=20)
    # The source the eval prints is the module's own format, and reads back the same.
    namespace: dict[str, object] = {}
    exec(table_source(chars, bigrams), namespace)
    assert _expand(namespace["_CHARS"], pairs=False) == chars  # type: ignore[arg-type]
    assert _expand(namespace["_PAIRS"], pairs=True) == bigrams  # type: ignore[arg-type]


# --- headline mode ----------------------------------------------------------------------------

# A written section without topic sentences, as a report's subsection body: paragraphs open
# with short thesis sentences.
REPORT = (
    "推进国资国企改革。制定出资人监管权责清单，深化国有资本投资、运营公司等改革试点，"
    "赋予更多自主权。\n"
    "支持民营企业发展。营造公平竞争环境，落实鼓励民间投资政策，依法保护企业家合法权益。\n"
    "完善产权保护制度。甄别纠正一批侵害企业产权的错案冤案，保护企业家人身和财产安全。"
)


def prior_only(prior: dict[str, float], base: float = -6.0) -> HeadingModel:
    """A heading model that reads nothing but the prior table (log odds of each character)."""
    coef = tuple(1.0 if name == "prior" else 0.0 for name in HEADING_FEATURES)
    return HeadingModel(prior=prior, base=base, coef=coef, intercept=0.0)


def test_the_shipped_heading_model_loads_and_gives_probabilities() -> None:
    model = default_heading_model()
    assert model is not None
    assert len(model.coef) == len(HEADING_FEATURES)
    probabilities = model.probabilities(REPORT, build(REPORT, topics=False))
    assert set(probabilities) == set(TOKEN.findall(REPORT))
    assert all(0.0 < p < 1.0 for p in probabilities.values())
    # Heading verbs are more likely heading characters than a particle.
    assert probabilities["推"] > probabilities["的"]


@pytest.mark.parametrize("max_chars", [4, 9, 12, 20, 35, HEADLINE_MAX_CHARS])
def test_a_headline_is_one_or_two_units_within_the_budget(max_chars: int) -> None:
    text = REPORT
    sentences = build(text, topics=False)
    extracts = Summarizer().summarize(text, sentences, Budget(max_chars=max_chars))
    check_invariants(text, sentences, extracts)
    assert 1 <= len(extracts) <= 2
    assert total_chars(extracts) <= max_chars
    if max_chars >= 9:  # "推进国资国企改革" and its like fit: no last-resort cut
        for e in extracts:
            assert not e.trimmed or text[e.end] in "，；：", "a trimmed unit ends at a clause mark"


def test_a_headline_keeps_the_unit_made_of_heading_characters() -> None:
    text = REPORT
    sentences = build(text, topics=False)
    model = prior_only({c: 3.0 for c in "支持民营企业发展"})
    chosen = texts(text, Summarizer(headline=model).summarize(text, sentences, Budget(max_chars=9)))
    assert chosen == ["支持民营企业发展。"]


def test_a_headline_pairs_two_short_units_when_together_they_match_more() -> None:
    text = REPORT
    sentences = build(text, topics=False)
    model = prior_only({c: 3.0 for c in "推进国资国企改革完善产权保护制度"})
    summarizer = Summarizer(headline=model)
    chosen = texts(text, summarizer.summarize(text, sentences, Budget(max_chars=20)))
    assert chosen == ["推进国资国企改革。", "完善产权保护制度。"]
    # With one sentence allowed, the better one alone.
    budget = Budget(max_chars=20, max_sentences=1)
    assert len(summarizer.summarize(text, sentences, budget)) == 1


# Each sentence opens with a short leading clause (6 and 7 tokens) and runs past the budget.
OPENERS = (
    "加强土地调控，从紧控制新增建设用地，严肃查处违法违规用地行为。\n"
    "我们追求的发展，是提高质量效益、推进转型升级、改善人民生活的发展。"
)


def test_a_headline_keeps_a_short_leading_clause_only_when_it_opens_like_a_heading() -> None:
    text = OPENERS
    sentences = build(text, topics=False)
    wanted = "加强土地调控我们追求的发展"
    plain = prior_only({c: 3.0 for c in wanted})
    with_openers = dataclasses.replace(plain, openers=frozenset({"加强", "我们"}))
    only_first = dataclasses.replace(plain, openers=frozenset({"加强"}))
    budget = Budget(max_chars=14)
    # Both clauses are below min_trim_tokens (8): without openers neither is a unit, and
    # nothing else fits, so the summary is the last-resort cut of the best sentence.
    chosen = texts(text, Summarizer(headline=plain).summarize(text, sentences, budget))
    assert chosen and not {"加强土地调控", "我们追求的发展"} & set(chosen)
    assert texts(text, Summarizer(headline=with_openers).summarize(text, sentences, budget)) == [
        "加强土地调控",
        "我们追求的发展",
    ]
    assert texts(text, Summarizer(headline=only_first).summarize(text, sentences, budget)) == [
        "加强土地调控"
    ]
    for e in Summarizer(headline=with_openers).summarize(text, sentences, budget):
        assert e.trimmed and text[e.end] == "，"


def test_fit_heading_openers_keeps_bigrams_that_open_several_headings() -> None:
    headings = ["加强管理。", "加强服务。", "推进改革。", "坚持创新。", "坚持发展。", "坚持"]
    assert fit_heading_openers(headings) == frozenset({"加强", "坚持"})
    assert fit_heading_openers(headings, min_count=3) == frozenset({"坚持"})
    assert fit_heading_openers(["加"]) == frozenset()


def test_the_shipped_heading_model_has_heading_openers_and_not_fragments() -> None:
    model = default_heading_model()
    assert model is not None
    assert {"加强", "推进", "坚持"} <= model.openers
    assert not {"党的", "我们", "作为", "所有", "在"} & model.openers


def test_a_headline_skips_thanks_and_hand_overs() -> None:
    text = HANDOVER
    sentences = build(text, topics=False)
    model = prior_only({c: 3.0 for c in "感谢各位领导下面请县委副书记讲话"})
    for max_chars in (20, 40, 60):
        chosen = texts(
            text, Summarizer(headline=model).summarize(text, sentences, Budget(max_chars=max_chars))
        )
        assert chosen
        assert not any(c.startswith(("感谢", "下面")) for c in chosen)


def test_headline_mode_keeps_to_written_sections_under_tight_budgets(
    section: tuple[str, list[Sentence]],
) -> None:
    # A model that wants one particular sentence, so that where it applies, it shows.
    model = prior_only({c: 3.0 for c in "完善产权保护制度"})
    on, off = Summarizer(headline=model), Summarizer(headline=False)
    flat = build(REPORT, topics=False)
    # Too long a budget, no character budget, or topic sentences: the ordinary path.
    for budget in (Budget(max_chars=HEADLINE_MAX_CHARS + 1), Budget(max_sentences=2)):
        assert on.summarize(REPORT, flat, budget) == off.summarize(REPORT, flat, budget)
    text, sentences = section
    budget = Budget(max_chars=30)
    assert on.summarize(text, sentences, budget) == off.summarize(text, sentences, budget)
    # A transcript: spoken markers everywhere.
    spoken = (
        "那个我觉得吧，这个事情其实就是说我们要怎么去做好。\n"
        "然后呢你看，那么我们刚才讲的这个东西，其实大家都知道吧。\n"
        "对吧，就是这样的，我觉得这个还是挺重要的啊。"
    )
    spoken_sentences = build(spoken, topics=False)
    assert on.summarize(spoken, spoken_sentences, budget) == off.summarize(
        spoken, spoken_sentences, budget
    )
    # On the written section under a tight budget it does apply.
    tight = Budget(max_chars=9)
    assert texts(REPORT, on.summarize(REPORT, flat, tight)) == ["完善产权保护制度。"]
    assert texts(REPORT, off.summarize(REPORT, flat, tight)) != ["完善产权保护制度。"]


def test_heading_char_stats() -> None:
    text = "加强管理。\n提高质量，加强服务。"
    chars, stats = heading_char_stats(text, build(text, topics=False))
    row = {c: stats[k] for k, c in enumerate(chars)}
    assert set(chars) == set("加强管理提高质量服务")
    # log count, sentence share, first position, opener share, first-clause share, log n,
    # short-opener share, in the first sentence, any short opener
    assert row["加"].tolist() == pytest.approx(
        [math.log(2), 1.0, 0.0, 1.0, 0.5, math.log(2), 1.0, 1.0, 1.0]
    )
    assert row["质"].tolist() == pytest.approx(
        [0.0, 0.5, 6 / 12, 0.5, 0.5, math.log(2), 0.5, 0.0, 1.0]
    )
    design = heading_design(chars, stats, {"加": 2.0}, -1.0)
    assert design.shape == (len(chars), len(HEADING_FEATURES))
    assert design[chars.index("加"), 0] == 2.0 and design[chars.index("质"), 0] == -1.0
    assert design[chars.index("质"), HEADING_FEATURES.index("prior_x_share")] == -0.5


def test_fit_heading_prior_orders_characters_by_how_often_headings_keep_them() -> None:
    pairs = [("加强管理，做好服务。", "加强管理")] * 5 + [("提高质量，做好服务。", "提高质量")] * 5
    prior, base = fit_heading_prior(pairs)
    assert prior["加"] > base > prior["服"]
    assert prior["加"] == pytest.approx(prior["提"])
    assert set(prior) == set("加强管理做好服务提高质量")


def test_fit_logistic_reaches_the_penalised_optimum() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    y = (x @ np.array([1.5, -2.0, 0.0]) + 0.5 + rng.normal(size=300) > 0).astype(np.float64)
    coef, intercept = fit_logistic(x, y, l2=5.0)
    p = 1.0 / (1.0 + np.exp(-(x @ coef + intercept)))
    # The gradient of log loss + l2 |coef|^2 vanishes (the intercept unpenalised).
    assert np.abs(x.T @ (p - y) + 2 * 5.0 * coef).max() < 1e-6
    assert abs(float(np.sum(p - y))) < 1e-6
    assert coef[0] > 0 > coef[1]


def test_heading_model_json_round_trip() -> None:
    model = prior_only({"加": 1.25, "强": -0.5}, base=-2.0)
    model = dataclasses.replace(model, openers=frozenset({"加强", "推进"}))
    again = HeadingModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again == model
    broken = model.to_json() | {"features": ["prior"]}
    with pytest.raises(ValueError, match="features"):
        HeadingModel.from_json(broken)


# Stored sections for the neighbour tests: two on farming, one on industry.
FARMING = "稳定粮食播种面积，提高农业综合生产能力，加强高标准农田建设，促进农民持续增收。"
FARMING_TOO = "加强高标准农田建设，稳定粮食生产，健全农民种粮收益保障机制，提高农业生产能力。"
INDUSTRY = "推动制造业高端化智能化绿色化发展，培育壮大新兴产业，加快传统产业改造升级。"


def words_of(text: str) -> list[str]:
    return heading_words(text, build(text, topics=False))


def test_heading_neighbours_lend_the_headings_of_similar_sections() -> None:
    neighbours = HeadingNeighbours.fit(
        [
            (words_of(FARMING), "保障国家粮食安全，促进农民增收。"),
            (words_of(INDUSTRY), "建设现代化产业体系。"),
        ]
    )
    sims = neighbours.similarities(words_of(FARMING_TOO))
    assert sims[0] > sims[1] >= 0.0
    assert neighbours.similarities(words_of(FARMING))[0] == pytest.approx(1.0)
    chars = ["粮", "农", "产", "业", "的"]
    share = dict(zip(chars, neighbours.share(words_of(FARMING_TOO), chars).tolist(), strict=True))
    # Each neighbour weighs cosine ** power, and the shares are of the total weight.
    w = np.maximum(sims, 0.0) ** neighbours.power
    assert share["粮"] == pytest.approx(w[0] / w.sum())
    assert share["产"] == pytest.approx(w[1] / w.sum())
    assert share["粮"] > share["产"] and share["的"] == 0.0
    # A stored section is not its own neighbour: only the other one lends its heading.
    own = neighbours.share(words_of(FARMING), chars).tolist()
    assert own == pytest.approx([0.0, 0.0, 1.0, 1.0, 0.0])
    # With k = 1, only the nearest counts; a section sharing nothing gets nothing.
    nearest = dataclasses.replace(neighbours, k=1)
    assert nearest.share(words_of(FARMING_TOO), chars).tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert neighbours.share(["你", "好"], chars).tolist() == [0.0] * len(chars)


def test_the_neighbour_share_is_a_heading_feature() -> None:
    neighbours = HeadingNeighbours.fit([(words_of(FARMING), "保障国家粮食安全。")])
    text = FARMING_TOO
    sentences = build(text, topics=False)
    chars, stats = heading_char_stats(text, sentences)
    column = HEADING_FEATURES.index("neighbour_headings")
    share = neighbours.share(heading_words(text, sentences), chars)
    assert heading_design(chars, stats, {}, -1.0, share)[:, column].tolist() == share.tolist()
    assert not heading_design(chars, stats, {}, -1.0)[:, column].any()
    # A model that reads only the neighbour share gives the borrowed characters the edge.
    coef = tuple(1.0 if name == "neighbour_headings" else 0.0 for name in HEADING_FEATURES)
    model = HeadingModel(prior={}, base=0.0, coef=coef, intercept=0.0, neighbours=neighbours)
    probabilities = model.probabilities(text, sentences)
    assert probabilities["粮"] > probabilities["农"] == pytest.approx(0.5)


def test_heading_model_json_round_trip_keeps_its_neighbours() -> None:
    neighbours = HeadingNeighbours.fit(
        [(words_of(FARMING), "保障国家粮食安全。"), (words_of(INDUSTRY), "建设现代化产业体系。")]
    )
    model = dataclasses.replace(prior_only({"加": 1.0}), neighbours=neighbours)
    again = HeadingModel.from_json(json.loads(json.dumps(model.to_json())))
    assert again == model
    assert again.neighbours is not None
    words = words_of(FARMING_TOO)
    assert (
        again.neighbours.share(words, ["粮", "产"]).tolist()
        == neighbours.share(words, ["粮", "产"]).tolist()
    )


def test_the_shipped_heading_model_borrows_from_similar_sections() -> None:
    model = default_heading_model()
    assert model is not None and model.neighbours is not None
    assert len(model.neighbours.sections) == len(model.neighbours.headings) > 100
    assert model.coef[HEADING_FEATURES.index("neighbour_headings")] > 0.0
