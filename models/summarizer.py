"""Extractive summaries of one section of a speech: pieces copied by offset, never rewritten.

A summary is chosen in two steps. The speech's own topic sentences come first (the section's
heading, then the opening sentence of each numbered point, then of each sub-point), because in an
official speech they *are* the drafters' outline of the section. The rest of the budget goes to
supporting *units*: whole sentences and, under a character budget, a sentence's leading clauses
(ending at ， or ；, the mark dropped) — always starting at the sentence start, so that nothing
starts mid-clause.

Each unit gets a score that estimates the share of its characters a reference summary would keep
(a density, so that choosing by score is choosing by value per character): its centrality (cosine
of its character uni+bigram TF-IDF vector with the section's centroid, the IDF over the section's
own sentences), how many of its character pairs recur in the section, its *keyness* (the mean
share of the section's sentences that hold each of its characters and character pairs: a thesis
sentence is made of the words its section keeps coming back to), its register (spoken
fillers and deixis — 这个, 那么, 对吧, 你 — are rarely kept; see :mod:`models.register`), digits,
questions, policy verbs, position and length. Spoken transcripts and written reports reward
different cues (in meetings, sections open with greetings; in reports, short thesis sentences
open paragraphs), so the weights blend two sets by how spoken the section reads. Units are then
taken greedily by score, MMR-style — a unit whose sentence is too similar to one already chosen
is skipped — until the budget is spent; at most one unit per sentence.

Under a tight character budget (at most :data:`HEADLINE_MAX_CHARS`), a written section without
topic sentences gets a *headline* instead: the one unit, or two units from different sentences,
with the highest expected ROUGE-1 F1 against a heading. A small logistic model
(:class:`HeadingModel`, ``models/data/heading_chars.json``) estimates for each character of the
section the probability that a drafter's heading uses it -- from how many of the section's
sentences, paragraph openings, first clauses and short sub-headings hold it, where it first
occurs, a prior table of how often headings keep that character, and how many of the headings
of the most similar stored sections (:class:`HeadingNeighbours`: reports return to the same
topics year after year) hold it -- and a unit's expected F1 is its summed probabilities over
its length plus the heading's. Budget use matters: under a 20-character budget, two short
leading clauses often match more than one long sentence's start.
Thanks and hand-overs are never headline units, and a trimmed unit keeps ``min_trim_tokens``
-- or, when it opens the way headings open (its first two characters begin at least two of
the training headings: 加强, 推进, 坚持, ...), at least :data:`_OPENER_TRIM_TOKENS`: "加强土地调控"
is a point, "党的十八大以来" a fragment.

The weights were tuned on the ``dev`` rows of VCSum (spoken meetings, cross-fitted against the
register table, see :data:`SPOKEN_WEIGHTS`) and on half of the Government Work Report
subsections (written), see ``service/evals/summ.py``; the other rows are held out. The headline
model was fitted on the same dev rows (``scripts/tune_summ.py --heading-model``).

The result is returned in document order. Every budget holds: at most ``max_sentences``
extracts, and at most the character budget in total. With no budget at all, the sentence budget is
one per topic sentence, at least 3 and at most 8 (:func:`default_max_sentences`); without a
character budget, units are whole sentences.

When even the first clause of the best sentence — the headline if the section has topic
sentences, else the best-scored one — does not fit, that clause is cut at the budget, so that a
tight budget yields the start of the best sentence rather than an empty summary. Topic sentences
are taken outermost first — by the depth of their sentence's ``section_id`` (``"2"``, then
``"2.1"``, then ``"2.1.3"``), in document order within a depth — so that when a section's points
bring their own sub-points, a budget of one sentence per point still holds every point.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise
from numbers import Integral, Real
from pathlib import Path

import numpy as np

from models.register import REGISTER_CHARS, REGISTER_PAIRS
from models.text import Sentence, split_clauses

__all__ = [
    "FEATURES",
    "HEADING_FEATURES",
    "HEADLINE_MAX_CHARS",
    "SPOKEN_WEIGHTS",
    "WRITTEN_WEIGHTS",
    "Budget",
    "Extract",
    "HeadingModel",
    "HeadingNeighbours",
    "Summarizer",
    "SummaryError",
    "Weights",
    "default_heading_model",
    "default_max_sentences",
    "fit_heading_openers",
    "fit_heading_prior",
    "fit_logistic",
    "heading_char_stats",
    "heading_design",
]


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


# A token is one CJK character, one Latin word or one digit run; Latin words are lower-cased.
_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\W\d_A-Za-z]")
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
# The spoken register: deixis, discourse markers, hedges and addressing the room. A summary in
# a neutral register keeps almost none of it.
_SPOKEN_WORDS = (
    "就是说 所以说 或者说 对不对 是不是 有没有 主持人 这个 这些 这样 这么 这种 这里 这边 那个 "
    "那么 那些 那种 那样 其实 觉得 认为 我想 什么 怎么 刚才 刚刚 谢谢 感谢 对吧 是吧 好吧 一下 "
    "的话 比如 当然 当时 确实 真的 肯定 等等 咱们 你们 我们 他们 大家 各位 嘉宾 老师 话题 东西 "
    "所谓 然后 可能 一点"
).split()
_SPOKEN = re.compile("|".join(_SPOKEN_WORDS) + "|[你您我他她它嗯啊呃吧呢嘛哦哈呀啦哎诶噢]")
# Markers that written speeches and reports all but never use: their share of a section tells a
# transcript from a report (VCSum segments: 1.2 % and up for 99 % of them; Government Work
# Report subsections: at most 1.7 %, 0.2 % for 95 % of them).
_STRICTLY_SPOKEN = re.compile(
    r"这个|那个|那么|就是|然后|其实|觉得|对吧|是吧|什么|怎么|刚才|的话|比如说|[你您吧呢嘛啊嗯呃哈呀哦]"
)
_WRITTEN_BELOW = 0.01
_SPOKEN_ABOVE = 0.03
# Verbs and adverbs that carry the thesis sentences of official reports ("加快推进……").
_POLICY = re.compile(
    r"进一步|大力|积极|切实|着力|坚持|加快|推进|推动|加强|深化|促进|扩大|提高|提升|实施|完善|健全|"
    r"强化|持续|全面|稳定|保持|优化|增强|巩固|培育|构建|做好|抓好|落实|深入|坚决|努力|不断|继续|"
    r"支持|保障|改善|扎实|有效|统筹|发展|建设|改革|创新"
)

# Each gram's IDF is scaled by exp(_REGISTER_IDF * its register weight), so that fillers count
# for less, and summary-like words for more, in both a unit's vector and the centroid.
_REGISTER_IDF = 0.4

FEATURES = (
    "centrality",
    "recurring",
    "spoken",
    "register_chars",
    "register_pairs",
    "digits",
    "question",
    "log_tokens",
    "policy",
    "opens_paragraph",
    "position",
    "trimmed",
    "lead_in",
    "boilerplate",
    "keyness",
    "key_pairs",
)


@dataclass(frozen=True, slots=True)
class Weights:
    """Linear weights of a unit's features (see :data:`FEATURES`); the score is their sum.

    ``centrality``: cosine with the section centroid; ``recurring``: share of its character pairs
    found in another sentence of the section; ``spoken``: share of its characters in spoken
    markers; ``register_chars`` / ``register_pairs``: mean register weight of its characters /
    character pairs; ``digits``: share of its tokens that are numbers; ``question``: its sentence
    ends in ？; ``log_tokens``: log of its token count; ``policy``: policy verbs per token;
    ``opens_paragraph``, ``position`` (1 for the first sentence, towards 0 for the last),
    ``trimmed`` (only leading clauses), ``lead_in`` (ends at a colon), ``boilerplate`` (a greeting,
    thanks or hand-over); ``keyness`` / ``key_pairs``: mean share of the section's sentences that
    hold each of its characters / character pairs.
    """

    centrality: float = 1.0
    recurring: float = 0.0
    spoken: float = 0.0
    register_chars: float = 0.0
    register_pairs: float = 0.0
    digits: float = 0.0
    question: float = 0.0
    log_tokens: float = 0.0
    policy: float = 0.0
    opens_paragraph: float = 0.0
    position: float = 0.0
    trimmed: float = 0.0
    lead_in: float = 0.0
    boilerplate: float = 0.0
    keyness: float = 0.0
    key_pairs: float = 0.0

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in FEATURES], dtype=np.float64)


# Tuned by coordinate ascent on ROUGE-1 + ROUGE-L of VCSum's dev rows (spoken meetings), where
# the register, recurring phrases and the absence of numbers and questions tell -- cross-fitted:
# the register table fitted on one half of the dev meetings, the weights scored on the other half,
# so that the weights do not lean on a table that has seen the rows they are scored on
# (scripts/tune_summ.py). The written weights were chosen on the dev half of the Government Work
# Report subsections, where a thesis sentence shares the characters that recur across its section
# (``keyness``) and the policy verbs that open it. ``lead_in`` and ``boilerplate`` are set by
# hand: neither set has enough of them to tune on. See service/evals/summ.py.
SPOKEN_WEIGHTS = Weights(
    centrality=1.1,
    recurring=0.5,
    register_chars=0.75,
    register_pairs=0.05,
    digits=-2.0,
    question=-0.2,
    policy=-0.2,
    opens_paragraph=0.1,
    lead_in=-0.1,
    boilerplate=-1.0,
    keyness=0.5,
)
WRITTEN_WEIGHTS = Weights(
    centrality=0.9,
    digits=-1.0,
    policy=0.3,
    opens_paragraph=0.1,
    lead_in=-0.1,
    boilerplate=-1.0,
    keyness=0.8,
    key_pairs=0.1,
)


@dataclass(slots=True)
class _Analysis:
    """A section's candidate units and their features, plus sentence vectors for redundancy.

    Unit ``u`` is ``text[start[u]:end[u]]``, a leading piece of sentence ``sentence[u]``.
    """

    sentence: np.ndarray
    start: np.ndarray
    end: np.ndarray
    tokens: np.ndarray
    features: np.ndarray
    spokenness: float
    sentence_tokens: list[int]
    boilerplate: list[bool]
    rows: np.ndarray
    cols: np.ndarray
    vals: np.ndarray
    indptr: np.ndarray
    vocab_size: int

    def similarities(self, i: int) -> np.ndarray:
        """Cosine of sentence ``i``'s TF-IDF vector with every sentence's."""
        dense = np.zeros(self.vocab_size)
        lo, hi = self.indptr[i], self.indptr[i + 1]
        dense[self.cols[lo:hi]] = self.vals[lo:hi]
        return np.bincount(
            self.rows, weights=self.vals * dense[self.cols], minlength=len(self.sentence_tokens)
        )


def _is_boilerplate(text: str) -> bool:
    if len(text) > _BOILERPLATE_MAX_CHARS:
        return False
    lowered = text.lower()
    return bool(_GREETING.match(lowered) or _HANDOVER.search(lowered))


def _cumulative_chars(
    pattern: re.Pattern[str], text: str, start: int, end: int
) -> tuple[list[int], list[int]]:
    """Match ends (absolute) and the running total of matched characters up to each."""
    ends: list[int] = []
    totals: list[int] = []
    total = 0
    for m in pattern.finditer(text, start, end):
        total += m.end() - m.start()
        ends.append(m.end())
        totals.append(total)
    return ends, totals


def _upto(ends: list[int], totals: list[int], position: int) -> int:
    k = bisect_right(ends, position)
    return totals[k - 1] if k else 0


def _spokenness(text: str, sents: Sequence[Sentence]) -> float:
    """0 for written text, 1 for a transcript, by the share of strictly spoken markers."""
    section_chars = sum(s.end - s.start for s in sents)
    strict = sum(
        len(m.group()) for s in sents for m in _STRICTLY_SPOKEN.finditer(text, s.start, s.end)
    )
    spokenness = (strict / max(section_chars, 1) - _WRITTEN_BELOW) / (
        _SPOKEN_ABOVE - _WRITTEN_BELOW
    )
    return min(1.0, max(0.0, spokenness))


def _analyse(text: str, sents: Sequence[Sentence], trim: bool) -> _Analysis:
    """Candidate units of a section and their features.

    Tokens are read once in Python; everything after is cumulative sums over the section's
    tokens, so that a unit's features (a leading piece of a sentence) are differences of two
    prefix sums.
    """
    n = len(sents)
    vocab: dict[str, int] = {}
    tok_end: list[int] = []  # absolute end offset of each token
    uni: list[int] = []  # gram id of each token
    bi: list[int] = []  # gram id of the bigram it closes with the touching token before, or -1
    reg_chars: list[float] = []
    reg_pairs: list[float] = []
    digits: list[bool] = []
    first_token = [0]  # index of each sentence's first token; n + 1 entries
    for s in sents:
        prev_end = -1
        prev = ""
        for m in _TOKEN.finditer(text, s.start, s.end):
            token = m.group().lower()
            uni.append(vocab.setdefault(token, len(vocab)))
            # Bigrams only between touching tokens: a pair across "，" is no phrase.
            bi.append(
                vocab.setdefault(prev + " " + token, len(vocab)) if m.start() == prev_end else -1
            )
            reg_chars.append(REGISTER_CHARS.get(token, 0.0))
            reg_pairs.append(REGISTER_PAIRS.get(prev + token, 0.0) if prev else 0.0)
            digits.append(token.isdigit())
            tok_end.append(m.end())
            prev_end, prev = m.end(), token
        first_token.append(len(uni))

    n_tokens = len(uni)
    starts = np.asarray(first_token, dtype=np.intp)
    tok_sentence = np.repeat(np.arange(n, dtype=np.intp), np.diff(starts))
    bi_arr = np.asarray(bi, dtype=np.intp)
    touching = bi_arr >= 0
    # Every gram occurrence, in reading order: each token's unigram, then its bigram if any.
    occ_token = np.concatenate([np.arange(n_tokens), np.flatnonzero(touching)])
    occ_gram = np.concatenate([np.asarray(uni, dtype=np.intp), bi_arr[touching]])
    order = np.argsort(occ_token, kind="stable")
    occ_token, occ_gram = occ_token[order], occ_gram[order]
    occ_sentence = tok_sentence[occ_token]

    vocab_size = len(vocab)
    key = occ_sentence * vocab_size + occ_gram
    pairs, counts = np.unique(key, return_counts=True)
    rows = pairs // max(vocab_size, 1)
    cols = pairs % max(vocab_size, 1)
    df = np.bincount(cols, minlength=vocab_size)
    # Smoothed IDF over the section's own sentences: what is common in *this* section is what
    # makes a sentence central to it, and what is everywhere (的, 要) weighs least.
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    if _REGISTER_IDF and vocab_size:
        register = np.fromiter(
            (
                (REGISTER_PAIRS if " " in gram else REGISTER_CHARS).get(gram.replace(" ", ""), 0.0)
                for gram in vocab
            ),
            dtype=np.float64,
            count=vocab_size,
        )
        idf = idf * np.exp(_REGISTER_IDF * register)
    # Sublinear TF: a rambling sentence that repeats a phrase is not more central for it.
    vals = (1.0 + np.log(counts)) * idf[cols]
    norms = np.sqrt(np.bincount(rows, weights=vals * vals, minlength=n))
    vals = vals / norms[rows]
    centroid = np.bincount(cols, weights=vals, minlength=vocab_size)
    centroid_norm = float(np.linalg.norm(centroid)) or 1.0

    # The k-th occurrence of a gram in its sentence raises its weight from (1 + ln(k-1)) idf to
    # (1 + ln k) idf; summing the changes in reading order gives every prefix's dot product with
    # the centroid and squared norm.
    by_key = np.argsort(key, kind="stable")
    sorted_key = key[by_key]
    group_start = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    group_sizes = np.diff(np.r_[group_start, len(sorted_key)])
    kth = np.empty(len(key), dtype=np.float64)
    kth[by_key] = np.arange(len(key)) - np.repeat(group_start, group_sizes) + 1
    g_idf = idf[occ_gram]
    w_new = (1.0 + np.log(kth)) * g_idf
    w_old = np.where(kth > 1, (1.0 + np.log(np.maximum(kth - 1, 1))) * g_idf, 0.0)
    per_token = np.stack(
        [
            np.bincount(
                occ_token, weights=(w_new - w_old) * centroid[occ_gram], minlength=n_tokens
            ),
            np.bincount(occ_token, weights=w_new * w_new - w_old * w_old, minlength=n_tokens),
            np.asarray(reg_chars, dtype=np.float64),
            np.asarray(reg_pairs, dtype=np.float64),
            np.asarray(digits, dtype=np.float64),
            touching.astype(np.float64),
            np.where(touching, df[np.maximum(bi_arr, 0)] >= 2, False).astype(np.float64),
            df[np.asarray(uni, dtype=np.intp)] / n,
            np.where(touching, df[np.maximum(bi_arr, 0)] / n, 0.0),
        ]
    ).reshape(9, n_tokens)
    prefix = np.concatenate([np.zeros((9, 1)), np.cumsum(per_token, axis=1)], axis=1)

    spokenness = _spokenness(text, sents)

    u_sentence: list[int] = []
    u_end: list[int] = []
    u_tokens: list[int] = []
    u_spoken: list[float] = []
    u_policy: list[int] = []
    u_lead_in: list[bool] = []
    boilerplate: list[bool] = []
    for i, s in enumerate(sents):
        boilerplate.append(_is_boilerplate(text[s.start : s.end]))
        ends = [s.end]
        if trim:
            for _, clause_end in split_clauses(text, s.start, s.end)[:-1]:
                end = _kept_end(text, s.start, clause_end)
                if end > s.start:
                    ends.append(end)
            ends = sorted(set(ends))
        spoken_ends, spoken_totals = _cumulative_chars(_SPOKEN, text, s.start, s.end)
        policy_ends, policy_totals = _cumulative_chars(_POLICY, text, s.start, s.end)
        lo, hi = first_token[i], first_token[i + 1]
        seen: set[int] = set()
        for end in ends:
            k = bisect_right(tok_end, end, lo, hi) - lo
            if k in seen:  # a clause of marks only adds no token: the same unit again
                continue
            seen.add(k)
            u_sentence.append(i)
            u_end.append(end)
            u_tokens.append(k)
            u_spoken.append(_upto(spoken_ends, spoken_totals, end) / (end - s.start))
            u_policy.append(_upto(policy_ends, policy_totals, end))
            u_lead_in.append(text[end - 1] in "：:" or (end < s.end and text[end] in "：:"))

    unit_sentence = np.asarray(u_sentence, dtype=np.intp)
    unit_end = np.asarray(u_end, dtype=np.intp)
    unit_tokens = np.asarray(u_tokens, dtype=np.intp)
    sent_start = np.asarray([s.start for s in sents], dtype=np.intp)
    sent_end = np.asarray([s.end for s in sents], dtype=np.intp)
    lo = starts[unit_sentence]
    sums = prefix[:, lo + unit_tokens] - prefix[:, lo]
    dot, sq, reg1, reg2, digit_count, touching_count, recurring_count, key1, key2 = sums
    k = unit_tokens.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        features = np.column_stack(
            [
                np.where(sq > 0, dot / np.sqrt(sq) / centroid_norm, 0.0),
                np.where(touching_count > 0, recurring_count / touching_count, 0.0),
                np.asarray(u_spoken, dtype=np.float64),
                np.where(k > 0, reg1 / k, 0.0),
                np.where(k > 1, reg2 / (k - 1), 0.0),
                np.where(k > 0, digit_count / k, 0.0),
                np.array([text[sent_end[i] - 1] in "？?" for i in u_sentence], dtype=np.float64),
                np.log(np.maximum(k, 1.0)),
                np.asarray(u_policy, dtype=np.float64) / np.maximum(k, 1.0),
                np.array(
                    [i == 0 or sents[i - 1].paragraph != sents[i].paragraph for i in u_sentence],
                    dtype=np.float64,
                ),
                1.0 - unit_sentence / n,
                (unit_end != sent_end[unit_sentence]).astype(np.float64),
                np.asarray(u_lead_in, dtype=np.float64),
                np.asarray(boilerplate, dtype=np.float64)[unit_sentence],
                np.where(k > 0, key1 / k, 0.0),
                np.where(touching_count > 0, key2 / touching_count, 0.0),
            ]
        ).reshape(len(u_sentence), len(FEATURES))
    return _Analysis(
        sentence=unit_sentence,
        start=sent_start[unit_sentence],
        end=unit_end,
        tokens=unit_tokens,
        features=features,
        spokenness=spokenness,
        sentence_tokens=np.diff(starts).tolist(),
        boilerplate=boilerplate,
        rows=rows,
        cols=cols,
        vals=vals,
        indptr=np.searchsorted(rows, np.arange(n + 1)),
        vocab_size=vocab_size,
    )


class Summarizer:
    """Extractive summariser of one section at a time; stateless between calls.

    ``redundancy`` is the cosine similarity above which a candidate counts as a repeat of a
    sentence already chosen and is skipped; ``diversity`` additionally penalises, MMR-style, a
    candidate's similarity to what was chosen. ``topic_redundancy`` is the (higher) threshold for
    topic sentences, which share the section's vocabulary by design. A supporting unit (and a
    whole supporting sentence keeps at least ``min_tokens`` tokens, and a trimmed unit (supporting
    or topic, the last-resort cut aside) at least ``min_trim_tokens``: a short leading clause
    ("党的十八大以来") is a fragment, not a point. (A headline unit that opens like a heading may
    be shorter, see :data:`_OPENER_TRIM_TOKENS`.)
    ``spoken`` and ``written`` are the score weights for transcripts and for written text; a
    section in between gets a blend.
    """

    def __init__(
        self,
        *,
        redundancy: float = 0.5,
        diversity: float = 0.0,
        topic_redundancy: float = 0.9,
        min_tokens: int = 6,
        min_trim_tokens: int = 8,
        spoken: Weights = SPOKEN_WEIGHTS,
        written: Weights = WRITTEN_WEIGHTS,
        headline: HeadingModel | bool = True,
    ) -> None:
        for name, value in (("redundancy", redundancy), ("topic_redundancy", topic_redundancy)):
            if not 0.0 < value <= 1.0:
                raise SummaryError(f"{name} must be in (0, 1], got {value!r}")
        if not diversity >= 0.0:
            raise SummaryError(f"diversity must not be negative, got {diversity!r}")
        for name, value in (("min_tokens", min_tokens), ("min_trim_tokens", min_trim_tokens)):
            if value < 1:
                raise SummaryError(f"{name} must be at least 1, got {value!r}")
        self.redundancy = redundancy
        self.diversity = diversity
        self.topic_redundancy = topic_redundancy
        self.min_tokens = min_tokens
        self.min_trim_tokens = min_trim_tokens
        self.spoken = spoken
        self.written = written
        # True: the shipped model, loaded on first use; False: never use headline mode.
        self._headline = headline

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
        chosen = self._choose_headline(text, sents, char_limit, max_sentences)
        if not chosen:
            analysis = _analyse(text, sents, trim=char_limit is not None)
            chosen = self._choose(
                text, sents, analysis, self.scores(analysis), char_limit, max_sentences
            )
        return [
            Extract(start=start, end=end, paragraph=sents[i].paragraph, trimmed=trimmed)
            for i, (start, end, trimmed) in sorted(chosen.items())
        ]

    @property
    def heading_model(self) -> HeadingModel | None:
        if self._headline is True:
            return default_heading_model()
        return self._headline or None

    def _choose_headline(
        self,
        text: str,
        sents: Sequence[Sentence],
        char_limit: int | None,
        max_sentences: int | None,
    ) -> dict[int, tuple[int, int, bool]]:
        """Headline mode: for written text without topic sentences under a character budget of
        at most :data:`HEADLINE_MAX_CHARS`, the one or two leading pieces of sentences with the
        highest expected ROUGE-1 against a heading (see :class:`HeadingModel`). {} when it does
        not apply or when no unit fits."""
        if (
            char_limit is None
            or char_limit > HEADLINE_MAX_CHARS
            or any(s.topic for s in sents)
            or _spokenness(text, sents) >= _HEADLINE_SPOKENNESS
        ):
            return {}
        model = self.heading_model
        if model is None:
            return {}
        toks = _tokens(text, sents)
        units = _headline_units(text, sents, toks, char_limit, self.min_trim_tokens, model.openers)
        if not units:
            return {}
        starts = [s.start for s in sents]
        picked = _choose_headline_units(
            units,
            starts,
            toks,
            model._probabilities(toks, sents),
            char_limit,
            2 if max_sentences is None else max_sentences,
        )
        return {
            units[k][0]: (starts[units[k][0]], units[k][1], units[k][1] != sents[units[k][0]].end)
            for k in picked
        }

    def scores(self, analysis: _Analysis) -> np.ndarray:
        """Every unit's score: the blend of the spoken and written weights, dotted with its
        features."""
        s = analysis.spokenness
        weights = s * self.spoken.as_array() + (1.0 - s) * self.written.as_array()
        return analysis.features @ weights

    def _choose(
        self,
        text: str,
        sents: Sequence[Sentence],
        analysis: _Analysis,
        scores: np.ndarray,
        char_limit: int | None,
        max_sentences: int | None,
    ) -> dict[int, tuple[int, int, bool]]:
        n = len(sents)
        chosen: dict[int, tuple[int, int, bool]] = {}
        used = 0
        max_sim = np.zeros(n)

        def full() -> bool:
            if max_sentences is not None and len(chosen) >= max_sentences:
                return True
            return char_limit is not None and used >= char_limit

        def take(i: int, piece: tuple[int, int, bool]) -> None:
            nonlocal used, max_sim
            chosen[i] = piece
            used += piece[1] - piece[0]
            max_sim = np.maximum(max_sim, analysis.similarities(i))

        # Outermost first: the section's headline, then its points, then their sub-points; in
        # document order within a level. The summary itself is put back in document order.
        topics = sorted((_depth(s.section_id), i) for i, s in enumerate(sents) if s.topic)
        for _, i in topics:
            s = sents[i]
            if full():
                break
            if max_sim[i] > self.topic_redundancy:
                continue
            remaining = _remaining(char_limit, used)
            if not chosen:
                # The headline is the drafters' own summary of the section: keep at least its
                # start, however tight the budget.
                take(i, self._place_surely(text, s, remaining))
                continue
            piece = self._place(text, s, remaining, self.min_trim_tokens)
            if piece is not None:
                take(i, piece)

        unit_sentence = analysis.sentence
        lengths = analysis.end - analysis.start
        # Topic sentences are placed above; tiny units and stage directions are used only when
        # nothing else could be: they would otherwise fill the leftover of a character budget.
        trimmed = analysis.end != np.asarray([s.end for s in sents], dtype=np.intp)[unit_sentence]
        least = np.where(trimmed, self.min_trim_tokens, self.min_tokens)
        open_ = (analysis.tokens >= least) & ~np.array(
            [sents[i].topic or analysis.boilerplate[i] for i in range(n)], dtype=bool
        )[unit_sentence]
        open_ &= ~np.isin(unit_sentence, list(chosen))
        while not full() and open_.any():
            remaining = _remaining(char_limit, used)
            candidates = open_ & (max_sim[unit_sentence] <= self.redundancy)
            if remaining is not None:
                candidates &= lengths <= remaining
            if not candidates.any():
                break
            value = np.where(candidates, scores - self.diversity * max_sim[unit_sentence], -np.inf)
            u = int(np.argmax(value))
            i = int(unit_sentence[u])
            end = int(analysis.end[u])
            take(i, (int(analysis.start[u]), end, end != sents[i].end))
            open_ &= unit_sentence != i

        if not chosen:
            # Nothing fitted under the usual rules (every sentence's leading clauses exceed the
            # budget, or only tiny sentences and greetings exist): keep the best one's start.
            whole = analysis.end == np.asarray([sents[i].end for i in unit_sentence])
            u = int(np.argmax(np.where(whole, scores, -np.inf)))
            best = int(unit_sentence[u])
            chosen[best] = self._place_surely(text, sents[best], char_limit)
        return chosen

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
        if best is None or len(_TOKEN.findall(text, sentence.start, best)) < min_tokens:
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


def _depth(section_id: str) -> int:
    """Nesting depth of an outline section id: ``"2"`` 0, ``"2.1"`` 1; other ids 0."""
    parts = section_id.split(".")
    return len(parts) - 1 if all(p.isdigit() for p in parts) else 0


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


# -- headlines: a heading-like summary under a tight character budget ---------------------------

# Under a budget this short, a summary is a headline: one or two short units chosen for the
# characters a drafter's heading would use, not the section's most central long sentence.
HEADLINE_MAX_CHARS = 60
# Headline mode is for written text only: a transcript's "headline" is not what VCSum rewards.
_HEADLINE_SPOKENNESS = 0.5
# A budget's worth of reference text holds about 8 % punctuation, which ROUGE does not count.
_REFERENCE_TOKEN_SHARE = 0.92
# A sentence this short that opens a paragraph is usually a sub-heading ("推进国资国企改革。").
_SHORT_SENTENCE_TOKENS = 20
# How many units (best alone, and densest) are paired up; see _choose_headline_units.
_HEADLINE_PAIR_POOL = 40
# A headline's trimmed unit shorter than ``min_trim_tokens`` is kept only when it opens like a
# heading, and never under this many tokens. On the cross-fitted gwr dev rows, leading clauses
# of 6-7 tokens that open like headings (加强土地调控, 发展外贸新业态) raised ROUGE-1 from 23.0
# to 23.5; letting every 6-token clause in scored 23.6 but brought fragments with it
# (我们追求的发展, 作为人民政府, 所有重大决策).
_OPENER_TRIM_TOKENS = 6
# A heading-opening bigram counts when at least this many training headings open with it.
_OPENER_MIN_HEADINGS = 2
HEADING_MODEL_FILE = Path(__file__).parent / "data" / "heading_chars.json"

HEADING_FEATURES = (
    "prior",
    "log_count",
    "sentence_share",
    "first_position",
    "opener_share",
    "first_clause_share",
    "log_sentences",
    "prior_x_share",
    "short_opener_share",
    "in_first_sentence",
    "has_short_opener",
    "neighbour_headings",
)
# How many of the most similar stored sections lend their headings, and how sharply their
# weight falls with similarity (cosine ** power); chosen on the cross-fitted gwr dev rows by
# the held-out log loss of the character model (k 3-40, power 1-8 tried; 10 and 3 best).
_NEIGHBOURS = 10
_NEIGHBOUR_POWER = 3.0
# A stored section this similar is the very section being summarised (an eval row the model
# was fitted on): it is not its own neighbour.
_SAME_SECTION = 1.0 - 1e-9


@dataclass(slots=True)
class _Tokens:
    """A section's tokens in reading order: gram id, sentence, and whether the token lies in its
    sentence's first clause; ``bounds[i]`` is sentence ``i``'s first token."""

    vocab: dict[str, int]
    ids: np.ndarray
    sentence: np.ndarray
    first_clause: np.ndarray
    bounds: np.ndarray


def _tokens(text: str, sents: Sequence[Sentence]) -> _Tokens:
    vocab: dict[str, int] = {}
    ids: list[int] = []
    counts: list[int] = []
    first_clause: list[int] = []
    for s in sents:
        toks = _TOKEN.findall(text, s.start, s.end)
        ids.extend([vocab.setdefault(t, len(vocab)) for t in map(str.lower, toks)])
        counts.append(len(toks))
        clause = split_clauses(text, s.start, s.end)[:1]
        first_clause.append(len(_TOKEN.findall(text, s.start, clause[0][1])) if clause else 0)
    n_tokens = np.asarray(counts, dtype=np.intp)
    bounds = np.concatenate([[0], np.cumsum(n_tokens)]).astype(np.intp)
    sentence = np.repeat(np.arange(len(sents), dtype=np.intp), n_tokens)
    within = np.arange(len(ids)) - bounds[sentence]
    return _Tokens(
        vocab,
        np.asarray(ids, dtype=np.intp),
        sentence,
        within < np.asarray(first_clause, dtype=np.intp)[sentence],
        bounds,
    )


def heading_char_stats(text: str, sents: Sequence[Sentence]) -> tuple[list[str], np.ndarray]:
    """Every distinct token of a section and its statistics there, one row per token: the
    columns of :data:`HEADING_FEATURES` other than ``prior`` and ``prior_x_share``.

    A heading restates what its section keeps coming back to (``sentence_share``), what its
    paragraphs open with (``opener_share``, ``first_clause_share``) and what its short
    sub-headings say (``short_opener_share``).
    """
    return _char_stats(_tokens(text, sents), sents)


def _char_stats(toks: _Tokens, sents: Sequence[Sentence]) -> tuple[list[str], np.ndarray]:
    n = len(sents)
    v = len(toks.vocab)
    if v == 0:
        return [], np.zeros((0, 9))
    ids, sentence = toks.ids, toks.sentence
    per_sentence = np.bincount(sentence, minlength=n)
    opener = np.array(
        [i == 0 or sents[i - 1].paragraph != s.paragraph for i, s in enumerate(sents)], dtype=bool
    )
    short_opener = opener & (per_sentence <= _SHORT_SENTENCE_TOKENS)

    def share(mask: np.ndarray, of: int) -> np.ndarray:
        """In how many sentences (of the tokens selected by ``mask``) each gram occurs, / of."""
        distinct = np.unique(sentence[mask] * v + ids[mask]) % v
        return np.bincount(distinct, minlength=v) / max(of, 1)

    everywhere = np.ones(len(ids), dtype=bool)
    first_position = np.full(v, len(ids))
    np.minimum.at(first_position, ids, np.arange(len(ids)))
    stats = np.column_stack(
        [
            np.log(np.bincount(ids, minlength=v)),
            share(everywhere, n),
            first_position / len(ids),
            share(opener[sentence], int(opener.sum())),
            share(toks.first_clause, n),
            np.full(v, math.log(n)),
            share(short_opener[sentence], int(short_opener.sum())),
            np.bincount(ids[sentence == 0], minlength=v) > 0,
            np.full(v, float(short_opener.any())),
        ]
    ).astype(np.float64)
    return list(toks.vocab), stats


def heading_design(
    chars: Sequence[str],
    stats: np.ndarray,
    prior: dict[str, float],
    base: float,
    neighbour: np.ndarray | None = None,
) -> np.ndarray:
    """The feature matrix (columns :data:`HEADING_FEATURES`) from :func:`heading_char_stats`,
    a prior table and :meth:`HeadingNeighbours.share` (zeros when None); a token the table has
    not seen gets ``base``."""
    p = np.array([prior.get(c, base) for c in chars], dtype=np.float64)
    if neighbour is None:
        neighbour = np.zeros(len(chars))
    return np.column_stack([p, stats[:, :5], stats[:, 5], p * stats[:, 1], stats[:, 6:], neighbour])


def _grams(words: Sequence[str]) -> Counter[str]:
    """A token sequence's tokens and pairs of consecutive tokens (``"a b"``), with counts."""
    counts = Counter(words)
    counts.update(f"{a} {b}" for a, b in pairwise(words))
    return counts


