"""Answer spans inside one sentence: question type, slot alignment, quoted names and numbers.

A question is read as ``left + wh-word + right``; the answer is what stands between the parts
of the question the sentence repeats. When the sentence words it differently, the answer type
(a number, a quoted name, a place) picks the candidate nearest to the question's words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WH = re.compile(
    "什么样的|什麼樣的|什么时候|什麼時候|什么时间|什麼時間|为什么|為什麼|什么|什麼|"
    "哪一年|哪一天|哪一个|哪一個|哪个|哪個|哪些|哪里|哪裡|哪儿|哪兒|哪位|哪|"
    "多少|多长|多長|多大|多久|多远|多遠|多高|几|幾|谁|誰|"
    "何时|何時|何处|何處|何地|何人|何种|何種|如何|怎样|怎樣|怎么|怎麼|为何|為何"
)
_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("date", re.compile("何时|何時|什么时候|什麼時候|什么时间|什麼時間|哪一年|哪年|哪一天|几月|幾月|几号|幾號|哪个时期")),
    ("number", re.compile("多少|几|幾|多长|多長|多大|多久|多远|多遠|多高|比例|百分之")),
    ("person", re.compile("谁|誰|哪位|何人")),
    ("place", re.compile("哪里|哪裡|哪儿|哪兒|何处|何處|何地|在哪|哪个(?:国家|城市|省|市|县|镇|乡|村|地方|地区)|哪個(?:國家|城市|省|市|縣|鎮|地方|地區)")),
    ("name", re.compile("叫什么|叫什麼|称为|稱為|名称|名稱|名字|简称|簡稱|编号|編號|口号|口號")),
    ("how", re.compile("如何|怎样|怎樣|怎么|怎麼|为什么|為什麼|为何|為何")),
)
_QUOTED = re.compile(r"“[^“”]{1,40}”|《[^《》]{1,40}》|「[^「」]{1,40}」|『[^『』]{1,40}』|\"[^\"]{1,40}\"")
_NUMBER = re.compile(
    r"(?:约|近|超过|逾|达|共)?"
    r"(?:[0-9０-９][0-9０-９,，.．]*|[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟]+)"
    r"(?:多|余)?(?:[%％‰]|[年月日号個个万亿元人名家项所次倍岁户座条件台辆吨亩公里米平方千克度天周届期批名位]{1,3})?"
)
_CLAUSE_MARKS = "，,；;：:。！？!?、"
_EDGE = set(" \t，,；;：:。！？!?、…—-")
_LEADING_PARTICLES = ("是", "为", "了", "的", "在", "有", "要", "把", "将", "和", "与", "及")
_OPEN_CLOSE = {"“": "”", "《": "》", "「": "」", "『": "』"}


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    kind: str  # date | number | person | place | name | how | what
    left: str
    right: str
    wh: str


def analyse(question: str) -> Question:
    q = question.strip().rstrip("？?。!！ ")
    kind = next((k for k, pattern in _TYPES if pattern.search(q)), "what")
    m = _WH.search(q)
    if m is None:
        return Question(q, kind, q, "", "")
    right = m.group(0)
    return Question(q, kind, q[: m.start()], q[m.end() :].rstrip("呢吗嗎"), right)


def extract(question: Question, sentence: str) -> tuple[int, int] | None:
    """The answer's offsets inside ``sentence``, or None when only the whole sentence fits."""
    span = None
    if question.kind in ("number", "date"):
        span = _nearest(question, sentence, _numbers(sentence))
    elif question.kind == "name":
        span = _nearest(question, sentence, _quoted(question, sentence))
    if span is None:
        span = _slot(question, sentence)
    if span is None and question.kind in ("what", "person", "place"):
        span = _nearest(question, sentence, _quoted(question, sentence))
    if span is None:
        return None
    span = _polish(question, sentence, *span)
    if span is None or span[1] - span[0] >= len(sentence.strip()) * 0.9:
        return None
    return span


# -- slot alignment ----------------------------------------------------------------------------
def _find_left(left: str, sentence: str) -> tuple[int, int] | None:
    """Longest suffix (>= 2 chars) of the question's left part found in the sentence."""
    left = left.rstrip("是为的在了")
    for k in range(len(left), 1, -1):
        idx = sentence.rfind(left[-k:])
        if idx >= 0:
            return idx, idx + k
    return None


