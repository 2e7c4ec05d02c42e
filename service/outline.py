"""The outline of a Chinese speech: paragraphs, nested numbered sections, sentences, passages.

Official speeches number their parts with a handful of marker families (``一、``, ``第一，``,
``（一）``, ``一要`` / ``一是``, ``1.``, ``（1）``, Markdown ``#``). Which family is the top level
differs from speech to speech, so nesting is decided by the order in which families appear, not by
a fixed hierarchy: a family already open becomes a sibling, a new family nests under the innermost
open section. A marker only counts when it continues its sibling sequence, which keeps inline
enumerations and stray ``三是`` paragraphs out of the outline.

Every location is a ``(start, end)`` offset pair into the text given to :func:`parse_outline`, so
``text[start:end]`` is exactly what it names. Lines end at ``"\\n"`` only: callers normalise
``"\\r\\n"`` first (a stray ``"\\r"`` is trimmed as white space, so offsets stay exact either way).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from models.text import Sentence, chunk_spans, split_clauses, split_sentences

__all__ = [
    "TITLE_MAX_CHARS",
    "Outline",
    "Paragraph",
    "Passage",
    "Section",
    "parse_outline",
    "section_to_dict",
]

# A title taken from a sentence keeps whole leading clauses up to this length.
TITLE_MAX_CHARS = 24
# No title exceeds this, so that a run-on line with no punctuation cannot become the title.
_TITLE_HARD_CAP = 80
# A marker line at most this long with no sentence end in it is a heading standing on its own line.
_HEADING_LINE_MAX = 80

# Zero-width characters are not str.isspace() but are invisible padding in scraped text (the
# corpus has lines holding only U+200B); treating them as blank keeps such lines out of paragraphs.
_ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")

_CN_DIGIT = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
# 一 … 九十九: enough for any outline; 〇 and 百 do not occur as ordinals in speeches.
_CN = r"(?:[二三四五六七八九]?十[一二三四五六七八九]?|[一二三四五六七八九])"
_AR = r"[0-9０-９]{1,2}"

# (family, pattern) tried in order at the start of a paragraph; group 1 (or 2) is the numeral.
_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("md", re.compile(r"(#{1,6})[ \t\u3000]+(?=\S)")),
    ("di_unit", re.compile(rf"第({_CN})(部分|章|节)")),
    ("di", re.compile(rf"第({_CN})[，、：,:]")),
    # 一、二年级 / 一、二、三产业 are enumerations, not a heading numbered 一.
    ("cn", re.compile(rf"({_CN})、(?!{_CN}(?:、|年级))")),
    ("point", re.compile(rf"({_CN})(要|是(?!否))[，：,:]?")),
    ("paren_cn", re.compile(rf"[（(]({_CN})[）)]")),
    ("paren_ar", re.compile(rf"[（(]({_AR})[）)]|({_AR})[）)]")),
    # 1.5 and 1、2月 are numbers, not markers.
    ("ar", re.compile(rf"({_AR})[.．、](?![0-9０-９])")),
)

# The optional closing run of # of a Markdown heading ("## 小节 ##"); "C#" keeps its #.
_ATX_CLOSING = re.compile(r"(?:^|[ \t\u3000]+)#+[ \t\u3000]*$")
_SENTENCE_MARK = re.compile(r"[。！？；!?;…]|\.(?=\s)")
_END_PUNCT = "。！？；!?;…．. \t\u3000"
_CLAUSE_PUNCT = "，；：、,;: \t\u3000"
_LEAD_SEPARATORS = "，,、：:．. \t\u3000"

# Forms of address that open a speech or its closing part: "同志们：", "女士们、先生们，".
_ADDRESS_WORD = (
    r"(?:同志们|各位代表|各位委员|各位同志|各位来宾|各位嘉宾|代表们|委员们|朋友们|女士们|先生们)"
)
_ADDRESS_PREFIX = re.compile(rf"(?:{_ADDRESS_WORD}[、，,和]?)+[：:！!，,]")
# A paragraph after the last numbered part that starts like this begins the closing section.
_CLOSING_CUE = re.compile(rf"{_ADDRESS_WORD}|让我们|总之|总而言之|综上所述")


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One non-empty source line: its 1-based line number and the offsets of its trimmed content."""

    number: int
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Section:
    """A part of the speech's outline.

    ``id`` is ``"preamble"``, ``"closing"``, ``"body"`` or the dotted ordinals of the outline path
    (``"2.3"``); ``number`` is the ordinal among numbered siblings and ``marker`` the marker as
    written, both ``None`` outside numbered sections. ``start``/``end`` cover the heading through
    the last paragraph, children included; ``paragraphs`` are the first and last line numbers;
    ``heading`` locates the heading line or heading sentence, marker included.
    """

    id: str
    number: int | None
    marker: str | None
    title: str
    level: int
    kind: str
    start: int
    end: int
    paragraphs: tuple[int, int]
    heading: tuple[int, int] | None
    children: tuple[Section, ...] = ()


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieval unit: whole sentences of one paragraph, in its innermost section."""

    start: int
    end: int
    paragraph: int
    section_id: str


@dataclass(frozen=True, slots=True)
class Outline:
    """A parsed speech: paragraphs, top-level sections, sentences and passages, in order."""

    paragraphs: tuple[Paragraph, ...] = ()
    sections: tuple[Section, ...] = ()
    sentences: tuple[Sentence, ...] = ()
    passages: tuple[Passage, ...] = ()

    def walk(self) -> Iterator[Section]:
        """Every section, depth first, in document order."""
        stack = list(reversed(self.sections))
        while stack:
            section = stack.pop()
            yield section
            stack.extend(reversed(section.children))

    def find(self, section_id: str) -> Section | None:
        """The section with this id, or ``None``."""
        return next((s for s in self.walk() if s.id == section_id), None)


def section_to_dict(section: Section) -> dict[str, Any]:
    """The API's JSON shape of a section, children included."""
    return {
        "id": section.id,
        "number": section.number,
        "marker": section.marker,
        "title": section.title,
        "level": section.level,
        "kind": section.kind,
        "start": section.start,
        "end": section.end,
        "paragraphs": [section.paragraphs[0], section.paragraphs[1]],
        "children": [section_to_dict(child) for child in section.children],
    }


