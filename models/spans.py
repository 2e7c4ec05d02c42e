"""Answer spans inside one sentence: question type, slot alignment, quoted names and numbers.

A question is read as ``left + wh-word + right``; the answer is what stands between the parts
of the question the sentence repeats. When the sentence words it differently, the answer type
(a number, a quoted name, a place) picks the candidate nearest to the question's words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WH = re.compile(
    "什么样的|什麼樣的|什么时候|什麼時候|什么时间|什麼時間|为什么|為什麼|什么|什麼|"
    "哪一年|哪一天|哪一个|哪一個|哪个|哪個|哪些|哪里|哪裡|哪儿|哪兒|哪位|哪|"
    "多少|多长|多長|多大|多久|多远|多遠|多高|几|幾|谁|誰|"
    "何时|何時|何处|何處|何地|何人|何种|何種|如何|怎样|怎樣|怎么|怎麼|为何|為何"
)
_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "date",
        re.compile(
            "何时|何時|什么时候|什麼時候|什么时间|什麼時間|哪一年|哪年|哪一天|几月|幾月|几号|幾號|哪个时期"
        ),
    ),
    ("number", re.compile("多少|几|幾|多长|多長|多大|多久|多远|多遠|多高|比例|百分之")),
    ("person", re.compile("谁|誰|哪位|何人")),
    (
        "place",
        re.compile(
            "哪里|哪裡|哪儿|哪兒|何处|何處|何地|在哪|哪个(?:国家|城市|省|市|县|镇|乡|村|地方|地区)|哪個(?:國家|城市|省|市|縣|鎮|地方|地區)"
        ),
    ),
    ("name", re.compile("叫什么|叫什麼|称为|稱為|名称|名稱|名字|简称|簡稱|编号|編號|口号|口號")),
    ("how", re.compile("如何|怎样|怎樣|怎么|怎麼|为什么|為什麼|为何|為何")),
)
_QUOTED = re.compile(
    r"“[^“”]{1,40}”|《[^《》]{1,40}》|「[^「」]{1,40}」|『[^『』]{1,40}』|\"[^\"]{1,40}\""
)
_NUMBER = re.compile(
    r"(?:约|近|超过|逾|达|共)?"
    r"(?:[0-9０-９][0-9０-９,，.．]*|[零〇一二两三四五六七八九十百千万亿壹贰叁肆伍陆柒捌玖拾佰仟]+)"
    r"(?:多|余)?(?:[%％‰]|[年月日号個个万亿元人名家项所次倍岁户座条件台辆吨亩公里米平方千克度天周届期批名位]{1,3})?"
)
_CLAUSE_MARKS = "，,；;：:。！？!?"
_EDGE = set(" \t，,；;：:。！？!?、…—-")
_LEADING_PARTICLES = ("是", "为", "了", "的", "在", "有", "要", "把", "将", "和", "与", "及")
_OPEN_CLOSE = {"“": "”", "《": "》", "「": "」", "『": "』"}
_VERB_WITH_WEI = frozenset("成称稱作定位视視认認列评評改变變分选選命被")
_WHICH = ("哪个", "哪個", "哪", "哪一个", "哪一個", "哪些", "什么", "什麼")
# Trailing words of the question's left part that frame the question, not the answer's context.
_LEFT_FRAME = (
    "情况",
    "情況",
    "内容",
    "內容",
    "名称",
    "名稱",
    "编号",
    "編號",
    "叫",
    "是",
    "为",
    "為",
    "的",
    "在",
    "了",
    "和",
    "与",
    "與",
    "及",
)


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    kind: str  # date | number | person | place | name | how | what
    left: str
    right: str
    wh: str


def analyse(question: str) -> Question:
    q = question.strip().rstrip("？?。!！ ")
    m = _WH.search(q)
    if m is None:
        kind = next((k for k, pattern in _TYPES if pattern.search(q)), "what")
        return Question(q, kind, q, "", "")
    start, wh = m.start(), m.group(0)
    if wh in ("为什么", "為什麼") and (
        q[m.end() : m.end() + 1] in ("样", "樣") or q[start - 1 : start] in _VERB_WITH_WEI
    ):
        # 定位为什么样的… / 称为什么: "为" belongs to the verb, the question word is 什么.
        start, wh = start + 1, wh[1:]
        if q[start + len(wh) : start + len(wh) + 2] in ("样的", "樣的"):
            wh += q[start + len(wh) : start + len(wh) + 2]
    left, right = q[:start], q[start + len(wh) :].rstrip("呢吗嗎")
    kind = next((k for k, pattern in _TYPES if pattern.search(wh + right[:4])), None)
    if kind is None:
        kind = next((k for k, pattern in _TYPES if pattern.search(q)), "what")
    if kind == "how" and not wh.startswith(("如何", "怎", "为", "為")):
        kind = "what"
    return Question(q, kind, left, right, wh)


def extract(question: Question, sentence: str) -> tuple[int, int] | None:
    """The answer's offsets inside ``sentence``, or None when only the whole sentence fits."""
    for finder in _FINDERS[question.kind]:
        span = finder(question, sentence)
        if span is None:
            continue
        span = _polish(question, sentence, *span)
        if span is not None and span[1] - span[0] < len(sentence.strip()) * 0.9:
            return span
    return None


