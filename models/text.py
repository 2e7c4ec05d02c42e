"""Sentence and clause segmentation of Chinese text, by character offsets.

Every function returns ``(start, end)`` offsets into the string it was given, so that callers can
cite ``text[start:end]`` exactly; nothing here copies or rewrites text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# A sentence ends at 。！？； (full or half width) or an ellipsis, plus any closing quotes or
# brackets that follow, so that “……。” stays one sentence. ASCII '.' ends a sentence only before
# white space, so that 2.5 and 1. stay whole. A line break always ends a sentence.
_SENTENCE_END = re.compile(r"(?:[。！？；!?;]+|…{1,2}|\.(?=\s))[”’」』》）)\]\"']*|\n+")
# Clause boundaries inside a sentence: ，；： and their ASCII forms (":" only before a space).
_CLAUSE_END = re.compile(r"(?:[，；：,;]|:(?=\s))[”’」』）)]*")
_SPACE = frozenset(" \t\r\n\u3000\ufeff\xa0")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence of a document, located exactly.

    ``topic`` marks the speech's own topic sentences: a section's heading and the opening sentence
    of each numbered point. ``section_id`` is the innermost section holding it.
    """

    start: int
    end: int
    paragraph: int
    section_id: str
    topic: bool = False


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _SPACE:
        start += 1
    while end > start and text[end - 1] in _SPACE:
        end -= 1
    return start, end


def iter_sentences(text: str, start: int = 0, end: int | None = None) -> Iterator[tuple[int, int]]:
    """Yield the non-empty sentences of ``text[start:end]`` as trimmed offsets.

    Splits at 。！？； and never at ，; a trailing piece without an end mark is a sentence too.
    """
    end = len(text) if end is None else end
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        s, e = _trim(text, pos, match.end())
        # A run of marks with no words (a stray "！！") is nothing anyone could cite.
        if _has_word(text, s, e):
            yield s, e
        pos = match.end()
    s, e = _trim(text, pos, end)
    if _has_word(text, s, e):
        yield s, e


def _has_word(text: str, start: int, end: int) -> bool:
    return any(c.isalnum() for c in text[start:end])


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """The sentences of ``text[start:end]`` as a list; see :func:`iter_sentences`."""
    return list(iter_sentences(text, start, end))


def split_clauses(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Clauses of one sentence: pieces ending at ，；： (punctuation kept with its clause)."""
    end = len(text) if end is None else end
    out: list[tuple[int, int]] = []
    pos = start
    for match in _CLAUSE_END.finditer(text, start, end):
        s, e = _trim(text, pos, match.end())
        if e > s:
            out.append((s, e))
        pos = match.end()
    s, e = _trim(text, pos, end)
    if e > s:
        out.append((s, e))
    return out


def chunk_spans(spans: list[tuple[int, int]], text: str, max_chars: int) -> list[tuple[int, int]]:
    """Group consecutive sentence spans into chunks of at most ``max_chars`` characters.

    A sentence longer than ``max_chars`` on its own is cut at clause boundaries, and a clause
    longer still at ``max_chars``, so that no chunk exceeds the limit.
    """
    pieces: list[tuple[int, int]] = []
    for s, e in spans:
        if e - s <= max_chars:
            pieces.append((s, e))
            continue
        for cs, ce in _pack(split_clauses(text, s, e), max_chars):
            while ce - cs > max_chars:
                pieces.append((cs, cs + max_chars))
                cs += max_chars
            pieces.append((cs, ce))
    return _pack(pieces, max_chars)


def _pack(pieces: list[tuple[int, int]], max_chars: int) -> list[tuple[int, int]]:
    chunks: list[tuple[int, int]] = []
    for s, e in pieces:
        if chunks and e - chunks[-1][0] <= max_chars:
            chunks[-1] = (chunks[-1][0], e)
        else:
            chunks.append((s, e))
    return chunks