@dataclass(frozen=True, slots=True)
class _Marker:
    family: str  # what decides nesting: same family -> sibling, new family -> child
    number: int
    suffix: str  # 要 or 是 for points, so that 一要…三要 is not continued by 四是
    start: int
    end: int  # end of the marker as written
    title_start: int  # after the marker and any separator following it
    own_line: bool  # the heading is the whole line (Markdown always), not a first sentence


@dataclass(slots=True, eq=False)
class _Node:
    marker: _Marker
    first: int  # paragraph index of the heading paragraph
    last: int
    heading: tuple[int, int]
    title: str
    children: list[_Node] = field(default_factory=list)
    # Lists of this node's family that restarted at 一 after it, outermost first, each by its
    # latest item: they are text, and their items must not be taken for this node's siblings.
    shadows: list[_Marker] = field(default_factory=list)


def parse_outline(text: str, *, max_passage_chars: int = 400) -> Outline:
    """Parse a speech into its outline; never raises on any text.

    ``max_passage_chars`` bounds each passage (at least 1).
    """
    if max_passage_chars < 1:
        raise ValueError("max_passage_chars must be at least 1")
    paragraphs = _paragraphs(text)
    if not paragraphs:
        return Outline()

    sentences = [split_sentences(text, p.start, p.end) for p in paragraphs]
    owner: list[_Node | None] = [None] * len(paragraphs)  # innermost numbered section
    roots: list[_Node] = []
    stack: list[_Node] = []
    last_marker = -1
    for i, p in enumerate(paragraphs):
        marker = _match_marker(text, p.start, p.end)
        placed = _place(marker, stack) if marker is not None else None
        if marker is None or placed is None:
            if stack:
                owner[i] = stack[-1]
            continue
        siblings = placed[0].children if placed[0] is not None else roots
        if marker.family.startswith("md"):
            marker = replace(marker, number=len(siblings) + 1)
        spans = sentences[i] = _merge_marker_sentences(sentences[i], marker.title_start)
        heading, title = _heading(text, p, marker, spans)
        node = _Node(marker, i, i, heading, title)
        siblings.append(node)
        stack.append(node)
        owner[i] = node
        last_marker = i

    closing_from = len(paragraphs)
    if roots:
        for i in range(last_marker + 1, len(paragraphs)):
            if _CLOSING_CUE.match(text, paragraphs[i].start, paragraphs[i].end):
                closing_from = i
                break
        for i in range(closing_from, len(paragraphs)):
            owner[i] = None
        for i, node in enumerate(owner):
            if node is not None:
                node.last = i
        for root in roots:
            _extend_last(root)

    section_ids: list[str] = [""] * len(paragraphs)
    top: list[Section] = []
    if not roots:
        top.append(_plain_section("body", text, paragraphs, sentences, 0, len(paragraphs)))
        section_ids = ["body"] * len(paragraphs)
    else:
        first_marker = roots[0].first
        if first_marker > 0:
            top.append(_plain_section("preamble", text, paragraphs, sentences, 0, first_marker))
            section_ids[:first_marker] = ["preamble"] * first_marker
        node_ids: dict[int, str] = {}
        top.extend(
            _build(node, str(n), 1, text, paragraphs, node_ids) for n, node in enumerate(roots, 1)
        )
        for i, node in enumerate(owner):
            if node is not None:
                section_ids[i] = node_ids[id(node)]
        if closing_from < len(paragraphs):
            top.append(
                _plain_section(
                    "closing", text, paragraphs, sentences, closing_from, len(paragraphs)
                )
            )
            section_ids[closing_from:] = ["closing"] * (len(paragraphs) - closing_from)

    out_sentences: list[Sentence] = []
    out_passages: list[Passage] = []
    for i, p in enumerate(paragraphs):
        sid = section_ids[i]
        node = owner[i]
        heading = node.heading if node is not None and node.first == i else None
        for s, e in sentences[i]:
            topic = heading is not None and heading[0] <= s and e <= heading[1]
            out_sentences.append(Sentence(s, e, p.number, sid, topic))
        for s, e in chunk_spans(sentences[i], text, max_passage_chars):
            out_passages.append(Passage(s, e, p.number, sid))
    return Outline(tuple(paragraphs), tuple(top), tuple(out_sentences), tuple(out_passages))


