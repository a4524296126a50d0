"""Which item next: uncertainty rankings, diversity, the plain orders, and suspicious labels out of sample."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bertdemo.labeling.queues import diverse_first, misclassified_queue, ordered_queue, uncertain_queue, uncertainty
from bertdemo.labeling.store import LabelStore
from bertdemo.labeling.transfer import import_rows
from conftest import toy_rows


def test_uncertainty_scores_rank_the_boundary_first():
    probs = np.array([[0.98, 0.01, 0.01],  # sure
                      [0.50, 0.49, 0.01],  # on the boundary between two classes
                      [0.34, 0.335, 0.325],  # unsure between all three
                      [0.70, 0.20, 0.10]])
    assert np.argsort(-uncertainty(probs, "margin")).tolist() == [2, 1, 3, 0]  # smallest gap first
    assert np.argmax(uncertainty(probs, "entropy")) == 2 and np.argmin(uncertainty(probs, "entropy")) == 0
    assert np.argsort(-uncertainty(probs, "least_confidence"))[:2].tolist() == [2, 1]
    with pytest.raises(ValueError, match="margin"):
        uncertainty(probs, "confidence")


def test_diversity_spreads_the_first_picks_over_clusters():
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.50, 0.40])
    embeddings = np.array([[0, 0], [0, 0.01], [0.01, 0], [10, 10], [10, 10.1], [-10, 5]], dtype=float)
    plain = np.argsort(-scores)[:2].tolist()
    diverse = diverse_first(scores, embeddings, 2, seed=0)[:2].tolist()
    assert plain == [0, 1]  # two near-duplicates
    assert diverse[0] == 0 and diverse[1] in (3, 4, 5)  # the second pick comes from another cluster
    assert sorted(diverse_first(scores, embeddings, 2).tolist()) == list(range(6))  # every item still comes


@pytest.fixture()
def project(tmp_path, tiny_run, toy_data):
    store = LabelStore(tmp_path / "labels.sqlite3")
    texts = toy_data.validation["text"].tolist()
    import_rows(store, "toy", texts + ["the rain came with pizza and football", "pizza"], [None] * (len(texts) + 2))
    return store


def test_margin_queue_on_a_model_matches_its_own_probabilities(project, tiny_run):
    from bertdemo.inference.predict import get_predictor

    predictor = get_predictor(tiny_run)
    queue = uncertain_queue(project, "toy", predictor, "margin")
    assert len(queue) == project.project("toy").items
    probs = predictor.predict_proba([entry.text for entry in queue])
    margins = np.sort(probs, axis=1)[:, -1] - np.sort(probs, axis=1)[:, -2]
    assert np.all(np.diff([entry.score for entry in queue]) <= 1e-9)  # best first
    assert np.argmin(margins) in (0, 1)  # the text nearest the boundary is served first (bf16 ties aside)
    top = queue[0]
    assert top.suggested == max(top.probabilities, key=top.probabilities.get) and top.label is None
    assert len(uncertain_queue(project, "toy", predictor, "entropy", top=3, diversity=2)) == 3


def test_plain_orders_and_misclassified(project, tiny_run):
    in_order = ordered_queue(project, "toy", "in_order")
    assert [e.id for e in in_order] == [i.id for i in project.items("toy")] and in_order[0].suggested is None
    shuffled = ordered_queue(project, "toy", "random", seed=3)
    assert sorted(e.id for e in shuffled) == sorted(e.id for e in in_order) and shuffled != in_order
    assert ordered_queue(project, "toy", "random", seed=3) == shuffled  # seeded
    wrong = misclassified_queue(project, "toy", str(tiny_run))
    assert all(project.item("toy", e.id).text for e in wrong)  # only texts of this project


def test_suspicious_ranks_deliberately_flipped_labels_first(tiny_config):
    from bertdemo.labeling.suspicious import FoldProgress, find_suspects

    rows = toy_rows(per_class=24, seed=5)
    texts, labels = [t for t, _ in rows], [label for _, label in rows]
    flipped = [3, 17, 40, 66]
    others = {"food": "sport", "sport": "weather", "weather": "food"}
    for i in flipped:
        labels[i] = others[labels[i]]
    events = list(find_suspects(texts, labels, dataclasses.replace(tiny_config, learning_rate=2e-3), folds=3))
    progress, suspects = events[:-1], events[-1]
    assert progress and all(isinstance(e, FoldProgress) for e in progress) and progress[-1].fraction == 1.0
    assert len(suspects) == len(texts) and {s.row for s in suspects} == set(range(len(texts)))
    top = {s.row for s in suspects[: len(flipped)]}
    assert len(top & set(flipped)) >= 3  # the flipped labels come first
    first = suspects[0]
    assert first.suggested != first.given and first.score > 0.5


def test_suspicious_folds_keep_the_training_loops_rules(tiny_config):
    """A fold whose loss diverges stops with the loop's own message, not with NaN probabilities."""
    from bertdemo.labeling.suspicious import find_suspects

    rows = toy_rows(per_class=8, seed=2)
    config = dataclasses.replace(tiny_config, weight_decay=1e30, epochs=3, min_steps=0)  # weights blow up
    with pytest.raises(ValueError, match="training diverged and fold 1 could not score its labels"):
        list(find_suspects([t for t, _ in rows], [label for _, label in rows], config, folds=2))


