"""Character-level ROUGE for Chinese summaries, with bootstrap confidence intervals.

Tokens are single CJK characters, whole Latin words (lower-cased) and whole digit runs;
punctuation and white space are not tokens. Scores follow ``rouge-score``: ROUGE-N counts the
clipped overlap of n-gram multisets, ROUGE-L is the longest common subsequence of the two token
sequences (summary-level, without sentence splitting), and each reports precision, recall and F1.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "Score", "bootstrap", "lcs_length", "rouge", "tokens"]

# One CJK (or other non-Latin letter) character, one Latin word or one digit run.
_TOKEN = re.compile(r"[a-z]+|\d+|[^\W\d_a-z]")


def tokens(text: str) -> list[str]:
    """The ROUGE tokens of ``text``: ``"DeFi在2020年"`` -> ``["defi", "在", "2020", "年"]``."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    f1: float


def _score(overlap: int, predicted: int, reference: int) -> Score:
    p = overlap / predicted if predicted else 0.0
    r = overlap / reference if reference else 0.0
    return Score(p, r, 2 * p * r / (p + r) if p + r else 0.0)


def _ngrams(toks: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences."""
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge(prediction: str, reference: str) -> dict[str, Score]:
    """ROUGE-1, ROUGE-2 and ROUGE-L of one prediction against one reference."""
    pred, ref = tokens(prediction), tokens(reference)
    out: dict[str, Score] = {}
    for n in (1, 2):
        p, r = _ngrams(pred, n), _ngrams(ref, n)
        out[f"rouge{n}"] = _score(
            sum((p & r).values()), max(len(pred) - n + 1, 0), max(len(ref) - n + 1, 0)
        )
    out["rougeL"] = _score(lcs_length(pred, ref), len(pred), len(ref))
    return out


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean and its percentile bootstrap interval."""

    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{100 * self.mean:.1f} [{100 * self.low:.1f}, {100 * self.high:.1f}]"


def bootstrap(
    values: Sequence[float], *, resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Interval:
    """The mean of per-document ``values`` with a percentile bootstrap interval over documents."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - confidence) / 2
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(data.mean()), float(low), float(high))
