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
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bot.core.answer import MAX_PASSAGES
from bot.core.corpus import Chunk, Corpus, Document, load_corpus
from bot.core.embedding import DIMENSIONS, Embedder
from bot.core.evaluation import load_eval_set
from bot.core.index_cache import open_retriever, peek
from bot.core.lexical import LuceneBM25, PostingsIndex
from bot.core.retrieval import Retriever, Semantic, index_terms
from bot.core.semantic import DenseIndex

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


def _zipf_chunks(n_chunks: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Word ranks (0 = most frequent) of n chunks of 40-120 words."""
    p = np.arange(1, VOCABULARY + 1) ** -ZIPF_EXPONENT
    lengths = rng.integers(40, 121, n_chunks)
    words = rng.choice(VOCABULARY, size=int(lengths.sum()), p=p / p.sum())
    return np.split(words, np.cumsum(lengths)[:-1])


def synthetic_corpus(n_chunks: int, seed: int) -> list[list[str]]:
    names = [f"w{i}" for i in range(VOCABULARY)]
    return [
        [names[i] for i in chunk] for chunk in _zipf_chunks(n_chunks, np.random.default_rng(seed))
    ]


def write_text_corpus(directory: Path, n_chunks: int, seed: int, n_docs: int = 100) -> None:
    """A corpus directory of n_chunks paragraphs of pseudo-English, as a wiki would bring.

    Words are random letter strings (shorter ones more frequent, as in English), so the
    analyzer and stemmer do their real work; sentences are 8-20 words.
    """
    rng = np.random.default_rng(seed)
    letters = list("etaoinshrdlucmfwypvbgkqjxz")  # English letter order, by frequency
    weights = 1 / np.arange(1, len(letters) + 1)
    spellings = {
        "".join(rng.choice(letters, int(n), p=weights / weights.sum()))
        for n in rng.integers(2, 11, VOCABULARY * 2)
    }
    vocabulary = sorted(spellings, key=len)[:VOCABULARY]
    # A spoiler term makes chunking check every passage, as a real manifest's does.
    entries = [f'[film]\ntitle = "Look Back"\n\n[spoilers]\nending = ["{vocabulary[2000]}"]\n']
    chunks = iter(_zipf_chunks(n_chunks, rng))
    for d in range(n_docs):
        paragraphs = []
        for _ in range(n_chunks // n_docs + (d < n_chunks % n_docs)):
            paragraphs.append(_prose([vocabulary[i] for i in next(chunks)], rng))
        (directory / f"page{d}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        entries.append(
            f'[[documents]]\nid = "page{d}"\nfile = "page{d}.txt"\ntitle = "Page {d}"\n'
            'source = "a synthetic wiki"\nkind = "wiki"\n'
        )
    (directory / "manifest.toml").write_text("\n".join(entries), encoding="utf-8")


def _prose(words: list[str], rng: np.random.Generator) -> str:
    sentences, at = [], 0
    while at < len(words):
        n = int(rng.integers(8, 21))
        sentences.append(" ".join(words[at : at + n]).capitalize() + ".")
        at += n
    return " ".join(sentences)


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


@dataclass(frozen=True)
class Startup:
    """`python -m bot ask` on a text corpus, as a process: cold, then with the index cached."""

    corpus: str  # "shipped", or "synthetic" (generated pseudo-English paragraphs)
    chunks: int  # passages the corpus yielded
    cold_s: float  # empty cache: read, chunk, analyse, index, write the cache, answer
    cached_s: float  # the same again, the cache current
    cache_mb: float


def measure_startup(n_paragraphs: int, seed: int) -> Startup:
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        write_text_corpus(corpus, n_paragraphs, seed)
        return startup_of(corpus, "synthetic")


def startup_of(corpus: Path, name: str) -> Startup:
    """Cold and cached start of the CLI on `corpus` (retrieval as configured: hybrid, or
    lexical for a corpus too large to embed at start), with an index cache of its own."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "INDEX_CACHE_DIR": cache}
        command = [sys.executable, "-m", "bot", "ask", "--corpus", str(corpus), "what happened"]

        def run() -> float:
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True, capture_output=True)
            return time.perf_counter() - start

        cold_s, cached_s = run(), run()
        [path] = Path(cache).glob("index-*")
        chunks = len(peek(path, "doc"))
        return Startup(name, chunks, cold_s, cached_s, path.stat().st_size / 2**20)


