"""Train the answer-span ranker (``models/data/span_ranker.json.gz``), reproducibly.

    .venv/bin/python scripts/train_span_ranker.py            # CMRC 2018 trial + DRCD test
    .venv/bin/python scripts/train_span_ranker.py --limit 40 --out /tmp/r.json.gz   # smoke run

Each dataset is indexed through the normal ingestion path and every question is searched as
``/v1/ask`` does, so that the models learn from the passages they will really see. Then, with
five folds grouped by article (stacking): the sentence model's out-of-fold scores choose the
sentences whose boundaries train the start and end models, and their out-of-fold scores make the
span model's candidates. The models shipped are fitted on all the data; the out-of-fold answers
give the cross-validated figures printed at the end (and stored in the model file). The sentence
model is taken unchanged from the existing model file (``--sentence-from``) unless
``--fit-sentence``: the later stages learn from its scores, so a refit moves every answer.
Questions whose gold answer is a clause, not a phrase (:func:`phrase_answers`), train the
sentence model only; the figures are also printed for the questions with phrase answers.

Only CMRC 2018 trial and DRCD test are used for training; the dev sets stay held out.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import pickle
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embeddings.tokens import lexical_tokens, normalize, words
from models.coverage import QuestionTerms
from models.span_ranker import (
    BOUNDARY_FEATURES,
    MODEL_PATH,
    SENTENCE_FEATURES,
    SPAN_MODEL_FEATURES,
    TOP_SENTENCES,
    CharTable,
    QuestionView,
    boundary_features,
    candidate_pairs,
    sentence_items,
    sentence_view,
    simplified_chars,
    span_matrix,
)
from service.evals.qa import QA_DIR, exact, f1

log = logging.getLogger("train_span_ranker")

TRAIN_SETS = ("cmrc2018_trial", "drcd_test")
SEED = 13
FOLDS = 5
_EDGE = " \t\n\u3000，,。．.；;：:！!？?、"

SENTENCE_CATEGORICAL = ("kind",)
BOUNDARY_CATEGORICAL = (
    "kind",
    "wh",
    "class_before",
    "class_after",
    "class_before2",
    "class_after2",
    "tag_before",
    "tag_after",
    "asked",
    "suffix_type_before",
)
SPAN_CATEGORICAL = (
    "kind",
    "wh",
    "start_class",
    "end_class",
    "before_class",
    "after_class",
    "first_tag",
    "last_tag",
    *(f"{side}_{name}" for side in ("start", "end") for name in BOUNDARY_CATEGORICAL),
)


# -- data -----------------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def collect(dataset: str, data_dir: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Index the dataset, search every question; keep the top passages and the idf they need."""
    from service.config import Settings
    from service.core import Speeches

    docs = _read_jsonl(data_dir / f"{dataset}.docs.jsonl")
    questions = [
        q for q in _read_jsonl(data_dir / f"{dataset}.questions.jsonl") if q["question"].strip()
    ]
    if limit is not None and limit < len(questions):
        questions = random.Random(SEED).sample(questions, limit)
        wanted = {q["doc_id"] for q in questions}
        # keep some distractor paragraphs so that retrieval still has to choose
        others = [d for d in docs if d["doc_id"] not in wanted]
        docs = [d for d in docs if d["doc_id"] in wanted] + others[: len(wanted)]
    out = []
    with tempfile.TemporaryDirectory(prefix="speechqa-train-") as tmp:
        settings = Settings(data_dir=Path(tmp), seed_dir=None)
        with Speeches(settings) as speeches:
            for doc in docs:
                speeches.put_document(doc["text"], doc_id=doc["doc_id"], title=doc["title"] or None)
            bm25 = speeches.retriever.bm25
            for q in questions:
                hits = speeches.search(q["question"], top_k=5)
                tokens: set[str] = set()
                for piece in [q["question"], *(h.text for h in hits)]:
                    tokens.update(lexical_tokens(normalize(piece)))
                for word in words(normalize(q["question"])):
                    tokens.add(word)
                    tokens.update(lexical_tokens(word))
                out.append(
                    {
                        "dataset": dataset,
                        "qid": q["qid"],
                        "q": q["question"],
                        "golds": [a for a in q["answers"] if a.strip()],
                        "doc": q["doc_id"],
                        "group": f"{dataset}:{q['doc_id'].rsplit('-', 1)[0]}",
                        "texts": [h.text for h in hits],
                        "scores": [h.score for h in hits],
                        "idf": {t: bm25.idf(t) for t in tokens},
                        "max_idf": bm25.idf("\x00unseen"),
                    }
                )
    return out


