"""The grounded answerer: picks the sentence that answers, then the shortest span inside it.

It never writes text of its own: every answer is a slice of a retrieved passage. When the best
passage covers too little of the question's weighted terms, it declines instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from embeddings.tokens import normalize
from models.coverage import QuestionTerms
from models.reader import Reader
from models.spans import analyse, extract
from models.text import split_sentences


@dataclass(frozen=True, slots=True)
class Candidate:
    """A retrieved passage: its text, where it starts in its document, and its rank score."""

    text: str
    offset: int
    score: float
    key: int


@dataclass(frozen=True, slots=True)
class Found:
    key: int  # the candidate holding the answer
    text: str
    start: int  # document offsets
    end: int
    sentence_text: str
    sentence_start: int
    sentence_end: int
    confidence: float
    answerable: bool


class Answerer:
    def __init__(
        self,
        *,
        min_coverage: float = 0.5,
        reader: Reader | None = None,
        max_passages: int = 5,
    ) -> None:
        self.min_coverage = min_coverage
        self.reader = reader
        self.max_passages = max_passages

    def answer(
        self,
        question: str,
        candidates: Sequence[Candidate],
        idf: Callable[[str], float],
    ) -> Found | None:
        terms = QuestionTerms(question, idf)
        if not terms or not candidates:
            return None
        scored: list[tuple[float, Candidate, int, int, float]] = []
        top_score = max(c.score for c in candidates) or 1.0
        for rank, cand in enumerate(candidates[: self.max_passages]):
            passage_cov = terms.coverage(cand.text)
            for s, e in split_sentences(cand.text):
                # The sentence must carry the question's words; its passage's rank and
                # coverage break ties between sentences that repeat them equally.
                score = (
                    terms.coverage(cand.text[s:e])
                    + 0.3 * passage_cov
                    + 0.2 * cand.score / top_score
                    - 0.02 * rank
                    - 0.0005 * max(0, e - s - 120)
                )
                scored.append((score, cand, s, e, passage_cov))
        if not scored:
            return None
        scored.sort(key=lambda x: -x[0])
        # Among the leading sentences, one that repeats a longer stretch of the question word
        # for word is where its slot is, and one whose slot yields a crisp short span beats one
        # that only yields a loose clause.
        q = normalize(question)
        parsed = analyse(question)
        best: tuple[float, Candidate, int, int, float, tuple[int, int] | None] | None = None
        for score, cand, s, e, passage_cov in scored[:8]:
            sentence = cand.text[s:e]
            inner = extract(parsed, sentence)
            total = score + 0.5 * _aligned(q, normalize(sentence))
            if inner is not None and inner[1] - inner[0] <= 12:
                total += 0.05
            if best is None or total > best[0]:
                best = (total, cand, s, e, passage_cov, inner)
        assert best is not None
        _, cand, s, e, passage_cov, inner = best
        sentence_cov = terms.coverage(cand.text[s:e])
        confidence = 0.6 * passage_cov + 0.4 * sentence_cov
        answerable = passage_cov >= self.min_coverage

        span = self.reader.extract(question, cand.text) if self.reader is not None else None
        if span is not None:
            # The reader may pick another sentence of the passage: cite the one it picked.
            s, e = next(((a, b) for a, b in split_sentences(cand.text) if a <= span[0] < b), (s, e))
        else:
            span = (s + inner[0], s + inner[1]) if inner else (s, e)
        a, b = span
        return Found(
            key=cand.key,
            text=cand.text[a:b],
            start=cand.offset + a,
            end=cand.offset + b,
            sentence_text=cand.text[s:e],
            sentence_start=cand.offset + s,
            sentence_end=cand.offset + e,
            confidence=confidence,
            answerable=answerable,
        )


def _aligned(question: str, sentence: str) -> float:
    """Share of the question that the sentence repeats as one unbroken stretch."""
    if not question:
        return 0.0
    match = SequenceMatcher(None, question, sentence, autojunk=False).find_longest_match()
    return match.size / len(question)