@dataclass(frozen=True)
class HybridRow:
    """`Retriever.search` as the bot runs it, lexical or hybrid."""

    engine: str
    chunks: int
    embed_s: float  # computing the chunks' vectors (estimated from the measured rate
    #                 for synthetic corpora, which are not embedded: see `embed_rate`)
    vectors_mb: float
    p50_ms: float
    p99_ms: float


def embed_rate(embedder: Embedder, passages: Sequence[str]) -> float:
    """Passages a second the model embeds here, one at a time on one thread."""
    start = time.perf_counter()
    embedder.embed(list(passages))
    return len(passages) / (time.perf_counter() - start)


def hybrid_rows(corpus_dir: Path, sizes: Sequence[int], queries: int) -> list[HybridRow]:
    """Search latency, lexical and hybrid, on the shipped corpus and synthetic ones.

    The shipped corpus is embedded for real; synthetic chunks get random unit vectors
    (what a search costs does not depend on their values) and their embedding time is
    estimated from the rate measured on their own passages.
    """
    rows: list[HybridRow] = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        shipped = open_retriever(corpus_dir, Path(tmp))
        build_s = time.perf_counter() - start
    assert shipped.semantic is not None
    embedder = shipped.semantic.embedder
    questions = [q.question for q in load_eval_set(corpus_dir).questions]
    lexical = Retriever(shipped.corpus, index=shipped.index)
    for engine, retriever in (("lexical", lexical), ("hybrid", shipped)):
        latencies = _latencies(lambda q, r=retriever: r.search(" ".join(q), MAX_PASSAGES), [
            q.split() for q in (questions * 4)[: max(queries, len(questions))]
        ])  # fmt: skip
        vectors = retriever.semantic.dense.vectors.nbytes if retriever.semantic else 0
        seconds = build_s if retriever.semantic else 0.0
        rows.append(HybridRow(engine, len(shipped.corpus.chunks), seconds, vectors / 2**20,
                              *_p(latencies)))  # fmt: skip
    rows += [_synthetic_hybrid(embedder, size, queries) for size in sizes]
    return rows


