"""Tests of service.outline: the outline of seeds, corpus reports and edge cases."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from service.outline import (
    Outline,
    Paragraph,
    Passage,
    Section,
    parse_outline,
    section_to_dict,
)

ROOT = Path(__file__).resolve().parents[2]
SEED_000 = ROOT / "seeds" / "000_813e047d2b65814d.txt"
SEED_002 = ROOT / "seeds" / "002_5eb3c298e8b76e29.txt"
CORPUS = Path("/work/shared/eval/corpus/cn_gov_reports.jsonl")

CN_DUN = re.compile(r"[一二三四五六七八九十]+、")
BLANK = re.compile(r"[\s\u200b\u200c\u200d\u2060\ufeff]*")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def seed000() -> tuple[str, Outline]:
    text = _read(SEED_000)
    return text, parse_outline(text)


@pytest.fixture(scope="module")
def seed002() -> tuple[str, Outline]:
    text = _read(SEED_002)
    return text, parse_outline(text)


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[str, Outline]]:
    if not CORPUS.exists():
        pytest.fail(f"corpus not available: {CORPUS}: ../shared must stand beside the checkout")
    docs = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line]
    return {d["id"]: (d["text"], parse_outline(d["text"])) for d in docs}


def _line(text: str, number: int) -> str:
    return text.split("\n")[number - 1].strip()


def _numbered(outline: Outline) -> list[Section]:
    return [s for s in outline.sections if s.kind == "numbered"]


def _innermost(outline: Outline, paragraph: int) -> Section:
    found = None
    for section in outline.walk():
        if section.paragraphs[0] <= paragraph <= section.paragraphs[1]:
            found = section  # walk is depth first, so the last hit is the innermost
    assert found is not None, f"paragraph {paragraph} is in no section"
    return found


def check_invariants(text: str, outline: Outline, max_chars: int = 400) -> None:
    """Every structural promise of parse_outline, checked on one parsed text."""
    lines = text.split("\n")
    # Paragraphs: every non-blank source line, numbered by line, offsets trimmed.
    expected = [n for n, line in enumerate(lines, 1) if not BLANK.fullmatch(line)]
    assert [p.number for p in outline.paragraphs] == expected
    for p in outline.paragraphs:
        content = text[p.start : p.end]
        assert content and content == content.strip()
        assert content in lines[p.number - 1]
    if not outline.paragraphs:
        assert outline.sections == outline.sentences == outline.passages == ()
        return

    # Top level sections cover every paragraph, contiguously and in order.
    numbers = [p.number for p in outline.paragraphs]
    index = {n: i for i, n in enumerate(numbers)}
    cursor = 0
    for section in outline.sections:
        assert section.level == 1
        first, last = section.paragraphs
        assert index[first] == cursor
        cursor = index[last] + 1
    assert cursor == len(numbers)
    kinds = [s.kind for s in outline.sections]
    assert kinds.count("preamble") <= 1 and kinds.count("closing") <= 1
    if "body" in kinds:
        assert kinds == ["body"]
    else:
        assert "numbered" in kinds
        assert kinds[0] in ("preamble", "numbered") and kinds[-1] in ("closing", "numbered")
        assert all(k == "numbered" for k in kinds[1:-1])

    by_number = {p.number: p for p in outline.paragraphs}
    ids = [s.id for s in outline.walk()]
    assert len(ids) == len(set(ids))

    def check(section: Section, prefix: str, level: int, position: int) -> None:
        if section.kind == "numbered":
            assert section.id == f"{prefix}{position}"
            assert section.number is not None and section.marker
            assert section.heading is not None
            hs, he = section.heading
            heading = text[hs:he]
            assert heading.startswith(section.marker)
            assert hs == section.start == by_number[section.paragraphs[0]].start
            assert he <= by_number[section.paragraphs[0]].end
            assert section.title and len(section.title) <= 80
            assert section.title in heading or section.title == section.marker.rstrip("，、：,:")
        else:
            assert section.id == section.kind and level == 1
            assert section.number is None and section.marker is None and section.heading is None
        assert section.level == level
        assert section.start == by_number[section.paragraphs[0]].start
        assert section.end == by_number[section.paragraphs[1]].end
        assert text[section.start : section.end] == text[section.start : section.end].strip()
        previous_end = by_number[section.paragraphs[0]].end
        for n, child in enumerate(section.children, 1):
            assert section.start < child.start and child.end <= section.end
            assert child.start > previous_end  # in order, not overlapping
            previous_end = child.end
            check(child, f"{section.id}.", level + 1, n)

    numbered = 0
    for section in outline.sections:
        if section.kind == "numbered":
            numbered += 1
        check(section, "", 1, numbered)

    # Sentences: in order, inside their paragraph, in its innermost section, never cut at ，.
    innermost = {p.number: _innermost(outline, p.number).id for p in outline.paragraphs}
    headings = {s.heading for s in outline.walk() if s.heading is not None}
    previous = -1
    for sentence in outline.sentences:
        p = by_number[sentence.paragraph]
        assert p.start <= sentence.start < sentence.end <= p.end
        assert sentence.start >= previous
        previous = sentence.end
        assert sentence.section_id == innermost[sentence.paragraph]
        piece = text[sentence.start : sentence.end]
        assert piece == piece.strip() and "\n" not in piece
        if sentence.end < p.end:  # only a line's last piece may lack a stop (source as is)
            assert re.search(r"[。！？；!?;…][”’」』》）)\]\"']*$", piece), piece
        in_heading = any(hs <= sentence.start and sentence.end <= he for hs, he in headings)
        assert sentence.topic == in_heading

    # Passages: whole sentences of one paragraph, within the limit, covering every sentence.
    starts = {s.start for s in outline.sentences}
    ends = {s.end for s in outline.sentences}
    by_paragraph: dict[int, list[Passage]] = {}
    previous = -1
    for passage in outline.passages:
        p = by_number[passage.paragraph]
        assert p.start <= passage.start < passage.end <= p.end
        assert passage.start >= previous
        previous = passage.end
        assert passage.end - passage.start <= max_chars
        assert passage.section_id == innermost[passage.paragraph]
        if all(s.end - s.start <= max_chars for s in outline.sentences):
            assert passage.start in starts and passage.end in ends
        by_paragraph.setdefault(passage.paragraph, []).append(passage)
    for sentence in outline.sentences:
        passages = by_paragraph[sentence.paragraph]
        assert passages[0].start <= sentence.start and sentence.end <= passages[-1].end


# --- seed 000: 一、 top level, 第一， and （一） inside ------------------------------------------


def test_seed000_top_level(seed000: tuple[str, Outline]) -> None:
    text, outline = seed000
    assert [s.id for s in outline.sections] == ["preamble", "1", "2", "3"]
    preamble = outline.sections[0]
    assert preamble.kind == "preamble" and preamble.paragraphs == (1, 1)
    assert preamble.title == "县委十二届三次全会"
    numbered = _numbered(outline)
    assert [s.marker for s in numbered] == ["一、", "二、", "三、"]
    assert [s.number for s in numbered] == [1, 2, 3]
    assert [s.paragraphs for s in numbered] == [(2, 6), (7, 15), (16, 21)]
    for section, line in zip(numbered, (2, 7, 16), strict=True):
        # A heading on its own line: the title is the line as written, without the marker.
        assert section.title == _line(text, line)[2:]
        assert text[section.heading[0] : section.heading[1]] == _line(text, line)
    assert numbered[0].title.endswith("新激情")
    assert outline.find("closing") is None  # the last paragraph is a numbered point


def test_seed000_children(seed000: tuple[str, Outline]) -> None:
    text, outline = seed000
    first, second, third = _numbered(outline)
    assert [c.marker for c in first.children] == ["第一，", "第二，", "第三，"]
    assert [c.id for c in first.children] == ["1.1", "1.2", "1.3"]
    assert [c.paragraphs for c in first.children] == [(4, 4), (5, 5), (6, 6)]
    # The 要 after 第一， is part of the title, and a title is the first sentence's opening.
    assert [c.title for c in first.children] == [
        "要在全面把握上下足功夫",
        "在全面学习上下足功夫",
        "在全面落实上下足功夫",
    ]
    assert [c.marker for c in second.children] == ["（一）", "（二）", "（三）", "（四）", "（五）"]
    assert [c.marker for c in third.children] == ["（一）", "（二）", "（三）", "（四）", "（五）"]
    assert second.children[0].title == "着力加快招商选资上项目步伐"
    assert third.children[2].title == "夯实“马上就办、真抓实干”干部作风纪律保障"
    heading = second.children[0].heading
    assert text[heading[0] : heading[1]] == "（一）着力加快招商选资上项目步伐。"
    assert all(c.level == 2 and not c.children for s in (first, second, third) for c in s.children)
    assert outline.find("2.5").paragraphs == (15, 15)
    # Paragraphs 8-10 have no marker: they belong to 二、 itself, not to a child.
    assert {s.section_id for s in outline.sentences if s.paragraph in (8, 9, 10)} == {"2"}


def test_seed000_invariants(seed000: tuple[str, Outline]) -> None:
    check_invariants(*seed000)


# --- seed 002: 第一， top level, 一要 / 一是 inside, a closing ---------------------------------


def test_seed002_outline(seed002: tuple[str, Outline]) -> None:
    text, outline = seed002
    assert [s.id for s in outline.sections] == ["preamble", "1", "2", "3", "4", "5", "closing"]
    preamble = outline.sections[0]
    assert preamble.paragraphs == (1, 5)
    assert text[preamble.start :].startswith("同志们：")
    # "同志们：" says nothing; the title comes from the next sentence (its first clause).
    assert preamble.title == "这次会议坚持以习近平新时代中国特色社会主义思想为指导"
    numbered = _numbered(outline)
    assert [s.marker for s in numbered] == ["第一，", "第二，", "第三，", "第四，", "第五，"]
    assert [s.title for s in numbered] == [
        "牢记领袖嘱托，紧跟核心奋斗",
        "认清历史方位，把准前行方向",
        "赓续红色血脉，弘扬优良作风",
        "砥砺奋进向前，携手筑梦前行",
        "勇于自我革命，永葆政治本色",
    ]
    assert [s.paragraphs for s in numbered] == [(6, 9), (10, 13), (14, 17), (18, 21), (22, 27)]
    assert [len(s.children) for s in numbered] == [3, 3, 3, 3, 5]
    assert [c.marker for c in numbered[0].children] == ["一要", "二要", "三要"]
    assert [c.marker for c in numbered[3].children] == ["一是", "二是", "三是"]
    assert [c.marker for c in numbered[4].children] == ["一要", "二要", "三要", "四要", "五要"]
    assert numbered[0].children[0].title == "永葆绝对忠诚的政治本色"
    assert numbered[3].children[0].title == "全县上下要坚定站在一起"
    assert outline.find("5.5").paragraphs == (27, 27)
    closing = outline.sections[-1]
    assert closing.kind == "closing" and closing.paragraphs == (28, 28)
    assert closing.title == "新征程扬帆启航，新使命重任在肩"
    assert text[closing.start : closing.end] == _line(text, 28)


def test_seed002_invariants(seed002: tuple[str, Outline]) -> None:
    check_invariants(*seed002)


def test_seed002_long_paragraph_passages(seed002: tuple[str, Outline]) -> None:
    _, outline = seed002
    line4 = next(p for p in outline.paragraphs if p.number == 4)
    assert line4.end - line4.start == 3037
    passages = [q for q in outline.passages if q.paragraph == 4]
    assert len(passages) >= 8
    sentences = [s for s in outline.sentences if s.paragraph == 4]
    starts = {s.start for s in sentences}
    ends = {s.end for s in sentences}
    for passage in passages:
        assert passage.end - passage.start <= 400
        assert passage.start in starts and passage.end in ends  # whole sentences only
        assert passage.section_id == "preamble"
    assert passages[0].start == line4.start and passages[-1].end == line4.end


def test_seed002_topic_sentences(seed002: tuple[str, Outline]) -> None:
    text, outline = seed002
    topics = [s for s in outline.sentences if s.topic]
    numbered = [s for s in outline.walk() if s.kind == "numbered"]
    assert len(topics) == len(numbered) == 22
    assert [(t.start, t.end) for t in topics] == [s.heading for s in numbered]
    assert text[topics[0].start : topics[0].end].startswith("第一，牢记领袖嘱托")
    assert text[topics[1].start : topics[1].end] == "一要永葆绝对忠诚的政治本色。"
    assert all(t.section_id == s.id for t, s in zip(topics, numbered, strict=True))


def test_sentences_split_at_stops_not_commas(seed002: tuple[str, Outline]) -> None:
    text, outline = seed002
    for p in outline.paragraphs:
        pieces = [text[s.start : s.end] for s in outline.sentences if s.paragraph == p.number]
        assert "".join(pieces) == text[p.start : p.end].replace(" ", "").replace("\u3000", "")
        for piece in pieces[:-1]:
            assert re.search(r"[。！？；!?;…][”’」』》）)]*$", piece), piece


@pytest.mark.parametrize("limit", [30, 120, 1000])
def test_passage_limit(seed000: tuple[str, Outline], limit: int) -> None:
    text, _ = seed000
    outline = parse_outline(text, max_passage_chars=limit)
    check_invariants(text, outline, limit)
    assert all(q.end - q.start <= limit for q in outline.passages)


def test_bad_passage_limit() -> None:
    with pytest.raises(ValueError):
        parse_outline("一、标题", max_passage_chars=0)


# --- other shapes of text --------------------------------------------------------------------


def test_plain_prose_is_one_body_section() -> None:
    text = "今天天气很好，我们去公园散步。\n\n公园里人很多，大家都很开心！\n"
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert len(outline.sections) == 1
    body = outline.sections[0]
    assert (body.id, body.kind, body.number, body.level) == ("body", "body", None, 1)
    assert body.paragraphs == (1, 3) and body.title == "今天天气很好，我们去公园散步"
    assert (body.start, body.end) == (0, len(text.rstrip()))
    assert [s.section_id for s in outline.sentences] == ["body", "body"]
    assert not any(s.topic for s in outline.sentences)


def test_markdown_headings() -> None:
    text = (
        "# 总标题\n\n引言。\n\n## 背景 ##\n\n背景内容。\n\n### 细节\n\n细节内容。\n\n"
        "## 目标\n\n1. 第一点。说明。\n2. 第二点\n\n# 附录\n\n附录内容。"
    )
    outline = parse_outline(text)
    check_invariants(text, outline)
    tree = [(s.id, s.marker, s.title, s.level) for s in outline.walk()]
    assert tree == [
        ("1", "#", "总标题", 1),
        ("1.1", "##", "背景", 2),
        ("1.1.1", "###", "细节", 3),
        ("1.2", "##", "目标", 2),
        ("1.2.1", "1.", "第一点", 3),
        ("1.2.2", "2.", "第二点", 3),
        ("2", "#", "附录", 1),
    ]
    assert outline.find("1.1").heading == (text.index("## 背景"), text.index("## 背景") + 8)
    # "1." would be a sentence of its own (a full stop before a space); it stays with its point.
    point = next(s for s in outline.sentences if s.section_id == "1.2.1" and s.topic)
    assert text[point.start : point.end] == "1. 第一点。"


def test_markdown_deeper_heading_first_then_shallower() -> None:
    text = "## 甲\n\n内容一。\n\n# 乙\n\n内容二。"
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert [(s.id, s.title) for s in outline.walk()] == [("1", "甲"), ("2", "乙")]


def test_arabic_numbering() -> None:
    text = (
        "会议要求如下。\n"
        "1. 加强学习\n（1）学习文件。认真研读。\n（2）学习讲话。\n"
        "2．狠抓落实。各单位要抓好落实。\n（1）明确责任。\n"
        "3、强化督查。\n1.5亿元资金要用好。\n"
    )
    outline = parse_outline(text)
    check_invariants(text, outline)
    tree = [(s.id, s.marker, s.title) for s in outline.walk()]
    assert tree == [
        ("preamble", None, "会议要求如下"),
        ("1", "1.", "加强学习"),
        ("1.1", "（1）", "学习文件"),
        ("1.2", "（2）", "学习讲话"),
        ("2", "2．", "狠抓落实"),
        ("2.1", "（1）", "明确责任"),
        ("3", "3、", "强化督查"),
    ]
    # "1.5亿元" is a number, not a fourth point, and stays in point 3.
    assert outline.find("3").paragraphs == (7, 8)


def test_inline_enumeration_is_not_a_section() -> None:
    text = (
        "一、总体要求\n"
        "今年要抓好三件事：一是稳增长；二是促改革；三是惠民生。\n"
        "二、重点任务\n"
        "要做到两个坚持，一是坚持稳中求进，二是坚持改革创新。"
    )
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert [(s.id, s.title) for s in outline.walk()] == [("1", "总体要求"), ("2", "重点任务")]


def test_out_of_sequence_point_is_text() -> None:
    text = (
        "第一，加强领导。各级要重视。\n"
        "三是强化保障。这一段前面没有一是和二是。\n"
        "第二，狠抓落实。\n"
        "一是明确责任。\n二是严格考核。\n四是跳过了三是。\n"
    )
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert [(s.id, s.marker) for s in outline.walk()] == [
        ("1", "第一，"),
        ("2", "第二，"),
        ("2.1", "一是"),
        ("2.2", "二是"),
    ]
    assert outline.find("1").paragraphs == (1, 2)
    assert outline.find("2.2").paragraphs == (5, 6)


def test_points_keep_their_verb() -> None:
    # 一要 … 三要 is not continued by a later, unrelated 四是.
    text = (
        "（一）收入分配\n一要提高。\n二要规范。\n三要调节。\n"
        "房地产：一是供给。\n二是需求。\n三是监管。\n四是秩序。"
    )
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert [c.marker for c in outline.find("1").children] == ["一要", "二要", "三要"]
    assert outline.find("1.3").paragraphs == (4, 8)


def test_restarted_list_does_not_continue_the_outline() -> None:
    # A list restarting at 一、 inside 二、 is text; its 三、 is not the speech's third part.
    text = (
        "一、回顾\n过去一年成绩很大。\n"
        "二、任务\n"
        "一、增加投资，加强基础设施建设。\n二、控制消费，压缩一般支出。\n"
        "三、把资金用于技术改造，提高效益。\n"
        "三、保障措施\n各地要抓好落实。"
    )
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert [(s.id, s.title, s.paragraphs) for s in outline.sections] == [
        ("1", "回顾", (1, 2)),
        ("2", "任务", (3, 6)),
        ("3", "保障措施", (7, 8)),
    ]
    # When both could go on, a heading line styled like the open sequence's heading continues it.
    text = "一、回顾\n主要是：\n一、第一条措施要落实。\n二、总结\n内容。"
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert [(s.title, s.paragraphs) for s in outline.sections] == [
        ("回顾", (1, 3)),
        ("总结", (4, 5)),
    ]


def test_enumeration_like_line_is_not_a_heading() -> None:
    text = "一、总体情况\n一、二年级学生要减轻负担。\n二、教育改革\n三、四年级要加强阅读。"
    outline = parse_outline(text)
    check_invariants(text, outline)
    assert [(s.id, s.title) for s in outline.walk()] == [("1", "总体情况"), ("2", "教育改革")]
    assert outline.find("2").paragraphs == (3, 4)


def test_large_chinese_numerals_and_chapter_headings() -> None:
    numerals = [*"一二三四五六七八九十", "十一", "十二", "十三", "十九"]
    parts = "".join(f"{n}、第{i}项\n内容。\n" for i, n in enumerate(numerals, 1))
    text = "第一章 总则\n" + parts + "第二章　附则\n本办法自发布之日起施行。"
    outline = parse_outline(text)
    check_invariants(text, outline)
    chapters = _numbered(outline)
    assert [(s.marker, s.title) for s in chapters] == [("第一章", "总则"), ("第二章", "附则")]
    # 十九、 breaks the sequence after 十三、 and stays text.
    assert [c.number for c in chapters[0].children] == list(range(1, 14))
    assert [c.marker for c in chapters[0].children[9:]] == ["十、", "十一、", "十二、", "十三、"]
    assert chapters[0].children[-1].paragraphs == (26, 29)


def test_closing_needs_a_cue() -> None:
    body = "一、第一部分工作\n内容。\n二、第二部分工作\n内容。\n"
    plain = parse_outline(body + "这是最后一段，没有称呼。")
    assert [s.id for s in plain.sections] == ["1", "2"]
    assert plain.sections[-1].paragraphs == (3, 5)
    for cue in ("同志们，", "各位代表！", "同志们、朋友们：", "让我们", "总之，"):
        text = body + "补充说明。\n" + cue + "团结奋斗，再创佳绩！\n谢谢大家。"
        outline = parse_outline(text)
        check_invariants(text, outline)
        assert [s.id for s in outline.sections] == ["1", "2", "closing"], cue
        assert outline.sections[-1].paragraphs == (6, 7)
        assert outline.find("2").paragraphs == (3, 5)


def test_preamble_title_skips_address() -> None:
    text = (
        "各位代表：\n\n现在，我代表国务院，向大会报告政府工作，请予审议，并请提出意见。\n"
        "一、工作回顾\n内容。"
    )
    outline = parse_outline(text)
    assert outline.sections[0].title == "现在，我代表国务院，向大会报告政府工作，请予审议"
    assert outline.sections[0].paragraphs == (1, 3)


@pytest.mark.parametrize("text", ["", " ", "\n\n\n", " \t\u3000\n \n\u200b\n"])
def test_empty_and_blank_text(text: str) -> None:
    outline = parse_outline(text)
    assert outline == Outline()
    assert outline.paragraphs == outline.sections == outline.sentences == outline.passages == ()
    assert list(outline.walk()) == [] and outline.find("1") is None


def test_crlf_is_normalised_by_callers() -> None:
    # parse_outline splits lines at "\n" only; callers replace "\r\n" first. Raw CRLF text still
    # parses with exact offsets (the "\r" is trimmed as white space) and the same outline.
    lf = _read(SEED_000)
    crlf = lf.replace("\n", "\r\n")
    raw = parse_outline(crlf)
    check_invariants(crlf, raw)
    normalised = parse_outline(crlf.replace("\r\n", "\n"))
    assert normalised == parse_outline(lf)
    assert [section_to_dict(s)["title"] for s in raw.walk()] == [
        section_to_dict(s)["title"] for s in normalised.walk()
    ]


def test_huge_single_line() -> None:
    sentence = "这是一个用于压力测试的很长的句子，其中包含逗号和一些内容，用来检验线性时间。"
    text = sentence * (5_000_000 // len(sentence))
    # Linear in the text: a quadratic step here would not finish (speed is measured elsewhere).
    outline = parse_outline(text)
    assert len(outline.paragraphs) == 1 and outline.sections[0].id == "body"
    assert len(outline.sections[0].title) <= 24
    assert all(q.end - q.start <= 400 for q in outline.passages)
    assert outline.passages[0].start == 0 and outline.passages[-1].end == len(text)
    # And a 5 MB line with no punctuation at all, starting with a marker.
    run_on = "一、" + "甲" * 5_000_000
    outline = parse_outline(run_on)
    assert outline.sections[0].marker == "一、" and len(outline.sections[0].title) <= 80
    assert all(q.end - q.start <= 400 for q in outline.passages)


def test_section_to_dict_shape(seed002: tuple[str, Outline]) -> None:
    _, outline = seed002
    data = section_to_dict(outline.find("1"))
    assert set(data) == {
        "id",
        "number",
        "marker",
        "title",
        "level",
        "kind",
        "start",
        "end",
        "paragraphs",
        "children",
    }
    assert data["paragraphs"] == [6, 9] and data["kind"] == "numbered"
    assert [c["id"] for c in data["children"]] == ["1.1", "1.2", "1.3"]
    assert data["children"][0]["children"] == []
    json.dumps([section_to_dict(s) for s in outline.sections], ensure_ascii=False)
    preamble = section_to_dict(outline.sections[0])
    assert preamble["number"] is None and preamble["marker"] is None


def test_dataclasses_are_frozen(seed000: tuple[str, Outline]) -> None:
    _, outline = seed000
    for obj, name in (
        (outline, "sections"),
        (outline.sections[0], "title"),
        (outline.paragraphs[0], "start"),
        (outline.passages[0], "end"),
    ):
        with pytest.raises(AttributeError):
            setattr(obj, name, None)
    assert isinstance(outline.paragraphs[0], Paragraph)
    assert isinstance(outline.passages[0], Passage)


# --- the corpus of government work reports ----------------------------------------------------


def test_corpus_invariants(corpus: dict[str, tuple[str, Outline]]) -> None:
    assert len(corpus) == 87
    for doc_id, (text, outline) in corpus.items():
        try:
            check_invariants(text, outline)
        except AssertionError as error:
            raise AssertionError(f"{doc_id}: {error}") from error


def test_corpus_modern_reports(corpus: dict[str, tuple[str, Outline]]) -> None:
    modern = {
        k: v for k, v in corpus.items() if re.fullmatch(r"gwr-(\d{4})", k) and k >= "gwr-2000"
    }
    assert len(modern) == 25
    for doc_id, (text, outline) in modern.items():
        lines = [line.strip() for line in text.split("\n")]
        numbered = _numbered(outline)
        assert numbered, doc_id
        assert outline.sections[0].kind == "preamble"
        assert outline.sections[-1].kind == "closing"
        # The top level is the report's 一、 parts, every one of them, in order.
        assert all(CN_DUN.fullmatch(s.marker) for s in numbered), doc_id
        assert len(numbered) == sum(1 for line in lines if CN_DUN.match(line)), doc_id
        paren_lines = sum(1 for line in lines if re.match(r"（[一二三四五六七八九十]+）", line))
        paren_sections = [s for s in outline.walk() if s.marker and s.marker.startswith("（")]
        assert all(s.level == 2 for s in paren_sections), doc_id
        if doc_id == "gwr-2007":
            # The source skips （三） in part 三, so its （四） and （五） break the sequence.
            assert (paren_lines, len(paren_sections)) == (16, 14)
        else:
            assert len(paren_sections) == paren_lines, doc_id


def test_corpus_gwr2025(corpus: dict[str, tuple[str, Outline]]) -> None:
    _, outline = corpus["gwr-2025"]
    assert [(s.id, s.title) for s in outline.sections] == [
        ("preamble", "现在，我代表国务院，向大会报告政府工作，请予审议"),
        ("1", "2024年工作回顾"),
        ("2", "2025年经济社会发展总体要求和政策取向"),
        ("3", "2025年政府工作任务"),
        ("closing", "信心凝聚力量，实干谱写华章"),
    ]
    first, second, third = _numbered(outline)
    assert [c.marker for c in first.children] == [f"{n}是" for n in "一二三四五六七"]
    assert first.children[0].title == "因时因势加强和创新宏观调控，推动经济回升向好"
    assert second.children == ()
    assert [c.number for c in third.children] == list(range(1, 11))
    assert third.children[0].title == "大力提振消费、提高投资效益，全方位扩大国内需求"
    assert third.children[9].marker == "（十）"
    assert outline.sections[-1].paragraphs[0] == 161


def test_corpus_gwr2002(corpus: dict[str, tuple[str, Outline]]) -> None:
    _, outline = corpus["gwr-2002"]
    assert outline.sections[0].paragraphs == (1, 27)
    assert [s.title for s in _numbered(outline)] == [
        "扩大和培育内需，促进经济较快增长",
        "加快农业和农村经济发展，努力增加农民收入",
        "积极推进经济结构调整和经济体制改革",
        "适应加入世贸组织新形势，全面提高对外开放水平",
        "继续大力整顿和规范市场经济秩序",
        "实施科教兴国战略和可持续发展战略，加强精神文明建设",
        "进一步转变政府职能，加强政风建设",
        "进一步做好外交工作",
    ]


def test_corpus_nesting_follows_order_of_families(corpus: dict[str, tuple[str, Outline]]) -> None:
    # In 1981 （一） is the top level and 一、 nests inside it: the reverse of modern reports.
    _, outline = corpus["gwr-1981"]
    numbered = _numbered(outline)
    assert [(s.marker, s.title) for s in numbered] == [
        ("（一）", "当前的经济形势"),
        ("（二）", "今后经济建设的方针"),
        ("（三）", "我国经济发展的前景"),
    ]
    assert [c.marker for c in numbered[1].children] == [f"{n}、" for n in "一二三四五六七八九十"]
    assert [c.marker for c in outline.find("2.5").children] == ["一是", "二是", "三是", "四是"]


def test_corpus_restarted_lists(corpus: dict[str, tuple[str, Outline]]) -> None:
    # Lists restarting at 一、 inside a part must not supply the part's next sibling.
    _, outline = corpus["gwr-1955"]
    assert [s.title for s in _numbered(outline)] == [
        "国家在过渡时期的总任务",
        "第一个五年计划概要",
        "第一個五年計劃的若幹問題",
        "为完成和超额完成第一个五年计划而奋斗",
    ]
    _, outline = corpus["gwr-1987"]
    assert [s.paragraphs for s in _numbered(outline)][-1] == (119, 157)
