"""The grounded answerer with the shipped span ranker: typical questions of each type, exact
document offsets, the rule-based fallback, and the training script on a tiny sample."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from models.answerer import RULES_BELOW_SPAN_SCORE, Answerer, Candidate, Found
from models.span_ranker import MODEL_PATH, SpanRanker, load_span_ranker

PASSAGES = [
    # (document offset, text)
    (
        120,
        "2019年，全县地区生产总值达到320亿元，同比增长6.5%。第二届农民丰收节于2019年9月23日在"
        "青山镇举行。全县高标准农田建设示范区设在青山镇，面积达1万亩。",
    ),
    (
        900,
        "县委书记王建国在会上作了题为《坚定信心 实干争先》的报告。会议通过了《关于加强基层治理的"
        "决定》。实施年轻干部队伍建设“433”工程，选拔一批优秀干部到基层一线锻炼。",
    ),
    (
        2400,
        "乍都節公園位於泰國的首都曼谷的乍都節縣，是一處公眾遊園地。公園面積約為0.304平方公里，"
        "園內有一座小型的火車博物館。",
    ),
]


def _idf(token: str) -> float:
    return 2.0


def _candidates() -> list[Candidate]:
    return [
        Candidate(text=text, offset=offset, score=1.0 - 0.1 * i, key=i)
        for i, (offset, text) in enumerate(PASSAGES)
    ]


def _check_offsets(found: Found) -> None:
    offset, text = PASSAGES[found.key]
    assert text[found.start - offset : found.end - offset] == found.text
    assert text[found.sentence_start - offset : found.sentence_end - offset] == found.sentence_text
    assert found.sentence_start <= found.start < found.end <= found.sentence_end
    assert 0.0 <= found.confidence <= 1.0


@pytest.fixture(scope="module")
def ranked() -> Answerer:
    ranker = load_span_ranker()
    assert ranker is not None, "the shipped span ranker must load"
    return Answerer(min_coverage=0.3, ranker=ranker)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("2019年全县地区生产总值是多少？", "320亿元"),
        ("第二届农民丰收节是什么时候举行的？", "2019年9月23日"),
        ("全县高标准农田建设示范区设在哪个镇？", "青山镇"),
        ("谁在会上作了报告？", "王建国"),
        ("年轻干部队伍建设工程叫什么？", "“433”工程"),
        ("會議通過了什麼決定？", "《关于加强基层治理的决定》"),
        ("乍都節公園位於哪個國家的首都？", "泰國"),
        ("乍都節公園內有一座什麼博物館？", "火車博物館"),
        ("乍都節公園的面積有多大？", "0.304平方公里"),
    ],
)
def test_ranker_answers_typical_questions(ranked: Answerer, question: str, answer: str) -> None:
    found = ranked.answer(question, _candidates(), _idf)
    assert found is not None and found.answerable
    _check_offsets(found)
    # the span holds the answer and little else
    assert answer in found.text or found.text in answer
    assert len(found.text) <= len(answer) + 4


def test_ranker_loads_once_and_ranks(ranked: Answerer) -> None:
    ranker = load_span_ranker()
    assert ranker is load_span_ranker()
    assert set(ranker.models) == {"sentence", "start", "end", "span"}
    assert ranker.table is not None and len(ranker.table.values) > 1000
    assert MODEL_PATH.stat().st_size < 5_000_000
    texts = [t for _, t in PASSAGES]
    choice = ranker.choose(
        "全县高标准农田建设示范区设在哪个镇？",
        _Terms(),
        texts,
        [1.0, 0.9, 0.8],
        _idf,
    )
    assert choice is not None
    s, e = choice.sentence
    a, b = choice.span
    assert s <= a < b <= e <= len(texts[choice.cand])
    assert math.isfinite(choice.score)


class _Terms:
    def coverage(self, text: str) -> float:
        return 1.0


def test_rules_without_ranker_and_refusal() -> None:
    rules = Answerer(min_coverage=0.3, ranker=None)
    found = rules.answer("2019年全县地区生产总值是多少？", _candidates(), _idf)
    assert found is not None and found.answerable
    _check_offsets(found)
    assert found.text == "320亿元"
    # the passages never mention a county head: declined, whichever way the span is chosen
    for answerer in (rules, Answerer(min_coverage=0.5)):
        missing = answerer.answer("本县的县长是谁？", _candidates(), _idf)
        assert missing is None or not missing.answerable
    assert rules.answer("什么？", _candidates(), _idf) is None


def test_training_script_runs_on_a_tiny_sample(tmp_path: Path) -> None:
    from scripts.train_span_ranker import main

    docs, questions = [], []
    facts = [
        ("青山镇", "人口", "3.2万人", "多少"),
        ("白水县", "面积", "1200平方公里", "多大"),
        ("红河村", "书记", "李明", "谁"),
        ("绿原乡", "特产", "“红心”猕猴桃", "什么"),
        ("东湖区", "成立时间", "1998年5月", "什么时候"),
        ("西山镇", "主导产业", "茶叶种植", "什么"),
    ]
    for i, (place, attr, value, wh) in enumerate(facts * 2):
        doc_id = f"{i}-1"
        docs.append(
            {
                "doc_id": doc_id,
                "title": place,
                "text": f"{place}位于山区。{place}的{attr}是{value}，近年来发展较快。",
            }
        )
        questions.append(
            {
                "qid": f"{i}-1-1",
                "question": f"{place}的{attr}是{wh}？",
                "answers": [value],
                "doc_id": doc_id,
            }
        )
    for name, rows in (("tiny.docs", docs), ("tiny.questions", questions)):
        (tmp_path / f"{name}.jsonl").write_text(
            "\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8"
        )
    out = tmp_path / "ranker.json.gz"
    args = ["--datasets", "tiny", "--qa-dir", str(tmp_path), "--out", str(out)]
    assert main([*args, "--folds", "2", "--rounds", "3"]) == 0
    ranker = SpanRanker.from_file(out)
    found = Answerer(min_coverage=0.0, ranker=ranker).answer(
        "青山镇的人口是多少？",
        [Candidate(docs[0]["text"], 0, 1.0, 0)],
        _idf,
    )
    assert found is not None
    assert docs[0]["text"][found.start : found.end] == found.text


def test_clause_answers_train_no_boundaries() -> None:
    from scripts.train_span_ranker import phrase_answers

    def phrase(*golds: str) -> bool:
        return phrase_answers({"golds": list(golds)})

    assert phrase("两种") and phrase("汉普郡、多塞特郡") and phrase("《宇宙奇兵》")
    # a thousands separator or a clock time is part of a number, not a clause break
    assert phrase("海拔200米至2,300米") and phrase("11:30") and phrase("3.5亿元")
    assert not phrase("一半以上病人在征状出现的首个小时内死亡。")
    assert not phrase("因盾柱木的柱头形状貌如盾形，故而得名")
    assert not phrase("Hillshire Brands, Inc")
    assert not phrase("四所", "共有四所；其中两所")  # every gold must be a phrase


def test_span_mode_comes_from_the_settings(tmp_path: Path) -> None:
    from service.config import Settings
    from service.core import Speeches

    assert Settings.model_fields["span_mode"].default == "hybrid"
    assert Answerer().ranker is load_span_ranker() is not None  # loaded once, on first use
    assert Answerer(spans="rules").ranker is None
    assert Answerer(spans="ranker").ranker is load_span_ranker()
    with pytest.raises(ValueError):
        Answerer(spans="model")  # type: ignore[arg-type]
    for mode in ("rules", "ranker", "hybrid"):
        settings = Settings(data_dir=tmp_path / mode, seed_dir=None, span_mode=mode)
        with Speeches(settings) as speeches:
            assert speeches._answerer is not None and speeches._answerer.spans == mode


# Speech sentences on which the ranker alone cuts quoted names short.
SPEECH = [
    (0, "要坚持“三个区分开来”，做到严管厚爱结合，健全容错纠错机制和干部考核评价机制。"),
    (80, "接续实施好美丽宜居村庄“593”工程，着力解决发展不平衡不充分的问题。"),
    (200, "用实绩来说话，实施年轻干部队伍建设“433”工程，选拔一批优秀干部。"),
]


class _Fixed:
    """A stand-in span ranker that always picks one span: (candidate, sentence, span, score)."""

    def __init__(self, cand: int, span: tuple[int, int], score: float) -> None:
        self.cand, self.span, self.score = cand, span, score

    def choose(self, question, terms, texts, scores, idf):  # type: ignore[no-untyped-def]
        from models.span_ranker import Choice

        text = texts[self.cand]
        return Choice(self.cand, (0, len(text)), self.span, 1.0, self.score, 3.0)


def _speech() -> list[Candidate]:
    return [Candidate(text, offset, 1.0 - 0.1 * i, i) for i, (offset, text) in enumerate(SPEECH)]


@pytest.mark.parametrize(
    ("question", "cand", "cut", "mended"),
    [
        ("干部管理要落实哪个“区分开来”？", 0, "三个区分", "“三个区分开来”"),  # inner edge
        ("美丽宜居村庄工程的编号是多少？", 1, "593", "“593”工程"),  # the name's noun
        ("年轻干部队伍建设工程叫什么？", 2, "433”工程", "“433”工程"),  # opening mark cut
    ],
)
def test_hybrid_keeps_quoted_names_whole(question: str, cand: int, cut: str, mended: str) -> None:
    text = SPEECH[cand][1]
    span = (text.index(cut), text.index(cut) + len(cut))
    ranker = _Fixed(cand, span, score=2.5)
    alone = Answerer(min_coverage=0.0, spans="ranker", ranker=ranker)
    found = alone.answer(question, _speech(), _idf)
    assert found is not None and found.text == cut
    hybrid = Answerer(min_coverage=0.0, spans="hybrid", ranker=ranker)
    found = hybrid.answer(question, _speech(), _idf)
    assert found is not None and found.text == mended
    assert found.span_score == 2.5  # still the ranker's span
    offset = SPEECH[cand][0]
    assert text[found.start - offset : found.end - offset] == found.text
    assert found.sentence_start <= found.start < found.end <= found.sentence_end


def test_hybrid_takes_the_rules_quoted_name_when_the_ranker_is_unsure() -> None:
    question = "年轻干部队伍建设工程叫什么？"
    text = SPEECH[0][1]
    wrong = (text.index("严管"), text.index("严管") + 6)
    unsure, sure = RULES_BELOW_SPAN_SCORE - 0.25, RULES_BELOW_SPAN_SCORE + 2.0
    for score, expected in ((unsure, "“433”工程"), (sure, text[wrong[0] : wrong[1]])):
        hybrid = Answerer(min_coverage=0.0, ranker=_Fixed(0, wrong, score))
        found = hybrid.answer(question, _speech(), _idf)
        assert found is not None and found.text == expected
    # the rules found no quoted name: the unsure ranker keeps its span
    found = Answerer(min_coverage=0.0, ranker=_Fixed(0, wrong, unsure)).answer(
        "要做到什么结合？", _speech(), _idf
    )
    assert found is not None and found.text == text[wrong[0] : wrong[1]]


def test_hybrid_prefers_a_quoted_name_inside_the_rankers_longer_span() -> None:
    question = "年轻干部队伍建设工程叫什么？"
    text = SPEECH[2][1]
    clause = (text.index("实施"), text.index("，选拔"))  # the whole clause around the name
    confident = _Fixed(2, clause, score=2.5)
    alone = Answerer(min_coverage=0.0, spans="ranker", ranker=confident)
    found = alone.answer(question, _speech(), _idf)
    assert found is not None and found.text == "实施年轻干部队伍建设“433”工程"
    found = Answerer(min_coverage=0.0, ranker=confident).answer(question, _speech(), _idf)
    assert found is not None and found.text == "“433”工程"
    offset = SPEECH[2][0]
    assert text[found.start - offset : found.end - offset] == found.text


def test_hybrid_answers_a_designation_with_its_noun() -> None:
    text = (
        "党的二十大擘画了中国式现代化的宏伟蓝图，是全面建设社会主义现代化国家、"
        "全面推进中华民族伟大复兴的政治宣言和行动纲领。"
    )
    cands = [Candidate(text, 40, 1.0, 0)]
    other = (text.index("中国式"), text.index("，是"))  # the first clause's object
    designation = "全面建设社会主义现代化国家、全面推进中华民族伟大复兴的政治宣言和行动纲领"
    question = "党的二十大被定位为什么样的政治宣言和行动纲领？"
    # however sure the ranker is of a span without the designation's noun, the rules' wins
    for score in (RULES_BELOW_SPAN_SCORE - 0.25, RULES_BELOW_SPAN_SCORE + 2.0):
        found = Answerer(min_coverage=0.0, ranker=_Fixed(0, other, score)).answer(
            question, cands, _idf
        )
        assert found is not None and found.text == designation
        assert text[found.start - 40 : found.end - 40] == found.text
    # a short X is a category word (什么样的蓝图): the ranker's modifier stands
    found = Answerer(min_coverage=0.0, ranker=_Fixed(0, other, 2.5)).answer(
        "党的二十大擘画了什么样的蓝图？", cands, _idf
    )
    assert found is not None and found.text == "中国式现代化的宏伟蓝图"


def test_hybrid_never_answers_with_the_quoted_name_the_question_says() -> None:
    texts = [
        "让我们坚定信心、埋头苦干，为建设“五个强县”“六个强县”，作出新的更大贡献！",
        "我们要奋力建设“一城五区”，为建设“五个强县”、建设现代化强省贡献更多力量。",
    ]
    cands = [Candidate(t, 100 * i, 1.0 - 0.1 * i, i) for i, t in enumerate(texts)]
    cut = "五个强县”、建设现代化强省"
    confident = _Fixed(1, (texts[1].index(cut), texts[1].index(cut) + len(cut)), score=2.5)
    hybrid = Answerer(min_coverage=0.0, ranker=confident)
    # The question names “五个强县” itself: the answer is the other name, found by the rules.
    found = hybrid.answer("会议号召要建设“五个强县”和什么？", cands, _idf)
    assert found is not None and (found.text, found.start) == ("“六个强县”", 22)
    # Asked without naming it, the confident ranker's span stands (its quote made whole).
    found = hybrid.answer("会议号召要建设什么？", cands, _idf)
    assert found is not None and found.text == "“五个强县”、建设现代化强省"
