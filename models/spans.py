"""Answer spans inside one sentence: question type, slot alignment, quoted names and numbers.

A question is read as ``left + wh-word + right``; the answer is what stands between the parts
of the question the sentence repeats. When the sentence words it differently, the answer type
(a number, a quoted name, a place) picks the candidate nearest to the question's words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

# The question words that ask for a number: one list for the question word and for the type.
# 有多重 (how heavy), not 多重 alone: 多重国籍 is "multiple" nationality.
_HOW_MUCH = "多少|多长|多長|多大|多久|多远|多遠|多高|多快|多深|多宽|多寬|多厚|有多重|几|幾"
_WH = re.compile(
    "什么样的|什麼樣的|什么时候|什麼時候|什么时间|什麼時間|为什么|為什麼|什么|什麼|"
    "哪一年|哪一天|哪一个|哪一個|哪个|哪個|哪些|哪里|哪裡|哪儿|哪兒|哪位|哪|"
    f"{_HOW_MUCH}|谁|誰|"
    "何时|何時|何年|何处|何處|何地|何人|何种|何種|如何|怎样|怎樣|怎么|怎麼|为何|為何"
)
_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "date",
        re.compile(
            "何时|何時|何年|什么时候|什麼時候|什么时间|什麼時間|哪一年|哪年|哪一天|几月|幾月|几号|幾號|"
            "哪个时期|(?:哪一?[个個]?|什[么麼])(?:世[纪紀]|年代)"
        ),
    ),
    ("number", re.compile(f"{_HOW_MUCH}|比例|百分之")),
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


def opens_with_asked_name(text: str, question: str) -> bool:
    """Whether ``text`` opens with a quoted name of two or more characters that the question
    itself says (“五个**” for “五个**”和什么？): the question's own words are never its answer.
    (One quoted character, 「韓」, may well be in a question that asks about something else.)"""
    m = _PAIRED.match(text)
    return m is not None and len(m.group(0)) > 3 and m.group(0)[1:-1] in question


def mend(question: Question, sentence: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span chosen elsewhere (the span ranker) so that it keeps quoted names whole.

    A span that cuts a “…”/《》 pair is widened to the pair; one inside a short pair that starts
    or ends at its inner edge (三个区分 of “三个区分开来”) is taken as the whole name. A quote
    inside a longer quotation is left alone. For a name or number question, the noun that the
    question names it by follows the closing mark (“593”工程). A number or date keeps what
    belongs to it (:func:`_number_edges`), and a designation asked for keeps its noun
    (:func:`_described_noun`).
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
    if question.kind in ("number", "date") and end > start:
        start, end = _number_edges(question, sentence, start, end)
    end = _described_noun(question, sentence, end)
    if question.kind in ("name", "number") and end > 0 and sentence[end - 1] in "”》」』":
        for k in range(4, 1, -1):
            tail = sentence[end : end + k]
            if len(tail) == k and tail in question.left and all(c.isalnum() for c in tail):
                return start, end + k
    return start, end


_DESIGNATION = 4  # characters of X from which 什么样的X asks for a designation


def designation(question: Question) -> str | None:
    """X of 什么样的X when X is long enough to be a designation the speech gives.

    A long X is a designation (定位为…的政治宣言和行动纲领): the answer is the whole designation,
    not its last modifier alone. A short X is a category word (什麼樣的原因, 什麼樣的效果), and
    annotators answer with the modifier."""
    noun = question.right
    if question.wh.endswith(("样的", "樣的")) and len(noun) >= _DESIGNATION:
        return noun
    return None


def _described_noun(question: Question, sentence: str, end: int) -> int:
    """For a designation asked for (:func:`designation`), a span that stops just before its 的X
    ends after it; other spans are left alone."""
    noun = designation(question)
    if noun is None or end == 0:
        return end
    if sentence.startswith("的" + noun, end):
        return end + 1 + len(noun)
    if sentence[end - 1] == "的" and sentence.startswith(noun, end):
        return end + len(noun)
    return end


# Era names a year is counted in (民國39年, 公元前221年): without them the year is another one.
_ERAS = ("中華民國", "中华民国", "民國", "民国", "西元前", "公元前", "西元", "公元")
_NUMERAL_CHARS = "零〇一二两兩三四五六七八九十百千万萬亿億"
# What a number's value is counted in, right after its last digit: 1600個, 5000噸級, 20㎝, 60％.
_COUNTED_IN = re.compile(
    r"(?:多|余|餘)?(?:[%％‰㎝㎜㎞㎡㎏℃]|平方公里|平方公尺|平方千米|平方米|立方公尺|立方米|"
    r"公里|公尺|公分|公斤|公頃|公顷|公釐|毫米|厘米|釐米|千米|千克|英里|英尺|海里|"
    r"美元|港元|歐元|欧元|日圓|日圆|日元|萬人|万人|億元|亿元|萬元|万元|"
    r"小時|小时|個月|个月|噸級|吨级|"
    r"[個个人名家項项所次倍歲岁戶户座條条件台輛辆噸吨畝亩米元天週周屆届期批位間间層层種种席年])"
)
# 6個 of 6個小時, 3個 of 3個月: the measure word counts the unit that follows it.
_AFTER_GE = re.compile("小時|小时|月|星期|禮拜|礼拜")
_FRACTION = re.compile(r"分之[0-9０-９一二两兩三四五六七八九十百千]+")
# A year given again in another calendar, in brackets: 嘉靖四十四年（1565年）.
_BRACKETED_YEAR = re.compile(r"[（(][^（）()]{0,12}[0-9０-９]{2,4}[^（）()]{0,6}[）)]")
# 多久以前 / 多少年前 ask how long ago: the answer keeps its 前 (2500年前).
_BEFORE_NOW = re.compile("年?[以之]?前")
_AGO = re.compile("以前|之前|前")
# A stretch or part of the time named (一次大戰期間, 民國26年上半年, 白堊紀中期, 2015年年底).
_PART_OF_TIME = re.compile(
    "期間|期间|時期|时期|年間|年间|上半年|下半年|年底|年末|中期|初期|末期|中葉|中叶|間|间"
)


def _is_numeral(c: str) -> bool:
    return c.isdigit() or c in _NUMERAL_CHARS


def _number_edges(question: Question, sentence: str, start: int, end: int) -> tuple[int, int]:
    """Widen a number or date span to what belongs to it: the era it is counted in (民國39年),
    第 when the question asks 第幾, the unit or measure word after its last digit (1600個,
    20㎝, 6個小時), the rest of a fraction (五分之四), 前 when the question asks how long ago
    (多久以前: 2500年前), a year restated in brackets (嘉靖四十四年（1565年）), and for a date
    the stretch or part of the time it names (一次大戰期間, 白堊紀中期, 二十六年間)."""
    if _is_numeral(sentence[start]):
        era = next((e for e in _ERAS if sentence[max(0, start - len(e)) : start] == e), "")
        start -= len(era)
        if not era and sentence[start - 1 : start] == "第" and question.left.endswith("第"):
            start -= 1
    last = sentence[end - 1]
    if last in "個个" and end - start > 1 and _is_numeral(sentence[end - 2]):
        more = _AFTER_GE.match(sentence, end)
        end = more.end() if more else end
    elif _is_numeral(last):
        unit = _COUNTED_IN.match(sentence, end)
        end = unit.end() if unit else end
    elif last == "分":
        fraction = _FRACTION.match(sentence, end - 1)
        end = fraction.end() if fraction else end
    if sentence[end - 1] == "年":
        if question.kind == "number" and _BEFORE_NOW.match(question.right):
            ago = _AGO.match(sentence, end)
            end = ago.end() if ago else end
        elif question.kind == "date":
            bracketed = _BRACKETED_YEAR.match(sentence, end)
            end = bracketed.end() if bracketed else end
    if question.kind == "date":
        part = _PART_OF_TIME.match(sentence, end)
        if part and (len(part.group(0)) > 1 or sentence[end - 1] == "年"):
            end = part.end()
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