def _synthetic_hybrid(embedder: Embedder, size: int, queries: int) -> HybridRow:
    docs = synthetic_corpus(size, seed=size)
    rate = embed_rate(embedder, [" ".join(d) for d in docs[:100]])
    chunks = tuple(_synthetic_chunk(n, words) for n, words in enumerate(docs))
    corpus = Corpus("Film", (), (chunks[0].doc,), chunks, (), ())
    vectors = np.random.default_rng(size).standard_normal((size, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    semantic = Semantic(embedder, DenseIndex(vectors))
    retriever = Retriever(corpus, index=PostingsIndex.build(docs), semantic=semantic)
    latencies = _latencies(
        lambda q: retriever.search(" ".join(q), MAX_PASSAGES), queries_for(docs, queries, size)
    )
    return HybridRow("hybrid", size, size / rate, vectors.nbytes / 2**20, *_p(latencies))


def _synthetic_chunk(n: int, words: Sequence[str]) -> Chunk:
    doc = Document("synthetic", "Synthetic", "a synthetic wiki", "wiki", Path("synthetic.txt"))
    return Chunk(doc, n + 1, 0, " ".join(words) + ".", None, None)


CALLGRIND = ("valgrind", "--tool=callgrind", "--instr-atstart=no")
_SEARCHER = "import sys; from bot.core.bench import searcher_child; searcher_child(*sys.argv[1:])"


def instructions_per_search(corpus_dir: Path, engine: str) -> int:
    """Instructions one `search` executes on the corpus (`engine` lexical or hybrid),
    counted by callgrind over one warm pass of the tuning questions: repeatable to
    0.1 %, where wall-clock time on a shared host swings by half."""
    with tempfile.TemporaryDirectory() as tmp:
        # Built here: the child would otherwise build and embed it under valgrind.
        open_retriever(corpus_dir, Path(tmp), semantic=engine == "hybrid")
        out = Path(tmp) / "callgrind.out"
        command = [*CALLGRIND, f"--callgrind-out-file={out}", sys.executable, "-c", _SEARCHER]
        with subprocess.Popen(
            [*command, str(corpus_dir), tmp, engine],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # valgrind's own summary
            text=True,
        ) as child:
            assert child.stdin and child.stdout
            child.stdout.readline()  # loaded and warmed up, instrumentation still off
            callgrind_control("--instr=on", child.pid)
            child.stdin.write("go\n")
            child.stdin.flush()
            searches = int(child.stdout.readline())
            callgrind_control("--instr=off", child.pid)
            callgrind_control("--dump", child.pid)
            child.stdin.close()
        return sum(callgrind_total(f) for f in Path(tmp).glob("callgrind.out*")) // searches


def searcher_child(corpus_dir: str, cache_dir: str, engine: str) -> None:
    """The process `instructions_per_search` counts: searches when told to, then says
    how many."""
    retriever = open_retriever(Path(corpus_dir), Path(cache_dir), semantic=engine == "hybrid")
    questions = [q.question for q in load_eval_set(Path(corpus_dir)).questions]
    for question in questions:  # caches warm, as in a bot that has run a while
        retriever.search(question, MAX_PASSAGES)
    print("ready", flush=True)
    sys.stdin.readline()
    for question in questions:
        retriever.search(question, MAX_PASSAGES)
    print(len(questions), flush=True)
    sys.stdin.readline()


def callgrind_control(*args: str | int) -> None:
    subprocess.run(["callgrind_control", *map(str, args)], check=True, capture_output=True)


def callgrind_total(path: Path) -> int:
    """The instruction total of one callgrind dump (its `totals:` line)."""
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    return 0


def _hybrid_table(rows: list[HybridRow]) -> str:
    lines = [
        f"{'search':10} {'chunks':>7} {'embed s':>9} {'vectors MB':>10} {'p50 ms':>8} {'p99 ms':>8}"
    ]
    lines += [
        f"{r.engine:10} {r.chunks:7d} {r.embed_s:9.1f} {r.vectors_mb:10.1f} "
        f"{r.p50_ms:8.2f} {r.p99_ms:8.2f}"
        for r in rows
    ]
    return "\n".join(lines)


def run_bench(args: argparse.Namespace, corpus_dir: Path) -> int:
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    rows: list[Row] = []
    docs = [index_terms(c) for c in load_corpus(corpus_dir).chunks]
    rows += bench_one(len(docs), docs, queries_for(docs, args.queries, 0))
    startups = [startup_of(corpus_dir, "shipped")]
    for size in sizes:
        docs = synthetic_corpus(size, seed=size)
        rows += bench_one(size, docs, queries_for(docs, args.queries, size))
        del docs
        gc.collect()
        startups.append(measure_startup(size, seed=size))
    hybrid = hybrid_rows(corpus_dir, sizes, args.queries) if not args.lexical else []
    engines = ("lexical",) if args.lexical else ("lexical", "hybrid")
    instructions = {
        engine: instructions_per_search(corpus_dir, engine)
        for engine in (engines if args.instructions else ())
    }
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
    }
    if args.json:
        print(
            json.dumps(
                {
                    "rows": [asdict(r) for r in rows],
                    "startup": [asdict(s) for s in startups],
                    "search": [asdict(r) for r in hybrid],
                    "instructions_per_search": instructions,
                    "machine": machine,
                }
            )
        )
    else:
        tables = [_table(rows, machine), _startup_table(startups)]
        tables += [_hybrid_table(hybrid)] if hybrid else []
        if instructions:
            counted = instructions.items()
            tables.append("\n".join(f"instructions per search ({e}): {n:,}" for e, n in counted))
        print("\n\n".join(tables))
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


def _startup_table(startups: list[Startup]) -> str:
    lines = [f"{'start-up':10} {'chunks':>7} {'cold s':>8} {'cached s':>8} {'cache MB':>8}"]
    lines += [
        f"{s.corpus:10} {s.chunks:7d} {s.cold_s:8.2f} {s.cached_s:8.2f} {s.cache_mb:8.1f}"
        for s in startups
    ]
    return "\n".join(lines)