# -- slot alignment ----------------------------------------------------------------------------
def _occurrences(sentence: str, piece: str) -> list[int]:
    out, i = [], sentence.find(piece)
    while i >= 0:
        out.append(i)
        i = sentence.find(piece, i + 1)
    return out


def strip_endings(text: str, words: Sequence[str]) -> str:
    """``text`` without any run of ``words`` at its end, never down to nothing."""
    changed = True
    while changed:
        changed = False
        for word in words:
            if text.endswith(word) and len(text) > len(word):
                text, changed = text[: -len(word)], True
    return text


def _left_matches(left: str, sentence: str) -> list[tuple[int, int]]:
    """Where the sentence repeats the question's left part: the longest piece of it found,
    preferring pieces near its end (frame words such as 情况 or 是 are skipped first)."""
    trimmed = strip_endings(left, _LEFT_FRAME)
    best: tuple[float, str] | None = None
    n = len(trimmed)
    for end in range(n, 1, -1):
        for k in range(end, 1, -1):
            if best is not None and k - 0.25 * (n - end) <= best[0]:
                break
            piece = trimmed[end - k : end]
            if piece in sentence:
                best = (k - 0.25 * (n - end), piece)
                break
    if best is None:
        return []
    piece = best[1]
    return [(i, i + len(piece)) for i in _occurrences(sentence, piece)]


def _right_matches(right: str, sentence: str) -> list[tuple[int, int]]:
    stripped = right.lstrip('的是“「"')
    shortest = 1 if len(stripped) == 1 else 2
    for k in range(len(stripped), shortest - 1, -1):
        found = _occurrences(sentence, stripped[:k])
        if found:
            return [(i, i + k) for i in found]
    return []


def _slot(question: Question, sentence: str) -> tuple[int, int] | None:
    lefts = _left_matches(question.left, sentence) if question.left else []
    rights = _right_matches(question.right, sentence) if question.right else []
    pairs = [(lm, rm) for lm in lefts for rm in rights if lm[1] < rm[0]]
    if pairs:
        left, right = min(pairs, key=lambda p: p[1][0] - p[0][1])
        start, end = left[1], right[0]
        start = max(start, _clause_start(sentence, end))
        if question.wh.endswith("的") or question.right.startswith("的"):
            # "什么样的X" asks for the modifier: keep the head noun so the answer reads whole.
            end = right[1]
        elif question.wh in _WHICH and right[1] - right[0] <= 2:
            # "哪个镇" asks for "X镇": the head noun belongs to the answer.
            end = right[1]
        return start, end
    if lefts:
        start = lefts[0][1]
        return start, _clause_end(sentence, start)
    if rights:
        end = rights[0][0]
        return _clause_start(sentence, end), end
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
    return [m.span() for m in _QUOTED.finditer(sentence) if m.group(0)[1:-1] not in question.text]


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
            0
            if a_start < span[1] and span[0] < a_end
            else min(abs(span[0] - a_end), abs(a_start - span[1]))
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


