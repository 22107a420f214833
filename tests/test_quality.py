"""Quality floors on the project's own question set (corpus/eval.toml)."""

from bot.config import DEFAULT_CORPUS
from bot.core.evaluation import baseline_ranker, evaluate, load_eval_set, project_ranker


def test_eval_set_is_big_enough_to_mean_something():
    eval_set = load_eval_set(DEFAULT_CORPUS)
    assert len(eval_set.questions) >= 40 and len(eval_set.offtopic) >= 8
    assert sum(q.spoiler for q in eval_set.questions) >= 5


def test_retrieval_meets_the_quality_floors(retriever):
    report = evaluate(project_ranker(retriever), load_eval_set(DEFAULT_CORPUS))
    assert report.hit_at_3 >= 0.90, report.lines()
    assert report.hit_at_1 >= 0.70, report.lines()
    assert report.offtopic_abstained / report.offtopic >= 7 / 8, report.lines()
    assert report.ontopic_abstained <= 1, report.lines()
    assert report.spoiler_leaks == 0, report.lines()


def test_project_beats_the_plain_rank_bm25_baseline(retriever):
    eval_set = load_eval_set(DEFAULT_CORPUS)
    ours = evaluate(project_ranker(retriever), eval_set)
    plain = evaluate(baseline_ranker(retriever.corpus), eval_set)
    assert ours.hit_at_3 > plain.hit_at_3 and ours.mrr > plain.mrr
    assert plain.spoiler_leaks > 0  # the baseline knows nothing of spoilers
