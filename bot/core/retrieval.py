"""BM25 retrieval over corpus chunks: ranking, query expansion, abstention, highlights.

The ranking is defined by rank-bm25: `LuceneBM25` is its Okapi scoring with
Lucene's IDF. `PostingsIndex` computes exactly that function from per-term
postings in numpy, so a query costs what its terms' postings cost, not a Python
loop over every chunk (tests hold the two equal on random corpora). A who-question
then takes the passages that name someone first (`Retriever._names_first`).
"""

import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import chain
from operator import itemgetter
from typing import Literal, NamedTuple

import numpy as np
from rank_bm25 import BM25Okapi

from bot.core import analysis
from bot.core.corpus import Chunk, Corpus, ProgressFn, sentences
from bot.core.spelling import Speller

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


PYTHON_MERGE_MAX = 64  # postings; see PostingsIndex._strategy


class _WeightedPostings(NamedTuple):
    ids: np.ndarray
    weights: np.ndarray
    query_weight: float

    def scores(self) -> np.ndarray:
        """What the term adds to each of its chunks' scores."""
        return self.weights if self.query_weight == 1.0 else self.weights * self.query_weight


class PostingsIndex:
    """LuceneBM25's scores, precomputed per (term, chunk) into compact arrays.

    Term id t (its place in `vocab`) has postings doc_ids[offsets[t]:offsets[t + 1]],
    chunk ids ascending, with their BM25 weights; `idf[t]` is its IDF.
    """

    def __init__(
        self,
        terms: Sequence[str],
        offsets: np.ndarray,
        doc_ids: np.ndarray,
        weights: np.ndarray,
        idf: np.ndarray,
        n_docs: int,
    ) -> None:
        self.vocab = {t: i for i, t in enumerate(terms)}
        self.offsets, self.doc_ids, self.weights, self.idf = offsets, doc_ids, weights, idf
        self.n_docs = n_docs
        self.max_idf = float(np.log1p((n_docs + 0.5) / 0.5))  # a term no chunk has

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]], k1: float = K1, b: float = B) -> "PostingsIndex":
        """Index tokenized chunks; chunk ids are their places in `docs`."""
        n = len(docs)
        if n == 0:
            raise ValueError("cannot index an empty corpus")
        # Term ids in order of first appearance; a new term's id is the vocabulary's size.
        # (map over a defaultdict runs in C: twice as fast as a generator here.)
        vocab: defaultdict[str, int] = defaultdict()
        vocab.default_factory = vocab.__len__
        term_ids = np.fromiter(map(vocab.__getitem__, chain.from_iterable(docs)), np.int32)
        lengths = np.fromiter((len(doc) for doc in docs), np.int64, n)
        # Sort (term, chunk) keys: postings grouped by term, chunks ascending, and
        # repeats of a term in a chunk side by side, so runs are term frequencies.
        # Steps are ordered to free each big array early (100k chunks: ~8M keys).
        keys = term_ids.astype(np.int64)
        del term_ids
        keys *= n
        keys += np.repeat(np.arange(n, dtype=np.int32), lengths)
        keys.sort()
        run_start = np.empty(len(keys), dtype=bool)
        run_start[:1] = True
        np.not_equal(keys[1:], keys[:-1], out=run_start[1:])
        starts = np.flatnonzero(run_start)
        del run_start
        unique_keys = keys[starts]
        total = len(keys)
        del keys
        tf = np.empty(len(starts))
        np.subtract(starts[1:], starts[:-1], out=tf[:-1], casting="unsafe")
        tf[-1:] = total - starts[-1:]
        del starts
        term_of = (unique_keys // n).astype(np.int32)
        doc_ids = (unique_keys % n).astype(np.int32)
        del unique_keys
        df = np.bincount(term_of, minlength=len(vocab))
        offsets = np.concatenate(([0], np.cumsum(df)))
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        avgdl = float(lengths.mean()) or 1.0
        norm = k1 * (1 - b + b * lengths[doc_ids] / avgdl)
        tf *= k1 + 1
        tf /= (tf / (k1 + 1)) + norm
        tf *= idf[term_of]
        return cls(list(vocab), offsets, doc_ids, tf, idf, n)

    def term_idf(self, term: str) -> float:
        tid = self.vocab.get(term)
        return self.max_idf if tid is None else float(self.idf[tid])

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        tid = self.vocab.get(term)
        if tid is None:
            return np.empty(0, np.int32), np.empty(0, np.float64)
        lo, hi = self.offsets[tid], self.offsets[tid + 1]
        return self.doc_ids[lo:hi], self.weights[lo:hi]

    def top(self, query: Mapping[str, float], k: int) -> list[tuple[int, float]]:
        """The k best (chunk id, score), best first, ties by chunk id; zero scores dropped.

        Every strategy adds a chunk's weights in the query's term order, so all give
        the same floats (tests hold each to rank-bm25).
        """
        postings = self._postings(query)
        strategy = self._strategy(postings)
        if strategy == "python":
            return _top_merged_in_python(postings, k)
        ids, scores = _summed(postings, self.n_docs, strategy)
        floor = np.finfo(float).tiny  # zero scores are dropped
        if len(scores) > k:
            # Keep every chunk tied with the k-th score, so ties break by id as rank-bm25's do.
            floor = max(floor, np.partition(scores, len(scores) - k)[len(scores) - k])
        keep = np.flatnonzero(scores >= floor)
        ids, scores = ids[keep], scores[keep]
        order = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in order]

    def _postings(self, query: Mapping[str, float]) -> list[_WeightedPostings]:
        """Each query term's postings with its query weight; terms no chunk has left out."""
        postings = [_WeightedPostings(*self.postings(t), qw) for t, qw in query.items()]
        return [p for p in postings if len(p.ids)]

    def _strategy(
        self, postings: Sequence[_WeightedPostings]
    ) -> Literal["python", "merge", "dense"]:
        """How to add up the postings, so a query costs what its postings cost.

        Up to PYTHON_MERGE_MAX are merged in plain Python: numpy's fixed cost, ~22 µs
        a query, is more than such a merge (11 µs at 16 postings). The two break even
        near 50 postings of distinct chunks, later when postings share chunks, as on a
        small corpus. More are merged by numpy; when they cover a good share of the
        corpus, adding them into one dense array is cheaper than merging.
        """
        total = sum(len(p.ids) for p in postings)
        if total <= PYTHON_MERGE_MAX:
            return "python"
        return "merge" if total * 8 < self.n_docs else "dense"


