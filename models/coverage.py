"""How much of a question a piece of text covers, by the question's content words.

Character bigrams are good for ranking but bad for deciding whether a passage answers: a
question's bigrams that straddle a function word (``委的``, ``路叫``) never occur in any text and
would make every passage look incomplete. Content words (jieba) with partial credit for a word
the text words differently (招商引资 / 招商选资) separate "the speech says this" from "the speech
never mentions it" (县长, 高中).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from embeddings.tokens import lexical_tokens, normalize, words

_WH_AND_FRAME = frozenset(
    """什么 什麼 哪些 哪个 哪個 哪里 哪裡 哪儿 哪位 多少 几 幾 谁 誰 何时 何時
    如何 怎样 怎樣 怎么 怎麼 为什么 為什麼 为何 為何 是否 吗 嗎 呢 么 叫 叫做
    称为 稱為 名称 名稱 名字 编号 編號 情况 情況 内容 內容 方面 主要 具体 具體
    哪 什么样 什麼樣 时候 時候 多 是 的 了 在 和 与 與 及 要 把 将 將 被
    对 對 有 中 上 下 为 為 也 都 又 就 还 還 个 個 这 這 那 其 之 以
    等 于 於 请问 請問 问 問 到底 究竟""".split()
)
# Refined terms (``refined=True``, the refusal model's): a question word goes with the number
# word and measure word that follow it (哪一个, 几间, 多少次), and these frame words, which say
# what kind of answer is wanted rather than what it is about, count for nothing.
ASKING = re.compile(
    r"(?:什么时候|什么样|怎么样|为什么|为什麽|什么|什麽|甚么|怎么|怎样|如何|为何|为啥|是否|请问"
    r"|何(?:时|处|种|年|月|日|人|地|者|物|故|在)|多久|多长|多大|多高|多远|多少|谁|啥|吗|呢"
    r"|(?:哪|(?<!茶)几(?![乎何率内]))一?"
    r"[个种位所件间次本首部座条家名支年天届项只张场类样份门处段国任层岁号期些里儿]?)"
)
_FRAME = frozenset("一个 一种 一位 一项 一次 这个 那个 这些 那些 事情 东西 时候 时间 部分".split())
# Characters that jieba's guesswork glues to the edge of an out-of-vocabulary word (曾于, 年时,
# 是邦立, 向金朝); stripped from words its dictionary does not know.
_EDGE = frozenset("的了在和与及于是有曾将被把对从向为等时达也都又就还之以其这那个而则")
_RARE_WORD = 50
_WORDISH = re.compile(r"\w")
_QUOTED = re.compile(r"[“「『\"]([^“”「」『』\"]{2,40})[”」』\"]")


@dataclass(frozen=True, slots=True)
class Term:
    word: str
    bigrams: tuple[str, ...]
    weight: float


class QuestionTerms:
    """The content words of a question, each weighted by how rare it is in the collection."""

    def __init__(
        self, question: str, idf: Callable[[str], float], *, refined: bool = False
    ) -> None:
        self.idf = idf
        norm = normalize(question)
        found = _question_words(norm, refined)
        content = [w for w in found if w not in _WH_AND_FRAME and len(w) >= 2]
        if not content:
            content = [w for w in found if w not in _WH_AND_FRAME]
        terms: dict[str, Term] = {}
        for word in content:
            grams = tuple(lexical_tokens(word)) or (word,)
            # A word the collection has never seen is the most telling of all.
            weights = [idf(g) for g in grams]
            terms[word] = Term(word, grams, max(sum(weights) / len(weights), 0.1))
        # A phrase the question quotes (“大算盘”) found verbatim is the strongest anchor there is.
        for quoted in _QUOTED.findall(normalize(question)):
            if quoted not in terms and _WORDISH.search(quoted):
                top = max((t.weight for t in terms.values()), default=1.0)
                terms[quoted] = Term(quoted, tuple(lexical_tokens(quoted)), 1.5 * top)
        self.terms = list(terms.values())
        self.total = sum(t.weight for t in self.terms)

    def refined(self, question: str) -> QuestionTerms:
        """The same question's refined terms (see ``_refined_words``), with the same idf."""
        return QuestionTerms(question, self.idf, refined=True)

    def __bool__(self) -> bool:
        return bool(self.terms)

    def coverage(self, text: str) -> float:
        """Weighted share of the question's words found in ``text`` (0..1)."""
        if not self.terms:
            return 0.0
        norm = normalize(text)
        grams: set[str] | None = None
        got = 0.0
        for term in self.terms:
            if term.word in norm:
                got += term.weight
                continue
            if len(term.bigrams) > 1:
                if grams is None:
                    grams = set(lexical_tokens(norm))
                share = sum(g in grams for g in term.bigrams) / len(term.bigrams)
                got += term.weight * share * share
        return got / self.total


@lru_cache(maxsize=256)
def _question_words(norm: str, refined: bool) -> tuple[str, ...]:
    """A normalised question's words, segmented once: the answerer and the refusal model each
    build the same question's terms, and jieba is the costly part."""
    if refined:
        return tuple(_refined_words(norm))
    return tuple(w for w in words(norm) if _WORDISH.search(w))


def _strip_edges(word: str) -> str:
    if _dictionary().get(word, 0) >= _RARE_WORD:
        return word
    while word and word[0] in _EDGE:
        word = word[1:]
    while word and word[-1] in _EDGE:
        word = word[:-1]
    return word


def _refined_words(norm: str) -> list[str]:
    """Content words of a normalised question without its question and frame words, and without
    the function characters jieba glued to words it did not know; a two-character word that
    only such a join made (年时, 有长) drops out (shorter than two characters)."""
    found = []
    for chunk in ASKING.split(norm):
        for w in words(chunk):
            if not _WORDISH.search(w) or w in _FRAME:
                continue
            found.append(_strip_edges(w))
    return [w for w in found if w]


def _dictionary() -> dict[str, int]:
    import jieba

    words("")  # loads the dictionary once, quietly
    return jieba.dt.FREQ
