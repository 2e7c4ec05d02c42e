"""The refusal model: loads, behaves monotonically in the evidence, and fits separable data."""

from __future__ import annotations

import random

from models.refusal import FEATURES, RefusalModel, aligned_share, fit, load_refusal_model


def _features(cov: float, aligned: float = 0.3) -> list[float]:
    return [cov, cov, cov, aligned, 1.6, 0.3]


def test_shipped_model_loads_and_prefers_covered_questions() -> None:
    model = load_refusal_model()
    assert len(model.weights) == len(FEATURES) + 2 == len(model.mean) == len(model.scale)
    assert 0.0 < model.threshold < 1.0
    assert model.probability(_features(0.95, 0.6)) > model.probability(_features(0.5, 0.3))
    assert model.probability(_features(0.5, 0.3)) > model.probability(_features(0.1, 0.05))
    assert model.answerable(_features(1.0, 0.8))
    assert not model.answerable(_features(0.05, 0.05))


def test_aligned_share() -> None:
    assert aligned_share("改革任务要制定时间表", "制定改革任务时间表") == 0.4  # 改革任务
    assert aligned_share("", "任何") == 0.0


def test_fit_separates_separable_evidence() -> None:
    rng = random.Random(0)
    rows = [(_features(rng.uniform(0.7, 1.0)), 1) for _ in range(200)]
    rows += [(_features(rng.uniform(0.0, 0.4)), 0) for _ in range(200)]
    model = fit(rows, steps=500)
    assert isinstance(model, RefusalModel)
    wrong = sum(model.answerable(f) != bool(y) for f, y in rows)
    assert wrong <= 4