def _paragraphs(text: str) -> list[Paragraph]:
    out: list[Paragraph] = []
    pos = 0
    for number, line in enumerate(text.split("\n"), 1):
        start, end = pos, pos + len(line)
        pos = end + 1
        while start < end and _blank(text[start]):
            start += 1
        while end > start and _blank(text[end - 1]):
            end -= 1
        if end > start:
            out.append(Paragraph(number, start, end))
    return out


def _blank(char: str) -> bool:
    return char.isspace() or char in _ZERO_WIDTH


def _match_marker(text: str, start: int, end: int) -> _Marker | None:
    for family, pattern in _MARKERS:
        m = pattern.match(text, start, end)
        if m is None:
            continue
        if family == "md":
            hashes = len(m.group(1))
            return _Marker(f"md{hashes}", 0, "", start, start + hashes, m.end(), True)
        numeral = m.group(1) if m.group(1) is not None else m.group(2)
        number = int(numeral) if family in ("paren_ar", "ar") else _cn_int(numeral)
        suffix = m.group(2) if family == "point" else ""
        if family == "di_unit":
            family = f"di_{m.group(2)}"  # 第一部分, 第一章, 第一节 are three families
        title_start = m.end()
        while title_start < end and text[title_start] in _LEAD_SEPARATORS:
            title_start += 1
        own_line = (
            end - start <= _HEADING_LINE_MAX
            and _SENTENCE_MARK.search(text, title_start, end) is None
        )
        return _Marker(family, number, suffix, start, m.end(), title_start, own_line)
    return None


def _cn_int(numeral: str) -> int:
    tens, ten, units = numeral.partition("十")
    if not ten:
        return _CN_DIGIT[numeral]
    return (_CN_DIGIT[tens] if tens else 1) * 10 + (_CN_DIGIT[units] if units else 0)


def _place(marker: _Marker, stack: list[_Node]) -> tuple[_Node | None] | None:
    """Where ``marker`` goes: ``(parent,)`` with ``None`` for top level, or ``None`` if it is text.

    Pops the stack down to the parent when the marker is accepted.
    """
    if marker.family.startswith("md"):
        # Markdown nests by the number of #, and closes any numbering opened under it.
        depth = int(marker.family[2:])
        while stack and not (
            stack[-1].marker.family.startswith("md") and int(stack[-1].marker.family[2:]) < depth
        ):
            stack.pop()
        return (stack[-1] if stack else None,)
    level = next(
        (k for k in range(len(stack) - 1, -1, -1) if stack[k].marker.family == marker.family),
        None,
    )
    if level is None:
        # A new family starts a new sequence under the innermost open section.
        return (stack[-1] if stack else None,) if marker.number == 1 else None
    open_node = stack[level]
    continues = _follows(marker, open_node.marker)
    shadows = open_node.shadows
    for k in range(len(shadows) - 1, -1, -1):
        if not _follows(marker, shadows[k]):
            continue
        # Both the open sequence and a restarted list may go on here ("三、" after "二、 … 一、
        # 二、"). The nearer list wins unless the heading style says this is the open sequence.
        if continues and marker.own_line == open_node.marker.own_line != shadows[k].own_line:
            break
        del shadows[k:]  # lists nested in this one have ended
        shadows.append(marker)
        return None
    if not continues:
        if marker.number == 1:
            shadows.append(marker)
        return None
    del stack[level:]
    return (stack[-1] if stack else None,)


