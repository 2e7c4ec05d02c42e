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

from embeddings.tokens import lexical_tokens, normalize, words

_WH_AND_FRAME = frozenset(
    """什么 什麼 哪些 哪个 哪個 哪里 哪裡 哪儿 哪位 多少 几 幾 谁 誰 何时 何時
    如何 怎样 怎樣 怎么 怎麼 为什么 為什麼 为何 為何 是否 吗 嗎 呢 么 叫 叫做
    称为 稱為 名称 名稱 名字 编号 編號 情况 情況 内容 內容 方面 主要 具体 具體
    哪 什么样 什麼樣 时候 時候 多 是 的 了 在 和 与 與 及 要 把 将 將 被
    对 對 有 中 上 下 为 為 也 都 又 就 还 還 个 個 这 這 那 其 之 以
    等 于 於 请问 請問 问 問 到底 究竟""".split()
)
_WORDISH = re.compile(r"\w")
_QUOTED = re.compile(r"[“「『\"]([^“”「」『』\"]{2,40})[”」』\"]")


@dataclass(frozen=True, slots=True)
class Term:
    word: str
    bigrams: tuple[str, ...]
    weight: float


class QuestionTerms:
    """The content words of a question, each weighted by how rare it is in the collection."""

    def __init__(self, question: str, idf: Callable[[str], float]) -> None:
        found = [w for w in words(normalize(question)) if _WORDISH.search(w)]
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
