"""Question analysis and the rule-based span finder (the fallback answerer and one of the span
ranker's features), and the span ranker's question and sentence views."""

from __future__ import annotations

import numpy as np
import pytest

from models.span_ranker import (
    BOUNDARY_FEATURES,
    SPAN_MODEL_FEATURES,
    CharTable,
    QuestionView,
    boundary_features,
    candidate_pairs,
    normalize_chars,
    sentence_view,
    simplified_chars,
    span_matrix,
)
from models.spans import analyse, extract, mend, opens_with_asked_name, starts_quoted


@pytest.mark.parametrize(
    ("question", "kind", "wh"),
    [
        ("2019年全县地区生产总值是多少？", "number", "多少"),
        ("全县共有几所高中？", "number", "几"),
        # a measure asked by 多 + adjective: speed, depth, width, thickness, weight
        ("最后飞机以多快的速度冲出了跑道的防护堤？", "number", "多快"),
        ("这条河有多深？", "number", "多深"),
        ("椰子猫平均有多重？", "number", "有多重"),
        # 多重 alone is "multiple", not a question word
        ("哪些国家承认多重国籍？", "what", "哪些"),
        ("第二届比赛什么时候举行的？", "date", "什么时候"),
        ("佩內塔在哪一年跻身世界前十？", "date", "哪一年"),
        # 何年 (formal: 于何年) asks for a year; a century or decade is a date as well
        ("文化大革命於何年爆發?", "date", "何年"),
        ("素可泰王國是在哪一個世紀時建立的?", "date", "哪一個"),
        ("校园民歌在哪个年代成为主流？", "date", "哪个"),
        # an era's name is not a date
        ("恆星已經在什麼時期被中國人認知到？", "what", "什麼"),
        ("這部小說是誰創作的？", "person", "誰"),
        ("全县高标准农田建设在哪个镇？", "place", "哪个"),
        ("首屆比賽在哪裡舉行？", "place", "哪裡"),
        ("年轻干部队伍建设工程叫什么？", "name", "什么"),
        ("全市唯一的县级方舱医院建设情况如何？", "how", "如何"),
        ("為何新北市被稱為全國最大票倉？", "how", "為何"),
        ("会议通过了什么文件？", "what", "什么"),
    ],
)
def test_question_kind_and_wh_word(question: str, kind: str, wh: str) -> None:
    parsed = analyse(question)
    assert (parsed.kind, parsed.wh) == (kind, wh)
    assert parsed.left + parsed.wh + parsed.right == parsed.text


@pytest.mark.parametrize(
    ("question", "sentence", "answer"),
    [
        # the question's own number (2019年) is not the answer
        (
            "2019年全县地区生产总值是多少？",
            "2019年，全县地区生产总值达到320亿元，同比增长6.5%。",
            "320亿元",
        ),
        # a date is one span, a range of dates too; 第二届 is the question's
        (
            "第二届比赛什么时候举行的？",
            "第二届比赛于2009年9月27日至10月9日举行。",
            "2009年9月27日至10月9日",
        ),
        (
            "年轻干部队伍建设工程叫什么？",
            "实施年轻干部队伍建设“433”工程，选拔一批优秀干部。",
            "“433”工程",
        ),
        ("全县高标准农田建设在哪个镇？", "全县高标准农田建设示范区设在**镇，面积达1万亩。", "**镇"),
        (
            "会议通过了什么文件？",
            "会议通过了《关于加强基层治理的决定》。",
            "《关于加强基层治理的决定》",
        ),
        (
            "组织的“大算盘”与个人的什么相对？",
            "要算组织的“大算盘”，不算个人的“小算盘”。",
            "“小算盘”",
        ),
    ],
)
def test_rule_spans_by_question_type(question: str, sentence: str, answer: str) -> None:
    span = extract(analyse(question), sentence)
    assert span is not None
    assert sentence[span[0] : span[1]] == answer


def test_normalize_chars_keeps_offsets() -> None:
    text = "ＡＢＣ１２３，“好”㎡﹏"
    norm = normalize_chars(text)
    assert len(norm) == len(text)
    assert norm.startswith("abc123,")
    assert len(simplified_chars("臺灣的經濟發展")) == len("臺灣的經濟發展")
    assert simplified_chars("臺灣的經濟發展") == "台湾的经济发展"


def test_question_view_parts() -> None:
    qv = QuestionView.of("哪一場革命於1917年在俄羅斯爆發?")
    assert qv.head == "革命"
    assert qv.left == ""
    qv = QuestionView.of("若游戏中离，则多少分钟内不得进行配对？")
    assert qv.unit == "分"
    assert qv.left_core.endswith("则")
    qv = QuestionView.of("公路在中國是由什麼單位負責的？")
    assert qv.left_core == "公路在中國"
    assert qv.right_core.startswith("單位")


