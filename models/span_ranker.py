"""A learned answer-span ranker: sentence, then start and end, then the span itself.

Four small gradient-boosted tree models (LightGBM), trained by ``scripts/train_span_ranker.py`` on
CMRC 2018 trial and DRCD test (see ``models/data/README.md`` for the data's licences):

1. **sentence**: which sentence of the retrieved passages holds the answer (question-word coverage,
   the longest stretch it repeats, the question's left and right parts found, retrieval rank).
2. **start** and **end**: for every character boundary of the best sentences, whether an answer
   starts or ends there. The features say how the text around the boundary repeats the question
   (``left + wh-word + right``: the text just before an answer repeats the end of the left part,
   the text just after it the start of the right part), what kind of character stands on each
   side (clause marks, quotes, digits, units, function words), how far the question's words are,
   and whether the text on each side fits the type the question asks for (a year, a number with
   its unit, a person, a place or organisation suffix, a 《》 title; :func:`asked_type`).
3. **span**: the pairs of the best starts and ends, with what lies between them (length, clause
   marks, balanced quotes, digits, the question's own words, the unit the question asks for,
   fitting ends it runs past, whether it sits between the question's repeated parts).

Everything works on characters, so traditional script needs no word segmenter. The answer is
always ``sentence[start:end]`` of a retrieved passage: the models only choose offsets.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models.spans import Question, analyse, extract, strip_endings
from models.text import split_sentences

MODEL_PATH = Path(__file__).resolve().parent / "data" / "span_ranker.json.gz"

TOP_SENTENCES = 3  # sentences whose boundaries are scored
PREFILTER = 14  # sentences kept by the cheap first look for the sentence model
TOP_BOUNDARIES = 8  # best starts and best ends kept per sentence
MAX_SPAN = 80  # characters

# -- characters -----------------------------------------------------------------------------------
_FUNCTION_CHARS = (
    "的是在了和与與及为為等以于於被由将將把对對从從向到也都而或并並其之称稱叫作有中上后後前"
    "时時多余餘第共达達至各该該这這那此约約近超逾年月日号號人个個种種位名次元米岁歲"
)
_CJK_NUMERALS = "零〇一二两兩三四五六七八九十百千万萬亿億壹贰貳叁參肆伍陆陸柒捌玖拾佰仟"
_OPEN = '“‘《「『（([【〈〔"'
_CLOSE = "”’》」』）)]】〉〕"
_PAIRS = {"“": "”", "‘": "’", "《": "》", "「": "」", "『": "』", "（": "）", "(": ")", "[": "]"}
_PAIRS.update({"【": "】", "〈": "〉", "〔": "〕"})
_PAIR_OPEN = "“《「『（("
_PAIR_CLOSE = "”》」』）)"
_CLASSES = {
    "none": 0,
    "comma": 1,
    "dun": 2,
    "colon": 3,
    "stop": 4,
    "open": 5,
    "close": 6,
    "digit": 7,
    "latin": 8,
    "numeral": 9,
    "space": 10,
    "symbol": 11,
    "cjk": 12,
}
_CHAR_CLASS: dict[str, int] = {}
for _i, _c in enumerate(dict.fromkeys(_FUNCTION_CHARS)):
    _CHAR_CLASS[_c] = 16 + _i
N_CHAR_CLASSES = 16 + len(dict.fromkeys(_FUNCTION_CHARS))


def char_class(c: str) -> int:
    """A small category for a character; frequent function words and units have their own."""
    if not c:
        return 0
    got = _CHAR_CLASS.get(c)
    if got is not None:
        return got
    if c in "，,":
        return 1
    if c == "、":
        return 2
    if c in "；;：:":
        return 3
    if c in "。！？!?…":
        return 4
    if c in _OPEN:
        return 5
    if c in _CLOSE:
        return 6
    if c.isdigit():
        return 7
    if c in _CJK_NUMERALS:
        return 9
    if c.isascii() and c.isalpha():
        return 8
    if c.isspace():
        return 10
    if c.isalpha():
        return 12
    return 11


def normalize_chars(text: str) -> str:
    """NFKC and lower case, character by character where that would move offsets."""
    whole = unicodedata.normalize("NFKC", text).lower()
    if len(whole) == len(text):
        return whole
    out = []
    for c in text:
        n = unicodedata.normalize("NFKC", c).lower()
        out.append(n if len(n) == 1 else c)
    return "".join(out)


_WH_IDS = {
    w: i + 1
    for i, w in enumerate(
        (
            "什么",
            "什麼",
            "什么样的",
            "什麼樣的",
            "什么时候",
            "什麼時候",
            "什么时间",
            "什麼時間",
            "为什么",
            "為什麼",
            "哪一年",
            "哪一天",
            "哪一个",
            "哪一個",
            "哪个",
            "哪個",
            "哪些",
            "哪里",
            "哪裡",
            "哪儿",
            "哪兒",
            "哪位",
            "哪",
            "多少",
            "多长",
            "多長",
            "多大",
            "多久",
            "多远",
            "多遠",
            "多高",
            "几",
            "幾",
            "谁",
            "誰",
            "何时",
            "何時",
            "何处",
            "何處",
            "何地",
            "何人",
            "何种",
            "何種",
            "如何",
            "怎样",
            "怎樣",
            "怎么",
            "怎麼",
            "为何",
            "為何",
        )
    )
}
_KINDS = {"what": 0, "date": 1, "number": 2, "person": 3, "place": 4, "name": 5, "how": 6}
_STRIP_LEFT_END = ("是", "为", "為", "的", "在", "了", "叫", "有", "于", "於", "被", "由")
_STRIP_RIGHT_START = "的是了呢吗嗎"
_NUMBERISH = re.compile(r"[0-9０-９零〇一二两兩三四五六七八九十百千万萬亿億]")
_DATE = re.compile(r"[0-9０-９零〇一二三四五六七八九十]\s*[年月日號号]|世纪|世紀|年代|朝|时期|時期")
_NUMBER_SPAN = re.compile(
    r"(?:约|約|近|超过|超過|逾|达|達|共)?"
    r"(?:[0-9０-９][0-9０-９,，.．]*|[零〇一二两兩三四五六七八九十百千万萬亿億]+)"
    r"(?:多|余|餘)?\S{0,3}"
)


_CLASSIFIERS = "个個种種场場位所家条條本部座次间間支名件项項类類届屆代"
_HEAD_STOP = "的之是在于於为為和与與及由被将將把对對从從到了中上时時"


def _bigrams(text: str) -> frozenset[str]:
    return frozenset(
        text[i : i + 2] for i in range(len(text) - 1) if text[i].isalnum() and text[i + 1].isalnum()
    )


@dataclass(frozen=True, slots=True)
class QuestionView:
    """The question, normalised, split at its question word, with what each part ends in."""

    text: str  # normalised, end punctuation removed
    parsed: Question
    left: str
    right: str
    left_core: str  # the left part without frame words at its end (是, 的, 为 …)
    right_core: str
    unit: str  # the character after 多少/几 (多少人 → 人), or ""
    head: str  # the noun a "which" question names (哪一场革命 → 革命), or ""
    kind: int
    wh: int
    chars: frozenset[str]
    bigrams: frozenset[str]
    left_bigrams: frozenset[str]
    right_bigrams: frozenset[str]

    @classmethod
    def of(cls, question: str) -> QuestionView:
        parsed = analyse(question)
        text = normalize_chars(parsed.text)
        left, right = normalize_chars(parsed.left), normalize_chars(parsed.right)
        left_core = strip_endings(left, _STRIP_LEFT_END)
        right_core = right.lstrip(_STRIP_RIGHT_START)
        unit = ""
        if parsed.wh in ("多少", "几", "幾") and right:
            unit = right[0] if right[0] not in "的是" else ""
        head = ""
        if parsed.wh.startswith("哪") or parsed.wh in ("什么", "什麼", "何种", "何種"):
            rest = right.lstrip("一")
            if parsed.wh in ("哪", "哪一") and rest[:1] in _CLASSIFIERS:
                rest = rest[1:]
            for c in rest[:4]:
                if c in _HEAD_STOP or not c.isalnum():
                    break
                head += c
        wh_chars = set(parsed.wh)
        chars = frozenset(c for c in text if c.isalnum() and c not in wh_chars)
        return cls(
            text,
            parsed,
            left,
            right,
            left_core,
            right_core,
            unit,
            head,
            _KINDS.get(parsed.kind, 0),
            _WH_IDS.get(parsed.wh, 0),
            chars,
            _bigrams(text),
            _bigrams(left),
            _bigrams(right),
        )


# -- string matching helpers ---------------------------------------------------------------------
def _suffix_in(s: str, b: int, target: str, cap: int = 12) -> int:
    """Longest k <= cap such that s[b-k:b] occurs in target."""
    if not target:
        return 0
    k = 0
    while k < cap and k < b and s[b - k - 1 : b] in target:
        k += 1
    return k


def _prefix_in(s: str, b: int, target: str, cap: int = 12) -> int:
    """Longest k <= cap such that s[b:b+k] occurs in target."""
    if not target:
        return 0
    k, n = 0, len(s)
    while k < cap and b + k < n and s[b : b + k + 1] in target:
        k += 1
    return k


def _suffix_equal(s: str, b: int, target: str, cap: int = 12) -> int:
    """Longest k such that s[b-k:b] == target[-k:]."""
    k = 0
    while k < cap and k < b and k < len(target) and s[b - k - 1] == target[-k - 1]:
        k += 1
    return k


def _prefix_equal(s: str, b: int, target: str, cap: int = 12) -> int:
    """Longest k such that s[b:b+k] == target[:k]."""
    k, n = 0, len(s)
    while k < cap and b + k < n and k < len(target) and s[b + k] == target[k]:
        k += 1
    return k


def longest_common(question: str, text: str, cap: int = 40) -> int:
    """Length of the longest piece of ``question`` found in ``text``."""
    best, n = 0, len(question)
    for a in range(n):
        if n - a <= best:
            break
        k = best + 1
        while a + k <= n and k <= cap and question[a : a + k] in text:
            best = k
            k += 1
    return best


# -- sentence features ----------------------------------------------------------------------------
SENTENCE_FEATURES = (
    "coverage",
    "passage_coverage",
    "retrieval_share",
    "passage_rank",
    "heuristic",
    "longest",
    "longest_share",
    "char_share",
    "bigram_share",
    "bigram_idf_share",
    "left_core_found",
    "right_core_found",
    "length",
    "index_in_passage",
    "has_number",
    "has_date",
    "has_quote",
    "kind",
    "coverage_gap",
    "heuristic_gap",
    "longest_gap",
    "bigram_idf_gap",
    "question_length",
    "left_share",
    "right_share",
    "previous_share",
    "next_share",
    "rough_rank",
    "head_found",
)


class Coverage(Protocol):
    def coverage(self, text: str) -> float: ...


@dataclass(slots=True)
class SentenceItem:
    cand: int  # index into the candidates
    start: int  # offsets inside the candidate's text
    end: int
    text: str
    norm: str
    passage_cov: float
    heuristic: float
    features: list[float]


def sentence_items(
    qv: QuestionView,
    terms: Coverage,
    texts: Sequence[str],
    scores: Sequence[float],
    idf: Callable[[str], float],
    keep: int = PREFILTER,
) -> list[SentenceItem]:
    """The sentences of the passages most likely to answer, with their features.

    A cheap first look (the question's character pairs each sentence repeats, by rarity) keeps
    ``keep`` sentences; only those get the costlier word coverage and alignment features.
    """
    top_score = max(scores, default=1.0) or 1.0
    q = qv.text
    # Sorted: summed in the set's order, the floats (and so the answers) would depend on the
    # process's string hash seed.
    weights = {g: idf(g) for g in sorted(qv.bigrams)}
    total_w = sum(weights.values()) or 1.0
    rough: list[tuple[float, int, int, int, int, str, list[str]]] = []
    shares: dict[tuple[int, int], float] = {}
    for rank, text in enumerate(texts):
        for index, (s, e) in enumerate(split_sentences(text)):
            norm = normalize_chars(text[s:e])
            present = [g for g in weights if g in norm]
            share = sum(weights[g] for g in present) / total_w
            shares[rank, index] = share
            rough.append((share + 0.4 * scores[rank] / top_score, rank, index, s, e, norm, present))
    rough.sort(key=lambda r: -r[0])
    passage_covs: dict[int, float] = {}
    items: list[SentenceItem] = []
    for rough_rank, (_, rank, index, s, e, norm, present) in enumerate(rough[:keep]):
        text = texts[rank]
        if rank not in passage_covs:
            passage_covs[rank] = terms.coverage(text)
        passage_cov = passage_covs[rank]
        raw = text[s:e]
        cov = terms.coverage(raw)
        heuristic = (
            cov
            + 0.3 * passage_cov
            + 0.2 * scores[rank] / top_score
            - 0.02 * rank
            - 0.0005 * max(0, e - s - 120)
        )
        longest = longest_common(q, norm)
        features = [
            cov,
            passage_cov,
            scores[rank] / top_score,
            rank,
            heuristic,
            longest,
            longest / max(1, len(q)),
            len(qv.chars & set(norm)) / max(1, len(qv.chars)),
            len(present) / max(1, len(qv.bigrams)),
            sum(weights[g] for g in present) / total_w,
            longest_common(qv.left_core[-8:], norm) if qv.left_core else -1,
            longest_common(qv.right_core[:8], norm) if qv.right_core else -1,
            e - s,
            index,
            float(bool(_NUMBERISH.search(norm))),
            float(bool(_DATE.search(norm))),
            float(any(c in _OPEN for c in norm)),
            qv.kind,
            0.0,
            0.0,
            0.0,
            0.0,
            len(q),
            sum(g in norm for g in qv.left_bigrams) / max(1, len(qv.left_bigrams)),
            sum(g in norm for g in qv.right_bigrams) / max(1, len(qv.right_bigrams)),
            shares.get((rank, index - 1), -1.0),
            shares.get((rank, index + 1), -1.0),
            rough_rank,
            float(qv.head in norm) if qv.head else -1.0,
        ]
        items.append(SentenceItem(rank, s, e, raw, norm, passage_cov, heuristic, features))
    if items:
        best_cov = max(it.features[0] for it in items)
        best_h = max(it.features[4] for it in items)
        best_l = max(it.features[5] for it in items)
        best_w = max(it.features[9] for it in items)
        for it in items:
            f = it.features
            f[18], f[19], f[20], f[21] = (
                f[0] - best_cov,
                f[4] - best_h,
                f[5] - best_l,
                f[9] - best_w,
            )
    return items


# -- answer types ----------------------------------------------------------------------------------
# Most wrong spans in the right sentence were the wrong kind of phrase (a place for "谁", a clause
# for "多少人"): what the question asks for is read from its question word and the noun after it,
# and set against what a candidate ends (or starts) with.
ASKED_TYPES = (
    "other",
    "year",
    "date",
    "unit",
    "number",
    "person",
    "place",
    "org",
    "title",
    "quote",
    "how",
)
_ASKED = {name: i for i, name in enumerate(ASKED_TYPES)}
_PLACE_HEADS = (
    "国家", "國家", "城市", "地区", "地區", "地方", "地点", "地點", "省", "市", "县", "縣", "州",
    "岛", "島", "国", "國", "洲", "城", "镇", "鎮", "村", "区", "區", "河", "山", "湖", "港",
)  # fmt: skip
_ORG_HEADS = (
    "组织", "組織", "机构", "機構", "公司", "大学", "大學", "学校", "學校", "学院", "學院",
    "部门", "部門", "团体", "團體", "政党", "政黨", "球队", "球隊", "单位", "單位", "机关",
    "機關", "企业", "企業", "政府", "银行", "銀行", "会", "會", "党", "黨", "队", "隊", "军", "軍",
)  # fmt: skip
_TITLE_HEADS = (
    "书", "書", "作品", "电影", "電影", "小说", "小說", "歌", "曲", "专辑", "專輯", "著作",
    "杂志", "雜誌", "报", "報", "节目", "節目", "游戏", "遊戲", "剧", "劇", "片", "诗", "詩",
    "刊", "条约", "條約", "协议", "協議",
)  # fmt: skip
_PERSON_HEADS = (
    "人", "者", "家", "员", "員", "手", "帝", "王", "统", "統", "席", "师", "師", "官", "物",
)  # fmt: skip
_QUOTE_HEADS = ("口号", "口號", "称号", "稱號", "绰号", "綽號", "别称", "別稱", "称呼", "稱呼")
_PLACE_END = frozenset("省市县縣区區镇鎮乡鄉村州国國岛島洲山河江湖海港城道路街峰")
_ORG_END = frozenset("会會部局厅廳署委院校学學所党黨团團队隊社司处處馆館行台臺军軍")
_MEASURE = frozenset(
    "个個人元米岁歲年次名位家座件项項倍%％吨噸亩畝里天度分秒种種万萬亿億千百十只隻条條户戶台辆輛"
)
_DATE_END = frozenset("年月日号號代纪紀")
_NUMBER_START = frozenset("约約近超逾公第")
_QUOTE_END = frozenset('”」』》"')
_QUOTE_START = frozenset('“「『《"')
# the suffix type of the character before a boundary (categorical)
_SUFFIX_NONE, _SUFFIX_YEAR, _SUFFIX_DATE, _SUFFIX_PLACE, _SUFFIX_ORG = 0, 1, 2, 3, 4
_SUFFIX_TITLE, _SUFFIX_QUOTE, _SUFFIX_DIGIT, _SUFFIX_NUMERAL, _SUFFIX_MEASURE = 5, 6, 7, 8, 9


def asked_type(qv: QuestionView) -> int:
    """What the question asks for (an index into :data:`ASKED_TYPES`)."""
    parsed, wh, head = qv.parsed, qv.parsed.wh, qv.head
    if wh in ("谁", "誰", "何人", "哪位"):
        return _ASKED["person"]
    if parsed.kind == "date":
        after = wh + parsed.right[:2]
        return _ASKED["year"] if after.startswith(("哪一年", "哪年", "何年")) else _ASKED["date"]
    if wh in ("多少", "几", "幾"):
        return _ASKED["unit"] if qv.unit else _ASKED["number"]
    if parsed.kind == "number":
        return _ASKED["number"]
    if parsed.kind == "place":
        return _ASKED["place"]
    if parsed.kind == "how":
        return _ASKED["how"]
    if head:
        for kind, heads in (
            ("quote", _QUOTE_HEADS),
            ("place", _PLACE_HEADS),
            ("org", _ORG_HEADS),
            ("title", _TITLE_HEADS),
            ("person", _PERSON_HEADS),
        ):
            # "什么泡封敌人" is a verb phrase, not a person: person heads are short nouns
            if head.endswith(heads) and (kind != "person" or len(head) <= 2):
                return _ASKED[kind]
    if parsed.kind == "name" or "《" in qv.text:
        return _ASKED["quote"] if parsed.kind == "name" else _ASKED["title"]
    return _ASKED["other"]


def _suffix_type(c: str) -> int:
    if c == "年":
        return _SUFFIX_YEAR
    if c in _DATE_END:
        return _SUFFIX_DATE
    if c == "》":
        return _SUFFIX_TITLE
    if c in _QUOTE_END:
        return _SUFFIX_QUOTE
    if c.isdigit():
        return _SUFFIX_DIGIT
    if c in _CJK_NUMERALS:
        return _SUFFIX_NUMERAL
    if c in _MEASURE:
        return _SUFFIX_MEASURE
    if c in _PLACE_END:
        return _SUFFIX_PLACE
    if c in _ORG_END:
        return _SUFFIX_ORG
    return _SUFFIX_NONE


def _type_fits(
    asked: int, unit: str, s: str, char_tags: np.ndarray, words: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per boundary b: whether s[b-1] can end, and s[b] can start, an answer of the asked type
    (1 or 0; -1 when the type says nothing about its edges)."""
    n = len(s)
    end_fit = np.full(n + 1, -1.0, dtype=np.float32)
    start_fit = np.full(n + 1, -1.0, dtype=np.float32)
    name = ASKED_TYPES[asked]
    if name in ("other", "how"):
        return end_fit, start_fit
    chars = list(s)
    if name == "year":
        ends = [c == "年" for c in chars]
    elif name == "date":
        ends = [c in _DATE_END for c in chars]
    elif name == "unit":
        # 多少厘米 ends in 米 as well as 厘 (…15厘米): the unit word's first or second character
        ends = [
            c == unit[:1] or (len(unit) > 1 and s[t - 1 : t + 1] == unit)
            for t, c in enumerate(chars)
        ]
    elif name == "number":
        ends = [c.isdigit() or c in _CJK_NUMERALS or c in _MEASURE for c in chars]
    elif name == "title":
        ends = [c == "》" for c in chars]
    elif name == "quote":
        ends = [c in _QUOTE_END for c in chars]
    else:
        tag = {"person": 2, "place": 3, "org": 4}[name]
        suffixes = {"person": frozenset(), "place": _PLACE_END, "org": _ORG_END}[name]
        ends = [c in suffixes or t == tag for c, t in zip(chars, char_tags.tolist(), strict=True)]
    if name in ("year", "date", "unit", "number"):
        starts = [c.isdigit() or c in _CJK_NUMERALS or c in _NUMBER_START for c in chars]
    elif name in ("title", "quote"):
        starts = [c in _QUOTE_START for c in chars]
    else:
        tag = {"person": 2, "place": 3, "org": 4}[name]
        starts = [t == tag and words[b] > 0 for b, t in enumerate(char_tags.tolist())]
    end_fit[0] = 0.0
    end_fit[1:] = ends
    start_fit[n] = 0.0
    start_fit[:n] = starts
    return end_fit, start_fit


def _alignment(s: str, left_core: str, right_core: str) -> tuple[int, int, int, int]:
    """Where the sentence repeats the question around its question word: the end of the longest
    stretch of the left part's end it repeats, and the start of the right part's beginning, with
    their lengths (-1 and 0 when not found). When both are found, the closest pair in order."""

    def found(pieces: list[str], at_end: bool) -> tuple[list[int], int]:
        for piece in pieces:
            hits, i = [], s.find(piece)
            while i >= 0:
                hits.append(i + len(piece) if at_end else i)
                i = s.find(piece, i + 1)
            if hits:
                return hits, len(piece)
        return [], 0

    shortest_left = 1 if len(left_core) == 1 else 2
    shortest_right = 1 if len(right_core) == 1 else 2
    lefts, k_left = found(
        [left_core[-k:] for k in range(min(len(left_core), 12), shortest_left - 1, -1)], True
    )
    rights, k_right = found(
        [right_core[:k] for k in range(min(len(right_core), 12), shortest_right - 1, -1)], False
    )
    if lefts and rights:
        ordered = [(r - a, a, r) for a in lefts for r in rights if a <= r]
        if ordered:
            _, a, r = min(ordered)
            return a, r, k_left, k_right
    return (lefts[0] if lefts else -1), (rights[0] if rights else -1), k_left, k_right


TYPE_BOUNDARY_FEATURES = (
    "asked",
    "suffix_type_before",
    "end_fits",
    "start_fits",
    "fit_end_ahead",
    "fit_start_behind",
    "align_left_gap",
    "align_right_gap",
    "align_left_length",
    "align_right_length",
)


def type_boundary_columns(qv: QuestionView, view: SentenceView) -> list[np.ndarray]:
    """The :data:`TYPE_BOUNDARY_FEATURES` of every boundary: the asked type, whether the text on
    each side fits it, how far the next fitting end is, and where the question's context sits."""
    s = view.norm
    n = len(s)
    asked = asked_type(qv)
    char_tags = view.tags[view.word_of] if n else np.zeros(0, dtype=np.int64)
    unit = ""
    if qv.unit:
        right = qv.right
        unit = right[: 2 if len(right) > 1 and right[1].isalnum() and right[1] not in "的是" else 1]
    end_fit, start_fit = _type_fits(asked, unit, s, char_tags, view.words)
    suffix = np.zeros(n + 1, dtype=np.float32)
    suffix[1:] = [_suffix_type(c) for c in s]
    # a fitting end a few characters on says "not yet"; a fitting start behind says "too late"
    ahead = np.full(n + 1, 99.0, dtype=np.float32)
    behind = np.full(n + 1, 99.0, dtype=np.float32)
    nxt = -1
    for b in range(n, -1, -1):
        if end_fit[b] > 0:
            nxt = b
        if nxt >= 0:
            ahead[b] = min(99, nxt - b)
    last = -1
    for b in range(n + 1):
        if start_fit[b] > 0:
            last = b
        if last >= 0:
            behind[b] = min(99, b - last)
    a, r, k_left, k_right = _alignment(s, qv.left_core, qv.right_core)
    positions = np.arange(n + 1, dtype=np.float32)
    left_gap = np.clip(positions - a, -40, 40) if a >= 0 else np.full(n + 1, 99.0, np.float32)
    right_gap = np.clip(r - positions, -40, 40) if r >= 0 else np.full(n + 1, 99.0, np.float32)
    full = np.ones(n + 1, dtype=np.float32)
    return [
        full * asked,
        suffix,
        end_fit,
        start_fit,
        ahead,
        behind,
        left_gap.astype(np.float32),
        right_gap.astype(np.float32),
        full * k_left,
        full * k_right,
    ]


# -- boundary features ---------------------------------------------------------------------------
BOUNDARY_FEATURES = (
    "sentence_score",
    "sentence_rank",
    "kind",
    "wh",
    "position",
    "position_share",
    "from_end",
    "class_before",
    "class_after",
    "class_before2",
    "class_after2",
    "before_in_question",
    "before_in_left",
    "before_in_right",
    "before_ends_left",
    "after_in_question",
    "after_in_left",
    "after_in_right",
    "after_starts_right",
    "before_window_left",
    "after_window_right",
    "after_char_in_question",
    "before_char_in_question",
    "matched_before_distance",
    "matched_after_distance",
    "clause_start_distance",
    "clause_end_distance",
    "clause_density_after",
    "clause_density_before",
    "clause_is_best_after",
    "clause_is_best_before",
    "number_boundary",
    "unit_after",
    "unit_before",
    "in_quote",
    "left_slot",
    "right_slot",
    "head_before",
    "word_boundary",
    "left_hits_before_4",
    "left_hits_after_4",
    "right_hits_before_4",
    "right_hits_after_4",
    "left_share_before_12",
    "left_share_after_12",
    "right_share_before_12",
    "right_share_after_12",
    "left_share_before_30",
    "left_share_after_30",
    "right_share_before_30",
    "right_share_after_30",
    "left_length",
    "right_length",
    "tag_before",
    "tag_after",
    "odds_before",
    "odds_after",
    *TYPE_BOUNDARY_FEATURES,
)
_CLAUSE_MARK = frozenset("，,；;：:。！？!?…")


@dataclass(slots=True)
class SentenceView:
    """Per-character facts of one sentence that the boundary and span features share."""

    raw: str
    norm: str
    classes: list[int]
    matched: list[int]  # 1 where the character is half of a character pair the question has
    in_question: list[int]
    clause_of: list[int]
    clause_bounds: list[tuple[int, int]]
    clause_density: list[float]
    prefix: dict[str, np.ndarray]
    words: np.ndarray  # 1 at boundaries between words (-1 when unknown), length n + 1
    word_of: np.ndarray  # each character's word number
    tags: np.ndarray  # each word's part of speech (see _POS)
    odds: np.ndarray  # each character's answer log odds (CharTable)
    slot: tuple[int, int] | None


def _pair_hits(norm: str, grams: frozenset[str]) -> np.ndarray:
    n = len(norm)
    hits = np.zeros(n, dtype=np.int32)
    if not grams:
        return hits
    for t in range(n - 1):
        if norm[t : t + 2] in grams:
            hits[t] = hits[t + 1] = 1
    return hits


_POS = {
    "n": 1, "ng": 1, "nl": 1, "nr": 2, "nrfg": 2, "nrt": 2, "ns": 3, "nt": 4, "nz": 5,
    "v": 6, "vd": 6, "vg": 6, "vi": 6, "vq": 6, "vn": 7, "a": 8, "ad": 8, "an": 8, "ag": 8,
    "d": 9, "m": 10, "mq": 10, "q": 11, "t": 12, "tg": 12, "p": 13, "c": 14, "uj": 15,
    "ul": 15, "uz": 15, "uv": 15, "ud": 15, "ug": 15, "f": 16, "r": 17, "x": 18, "eng": 19,
    "s": 21, "b": 22, "l": 23, "i": 24, "j": 25,
}  # fmt: skip
_NOUNISH_TAGS = np.array((1, 2, 3, 4, 5, 7, 12, 19, 23, 24, 25))


def _words(simplified: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """jieba's words and tags on the text in simplified script: 1 at word boundaries, each
    character's word number, and each word's tag."""
    import jieba.posseg

    n = len(simplified)
    bounds = np.zeros(n + 1, dtype=np.float32)

    bounds[:] = 0.0
    bounds[0] = 1.0
    word_of = np.zeros(n, dtype=np.int64)
    tags = []
    pos = 0
    for w, (word, flag) in enumerate(jieba.posseg.cut(simplified, HMM=False)):
        word_of[pos : pos + len(word)] = w
        pos += len(word)
        bounds[pos] = 1.0
        tags.append(_POS.get(flag, 20))
    return bounds, word_of, np.array(tags, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class CharTable:
    """How much more often a character stands inside answers to each kind of question than
    elsewhere in the sentences that hold them (log odds, smoothed towards all kinds).
    Characters are looked up in simplified script, so one table serves both scripts."""

    values: dict[str, tuple[float, ...]]
    default: tuple[float, ...]

    def lookup(self, chars: str, kind: int) -> np.ndarray:
        values, fallback = self.values, self.default[kind]
        return np.fromiter(
            ((values[c][kind] if c in values else fallback) for c in chars),
            dtype=np.float64,
            count=len(chars),
        )

    @classmethod
    def build(
        cls, samples: Sequence[tuple[int, str, Sequence[tuple[int, int]]]], min_count: int = 5
    ) -> CharTable:
        """``samples``: (question kind, sentence in simplified script, answer spans in it)."""
        kinds = len(_KINDS)
        inside: list[dict[str, int]] = [{} for _ in range(kinds)]
        inside_all: dict[str, int] = {}
        outside: dict[str, int] = {}
        for kind, text, spans in samples:
            mask = [False] * len(text)
            for a, b in spans:
                for t in range(a, b):
                    mask[t] = True
            for c, m in zip(text, mask, strict=True):
                if m:
                    inside[kind][c] = inside[kind].get(c, 0) + 1
                    inside_all[c] = inside_all.get(c, 0) + 1
                else:
                    outside[c] = outside.get(c, 0) + 1
        vocab = len(set(inside_all) | set(outside)) + 1
        total_in = sum(inside_all.values())
        total_out = sum(outside.values())
        totals = [sum(d.values()) for d in inside]
        prior = 50.0

        def odds(c: str, kind: int) -> float:
            p_all = (inside_all.get(c, 0) + 1) / (total_in + vocab)
            p_kind = (inside[kind].get(c, 0) + prior * p_all) / (totals[kind] + prior)
            p_out = (outside.get(c, 0) + 1) / (total_out + vocab)
            return round(math.log(p_kind / p_out), 3)

        chars = {
            c
            for c in set(inside_all) | set(outside)
            if inside_all.get(c, 0) + outside.get(c, 0) >= min_count
        }
        values = {c: tuple(odds(c, k) for k in range(kinds)) for c in sorted(chars)}
        default = tuple(odds("\x00", k) for k in range(kinds))
        return cls(values, default)

    def to_json(self) -> dict[str, Any]:
        return {
            "values": {c: list(v) for c, v in self.values.items()},
            "default": list(self.default),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CharTable:
        return cls({c: tuple(v) for c, v in data["values"].items()}, tuple(data["default"]))


def simplified_chars(raw: str) -> str:
    """The text folded to simplified script (as retrieval does), if that keeps its length."""
    from embeddings.tokens import normalize

    folded = normalize(raw)
    return folded if len(folded) == len(raw) else normalize_chars(raw)


def sentence_view(
    qv: QuestionView, raw: str, norm: str, table: CharTable | None = None
) -> SentenceView:
    n = len(norm)
    simplified = simplified_chars(raw)
    classes = [char_class(c) for c in norm]
    matched_arr = _pair_hits(norm, qv.bigrams)
    matched = matched_arr.tolist()
    in_question = [1 if c in qv.chars else 0 for c in norm]
    clause_of, bounds = [], []
    start = 0
    for t, c in enumerate(norm):
        clause_of.append(len(bounds))
        if c in _CLAUSE_MARK:
            bounds.append((start, t + 1))
            start = t + 1
    if start < n or not bounds:
        bounds.append((start, n))
    density = [
        sum(matched[a:b]) / max(1, sum(1 for c in norm[a:b] if c.isalnum())) for a, b in bounds
    ]
    arr = np.array(classes, dtype=np.int32)
    codes = np.fromiter(map(ord, norm), dtype=np.int64, count=n)
    slot = extract(qv.parsed, raw)
    words = _words(simplified)
    char_tag = words[2][words[1]] if n else np.zeros(0, dtype=np.int64)
    odds = table.lookup(simplified, qv.kind) if table is not None else np.zeros(n)
    columns = {
        "comma": (arr == 1) | (arr == 3),
        "dun": arr == 2,
        "stop": arr == 4,
        "open": arr == 5,
        "close": arr == 6,
        "digit": arr == 7,
        "latin": arr == 8,
        "numeral": arr == 9,
        "space": arr == 10,
        "matched": matched_arr,
        "left": _pair_hits(norm, qv.left_bigrams),
        "right": _pair_hits(norm, qv.right_bigrams),
        "in_question": np.array(in_question, dtype=np.int32),
        "function": arr >= 16,
        "alnum": np.array([c.isalnum() for c in norm], dtype=bool),
        "straight": codes == ord('"'),
        "odds": odds,
        "odd_low": odds < -1.0,
        "verb": (char_tag == 6) | (char_tag == 9) | (char_tag == 13),
        "noun": np.isin(char_tag, _NOUNISH_TAGS),
    }
    for t, (o, c) in enumerate(zip(_PAIR_OPEN, _PAIR_CLOSE, strict=True)):
        columns[f"open{t}"] = codes == ord(o)
        columns[f"close{t}"] = codes == ord(c)
    # one cumulative sum for all: prefix[key][j] - prefix[key][i] counts inside [i, j)
    table_ = np.zeros((n + 1, len(columns)), dtype=np.float64)
    for k, col in enumerate(columns.values()):
        table_[1:, k] = col
    np.cumsum(table_, axis=0, out=table_)
    prefix = {key: table_[:, k] for k, key in enumerate(columns)}
    return SentenceView(
        raw,
        norm,
        classes,
        matched,
        in_question,
        clause_of,
        bounds,
        density,
        prefix,
        *words,
        odds,
        slot,
    )


def _windows(cum: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts in the ``width`` characters before and after every boundary."""
    n = len(cum) - 1
    b = np.arange(n + 1)
    before = cum[b] - cum[np.maximum(0, b - width)]
    after = cum[np.minimum(n, b + width)] - cum[b]
    return before.astype(np.float32), after.astype(np.float32)


def _suffix_runs(s: str, target: str, cap: int = 12) -> np.ndarray:
    """For every boundary b, the longest k <= cap such that s[b-k:b] occurs in target."""
    n = len(s)
    out = np.zeros(n + 1, dtype=np.float32)
    if not target:
        return out
    k = 0
    for b in range(1, n + 1):
        k = min(k + 1, cap)
        while k and s[b - k : b] not in target:
            k -= 1
        out[b] = k
    return out


def _prefix_runs(s: str, target: str, cap: int = 12) -> np.ndarray:
    """For every boundary b, the longest k <= cap such that s[b:b+k] occurs in target."""
    # s[b:b+k] is in target exactly when its mirror ends boundary len(s) - b of the mirrored s.
    return _suffix_runs(s[::-1], target[::-1], cap)[::-1].copy()


def _distances(marks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per boundary: characters back to the last marked character before it, and on to the
    first marked character after it (99 when there is none)."""
    n = len(marks)
    before = np.full(n + 1, 99.0, dtype=np.float32)
    after = np.full(n + 1, 99.0, dtype=np.float32)
    last = -1
    for b in range(1, n + 1):
        if marks[b - 1]:
            last = b - 1
        if last >= 0:
            before[b] = min(99, b - 1 - last)
    nxt = -1
    for b in range(n - 1, -1, -1):
        if marks[b]:
            nxt = b
        if nxt >= 0:
            after[b] = min(99, nxt - b)
    return before, after


def boundary_features(
    qv: QuestionView, view: SentenceView, sentence_score: float, sentence_rank: int
) -> np.ndarray:
    """One row per boundary 0..n (a span [i, j) starts at boundary i and ends at boundary j)."""
    s = view.norm
    n = len(s)
    q, left, right = qv.text, qv.left, qv.right
    left_core, right_core, head = qv.left_core, qv.right_core, qv.head
    cls = np.asarray(view.classes, dtype=np.float32)
    zero = np.zeros(1, dtype=np.float32)
    class_before = np.concatenate((zero, cls))
    class_after = np.concatenate((cls, zero))
    class_before2 = np.concatenate((zero, zero, cls))[: n + 1]
    class_after2 = np.concatenate((cls[1:], zero, zero))[: n + 1]
    before_dist, after_dist = _distances(view.matched)
    clause_of = np.asarray(view.clause_of, dtype=np.int64)
    c_start = np.asarray([a for a, _ in view.clause_bounds], dtype=np.float32)
    c_end = np.asarray([e for _, e in view.clause_bounds], dtype=np.float32)
    density = np.asarray(view.clause_density, dtype=np.float32)
    best_clause = int(np.argmax(density))
    positions = np.arange(n + 1, dtype=np.float32)
    # clause of the character after / before each boundary (-1 at the ends)
    after_clause = np.concatenate((clause_of, [-1]))
    before_clause = np.concatenate(([-1], clause_of))
    has_after = after_clause >= 0
    has_before = before_clause >= 0
    clause_start_distance = np.where(has_after, positions - c_start[after_clause], 0.0)
    clause_end_distance = np.where(has_after, c_end[after_clause] - positions, np.float32(0.0))
    left_win, right_win = set(left_core[-6:]), set(right_core[:6])
    window_left = np.array(
        [len(set(s[max(0, b - 6) : b]) & left_win) for b in range(n + 1)], dtype=np.float32
    )
    window_right = np.array(
        [len(set(s[b : b + 6]) & right_win) for b in range(n + 1)], dtype=np.float32
    )
    in_q = np.asarray(view.in_question, dtype=np.float32)
    numberish = (cls == 7) | (cls == 9)
    num_before = np.concatenate(([False], numberish))
    num_after = np.concatenate((numberish, [False]))
    depth = np.zeros(n + 1, dtype=np.float32)
    d = 0
    for b in range(1, n + 1):
        c = s[b - 1]
        if c in _OPEN:
            d += 1
        elif c in _CLOSE:
            d = max(0, d - 1)
        depth[b] = d
    unit = qv.unit
    unit_after = np.zeros(n + 1, dtype=np.float32)
    unit_before = np.zeros(n + 1, dtype=np.float32)
    if unit:
        hits = np.fromiter((c == unit for c in s), dtype=bool, count=n)
        unit_after[:n] = hits
        unit_before[1:] = hits
    slot = view.slot
    left_slot = np.zeros(n + 1, dtype=np.float32)
    right_slot = np.zeros(n + 1, dtype=np.float32)
    if slot is not None:
        left_slot[slot[0]] = 1.0
        right_slot[slot[1]] = 1.0
    if head:
        head_before = np.zeros(n + 1, dtype=np.float32)
        for b in range(1, n + 1):
            for k in range(min(len(head), b), 0, -1):
                if s[b - k : b] == head[:k]:
                    head_before[b] = k
                    break
    else:
        head_before = np.full(n + 1, -1.0, dtype=np.float32)
    tag_of_char = view.tags[view.word_of].astype(np.float32) if n else np.zeros(0, np.float32)
    left_cum, right_cum = view.prefix["left"], view.prefix["right"]
    n_left = max(1.0, float(len(qv.left_bigrams)) * 2)
    n_right = max(1.0, float(len(qv.right_bigrams)) * 2)
    lb4, la4 = _windows(left_cum, 4)
    rb4, ra4 = _windows(right_cum, 4)
    lb12, la12 = _windows(left_cum, 12)
    rb12, ra12 = _windows(right_cum, 12)
    lb30, la30 = _windows(left_cum, 30)
    rb30, ra30 = _windows(right_cum, 30)
    full = np.ones(n + 1, dtype=np.float32)
    columns = [
        full * sentence_score,
        full * sentence_rank,
        full * qv.kind,
        full * qv.wh,
        positions,
        positions / max(1, n),
        n - positions,
        class_before,
        class_after,
        class_before2,
        class_after2,
        _suffix_runs(s, q),
        _suffix_runs(s, left),
        _suffix_runs(s, right),
        np.array([_suffix_equal(s, b, left_core) for b in range(n + 1)], dtype=np.float32),
        _prefix_runs(s, q),
        _prefix_runs(s, left),
        _prefix_runs(s, right),
        np.array([_prefix_equal(s, b, right_core) for b in range(n + 1)], dtype=np.float32),
        window_left,
        window_right,
        np.concatenate((in_q, [-1.0])),
        np.concatenate(([-1.0], in_q)),
        before_dist,
        after_dist,
        clause_start_distance,
        clause_end_distance,
        np.where(has_after, density[after_clause], -1.0),
        np.where(has_before, density[before_clause], -1.0),
        (after_clause == best_clause).astype(np.float32),
        (before_clause == best_clause).astype(np.float32),
        (num_before != num_after).astype(np.float32),
        unit_after,
        unit_before,
        depth,
        left_slot,
        right_slot,
        head_before,
        view.words,
        lb4,
        la4,
        rb4,
        ra4,
        lb12 / n_left,
        la12 / n_left,
        rb12 / n_right,
        ra12 / n_right,
        lb30 / n_left,
        la30 / n_left,
        rb30 / n_right,
        ra30 / n_right,
        full * len(left),
        full * len(right),
        np.concatenate(([0], tag_of_char)),
        np.concatenate((tag_of_char, [0])),
        np.concatenate(([0.0], view.odds)),
        np.concatenate((view.odds, [0.0])),
        *type_boundary_columns(qv, view),
    ]
    return np.column_stack(columns).astype(np.float32)


# -- span features ---------------------------------------------------------------------------------
SPAN_FEATURES = (
    "start_score",
    "end_score",
    "start_rank",
    "end_rank",
    "sentence_score",
    "sentence_rank",
    "kind",
    "wh",
    "length",
    "log_length",
    "commas",
    "duns",
    "stops",
    "opens",
    "closes",
    "digits",
    "latin",
    "numerals",
    "spaces",
    "matched_share",
    "in_question_share",
    "function_share",
    "quotes_balanced",
    "enclosed",
    "wrapped",
    "unit_end",
    "number_like",
    "date_like",
    "in_question_whole",
    "slot_iou",
    "slot_equal",
    "same_clause",
    "clause_whole",
    "sentence_whole",
    "start_class",
    "end_class",
    "before_class",
    "after_class",
    "relative_start_score",
    "relative_end_score",
    "start_word",
    "end_word",
    "head_end",
    "left_inside",
    "right_inside",
    "left_before_12",
    "right_after_12",
    "left_after_12",
    "right_before_12",
    "first_tag",
    "last_tag",
    "word_count",
    "verb_share",
    "noun_share",
    "odds_mean",
    "odds_low_share",
)


def span_rows(
    qv: QuestionView,
    view: SentenceView,
    pairs: Sequence[tuple[int, int]],
    starts: np.ndarray,
    ends: np.ndarray,
    sentence_score: float,
    sentence_rank: int,
) -> np.ndarray:
    """One row of :data:`SPAN_FEATURES` per candidate span ``[i, j)`` of the sentence."""
    p = view.prefix
    norm, n = view.norm, len(view.norm)
    ii = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    jj = np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs))
    length = (jj - ii).astype(np.float64)

    def count(key: str) -> np.ndarray:
        return (p[key][jj] - p[key][ii]).astype(np.float64)

    alnum = np.maximum(1.0, count("alnum"))
    balanced = np.ones(len(pairs), dtype=bool)
    for t in range(len(_PAIR_OPEN)):
        balanced &= count(f"open{t}") == count(f"close{t}")
    balanced &= count("straight") % 2 == 0
    s_rank, e_rank = _ranks(starts), _ranks(ends)
    slot = view.slot
    if slot is not None:
        inter = np.maximum(0, np.minimum(jj, slot[1]) - np.maximum(ii, slot[0]))
        union = np.maximum(jj, slot[1]) - np.minimum(ii, slot[0])
        iou = inter / np.maximum(1, union)
        slot_equal = ((ii == slot[0]) & (jj == slot[1])).astype(np.float64)
    else:
        iou = np.full(len(pairs), -1.0)
        slot_equal = np.full(len(pairs), -1.0)
    clause_of = np.asarray([*view.clause_of, len(view.clause_bounds)], dtype=np.int64)
    clause_start = np.asarray([a for a, _ in view.clause_bounds] + [n], dtype=np.int64)
    clause_end = np.asarray([b for _, b in view.clause_bounds] + [n], dtype=np.int64)
    ci, cj = clause_of[ii], clause_of[jj - 1]
    same_clause = ci == cj
    clause_whole = same_clause & (ii == clause_start[ci]) & (jj >= clause_end[ci] - 1)
    classes = np.asarray([*view.classes, 0], dtype=np.float64)  # index n (and -1) give 0
    n_left = max(1.0, float(len(qv.left_bigrams)) * 2)
    n_right = max(1.0, float(len(qv.right_bigrams)) * 2)
    head = qv.head
    head_end = np.array(
        [
            next((k for k in range(min(len(head), j - i), 0, -1) if norm[j - k : j] == head[:k]), 0)
            if head
            else -1
            for i, j in pairs
        ],
        dtype=np.float64,
    )
    text_flags = np.array(
        [
            (
                float(_PAIRS.get(norm[i - 1] if i > 0 else "") == (norm[j] if j < n else None)),
                float(j - i >= 2 and _PAIRS.get(norm[i]) == norm[j - 1]),
                float(bool(qv.unit) and qv.unit in norm[max(i, j - 2) : j]),
                float(bool(_NUMBER_SPAN.fullmatch(norm, i, j))),
                float(bool(_DATE.search(norm, i, j))),
                float(norm[i:j] in qv.text),
            )
            for i, j in pairs
        ],
        dtype=np.float64,
    ).reshape(len(pairs), 6)
    cols = [
        starts[ii],
        ends[jj],
        s_rank[ii],
        e_rank[jj],
        np.full(len(pairs), sentence_score),
        np.full(len(pairs), float(sentence_rank)),
        np.full(len(pairs), float(qv.kind)),
        np.full(len(pairs), float(qv.wh)),
        length,
        np.log(length),
        count("comma"),
        count("dun"),
        count("stop"),
        count("open"),
        count("close"),
        count("digit"),
        count("latin"),
        count("numeral"),
        count("space"),
        count("matched") / alnum,
        count("in_question") / alnum,
        count("function") / length,
        balanced.astype(np.float64),
        text_flags[:, 0],
        text_flags[:, 1],
        text_flags[:, 2],
        text_flags[:, 3],
        text_flags[:, 4],
        text_flags[:, 5],
        iou,
        slot_equal,
        same_clause.astype(np.float64),
        clause_whole.astype(np.float64),
        ((ii == 0) & (jj >= n - 1)).astype(np.float64),
        classes[ii],
        classes[jj - 1],
        np.where(ii > 0, classes[ii - 1], 0.0),
        classes[jj],
        starts[ii] - starts.max(),
        ends[jj] - ends.max(),
        view.words[ii],
        view.words[jj],
        head_end,
        count("left") / alnum,
        count("right") / alnum,
        (p["left"][ii] - p["left"][np.maximum(0, ii - 12)]) / n_left,
        (p["right"][np.minimum(n, jj + 12)] - p["right"][jj]) / n_right,
        (p["left"][np.minimum(n, jj + 12)] - p["left"][jj]) / n_left,
        (p["right"][ii] - p["right"][np.maximum(0, ii - 12)]) / n_right,
        view.tags[view.word_of[ii]],
        view.tags[view.word_of[jj - 1]],
        view.word_of[jj - 1] - view.word_of[ii] + 1,
        count("verb") / length,
        count("noun") / length,
        count("odds") / length,
        count("odd_low") / length,
    ]
    return np.column_stack(cols).astype(np.float32)


SPAN_TYPE_FEATURES = (
    "fit_ends_inside",
    "fit_starts_inside",
    "between_alignment",
    "question_run_share",
)
_END_FIT = BOUNDARY_FEATURES.index("end_fits")
_START_FIT = BOUNDARY_FEATURES.index("start_fits")
_AFTER_IN_QUESTION = BOUNDARY_FEATURES.index("after_in_question")
_LEFT_GAP = BOUNDARY_FEATURES.index("align_left_gap")
_RIGHT_GAP = BOUNDARY_FEATURES.index("align_right_gap")


def span_type_rows(pairs: Sequence[tuple[int, int]], boundaries: np.ndarray) -> np.ndarray:
    """One row of :data:`SPAN_TYPE_FEATURES` per span: fitting ends or starts it runs past (a
    span of the right kind that goes on is too long), whether it lies between the question's
    repeated left and right parts, and the longest stretch of it the question already says
    (answers rarely repeat the question)."""
    ii = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
    jj = np.fromiter((j for _, j in pairs), dtype=np.int64, count=len(pairs))
    fit_end = np.concatenate(([0.0], np.cumsum(boundaries[:, _END_FIT] > 0)))
    fit_start = np.concatenate(([0.0], np.cumsum(boundaries[:, _START_FIT] > 0)))
    # boundaries i+1 .. j-1, strictly inside the span
    ends_inside = fit_end[jj] - fit_end[ii + 1]
    starts_inside = fit_start[jj] - fit_start[ii + 1]
    left_gap, right_gap = boundaries[ii, _LEFT_GAP], boundaries[jj, _RIGHT_GAP]
    known = (left_gap != 99) & (right_gap != 99)
    between = np.where(known, ((left_gap >= 0) & (right_gap >= 0)).astype(np.float64), -1.0)
    runs = boundaries[:, _AFTER_IN_QUESTION]
    repeat = np.array(
        [np.minimum(runs[i:j], np.arange(j - i, 0, -1)).max() / (j - i) for i, j in pairs],
        dtype=np.float64,
    )
    return np.column_stack([ends_inside, starts_inside, between, repeat]).astype(np.float32)


SPAN_MODEL_FEATURES = (
    SPAN_FEATURES
    + SPAN_TYPE_FEATURES
    + tuple(f"start_{f}" for f in BOUNDARY_FEATURES)
    + tuple(f"end_{f}" for f in BOUNDARY_FEATURES)
)


def span_matrix(
    qv: QuestionView,
    view: SentenceView,
    pairs: Sequence[tuple[int, int]],
    boundaries: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    sentence_score: float,
    sentence_rank: int,
) -> np.ndarray:
    """The span model's rows: :func:`span_rows` and the boundary rows of each start and end."""
    ii = [i for i, _ in pairs]
    jj = [j for _, j in pairs]
    rows = span_rows(qv, view, pairs, starts, ends, sentence_score, sentence_rank)
    types = span_type_rows(pairs, boundaries)
    return np.hstack([rows, types, boundaries[ii], boundaries[jj]])


def candidate_pairs(
    starts: np.ndarray, ends: np.ndarray, raw: str, k: int = TOP_BOUNDARIES
) -> list[tuple[int, int]]:
    """Spans from the best-scored starts and ends that begin and end on a word, not a mark."""
    n = len(raw)
    word = np.fromiter((c.isalnum() for c in raw), dtype=bool, count=n)
    opening = np.fromiter((c in _OPEN for c in raw), dtype=bool, count=n)
    closing = np.fromiter((c in _CLOSE for c in raw), dtype=bool, count=n)
    start_at = np.flatnonzero(word | opening)
    end_at = np.flatnonzero(word | closing) + 1
    top_s = start_at[np.argsort(-starts[start_at], kind="stable")[:k]].tolist()
    top_e = end_at[np.argsort(-ends[end_at], kind="stable")[:k]].tolist()
    return [(i, j) for i in top_s for j in top_e if i < j and j - i <= MAX_SPAN]


# -- the models ------------------------------------------------------------------------------------
class _Booster(Protocol):
    def predict(self, data: Any, **kwargs: Any) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Choice:
    cand: int  # index into the candidates
    sentence: tuple[int, int]  # offsets inside the candidate's text
    span: tuple[int, int]  # offsets inside the candidate's text
    passage_cov: float
    score: float  # the span model's score of the chosen span
    sentence_score: float  # the sentence model's score of the sentence holding it


class SpanRanker:
    """The four models; :meth:`choose` picks the sentence and the span of an answer."""

    def __init__(self, models: dict[str, _Booster], table: CharTable | None = None) -> None:
        self.models = models
        self.table = table

    @classmethod
    def from_file(cls, path: Path = MODEL_PATH) -> SpanRanker:
        import lightgbm

        with gzip.open(path, "rt", encoding="utf-8") as f:
            payload = json.load(f)
        models = {
            name: lightgbm.Booster(model_str=text) for name, text in payload["models"].items()
        }
        return cls(models, CharTable.from_json(payload["chars"]))

    def _predict(self, name: str, rows: np.ndarray, raw: bool = False) -> np.ndarray:
        scores = self.models[name].predict(rows, num_threads=1, raw_score=raw)
        return np.asarray(scores, dtype=np.float64)

    def choose(
        self,
        question: str,
        terms: Coverage,
        texts: Sequence[str],
        scores: Sequence[float],
        idf: Callable[[str], float],
    ) -> Choice | None:
        qv = QuestionView.of(question)
        items = sentence_items(qv, terms, texts, scores, idf)
        if not items:
            return None
        sent_scores = self._predict("sentence", np.array([it.features for it in items]))
        order = np.argsort(-sent_scores, kind="stable")[:TOP_SENTENCES]
        views, rows = [], []
        spans: list[tuple[SentenceItem, float, int, int]] = []
        for rank, idx in enumerate(order):
            item = items[idx]
            view = sentence_view(qv, item.text, item.norm, self.table)
            views.append((item, view, float(sent_scores[idx]), rank))
            rows.append(boundary_features(qv, view, float(sent_scores[idx]), rank))
        stacked = np.vstack(rows)
        # log odds, as the span model was trained on
        start_all = self._predict("start", stacked, raw=True)
        end_all = self._predict("end", stacked, raw=True)
        offset = 0
        blocks: list[np.ndarray] = []
        for (item, view, sscore, rank), boundaries in zip(views, rows, strict=True):
            n = len(view.norm)
            starts = start_all[offset : offset + n + 1]
            ends = end_all[offset : offset + n + 1]
            offset += n + 1
            pairs = candidate_pairs(starts, ends, item.text)
            if pairs:
                blocks.append(span_matrix(qv, view, pairs, boundaries, starts, ends, sscore, rank))
                spans.extend((item, sscore, i, j) for i, j in pairs)
        if not spans:
            first = int(order[0])
            item = items[first]
            whole = (item.start, item.end)
            return Choice(item.cand, whole, whole, item.passage_cov, 0.0, float(sent_scores[first]))
        span_scores = self._predict("span", np.vstack(blocks))
        k = int(np.argmax(span_scores))
        item, sscore, i, j = spans[k]
        return Choice(
            item.cand,
            (item.start, item.end),
            (item.start + i, item.start + j),
            item.passage_cov,
            float(span_scores[k]),
            sscore,
        )


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(-values, kind="stable")
    ranks = np.empty(len(values), dtype=np.int32)
    ranks[order] = np.arange(len(values))
    return ranks


_lock = threading.Lock()
_loaded: dict[Path, SpanRanker | None] = {}


def load_span_ranker(path: Path = MODEL_PATH) -> SpanRanker | None:
    """The shipped ranker, loaded once; None when the file or LightGBM is missing."""
    with _lock:
        if path not in _loaded:
            try:
                _loaded[path] = SpanRanker.from_file(path)
            except (OSError, ImportError, ValueError, KeyError):
                _loaded[path] = None
        return _loaded[path]
