"""Hybrid retrieval over corpus chunks: query analysis, fusion, abstention, highlights.

The lexical half is BM25 (`bot.core.lexical`) over the question's words, corrected
and expanded with the manifest's synonyms; the semantic half is each chunk's cosine
to the question (`bot.core.semantic`). Their scores are fused, and the bot abstains
only when both are weak. A question that asks for a name, a runtime, a date or an
amount then takes the passages whose best sentence gives one first.
"""

import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from bot.core import analysis
from bot.core.corpus import Chunk, Corpus, ProgressFn, sentences
from bot.core.embedding import Embedder
from bot.core.figures import KINDS
from bot.core.lexical import K1, B, PostingsIndex
from bot.core.semantic import DenseIndex
from bot.core.spelling import Speller

# Tuning, chosen per kind of question with `python -m bot eval` on the tuning set and
# checked on the held-out set (README, "Retrieval").
SYNONYM_WEIGHT = 0.5  # a synonym counts half as much as the member's own word
MIN_COVERAGE = 0.4  # share of the question's IDF mass a passage must cover (lexical)
MIN_SIMILARITY = 0.24  # cosine a passage must reach (semantic); below both: "I don't know"
# Semantic similarity alone tells a question about the film from an off-topic one poorly
# (both sit near 0.3): an answer resting on a cosine under this is shown to the asker
# alone, marked as a guess, not posted in the channel.
CONFIDENT_SIMILARITY = 0.35
RELATIVE_FLOOR = 0.3  # later passages must score this share of the best one
FUZZY_CUTOFF = 0.85  # difflib ratio for correcting a misspelt word to a corpus word
LEXICAL_SHARE = 0.6  # BM25's weight in the fused score, the rest is the cosine's
CANDIDATES = 50  # chunks each half proposes for fusion
ANSWER_KIND_FLOOR = 0.4  # share of the best score a passage needs to lead on its answer kind


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
    highlight: str
    answers_kind: bool = False  # its highlight gives the kind of answer asked for


class View(NamedTuple):
    """What one kind of member may be shown: hits in the order to show them."""

    hits: tuple[Hit, ...]
    abstained: bool  # neither half found the question answered
    confident: bool  # a strong signal, not just one above the abstention floor


@dataclass(frozen=True)
class SearchResult:
    """A question searched twice over: for a member who may see spoilers, and as if the
    spoiler passages did not exist. A reply to a member without spoilers comes from the
    second alone, so nothing the channel sees (whether the bot answers, how surely, how
    many passages, in which order) depends on the passages withheld from it."""

    everything: View
    spoiler_free: View

    def view(self, spoilers: bool) -> View:
        return self.everything if spoilers else self.spoiler_free


def index_terms(chunk: Chunk) -> list[str]:
    """A chunk's terms as indexed: its heading's, then its text's."""
    return analysis.terms(chunk.section or "") + analysis.terms(chunk.text)


PROGRESS_EVERY = 1000  # chunks analysed between progress reports


def all_index_terms(chunks: Sequence[Chunk], progress: ProgressFn | None) -> list[list[str]]:
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


class Semantic(NamedTuple):
    """The semantic half: the model, and the chunks' (and their sentences') vectors."""

    embedder: Embedder
    dense: DenseIndex

    def embed(self, question: str) -> np.ndarray:
        return self.embedder.embed([question])[0]


