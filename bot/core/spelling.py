"""Misspelt question words corrected to corpus terms, exactly as difflib would choose.

`difflib.get_close_matches` tests every candidate in Python, which cost 4.8 ms a new
misspelt word against a 48k-term vocabulary. Its cheap exact test, `quick_ratio`, is
a bound from the two words' letter counts alone; here an upper bound of it is
computed for all candidates at once from a matrix of letter counts, and only the
candidates that pass go to difflib, which then picks what it would have picked from
all of them.
"""

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

MIN_LENGTH = 4  # shorter words are too easily "corrected" into another word
# Words not seen before that one question may have corrected: each costs up to ~0.4 ms at
# 100k passages, so a question made of 50 fresh misspellings cost 500 times a plain one.
NEW_PER_QUESTION = 3
MEMO_MAX = 10_000  # corrections remembered; past it the memo starts afresh
COLUMNS = 63  # most common characters counted one by one; the rest share a column


class _Candidates(NamedTuple):
    """The vocabulary terms with one initial, with their character counts."""

    terms: list[str]
    counts: np.ndarray  # (terms, columns + 1); the last column: other characters
    lengths: np.ndarray


class Speller:
    def __init__(
        self,
        vocabulary: Iterable[str],
        cutoff: float,
        columns: int = COLUMNS,
        keep: frozenset[str] = frozenset(),
    ) -> None:
        """`keep`: words that are never corrected (real words the vocabulary lacks)."""
        self.cutoff = cutoff
        self.keep = keep
        self._by_initial: dict[str, list[str]] = defaultdict(list)
        for term in vocabulary:
            self._by_initial[term[:1]].append(term)
        frequent = Counter(c for terms in self._by_initial.values() for t in terms for c in t)
        self._column = {c: i for i, (c, _) in enumerate(frequent.most_common(columns))}
        self._candidates: dict[str, _Candidates] = {}  # built on a first typo per initial
        self._memo: dict[str, str] = {}

    def correct(self, word: str) -> str:
        """The closest term with the same initial, or `word` when none is close enough."""
        if len(word) < MIN_LENGTH or word in self.keep:
            return word
        corrected = self._memo.get(word)
        if corrected is None:  # (a local, not the memo: another thread may clear it)
            if len(self._memo) >= MEMO_MAX:
                self._memo.clear()
            close = difflib.get_close_matches(word, self._shortlist(word), 1, self.cutoff)
            corrected = self._memo[word] = close[0] if close else word
        return corrected

    def correct_all(self, words: Iterable[str], new: int = NEW_PER_QUESTION) -> dict[str, str]:
        """Each word's correction; only the first `new` words not seen before are worked
        out, the rest stay as typed (a word seen before is remembered, so it is free)."""
        out: dict[str, str] = {}
        for word in words:
            if word in self._memo or len(word) < MIN_LENGTH or new > 0:
                new -= word not in self._memo and len(word) >= MIN_LENGTH
                out[word] = self.correct(word)
            else:
                out[word] = word
        return out

    def _shortlist(self, word: str) -> list[str]:
        """The terms whose quick_ratio with `word` may reach the cutoff (a superset)."""
        initial = word[:1]
        if initial not in self._candidates:
            self._candidates[initial] = self._count(self._by_initial.get(initial, []))
        terms, counts, lengths = self._candidates[initial]
        if not terms:
            return []
        mine = self._count([word]).counts[0]
        # Characters sharing the last column may differ, so this over-counts the
        # common characters: an upper bound of difflib's, computed the same way.
        common = np.minimum(counts, mine).sum(axis=1)
        bound = 2.0 * common / (lengths + len(word))
        return [terms[i] for i in np.flatnonzero(bound >= self.cutoff)]

    def _count(self, terms: list[str]) -> _Candidates:
        other = len(self._column)
        columns = np.array([self._column.get(c, other) for t in terms for c in t], np.int64)
        lengths = np.fromiter(map(len, terms), np.int64, len(terms))
        rows = np.repeat(np.arange(len(terms)), lengths)
        flat = np.bincount(rows * (other + 1) + columns, minlength=len(terms) * (other + 1))
        counts = flat.reshape(len(terms), other + 1).astype(np.uint16)  # words < 65,536
        return _Candidates(terms, counts, lengths)
