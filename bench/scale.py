"""The index at a given size: synthesise passages from the corpus, build, then probe.

``python -m bench.scale build DIR N`` stores N synthetic passages (sentences of the corpus in
random order, ~180 characters, 1000 per document) and opens the service once, which embeds,
tokenises, trains and saves; ``python -m bench.scale probe DIR`` opens it again in a fresh
process and measures start-up, memory, search latency and recall. Each prints one JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import random
import sys
import time
from pathlib import Path

from bench.common import load_corpus, median, pct, queries, rss_bytes, sentences

PER_DOC = 1000


def settings(data_dir: Path):
    from service.config import Settings

    return Settings(data_dir=data_dir, index_flush_seconds=3600.0)


def synth_documents(n: int, seed: int = 11):
    rng = random.Random(seed)
    pool = sentences(load_corpus())
    made = 0
    doc = 0
    while made < n:
        paras = []
        for _ in range(min(PER_DOC, n - made)):
            para = ""
            while len(para) < 120 + rng.randrange(140):
                para += rng.choice(pool)
            paras.append(para[:400])
        made += len(paras)
        yield f"synth-{doc:05d}", f"合成报告第{doc}号", "\n\n".join(paras)
        doc += 1


def build(data_dir: Path, n: int) -> dict[str, float]:
    from service.core import Speeches

    data_dir.mkdir(parents=True, exist_ok=True)
    sp = Speeches(settings(data_dir))
    t0 = time.perf_counter()
    # The store first (parsing + SQLite), without indexing: what a restore or a re-embed sees.
    sp.open()
    for doc_id, title, text in synth_documents(n):
        sp._write_document(doc_id, title, text, {}, index=False)
    passages = sp.store.count_passages()
    sp.close()
    for name in ("passages.faiss", "passages.bm25"):
        (data_dir / name).unlink(missing_ok=True)
    t1 = time.perf_counter()
    sp = Speeches(settings(data_dir)).open()  # embeds, tokenises, saves
    t2 = time.perf_counter()
    vectors = sp.retriever.vectors
    vectors.wait_for_build()
    t3 = time.perf_counter()
    sp.retriever.save()
    t4 = time.perf_counter()
    out = {
        "passages": passages,
        "store_s": t1 - t0,
        "index_s": t2 - t1,
        "pq_wait_s": t3 - t2,
        "save_s": t4 - t3,
        "build_s": t4 - t1,
        "kind": vectors.kind,
        "k_factor": vectors.k_factor,
    }
    sp.close()
    return out


def rss_split() -> dict[str, int]:
    """Resident bytes by kind: anonymous (heap) and file-backed (mapped index files, shared
    with the page cache and reclaimable)."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def probe(data_dir: Path, nq: int) -> dict[str, float]:
    from service.core import Speeches
    from service.retrieval import passage_tokens  # noqa: F401  (import cost outside the timer)

    base = rss_bytes()
    t0 = time.perf_counter()
    sp = Speeches(settings(data_dir)).open()
    startup = time.perf_counter() - t0
    rss = rss_bytes() - base
    split_open = rss_split()
    r = sp.retriever
    n = len(r.vectors)
    qs = queries(load_corpus(), nq)
    qvecs = r.encoder.encode(qs)
    for q in qs[:5]:
        sp.search(q, 5)
    service_ms, inproc_ms, faiss_ms = [], [], []
    for q, v in zip(qs, qvecs, strict=True):
        t = time.perf_counter()
        r.vectors.search(v[None, :], r.pool)
        faiss_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        r.search(q, 5)
        inproc_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        sp.search(q, 5)
        service_ms.append((time.perf_counter() - t) * 1000)
    # Pages of the mapped vectors that the searches touched count from here on.
    rss_searched = rss_bytes() - base
    r.vectors.wait_for_check()  # the background check maps every vector page
    split_checked = rss_split()
    # recall@10 of the vector index against exact search over the same vectors
    recall = 1.0
    if r.vectors.kind != "flat":
        k = 10
        sample = qvecs[:100]
        exact = r.vectors.search_exact(sample, k)
        hits = 0
        for v, want in zip(sample, exact, strict=True):
            got = {i for i, _ in r.vectors.search(v[None, :], k)[0]}
            hits += len(got & {i for i, _ in want})
        recall = hits / (k * len(sample))
    sp.close()
    return {
        "passages": n,
        "startup_s": startup,
        "rss_bytes": rss,
        "bytes_per_passage": rss / max(n, 1),
        "rss_after_search_bytes": rss_searched,
        "rss_open": split_open,
        "rss_checked": split_checked,
        "damaged": r.vectors.damaged,
        "faiss_p50": median(faiss_ms),
        "faiss_p99": pct(faiss_ms, 99),
        "retriever_p50": median(inproc_ms),
        "search_p50": median(service_ms),
        "search_p99": pct(service_ms, 99),
        "recall10": recall,
        **bm25_probe(r, qs),
        "kind": r.vectors.kind,
        "k_factor": r.vectors.k_factor,
        "files_bytes": sum(f.stat().st_size for f in data_dir.iterdir() if f.is_file()),
        "index_files_bytes": sum(f.stat().st_size for f in data_dir.glob("passages.*")),
    }


def bm25_probe(retriever, qs: list[str]) -> dict[str, float]:
    """BM25 alone: latency of the pruned (MaxScore) search over the retriever's pool, and its
    recall@10 and identical-result share against scoring every posting (the exact reference)."""
    from embeddings.tokens import query_tokens

    bm25 = retriever.bm25
    fast_ms, full_ms = [], []
    hits = same = 0
    for q in qs:
        tokens = query_tokens(q)
        t = time.perf_counter()
        got = bm25.search(tokens, retriever.pool)
        fast_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        want = bm25.search_exhaustive(tokens, retriever.pool)
        full_ms.append((time.perf_counter() - t) * 1000)
        hits += len({p for p, _ in got[:10]} & {p for p, _ in want[:10]})
        same += got == want
    top = sum(min(10, len(bm25.search_exhaustive(query_tokens(q), 10))) for q in qs)
    return {
        "bm25_p50": median(fast_ms),
        "bm25_p99": pct(fast_ms, 99),
        "bm25_exhaustive_p50": median(full_ms),
        "bm25_recall10": hits / max(top, 1),
        "bm25_identical": same / max(len(qs), 1),
    }


if __name__ == "__main__":
    cmd, where = sys.argv[1], Path(sys.argv[2])
    if cmd == "build":
        print(json.dumps(build(where, int(sys.argv[3]))), flush=True)
    else:
        print(json.dumps(probe(where, int(sys.argv[3]) if len(sys.argv) > 3 else 200)), flush=True)
