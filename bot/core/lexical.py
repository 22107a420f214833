"""BM25 over chunk terms, as rank-bm25 defines it, computed from postings.

The ranking is defined by rank-bm25: `LuceneBM25` is its Okapi scoring with
Lucene's IDF. `PostingsIndex` computes exactly that function from per-term
postings in numpy, so a query costs what its terms' postings cost, not a Python
loop over every chunk (tests hold the two equal on random corpora).
"""

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Literal, NamedTuple

import numpy as np
from rank_bm25 import BM25Okapi

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

    def check(self) -> "PostingsIndex":
        """Itself, if its arrays fit together (for an index read back from a file)."""
        n_terms = len(self.vocab)
        offsets, doc_ids = self.offsets, self.doc_ids
        if (
            len(self.vocab) != len(self.idf)
            or offsets.shape != (n_terms + 1,)
            or offsets[0] != 0
            or (np.diff(offsets) < 0).any()
            or offsets[-1] != len(doc_ids)
            or len(self.weights) != len(doc_ids)
            or (len(doc_ids) and not 0 <= doc_ids.min() <= doc_ids.max() < self.n_docs)
            or not np.isfinite(self.weights).all()
        ):
            raise ValueError("the postings do not fit together")
        return self

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

    def scores_for(self, query: Mapping[str, float], ids: np.ndarray) -> np.ndarray:
        """The BM25 scores of the chunks `ids` (sorted ascending), zero where none match.

        For the semantic half's candidates that the lexical top-k left out; each term
        adds its weights in query order, as `top` does, so the floats agree.
        """
        scores = np.zeros(len(ids))
        for p in self._postings(query):
            at = np.searchsorted(p.ids, ids)
            found = at < len(p.ids)
            found[found] = p.ids[at[found]] == ids[found]
            scores[found] += p.scores()[at[found]]
        return scores

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