def test_boundary_and_span_rows_line_up() -> None:
    qv = QuestionView.of("公路在中國是由什麼單位負責的？")
    sentence = "在中國，公路是由交通運輸部來管理的，城市道路由建設部門來管理。"
    table = CharTable.build([(0, simplified_chars(sentence), [(8, 13)])], min_count=1)
    view = sentence_view(qv, sentence, normalize_chars(sentence), table)
    rows = boundary_features(qv, view, 1.0, 0)
    assert rows.shape == (len(sentence) + 1, len(BOUNDARY_FEATURES))
    assert np.isfinite(rows).all()
    left_hits = BOUNDARY_FEATURES.index("left_hits_before_4")
    # "公路是由" stands right before the answer: the question's left part, repeated
    assert rows[8, left_hits] >= 2
    assert rows[8, left_hits] > rows[22, left_hits]  # "城市道路由" before the wrong phrase
    starts = np.zeros(len(sentence) + 1)
    ends = np.zeros(len(sentence) + 1)
    starts[8], ends[13] = 5.0, 5.0
    pairs = candidate_pairs(starts, ends, sentence, k=4)
    assert (8, 13) in pairs
    assert all(0 <= i < j <= len(sentence) for i, j in pairs)
    # spans never start or end on punctuation
    assert all(sentence[i] not in "，。" and sentence[j - 1] not in "，。" for i, j in pairs)
    matrix = span_matrix(qv, view, pairs, rows, starts, ends, 1.0, 0)
    assert matrix.shape == (len(pairs), len(SPAN_MODEL_FEATURES))
    assert np.isfinite(matrix).all()


def test_char_table_favours_answer_characters() -> None:
    samples = [(2, "全县生产总值达到320亿元", [(8, 13)])] * 3 + [
        (3, "由作家老舍创作", [(3, 5)])
    ] * 3
    table = CharTable.build(samples, min_count=1)
    number_kind = 2
    odds = table.lookup("亿生", number_kind)
    assert odds[0] > 0 > odds[1]
    restored = CharTable.from_json(table.to_json())
    assert restored == table


@pytest.mark.parametrize(
    ("question", "sentence", "cut", "mended"),
    [
        # a cut through the quote marks, or a short name cut at its inner edge: the whole name
        (
            "招商引资要牢树什么导向？",
            "必须牢树“两个不能”导向，确保落地。",
            "“两个不能",
            "“两个不能”",
        ),
        ("干部要落实什么？", "落实“三个区分开来”，健全机制。", "三个区分", "“三个区分开来”"),
        (
            "会议通过了什么？",
            "会议通过了《关于加强基层治理的决定》。",
            "关于加强基层治理的决定》",
            "《关于加强基层治理的决定》",
        ),
        # a name or number question keeps the noun it names the name by
        (
            "美丽宜居村庄工程的编号是多少？",
            "实施好美丽宜居村庄“593”工程，着力解决问题。",
            "593",
            "“593”工程",
        ),
        (
            "年轻干部队伍建设工程叫什么？",
            "实施年轻干部队伍建设“433”工程，选拔干部。",
            "433”工程",
            "“433”工程",
        ),
        # a word inside a long quotation, not at its edge, stays as it is
        (
            "他们拒绝对什么的依赖？",
            "口号是「拒绝对石油的依赖，并且赞颂我们身体的力量」。",
            "石油",
            "石油",
        ),
        # what follows the question word is not the name's noun (…而闻名)
        ("桃花源小厨以什么而闻名？", "以「太史五蛇羹」而闻名。", "太史五蛇羹」", "「太史五蛇羹」"),
        # an ASCII quote cannot tell opening from closing: left alone
        (
            '"P. tuckeri"的体长有多大？',
            '"P. tuckeri"的体长约13公尺，大于"A"。',
            "约13公尺",
            "约13公尺",
        ),
    ],
)
def test_mend_keeps_quoted_names_whole(question: str, sentence: str, cut: str, mended: str) -> None:
    start = sentence.index(cut)
    a, b = mend(analyse(question), sentence, start, start + len(cut))
    assert sentence[a:b] == mended
    assert a <= start and start + len(cut) <= b


