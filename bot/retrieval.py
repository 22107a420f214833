"""BM25 retrieval over corpus chunks: ranking, query expansion, abstention, highlights.

The ranking is defined by rank-bm25: `LuceneBM25` is its Okapi scoring with
Lucene's IDF. `PostingsIndex` computes exactly that function from per-term
postings in numpy, so a query costs what its terms' postings cost, not a Python
loop over every chunk (tests hold the two equal on random corpora).
"""

import difflib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from rank_bm25 import BM25Okapi

from bot import analysis
from bot.corpus import Chunk, Corpus, sentences

# Okapi's usual k1 and b; chosen with `python -m bot eval` over k1 in 0.9-1.5 and
# b in 0.4-0.75, where they sat on the plateau (see README, "Retrieval").
K1 = 1.2
B = 0.6


class LuceneBM25(BM25Okapi):
    """rank-bm25's BM25Okapi with Lucene's IDF, log(1 + (N - n + 0.5) / (n + 0.5)).

    BM25Okapi's own IDF is zero for a term in half the chunks and floored for more;
    in a corpus about one film that hits the heroines' names and the title. Lucene's
    IDF is always positive and always ranks a rarer term higher.
    """

    def __init__(self, corpus: Sequence[Sequence[str]], k1: float = K1, b: float = B) -> None:
        super().__init__(corpus, k1=k1, b=b, epsilon=0.0)

    def _calc_idf(self, nd: Mapping[str, int]) -> None:
        n = self.corpus_size
        self.idf = {w: math.log(1 + (n - df + 0.5) / (df + 0.5)) for w, df in nd.items()}


class PostingsIndex:
    """LuceneBM25's scores, precomputed per (term, chunk) into compact arrays."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = K1, b: float = B) -> None:
        n = len(docs)
        if n == 0:
            raise ValueError("cannot index an empty corpus")
        self.n_docs = n
        self.vocab: dict[str, int] = {}
        term_ids = np.fromiter(
            (self.vocab.setdefault(t, len(self.vocab)) for doc in docs for t in doc), np.int64
        )
        lengths = np.fromiter((len(doc) for doc in docs), np.float64, n)
        doc_of = np.repeat(np.arange(n, dtype=np.int64), lengths.astype(np.int64))
        # One sort groups the postings by term, then by chunk, and counts term frequencies.
        pairs, tf = np.unique(term_ids * n + doc_of, return_counts=True)
        term_of = pairs // n
        self.doc_ids = (pairs % n).astype(np.int32)
        df = np.bincount(term_of, minlength=len(self.vocab))
        self.offsets = np.concatenate(([0], np.cumsum(df)))
        self.idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avgdl = lengths.mean() or 1.0
        norm = k1 * (1 - b + b * lengths[self.doc_ids] / avgdl)
        self.weights = self.idf[term_of] * tf * (k1 + 1) / (tf + norm)
        self.max_idf = float(np.log1p((n + 0.5) / 0.5))  # a term no chunk has

    @property
    def nbytes(self) -> int:
        arrays = (self.doc_ids, self.weights, self.offsets, self.idf)
        return sum(a.nbytes for a in arrays)

    def term_idf(self, term: str) -> float:
        tid = self.vocab.get(term)
        return self.max_idf if tid is None else float(self.idf[tid])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        tid = self.vocab.get(term)
        if tid is None:
            return np.empty(0, np.int32), np.empty(0, np.float64)
        lo, hi = self.offsets[tid], self.offsets[tid + 1]
        return self.doc_ids[lo:hi], self.weights[lo:hi]

    def scores(self, query: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(chunk ids, scores) for every chunk with a query term; weight 1 = rank-bm25."""
        ids, weights = [], []
        for term, qw in query.items():
            t_ids, t_w = self.postings(term)
            ids.append(t_ids)
            weights.append(t_w * qw)
        if not ids:
            return np.empty(0, np.int32), np.empty(0, np.float64)
        chunk_ids, inverse = np.unique(np.concatenate(ids), return_inverse=True)
        return chunk_ids, np.bincount(inverse, weights=np.concatenate(weights))

    def top(self, query: Mapping[str, float], k: int) -> list[tuple[int, float]]:
        """The k best (chunk id, score), best first, ties by chunk id; zero scores dropped."""
        ids, scores = self.scores(query)
        keep = scores > 0
        ids, scores = ids[keep], scores[keep]
        if len(ids) > k:
            part = np.argpartition(-scores, k - 1)[:k]
            ids, scores = ids[part], scores[part]
        order = np.lexsort((ids, -scores))
        return [(int(ids[i]), float(scores[i])) for i in order]


# Query-side tuning, chosen per kind of question with `python -m bot eval`.
SYNONYM_WEIGHT = 0.5  # a synonym counts half as much as the member's own word
MIN_COVERAGE = 0.4  # share of the question's IDF mass the best passage must cover
RELATIVE_FLOOR = 0.3  # later passages must score this share of the best one
FUZZY_CUTOFF = 0.85  # difflib ratio for correcting a misspelt word to a corpus word


