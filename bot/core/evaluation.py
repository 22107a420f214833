"""The question sets, scored for the retriever and for a plain rank-bm25 baseline.

Two sets live beside the corpus. `eval.toml` is the tuning set, written from the
documents; retrieval was tuned on it, so it flatters. `heldout.toml` was written blind
(by someone who had read neither the documents nor the tuning set, the way members
type) and labelled afterwards: it tells how the bot does on questions it was not
tuned for. Both are always reported side by side.
"""

import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rank_bm25 import BM25Okapi

from bot.core import analysis
from bot.core.answer import PAGE_SIZE, answer_question
from bot.core.corpus import Corpus, CorpusError, inside, read_text
from bot.core.retrieval import Retriever

SETS = (("tuning", "eval.toml"), ("held-out", "heldout.toml"))


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    expect: tuple[str, ...]  # a correct passage contains one of these
    spoiler: bool  # answered only by spoiler passages


@dataclass(frozen=True)
class EvalSet:
    questions: tuple[EvalQuestion, ...]
    offtopic: tuple[str, ...]
    unanswerable: tuple[str, ...] = ()  # on-topic, but no passage answers them


@dataclass(frozen=True)
class Shown:
    """One passage a ranker shows: its text and whether the corpus marks it a spoiler."""

    text: str
    spoiler: bool


# A ranker: (question, spoilers allowed) -> (abstained, passages shown, best first).
Ranker = Callable[[str, bool], tuple[bool, Sequence[Shown]]]


@dataclass(frozen=True)
class EvalReport:
    questions: int
    hit_at_1: float
    hit_at_3: float
    mrr: float
    ontopic_abstained: int
    offtopic_abstained: int
    offtopic: int
    spoiler_leaks: int
    misses: tuple[str, ...]  # questions with no correct passage in the top 3
    unanswerable: int = 0
    unanswerable_abstained: int = 0

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("questions", f"{self.questions} on-topic, {self.offtopic} off-topic"),
            ("hit@1", f"{self.hit_at_1:.3f}"),
            ("hit@3", f"{self.hit_at_3:.3f}"),
            ("MRR", f"{self.mrr:.3f}"),
            ("off-topic", f"{self.offtopic_abstained}/{self.offtopic} abstained"),
            ("on-topic", f"{self.ontopic_abstained} abstained"),
            ("unanswerable", f"{self.unanswerable_abstained}/{self.unanswerable} abstained"),
            ("spoiler leaks", f"{self.spoiler_leaks}"),
        ]

    def lines(self) -> list[str]:
        return [f"{name:16} {value}" for name, value in self.rows()] + [
            f"  miss: {q}" for q in self.misses
        ]


def side_by_side(reports: Sequence[tuple[str, EvalReport]]) -> list[str]:
    """The sets' figures in columns, then each set's misses."""
    width = max(len(value) for _, r in reports for _, value in r.rows()) + 2
    lines = [f"{'':16}" + "".join(f"{name:{width}}" for name, _ in reports)]
    for n, (metric, _) in enumerate(reports[0][1].rows()):
        lines.append(f"{metric:16}" + "".join(f"{r.rows()[n][1]:{width}}" for _, r in reports))
    for name, report in reports:
        lines += [f"{name} miss: {q}" for q in report.misses]
    return lines


def load_eval_set(corpus_dir: Path, file: str = "eval.toml") -> EvalSet:
    path = Path(corpus_dir) / file
    if not path.is_file():
        raise CorpusError(f"{path} is missing: `eval` needs the corpus's question sets")
    try:
        data = tomllib.loads(read_text(inside(Path(corpus_dir), path, file)))
    except tomllib.TOMLDecodeError as exc:
        raise CorpusError(f"{path} is not valid TOML: {exc}") from None
    questions = tuple(
        EvalQuestion(q["q"], tuple(q["expect"]), bool(q.get("spoiler", False)))
        for q in data.get("question", [])
    )
    return EvalSet(
        questions,
        tuple(q["q"] for q in data.get("offtopic", [])),
        tuple(q["q"] for q in data.get("unanswerable", [])),
    )


def _contains(text: str, phrases: Sequence[str]) -> bool:
    norm = analysis.normalize(text)
    return any(analysis.normalize(p) in norm for p in phrases)


def evaluate(ranker: Ranker, eval_set: EvalSet) -> EvalReport:
    hits1 = hits3 = 0
    reciprocal = 0.0
    abstained = leaks = 0
    misses: list[str] = []
    twist_phrases = [p for q in eval_set.questions if q.spoiler for p in q.expect]
    for q in eval_set.questions:
        did_abstain, shown = ranker(q.question, q.spoiler)
        abstained += did_abstain
        rank = next((i for i, s in enumerate(shown, 1) if _contains(s.text, q.expect)), None)
        hits1 += rank == 1
        hits3 += rank is not None and rank <= PAGE_SIZE
        reciprocal += 1 / rank if rank else 0.0
        if rank is None or rank > PAGE_SIZE:
            misses.append(q.question)
    offtopic_abstained = 0
    asked = [q.question for q in eval_set.questions] + [*eval_set.offtopic, *eval_set.unanswerable]
    for question in asked:
        _, shown = ranker(question, False)
        leaks += sum(s.spoiler or _contains(s.text, twist_phrases) for s in shown[:PAGE_SIZE])
    for question in eval_set.offtopic:
        offtopic_abstained += ranker(question, False)[0]
    unanswerable_abstained = sum(ranker(q, True)[0] for q in eval_set.unanswerable)
    n = len(eval_set.questions) or 1
    return EvalReport(
        questions=len(eval_set.questions),
        hit_at_1=hits1 / n,
        hit_at_3=hits3 / n,
        mrr=reciprocal / n,
        ontopic_abstained=abstained,
        offtopic_abstained=offtopic_abstained,
        offtopic=len(eval_set.offtopic),
        spoiler_leaks=leaks,
        misses=tuple(misses),
        unanswerable=len(eval_set.unanswerable),
        unanswerable_abstained=unanswerable_abstained,
    )


def project_ranker(retriever: Retriever) -> Ranker:
    def rank(question: str, spoilers: bool) -> tuple[bool, Sequence[Shown]]:
        answer = answer_question(retriever, question, spoilers=spoilers)
        return answer.abstained, [Shown(p.chunk.text, p.spoiler) for p in answer.passages]

    return rank


def baseline_ranker(corpus: Corpus) -> Ranker:
    """Plain rank-bm25 as a newcomer would use it: BM25Okapi, str.split(), a chunk per line.

    It knows nothing of spoilers, so everything it shows counts as shown.
    """
    lines = [
        line for doc in corpus.documents for line in read_text(doc.path).split("\n") if line.strip()
    ]
    bm25 = BM25Okapi([line.split() for line in lines])

    def rank(question: str, spoilers: bool) -> tuple[bool, Sequence[Shown]]:
        scores = bm25.get_scores(question.split())
        order = np.argsort(-scores, kind="stable")[:10]
        shown = [Shown(lines[i], False) for i in order if scores[i] > 0]
        return not shown, shown

    return rank
