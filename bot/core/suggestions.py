"""Whole questions to suggest while a member types into /ask (Discord's autocomplete).

Suggestions are the manifest's [[suggested]] questions and the corpus's section
headings, never other members' questions. They are matched with the project's own
analysis (stems, so "directing" finds "who directed it?"), the word being typed by
its prefix, and a misspelt word by its closeness, so a typo still finds them. A
suggestion that could spoil (a spoiler phrase, or a word only spoiler passages use)
is offered only to a member who may see spoilers: suggestions are private to the
typist, but must not spoil the typist either.
"""

import difflib
from collections.abc import Callable, Sequence
from typing import NamedTuple

from bot.core import analysis
from bot.core.corpus import SUGGESTION_MAX_CHARS, Corpus

MAX_CHOICES = 25  # Discord's limit
EMPTY_BOX = 10  # shown before anything is typed
# How much a typed word counts, by how it matches a suggestion's word.
EXACT, PREFIX, CLOSE, STOPWORD = 1.0, 0.8, 0.6, 0.25
CLOSE_RATIO = 0.8  # difflib ratio for a misspelt word


class Suggestion(NamedTuple):
    text: str
    spoiler: bool
    words: frozenset[str]  # stemmed, stopwords kept
    surface: tuple[str, ...]  # as written, lowercased, for the word being typed


class Suggester:
    def __init__(self, corpus: Corpus, could_spoil: Callable[[str], bool]) -> None:
        headings: dict[str, bool] = {}
        for chunk in corpus.chunks:
            if chunk.section:
                # A heading counts as a spoiler when every passage under it is one.
                headings[chunk.section] = headings.get(chunk.section, True) and chunk.is_spoiler
        texts = list(dict.fromkeys(corpus.suggested))
        texts += [h for h in headings if h not in texts and len(h) <= SUGGESTION_MAX_CHARS]
        self.suggestions = tuple(
            Suggestion(
                text,
                could_spoil(text) or headings.get(text, False),
                frozenset(analysis.words(text)),
                tuple(analysis.normalize(w) for w in analysis.surface_words(text)),
            )
            for text in texts
        )

    def suggest(self, typed: str, spoilers: bool, limit: int = MAX_CHOICES) -> list[str]:
        """At most `limit` questions for what is typed so far, the typed text itself first."""
        offered = [s for s in self.suggestions if spoilers or not s.spoiler]
        still_typing = bool(typed) and not typed[-1].isspace()  # the last word is a prefix
        typed = " ".join(typed.split())
        if not typed:
            return [s.text for s in offered[: min(limit, EMPTY_BOX)]]
        words = analysis.surface_words(typed)
        partial = analysis.normalize(words[-1]) if words and still_typing else ""
        stems = analysis.words(typed)
        scored = [(-_score(s, stems, partial), n, s.text) for n, s in enumerate(offered)]
        ranked = [text for score, _, text in sorted(scored) if score < 0]
        own = [typed] if len(typed) <= SUGGESTION_MAX_CHARS else []
        folded = typed.casefold()
        return (own + [t for t in ranked if t.casefold() != folded])[:limit]


def _score(suggestion: Suggestion, stems: Sequence[str], partial: str) -> float:
    """How well the typed words match: each counts by its best match, stopwords little."""
    total = 0.0
    for n, stem in enumerate(stems):
        weight = STOPWORD if stem in analysis.STOPWORDS else 1.0
        if stem in suggestion.words:
            total += EXACT * weight
        elif (
            n == len(stems) - 1
            and partial
            and any(w.startswith(partial) for w in suggestion.surface)
        ):
            total += PREFIX * weight
        elif len(stem) >= 4 and difflib.get_close_matches(stem, suggestion.words, 1, CLOSE_RATIO):
            total += CLOSE * weight
    return total
