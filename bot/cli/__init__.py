"""Command line: no arguments starts the Discord bot; `ask`, `corpus`, `eval`, `report`,
`bench` work offline; `db copy`, `reload` and `sync` are for the operator."""

import argparse
import sys
from collections.abc import Sequence

from bot.cli.ask import run_ask
from bot.cli.maintainer import run_corpus, run_eval, run_report
from bot.cli.ops import run_db_copy, run_reload, run_sync
from bot.config import ConfigError, cache_dir, corpus_dir, semantic
from bot.core.answer import MAX_PASSAGES, PAGE_SIZE, QuestionError
from bot.core.corpus import CorpusError
from bot.core.index_cache import EMBED_AT_START, open_retriever
from bot.core.progress import Progress
from bot.core.render import terminal_safe
from bot.store import StoreError, StoreUnavailable

OPERATOR_COMMANDS = {"db": run_db_copy, "reload": run_reload, "sync": run_sync}


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
    corpus_opt.add_argument(
        "--lexical", action="store_true", help="BM25 alone, no semantic half (or RETRIEVAL)"
    )

    ask = sub.add_parser("ask", parents=[corpus_opt], help="answer a question, no Discord needed")
    ask.add_argument("question", nargs="?", help="the question (quote it)")
    ask.add_argument("--spoilers", action="store_true", help="include spoiler passages")
    ask.add_argument(
        "-k", type=_k, default=PAGE_SIZE, help=f"passages to show (default {PAGE_SIZE})"
    )
    ask.add_argument("--json", action="store_true", help="print JSON (one object per answer)")
    ask.add_argument(
        "--full", action="store_true", help="whole passages, not the sentences around the answer"
    )
    ask.add_argument(
        "--batch", metavar="FILE", help='JSON lines {"question", "spoilers"}; - is stdin'
    )

    sub.add_parser("corpus", parents=[corpus_opt], help="list every chunk and its spoiler flag")
    ev = sub.add_parser("eval", parents=[corpus_opt], help="score the project's question set")
    ev.add_argument("--baseline", action="store_true", help="score plain rank-bm25 instead")
    report = sub.add_parser(
        "report", parents=[corpus_opt], help="unanswered questions and answers voted down"
    )
    report.add_argument("--days", type=int, default=30, help="look back this many days")
    report.add_argument("--top", type=int, default=20, help="questions and answers to list")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    db = sub.add_parser("db", help="the PostgreSQL store (DATABASE_URL)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    copy = db_sub.add_parser("copy", help="copy a SQLite file's contents into PostgreSQL")
    copy.add_argument("--from", dest="source", required=True, metavar="FILE", help="SQLite file")
    reload = sub.add_parser("reload", help="every running process reloads the corpus")
    reload.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for them")
    sub.add_parser("sync", help="register the commands with Discord (needs .env)")
    bench = sub.add_parser("bench", parents=[corpus_opt], help="benchmark retrieval speed")
    bench.add_argument("--sizes", default="1000,10000,100000", help="synthetic corpus sizes")
    bench.add_argument("--queries", type=int, default=200, help="queries per size")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--instructions", action="store_true", help="count instructions per search (valgrind)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command is None:
            from bot.discord.app import run_bot

            return run_bot()
        if args.command in OPERATOR_COMMANDS:
            return OPERATOR_COMMANDS[args.command](args)
        directory = corpus_dir(args.corpus)
        if args.command == "bench":
            from bot.core.bench import run_bench

            return run_bench(args, directory)
        if args.command == "report":
            return run_report(args, directory)
        # The CLI and the bot must answer alike, so both open the corpus the same way.
        progress = Progress(lambda line: print(line, file=sys.stderr))
        hybrid = not args.lexical and semantic()
        retriever = open_retriever(
            directory, cache_dir(), progress, semantic=hybrid, embed_limit=EMBED_AT_START
        )
        for warning in retriever.corpus.warnings:
            print(terminal_safe(f"warning: {warning}"), file=sys.stderr)
        if args.command == "ask":
            return run_ask(args, retriever)
        if args.command == "corpus":
            return run_corpus(retriever)
        return run_eval(args, retriever, directory)
    except (QuestionError, CorpusError, ConfigError, StoreError, StoreUnavailable) as exc:
        print(terminal_safe(f"error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