@pytest.mark.parametrize(
    ("question", "sentence", "cut", "mended"),
    [
        # the era a year is counted in
        ("汕頭在民國幾年時被攻陷?", "汕頭於民國28年被日軍攻陷。", "28年", "民國28年"),
        ("秦朝在哪一年统一六国？", "秦于公元前221年统一六国。", "221年", "公元前221年"),
        # 第 when the question asks 第幾
        ("工人最多的是長崎縣第幾區?", "工人最多的是第1區。", "1區", "第1區"),
        # the unit or measure word right after the last digit
        ("庫頁島的湖泊超過多少個?", "島上的湖泊超過1600個。", "1600", "1600個"),
        ("插秧的株距大約多長?", "插秧時株距約20㎝為宜。", "20", "20㎝"),
        ("这艘船为多少吨级?", "可以直航的船为5000吨级。", "5000", "5000吨级"),
        ("耶穌在十字架上被折磨了多久?", "耶穌在十字架上被折磨了6個小時。", "6個", "6個小時"),
        # the rest of a fraction
        ("普魯士約有多少百分比的土地?", "普魯士約佔五分之四的土地。", "五分", "五分之四"),
        # 前 when the question asks how long ago
        ("有性生殖在多久以前出現?", "有性生殖在十億年前已經出現。", "十億年", "十億年前"),
        # a year restated in brackets
        (
            "李日华生于哪一年？",
            "李日华生于明嘉靖四十四年（1565年），浙江人。",
            "明嘉靖四十四年",
            "明嘉靖四十四年（1565年）",
        ),
        # the stretch or part of the time a date names
        (
            "郵票在何時開始變成宣傳的工具?",
            "郵票在一次大戰期間成為宣傳工具。",
            "一次大戰",
            "一次大戰期間",
        ),
        ("山脈什麼時候開始隆起?", "山脈自白堊紀中期開始隆起。", "白堊紀", "白堊紀中期"),
        (
            "基礎是在何時打下的?",
            "基礎在民國十八年至二十六年間打下。",
            "民國十八年至二十六年",
            "民國十八年至二十六年間",
        ),
        # but not 前 for a date question, nor 第 when the question does not ask 第幾
        (
            "在哪一年之前居住的居民屬於原居民?",
            "1898年以前居住的居民屬於原居民。",
            "1898年",
            "1898年",
        ),
        ("他的排名是多少?", "他的排名是第3，落後兩名。", "3", "3"),
    ],
)
def test_mend_keeps_what_belongs_to_a_number(
    question: str, sentence: str, cut: str, mended: str
) -> None:
    assert _mended(question, sentence, cut) == mended


def _mended(question: str, sentence: str, cut: str) -> str:
    start = sentence.index(cut)
    a, b = mend(analyse(question), sentence, start, start + len(cut))
    return sentence[a:b]


SPEECH_DESIGNATION = "是全面建设社会主义现代化国家、全面推进中华民族伟大复兴的政治宣言和行动纲领。"


@pytest.mark.parametrize(
    ("question", "sentence", "cut", "mended"),
    [
        # a long X is a designation: the answer keeps it, whether or not the cut kept 的
        (
            "党的二十大被定位为什么样的政治宣言和行动纲领？",
            SPEECH_DESIGNATION,
            "中华民族伟大复兴",
            "中华民族伟大复兴的政治宣言和行动纲领",
        ),
        (
            "党的二十大被定位为什么样的政治宣言和行动纲领？",
            SPEECH_DESIGNATION,
            "中华民族伟大复兴的",
            "中华民族伟大复兴的政治宣言和行动纲领",
        ),
        # a short X is a category word: the modifier answers
        ("成人罪犯有著什麼樣的原因?", "成人罪犯有著性犯罪的原因。", "性犯罪", "性犯罪"),
        # not a 什么样的 question, or X not right after the span: left alone
        (
            "党的二十大被定位为政治宣言和行动纲领吗？",
            SPEECH_DESIGNATION,
            "中华民族伟大复兴",
            "中华民族伟大复兴",
        ),
        (
            "党的二十大被定位为什么样的政治宣言和行动纲领？",
            SPEECH_DESIGNATION,
            "全面推进",
            "全面推进",
        ),
    ],
)
def test_mend_keeps_the_designation_asked_for(
    question: str, sentence: str, cut: str, mended: str
) -> None:
    assert _mended(question, sentence, cut) == mended


def test_starts_quoted() -> None:
    assert starts_quoted("“433”工程") and starts_quoted("《决定》") and starts_quoted("「名」")
    assert not starts_quoted("433”工程") and not starts_quoted("“未完") and not starts_quoted('"x"')


@pytest.mark.parametrize(
    ("text", "question", "says_it"),
    [
        ("“五个**”、建设现代化强省", "会议号召要建设“五个**”和什么？", True),
        ("“五个**”、建设现代化强省", "会议号召要建设五个**和什么？", True),  # quotes or not
        ("“六个**”", "会议号召要建设“五个**”和什么？", False),
        ("建设“五个**”", "会议号召要建设“五个**”和什么？", False),  # does not open with it
        ("「韓」和「朝鮮」", "英文使用哪一單字來表示韓國？", False),  # one character says little
    ],
)
def test_opens_with_asked_name(text: str, question: str, says_it: bool) -> None:
    assert opens_with_asked_name(text, question) is says_it
