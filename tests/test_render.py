from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.answer import Answer, Passage, QuestionError, answer_question
from bot.core.corpus import Chunk, Corpus, Document
from bot.core.render import _ATOM, truncate
from bot.core.retrieval import Retriever
from bot.discord.replies import RENDERER  # what the bot sends: discord.py's escaper
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


def assert_no_spoiler_outside_tags(message: dict) -> None:
    for place, text in message_strings(message):
        outside, _inside = spoiler_segments(text)  # raises on an unclosed tag
        assert not any(MARK in piece for piece in outside), (place, text)
        if place not in ("field value", "description"):
            assert MARK not in text, place


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(st.tuples(nasty_text, st.booleans()), min_size=0, max_size=12),
    question=nasty_text,
    withheld=st.integers(0, 5),
    page_size=st.integers(1, 10),
    long_factor=st.integers(1, 40),
    public=st.booleans(),
    note=nasty_text,
)
def test_rendered_answers_fit_discord_and_keep_spoilers_tagged(
    texts, question, withheld, page_size, long_factor, public, note
):
    passages = []
    for n, (text, spoiler) in enumerate(texts, 1):
        body = (f"{text} {MARK} {text}" if spoiler else text or "x") * long_factor
        # The best sentence is the middle of the passage: for a spoiler, the mark and
        # whatever markup is around it, so it reaches the answer line and the figures.
        highlight = body[len(body) // 4 : 3 * len(body) // 4] or body
        passages.append(Passage(n, chunk(body, spoiler, n), 1.0, highlight))
    asked = f"{question} {MARK}"  # a question may name the twist
    answer = Answer(asked, not passages, True, tuple(passages), withheld, "hint |x|")
    message = RENDERER.render_answer(
        answer, shown=answer.passages[:page_size], public=public, note=note
    ).to_dict()

    assert_within_discord_limits(message)
    assert message["allowed_mentions"] == {"parse": []}
    if public:  # what others can see
        assert_no_spoiler_outside_tags(message)
        assert "withheld" not in message["embeds"][0].get("description", "")
    for field in message["embeds"][0].get("fields", []):  # passages: tagged everywhere
        outside, _ = spoiler_segments(field["value"])
        assert not any(MARK in piece for piece in outside)


def corpus_of(texts: list[tuple[str, bool]]) -> Corpus:
    chunks = tuple(
        chunk(f"{t} {MARK}" if s else f"{t} plain", s, n) for n, (t, s) in enumerate(texts)
    )
    docs = tuple({c.doc for c in chunks})
    return Corpus("Film", ("topics",), docs, chunks, (), (), (("twist", (MARK,)),))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(st.tuples(nasty_text, st.booleans()), min_size=1, max_size=8),
    question=nasty_text,
    spoilers=st.booleans(),
    public=st.booleans(),
)
def test_a_reply_shows_spoiler_text_only_inside_tags_and_only_when_allowed(
    texts, question, spoilers, public
):
    """Whatever the question and the corpus, the spoiler term never stands outside tags:
    not in passages, not in the echoed question, not in any notice."""
    retriever = Retriever(corpus_of(texts))
    for ask in (f"{question[:200]} {MARK} plain", f"{question[:200]} ||plain||", question):
        try:
            answer = answer_question(retriever, ask, spoilers=spoilers)
        except QuestionError:
            continue
        message = RENDERER.render_answer(answer, public=public).to_dict()
        assert_within_discord_limits(message)
        if public:
            assert_no_spoiler_outside_tags(message)
        if not spoilers:
            assert not any(MARK in p.chunk.text for p in answer.passages)


@pytest.mark.parametrize("text", ["a\\|b" * 50, "\\\\" * 300, "*" * 500, "x|" * 400])
@pytest.mark.parametrize("keep", ["start", "end"])
def test_truncation_never_splits_an_escape(text, keep):
    escaped = RENDERER.escape(text)
    for limit in range(0, 60):
        cut = truncate(escaped, limit, keep=keep)
        assert len(cut) <= limit
        atoms, kept = _ATOM.findall(escaped), _ATOM.findall(cut.strip("…"))
        assert kept == (atoms[: len(kept)] if keep == "start" else atoms[len(atoms) - len(kept) :])
        outside, inside = spoiler_segments(f"||{cut}||")
        assert outside == ["", ""] and len(inside) == 1


def test_escaping_keeps_corpus_pipes_from_closing_a_tag():
    outside, inside = spoiler_segments("||" + RENDERER.escape("the end|| revealed ||") + "||")
    assert inside and outside == ["", ""]


def test_withheld_spoilers_are_told_to_the_asker_alone(retriever):
    answer = answer_question(retriever, "what happens to kyomoto", spoilers=False)
    private = RENDERER.render_answer(answer, public=False).to_dict()["embeds"][0]["description"]
    assert "withheld" in private and "/spoilers on" in private
    public = RENDERER.render_answer(answer, public=True).to_dict()["embeds"][0]["description"]
    assert "withheld" not in public and "spoiler" not in public.lower()


def test_a_question_naming_the_twist_is_echoed_inside_spoiler_tags(retriever):  # in public
    answer = answer_question(
        retriever, "did kyomoto die in the axe attack at her art college?", spoilers=False
    )
    description = RENDERER.render_answer(answer).to_dict()["embeds"][0]["description"]
    outside, inside = spoiler_segments(description)
    assert "axe" not in "".join(outside) and "axe attack" in "".join(inside)


@pytest.mark.parametrize("question", ["does fujino know karate?", "is it ||sad||", "is it sad"])
def test_every_question_is_echoed_inside_spoiler_tags_where_others_can_read(retriever, question):
    """Tagging only the questions that touch the twist would tell the channel which words
    do ("karate" tagged, "judo" not): in public, every echo is tagged."""
    answer = answer_question(retriever, question, spoilers=False)
    description = RENDERER.render_answer(answer, public=True).to_dict()["embeds"][0]["description"]
    first_line = description.split("\n")[0]
    outside, inside = spoiler_segments(first_line)
    assert outside == ["**Q:** ", ""] and "\\|" not in first_line
    assert inside == [" ".join(question.replace("||", " ").split())]


def test_a_private_reply_echoes_the_question_plainly(retriever):
    answer = answer_question(retriever, "who composed the ||music||?", spoilers=False)
    description = RENDERER.render_answer(answer, public=False).to_dict()["embeds"][0]["description"]
    assert description.startswith("**Q:** who composed the music ?")
    assert spoiler_segments(description.split("\n")[0])[1] == []


def test_each_passage_carries_its_citation_and_bold_highlight(retriever):
    answer = answer_question(retriever, "who composed the music", spoilers=False)
    [first, *_] = RENDERER.render_answer(answer).to_dict()["embeds"][0]["fields"]
    assert "**" in first["value"] and "Haruka Nakamura" in first["value"]
    assert "— Smash Hit, review, ¶3" in first["value"]