def _idf(record: dict[str, Any]) -> Callable[[str], float]:
    table, default = record["idf"], record["max_idf"]
    return lambda token: table.get(token, default)


def _gold_spans(text: str, golds: Sequence[str]) -> set[tuple[int, int]]:
    out = set()
    for gold in golds:
        g = gold.strip(_EDGE)
        if not g:
            continue
        i = text.find(g)
        while i >= 0:
            out.add((i, i + len(g)))
            i = text.find(g, i + 1)
    return out


# A clause or sentence mark; an ASCII comma or colon between digits (2,300 or 11:30) is not one.
_CLAUSE_MARK = re.compile(r"[，。；：！？;!?]|(?<!\d)[,:]|[,:](?!\d)")


def phrase_answers(record: dict[str, Any]) -> bool:
    """Whether every gold answer is a phrase, not a clause.

    The service answers with the shortest span that answers. CMRC 2018 trial's annotators often
    marked a whole clause or sentence instead (生长于海拔200米至2,300米的地区, ending in 。; a
    median of 19 characters against 7 in CMRC 2018 dev and 4 in DRCD, by the data README), and a
    ranker that learns from them answers at length whenever the script is simplified. Such
    questions still train the sentence model (their sentence is right), not the boundaries and
    spans."""
    return not any(_CLAUSE_MARK.search(g) for g in record["golds"])


# -- models ---------------------------------------------------------------------------------------
PARAMS: dict[str, dict[str, Any]] = {
    "sentence": {"objective": "lambdarank", "num_leaves": 15, "learning_rate": 0.05, "rounds": 200},
    "start": {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "rounds": 300},
    "end": {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "rounds": 300},
    "span": {"objective": "lambdarank", "num_leaves": 31, "learning_rate": 0.05, "rounds": 300},
}


def _fit(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    feature_names: Sequence[str],
    categorical: Sequence[str],
) -> Any:
    import lightgbm

    p = dict(PARAMS[name])
    rounds = p.pop("rounds")
    params = {
        "min_data_in_leaf": 20,
        "feature_fraction": 0.9,
        "bagging_fraction": 0.9,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_cat_to_onehot": 8,
        "cat_smooth": 10.0,
        **p,
        "seed": SEED,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbose": -1,
    }
    if p["objective"] == "lambdarank":
        params["eval_at"] = [1]
        params["lambdarank_truncation_level"] = 20
    data = lightgbm.Dataset(
        x,
        y,
        group=_group_sizes(groups) if p["objective"] == "lambdarank" else None,
        feature_name=[f.replace("-", "_") for f in feature_names],
        categorical_feature=[f for f in categorical],
        free_raw_data=False,
    )
    return lightgbm.train(params, data, num_boost_round=rounds)


def _group_sizes(groups: np.ndarray | None) -> list[int]:
    assert groups is not None
    sizes: list[int] = []
    last = None
    for g in groups:
        if g != last:
            sizes.append(0)
            last = g
        sizes[-1] += 1
    return sizes


def _folds(records: list[dict[str, Any]]) -> list[int]:
    groups = sorted({r["group"] for r in records})
    random.Random(SEED).shuffle(groups)
    fold_of = {g: i % FOLDS for i, g in enumerate(groups)}
    return [fold_of[r["group"]] for r in records]


