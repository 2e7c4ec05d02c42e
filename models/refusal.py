"""Calibrated refusal: the probability that the retrieved passages hold the answer at all.

A logistic model over lexical evidence decides ``answerable``: how much of the question the best
passage and sentence cover (by the question's refined content words, by its bigrams and by its
characters), how long a stretch of the question the sentence repeats, how clearly the first
passage leads, whether the question's numbers are in it, and how much of the question's
*specific* words it covers, words that the other retrieved passages lack (the paragraphs of one
Wikipedia article all name its topic; only the right one holds the fact asked about).
It is trained by ``scripts/train_refusal.py`` on CMRC 2018 trial
and DRCD test, each question asked once with its gold paragraph indexed and once without; the
coefficients ship in ``models/data/refusal.json``. The share of the question's weight that the
collection has never seen was tried as a feature and dropped: fitted on Wikipedia questions its
weight came out positive (paraphrases use words the text does not), which let a question such
as "本县的县长是谁？" through.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from pathlib import Path

from embeddings.tokens import normalize, query_tokens, tokens_of_normalized
from models.coverage import ASKING, QuestionTerms
from models.text import split_sentences

DEFAULT_MODEL = Path(__file__).parent / "data" / "refusal.json"

FEATURES = (
    "max_passage_coverage",
    "best_sentence_coverage",
    "aligned_share",
    "log_terms",
    "score_margin",
    "top_score",
    "second_score_ratio",
    "top_number_share",
    "heaviest_missing",
    "specific_top_coverage",
    "specific_sentence_coverage",
    "rest_coverage",
    "sentence_bigram_coverage",
    "top_character_share",
)
_NUMBER = re.compile(r"\d+")
# The evidence reads the first five passages; a list this long is what the model was trained on.
FULL_EVIDENCE = 5


def aligned_share(question: str, sentence: str) -> float:
    """Share of the (normalised) question the sentence repeats as one unbroken stretch."""
    if not question:
        return 0.0
    match = SequenceMatcher(None, question, sentence, autojunk=False).find_longest_match()
    return match.size / len(question)


def _sentences(norms: Sequence[str]) -> list[str]:
    return [n[s:e] for n in norms for s, e in split_sentences(n)]


def _specific_weights(terms: QuestionTerms, norms: Sequence[str]) -> list[float]:
    # A word every retrieved passage holds is the topic they share (a Wikipedia article's
    # name in all its paragraphs), not the fact asked about: weight words by how few hold them.
    return [
        t.weight * math.log1p(len(norms) / (1 + sum(t.word in n for n in norms)))
        for t in terms.terms
    ]


def _bigram_coverage(question: str, idf: Callable[[str], float], sentences: list[str]) -> float:
    """The best sentence's idf-weighted share of the question's bigrams the collection holds
    (a bigram no passage holds straddles a function word and could never match)."""
    never = idf("\x00")
    grams = [g for g in dict.fromkeys(query_tokens(question)) if len(g) == 2 or g.isdigit()]
    weighted = [(g, w) for g in grams if (w := idf(g)) < never - 1e-9]
    total = sum(w for _, w in weighted)
    if not total:
        return 0.0
    best = 0.0
    for sentence in sentences:
        toks = set(tokens_of_normalized(sentence))
        best = max(best, sum(w for g, w in weighted if g in toks) / total)
    return best


def evidence(
    question: str,
    terms: QuestionTerms,
    passages: Sequence[str],
    scores: Sequence[float],
) -> list[float]:
    """The features of :data:`FEATURES` for a question and its ranked passages (best first).

    Coverage is measured with the question's refined terms (question and frame words out, see
    ``models/coverage.py``); ``terms`` only lends its idf."""
    refined = terms.refined(question) if terms else terms
    if refined:
        terms = refined
    if not passages or not terms:
        return [0.0] * len(FEATURES)
    norms = [normalize(p) for p in passages[:FULL_EVIDENCE]]
    sentences = _sentences(norms)
    question_norm = normalize(question)
    coverage = [terms.coverage(n) for n in norms]
    best_cov, best_sentence = 0.0, ""
    for sentence in sentences:
        cov = terms.coverage(sentence)
        if cov > best_cov:
            best_cov, best_sentence = cov, sentence
    specific = _specific_weights(terms, norms)
    spec_total = sum(specific) or 1.0

    def specific_cov(text: str) -> float:
        return sum(w for t, w in zip(terms.terms, specific, strict=True) if t.word in text) / (
            spec_total
        )

    numbers = set(_NUMBER.findall(question_norm))
    widest = norms[max(range(len(norms)), key=coverage.__getitem__)]
    heaviest = max(t.weight for t in terms.terms)
    chars = {c for c in ASKING.sub("", question_norm) if c.isalnum()}
    ranked = sorted(coverage, reverse=True)
    return [
        max(coverage),
        best_cov,
        aligned_share(question_norm, best_sentence),
        math.log1p(len(terms.terms)),
        scores[0] - scores[1] if len(scores) > 1 else scores[0],
        scores[0],
        scores[1] / scores[0] if len(scores) > 1 and scores[0] > 0 else 0.0,
        sum(n in norms[0] for n in numbers) / len(numbers) if numbers else 1.0,
        max((t.weight for t in terms.terms if t.word not in widest), default=0.0) / heaviest,
        specific_cov(norms[0]),
        max((specific_cov(s) for s in sentences), default=0.0),
        sum(ranked[1:]) / max(1, len(ranked) - 1),
        _bigram_coverage(question, terms.idf, sentences),
        len(chars & set(norms[0])) / len(chars) if chars else 0.0,
    ]


@dataclass(frozen=True, slots=True)
class RefusalModel:
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    # A floor under the model where its evidence is thin. The model learned from result lists
    # drawn from a whole collection: its margin, runner-up and specific-word features compare the
    # first passage with the collection's next best. When a filter or a list of documents chose
    # which passages could compete, or fewer than FULL_EVIDENCE passages came back, the first one
    # leads only because its rivals were left out; then no answer comes from a widest passage
    # holding less than this share of the question's weighted words (a tea-garden question must
    # not be answered from the irrigation passage a speaker filter leaves). Over a whole
    # collection it stays off: on the training sets it turned away as many answerable questions
    # as unanswerable ones among those the model accepted, and forced the threshold down.
    min_coverage: float = 0.0

    def probability(self, features: Sequence[float]) -> float:
        z = self.bias + sum(
            w * (v - m) / s
            for w, v, m, s in zip(self.weights, features, self.mean, self.scale, strict=True)
        )
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def answerable(
        self, features: Sequence[float], *, passages: int, narrowed: bool = False
    ) -> bool:
        """Whether to answer from the evidence of ``passages`` retrieved passages; ``narrowed``
        when a filter or a list of documents restricted which passages could compete."""
        thin = narrowed or passages < FULL_EVIDENCE
        if thin and features[0] < self.min_coverage:
            return False
        return self.probability(features) >= self.threshold

    def to_json(self, **extra: object) -> str:
        body = {
            "features": list(FEATURES),
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
    if body.get("features") != list(FEATURES):
        raise ValueError(f"{path} was trained on other features: rerun scripts/train_refusal.py")
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

    x = np.asarray([list(f) for f, _ in rows], dtype=np.float64)
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
