"""Calibrated refusal: the probability that the retrieved passages hold the answer at all.

A logistic model over lexical evidence (how much of the question the best passage and sentence
cover, how long a stretch of the question the sentence repeats, how clearly the first passage
leads) decides ``answerable``. It is trained by ``scripts/train_refusal.py`` on CMRC 2018 trial
and DRCD test, each question asked once with its gold paragraph indexed and once without; the
coefficients ship in ``models/data/refusal.json``. The share of the question's weight that the
collection has never seen was tried as a feature and dropped: fitted on Wikipedia questions its
weight came out positive (paraphrases use words the text does not), which let a question such
as "本县的县长是谁？" through.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

from embeddings.tokens import normalize
from models.coverage import QuestionTerms
from models.text import split_sentences

DEFAULT_MODEL = Path(__file__).parent / "data" / "refusal.json"

FEATURES = (
    "top_passage_coverage",
    "max_passage_coverage",
    "best_sentence_coverage",
    "aligned_share",
    "log_terms",
    "score_margin",
)


def aligned_share(question: str, sentence: str) -> float:
    """Share of the (normalised) question the sentence repeats as one unbroken stretch."""
    if not question:
        return 0.0
    match = SequenceMatcher(None, question, sentence, autojunk=False).find_longest_match()
    return match.size / len(question)


def evidence(
    question: str,
    terms: QuestionTerms,
    passages: Sequence[str],
    scores: Sequence[float],
) -> list[float]:
    """The features of :data:`FEATURES` for a question and its ranked passages (best first)."""
    if not passages or not terms:
        return [0.0] * len(FEATURES)
    coverage = [terms.coverage(p) for p in passages]
    best_cov, best_sentence = 0.0, ""
    for text in passages[:5]:
        for s, e in split_sentences(text):
            cov = terms.coverage(text[s:e])
            if cov > best_cov:
                best_cov, best_sentence = cov, text[s:e]
    margin = scores[0] - scores[1] if len(scores) > 1 else scores[0]
    return [
        coverage[0],
        max(coverage),
        best_cov,
        aligned_share(normalize(question), normalize(best_sentence)),
        math.log1p(len(terms.terms)),
        margin,
    ]


def _expand(x: Sequence[float]) -> list[float]:
    # Two interactions measured to help: passage and sentence coverage together, and a long
    # aligned stretch counting more than proportionally.
    return [*x, x[0] * x[2], x[3] * x[3]]


@dataclass(frozen=True, slots=True)
class RefusalModel:
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    # A floor under the model: whatever the other evidence, no answer when the best passage holds
    # less than this share of the question's weighted words (a tea-garden question must not be
    # answered from the one irrigation passage a filter leaves, however clearly it leads).
    min_coverage: float = 0.0

    def probability(self, features: Sequence[float]) -> float:
        z = self.bias + sum(
            w * (v - m) / s
            for w, v, m, s in zip(
                self.weights, _expand(features), self.mean, self.scale, strict=True
            )
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def answerable(self, features: Sequence[float]) -> bool:
        return features[1] >= self.min_coverage and self.probability(features) >= self.threshold

    def to_json(self, **extra: object) -> str:
        body = {
            "features": [*FEATURES, "top_x_sentence_coverage", "aligned_share_squared"],
            "mean": self.mean,
            "scale": self.scale,
            "weights": self.weights,
            "bias": self.bias,
            "threshold": self.threshold,
            "min_coverage": self.min_coverage,
            **extra,
        }
        return json.dumps(body, ensure_ascii=False, indent=2)


@lru_cache(maxsize=4)
def load_refusal_model(path: Path = DEFAULT_MODEL) -> RefusalModel:
    body = json.loads(path.read_text(encoding="utf-8"))
    return RefusalModel(
        mean=tuple(body["mean"]),
        scale=tuple(body["scale"]),
        weights=tuple(body["weights"]),
        bias=float(body["bias"]),
        threshold=float(body["threshold"]),
        min_coverage=float(body.get("min_coverage", 0.0)),
    )


def fit(
    rows: Sequence[tuple[Sequence[float], int]],
    *,
    steps: int = 3000,
    learning_rate: float = 0.5,
    l2: float = 1e-3,
) -> RefusalModel:
    """Logistic regression by gradient descent on standardised features (deterministic)."""
    import numpy as np

    x = np.asarray([_expand(f) for f, _ in rows], dtype=np.float64)
    y = np.asarray([label for _, label in rows], dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-z @ w))
        w -= learning_rate * (z.T @ (p - y) / len(y) + l2 * w)
    return RefusalModel(
        mean=tuple(mean.tolist()),
        scale=tuple(scale.tolist()),
        weights=tuple(w[:-1].tolist()),
        bias=float(w[-1]),
        threshold=0.5,
    )