def _cross_fit(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    qidx: np.ndarray,
    fold_of_q: np.ndarray,
    feature_names: Sequence[str],
    categorical: Sequence[str],
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Out-of-fold predictions, each row scored by a model that never saw its article.

    ``mask`` leaves rows out of training (they are still scored)."""
    out = np.zeros(len(y))
    fold = fold_of_q[qidx]
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        if mask is not None:
            train &= mask
        if not test.any() or not train.any():
            continue
        model = _fit(name, x[train], y[train], qidx[train], feature_names, categorical)
        out[test] = model.predict(x[test], num_threads=1)
    return out


# -- stages ---------------------------------------------------------------------------------------
def build(records: list[dict[str, Any]]) -> dict[str, Any]:
    views = []
    s_rows, s_labels, s_q = [], [], []
    for qi, r in enumerate(records):
        qv = QuestionView.of(r["q"])
        terms = QuestionTerms(r["q"], _idf(r))
        items = sentence_items(qv, terms, r["texts"], r["scores"], _idf(r)) if terms else []
        views.append((qv, terms, items))
        for it in items:
            s_rows.append(it.features)
            s_labels.append(int(bool(_gold_spans(it.text, r["golds"]))))
            s_q.append(qi)
    return {
        "views": views,
        "sentence": (
            np.array(s_rows, dtype=np.float32),
            np.array(s_labels),
            np.array(s_q),
        ),
    }


def char_samples(
    records: list[dict[str, Any]], built: dict[str, Any], keep: np.ndarray
) -> list[tuple[int, str, list[tuple[int, int]]]]:
    """(kind, sentence in simplified script, gold spans) of the answer-holding sentences."""
    out = []
    for qi, (r, (qv, _terms, items)) in enumerate(zip(records, built["views"], strict=True)):
        if not keep[qi]:
            continue
        for item in items:
            golds = _gold_spans(item.text, r["golds"])
            if golds:
                out.append((qv.kind, simplified_chars(item.text), sorted(golds)))
    return out


def char_tables(
    records: list[dict[str, Any]], built: dict[str, Any], fold_of_q: np.ndarray, keep: np.ndarray
) -> list[CharTable]:
    """One table per fold, from the other folds' kept answers (stacking, as for the models)."""
    return [
        CharTable.build(char_samples(records, built, (fold_of_q != k) & keep)) for k in range(FOLDS)
    ]


def boundary_stage(
    records: list[dict[str, Any]],
    built: dict[str, Any],
    sent_scores: np.ndarray,
    table_of: Callable[[int], CharTable],
) -> dict[str, Any]:
    """Rows for every boundary of each question's top sentences (by the given sentence scores)."""
    rows, starts, ends, qidx, where = [], [], [], [], []
    pos = 0
    for qi, (r, (qv, _terms, items)) in enumerate(zip(records, built["views"], strict=True)):
        scores = sent_scores[pos : pos + len(items)]
        pos += len(items)
        if not items:
            continue
        order = np.argsort(-scores, kind="stable")[:TOP_SENTENCES]
        for rank, idx in enumerate(order):
            item = items[idx]
            view = sentence_view(qv, item.text, item.norm, table_of(qi))
            feats = boundary_features(qv, view, float(scores[idx]), rank)
            golds = _gold_spans(item.text, r["golds"])
            gs = {a for a, _ in golds}
            ge = {b for _, b in golds}
            for b in range(len(item.text) + 1):
                starts.append(int(b in gs))
                ends.append(int(b in ge))
                qidx.append(qi)
            rows.append(feats)
            where.append((qi, idx, rank, float(scores[idx]), view))
    starts_a, ends_a = np.array(starts), np.array(ends)
    # Most boundaries are plainly wrong: train on the positives, the boundaries within two
    # characters of one, and a fixed random quarter of the rest.
    near = np.zeros(len(starts_a), dtype=bool)
    for shift in (-2, -1, 1, 2):
        near |= np.roll(starts_a, shift) > 0
        near |= np.roll(ends_a, shift) > 0
    sample = np.random.default_rng(SEED).random(len(starts_a)) < 0.25
    return {
        "x": np.vstack(rows) if rows else np.zeros((0, len(BOUNDARY_FEATURES)), np.float32),
        "mask": (starts_a > 0) | (ends_a > 0) | near | sample,
        "start": np.array(starts),
        "end": np.array(ends),
        "q": np.array(qidx),
        "where": where,
    }


def span_stage(
    records: list[dict[str, Any]],
    built: dict[str, Any],
    bstage: dict[str, Any],
    start_scores: np.ndarray,
    end_scores: np.ndarray,
) -> dict[str, Any]:
    rows, em_labels, f1_labels, qidx, spans = [], [], [], [], []
    offset = 0
    for qi, idx, rank, sscore, view in bstage["where"]:
        n = len(view.norm)
        starts = start_scores[offset : offset + n + 1]
        ends = end_scores[offset : offset + n + 1]
        boundaries = bstage["x"][offset : offset + n + 1]
        offset += n + 1
        r = records[qi]
        qv, _terms, items = built["views"][qi]
        item = items[idx]
        pairs = candidate_pairs(starts, ends, item.text)
        if not pairs:
            continue
        rows.append(span_matrix(qv, view, pairs, boundaries, starts, ends, sscore, rank))
        for i, j in pairs:
            text = item.text[i:j]
            em_labels.append(int(exact(text, r["golds"])))
            f1_labels.append(f1(text, r["golds"]))
            qidx.append(qi)
            spans.append((qi, idx, i, j))
    return {
        "x": np.vstack(rows) if rows else np.zeros((0, len(SPAN_MODEL_FEATURES)), np.float32),
        "em": np.array(em_labels),
        "f1": np.array(f1_labels),
        "q": np.array(qidx),
        "spans": spans,
    }


def span_label(em: np.ndarray, f1s: np.ndarray) -> np.ndarray:
    return np.where(em > 0, 3, np.where(f1s >= 0.6, 1, 0))


def evaluate(
    records: list[dict[str, Any]],
    built: dict[str, Any],
    sstage: dict[str, Any],
    scores: np.ndarray,
    phrases: np.ndarray,
    min_coverage: float = 0.5,
) -> dict[str, Any]:
    """EM and F1 of the best-scored span per question, as `speechqa eval qa` counts them, also
    over the questions with phrase answers (``phrases``, one flag per record)."""
    from models.spans import analyse

    best: dict[int, tuple[float, int]] = {}
    for row, qi in enumerate(sstage["q"]):
        if qi not in best or scores[row] > best[qi][0]:
            best[qi] = (float(scores[row]), row)
    by_set: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    by_kind: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for qi, r in enumerate(records):
        answer = ""
        if qi in best:
            _, row = best[qi]
            _, idx, i, j = sstage["spans"][row]
            item = built["views"][qi][2][idx]
            if item.passage_cov >= min_coverage:
                answer = item.text[i:j]
        got = (exact(answer, r["golds"]), f1(answer, r["golds"]))
        by_set[r["dataset"]].append(got)
        if phrases[qi]:
            by_set[f"{r['dataset']}/phrase answers"].append(got)
        by_kind[f"{r['dataset']}/{analyse(r['q']).kind}"].append(got)

    def mean(rows: list[tuple[bool, float]]) -> dict[str, float]:
        return {
            "n": len(rows),
            "em": round(sum(e for e, _ in rows) / len(rows), 4),
            "f1": round(sum(f for _, f in rows) / len(rows), 4),
        }

    return {
        "datasets": {k: mean(v) for k, v in sorted(by_set.items())},
        "kinds": {k: mean(v) for k, v in sorted(by_kind.items())},
    }


def train(
    records: list[dict[str, Any]], *, cross_validate: bool = True, sentence_model: str | None = None
) -> dict[str, Any]:
    """Fit the models; ``sentence_model`` (a LightGBM model text) is shipped as it is instead of
    a sentence model fitted here (the later stages still learn from out-of-fold scores)."""
    t0 = time.perf_counter()
    fold_of_q = np.array(_folds(records))
    built = build(records)
    xs, ys, qs = built["sentence"]
    log.info("sentences: %d rows (%.1f s)", len(ys), time.perf_counter() - t0)
    sent_oof = _cross_fit(
        "sentence", xs, ys, qs, fold_of_q, SENTENCE_FEATURES, SENTENCE_CATEGORICAL
    )
    phrases = np.array([phrase_answers(r) for r in records])
    log.info("phrase answers: %d of %d questions", phrases.sum(), len(records))
    tables = char_tables(records, built, fold_of_q, phrases)
    bstage = boundary_stage(records, built, sent_oof, lambda qi: tables[fold_of_q[qi]])
    xb, qb = bstage["x"], bstage["q"]
    log.info("boundaries: %d rows (%.1f s)", len(qb), time.perf_counter() - t0)
    mask = bstage["mask"] & phrases[qb]
    start_oof = _cross_fit(
        "start", xb, bstage["start"], qb, fold_of_q, BOUNDARY_FEATURES, BOUNDARY_CATEGORICAL, mask
    )
    end_oof = _cross_fit(
        "end", xb, bstage["end"], qb, fold_of_q, BOUNDARY_FEATURES, BOUNDARY_CATEGORICAL, mask
    )
    sstage = span_stage(records, built, bstage, _logit(start_oof), _logit(end_oof))
    labels = span_label(sstage["em"], sstage["f1"])
    span_mask = phrases[sstage["q"]]
    log.info("spans: %d rows (%.1f s)", len(labels), time.perf_counter() - t0)
    report: dict[str, Any] = {}
    if cross_validate:
        span_oof = _cross_fit(
            "span",
            sstage["x"],
            labels,
            sstage["q"],
            fold_of_q,
            SPAN_MODEL_FEATURES,
            SPAN_CATEGORICAL,
            span_mask,
        )
        report = evaluate(records, built, sstage, span_oof, phrases)
        report["candidate_ceiling"] = evaluate(
            records, built, sstage, sstage["em"] + sstage["f1"], phrases
        )
    models = {
        "sentence": sentence_model
        or _fit("sentence", xs, ys, qs, SENTENCE_FEATURES, SENTENCE_CATEGORICAL),
        "start": _fit(
            "start",
            xb[mask],
            bstage["start"][mask],
            qb[mask],
            BOUNDARY_FEATURES,
            BOUNDARY_CATEGORICAL,
        ),
        "end": _fit(
            "end", xb[mask], bstage["end"][mask], qb[mask], BOUNDARY_FEATURES, BOUNDARY_CATEGORICAL
        ),
        "span": _fit(
            "span",
            sstage["x"][span_mask],
            labels[span_mask],
            sstage["q"][span_mask],
            SPAN_MODEL_FEATURES,
            SPAN_CATEGORICAL,
        ),
    }
    table = CharTable.build(char_samples(records, built, phrases))
    log.info("trained (%.1f s)", time.perf_counter() - t0)
    return {"models": models, "table": table, "report": report}


def _logit(p: np.ndarray) -> np.ndarray:
    """Binary models predict probabilities; the ranker's features use their raw scores."""
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def save(
    models: dict[str, Any],
    table: CharTable,
    report: dict[str, Any],
    out: Path,
    datasets: Sequence[str],
) -> None:
    payload = {
        "chars": table.to_json(),
        "format": 1,
        "trained_on": list(datasets),
        "licences": {
            "cmrc2018_trial": "CC BY-SA 4.0 (Cui et al., EMNLP-IJCNLP 2019)",
            "drcd_test": "CC BY-SA 3.0 (Shao et al., arXiv:1806.00920)",
        },
        "cross_validation": report,
        "models": {
            name: m if isinstance(m, str) else m.model_to_string() for name, m in models.items()
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    # No name, mtime=0: the same models give the same bytes, whatever the output path
    with open(out, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as f:
        f.write(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    global FOLDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(TRAIN_SETS))
    parser.add_argument("--qa-dir", type=Path, default=QA_DIR)
    parser.add_argument(
        "--limit", type=int, default=None, help="questions per dataset (smoke runs)"
    )
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    parser.add_argument("--cache", type=Path, default=None, help="pickle of the searched passages")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=None, help="boosting rounds (smoke runs)")
    parser.add_argument("--no-cv", action="store_true", help="skip the cross-validated figures")
    # The start, end and span models learn from the sentence model's scores: a rebuild keeps
    # the shipped sentence model as it is (a refit would move every later stage) unless told.
    parser.add_argument(
        "--sentence-from",
        type=Path,
        default=MODEL_PATH,
        help="model file whose sentence model is shipped unchanged (when it exists)",
    )
    parser.add_argument("--fit-sentence", action="store_true", help="fit the sentence model too")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    FOLDS = args.folds
    if args.rounds is not None:
        for params in PARAMS.values():
            params["rounds"] = args.rounds
    if args.cache is not None and args.cache.exists():
        with args.cache.open("rb") as f:
            records = pickle.load(f)
    else:
        records = [r for d in args.datasets for r in collect(d, args.qa_dir, args.limit)]
        if args.cache is not None:
            with args.cache.open("wb") as f:
                pickle.dump(records, f)
    sentence_model = None
    if not args.fit_sentence and args.sentence_from.exists():
        with gzip.open(args.sentence_from, "rt", encoding="utf-8") as f:
            sentence_model = json.load(f)["models"]["sentence"]
        log.info("sentence model kept from %s", args.sentence_from)
    result = train(records, cross_validate=not args.no_cv, sentence_model=sentence_model)
    save(result["models"], result["table"], result["report"], args.out, args.datasets)
    print(json.dumps(result["report"], ensure_ascii=False, indent=1))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