def _summed(
    postings: Sequence[_WeightedPostings], n_docs: int, strategy: Literal["merge", "dense"]
) -> tuple[np.ndarray, np.ndarray]:
    """(chunk ids, scores) of the chunks the postings touch.

    bincount adds each chunk's weights in input order, so in the query's term order.
    "merge" first numbers the touched chunks (a sort of the postings); "dense" adds
    into a slot per chunk (a pass over the corpus), three times as fast as adding term
    by term, then drops the untouched ones before top() partitions: np.partition slows
    10-40x on an array of mostly equal zeros (13 ms instead of 0.7 ms at 100k chunks).
    """
    ids = np.concatenate([p.ids for p in postings])
    weights = np.concatenate([p.scores() for p in postings])
    if strategy == "merge":
        touched, slots = np.unique(ids, return_inverse=True)
        return touched, np.bincount(slots, weights=weights)
    dense = np.bincount(ids, weights=weights, minlength=n_docs)
    touched = np.flatnonzero(dense)
    return touched, dense[touched]


def _top_merged_in_python(postings: Sequence[_WeightedPostings], k: int) -> list[tuple[int, float]]:
    scores: dict[int, float] = {}
    for p in postings:
        # Weighting here, not with p.scores(): the same float product without numpy's
        # fixed cost, which was a fifth of this merge.
        qw = p.query_weight
        for chunk_id, weight in zip(p.ids.tolist(), p.weights.tolist(), strict=True):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * qw
    # Best first, ties by chunk id: sorting (-score, id) pairs compares in C.
    best = sorted((-score, chunk_id) for chunk_id, score in scores.items() if score > 0.0)
    return [(chunk_id, -negated) for negated, chunk_id in best[:k]]