class Retriever:
    """The corpus, indexed; answers a question with ranked, highlighted hits or abstains.

    BM25 over the postings is the lexical half; with `semantic`, each chunk's cosine
    to the question is the semantic half, and the two are fused. `index` is the
    corpus's PostingsIndex when it was built already (from a cache).
    """

    def __init__(
        self,
        corpus: Corpus,
        k1: float = K1,
        b: float = B,
        *,
        index: PostingsIndex | None = None,
        semantic: Semantic | None = None,
        english: frozenset[str] = frozenset(),
    ) -> None:
        self.corpus = corpus
        self.key = ""  # what the corpus was built from (index_cache), to tell corpora apart
        if index is None:
            index = PostingsIndex.build(all_index_terms(corpus.chunks, None), k1, b)
        self.index = index
        self.semantic = semantic
        # Hits are analysed when first needed rather than every chunk at start-up
        # (100k chunks would hold ~1 GB of it). Keyed by chunk id, and bound to the
        # chunks rather than to self: no reference cycle keeps a replaced index alive.
        self._hit_analysis = lru_cache(maxsize=4096)(partial(_analyse_hit, corpus.chunks))
        # An ordinary English word the corpus lacks is not a typo of a corpus word:
        # "main" must not become "min" ("what are the main themes").
        self._speller = Speller(self.index.vocab, FUZZY_CUTOFF, keep=english)
        # Each synonym phrase (stopwords kept, so "how long" works), filed under its first word.
        self._synonyms: dict[str, list[_Synonym]] = defaultdict(list)
        for group in corpus.synonyms:
            group_terms = frozenset(t for member in group for t in analysis.terms(member))
            for member in group:
                phrase = tuple(analysis.words(member))
                if phrase:
                    self._synonyms[phrase[0]].append(_Synonym.of(phrase, group_terms))
        self._title = analysis.words(corpus.film)
        # The film's title as a member may type it ("look back", "Look-Back!"): its words
        # in any case, anything but a word between them, and no word run on either side.
        title_words = re.findall(r"\w+", corpus.film)
        title_pattern = r"(?<!\w)" + r"\W+".join(map(re.escape, title_words)) + r"(?!\w)"
        self._title_text = re.compile(title_pattern, re.IGNORECASE) if title_words else None
        self._free = np.fromiter((not c.is_spoiler for c in corpus.chunks), bool)
        self._n_spoilers = int((~self._free).sum())
        self.spoiler_only = _spoiler_only_terms(self.index, ~self._free)

    @property
    def mode(self) -> str:
        return "hybrid" if self.semantic else "lexical"

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

    def _for_embedding(self, question: str) -> str:
        """The question as the semantic half reads it, for ranking, abstention, confidence
        and highlights alike: the title stands as "it", unless only stopwords would be
        left ("what's Look Back about" keeps it). Every passage is about the film, so the
        title says nothing there either, yet its words drew the cosine to the passages
        that repeat it most: "Who directed Look Back?" led with an awards paragraph, "Who
        directed it?" with the credits line. The title's words used as words ("why does
        she look back") are read as "it" too, as the lexical half drops them: measured,
        docs/retrieval.md."""
        if self._title_text is None:
            return question
        replaced = self._title_text.sub("it", question)
        return replaced if analysis.terms(replaced) else question

    def _idf(self, term: str, alternatives: Mapping[str, float]) -> float:
        """How much a question word matters: its own IDF, or its best known stand-in's."""
        if term in self.index.vocab:
            return self.index.term_idf(term)
        known = [self.index.term_idf(t) for t in alternatives if t in self.index.vocab]
        return max(known) if known else self.index.term_idf(term)

    def search(self, question: str, limit: int) -> SearchResult:
        words = self.query(question)
        weights: dict[str, float] = {}
        for w in words:
            for term, weight in w.alternatives.items():
                weights[term] = max(weights.get(term, 0.0), weight)
        # Enough lexical candidates that those without spoilers number CANDIDATES too.
        lexical = self.index.top(weights, CANDIDATES + self._n_spoilers) if weights else []
        question_vector = cosines = nearest = None
        if self.semantic:
            question_vector = self.semantic.embed(self._for_embedding(question))
            cosines = self.semantic.dense.cosines(question_vector)
            # Likewise, nearest first, enough that those without spoilers number CANDIDATES.
            nearest = self.semantic.dense.top(cosines, CANDIDATES + self._n_spoilers)
            nearest = nearest[np.argsort(-cosines[nearest], kind="stable")]
        terms = frozenset(weights)
        wanted = self._answer_kind(question, terms)
        found = _Found(
            words, weights, terms, wanted, lexical, question_vector, cosines, nearest, {}
        )
        # The spoiler-free view first: the best sentences it picks are shared with the
        # other view, so they are picked as if spoiler passages did not exist.
        spoiler_free = self._view(found, limit, self._free)
        return SearchResult(self._view(found, limit, None), spoiler_free)

    def _view(self, found: "_Found", limit: int, allowed: np.ndarray | None) -> View:
        """The hits among the chunks `allowed` (all when None), as if no other existed."""
        words = found.words
        if allowed is not None:
            # A word only withheld passages have counts as one no passage has.
            words = tuple(
                w if any(map(self._visible, w.alternatives)) else w._replace(idf=self.index.max_idf)
                for w in words
            )
        ask = _Ask(words, found.terms, sum(w.idf for w in words))
        lexical = [(i, s) for i, s in found.lexical if allowed is None or allowed[i]]
        lexical = lexical[:CANDIDATES]
        covered = max((self._coverage(ask, i) for i, _ in lexical[:limit]), default=0.0)
        if found.cosines is None or found.nearest is None:
            ranked = lexical
            answerable = confident = covered >= MIN_COVERAGE
        else:
            nearest = found.nearest if allowed is None else found.nearest[allowed[found.nearest]]
            nearest = nearest[:CANDIDATES]
            ranked = _fused(self.index, found.weights, lexical, found.cosines, nearest)
            similarity = float(found.cosines[nearest[0]]) if len(nearest) else -1.0
            answerable = covered >= MIN_COVERAGE or similarity >= MIN_SIMILARITY
            confident = covered >= MIN_COVERAGE or similarity >= CONFIDENT_SIMILARITY
        if not ranked or not answerable:
            return View((), True, False)
        wanted = found.wanted
        best = ranked[0][1]
        hits = []
        for chunk_id, score in ranked[:limit]:
            if score < RELATIVE_FLOOR * best:  # later passages must be this good
                break
            if chunk_id not in found.highlights:  # one best sentence a passage, in both views
                highlight = self._highlight(ask, chunk_id, found.question_vector)
                found.highlights[chunk_id] = (highlight, wanted is not None and wanted(highlight))
            highlight, answers_kind = found.highlights[chunk_id]
            chunk = self.corpus.chunks[chunk_id]
            hits.append(Hit(chunk, score, highlight, answers_kind))
        # Of the passages that answer well, those whose best sentence gives the kind of
        # answer asked for (a name for "who", a runtime for "how long"...) go first, each
        # group still best first: BM25 alone ranked a paragraph that says "the director"
        # four times above the credits line "Director: Kiyotaka Oshiyama"; for "how long
        # is it" a remark on the pacing led before "58 min".
        first: list[Hit] = []
        rest: list[Hit] = []
        for h in hits:
            (first if h.answers_kind and h.score >= ANSWER_KIND_FLOOR * best else rest).append(h)
        return View((*first, *rest), False, confident)

    def _visible(self, term: str) -> bool:
        return term in self.index.vocab and term not in self.spoiler_only

    def _answer_kind(self, question: str, asked: frozenset[str]) -> Callable[[str], bool] | None:
        """What a sentence must hold to answer the question, by its question words: a name
        for "who", a runtime for "how long", a date for "when", money for "how much";
        None when the question words ask for none of these."""
        folded = analysis.normalize(question)
        if _WHO.search(folded):
            # A name sharing a word with the question or the title is what was asked
            # about, not an answer ("who made Chainsaw Man", "Smash Hit Score").
            known = asked.union(self._title)
            return lambda sentence: any(map(known.isdisjoint, _names_in(sentence)))
        for pattern, kind in _FIGURE_QUESTIONS:
            if pattern.search(folded):
                return partial(_states, kind)
        return None

    def _coverage(self, ask: "_Ask", chunk_id: int) -> float:
        if not ask.total_idf:
            return 0.0
        return _matched_weight(ask.words, self._hit_analysis(chunk_id).terms) / ask.total_idf

    def _highlight(self, ask: "_Ask", chunk_id: int, question_vector: np.ndarray | None) -> str:
        """The sentence of the chunk that best answers: the question weight it matches
        and, with the semantic half, its similarity to the question, half and half."""
        analysed = self._hit_analysis(chunk_id)
        lexical = [
            0.0
            if ask.terms.isdisjoint(present) or not ask.total_idf
            # Half the sentences of a hit share no term with the question: a set check
            # in C is enough for them.
            else _matched_weight(ask.words, present) / ask.total_idf
            for _, present in analysed.sentences
        ]
        scores = np.array(lexical)
        vectors = self.semantic.dense.sentences if self.semantic else None
        if question_vector is not None and vectors is not None:
            cosines = vectors.of(chunk_id) @ question_vector
            scores = LEXICAL_SHARE * scores + (1 - LEXICAL_SHARE) * cosines
        return analysed.sentences[int(np.argmax(scores))][0] if len(scores) else ""