def _copy_run(run, workspace, name: str, **changes):
    """A copy of ``run`` saved in ``workspace`` as ``name``, its run.json changed (created, labels, provenance)."""
    import json
    import shutil

    dest = workspace / name
    shutil.copytree(run, dest)
    info = json.loads((dest / "run.json").read_text())
    (dest / "run.json").write_text(json.dumps({**info, **changes}))
    return dest


def test_a_project_is_suggested_to_by_its_own_latest_run_never_the_workspaces_newest(tmp_path, tiny_run):
    """A new project has no model: it starts in import order, and a model queue says why it cannot run. Once it
    has runs, its latest saved one suggests, even when another file's run is newer; a deleted run is passed over."""
    from bertdemo.labeling.ranking import default_strategy, project_model, rank_queue, suggesting_runs
    from bertdemo.labeling.retrain import record_run

    workspace = tmp_path / "ws"
    workspace.mkdir()
    store = LabelStore(workspace / "labels.sqlite3")
    rows = toy_rows(per_class=4, seed=1)
    import_rows(store, "news", [t for t, _ in rows], [label if i % 2 else None for i, (_, label) in enumerate(rows)])
    assert project_model(store, "news", workspace) is None and default_strategy(None) == "in_order"
    assert len(next(rank_queue(store, "news", "in_order"))) == 6
    with pytest.raises(ValueError, match="project 'news' has none yet.*in-order"):
        next(rank_queue(store, "news", "margin"))

    labels = ["food", "sport", "weather"]
    older = _copy_run(tiny_run, workspace, "news-old", created="2026-01-01T00:00:00+00:00", labels=labels,
                      provenance={"project": "news"})
    mine = _copy_run(tiny_run, workspace, "news-new", created="2026-01-02T00:00:00+00:00", labels=labels,
                     provenance={"project": "news"})
    _copy_run(tiny_run, workspace, "sms-newest", created="2026-01-03T00:00:00+00:00", labels=["ham", "spam"],
              data_source="sms500.csv")
    _copy_run(tiny_run, workspace, "other-file", created="2026-01-04T00:00:00+00:00", labels=labels,
              data_source="more_news.csv")
    record_run(store, "news", older.name, 1)
    record_run(store, "news", mine.name, 2)
    assert project_model(store, "news", workspace) == mine and default_strategy(mine) == "margin"
    assert [r.name for r in suggesting_runs(store, "news", workspace)] == ["news-new", "news-old", "other-file"]
    import shutil
    shutil.rmtree(mine)  # deleted on the Models tab
    assert project_model(store, "news", workspace) == older


