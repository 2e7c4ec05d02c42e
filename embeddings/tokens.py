"""Lexical tokens for Chinese text: character bigrams, plus whole Latin words and digit runs.

Bigrams need no word segmenter, work the same for simplified and traditional script, and on
Chinese retrieval they match or beat segmenter words (jieba splits names and numbers unevenly
between a question and its passage).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

# Han (BMP, extension A, compatibility, supplementary planes), 〇, and kana: scripts written without
# spaces, where every adjacent pair is a candidate word.
_CJK = "\u3007\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_TOKEN = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W\d_{_CJK}]+)|(?P<num>\d+)")

# Words that only questions contain. Longest first, so that 什么时候 goes before 什么 does.
# 几/幾 are kept inside words where they are not interrogative (几乎 almost, 几何 geometry,
# 几率 probability, 茶几 tea table, 几内亚 Guinea).
_QUESTION_WORDS = (
    "什么时候",
    "什麼時候",
    "什么样",
    "什麼樣",
    "怎么样",
    "怎麼樣",
    "为什么",
    "為什麼",
    "为什麽",
    "為什麽",
    "什么",
    "什麼",
    "什麽",
    "甚么",
    "甚麼",
    "哪些",
    "哪个",
    "哪個",
    "哪里",
    "哪裡",
    "哪裏",
    "哪儿",
    "哪兒",
    "多少",
    "多久",
    "何时",
    "何時",
    "何处",
    "何處",
    "何种",
    "何種",
    "怎么",
    "怎麼",
    "怎样",
    "怎樣",
    "如何",
    "为何",
    "為何",
    "为啥",
    "為啥",
    "是否",
    "请问",
    "請問",
    "哪",
    "谁",
    "誰",
    "啥",
    "吗",
    "嗎",
    "呢",
)
_QUESTION = re.compile(
    "|".join(re.escape(w) for w in _QUESTION_WORDS) + r"|(?<!茶)[几幾](?![乎何率内內])"
)


@lru_cache(maxsize=1)
def _jieba() -> Callable[[str], list[str]]:
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.lcut


def words(text: str) -> list[str]:
    """jieba's word segmentation (its dictionary loaded once, on first use, quietly)."""
    return _jieba()(text)


@lru_cache(maxsize=1)
def _to_simplified() -> Callable[[str], str]:
    import opencc

    return opencc.OpenCC("t2s").convert


def normalize(text: str) -> str:
    """NFKC (full-width letters, digits and compatibility ideographs fold), lower case, and
    traditional characters as simplified, so 經濟 matches 经济 and jieba sees the script it
    knows. For matching only: offsets always refer to the original text."""
    return _to_simplified()(unicodedata.normalize("NFKC", text).lower())


def tokens_of_normalized(text: str) -> list[str]:
    """Lexical tokens of text already passed through `normalize` (so callers normalise once)."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text):
        run = match.group("cjk")
        if run is None:
            tokens.append(match.group())
        elif len(run) == 1:
            tokens.append(run)
        else:
            tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
    return tokens


def lexical_tokens(text: str) -> list[str]:
    """Character bigrams of each CJK run (a lone character is its own token), whole Latin words
    and digit runs; punctuation and white space only separate tokens.

    >>> lexical_tokens("2023年GDP增长")
    ['2023', '年', 'gdp', '增长']
    """
    return tokens_of_normalized(normalize(text))


def query_tokens(question: str) -> list[str]:
    """``lexical_tokens`` of a question without its question words.

    A question word is cut out as a gap, so no bigram joins the characters on either side of it:
    those two characters are rarely adjacent in the answer's passage.
    """
    return tokens_of_normalized(_QUESTION.sub(" ", normalize(question)))