def _same_family(a: str, b: str) -> bool:
    """Stems of one word family that Porter2 keeps apart ("direct", "director")."""
    return len(a) >= 5 and len(b) >= 5 and (a.startswith(b) or b.startswith(a))


@dataclass(frozen=True)
class QueryWord:
    """One word of the question, with what it may match and how much it matters."""

    word: str
    alternatives: Mapping[str, float]  # term -> weight (1 for the word or its correction)
    idf: float


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    coverage: float
    highlight: str


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    abstained: bool
    words: tuple[QueryWord, ...]


class Retriever:
    """The corpus, indexed; answers a question with ranked, highlighted hits or abstains."""

    def __init__(self, corpus: Corpus, k1: float = K1, b: float = B) -> None:
        self.corpus = corpus
        self.index = PostingsIndex(
            [analysis.terms(f"{c.section or ''}\n{c.text}") for c in corpus.chunks], k1, b
        )
        # Each synonym group: the phrases that trigger it (stemmed words, stopwords kept,
        # so "how long" works) and the terms it adds to the query.
        self._synonyms = [
            (
                [tuple(analysis.words(member)) for member in group],
                {t for member in group for t in analysis.terms(member)},
            )
            for group in corpus.synonyms
        ]
        self._title = analysis.words(corpus.film)
        self._by_initial: dict[str, list[str]] = defaultdict(list)
        for term in self.index.vocab:
            self._by_initial[term[:1]].append(term)

    def _correct(self, term: str) -> str:
        """A corpus term close to an unknown one ("oshiyma" -> "oshiyama"), else itself."""
        if term in self.index.vocab or len(term) < 4:
            return term
        close = difflib.get_close_matches(term, self._by_initial[term[:1]], 1, FUZZY_CUTOFF)
        return close[0] if close else term

    def query(self, question: str) -> tuple[QueryWord, ...]:
        """The question's words, each corrected and expanded with its synonyms.

        A one-word synonym counts SYNONYM_WEIGHT, or fully when it is the same word
        family; a phrase ("how long", "box office") stands for its whole group fully.
        """
        terms = list(dict.fromkeys(analysis.terms(question)))
        # Every passage is about the film, so its title in a question says nothing.
        if analysis.contains_phrase(analysis.words(question), self._title):
            terms = [t for t in terms if t not in self._title] or terms
        corrected = {t: self._correct(t) for t in terms}
        sequence = [corrected.get(w, w) for w in analysis.words(question)]
        alternatives = {t: {corrected[t]: 1.0} for t in terms}
        for phrases, expansion in self._synonyms:
            for phrase in phrases:
                if not analysis.contains_phrase(sequence, list(phrase)):
                    continue
                for t in terms:
                    base = corrected[t]
                    if base not in phrase:
                        continue
                    for e in expansion - {base}:
                        weight = 1.0 if len(phrase) > 1 or _same_family(base, e) else SYNONYM_WEIGHT
                        alternatives[t][e] = max(alternatives[t].get(e, 0.0), weight)
        return tuple(
            QueryWord(t, alternatives[t], self._idf(corrected[t], alternatives[t])) for t in terms
        )

    def _idf(self, term: str, alternatives: Mapping[str, float]) -> float:
        """How much a question word matters: its own IDF, or its best known stand-in's."""
        known = [self.index.term_idf(t) for t in alternatives if t in self.index.vocab]
        if term in self.index.vocab or not known:
            return self.index.term_idf(term)
        return max(known)

    def search(self, question: str, limit: int) -> SearchResult:
        words = self.query(question)
        if not words:
            return SearchResult((), True, words)
        weights: dict[str, float] = {}
        for w in words:
            for term, weight in w.alternatives.items():
                weights[term] = max(weights.get(term, 0.0), weight)
        ranked = self.index.top(weights, limit)
        total_idf = sum(w.idf for w in words)
        hits: list[Hit] = []
        for chunk_id, score in ranked:
            chunk = self.corpus.chunks[chunk_id]
            coverage = self._coverage(words, chunk_id) / total_idf
            if hits and score < RELATIVE_FLOOR * hits[0].score:
                break
            hits.append(Hit(chunk, score, coverage, self._highlight(words, chunk)))
        abstained = not hits or max(h.coverage for h in hits) < MIN_COVERAGE
        return SearchResult(() if abstained else tuple(hits), abstained, words)

    def _coverage(self, words: Sequence[QueryWord], chunk_id: int) -> float:
        covered = 0.0
        for w in words:
            best = 0.0
            for term, weight in w.alternatives.items():
                ids, _ = self.index.postings(term)
                if weight > best and np.any(ids == chunk_id):
                    best = weight
            covered += best * w.idf
        return covered

    @staticmethod
    def _highlight(words: Sequence[QueryWord], chunk: Chunk) -> str:
        """The sentence of the chunk that matches the most question weight."""
        best, best_score = "", -1.0
        for sentence in sentences(chunk.text):
            present = set(analysis.terms(sentence))
            score = sum(
                max((wt for t, wt in w.alternatives.items() if t in present), default=0.0) * w.idf
                for w in words
            )
            if score > best_score:
                best, best_score = sentence, score
        return best