def test_rerank_keeps_the_item_on_screen_first_as_the_new_model_sees_it(project, tiny_run):
    """A retrain ended while an item was on screen: it stays first, with the new model's probabilities; the rest
    is ranked again. Without a model the order stays and the suggestions go; suspicious labels stay as they are."""
    from bertdemo.inference.predict import get_predictor
    from bertdemo.labeling.ranking import rerank

    before = ordered_queue(project, "toy", "in_order")
    on_screen = before[5]
    after = rerank(project, "toy", "margin", before[5:], run=tiny_run, keep=on_screen)
    assert after[0].id == on_screen.id and sorted(e.id for e in after) == sorted(e.id for e in before)
    probs = get_predictor(tiny_run).predict_proba([on_screen.text])[0]
    assert after[0].probabilities[after[0].suggested] == pytest.approx(float(probs.max()), abs=1e-6)
    assert [e.score for e in after[1:]] == sorted((e.score for e in after[1:]), reverse=True)
    plain = rerank(project, "toy", "margin", after[1:], run=None, keep=after[0])
    assert [e.id for e in plain] == [e.id for e in after] and all(e.suggested is None for e in plain)
    assert rerank(project, "toy", "suspicious", after, run=tiny_run) == after


def test_suspicious_progress_says_the_fold_the_rows_scored_and_the_time_left(tiny_config):
    from bertdemo.labeling.suspicious import FoldProgress, eta_seconds, out_of_sample_probabilities

    rows = toy_rows(per_class=8, seed=3)
    config = dataclasses.replace(tiny_config, epochs=2, min_steps=0)
    events = list(out_of_sample_probabilities([t for t, _ in rows], [label for _, label in rows], config, folds=3,
                                              neighbours=0))
    progress = [e for e in events if isinstance(e, FoldProgress)]
    assert [p.fold for p in progress if p.step == 0] == [1, 2, 3]  # each fold says it has begun
    ends = [p for p in progress if p.step == p.steps]
    assert [p.scored for p in ends] == [8, 16, 24] and all(p.rows == 24 for p in progress)  # 3 × 8 held out
    assert progress[0].eta_s is None and all(p.eta_s is not None and p.eta_s >= 0 for p in progress[1:])
    assert ends[-1].eta_s == 0 and ends[-1].fraction == 1.0
    assert [p.elapsed_s for p in progress] == sorted(p.elapsed_s for p in progress)
    line = progress[len(progress) // 2].line()
    assert "of 3 · step" in line and "of 24 rows scored · ETA " in line and "lr" not in line
    # the pace: 10 s for 5 of 20 steps is 30 s left in this fold, then one more fold of 40 s
    assert eta_seconds(2, 3, 5, 20, 10.0, [40.0]) == pytest.approx(30.0 + 40.0)
    assert eta_seconds(1, 3, 5, 20, 10.0, []) == pytest.approx(30.0 + 2 * 40.0)  # before any fold finished
    assert eta_seconds(1, 3, 0, 20, 3.0, []) is None


def test_the_second_look_rescores_the_most_suspect_rows_with_a_model_that_never_saw_them(tiny_config):
    from bertdemo.labeling.suspicious import FoldProgress, out_of_sample_probabilities, second_look_rows

    rows = toy_rows(per_class=12, seed=4)
    texts, labels = [t for t, _ in rows], [label for _, label in rows]
    config = dataclasses.replace(tiny_config, epochs=2, min_steps=0, learning_rate=2e-3)
    first = list(out_of_sample_probabilities(texts, labels, config, folds=3, second_look=0.0, neighbours=0))[-1]
    events = list(out_of_sample_probabilities(texts, labels, config, folds=3, second_look=0.25, neighbours=0))
    progress, probs = [e for e in events if isinstance(e, FoldProgress)], events[-1]
    assert [p.fold for p in progress if p.step == 0] == [1, 2, 3, 4] and {p.folds for p in progress} == {4}
    assert progress[-1].fraction == 1.0 and progress[-1].scored == len(texts)  # re-scoring adds no rows
    again = second_look_rows(labels, first, 0.25)
    assert len(again) == 9
    rest = np.setdiff1d(np.arange(len(texts)), again)
    np.testing.assert_allclose(probs[rest], first[rest], rtol=0, atol=1e-6)  # the folds' answers stand
    assert not np.allclose(probs[again], first[again])  # a second opinion, averaged in
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_neighbours_outvote_a_flipped_label_and_a_row_never_votes_for_itself():
    from bertdemo.labeling.neighbours import neighbour_label_probabilities, with_neighbours

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    y = np.repeat([0, 1, 2], 12)
    vectors = centres[y] + rng.normal(size=(36, 16))
    flipped = y.copy()
    flipped[[4, 20]] = [2, 0]  # two rows given another cluster's label
    votes = neighbour_label_probabilities(vectors, flipped, 3, k=5)
    np.testing.assert_allclose(votes.sum(axis=1), 1.0)
    given = votes[np.arange(36), flipped]
    assert set(np.argsort(given)[:2]) == {4, 20}  # their neighbours carry the true label
    assert votes[4].argmax() == 0 and votes[20].argmax() == 1
    # its own label is not a vote: a lone row among duplicates of another label gets none for its own
    twins = np.vstack([np.ones((4, 2)), [[1.0, 1.0]], [[-1.0, 0.2]]])
    alone = neighbour_label_probabilities(twins, np.array([0, 0, 0, 0, 1, 1]), 2, k=3)
    assert alone[4, 1] < 0.1 and alone[0, 0] > 0.9
    mixed = with_neighbours(np.full((36, 3), 1 / 3, dtype=np.float32), votes, 0.2)
    assert mixed.dtype == np.float32 and np.allclose(mixed.sum(axis=1), 1.0, atol=1e-6)


def test_suspicious_labels_end_with_the_neighbours_vote_averaged_in(tiny_config):
    """The default: the folds, then one pass embedding every text (the last phase of the progress), whose nearest
    neighbours' labels are averaged in; stopping in that pass gives no probabilities."""
    from bertdemo.labeling.neighbours import NEIGHBOURS, with_neighbours
    from bertdemo.labeling.suspicious import FoldProgress, neighbour_votes, out_of_sample_probabilities

    rows = toy_rows(per_class=8, seed=6)
    texts, labels = [t for t, _ in rows], [label for _, label in rows]
    config = dataclasses.replace(tiny_config, epochs=1, min_steps=0)
    events = list(out_of_sample_probabilities(texts, labels, config, folds=2))
    progress, probs = [e for e in events if isinstance(e, FoldProgress)], events[-1]
    assert {p.folds for p in progress} == {3} and [p.fold for p in progress if p.step == 0] == [1, 2, 3]
    last = [p for p in progress if p.neighbours]
    assert last and all(p.fold == 3 and p.steps == len(texts) for p in last) and last[-1].fraction == 1.0
    assert "nearest neighbours" in last[0].line() and "texts embedded" in last[0].line()
    # the time left once the folds are done is the short pass at the folds' scoring pace, not one more fold
    second_began = next(p.elapsed_s for p in progress if p.fold == 2 and p.step == 0)
    second_done = next(p for p in progress if p.fold == 2 and p.step == p.steps)
    assert 0 < second_done.eta_s < second_done.elapsed_s - second_began
    folds_only = list(out_of_sample_probabilities(texts, labels, config, folds=2, neighbours=0))[-1]
    votes = [e for e in neighbour_votes(texts, labels, config, k=NEIGHBOURS) if not isinstance(e, FoldProgress)][-1]
    np.testing.assert_allclose(probs, with_neighbours(folds_only, votes), rtol=1e-5, atol=1e-6)
    assert not np.allclose(probs, folds_only)

    seen = {"neighbours": False}
    stopped = []
    for event in out_of_sample_probabilities(texts, labels, config, folds=2, should_stop=lambda: seen["neighbours"]):
        stopped.append(event)
        seen["neighbours"] = isinstance(event, FoldProgress) and event.neighbours  # stop once that pass begins
    assert seen["neighbours"] and all(isinstance(e, FoldProgress) for e in stopped)
