"""Hits + spoiler policy -> what a member is shown and what is withheld.

The CLI and the Discord bot both call `answer_question`, so the same question and
spoiler setting give the same answer everywhere.
"""

import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

from bot.core.corpus import Chunk
from bot.core.retrieval import Retriever

MAX_QUESTION_CHARS = 300
MAX_PASSAGES = 10  # relevant passages kept per answer ("More results" pages through them)
PAGE_SIZE = 3


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


def clean_question(text: str) -> str:
    """The question with control and invisible characters removed, or a QuestionError."""
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"That question is {len(text)} characters long; please keep it under "
            f"{MAX_QUESTION_CHARS}."
        )
    if not (text.isascii() and text.isprintable()):  # most questions: nothing to remove
        text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    cleaned = " ".join(text.split())
    if not cleaned:
        raise QuestionError("Please ask a question, for example: who directed Look Back?")
    return cleaned


def answer_question(retriever: Retriever, question: str, *, spoilers: bool) -> Answer:
    """Answer a question; spoiler passages are withheld unless `spoilers` is set."""
    question = clean_question(question)
    result = retriever.search(question, MAX_PASSAGES)
    shown = [h for h in result.hits if spoilers or not h.chunk.is_spoiler]
    passages = tuple(
        Passage(rank, h.chunk, h.score, h.highlight) for rank, h in enumerate(shown, 1)
    )
    corpus = retriever.corpus
    hint = f"I can answer questions about {corpus.film}: " + ", ".join(corpus.topics) + "."
    return Answer(
        question=question,
        abstained=result.abstained,
        spoilers_allowed=spoilers,
        passages=passages,
        withheld=len(result.hits) - len(shown),
        hint=hint,
    )