@dataclass(frozen=True)
class HeadingNeighbours:
    """The headings of stored sections, found by how similar their text is to a section's.

    Reports come back to the same topics year after year, and a subsection on farming is
    headed with the words of earlier headings on farming (农业, 农民, 粮食) that no statistic
    of the section itself singles out. :meth:`share` gives each token of a section the
    similarity-weighted share of the ``k`` most similar stored sections whose heading holds
    it. Similarity is the cosine of TF-IDF vectors of tokens and token pairs (sublinear TF,
    IDF over the stored sections); a neighbour weighs ``cosine ** power``. ``sections`` are
    the stored sections' tokens, space-separated, and ``headings`` their headings' tokens.
    """

    headings: tuple[str, ...]
    sections: tuple[str, ...]
    k: int = _NEIGHBOURS
    power: float = _NEIGHBOUR_POWER
    _heading_sets: tuple[frozenset[str], ...] = field(init=False, repr=False, compare=False)
    _vocab: dict[str, int] = field(init=False, repr=False, compare=False)
    _idf: np.ndarray = field(init=False, repr=False, compare=False)
    _indptr: np.ndarray = field(init=False, repr=False, compare=False)
    _docs: np.ndarray = field(init=False, repr=False, compare=False)
    _weights: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.headings) != len(self.sections):
            raise ValueError("one heading per stored section")
        counts = [_grams(s.split()) for s in self.sections]
        df: Counter[str] = Counter(g for c in counts for g in c)
        vocab = {g: i for i, g in enumerate(sorted(df))}
        n = len(counts)
        idf = np.array([math.log((1 + n) / (1 + df[g])) + 1.0 for g in vocab])
        # Column-major postings: for each gram, the sections holding it and their weights.
        cols, docs, weights = [], [], []
        for d, c in enumerate(counts):
            col = np.fromiter((vocab[g] for g in c), dtype=np.intp, count=len(c))
            w = (1.0 + np.log(np.fromiter(c.values(), dtype=np.float64, count=len(c)))) * idf[col]
            cols.append(col)
            docs.append(np.full(len(c), d, dtype=np.intp))
            weights.append(w / (float(np.linalg.norm(w)) or 1.0))
        col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.intp)
        order = np.argsort(col, kind="stable")
        setattr_ = object.__setattr__
        setattr_(self, "_heading_sets", tuple(frozenset(h.split()) for h in self.headings))
        setattr_(self, "_vocab", vocab)
        setattr_(self, "_idf", idf)
        setattr_(
            self,
            "_indptr",
            np.concatenate([[0], np.cumsum(np.bincount(col, minlength=len(vocab)))]).astype(
                np.intp
            ),
        )
        setattr_(self, "_docs", np.concatenate(docs)[order] if docs else col)
        setattr_(self, "_weights", np.concatenate(weights)[order] if weights else np.zeros(0))

    @classmethod
    def fit(cls, pairs: Sequence[tuple[Sequence[str], str]]) -> HeadingNeighbours:
        """From ``(section tokens, heading)`` pairs (tokens as :func:`heading_words` gives)."""
        return cls(
            headings=tuple(" ".join(_TOKEN.findall(h.lower())) for _, h in pairs),
            sections=tuple(" ".join(words) for words, _ in pairs),
        )

    def similarities(self, words: Sequence[str]) -> np.ndarray:
        """The cosine of a token sequence's TF-IDF vector with every stored section's."""
        n = len(self.sections)
        counts = _grams(words)
        unseen = math.log(1 + n) + 1.0  # the IDF of a gram no stored section holds
        get = self._vocab.get
        ids = np.fromiter((get(g, -1) for g in counts), dtype=np.intp, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        known = ids >= 0
        col = ids[known]
        qw = tf[known] * self._idf[col]
        norm = math.sqrt(float(qw @ qw) + float(np.sum((tf[~known] * unseen) ** 2)))
        lo, hi = self._indptr[col], self._indptr[col + 1]
        lengths = hi - lo
        total = int(lengths.sum())
        if not total or not norm:
            return np.zeros(n)
        # Every posting of every query gram, in one gather.
        index = np.repeat(lo - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
        dots = np.bincount(
            self._docs[index], weights=self._weights[index] * np.repeat(qw, lengths), minlength=n
        )
        return dots / norm

    def share(self, words: Sequence[str], chars: Sequence[str]) -> np.ndarray:
        """For each of ``chars``, the weighted share of the section's nearest stored sections
        whose heading holds it; ``words`` is the section's token sequence."""
        sims = self.similarities(words)
        sims[sims >= _SAME_SECTION] = 0.0
        top = np.argsort(-sims, kind="stable")[: self.k]
        w = np.maximum(sims[top], 0.0) ** self.power
        total = float(w.sum())
        out = np.zeros(len(chars))
        if total <= 0.0:
            return out
        where = {c: i for i, c in enumerate(chars)}
        for j, weight in zip(top.tolist(), w.tolist(), strict=True):
            for c in self._heading_sets[j]:
                i = where.get(c)
                if i is not None:
                    out[i] += weight
        return out / total

    def to_json(self) -> dict[str, object]:
        return {
            "k": self.k,
            "power": self.power,
            "headings": list(self.headings),
            "sections": list(self.sections),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HeadingNeighbours:
        return cls(
            headings=tuple(str(h) for h in data["headings"]),  # type: ignore[attr-defined]
            sections=tuple(str(s) for s in data["sections"]),  # type: ignore[attr-defined]
            k=int(data["k"]),  # type: ignore[call-overload]
            power=float(data["power"]),  # type: ignore[arg-type]
        )


def heading_words(text: str, sents: Sequence[Sentence]) -> list[str]:
    """A section's tokens in reading order, as :class:`HeadingNeighbours` reads them."""
    toks = _tokens(text, sents)
    return _words(toks)


def _words(toks: _Tokens) -> list[str]:
    names = list(toks.vocab)
    return [names[i] for i in toks.ids.tolist()]


def fit_heading_prior(
    pairs: Sequence[tuple[str, str]], smoothing: float = 1.0
) -> tuple[dict[str, float], float]:
    """Per token, the smoothed log odds that it is in a section's heading given that it is in
    the section's text, from ``(text, heading)`` pairs; and the log odds over all tokens (the
    value for an unseen token)."""
    in_heading: Counter[str] = Counter()
    in_text: Counter[str] = Counter()
    for text, heading in pairs:
        kept = {t.lower() for t in _TOKEN.findall(heading)}
        present = {t.lower() for t in _TOKEN.findall(text)}
        in_text.update(present)
        in_heading.update(present & kept)
    rate = sum(in_heading.values()) / max(sum(in_text.values()), 1)
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    prior = {
        c: math.log(
            (in_heading[c] + smoothing * rate) / (n - in_heading[c] + smoothing * (1 - rate))
        )
        for c, n in in_text.items()
    }
    return prior, math.log(rate / (1 - rate))


def fit_heading_openers(
    headings: Sequence[str], min_count: int = _OPENER_MIN_HEADINGS
) -> frozenset[str]:
    """The two-character openings (the first two characters) that at least ``min_count`` of
    ``headings`` begin with: a heading opens with its verb (加强, 推进, 坚持, 切实, ...)."""
    counts = Counter(h[:2] for h in headings if len(h) >= 2)
    return frozenset(b for b, n in counts.items() if n >= min_count)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 5.0, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression by Newton's method: minimises the summed log loss plus
    ``l2 * |coef|^2`` (the intercept is not penalised; scikit-learn's ``C`` is ``1 / (2 l2)``)."""
    design = np.column_stack([x, np.ones(len(x))])
    w = np.zeros(design.shape[1])
    penalty = np.full(design.shape[1], 2.0 * l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        gradient = design.T @ (p - y) + penalty * w
        hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if float(np.max(np.abs(step))) < 1e-10:
            break
    return w[:-1], float(w[-1])


@dataclass(frozen=True, slots=True)
class HeadingModel:
    """How likely each character of a section is to be in its heading: a logistic model over
    :data:`HEADING_FEATURES`, with a per-character prior table (log odds fitted on headings);
    ``openers``, the bigrams headings open with (see :func:`fit_heading_openers`), admit
    shorter leading clauses as headline units; ``neighbours`` lend the headings of similar
    stored sections (the ``neighbour_headings`` feature, 0 without them)."""

    prior: dict[str, float]
    base: float
    coef: tuple[float, ...]
    intercept: float
    openers: frozenset[str] = frozenset()
    neighbours: HeadingNeighbours | None = None

    def probabilities(self, text: str, sents: Sequence[Sentence]) -> dict[str, float]:
        """Each distinct token of the section and its probability of being in the heading."""
        toks = _tokens(text, sents)
        return dict(zip(toks.vocab, self._probabilities(toks, sents).tolist(), strict=True))

    def _probabilities(self, toks: _Tokens, sents: Sequence[Sentence]) -> np.ndarray:
        chars, stats = _char_stats(toks, sents)
        if not chars:
            return np.zeros(0)
        neighbour = None
        if self.neighbours is not None:
            neighbour = self.neighbours.share(_words(toks), chars)
        design = heading_design(chars, stats, self.prior, self.base, neighbour)
        logits = design @ np.asarray(self.coef)
        return 1.0 / (1.0 + np.exp(-(logits + self.intercept)))

    def to_json(self) -> dict[str, object]:
        return {
            "features": list(HEADING_FEATURES),
            "coef": [round(c, 6) for c in self.coef],
            "intercept": round(self.intercept, 6),
            "base": round(self.base, 4),
            "prior": {c: round(v, 3) for c, v in sorted(self.prior.items())},
            "openers": sorted(self.openers),
            "neighbours": None if self.neighbours is None else self.neighbours.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> HeadingModel:
        if data.get("features") != list(HEADING_FEATURES):
            raise ValueError("heading model features do not match HEADING_FEATURES")
        return cls(
            prior={str(k): float(v) for k, v in dict(data["prior"]).items()},  # type: ignore[call-overload]
            base=float(data["base"]),  # type: ignore[arg-type]
            coef=tuple(float(c) for c in data["coef"]),  # type: ignore[attr-defined]
            intercept=float(data["intercept"]),  # type: ignore[arg-type]
            openers=frozenset(str(b) for b in data.get("openers", [])),  # type: ignore[attr-defined]
            neighbours=(
                None
                if data.get("neighbours") is None
                else HeadingNeighbours.from_json(data["neighbours"])  # type: ignore[arg-type]
            ),
        )


@cache
def default_heading_model() -> HeadingModel | None:
    """The shipped model (``models/data/heading_chars.json``), or None when the file is absent:
    without it, tight budgets use the ordinary unit scores."""
    if not HEADING_MODEL_FILE.exists():
        return None
    return HeadingModel.from_json(json.loads(HEADING_MODEL_FILE.read_text("utf-8")))


def _headline_units(
    text: str,
    sents: Sequence[Sentence],
    toks: _Tokens,
    char_limit: int,
    min_trim_tokens: int,
    openers: frozenset[str] = frozenset(),
) -> list[tuple[int, int, int, int]]:
    """``(sentence, end, first token, token count)`` of every unit within ``char_limit``: a
    whole sentence or its leading clauses (at least ``min_trim_tokens`` tokens, or at least
    :data:`_OPENER_TRIM_TOKENS` when the sentence opens with one of ``openers``), the trailing
    clause mark dropped."""
    bounds = toks.bounds
    out: list[tuple[int, int, int, int]] = []
    for i, s in enumerate(sents):
        if _is_boilerplate(text[s.start : s.end]):  # thanks and hand-overs are no headline
            continue
        ends = {s.end}
        for _, clause_end in split_clauses(text, s.start, s.end)[:-1]:
            if clause_end - s.start > char_limit + 1:
                break
            ends.add(_kept_end(text, s.start, clause_end))
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        least = min_trim_tokens
        if text[s.start : s.start + 2] in openers:
            least = min(least, _OPENER_TRIM_TOKENS)
        seen: set[int] = set()
        for end in sorted(ends):
            if end - s.start > char_limit:
                break
            k = min(len(_TOKEN.findall(text, s.start, end)), hi - lo)
            if end != s.end and k < least:
                continue
            if k > 0 and k not in seen:  # a clause of marks only is the same unit again
                seen.add(k)
                out.append((i, end, lo, k))
    return out


def _choose_headline_units(
    units: Sequence[tuple[int, int, int, int]],
    starts: Sequence[int],
    toks: _Tokens,
    probabilities: np.ndarray,
    char_limit: int,
    max_units: int,
) -> list[int]:
    """Indices of the one or two units (two only from different sentences, together within
    ``char_limit``) with the highest expected ROUGE-1 F1 against a heading: the expected number
    of matched tokens (the summed probabilities of its distinct tokens) over its token count
    plus the heading's expected one."""
    sentence = np.array([u[0] for u in units], dtype=np.intp)
    length = np.array([u[1] - starts[u[0]] for u in units], dtype=np.intp)
    ntok = np.array([u[3] for u in units], dtype=np.float64)
    rows = np.repeat(np.arange(len(units)), [u[3] for u in units])
    grams = toks.ids[np.concatenate([np.arange(u[2], u[2] + u[3]) for u in units])]
    used, cols = np.unique(grams, return_inverse=True)
    present = np.zeros((len(units), len(used)))
    present[rows, cols] = 1.0
    p = probabilities[used]
    # Products by einsum, not BLAS: the matrices are small, and BLAS threads on a busy machine
    # cost more than they save.
    expected = np.einsum("uk,k->u", present, p)
    reference = _REFERENCE_TOKEN_SHARE * char_limit
    single = 2.0 * expected / (ntok + reference)
    best = int(np.argmax(single))
    if max_units < 2 or len(units) < 2:
        return [best]
    # Pairs only among the best singles and the densest units: a long section has hundreds of
    # units, and a good pair is made of units that are good alone or dense (matches per token).
    keep = np.union1d(
        np.argsort(-single, kind="stable")[:_HEADLINE_PAIR_POOL],
        np.argsort(-expected / ntok, kind="stable")[:_HEADLINE_PAIR_POOL],
    )
    sub = present[keep]
    # A token in both units is matched once: subtract what the two share.
    shared = np.einsum("ak,bk->ab", sub * p, sub)
    pair_expected = expected[keep, None] + expected[None, keep] - shared
    allowed = (sentence[keep, None] < sentence[None, keep]) & (
        length[keep, None] + length[None, keep] <= char_limit
    )
    pair = np.where(
        allowed,
        2.0 * pair_expected / (ntok[keep, None] + ntok[None, keep] + reference),
        -np.inf,
    )
    i, j = np.unravel_index(int(np.argmax(pair)), pair.shape)
    if pair[i, j] > single[best]:
        return [int(keep[i]), int(keep[j])]
    return [best]
