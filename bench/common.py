"""Shared helpers: the corpus, queries, timing statistics and memory."""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "eval" / "corpus" / "cn_gov_reports.jsonl"
_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]?")


def load_corpus(path: Path = CORPUS) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sentences(docs: list[dict[str, str]]) -> list[str]:
    out = []
    for doc in docs:
        out.extend(s.strip() for s in _SENTENCE.findall(doc["text"]) if len(s.strip()) >= 8)
    return out


def queries(docs: list[dict[str, str]], n: int, seed: int = 7) -> list[str]:
    """Question-like queries: a clause of a random sentence of the corpus plus a question word."""
    rng = random.Random(seed)
    pool = sentences(docs)
    out = []
    for _ in range(n):
        s = rng.choice(pool).rstrip("。！？；")
        start = rng.randrange(0, max(1, len(s) - 16))
        out.append(s[start : start + rng.randint(8, 16)] + rng.choice(["是什么？", "有哪些？", ""]))
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cores() -> int:
    return len(os.sched_getaffinity(0))
