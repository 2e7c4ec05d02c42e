"""Tune the summariser's spoken weights on VCSum dev rows, cross-fitted with the register table.

The register table (models/register.py) is itself fitted on the dev rows, so weights tuned on the
same rows with the full table learn to trust it more than held-out text deserves. Here the dev
meetings are split in two (alternate ``meeting_av_num``); a table is fitted on each half and the
weights are scored on the *other* half. Coordinate ascent on ROUGE-1 + ROUGE-L, starting from
``SPOKEN_WEIGHTS``; prints every accepted step and the final weights. Test rows are never read.

    .venv/bin/python scripts/tune_summ.py --features centrality,register_pairs --steps 0.3,0.1

``--heading-model`` instead fits the headline model (``models/data/heading_chars.json``, see
``HeadingModel`` in models/summarizer.py) on the ``dev`` rows of the Government Work Report
subsections and prints its ROUGE-1 on those rows cross-fitted by report year (five folds of
years; each fold summarised by a model fitted on the other four, whose stored neighbour sections
are those four folds' rows). Test rows are never read.

    .venv/bin/python scripts/tune_summ.py --heading-model
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np

import models.summarizer as summarizer_module
from models.register import fit_register
from models.rouge import rouge
from models.rouge import tokens as rouge_tokens
from models.summarizer import (
    HEADING_MODEL_FILE,
    SPOKEN_WEIGHTS,
    Budget,
    HeadingModel,
    HeadingNeighbours,
    Summarizer,
    Weights,
    fit_heading_openers,
    fit_heading_prior,
    fit_logistic,
    heading_char_stats,
    heading_design,
    heading_words,
)
from service.evals.summ import SUMM_DIR, body_sentences, split_of

_HEADING_FOLDS = 5
# L2 penalty of the heading model (scikit-learn's C = 0.1), chosen on the cross-fitted dev rows
# among C in {0.1, 1}.
_HEADING_L2 = 5.0


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


def _fold_of(rows: list[dict]) -> dict[int, int]:
    years = sorted({r["year"] for r in rows})
    return {y: i % _HEADING_FOLDS for i, y in enumerate(years)}


def _neighbours(rows: list[dict]) -> HeadingNeighbours:
    return HeadingNeighbours.fit(
        [(heading_words(r["text"], body_sentences(r["text"])), r["summary"]) for r in rows]
    )


def fit_heading_model(rows: list[dict]) -> HeadingModel:
    """The headline model fitted on ``rows``: the logistic part on prior values and neighbour
    headings cross-fitted by year (a row's prior never counts its own heading, and its
    neighbours are rows of other years), the prior table, the heading openers and the stored
    neighbours on all ``rows``."""
    fold_of = _fold_of(rows)
    xs, ys = [], []
    for k in range(_HEADING_FOLDS):
        rest = [r for r in rows if fold_of[r["year"]] != k]
        prior, base = fit_heading_prior([(r["text"], r["summary"]) for r in rest])
        neighbours = _neighbours(rest)
        for r in rows:
            if fold_of[r["year"]] != k:
                continue
            sentences = body_sentences(r["text"])
            chars, stats = heading_char_stats(r["text"], sentences)
            share = neighbours.share(heading_words(r["text"], sentences), chars)
            xs.append(heading_design(chars, stats, prior, base, share))
            kept = set(rouge_tokens(r["summary"]))
            ys.append(np.array([c in kept for c in chars], dtype=np.float64))
    coef, intercept = fit_logistic(np.vstack(xs), np.concatenate(ys), l2=_HEADING_L2)
    prior, base = fit_heading_prior([(r["text"], r["summary"]) for r in rows])
    openers = fit_heading_openers([r["summary"] for r in rows])
    return HeadingModel(
        prior, base, tuple(coef.tolist()), intercept, openers, neighbours=_neighbours(rows)
    )


def _gwr_rouge1(model: HeadingModel, rows: list[dict]) -> list[float]:
    summarizer = Summarizer(headline=model)
    out = []
    for r in rows:
        text = r["text"]
        extracts = summarizer.summarize(
            text, body_sentences(text), Budget(max_chars=max(1, len(r["summary"])))
        )
        out.append(
            rouge("".join(text[e.start : e.end] for e in extracts), r["summary"])["rouge1"].f1
        )
    return out


def _model_json(model: HeadingModel) -> str:
    """The model as JSON, one value per line, but each stored neighbour section on one line
    rather than one token per line."""
    data = model.to_json()
    stored = data.pop("neighbours")
    head = json.dumps(data, ensure_ascii=False, indent=0)
    if not isinstance(stored, dict):
        return head + "\n"
    fields = [f'"{key}": {json.dumps(stored[key])}' for key in ("k", "power")]
    for key in ("headings", "sections"):
        values = ",\n".join(json.dumps(v, ensure_ascii=False) for v in stored[key])
        fields.append(f'"{key}": [\n{values}\n]')
    # head ends with "\n}": the neighbours go in before the closing brace.
    return head[:-2] + ',\n"neighbours": {\n' + ",\n".join(fields) + "\n}\n}\n"


def heading_main() -> int:
    path = SUMM_DIR / "gwr_subsection_headings.jsonl"
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    dev = [r for r in rows if split_of("gwr", r) == "dev"]
    fold_of = _fold_of(dev)
    scored: list[tuple[dict, float]] = []
    for k in range(_HEADING_FOLDS):
        model = fit_heading_model([r for r in dev if fold_of[r["year"]] != k])
        held_out = [r for r in dev if fold_of[r["year"]] == k]
        scored.extend(zip(held_out, _gwr_rouge1(model, held_out), strict=True))
    groups = [(f"kind {kind}", kind) for kind in sorted({r["kind"] for r in dev})]
    for name, kind in [*groups, ("all", None)]:
        figures = [f for r, f in scored if kind is None or r["kind"] == kind]
        mean = 100 * float(np.mean(figures))
        print(f"dev, cross-fitted by year, {name}: n={len(figures)} R-1 {mean:.1f}")
    model = fit_heading_model(dev)
    HEADING_MODEL_FILE.write_text(_model_json(model), "utf-8")
    print(f"wrote {HEADING_MODEL_FILE} ({len(model.prior)} characters in the prior table)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="centrality,recurring,register_chars,register_pairs")
    parser.add_argument("--steps", default="0.3,0.1")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--heading-model", action="store_true", help="fit the headline model")
    args = parser.parse_args()
    if args.heading_model:
        return heading_main()

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
