from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.answer import Answer, Passage, answer_question
from bot.core.corpus import Chunk, Corpus, Document
from bot.core.render import _ATOM, escape, render_answer, truncate
from bot.core.retrieval import Retriever
from tests.markup import assert_within_discord_limits, message_strings, spoiler_segments

MARK = "zqxspoil"  # a word that stands for "spoiler text" in generated passages
NASTY = [
    "|",
    "||",
    "|||",
    "*",
    "**",
    "_",
    "__",
    "`",
    "```",
    ">",
    "> ",
    ">>> ",
    "\\",
    "~~",
    "#",
    "-# ",
    "@everyone",
    "@here",
    "<@123>",
    "<@&456>",
    "<#789>",
    "\u200b",
    "\u200d",
    "\n",
    " ",
    "[x](https://a.b/||c)",
    "https://x.y/a||b",
    "ルック",
    "word",
    ".",
    "spoiler",
]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=8)), max_size=60).map(
    "".join
)


def chunk(text: str, spoiler: bool, n: int = 1) -> Chunk:
    doc = Document(f"doc{n}", f"Title {n} ||x|| @everyone", "Source *bold*", "review", Path("x"))
    return Chunk(doc, 1, 0, text, None, "twist" if spoiler else None)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.tuples(nasty_text, st.booleans()), min_size=0, max_size=12),
    question=nasty_text,
    withheld=st.integers(0, 5),
    page_size=st.integers(1, 10),
    long_factor=st.integers(1, 40),
)
def test_rendered_answers_fit_discord_and_keep_spoilers_tagged(
    texts, question, withheld, page_size, long_factor
):
    passages = []
    for n, (text, spoiler) in enumerate(texts, 1):
        body = (f"{text} {MARK} {text}" if spoiler else text or "x") * long_factor
        highlight = text[: len(text) // 2]
        passages.append(Passage(n, chunk(body, spoiler, n), 1.0, highlight))
    answer = Answer(question or "?", not passages, True, tuple(passages), withheld, "hint |x|")
    message = render_answer(answer, page_size=page_size).to_dict()

    assert_within_discord_limits(message)
    assert message["allowed_mentions"] == {"parse": []}
    for place, text in message_strings(message):
        outside, _inside = spoiler_segments(text)  # raises on an unclosed tag
        assert not any(MARK in piece for piece in outside), (place, text)
        if place != "field value":
            assert MARK not in text, place


def corpus_of(texts: list[tuple[str, bool]]) -> Corpus:
    chunks = tuple(
        chunk(f"{t} {MARK}" if s else f"{t} plain", s, n) for n, (t, s) in enumerate(texts)
    )
    return Corpus("Film", ("topics",), tuple({c.doc for c in chunks}), chunks, (), ())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.tuples(nasty_text, st.booleans()), min_size=1, max_size=8),
    question=nasty_text,
    spoilers=st.booleans(),
)
def test_spoiler_text_reaches_a_member_only_when_allowed(texts, question, spoilers):
    retriever = Retriever(corpus_of(texts))
    ask = f"{question[:200]} {MARK} plain"
    answer = answer_question(retriever, ask, spoilers=spoilers)
    message = render_answer(answer).to_dict()
    assert_within_discord_limits(message)
    shown = [c.text for _, c in [(0, p.chunk) for p in answer.passages]]
    if not spoilers:
        assert not any(MARK in t for t in shown)
        assert not any(MARK in text for place, text in message_strings(message) if place != "title")
    for place, text in message_strings(message):
        if place == "field value":
            outside, _ = spoiler_segments(text)
            assert not any(MARK in piece for piece in outside)


@pytest.mark.parametrize("text", ["a\\|b" * 50, "\\\\" * 300, "*" * 500, "x|" * 400])
@pytest.mark.parametrize("keep", ["start", "end"])
def test_truncation_never_splits_an_escape(text, keep):
    escaped = escape(text)
    for limit in range(0, 60):
        cut = truncate(escaped, limit, keep=keep)
        assert len(cut) <= limit
        atoms, kept = _ATOM.findall(escaped), _ATOM.findall(cut.strip("…"))
        assert kept == (atoms[: len(kept)] if keep == "start" else atoms[len(atoms) - len(kept) :])
        outside, inside = spoiler_segments(f"||{cut}||")
        assert outside == ["", ""] and len(inside) == 1


def test_escaping_keeps_corpus_pipes_from_closing_a_tag():
    outside, inside = spoiler_segments("||" + escape("the end|| revealed ||") + "||")
    assert inside and outside == ["", ""]


def test_withheld_spoilers_are_announced_with_the_way_to_see_them(retriever):
    answer = answer_question(retriever, "what happens to kyomoto", spoilers=False)
    message = render_answer(answer).to_dict()
    assert "withheld" in message["embeds"][0]["description"]
    assert "/spoilers on" in message["embeds"][0]["description"]


def test_each_passage_carries_its_citation_and_bold_highlight(retriever):
    answer = answer_question(retriever, "who composed the music", spoilers=False)
    [first, *_] = render_answer(answer).to_dict()["embeds"][0]["fields"]
    assert "**" in first["value"] and "Haruka Nakamura" in first["value"]
    assert "— Smash Hit, review, ¶3" in first["value"]
