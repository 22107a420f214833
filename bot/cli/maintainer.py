"""Commands for the corpus maintainer: review what is marked, score the question sets,
and read what members could not get answered."""

import argparse
import asyncio
import datetime as dt
import json
from pathlib import Path

from bot.config import load_env, store_settings
from bot.core.corpus import CorpusError, load_corpus
from bot.core.render import terminal_safe
from bot.core.retrieval import Retriever
from bot.store import FeedbackReport, opened


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
    """Both question sets side by side: the tuning set flatters, the held-out one does not."""
    from bot.core.evaluation import (
        SETS,
        baseline_ranker,
        evaluate,
        load_eval_set,
        project_ranker,
        side_by_side,
    )

    ranker = baseline_ranker(retriever.corpus) if args.baseline else project_ranker(retriever)
    reports = [
        (name, evaluate(ranker, load_eval_set(directory, file)))
        for name, file in SETS
        if (directory / file).is_file() or name == "tuning"
    ]
    print(
        ("baseline: plain rank-bm25\n" if args.baseline else "") + "\n".join(side_by_side(reports))
    )
    return 0


def run_report(args: argparse.Namespace, directory: Path) -> int:
    """What members could not get answered and which answers they voted down."""
    load_env()
    settings = store_settings()
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=args.days)

    async def read() -> FeedbackReport:
        async with opened(settings) as store:
            return await store.report(since, top=args.top)

    report = asyncio.run(read())
    if args.json:
        print(json.dumps(_report_json(report), ensure_ascii=False))
    else:
        print(terminal_safe(_report_text(report, args.days, _citations(directory))))
    return 0


def _citations(directory: Path) -> dict[str, str]:
    """Chunk id -> citation in the corpus as it is now (empty if it cannot be read)."""
    try:
        return {c.id: c.citation for c in load_corpus(directory).chunks}
    except CorpusError:
        return {}


def _report_json(report: FeedbackReport) -> dict:
    return {
        "since": report.since.isoformat(),
        "asked": report.asked,
        "unanswered": report.unanswered,
        "votes": {"up": report.up, "down": report.down},
        "top_unanswered": [q._asdict() for q in report.top_unanswered],
        "voted_down": [
            a._asdict() | {"passages": list(a.passages), "asked_at": a.asked_at.isoformat()}
            for a in report.voted_down
        ],
    }


def _report_text(report: FeedbackReport, days: int, citations: dict[str, str]) -> str:
    share = f" ({report.unanswered / report.asked:.0%})" if report.asked else ""
    lines = [
        f"Feedback of the last {days} days (since {report.since:%Y-%m-%d}): "
        f"{report.asked} questions, {report.unanswered} not answered{share}; "
        f"votes 👍 {report.up} 👎 {report.down}",
        "",
        "Questions I could not answer, most asked first (add a source or a suggestion):",
    ]
    lines += [f"  {q.times:4}×  {q.question}" for q in report.top_unanswered] or ["  none"]
    lines += ["", "Answers voted down, with the passages they showed:"]
    for a in report.voted_down:
        lines.append(f"  👎 {a.down} 👍 {a.up}  {a.question}  ({a.asked_at:%Y-%m-%d})")
        lines += [f"        {n}. {citations.get(p, p)}  [{p}]" for n, p in enumerate(a.passages, 1)]
    if not report.voted_down:
        lines.append("  none")
    return "\n".join(lines)