class _Ask(NamedTuple):
    words: tuple[QueryWord, ...]
    terms: frozenset[str]  # every term of the BM25 query
    total_idf: float


class _Found(NamedTuple):
    """What one search works out once, for both of its views."""

    words: tuple[QueryWord, ...]
    weights: dict[str, float]  # term -> its weight in the BM25 query
    terms: frozenset[str]  # the same terms, as a set
    wanted: Callable[[str], bool] | None  # what a best sentence must give (_answer_kind)
    lexical: list[tuple[int, float]]  # BM25's best candidates over every chunk
    question_vector: np.ndarray | None
    cosines: np.ndarray | None  # every chunk's cosine to the question
    nearest: np.ndarray | None  # the chunks of the highest cosines, highest first
    highlights: dict[int, tuple[str, bool]]  # chunk id -> (best sentence, answers the kind)


def _fused(
    index: PostingsIndex,
    weights: Mapping[str, float],
    lexical: Sequence[tuple[int, float]],
    cosines: np.ndarray,
    nearest: np.ndarray,
) -> list[tuple[int, float]]:
    """Candidates from both halves (BM25's best, the `nearest` by cosine), each half's
    scores scaled to 0-1 over them, then weighted LEXICAL_SHARE : 1 - LEXICAL_SHARE;
    best first, ties by chunk id.

    BM25 is scaled by its best candidate (zero stays zero: no term matched), cosine
    from the lowest candidate to the highest, so each half spans the same range
    whatever the question.
    """
    ids = np.union1d(np.fromiter((i for i, _ in lexical), np.int64, len(lexical)), nearest)
    bm25 = index.scores_for(weights, ids) if weights else np.zeros(len(ids))
    near = cosines[ids].astype(np.float64)
    low, high = near.min(), near.max()
    semantic = (near - low) / (high - low) if high > low else np.ones(len(ids))
    lexical_part = bm25 / bm25.max() if bm25.max() > 0 else bm25
    fused = LEXICAL_SHARE * lexical_part + (1 - LEXICAL_SHARE) * semantic
    order = np.lexsort((ids, -fused))
    return [(int(ids[i]), float(fused[i])) for i in order]


def _spoiler_only_terms(index: PostingsIndex, spoiler: np.ndarray) -> frozenset[str]:
    """The terms every one of whose chunks is a spoiler (`spoiler`: per chunk)."""
    if not spoiler.any():
        return frozenset()
    only = np.logical_and.reduceat(spoiler[index.doc_ids], index.offsets[:-1])
    terms = list(index.vocab)
    return frozenset(terms[i] for i in np.flatnonzero(only))


_WHO = re.compile(r"\bwho(?:m|se|'?s)?\b")  # who, whom, whose, who's, whos
# Question words that ask for a figure, and its kind (bot.core.figures).
_FIGURE_QUESTIONS = (
    (re.compile(r"\bhow long\b"), "runtime"),
    (re.compile(r"\bwhen\b|\bwhat (?:year|date|day)\b"), "date"),
    (re.compile(r"\bhow much\b"), "money"),
)


def _states(kind: str, sentence: str) -> bool:
    return KINDS[kind].search(sentence) is not None
