"""Quality floors on both question sets: the tuning set (corpus/eval.toml) and the set
written blind (corpus/heldout.toml). The floors sit just under today's figures, so a
change that makes answers worse fails here; README "Retrieval" has the figures."""

import pytest

from bot.config import DEFAULT_CORPUS
from bot.core.evaluation import baseline_ranker, evaluate, load_eval_set, project_ranker


@pytest.mark.parametrize("file", ["eval.toml", "heldout.toml"])
def test_question_sets_are_big_enough_to_mean_something(file):
    eval_set = load_eval_set(DEFAULT_CORPUS, file)
    assert len(eval_set.questions) >= 40 and len(eval_set.offtopic) >= 10
    assert sum(q.spoiler for q in eval_set.questions) >= 5


@pytest.mark.parametrize(
    ("file", "hit_at_1", "hit_at_3", "offtopic", "wrongly_abstained"),
    [
        ("eval.toml", 0.68, 0.88, 0.65, 1),
        ("heldout.toml", 0.66, 0.83, 0.50, 2),
    ],
)
def test_hybrid_retrieval_meets_the_quality_floors(
    retriever, file, hit_at_1, hit_at_3, offtopic, wrongly_abstained
):
    report = evaluate(project_ranker(retriever), load_eval_set(DEFAULT_CORPUS, file))
    assert report.hit_at_1 >= hit_at_1, report.lines()
    assert report.hit_at_3 >= hit_at_3, report.lines()
    assert report.offtopic_abstained / report.offtopic >= offtopic, report.lines()
    assert report.ontopic_abstained <= wrongly_abstained, report.lines()
    assert report.spoiler_leaks == 0, report.lines()


@pytest.mark.parametrize("file", ["eval.toml", "heldout.toml"])
def test_the_semantic_half_adds_to_bm25_on_both_sets(retriever, lexical_retriever, file):
    eval_set = load_eval_set(DEFAULT_CORPUS, file)
    hybrid = evaluate(project_ranker(retriever), eval_set)
    lexical = evaluate(project_ranker(lexical_retriever), eval_set)
    assert hybrid.hit_at_3 > lexical.hit_at_3 and hybrid.mrr > lexical.mrr
    assert hybrid.ontopic_abstained < lexical.ontopic_abstained
    assert lexical.spoiler_leaks == 0


def test_project_beats_the_plain_rank_bm25_baseline(retriever):
    eval_set = load_eval_set(DEFAULT_CORPUS)
    ours = evaluate(project_ranker(retriever), eval_set)
    plain = evaluate(baseline_ranker(retriever.corpus), eval_set)
    assert ours.hit_at_3 > plain.hit_at_3 and ours.mrr > plain.mrr
    assert plain.spoiler_leaks > 0  # the baseline knows nothing of spoilers
