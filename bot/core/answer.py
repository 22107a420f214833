"""Hits + spoiler policy -> what a member is shown and what is withheld.

A question is looked up once (`look_up`): what the corpus holds for it, before any
policy. `Lookup.answer(spoilers)` applies the member's setting, so a "More results"
click can apply the setting the member has *now*. The CLI and the Discord bot both
go through here, so the same question and setting give the same answer everywhere.
"""

import re
import unicodedata
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from bot.core.corpus import Chunk
from bot.core.figures import Figure, disagreement
from bot.core.retrieval import Retriever, SearchResult

MAX_QUESTION_CHARS = 300
MAX_PASSAGES = 10  # relevant passages kept per answer ("More results" pages through them)
PAGE_SIZE = 3
# Removed from questions: controls, invisible format characters, and lone surrogates
# (which no UTF-8 output can carry).
_UNWANTED = frozenset({"Cc", "Cf", "Cs"})


class QuestionError(ValueError):
    """The question cannot be asked as it is; the message is for the member."""


class Passage(NamedTuple):
    """A hit the member may see, numbered (a NamedTuple, as a Hit: several per answer)."""

    rank: int
    chunk: Chunk
    score: float
    highlight: str

    @property
    def spoiler(self) -> bool:
        return self.chunk.is_spoiler


@dataclass(frozen=True)
class Answer:
    question: str
    abstained: bool
    spoilers_allowed: bool
    passages: tuple[Passage, ...]  # every relevant passage the member may see, best first
    withheld: int  # relevant spoiler passages kept back because spoilers are off
    hint: str  # what the bot can answer, for when it cannot answer this
    confident: bool = True  # False: the passages are the closest, not surely an answer

    @property
    def lead(self) -> str:
        """The sentence that best answers: the top passage's best sentence."""
        return self.passages[0].highlight if self.passages else ""

    @cached_property
    def differing(self) -> tuple[tuple[Passage, Figure], ...]:
        """Figures the top passages give differently for the fact asked about (runtimes,
        money, dates), each with its passage; empty when they agree or give none."""
        top = self.passages[:PAGE_SIZE]
        stated = disagreement([p.highlight for p in top])
        return tuple((top[n], figure) for n, figure in stated)


@dataclass(frozen=True)
class Lookup:
    """What the corpus holds for a question, before the member's spoiler setting."""

    question: str
    found: SearchResult
    hint: str

    def answer(self, spoilers: bool) -> Answer:
        """The answer for a member whose spoiler setting is `spoilers`."""
        view = self.found.view(spoilers)
        passages = tuple(
            Passage(rank, h.chunk, h.score, h.highlight)
            for rank, h in enumerate(view.hits[:MAX_PASSAGES], 1)
        )
        everything = self.found.everything.hits[:MAX_PASSAGES]
        withheld = 0 if spoilers else sum(h.chunk.is_spoiler for h in everything)
        return Answer(
            question=self.question,
            # Only spoilers answer it: not "I don't know", but what was withheld.
            abstained=view.abstained and not withheld,
            spoilers_allowed=spoilers,
            passages=passages,
            withheld=withheld,
            hint=self.hint,
            confident=view.confident,
        )


def clean_question(text: str) -> str:
    """The question with control and invisible characters removed, or a QuestionError."""
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"That question is {len(text)} characters long; please keep it under "
            f"{MAX_QUESTION_CHARS}."
        )
    if not (text.isascii() and text.isprintable()):  # most questions: nothing to remove
        text = "".join(" " if unicodedata.category(c) in _UNWANTED else c for c in text)
    cleaned = " ".join(text.split())
    if not cleaned:
        raise QuestionError("Please ask a question, for example: who directed Look Back?")
    return cleaned


# What a message holds that is not its words: its own spoiler spans, mentions, custom
# emoji and links.
_NOT_WORDS = re.compile(
    r"\|\|.*?\|\||<(?:@[!&]?|#)\d+>|<a?:\w+:\d+>|@(?:everyone|here)\b|<?https?://\S+",
    re.DOTALL | re.IGNORECASE,
)


class MessageQuestion(NamedTuple):
    question: str
    cut: bool  # the message was longer than a question may be


def question_from_message(content: str) -> MessageQuestion:
    """The question "Ask about this" asks for a message: its words without its spoiler
    spans, mentions and links, cut on a word boundary to what a question may hold."""
    text = " ".join(_NOT_WORDS.sub(" ", content).split())
    if len(text) <= MAX_QUESTION_CHARS:
        return MessageQuestion(text, False)
    cut = text[: MAX_QUESTION_CHARS + 1].rsplit(" ", 1)[0] or text[:MAX_QUESTION_CHARS]
    return MessageQuestion(cut[:MAX_QUESTION_CHARS], True)


def look_up(retriever: Retriever, question: str) -> Lookup:
    """Search the corpus for a question (cleaned first, or a QuestionError)."""
    question = clean_question(question)
    result = retriever.search(question, MAX_PASSAGES)
    corpus = retriever.corpus
    hint = f"I can answer questions about {corpus.film}: " + ", ".join(corpus.topics) + "."
    return Lookup(
        question=question,
        found=result,
        hint=hint,
    )


def answer_question(retriever: Retriever, question: str, *, spoilers: bool) -> Answer:
    """Answer a question; spoiler passages are withheld unless `spoilers` is set."""
    return look_up(retriever, question).answer(spoilers)
