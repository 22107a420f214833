"""`python -m bot ask`: one question, or a stream of JSON lines, answered as /ask would."""

import argparse
import json
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from bot.core.answer import Answer, QuestionError, answer_question
from bot.core.corpus import CorpusError
from bot.core.render import Renderer, render_text
from bot.core.retrieval import Retriever

CLI_SPOILER_HINT = "Add --spoilers to see them."
MAX_BATCH_LINE = 64 * 1024  # bytes; a question is at most 300 characters
BATCH_SHAPE = 'expected {"question": "...", "spoilers": false}'


def _discord_renderer() -> Renderer:
    """The bot's own renderer, for the Discord message that --json includes. Imported on
    first use: it loads discord.py, a third of a cached start that a plain text answer
    need not pay."""
    from bot.discord.replies import RENDERER

    return RENDERER


def answer_json(answer: Answer, k: int) -> dict[str, Any]:
    shown = answer.passages[:k]
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
        for p in shown
    ]
    return {
        "question": answer.question,
        "abstained": answer.abstained,
        "confident": answer.confident,
        "spoilers": answer.spoilers_allowed,
        "withheld_spoilers": answer.withheld,
        "passages": passages,
        "message": _discord_renderer().render_answer(answer, shown=shown).to_dict(),
    }


def run_ask(args: argparse.Namespace, retriever: Retriever) -> int:
    if args.batch:
        _run_batch(args, retriever)
        return 0
    if args.question is None:
        raise QuestionError(
            'ask needs a question, e.g. python -m bot ask "Who directed Look Back?"'
        )
    _print_answer(answer_question(retriever, args.question, spoilers=args.spoilers), args)
    return 0


def _run_batch(args: argparse.Namespace, retriever: Retriever) -> None:
    """Answer line by line as the file streams in; a bad line gets an error in its place."""
    try:
        stream = sys.stdin.buffer if args.batch == "-" else open(args.batch, "rb")  # noqa: SIM115
    except OSError as exc:
        raise CorpusError(f"cannot read batch file {args.batch}: {exc.strerror}") from None
    with stream:
        for n, line in enumerate(_lines(stream), 1):
            try:
                question, spoilers = _batch_item(line)
                answer = answer_question(retriever, question, spoilers=spoilers)
            except QuestionError as exc:
                error = {"line": n, "error": str(exc)}
                print(json.dumps(error) if args.json else f"line {n}: {exc}", flush=True)
                continue
            _print_answer(answer, args)


def _lines(stream: BinaryIO) -> Iterator[bytes | None]:
    """Each line's bytes, or None for one over MAX_BATCH_LINE, which is skipped in
    pieces rather than held whole."""
    while line := stream.readline(MAX_BATCH_LINE + 1):
        if len(line) > MAX_BATCH_LINE and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(MAX_BATCH_LINE)
            yield None
        else:
            yield line


def _batch_item(line: bytes | None) -> tuple[str, bool]:
    if line is None:
        raise QuestionError(f"line is over {MAX_BATCH_LINE} bytes; {BATCH_SHAPE}")
    try:
        item = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise QuestionError(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise QuestionError(f"not JSON: {exc.msg}") from None
    except RecursionError:
        raise QuestionError(f"nested too deeply; {BATCH_SHAPE}") from None
    if not isinstance(item, dict) or not isinstance(item.get("question"), str):
        raise QuestionError(BATCH_SHAPE)
    spoilers = item.get("spoilers", False)
    if not isinstance(spoilers, bool):
        raise QuestionError('"spoilers" must be true or false')
    return item["question"], spoilers


def _print_answer(answer: Answer, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(answer_json(answer, args.k), ensure_ascii=False), flush=True)
    else:
        text = render_text(answer, limit=args.k, spoiler_hint=CLI_SPOILER_HINT, full=args.full)
        print(text + "\n", flush=True)
