"""Retrieval benchmark: the project's index against plain rank-bm25, in one run.

Corpora are synthetic (seeded, Zipf-like word frequencies, 40-120 words a chunk)
plus the shipped corpus; queries are 2-6 words drawn from the same distribution.
Both engines get the same pre-tokenized chunks, so this measures indexing and
ranking, not the analyzer. Figures are for comparing within one run.
"""

import argparse
import gc
import json
import os
import platform
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bot import analysis
from bot.corpus import load_corpus
from bot.retrieval import LuceneBM25, PostingsIndex

TOP_K = 10
VOCABULARY = 50_000
ZIPF_EXPONENT = 1.07  # English word frequencies fall off at about this rate


@dataclass(frozen=True)
class Row:
    engine: str
    chunks: int
    build_s: float
    peak_mb: float  # peak traced allocation while building (the index and its scratch)
    index_mb: float  # what the built index keeps
    p50_ms: float
    p99_ms: float


def synthetic_corpus(n_chunks: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, VOCABULARY + 1)
    p = ranks**-ZIPF_EXPONENT
    p /= p.sum()
    lengths = rng.integers(40, 121, n_chunks)
    words = rng.choice(VOCABULARY, size=int(lengths.sum()), p=p)
    names = [f"w{i}" for i in range(VOCABULARY)]
    out, at = [], 0
    for length in lengths:
        out.append([names[i] for i in words[at : at + length]])
        at += length
    return out


def queries_for(docs: Sequence[Sequence[str]], n: int, seed: int) -> list[list[str]]:
    """Queries of 2-6 words, each word taken from a random chunk (so most are findable)."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for _ in range(n):
        words = []
        for _ in range(int(rng.integers(2, 7))):
            doc = docs[int(rng.integers(len(docs)))] or ["missing"]
            words.append(doc[int(rng.integers(len(doc)))])
        out.append(words)
    return out


def _measure_build(build: Callable[[], object]) -> tuple[object, float, float, float]:
    """(index, build seconds, peak MB, retained MB): timed once bare, traced once."""
    gc.collect()
    start = time.perf_counter()
    index = build()
    seconds = time.perf_counter() - start
    del index
    gc.collect()
    tracemalloc.start()
    index = build()
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return index, seconds, peak / 2**20, retained / 2**20


def _latencies(search: Callable[[list[str]], object], queries: list[list[str]]) -> list[float]:
    for q in queries[:5]:  # warm caches
        search(q)
    out = []
    for q in queries:
        start = time.perf_counter()
        search(q)
        out.append((time.perf_counter() - start) * 1000)
    return out


def _percentile(values: list[float], pct: float) -> float:
    return float(np.percentile(values, pct))


def _project(index: PostingsIndex) -> Callable[[list[str]], object]:
    return lambda q: index.top({t: float(q.count(t)) for t in set(q)}, TOP_K)


def _plain(reference: LuceneBM25) -> Callable[[list[str]], object]:
    """Plain rank-bm25 as documented: get_scores over every chunk, then sort."""
    return lambda q: np.argsort(-reference.get_scores(q), kind="stable")[:TOP_K]


ENGINES = (("project", PostingsIndex.build, _project), ("rank-bm25", LuceneBM25, _plain))


def bench_one(chunks: int, docs: list[list[str]], queries: list[list[str]]) -> list[Row]:
    rows = []
    for name, build, searcher in ENGINES:
        engine, build_s, peak, kept = _measure_build(lambda build=build: build(docs))
        latencies = _latencies(searcher(engine), queries)
        rows.append(Row(name, chunks, build_s, peak, kept, *_p(latencies)))
        del engine
    return rows


def _p(latencies: list[float]) -> tuple[float, float]:
    return _percentile(latencies, 50), _percentile(latencies, 99)


def run_bench(args: argparse.Namespace, corpus_dir: Path) -> int:
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows: list[Row] = []
    shipped = load_corpus(corpus_dir)
    docs = [analysis.terms(f"{c.section or ''}\n{c.text}") for c in shipped.chunks]
    rows += bench_one(len(docs), docs, queries_for(docs, args.queries, 0))
    for size in sizes:
        docs = synthetic_corpus(size, seed=size)
        rows += bench_one(size, docs, queries_for(docs, args.queries, size))
        del docs
        gc.collect()
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
    }
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "machine": machine}))
    else:
        print(_table(rows, machine))
    return 0


def _table(rows: list[Row], machine: dict) -> str:
    lines = [
        f"{'engine':10} {'chunks':>7} {'build s':>8} {'peak MB':>8} {'index MB':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'p50 speed-up':>12}"
    ]
    by_size: dict[int, dict[str, Row]] = {}
    for r in rows:
        by_size.setdefault(r.chunks, {})[r.engine] = r
    for r in rows:
        baseline = by_size[r.chunks].get("rank-bm25")
        ratio = f"{baseline.p50_ms / r.p50_ms:11.0f}x" if baseline and r is not baseline else ""
        lines.append(
            f"{r.engine:10} {r.chunks:7d} {r.build_s:8.2f} {r.peak_mb:8.1f} {r.index_mb:8.1f} "
            f"{r.p50_ms:8.3f} {r.p99_ms:8.3f} {ratio:>12}"
        )
    lines.append(f"machine: {machine}; top-{TOP_K}; medians via numpy.percentile")
    return "\n".join(lines)