def _follows(marker: _Marker, previous: _Marker) -> bool:
    """Whether ``marker`` is the next item after ``previous`` in one numbered list."""
    return marker.number == previous.number + 1 and marker.suffix == previous.suffix


def _merge_marker_sentences(
    spans: list[tuple[int, int]], title_start: int
) -> list[tuple[int, int]]:
    # "1. 标题" splits after "1." (an ASCII full stop before a space); the marker belongs with the
    # sentence it introduces.
    if len(spans) < 2 or spans[0][1] > title_start:
        return spans
    merged = list(spans)
    while len(merged) > 1 and merged[0][1] <= title_start:
        merged[0:2] = [(merged[0][0], merged[1][1])]
    return merged


def _heading(
    text: str, p: Paragraph, marker: _Marker, spans: list[tuple[int, int]]
) -> tuple[tuple[int, int], str]:
    """The heading's offsets and the section's title."""
    if marker.own_line:
        title = text[marker.title_start : p.end]
        if marker.family.startswith("md"):
            title = _ATX_CLOSING.sub("", title)
        title = _cap(title.rstrip(_END_PUNCT + _CLAUSE_PUNCT))
        return (p.start, p.end), title or _marker_title(text, marker)
    end = spans[0][1] if spans else p.end
    title = _short_title(text, marker.title_start, end)
    return (p.start, end), title or _marker_title(text, marker)


def _marker_title(text: str, marker: _Marker) -> str:
    # A bare "第一部分" line has no words of its own; its marker is the best name it has.
    return text[marker.start : marker.end].rstrip(_CLAUSE_PUNCT + _END_PUNCT)


def _short_title(text: str, start: int, end: int) -> str:
    """The sentence ``text[start:end]`` as a title: whole leading clauses, at most 24 characters.

    The first clause is kept even when longer (up to the hard cap).
    """
    while end > start and text[end - 1] in _END_PUNCT:
        end -= 1
    if end - start <= TITLE_MAX_CHARS:
        return text[start:end]
    # Only the opening of a long sentence can matter, which keeps this cheap on huge lines.
    bound = min(end, start + _TITLE_HARD_CAP + 1)
    title = ""
    for _, clause_end in split_clauses(text, start, bound):
        candidate = text[start:clause_end].rstrip(_CLAUSE_PUNCT)
        if title and len(candidate) > TITLE_MAX_CHARS:
            break
        title = candidate
        if len(title) > TITLE_MAX_CHARS:
            break
    return _cap(title)


def _cap(title: str) -> str:
    return title[:_TITLE_HARD_CAP].strip()


def _extend_last(node: _Node) -> int:
    for child in node.children:
        node.last = max(node.last, _extend_last(child))
    return node.last


def _build(
    node: _Node,
    section_id: str,
    level: int,
    text: str,
    paragraphs: list[Paragraph],
    node_ids: dict[int, str],
) -> Section:
    node_ids[id(node)] = section_id
    children = tuple(
        _build(child, f"{section_id}.{n}", level + 1, text, paragraphs, node_ids)
        for n, child in enumerate(node.children, 1)
    )
    marker = node.marker
    first, last = paragraphs[node.first], paragraphs[node.last]
    return Section(
        id=section_id,
        number=marker.number,
        marker=text[marker.start : marker.end],
        title=node.title,
        level=level,
        kind="numbered",
        start=first.start,
        end=last.end,
        paragraphs=(first.number, last.number),
        heading=node.heading,
        children=children,
    )


def _plain_section(
    kind: str,
    text: str,
    paragraphs: list[Paragraph],
    sentences: list[list[tuple[int, int]]],
    first: int,
    stop: int,
) -> Section:
    """A preamble, closing or body section over ``paragraphs[first:stop]``."""
    return Section(
        id=kind,
        number=None,
        marker=None,
        title=_plain_title(text, sentences[first:stop]),
        level=1,
        kind=kind,
        start=paragraphs[first].start,
        end=paragraphs[stop - 1].end,
        paragraphs=(paragraphs[first].number, paragraphs[stop - 1].number),
        heading=None,
    )


def _plain_title(text: str, sentences: list[list[tuple[int, int]]]) -> str:
    # Named after its first sentence that says something: a bare "同志们：" does not.
    for spans in sentences:
        for start, end in spans:
            m = _ADDRESS_PREFIX.match(text, start, end)
            if m is not None:
                start = m.end()
                while start < end and text[start] in _LEAD_SEPARATORS:
                    start += 1
            if any(c.isalnum() for c in text[start : min(end, start + _TITLE_HARD_CAP)]):
                return _short_title(text, start, end)
    return ""