# Query-side tuning, chosen per kind of question with `python -m bot eval`.
SYNONYM_WEIGHT = 0.5  # a synonym counts half as much as the member's own word
MIN_COVERAGE = 0.4  # share of the question's IDF mass the best passage must cover
RELATIVE_FLOOR = 0.3  # later passages must score this share of the best one
FUZZY_CUTOFF = 0.85  # difflib ratio for correcting a misspelt word to a corpus word


def _same_family(a: str, b: str) -> bool:
    """Stems of one word family that Porter2 keeps apart ("direct", "director")."""
    return len(a) >= 5 and len(b) >= 5 and (a.startswith(b) or b.startswith(a))


class QueryWord(NamedTuple):
    """One word of the question, with what it may match and how much it matters."""

    word: str
    alternatives: Mapping[str, float]  # term -> weight (1 for the word or its correction)
    idf: float
    heaviest_first: tuple[tuple[str, float], ...]  # the alternatives, for coverage

    @classmethod
    def of(cls, word: str, alternatives: Mapping[str, float], idf: float) -> "QueryWord":
        heaviest_first = sorted(alternatives.items(), key=itemgetter(1), reverse=True)
        return cls(word, alternatives, idf, tuple(heaviest_first))


class _Synonym(NamedTuple):
    """A synonym phrase (stemmed words, stopwords kept), and what its group adds to a
    question word that is one of the phrase's words: (term, weight), sorted by term
    so that every process adds the same floats in the same order."""

    phrase: tuple[str, ...]
    adds: Mapping[str, tuple[tuple[str, float], ...]]

    @classmethod
    def of(cls, phrase: tuple[str, ...], group_terms: frozenset[str]) -> "_Synonym":
        """A one-word synonym counts SYNONYM_WEIGHT, or fully when it is the same word
        family; a phrase ("how long", "box office") stands for its whole group fully."""
        adds = {
            base: tuple(
                (t, 1.0 if len(phrase) > 1 or _same_family(base, t) else SYNONYM_WEIGHT)
                for t in sorted(group_terms - {base})
            )
            for base in phrase
        }
        return cls(phrase, adds)


def _matched_weight(words: Sequence[QueryWord], present: frozenset[str]) -> float:
    """The question's IDF weight that `present` terms cover (a synonym counts its weight)."""
    total = 0.0
    for w in words:  # plain loops: this runs for every sentence of every hit
        for term, weight in w.heaviest_first:  # the first one present is the best
            if term in present:
                total += weight * w.idf
                break
    return total


class Hit(NamedTuple):
    """A ranked chunk. Up to ten per question: a NamedTuple is made in 40% of the time
    of a frozen dataclass."""

    chunk: Chunk
    score: float
    coverage: float
    highlight: str


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    abstained: bool


def index_terms(chunk: Chunk) -> list[str]:
    """A chunk's terms as indexed: its heading's, then its text's."""
    return analysis.terms(chunk.section or "") + analysis.terms(chunk.text)


PROGRESS_EVERY = 1000  # chunks analysed between progress reports


def _all_index_terms(chunks: Sequence[Chunk], progress: ProgressFn | None) -> list[list[str]]:
    docs = []
    for n, chunk in enumerate(chunks, 1):
        docs.append(index_terms(chunk))
        if progress and (n % PROGRESS_EVERY == 0 or n == len(chunks)):
            progress("analysing passages", n, len(chunks))
    return docs


