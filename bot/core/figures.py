"""Figures the sources state (runtimes, money, dates), to say when they disagree.

Sources often give different figures for one fact: the runtime is "58 min" in one,
"62-minute" in another and "just under an hour" in a third. An answer that quoted
only the first would pick a side silently; instead, when the best sentences of the
top passages state figures of the kind the best answer states, and they differ, the
reply lists each with its source.
"""

import datetime as dt
import re
from collections.abc import Sequence
from typing import NamedTuple

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
KINDS: dict[str, re.Pattern[str]] = {
    "runtime": re.compile(
        r"\b(?:(?:just\s+)?(?:under|over|about|nearly|almost|around)\s+)?"
        r"(?:an?\s+hour|\d+(?:\.\d+)?(?:\s+|-)?(?:minutes?|mins?|hours?|hrs?|h)\b)",
        re.IGNORECASE,
    ),
    "money": re.compile(
        r"[$¥€£]\s?\d[\d,]*(?:\.\d+)?(?:\s*(?:million|billion|thousand)\b)?", re.IGNORECASE
    ),
    "date": re.compile(
        rf"\b(?:\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}}|(?:{_MONTHS})\s+\d{{1,2}},?\s+\d{{4}})\b",
        re.IGNORECASE,
    ),
}


class Figure(NamedTuple):
    kind: str
    text: str  # as the source writes it
    value: str  # what is compared: the same date written two ways is one figure


def figures_in(sentence: str) -> list[Figure]:
    """Every figure a sentence states, in order."""
    found = []
    for kind, pattern in KINDS.items():
        for match in pattern.finditer(sentence):
            text = match.group().strip()
            found.append(Figure(kind, text, _value(kind, text)))
    return found


def _value(kind: str, text: str) -> str:
    folded = " ".join(text.casefold().replace("-", " ").split())
    if kind == "date":
        for layout in ("%d %B %Y", "%B %d, %Y", "%B %d %Y"):
            try:
                return dt.datetime.strptime(folded, layout).date().isoformat()
            except ValueError:
                continue
    return folded


def disagreement(sentences: Sequence[str]) -> list[tuple[int, Figure]]:
    """When the sentences (best first, one per passage) state different figures of the
    kind the first one states: each passage's first such figure, by passage index.
    Otherwise nothing.

    A sentence may state several kinds ("28 June 2024 Japan 58 min"); the one meant is
    the kind most of the sentences state, since each was chosen for the question.
    """
    found = [figures_in(sentence) for sentence in sentences]
    lead_kinds = list(dict.fromkeys(f.kind for f in found[0])) if found else []
    if not lead_kinds:
        return []
    kind = max(lead_kinds, key=lambda k: sum(any(f.kind == k for f in fs) for fs in found))
    stated = []
    for n, figures in enumerate(found):
        same_kind = [f for f in figures if f.kind == kind]
        if same_kind:
            stated.append((n, same_kind[0]))
    if len({figure.value for _, figure in stated}) < 2:
        return []
    return stated
