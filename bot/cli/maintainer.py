"""Commands for the corpus maintainer: review what is marked, score the question sets."""

import argparse
from pathlib import Path

from bot.core.render import terminal_safe
from bot.core.retrieval import Retriever


def run_corpus(retriever: Retriever) -> int:
    corpus = retriever.corpus
    print(f"{'chunk':24} {'chars':>5}  {'spoiler':18} text")
    for chunk in corpus.chunks:
        preview = " ".join(chunk.text.split())[:60]
        line = f"{chunk.id:24} {len(chunk.text):5}  {chunk.spoiler or '-':18} {preview}"
        print(terminal_safe(line))
    n_spoilers = sum(c.is_spoiler for c in corpus.chunks)
    print(
        f"\n{len(corpus.chunks)} chunks from {len(corpus.documents)} documents, {n_spoilers} spoilers"
    )
    return 0


def run_eval(args: argparse.Namespace, retriever: Retriever, directory: Path) -> int:
    from bot.core.evaluation import baseline_ranker, evaluate, load_eval_set, project_ranker

    ranker = baseline_ranker(retriever.corpus) if args.baseline else project_ranker(retriever)
    report = evaluate(ranker, load_eval_set(directory))
    print(("baseline: plain rank-bm25\n" if args.baseline else "") + "\n".join(report.lines()))
    return 0