class _HitAnalysis(NamedTuple):
    terms: frozenset[str]
    sentences: tuple[tuple[str, frozenset[str]], ...]  # each with its terms, for highlights


def _analyse_hit(chunks: Sequence[Chunk], chunk_id: int) -> _HitAnalysis:
    chunk = chunks[chunk_id]
    per_sentence = tuple((s, frozenset(analysis.terms(s))) for s in sentences(chunk.text))
    return _HitAnalysis(frozenset(index_terms(chunk)), per_sentence)


@lru_cache(maxsize=4096)
def _names_in(sentence: str) -> tuple[frozenset[str], ...]:
    """A highlight's names, found only for who-questions: finding them costs more than
    a sentence's terms, and most questions never look."""
    return tuple(analysis.names(sentence))


class Retriever:
    """The corpus, indexed; answers a question with ranked, highlighted hits or abstains.

    `index` is the corpus's PostingsIndex when it was built already (from a cache).
    """

    def __init__(
        self,
        corpus: Corpus,
        k1: float = K1,
        b: float = B,
        *,
        index: PostingsIndex | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        self.corpus = corpus
        if index is None:
            index = PostingsIndex.build(_all_index_terms(corpus.chunks, progress), k1, b)
        self.index = index
        # Hits are analysed when first needed rather than every chunk at start-up
        # (100k chunks would hold ~1 GB of it). Keyed by chunk id, and bound to the
        # chunks rather than to self: no reference cycle keeps a replaced index alive.
        self._hit_analysis = lru_cache(maxsize=4096)(partial(_analyse_hit, corpus.chunks))
        self._speller = Speller(self.index.vocab, FUZZY_CUTOFF)
        # Each synonym phrase (stopwords kept, so "how long" works), filed under its first word.
        self._synonyms: dict[str, list[_Synonym]] = defaultdict(list)
        for group in corpus.synonyms:
            group_terms = frozenset(t for member in group for t in analysis.terms(member))
            for member in group:
                phrase = tuple(analysis.words(member))
                if phrase:
                    self._synonyms[phrase[0]].append(_Synonym.of(phrase, group_terms))
        self._title = analysis.words(corpus.film)
        self.spoiler_only = _spoiler_only_terms(self.index, corpus.chunks)

    def mentions_spoilers(self, question: str) -> bool:
        """Whether echoing the question could spoil: it holds a spoiler phrase (found as
        in chunks), a word the corpus uses only in spoiler passages ("karate"), even
        misspelt, or the member's own spoiler tags."""
        if "||" in question or self.corpus.spoiler_group(question):
            return True
        terms = analysis.terms(question)
        corrected = self._corrections(terms)
        return any(t in self.spoiler_only or corrected[t] in self.spoiler_only for t in terms)

    def _corrections(self, terms: Sequence[str]) -> dict[str, str]:
        """Each term, or for one the corpus lacks the corpus term closest to it
        ("oshiyma" -> "oshiyama"), with the work per question bounded."""
        vocab = self.index.vocab
        corrected = self._speller.correct_all(t for t in terms if t not in vocab)
        return {t: corrected.get(t, t) for t in terms}

    def query(self, question: str) -> tuple[QueryWord, ...]:
        """The question's words, each corrected and expanded with its synonyms."""
        terms = list(dict.fromkeys(analysis.terms(question)))
        words = analysis.words(question)
        # Every passage is about the film, so its title in a question says nothing.
        if analysis.contains_phrase(words, self._title):
            terms = [t for t in terms if t not in self._title] or terms
        corrected = self._corrections(terms)
        sequence = [corrected.get(w, w) for w in words]
        present = set(sequence)
        alternatives = {t: {corrected[t]: 1.0} for t in terms}
        triggered = (p for word in dict.fromkeys(sequence) for p in self._synonyms.get(word, ()))
        for phrase, adds in triggered:
            if not present.issuperset(phrase):
                continue
            if len(phrase) > 1 and not analysis.contains_phrase(sequence, list(phrase)):
                continue
            for t in terms:
                for e, weight in adds.get(corrected[t], ()):
                    alternatives[t][e] = max(alternatives[t].get(e, 0.0), weight)
        return tuple(
            QueryWord.of(t, alternatives[t], self._idf(corrected[t], alternatives[t]))
            for t in terms
        )

    def _idf(self, term: str, alternatives: Mapping[str, float]) -> float:
        """How much a question word matters: its own IDF, or its best known stand-in's."""
        if term in self.index.vocab:
            return self.index.term_idf(term)
        known = [self.index.term_idf(t) for t in alternatives if t in self.index.vocab]
        return max(known) if known else self.index.term_idf(term)

    def search(self, question: str, limit: int) -> SearchResult:
        words = self.query(question)
        if not words:
            return SearchResult((), True)
        weights: dict[str, float] = {}
        for w in words:
            for term, weight in w.alternatives.items():
                weights[term] = max(weights.get(term, 0.0), weight)
        ranked = self.index.top(weights, limit)
        total_idf = sum(w.idf for w in words)
        query_terms = frozenset(weights)
        hits: list[Hit] = []
        for chunk_id, score in ranked:
            if hits and score < RELATIVE_FLOOR * hits[0].score:
                break
            analysed = self._hit_analysis(chunk_id)
            coverage = _matched_weight(words, analysed.terms) / total_idf
            chunk = self.corpus.chunks[chunk_id]
            hits.append(Hit(chunk, score, coverage, _highlight(words, query_terms, analysed)))
        if not hits or max(h.coverage for h in hits) < MIN_COVERAGE:
            return SearchResult((), True)
        if _WHO.search(analysis.normalize(question)):
            hits = self._names_first(hits, query_terms)
        return SearchResult(tuple(hits), False)

    def _names_first(self, hits: list[Hit], query_terms: frozenset[str]) -> list[Hit]:
        """A who-question wants a name: hits whose highlight gives one go first, each
        group still best first. BM25 alone ranks a paragraph that says "the director"
        four times above the credits line "Director: Kiyotaka Oshiyama".

        A name sharing a word with the question or the title is what was asked about,
        not an answer ("who made Chainsaw Man", "Smash Hit Score" for "who did the score").
        """
        asked = query_terms.union(self._title)
        named: list[Hit] = []
        unnamed: list[Hit] = []
        for hit in hits:
            names = _names_in(hit.highlight)
            (named if any(map(asked.isdisjoint, names)) else unnamed).append(hit)
        return named + unnamed


def _spoiler_only_terms(index: PostingsIndex, chunks: Sequence[Chunk]) -> frozenset[str]:
    """The terms every one of whose chunks is a spoiler."""
    spoiler = np.fromiter((c.is_spoiler for c in chunks), bool, len(chunks))
    if not spoiler.any():
        return frozenset()
    only = np.logical_and.reduceat(spoiler[index.doc_ids], index.offsets[:-1])
    terms = list(index.vocab)
    return frozenset(terms[i] for i in np.flatnonzero(only))


_WHO = re.compile(r"\bwho(?:m|se|'?s)?\b")  # who, whom, whose, who's, whos


def _highlight(
    words: Sequence[QueryWord], query_terms: frozenset[str], analysed: _HitAnalysis
) -> str:
    """The sentence of the chunk that matches the most question weight."""
    best, best_score = "", -1.0
    for sentence, present in analysed.sentences:
        # Half the sentences of a hit share no term with the question: a set check
        # in C is enough for them (highlighting took 40% less time on the eval set).
        score = 0.0 if query_terms.isdisjoint(present) else _matched_weight(words, present)
        if score > best_score:
            best, best_score = sentence, score
    return best