def _find_right(right: str, sentence: str, after: int) -> tuple[int, int] | None:
    stripped = right.lstrip("的是")
    shortest = 1 if len(stripped) <= 2 else 2
    for k in range(len(stripped), shortest - 1, -1):
        idx = sentence.find(stripped[:k], after)
        if idx >= 0:
            return idx, idx + k
    return None


def _slot(question: Question, sentence: str) -> tuple[int, int] | None:
    left = _find_left(question.left, sentence) if question.left else None
    after = left[1] if left else 0
    right = _find_right(question.right, sentence, after) if question.right else None
    if left and right:
        start, end = left[1], right[0]
        if end <= start:
            return None
        start = max(start, _clause_start(sentence, end))
        if question.wh.endswith("的") or question.right.startswith("的"):
            # "什么样的X" asks for the modifier: keep the head noun so the answer reads whole.
            end = right[1]
        return start, end
    if left:
        return left[1], _clause_end(sentence, left[1])
    if right:
        return _clause_start(sentence, right[0]), right[0]
    return None


def _clause_start(sentence: str, pos: int) -> int:
    i = pos
    while i > 0 and sentence[i - 1] not in _CLAUSE_MARKS:
        i -= 1
    return i


def _clause_end(sentence: str, pos: int) -> int:
    i = pos
    while i < len(sentence) and sentence[i] not in _CLAUSE_MARKS:
        i += 1
    return i


# -- typed candidates ----------------------------------------------------------------------------
def _numbers(sentence: str) -> list[tuple[int, int]]:
    out = []
    for m in _NUMBER.finditer(sentence):
        text = m.group(0)
        if any(c.isdigit() for c in text) or len(text) >= 2:
            out.append(m.span())
    return out


def _quoted(question: Question, sentence: str) -> list[tuple[int, int]]:
    """Quoted strings of the sentence that the question does not already contain."""
    return [
        m.span()
        for m in _QUOTED.finditer(sentence)
        if m.group(0)[1:-1] not in question.text
    ]


def _nearest(
    question: Question, sentence: str, spans: list[tuple[int, int]]
) -> tuple[int, int] | None:
    """The candidate closest to where the sentence repeats the question's words."""
    if not spans:
        return None
    anchors = _anchors(question.text, sentence)
    if not anchors:
        return spans[0]

    def distance(span: tuple[int, int]) -> int:
        return min(
            0 if a_start < span[1] and span[0] < a_end else min(abs(span[0] - a_end), abs(a_start - span[1]))
            for a_start, a_end in anchors
        )

    return min(spans, key=distance)


def _anchors(question: str, sentence: str) -> list[tuple[int, int]]:
    """Where 2-character pieces of the question occur in the sentence."""
    out = []
    for i in range(len(question) - 1):
        piece = question[i : i + 2]
        if not all(c.isalnum() for c in piece):
            continue
        start = sentence.find(piece)
        while start >= 0:
            out.append((start, start + 2))
            start = sentence.find(piece, start + 1)
    return out


# -- clean-up ------------------------------------------------------------------------------------
def _polish(question: Question, sentence: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and sentence[start] in _EDGE:
        start += 1
    while end > start and sentence[end - 1] in _EDGE:
        end -= 1
    # Words the question already says are not the answer: drop a repeated lead-in.
    for k in range(min(end - start - 1, 12), 1, -1):
        if sentence[start : start + k] in question.text:
            start += k
            break
    while end - start > 2 and sentence[start] in "".join(_LEADING_PARTICLES):
        start += 1
    start, end = _balance_quotes(sentence, start, end)
    end = _head_noun(question, sentence, end)
    if end <= start:
        return None
    return start, end


def _balance_quotes(sentence: str, start: int, end: int) -> tuple[int, int]:
    """Widen the span so that it never cuts a quoted name or a book title in two."""
    for m in _QUOTED.finditer(sentence):
        q_start, q_end = m.span()
        if q_start < end and start < q_end:
            start, end = min(start, q_start), max(end, q_end)
    return start, end


def _head_noun(question: Question, sentence: str, end: int) -> int:
    """After a quoted name, keep the noun the question names it by (“433”工程)."""
    if end == 0 or sentence[end - 1] not in _OPEN_CLOSE.values():
        return end
    for k in range(4, 0, -1):
        tail = sentence[end : end + k]
        if len(tail) == k and tail in question.text and all(c.isalnum() for c in tail):
            return end + k
    return end
