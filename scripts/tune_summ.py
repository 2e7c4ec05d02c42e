"""Tune the summariser's spoken weights on VCSum dev rows, cross-fitted with the register table.

The register table (models/register.py) is itself fitted on the dev rows, so weights tuned on the
same rows with the full table learn to trust it more than held-out text deserves. Here the dev
meetings are split in two (alternate ``meeting_av_num``); a table is fitted on each half and the
weights are scored on the *other* half. Coordinate ascent on ROUGE-1 + ROUGE-L, starting from
``SPOKEN_WEIGHTS``; prints every accepted step and the final weights. Test rows are never read.

    .venv/bin/python scripts/tune_summ.py --features centrality,register_pairs --steps 0.3,0.1
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

import models.summarizer as summarizer_module
from models.register import fit_register
from models.rouge import rouge
from models.summarizer import SPOKEN_WEIGHTS, Budget, Summarizer, Weights
from service.evals.summ import SUMM_DIR, body_sentences


def _score(weights: Weights, rows: list[tuple]) -> np.ndarray:
    summarizer = Summarizer(spoken=weights)
    out = []
    for text, sentences, reference in rows:
        extracts = summarizer.summarize(text, sentences, Budget(max_chars=max(1, len(reference))))
        s = rouge("".join(text[e.start : e.end] for e in extracts), reference)
        out.append((s["rouge1"].f1, s["rouge2"].f1, s["rougeL"].f1))
    return np.mean(out, axis=0)


def _set_table(table: tuple[dict[str, float], dict[str, float]]) -> None:
    # The summariser reads the module's dicts: replace their contents in place.
    for target, source in zip(
        (summarizer_module.REGISTER_CHARS, summarizer_module.REGISTER_PAIRS), table, strict=True
    ):
        target.clear()
        target.update(source)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="centrality,recurring,register_chars,register_pairs")
    parser.add_argument("--steps", default="0.3,0.1")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    path = SUMM_DIR / "vcsum_segments.jsonl"
    dev = [r for r in map(json.loads, path.read_text("utf-8").splitlines()) if r["split"] == "dev"]
    meetings = sorted({r["meeting_av_num"] for r in dev})
    first = {m for i, m in enumerate(meetings) if i % 2 == 0}
    halves = [
        [r for r in dev if (r["meeting_av_num"] in first) == in_first] for in_first in (True, False)
    ]
    tables = [fit_register([(r["text"], r["summary"]) for r in half]) for half in halves]
    held_out = [
        [(r["text"], body_sentences(r["text"]), r["summary"]) for r in half] for half in halves
    ]

    def objective(values: dict[str, float]) -> tuple[float, np.ndarray]:
        scores = []
        for table, rows in zip(tables, reversed(held_out), strict=True):
            _set_table(table)
            scores.append(_score(Weights(**values), rows))
        mean = np.mean(scores, axis=0)
        return float(mean[0] + mean[2]), mean

    values = dataclasses.asdict(SPOKEN_WEIGHTS)
    best, figures = objective(values)
    print("start", np.round(100 * figures, 2), flush=True)
    steps = [float(x) for x in args.steps.split(",")]
    for _ in range(args.rounds):
        for name in args.features.split(","):
            for step in steps:
                for sign in (1, -1):
                    trial = dict(values)
                    trial[name] = round(trial[name] + sign * step, 3)
                    value, trial_figures = objective(trial)
                    if value > best + 1e-3:
                        best, figures, values = value, trial_figures, trial
                        print(name, trial[name], np.round(100 * figures, 2), flush=True)
    print(values)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