# Paired marks only: an ASCII " cannot tell an opening from a closing quote.
_PAIRED = re.compile(r"“[^“”]{1,40}”|《[^《》]{1,40}》|「[^「」]{1,40}」|『[^『』]{1,40}』")
# A span that starts or ends at the inner edge of a quoted name this short is a cut-off name.
_SHORT_NAME = 12


def starts_quoted(text: str) -> bool:
    """Whether ``text`` opens with a whole quoted name or book title (“433”工程, 《决定》)."""
    return _PAIRED.match(text) is not None


def mend(question: Question, sentence: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span chosen elsewhere (the span ranker) so that it keeps quoted names whole.

    A span that cuts a “…”/《》 pair is widened to the pair; one inside a short pair that starts
    or ends at its inner edge (三个区分 of “三个区分开来”) is taken as the whole name. A quote
    inside a longer quotation is left alone. For a name or number question, the noun that the
    question names it by follows the closing mark (“593”工程).
    """
    for m in _PAIRED.finditer(sentence):
        q_start, q_end = m.span()
        if not (q_start < end and start < q_end) or (start <= q_start and q_end <= end):
            continue
        if q_start < start and end < q_end:
            inner_edge = start == q_start + 1 or end == q_end - 1
            if inner_edge and q_end - q_start - 2 <= _SHORT_NAME:
                start, end = q_start, q_end
            continue
        start, end = min(start, q_start), max(end, q_end)
    if question.kind in ("name", "number") and end > 0 and sentence[end - 1] in "”》」』":
        for k in range(4, 1, -1):
            tail = sentence[end : end + k]
            if len(tail) == k and tail in question.left and all(c.isalnum() for c in tail):
                return start, end + k
    return start, end


def _join_dates(sentence: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """2009年 9月 27日 are one date, and so is a range of dates (…27日至10月9日)."""
    out: list[tuple[int, int]] = []
    for a, b in spans:
        if out:
            gap = sentence[out[-1][1] : a]
            if gap == "" or (
                gap in ("至", "到", "-", "－", "—", "~", "～") and out[-1][1] - out[-1][0] > 1
            ):
                out[-1] = (out[-1][0], b)
                continue
        out.append((a, b))
    return out


_DATE_UNITS = re.compile(r"[年月日号號]|世纪|世紀|年代")


def _by_numbers(question: Question, sentence: str) -> tuple[int, int] | None:
    """The number nearest to the question's words that the question does not say itself
    (for a date question, one with a date unit when there is one)."""
    spans = [(a, b) for a, b in _numbers(sentence) if sentence[a:b] not in question.text]
    if question.kind == "date":
        spans = _join_dates(sentence, spans)
        dated = [(a, b) for a, b in spans if _DATE_UNITS.search(sentence, a, b)]
        spans = dated or spans
    return _nearest(question, sentence, spans)


def _by_quotes(question: Question, sentence: str) -> tuple[int, int] | None:
    return _nearest(question, sentence, _quoted(question, sentence))


_PLACE_NOUNS = "省市县縣区區镇鎮乡鄉村州国國"


def _by_place_noun(question: Question, sentence: str) -> tuple[int, int] | None:
    """For "哪个镇": the name ending in that noun nearest to the question's words."""
    noun = question.right[:1]
    if not noun or noun not in _PLACE_NOUNS:
        return None
    names = [
        m.span()
        for m in re.finditer(
            rf"[^\s，,。；;：:、“”（）()在的于於是和与與及为為到从從]{{1,5}}{noun}", sentence
        )
    ]
    return _nearest(question, sentence, names)


_FINDERS = {
    "number": (_by_numbers, _slot),
    "date": (_by_numbers, _slot),
    "name": (_by_quotes, _slot),
    "place": (_by_place_noun, _slot, _by_quotes),
    "person": (_slot, _by_quotes),
    "what": (_slot, _by_quotes),
    "how": (_slot,),
}
