"""Extractive summaries of one section of a speech: sentences copied by offset, never rewritten.

A summary is chosen in two steps. The speech's own topic sentences come first (the section's
heading, then the opening sentence of each numbered point, in document order), because in an
official speech they *are* the drafters' outline of the section. Supporting sentences follow by
centrality — the cosine of a sentence's character uni+bigram TF-IDF vector with the section's
centroid, the IDF taken over the section's own sentences — with mild position and length priors,
picked MMR-style so that a sentence too similar to one already chosen is skipped.

The result is returned in document order. Every budget holds: at most ``max_sentences``
extracts, and at most the character budget in total. With no budget at all, the sentence budget is
one per topic sentence, at least 3 and at most 8 (:func:`default_max_sentences`).

A sentence that does not fit whole may be cut back to its leading clauses (ending at ， or ；,
the trailing mark dropped), always starting at the sentence start. When even the first clause of
the best sentence — the headline if the section has topic sentences, else the best-scored one —
does not fit, that clause is cut at the budget, so that a tight budget yields the start of the
best sentence rather than an empty summary. Topic sentences are taken in document order; nesting
is not inferred, so when a section's children bring their own points and the budget is smaller
than the topic count, the first children's points fill it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from models.text import Sentence, split_clauses

__all__ = ["Budget", "Extract", "Summarizer", "SummaryError", "default_max_sentences"]


class SummaryError(ValueError):
    """A budget that no summary can honour, or sentences that do not fit the text."""


def default_max_sentences(topic_sentences: int) -> int:
    """The sentence budget used when a request gives none: one per topic sentence, 3 to 8.

    Three sentences is the least that says anything about a section; more than eight stops being
    a summary even for a section with many numbered points.
    """
    return min(max(3, topic_sentences), 8)


@dataclass(frozen=True, slots=True)
class Budget:
    """How much of a section a summary may keep; with several fields, the tightest holds.

    ``ratio`` is a share of the section's characters (the sum of its sentences' lengths). With no
    field set, the summariser uses :func:`default_max_sentences` of the section's topic sentences.
    """

    max_sentences: int | None = None
    max_chars: int | None = None
    ratio: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_sentences", "max_chars"):
            value = getattr(self, name)
            if value is None:
                continue
            # bool is an int to Python, but max_chars=True is a caller's bug, not a budget.
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise SummaryError(f"{name} must be an integer, got {value!r}")
            if value < 1:
                raise SummaryError(f"{name} must be at least 1, got {value}")
        ratio = self.ratio
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, Real):
                raise SummaryError(f"ratio must be a number, got {ratio!r}")
            # Written so that NaN fails too.
            if not 0.0 < float(ratio) <= 1.0:
                raise SummaryError(f"ratio must be in (0, 1], got {ratio!r}")

    @property
    def is_empty(self) -> bool:
        """True when no field is set, so that the default sentence budget applies."""
        return self.max_sentences is None and self.max_chars is None and self.ratio is None

    def chars_for(self, section_chars: int) -> int | None:
        """The character budget for a section of ``section_chars``: the tightest of ``max_chars``
        and ``ratio * section_chars`` (rounded down, so the ratio is never exceeded), or None."""
        if section_chars < 0:
            raise SummaryError(f"section_chars must not be negative, got {section_chars}")
        limits: list[int] = []
        if self.max_chars is not None:
            limits.append(int(self.max_chars))
        if self.ratio is not None:
            # The epsilon keeps 0.3 * 10 (2.9999999999999996 in floating point) at 3.
            limits.append(math.floor(float(self.ratio) * section_chars + 1e-9))
        return min(limits) if limits else None


@dataclass(frozen=True, slots=True)
class Extract:
    """One kept piece of a summary: ``text[start:end]`` exactly, inside a single sentence.

    ``trimmed`` is True when only the sentence's leading clauses (or, as a last resort, the start
    of its first clause) were kept.
    """

    start: int
    end: int
    paragraph: int
    trimmed: bool


# A token is one CJK character, one Latin word or one digit run, applied to lower-cased text.
_TOKEN = re.compile(r"[a-z]+|\d+|[^\W\d_a-z]")
# A trimmed extract drops its trailing clause mark: "……，" reads as an unfinished sentence.
_DROPPABLE_END = frozenset("，；：,;:、")
# A hard cut should not end on an opening bracket or quote that it then never closes.
_OPENERS = frozenset("“‘《〈（(「『【[")
_SPACE = frozenset(" \t\r\n\u3000\ufeff\xa0")
# Greetings, thanks and hand-overs between speakers carry nothing a reader wants in a summary.
_GREETING = re.compile(
    r"^(?:同志们|各位(?:代表|委员|领导|来宾|嘉宾|同志|朋友)|女士们|先生们|朋友们|大家好|"
    r"谢谢|感谢|好的?|嗯+|对|是的|ok|okay)"
)
_HANDOVER = re.compile(
    r"有请|请.{0,12}(?:讲话|发言|致辞|介绍|回答|分享)|下面(?:请|由)|谢谢大家|感谢大家|谢谢各位|"
    r"掌声|我就讲这些|讲.{0,4}点意见|以上|休息一下"
)
# Greeting and hand-over patterns are matched only in sentences this short: in a long sentence
# "请……发言" is more likely content than stage direction.
_BOILERPLATE_MAX_CHARS = 30


@dataclass(slots=True)
class _Features:
    """Sparse TF-IDF rows of a section, L2-normalised, in COO form with CSR row pointers."""

    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    indptr: np.ndarray
    vocab_size: int
    token_counts: list[int]

    def similarities(self, i: int) -> np.ndarray:
        """Cosine of row ``i`` with every row."""
        dense = np.zeros(self.vocab_size)
        lo, hi = self.indptr[i], self.indptr[i + 1]
        dense[self.cols[lo:hi]] = self.vals[lo:hi]
        return np.bincount(
            self.rows, weights=self.vals * dense[self.cols], minlength=len(self.token_counts)
        )

    def centrality(self) -> np.ndarray:
        """Cosine of every row with the centroid of all rows."""
        centroid = np.bincount(self.cols, weights=self.vals, minlength=self.vocab_size)
        norm = float(np.linalg.norm(centroid))
        if norm == 0.0:
            return np.zeros(len(self.token_counts))
        dots = np.bincount(
            self.rows, weights=self.vals * centroid[self.cols], minlength=len(self.token_counts)
        )
        return dots / norm


def _features(text: str, sentences: Sequence[Sentence]) -> _Features:
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    tfs: list[float] = []
    indptr = [0]
    token_counts: list[int] = []
    for r, sentence in enumerate(sentences):
        counts: dict[int, int] = {}
        prev_end = -1
        prev_token = ""
        n_tokens = 0
        for match in _TOKEN.finditer(text[sentence.start : sentence.end].lower()):
            token = match.group()
            n_tokens += 1
            col = vocab.setdefault(token, len(vocab))
            counts[col] = counts.get(col, 0) + 1
            # Bigrams only between touching tokens: a pair across "，" is no phrase.
            if match.start() == prev_end:
                col = vocab.setdefault(prev_token + " " + token, len(vocab))
                counts[col] = counts.get(col, 0) + 1
            prev_end, prev_token = match.end(), token
        token_counts.append(n_tokens)
        for col, tf in counts.items():
            rows.append(r)
            cols.append(col)
            # Sublinear TF: a rambling sentence that repeats a phrase is not more central for it.
            tfs.append(1.0 + math.log(tf))
        indptr.append(len(rows))
    n = len(sentences)
    row_arr = np.asarray(rows, dtype=np.intp)
    col_arr = np.asarray(cols, dtype=np.intp)
    vals = np.asarray(tfs, dtype=np.float64)
    if len(vals):
        # Smoothed IDF over the section's own sentences: what is common in *this* section is what
        # makes a sentence central to it, and what is everywhere (的, 要) weighs least.
        df = np.bincount(col_arr, minlength=len(vocab))
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        vals = vals * idf[col_arr]
        norms = np.sqrt(np.bincount(row_arr, weights=vals * vals, minlength=n))
        vals = vals / norms[row_arr]
    return _Features(
        rows=row_arr,
        cols=col_arr,
        vals=vals,
        indptr=np.asarray(indptr, dtype=np.intp),
        vocab_size=len(vocab),
        token_counts=token_counts,
    )


def _is_boilerplate(text: str) -> bool:
    if len(text) > _BOILERPLATE_MAX_CHARS:
        return False
    lowered = text.lower()
    return bool(_GREETING.match(lowered) or _HANDOVER.search(lowered))


class Summarizer:
    """Extractive summariser of one section at a time; stateless between calls.

    ``redundancy`` is the cosine similarity above which a candidate counts as a repeat of a
    sentence already chosen and is skipped; ``diversity`` additionally penalises, MMR-style, a
    candidate's similarity to what was chosen. ``topic_redundancy`` is the (higher) threshold for
    topic sentences, which share the section's vocabulary by design. ``position_weight`` and
    ``paragraph_weight`` are the priors for early sentences and paragraph openings; sentences
    with fewer than ``short_tokens`` tokens are scored down in proportion. A trimmed extract
    keeps at least ``min_trim_tokens`` tokens, except in the last-resort cut.
    """

    def __init__(
        self,
        *,
        redundancy: float = 0.5,
        diversity: float = 0.3,
        topic_redundancy: float = 0.9,
        position_weight: float = 0.05,
        paragraph_weight: float = 0.15,
        short_tokens: int = 12,
        min_trim_tokens: int = 6,
    ) -> None:
        for name, value in (("redundancy", redundancy), ("topic_redundancy", topic_redundancy)):
            if not 0.0 < value <= 1.0:
                raise SummaryError(f"{name} must be in (0, 1], got {value!r}")
        for name, value in (
            ("diversity", diversity),
            ("position_weight", position_weight),
            ("paragraph_weight", paragraph_weight),
        ):
            if not value >= 0.0:
                raise SummaryError(f"{name} must not be negative, got {value!r}")
        if short_tokens < 1 or min_trim_tokens < 0:
            raise SummaryError("short_tokens must be >= 1 and min_trim_tokens >= 0")
        self.redundancy = redundancy
        self.diversity = diversity
        self.topic_redundancy = topic_redundancy
        self.position_weight = position_weight
        self.paragraph_weight = paragraph_weight
        self.short_tokens = short_tokens
        self.min_trim_tokens = min_trim_tokens

    def summarize(self, text: str, sentences: Sequence[Sentence], budget: Budget) -> list[Extract]:
        """Summarise one section: ``sentences`` are its sentences (children's included).

        Returns extracts in document order. With no budget field set, the sentence budget is
        :func:`default_max_sentences` of the number of topic sentences. A character budget that
        rounds down to 0 (a tiny ``ratio`` of a short section) gives an empty summary.
        """
        sents = _checked(text, sentences)
        if not sents:
            return []
        char_limit = budget.chars_for(sum(s.end - s.start for s in sents))
        max_sentences = budget.max_sentences
        if budget.is_empty:
            max_sentences = default_max_sentences(sum(s.topic for s in sents))
        if char_limit == 0:
            return []

        feats = _features(text, sents)
        scores = self._scores(text, sents, feats)
        n = len(sents)
        topics = [i for i, s in enumerate(sents) if s.topic]
        # Sentences without a single word, tiny ones and stage directions are used only when
        # nothing else could be: they would otherwise fill the leftover of a character budget.
        eligible = np.array(
            [
                not s.topic
                and feats.token_counts[i] >= self.min_trim_tokens
                and not _is_boilerplate(text[s.start : s.end])
                for i, s in enumerate(sents)
            ],
            dtype=bool,
        )

        chosen: dict[int, tuple[int, int, bool]] = {}
        used = 0
        # Supporting sentences may be trimmed once: a trimmed one leaves too little budget for
        # anything but further fragments, and a run of fragments does not read as a summary.
        may_trim = True
        max_sim = np.zeros(n)

        def full() -> bool:
            if max_sentences is not None and len(chosen) >= max_sentences:
                return True
            return char_limit is not None and used >= char_limit

        def take(i: int, piece: tuple[int, int, bool]) -> None:
            nonlocal used, max_sim
            chosen[i] = piece
            used += piece[1] - piece[0]
            max_sim = np.maximum(max_sim, feats.similarities(i))
            eligible[i] = False

        for i in topics:
            if full():
                break
            if max_sim[i] > self.topic_redundancy:
                continue
            remaining = _remaining(char_limit, used)
            if not chosen:
                # The headline is the drafters' own summary of the section: keep at least its
                # start, however tight the budget.
                take(i, self._place_surely(text, sents[i], remaining))
                continue
            piece = self._place(text, sents[i], remaining, self.min_trim_tokens)
            if piece is not None:
                take(i, piece)

        while not full():
            open_ = eligible & (max_sim <= self.redundancy)
            if not open_.any():
                break
            mmr = np.where(open_, scores - self.diversity * max_sim, -np.inf)
            i = int(np.argmax(mmr))
            eligible[i] = False
            piece = self._place(
                text,
                sents[i],
                _remaining(char_limit, used),
                self.min_trim_tokens if may_trim else None,
            )
            if piece is not None:
                take(i, piece)
                may_trim = may_trim and not piece[2]

        if not chosen:
            # Nothing fitted under the usual rules (every sentence's leading clauses exceed the
            # budget, or only tiny sentences and greetings exist): keep the best one's start.
            best = int(np.argmax(scores))
            chosen[best] = self._place_surely(text, sents[best], char_limit)

        return [
            Extract(start=start, end=end, paragraph=sents[i].paragraph, trimmed=trimmed)
            for i, (start, end, trimmed) in sorted(chosen.items())
        ]

    def _scores(self, text: str, sents: Sequence[Sentence], feats: _Features) -> np.ndarray:
        n = len(sents)
        centrality = feats.centrality()
        tokens = np.asarray(feats.token_counts, dtype=np.float64)
        # Below short_tokens a sentence loses weight in proportion: "同志们：" says nothing.
        length = np.minimum(1.0, tokens / self.short_tokens)
        position = 1.0 - np.arange(n) / n
        opens_paragraph = np.array(
            [i == 0 or sents[i - 1].paragraph != s.paragraph for i, s in enumerate(sents)],
            dtype=np.float64,
        )
        # A lead-in ending in a colon ("要抓好以下工作：") announces content rather than giving it.
        damp = np.array(
            [
                0.2
                if _is_boilerplate(text[s.start : s.end])
                else 0.6
                if text[s.end - 1] in "：:"
                else 1.0
                for s in sents
            ]
        )
        prior = self.position_weight * position + self.paragraph_weight * opens_paragraph
        return damp * length * (centrality + prior)

    def _place(
        self, text: str, sentence: Sentence, remaining: int | None, min_tokens: int | None
    ) -> tuple[int, int, bool] | None:
        """The sentence whole if it fits, else its longest clause prefix that fits and keeps at
        least ``min_tokens`` tokens (None: no trimming), else None."""
        if remaining is None or sentence.end - sentence.start <= remaining:
            return sentence.start, sentence.end, False
        if min_tokens is None:
            return None
        best = None
        # The last clause ends where the sentence does, and the whole did not fit.
        for _, clause_end in split_clauses(text, sentence.start, sentence.end)[:-1]:
            end = _kept_end(text, sentence.start, clause_end)
            if end - sentence.start > remaining:
                break
            if end > sentence.start:
                best = end
        if best is None or len(_TOKEN.findall(text[sentence.start : best].lower())) < min_tokens:
            return None
        return sentence.start, best, True

    def _place_surely(
        self, text: str, sentence: Sentence, remaining: int | None
    ) -> tuple[int, int, bool]:
        """Like :meth:`_place`, but when no clause prefix fits, cut the sentence at the budget.

        The cut still starts at the sentence start; it is the one place where an extract may end
        inside a clause.
        """
        piece = self._place(text, sentence, remaining, self.min_trim_tokens)
        if piece is not None:
            return piece
        assert remaining is not None  # without a character limit every sentence fits whole
        start = sentence.start
        end = start + remaining
        # Keep at least one character: an empty extract is no summary.
        while end > start + 1 and (
            text[end - 1] in _SPACE or text[end - 1] in _OPENERS or text[end - 1] in _DROPPABLE_END
        ):
            end -= 1
        return start, end, True


def _remaining(char_limit: int | None, used: int) -> int | None:
    return None if char_limit is None else char_limit - used


def _kept_end(text: str, start: int, end: int) -> int:
    if end > start and text[end - 1] in _DROPPABLE_END:
        end -= 1
    while end > start and text[end - 1] in _SPACE:
        end -= 1
    return end


def _checked(text: str, sentences: Sequence[Sentence]) -> list[Sentence]:
    """The sentences in document order, without exact repeats; overlaps are the caller's bug."""
    out: list[Sentence] = []
    for s in sorted(sentences, key=lambda s: (s.start, s.end)):
        if not 0 <= s.start < s.end <= len(text):
            raise SummaryError(
                f"sentence offsets ({s.start}, {s.end}) do not lie in a text of {len(text)}"
            )
        if out and s.start == out[-1].start and s.end == out[-1].end:
            # The same sentence twice (once as a child's): it is a topic sentence if either says so.
            if s.topic and not out[-1].topic:
                out[-1] = s
            continue
        if out and s.start < out[-1].end:
            raise SummaryError(
                f"sentences ({out[-1].start}, {out[-1].end}) and ({s.start}, {s.end}) overlap"
            )
        out.append(s)
    return out
