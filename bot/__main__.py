"""Command line: no arguments starts the Discord bot; `ask`, `corpus`, `eval`, `bench` work offline."""

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bot.config import ConfigError, cache_dir, corpus_dir
from bot.core.answer import MAX_PASSAGES, PAGE_SIZE, Answer, QuestionError, answer_question
from bot.core.corpus import CorpusError
from bot.core.index_cache import open_retriever
from bot.core.progress import Progress
from bot.core.render import render_answer, render_text
from bot.core.retrieval import Retriever
from bot.store.sqlite import PrefsError

CLI_SPOILER_HINT = "Add --spoilers to see them."


def _k(value: str) -> int:
    k = int(value)
    if not 1 <= k <= MAX_PASSAGES:
        raise argparse.ArgumentTypeError(f"-k must be between 1 and {MAX_PASSAGES}")
    return k


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Look Back Q&A bot. With no command, starts the Discord bot (needs .env).",
    )
    sub = parser.add_subparsers(dest="command")
    corpus_opt = argparse.ArgumentParser(add_help=False)
    corpus_opt.add_argument("--corpus", metavar="DIR", help="corpus directory (or CORPUS_DIR)")

    ask = sub.add_parser("ask", parents=[corpus_opt], help="answer a question, no Discord needed")
    ask.add_argument("question", nargs="?", help="the question (quote it)")
    ask.add_argument("--spoilers", action="store_true", help="include spoiler passages")
    ask.add_argument(
        "-k", type=_k, default=PAGE_SIZE, help=f"passages to show (default {PAGE_SIZE})"
    )
    ask.add_argument("--json", action="store_true", help="print JSON (one object per answer)")
    ask.add_argument(
        "--batch", metavar="FILE", help='JSON lines {"question", "spoilers"}; - is stdin'
    )

    sub.add_parser("corpus", parents=[corpus_opt], help="list every chunk and its spoiler flag")
    ev = sub.add_parser("eval", parents=[corpus_opt], help="score the project's question set")
    ev.add_argument("--baseline", action="store_true", help="score plain rank-bm25 instead")
    bench = sub.add_parser("bench", parents=[corpus_opt], help="benchmark retrieval speed")
    bench.add_argument("--sizes", default="1000,10000,100000", help="synthetic corpus sizes")
    bench.add_argument("--queries", type=int, default=200, help="queries per size")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def answer_json(answer: Answer, k: int) -> dict[str, Any]:
    passages = [
        {
            "rank": p.rank,
            "doc_id": p.chunk.doc.id,
            "title": p.chunk.doc.title,
            "source": p.chunk.doc.source,
            "paragraph": p.chunk.paragraph,
            "url": p.chunk.doc.url,
            "text": p.chunk.text,
            "highlight": p.highlight,
            "score": round(p.score, 4),
            "spoiler": p.spoiler,
        }
        for p in answer.passages[:k]
    ]
    return {
        "question": answer.question,
        "abstained": answer.abstained,
        "spoilers": answer.spoilers_allowed,
        "withheld_spoilers": answer.withheld,
        "passages": passages,
        "message": render_answer(answer, page_size=k).to_dict(),
    }


def _batch_lines(path: str) -> Iterator[str]:
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    with stream:
        yield from (line.rstrip("\n") for line in stream)


def _batch_item(line: str) -> tuple[str, bool]:
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise QuestionError(f"not JSON: {exc.msg}") from None
    if not isinstance(item, dict) or not isinstance(item.get("question"), str):
        raise QuestionError('expected {"question": "...", "spoilers": false}')
    spoilers = item.get("spoilers", False)
    if not isinstance(spoilers, bool):
        raise QuestionError('"spoilers" must be true or false')
    return item["question"], spoilers


def _ask(args: argparse.Namespace, retriever: Retriever) -> int:
    if args.batch:
        try:
            lines = list(_batch_lines(args.batch))
        except OSError as exc:
            raise CorpusError(f"cannot read batch file {args.batch}: {exc.strerror}") from None
        for n, line in enumerate(lines, 1):
            try:
                question, spoilers = _batch_item(line)
                answer = answer_question(retriever, question, spoilers=spoilers)
            except QuestionError as exc:
                result: dict[str, Any] = {"line": n, "error": str(exc)}
                print(json.dumps(result, ensure_ascii=False) if args.json else f"line {n}: {exc}")
                continue
            _print_answer(answer, args)
        return 0
    if args.question is None:
        raise QuestionError(
            'ask needs a question, e.g. python -m bot ask "Who directed Look Back?"'
        )
    _print_answer(answer_question(retriever, args.question, spoilers=args.spoilers), args)
    return 0


def _print_answer(answer: Answer, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(answer_json(answer, args.k), ensure_ascii=False))
    else:
        print(render_text(answer, limit=args.k, spoiler_hint=CLI_SPOILER_HINT) + "\n")


def _corpus(retriever: Retriever) -> int:
    corpus = retriever.corpus
    print(f"{'chunk':24} {'chars':>5}  {'spoiler':18} text")
    for chunk in corpus.chunks:
        preview = " ".join(chunk.text.split())[:60]
        print(f"{chunk.id:24} {len(chunk.text):5}  {chunk.spoiler or '-':18} {preview}")
    n_spoilers = sum(c.is_spoiler for c in corpus.chunks)
    print(
        f"\n{len(corpus.chunks)} chunks from {len(corpus.documents)} documents, {n_spoilers} spoilers"
    )
    return 0


def _eval(args: argparse.Namespace, retriever: Retriever, directory: Path) -> int:
    from bot.core.evaluation import baseline_ranker, evaluate, load_eval_set, project_ranker

    ranker = baseline_ranker(retriever.corpus) if args.baseline else project_ranker(retriever)
    report = evaluate(ranker, load_eval_set(directory))
    print(("baseline: plain rank-bm25\n" if args.baseline else "") + "\n".join(report.lines()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command is None:
            from bot.discord.app import run_bot

            return run_bot()
        directory = corpus_dir(args.corpus)
        if args.command == "bench":
            from bot.core.bench import run_bench

            return run_bench(args, directory)
        # The CLI and the bot must answer alike, so both open the corpus the same way.
        progress = Progress(lambda line: print(line, file=sys.stderr))
        retriever = open_retriever(directory, cache_dir(), progress)
        for warning in retriever.corpus.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        if args.command == "ask":
            return _ask(args, retriever)
        if args.command == "corpus":
            return _corpus(retriever)
        return _eval(args, retriever, directory)
    except (QuestionError, CorpusError, ConfigError, PrefsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
