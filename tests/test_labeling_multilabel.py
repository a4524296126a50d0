"""Multi-label labeling projects: import of both file formats (and "several labels per text" for unlabeled texts
or cells of one label), label sets set, undone and recorded, export and re-import (one label or none per item, a
label added to 0/1 columns), label names a set cannot carry, a project's training data and round, the
nearest-threshold queue, suspicious (text, label) pairs and their cut, the simulation on label sets, and the CLI
round trip."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from bertdemo.labeling.history import LabelChanged, changes_since, set_label_set, set_labels, undo
from bertdemo.labeling.labelsets import decode_set, encode_set, toggle
from bertdemo.labeling.store import LabelStore, label_counts
from bertdemo.labeling.transfer import export_csv, export_frame, import_file, import_rows
from conftest import toy_multilabel_rows, write_csv

CELLS = [("pizza and rain today", "food|weather"), ("tennis at noon", "sport"), ("nothing to see", "none"),
         ("not read yet", ""), ("soup then golf", "sport|food")]


@pytest.fixture()
def store(tmp_path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite3")


def _sets(store, project) -> dict[str, tuple | None]:
    return {i.text: decode_set(i.label) for i in store.items(project)}


def test_separator_cells_make_a_multi_label_project(store, tmp_path):
    report = import_file(store, "tickets", write_csv(tmp_path / "t.csv", CELLS))
    info = store.project("tickets")
    assert info.multi_label and info.label_format == {"sep": "|", "label_cols": []}
    assert info.labels == ("food", "sport", "weather") and (report.added, report.unlabeled) == (5, 1)
    assert _sets(store, "tickets") == {"pizza and rain today": ("food", "weather"), "tennis at noon": ("sport",),
                                       "nothing to see": (), "not read yet": None, "soup then golf": ("food", "sport")}
    counts = label_counts(store, "tickets")
    assert counts["per_label"] == {"food": 2, "sport": 2, "weather": 1} and counts["no_label"] == 1
    # the same set written in another order is the same label; another set is a conflict, and the stored one stays
    again = import_file(store, "tickets", write_csv(tmp_path / "again.csv", [("soup then golf", "food|sport"),
                                                                             ("tennis at noon", "sport|weather"),
                                                                             ("not read yet", "none")]))
    assert (again.already, again.labeled_now, again.conflict_count) == (1, 1, 1)
    assert again.conflicts[0]["stored"] == "sport" and again.conflicts[0]["file"] == "sport|weather"
    assert _sets(store, "tickets")["tennis at noon"] == ("sport",) and _sets(store, "tickets")["not read yet"] == ()


def test_zero_one_columns_and_a_separator_of_ones_own(store, tmp_path):
    path = tmp_path / "cols.csv"
    pd.DataFrame({"text": ["a storm", "cake and rugby", "quiet day", "unread"], "food": ["0", "1", "0", ""],
                  "sport": ["0", "1", "0", ""], "weather": ["1", "0", "0", ""]}).to_csv(path, index=False)
    import_file(store, "cols", path)
    info = store.project("cols")
    assert info.multi_label and info.label_format["label_cols"] == ["food", "sport", "weather"]
    assert _sets(store, "cols") == {"a storm": ("weather",), "cake and rugby": ("food", "sport"), "quiet day": (),
                                    "unread": None}
    semi = write_csv(tmp_path / "semi.csv", [("a b", "x;y"), ("c d", "y")])
    import_file(store, "semi", semi, label_sep=";")
    assert _sets(store, "semi") == {"a b": ("x", "y"), "c d": ("y",)}
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["a", "b"], "food": ["1", "maybe"], "sport": ["0", "1"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="is not 0/1"):
        import_file(store, "bad", bad, label_cols=["food", "sport"])


def test_single_and_multi_label_rows_do_not_mix(store, tmp_path):
    import_file(store, "single", write_csv(tmp_path / "s.csv", [("a b", "food"), ("c d", "sport")]))
    import_file(store, "multi", write_csv(tmp_path / "m.csv", CELLS))
    with pytest.raises(ValueError, match="single-label, but m.csv has label sets.*new project"):
        import_file(store, "single", tmp_path / "m.csv")
    with pytest.raises(ValueError, match="multi-label, but .one label per text. .*chosen for s.csv"):
        import_file(store, "multi", tmp_path / "s.csv", per_text="one")
    with pytest.raises(ValueError, match="single-label, and .several labels. .*chosen"):
        import_file(store, "single", write_csv(tmp_path / "u.csv", [("e f",)], header=("text",)), per_text="several")
    with pytest.raises(ValueError, match="is single-label"):
        import_rows(store, "single", ["x y"], [("food",)], multi_label=True)
    assert store.project("multi").items == 5 and store.project("single").items == 2  # refused: nothing written
    # a multi-label project reads a file with its own separator: cells of one label are sets of one
    import_file(store, "multi", tmp_path / "s.csv")
    assert _sets(store, "multi")["a b"] == ("food",) and store.project("single").labels == ("food", "sport")
    assert [i.label for i in store.items("single")] == ["food", "sport"]  # single-label items stay plain names


def test_several_labels_per_text_starts_a_multi_label_project_from_unlabeled_texts(store, tmp_path):
    texts = write_csv(tmp_path / "tickets.csv", [("refund me twice",), ("app crashes on login",)], header=("text",))
    report = import_file(store, "tickets", texts, per_text="several", label_names=["billing", " bug", "feature"])
    info = store.project("tickets")
    assert info.multi_label and info.labels == ("billing", "bug", "feature")  # in the order typed
    assert (report.added, report.unlabeled) == (2, 2) and report.new_labels == ["billing", "bug", "feature"]
    item = store.items("tickets")[0]
    set_label_set(store, "tickets", item.id, ("billing", "bug"), annotator="kim", expected=None)
    assert export_frame(store, "tickets")["label"].tolist() == ["billing|bug"]
    # a separator of one's own for a new project; auto-detect keeps an unlabeled file single-label
    import_file(store, "semi", texts, per_text="several", label_sep=";", label_names=["a", "b"])
    assert store.project("semi").label_format["sep"] == ";"
    assert "bug|billing" in store.add_label("semi", "bug|billing").labels  # only its own separator is refused
    import_file(store, "plain", texts)
    assert not store.project("plain").multi_label
    # one label per text: a class name holding "|" stays one class
    import_file(store, "one", write_csv(tmp_path / "o.csv", [("x y", "rock|pop"), ("z w", "jazz")]), per_text="one")
    assert not store.project("one").multi_label and store.project("one").labels == ("jazz", "rock|pop")


def test_export_of_one_label_or_none_per_item_re_imports_unchanged(store, tmp_path):
    rows = [("pizza today", "food"), ("tennis at noon", "sport"), ("nothing to see", "none"), ("not read yet", "")]
    import_file(store, "src", write_csv(tmp_path / "src.csv", rows), per_text="several")
    assert store.project("src").multi_label and store.project("src").labels == ("food", "sport")
    out = export_csv(store, "src", tmp_path / "out.csv", unlabeled=True)
    assert pd.read_csv(out, dtype=str, keep_default_na=False)["label"].tolist() == ["food", "sport", "none", ""]
    again = import_file(store, "src", out)  # no cell holds "|": read with the project's separator all the same
    assert (again.added, again.already, again.conflict_count, again.new_labels) == (0, 4, 0, [])
    import_file(store, "copy", out, per_text="several")
    assert _sets(store, "copy") == _sets(store, "src") and store.project("copy").labels == ("food", "sport")
    assert export_frame(store, "copy", unlabeled=True).equals(export_frame(store, "src", unlabeled=True))


def test_a_label_added_to_a_zero_one_column_project_survives_export_and_re_import(store, tmp_path):
    source = tmp_path / "cols.csv"
    pd.DataFrame({"text": ["a storm", "cake and rugby", "quiet day"], "food": ["0", "1", "0"],
                  "sport": ["0", "1", "0"], "weather": ["1", "0", "0"]}).to_csv(source, index=False)
    import_file(store, "cols", source)
    store.add_label("cols", "urgent")
    storm = next(i for i in store.items("cols") if i.text == "a storm")
    set_label_set(store, "cols", storm.id, ("urgent", "weather"), annotator="kim", expected=("weather",))
    out = export_csv(store, "cols", tmp_path / "out.csv")
    assert list(pd.read_csv(out).columns) == ["text", "food", "sport", "weather", "urgent"]
    again = import_file(store, "cols", out)
    assert (again.already, again.conflict_count, again.new_labels) == (3, 0, [])  # "urgent" read, not dropped
    assert _sets(store, "cols")["a storm"] == ("urgent", "weather")
    import_file(store, "copy", out)
    assert _sets(store, "copy") == _sets(store, "cols")
    assert export_frame(store, "copy").equals(export_frame(store, "cols"))


@pytest.mark.parametrize("name", ["none", "None", "NA", "null", "nan", "n/a", "bug|billing"])
def test_a_multi_label_project_refuses_label_names_that_break_sets(store, tmp_path, name):
    import_file(store, "tickets", write_csv(tmp_path / "t.csv", CELLS))
    before = store.project("tickets")
    with pytest.raises(ValueError, match="Rename"):
        store.add_label("tickets", name)
    with pytest.raises(ValueError, match="Rename"):
        import_rows(store, "tickets", ["a new text"], [("food", name)])
    with pytest.raises(ValueError, match="Rename"):
        import_file(store, "tickets", write_csv(tmp_path / "u.csv", [("more",)], header=("text",)),
                    label_names=[name])
    with pytest.raises(ValueError, match="Rename"):
        store.create_project("fresh", ["food", name], multi_label=True)
    assert store.project("tickets") == before and [p.name for p in store.projects()] == ["tickets"]
    store.create_project("plain", [name])  # a single-label class may be called so: its cells hold one name
    assert store.project("plain").labels == (name,)


def test_toggle_save_undo_and_the_history_record_sets(store, tmp_path):
    import_file(store, "tickets", write_csv(tmp_path / "t.csv", CELLS))
    item = next(i for i in store.items("tickets") if i.label is None)
    chosen = toggle(toggle(decode_set(item.label), "sport"), "food")  # two keys pressed
    step = set_label_set(store, "tickets", item.id, chosen, annotator="kim", owner="kim", expected=None)
    assert store.item("tickets", item.id).label == encode_set(("food", "sport")) and step is not None
    shown = store.item("tickets", item.id).label
    set_labels(store, "tickets", [(item.id, ("weather",))], annotator="kim", owner="kim", expected={item.id: shown})
    with pytest.raises(LabelChanged, match="now labeled 'weather'"):  # a tab still showing the old set
        set_label_set(store, "tickets", item.id, ("food",), annotator="lee", expected=("food", "sport"))
    with pytest.raises(ValueError, match="'sprot' is not a label"):  # one unknown name refuses the whole set
        set_label_set(store, "tickets", item.id, ("food", "sprot"), annotator="kim")
    with store.read() as conn:
        history = conn.execute("SELECT old_label, new_label FROM changes WHERE item_id = ? ORDER BY id",
                               (item.id,)).fetchall()
    assert [tuple(decode_set(v) for v in row) for row in history] == [(None, ("food", "sport")),
                                                                      (("food", "sport"), ("weather",))]
    assert undo(store, "tickets", owner="kim").restored == [item.id]
    assert decode_set(store.item("tickets", item.id).label) == ("food", "sport")  # the previous set is back
    assert changes_since(store, "tickets", 0)["per_class"]["sport"]["in"] >= 1
    import_file(store, "plain", write_csv(tmp_path / "p.csv", [("a b", "food"), ("c d", "sport")]))
    with pytest.raises(ValueError, match="single-label"):
        set_label_set(store, "plain", store.items("plain")[0].id, ("food",), annotator="kim")


@pytest.mark.parametrize("fmt", ["cells", "columns"])
def test_export_writes_the_imported_format_and_re_imports_unchanged(store, tmp_path, fmt):
    if fmt == "cells":
        source = write_csv(tmp_path / "src.csv", [(t, c.replace("|", ";")) for t, c in CELLS])
        import_file(store, "src", source, label_sep=";")
    else:
        source = tmp_path / "src.csv"
        columns = {"food": ["1", "0", "0", "", "1"], "sport": ["0", "1", "0", "", "1"],
                   "weather": ["1", "0", "0", "", "0"]}
        pd.DataFrame({"text": [t for t, _ in CELLS], **columns}).to_csv(source, index=False)
        import_file(store, "src", source)
    out = export_csv(store, "src", tmp_path / "out.csv", unlabeled=True)
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    if fmt == "cells":
        assert written["label"].tolist() == ["food;weather", "sport", "none", "", "food;sport"]
    else:
        assert list(written.columns) == ["text", "food", "sport", "weather"]
        assert written.loc[3, ["food", "sport", "weather"]].tolist() == ["", "", ""]  # unlabeled: empty cells
    assert len(export_frame(store, "src")) == 4  # without unlabeled=True: the labeled items only
    import_file(store, "copy", out, label_sep=";" if fmt == "cells" else None)
    assert _sets(store, "copy") == _sets(store, "src")
    assert store.project("copy").label_format == store.project("src").label_format
    assert export_frame(store, "copy", unlabeled=True).equals(export_frame(store, "src", unlabeled=True))


@pytest.fixture(scope="module")
def ml_project(tmp_path_factory, tiny_config):
    """A multi-label project of 60 toy label sets and 12 unlabeled texts, with one trained round."""
    from bertdemo.labeling.retrain import train_project

    root = tmp_path_factory.mktemp("ml-project")
    store = LabelStore(root / "labels.sqlite3")
    rows = toy_multilabel_rows(72, seed=5)
    import_rows(store, "topics", [t for t, _ in rows], [c if i < 60 else None for i, (_, c) in enumerate(rows)],
                multi_label=True)
    config = dataclasses.replace(tiny_config, epochs=8, learning_rate=3e-3, given=("epochs", "min_steps"))
    events = list(train_project(store, "topics", config, workspace=root / "ws"))
    return store, events, config


def test_a_project_trains_a_multi_label_round_on_its_sets(ml_project, tiny_config):
    from bertdemo.labeling.retrain import compare, project_data
    from bertdemo.labeling.rounds import continuable
    from bertdemo.runs import load_run_info

    store, events, config = ml_project
    data = project_data(store, "topics", config)
    assert data.multi_label and data.labels == ("food", "sport", "weather")
    assert all(isinstance(s, tuple) for s in data.train["label"]) and data.report.validation_source == "frozen"
    frozen = [i for i in store.items("topics") if i.split == "validation"]
    y = np.array([[label in decode_set(i.label) for label in data.labels] for i in frozen])
    assert len(frozen) == 12 and y.sum(axis=0).min() >= 2  # every label in the frozen set (iterative split)
    run = events[-1].run_dir
    assert load_run_info(run).multi_label and load_run_info(run).provenance["project"] == "topics"
    scored = compare(store, "topics", None, run)
    assert scored["rows"] == 12 and {"micro_f1", "samples_f1", "hamming_loss"} <= set(scored["after"])
    assert scored["after"]["micro_f1"] > 0.5  # it learned the topics' words
    assert continuable(run, config.model, data.labels, multi_label=True) is None
    assert "is multi-label" in continuable(run, config.model, data.labels, multi_label=False)


def test_nearest_threshold_ranks_the_label_nearest_its_threshold_first():
    from bertdemo.labeling.queues import uncertainty

    probs = np.array([[0.95, 0.02, 0.10],  # every label far from its threshold
                      [0.90, 0.31, 0.05],  # label 1 sits on its threshold (0.3)
                      [0.60, 0.80, 0.70],  # label 0 is 0.1 from 0.5
                      [0.52, 0.02, 0.90]])  # label 0 is 0.02 from 0.5
    scores = uncertainty(probs, "nearest_threshold", np.array([0.5, 0.3, 0.5]))
    assert np.argsort(-scores).tolist() == [1, 3, 2, 0]
    assert np.isclose(scores[1], 1 - 0.01)


def test_queues_of_a_multi_label_model(ml_project):
    from bertdemo.inference.predict import get_predictor
    from bertdemo.labeling.queues import confident_suggestions, uncertain_queue
    from bertdemo.labeling.ranking import default_strategy

    store, events, _ = ml_project
    run = events[-1].run_dir
    predictor = get_predictor(run)
    assert default_strategy(run) == "nearest_threshold"
    queue = uncertain_queue(store, "topics", predictor, "nearest_threshold")
    assert len(queue) == 12 and all(e.label is None for e in queue)
    assert np.all(np.diff([e.score for e in queue]) <= 1e-9)
    first = queue[0]
    probs = np.array([first.probabilities[label] for label in predictor.labels])
    assert decode_set(first.suggested) == predictor.decide(probs[None, :])[0]  # the set the thresholds decide
    with pytest.raises(ValueError, match="multi-label.*nearest_threshold"):
        uncertain_queue(store, "topics", predictor, "margin")
    from bertdemo.labeling.ranking import rank_over
    from bertdemo.labeling.suspicious import SuspectPair

    labeled = store.items("topics", labeled=True)
    pairs = rank_over(predictor, [i.text for i in labeled], [decode_set(i.label) for i in labeled])
    assert len(pairs) == 60 * 3 and isinstance(pairs[0], SuspectPair) and pairs[0].score >= pairs[-1].score
    from bertdemo.labeling.queues import misclassified_queue

    wrong = misclassified_queue(store, "topics", run)  # the run's validation mistakes, from its metrics.json
    assert wrong and all(e.label is not None and e.suggested != e.label for e in wrong)
    assert [e.score for e in wrong] == sorted((e.score for e in wrong), reverse=True)
    sure = confident_suggestions(store, "topics", predictor, 0.6)
    for entry in sure:  # every label at least 0.6 on the side the thresholds put it
        on = set(decode_set(entry.suggested))
        assert all((p if label in on else 1 - p) >= 0.6 for label, p in entry.probabilities.items())


def test_suspicious_pairs_find_flipped_labels():
    from bertdemo.labeling.suspicious import rank_suspect_pairs

    sets = [("food",), ("food", "sport"), ("sport",), (), ("weather",)]
    names = ["food", "sport", "weather"]
    probs = np.array([[0.9, 0.1, 0.95],  # weather missing, and the model is sure of it
                      [0.9, 0.8, 0.1],
                      [0.1, 0.03, 0.1],  # sport given, the model finds it unlikely
                      [0.1, 0.2, 0.1],
                      [0.2, 0.1, 0.7]])
    pairs = rank_suspect_pairs([f"t{i}" for i in range(5)], sets, probs, names)
    assert len(pairs) == 15
    assert [(p.row, p.label, p.kind) for p in pairs[:2]] == [(2, "sport", "unlikely"), (0, "weather", "missing")]
    assert pairs[0].suggested == () and pairs[1].suggested == ("food", "weather")
    assert np.isclose(pairs[0].score, 0.97) and pairs[-1].score <= pairs[2].score


def test_suspicious_pairs_keep_only_the_top_of_the_ranking():
    from bertdemo.labeling.suspicious import pair_limit, rank_suspect_pairs

    rng = np.random.default_rng(0)
    names = [f"l{j}" for j in range(8)]
    sets = [tuple(n for n in names if rng.random() < 0.3) for _ in range(150)]
    probs = rng.random((150, 8))
    every = rank_suspect_pairs([f"t{i}" for i in range(150)], sets, probs, names, top=150 * 8)
    kept = rank_suspect_pairs([f"t{i}" for i in range(150)], sets, probs, names)
    assert len(every) == 1200 and len(kept) == pair_limit(150) == 300
    assert [(p.row, p.label) for p in kept] == [(p.row, p.label) for p in every[:300]]  # the head, best first
    assert pair_limit(10) == 200  # a small project keeps every pair it has up to 200


def test_out_of_sample_pairs_from_folds(tiny_config):
    from bertdemo.labeling.suspicious import FoldProgress, SuspectPair, find_suspects

    rows = toy_multilabel_rows(40, seed=3)
    sets = [tuple(sorted(c.split("|"))) if c != "none" else () for _, c in rows]
    flipped = list(sets)
    flipped[0] = tuple(sorted(set(sets[0]) ^ {"weather"}))
    config = dataclasses.replace(tiny_config, epochs=3, learning_rate=3e-3)
    events = list(find_suspects([t for t, _ in rows], flipped, config, folds=2))
    assert any(isinstance(e, FoldProgress) for e in events)
    pairs = events[-1]
    assert len(pairs) == 40 * 3 and all(isinstance(p, SuspectPair) for p in pairs)
    flip = next(p for p in pairs if p.row == 0 and p.label == "weather")
    assert flip.kind == ("unlikely" if "weather" in flipped[0] else "missing")
    assert all(0 <= p <= 1 for pair in pairs for p in pair.probabilities.values())


def test_the_simulation_runs_on_label_sets(tiny_config, tmp_path):
    from bertdemo.labeling.simulate import CurvePoint, al_curve, curve_table

    rows = toy_multilabel_rows(40, seed=6)
    test = toy_multilabel_rows(12, seed=7)
    as_set = lambda cell: () if cell == "none" else tuple(sorted(cell.split("|")))  # noqa: E731
    config = dataclasses.replace(tiny_config, epochs=2, batch_size=4, given=("epochs", "batch_size", "min_steps"))
    points = [e for e in al_curve([t for t, _ in rows], [as_set(c) for _, c in rows], [t for t, _ in test],
                                  [as_set(c) for _, c in test], strategies=("nearest_threshold",),
                                  start=12, step=8, rounds=1, config=config) if isinstance(e, CurvePoint)]
    assert [(p.strategy, p.labels) for p in points] == [("nearest_threshold", 12), ("nearest_threshold", 20)]
    assert all(p.micro_f1 is not None and 0 <= p.micro_f1 <= 1 for p in points)
    table = curve_table(points)
    assert table["metric"] == "micro_f1" and table["nearest_threshold"][0] == round(points[0].micro_f1, 4)
    from bertdemo.labeling.simulate import hold_out, labeled_rows

    path = tmp_path / "pool.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f"], "x": ["1", "0", ""], "y": ["1", "0", ""]}).to_csv(path, index=False)
    assert labeled_rows(path, label_cols=("x", "y")) == (["a b", "c d"], [("x", "y"), ()])  # unlabeled rows left out
    sets = [as_set(c) for _, c in rows]
    _, train_sets, _, test_sets = hold_out([t for t, _ in rows], sets, 0.25)
    assert len(test_sets) == 10 and sorted(train_sets + test_sets) == sorted(sets)
    with pytest.raises(ValueError, match="margin cannot rank a multi-label pool"):
        next(al_curve(["a"] * 30, [("x",)] * 30, [], [], strategies=("margin",), start=5, step=5, rounds=1))


@pytest.mark.slow  # command-line subprocesses
def test_cli_imports_labels_and_exports_label_sets(tmp_path):
    from test_cli import _cli

    def ok(out):
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    ws = str(tmp_path / "ws")
    source = tmp_path / "cols.csv"
    pd.DataFrame({"text": [t for t, _ in CELLS], "billing": ["1", "0", "0", "", "1"],
                  "bug": ["1", "1", "0", "", "0"]}).to_csv(source, index=False)
    report = ok(_cli("project", "import", "t", str(source), "--label-cols", "billing,bug", "--workspace", ws, "--json"))
    assert (report["added"], report["unlabeled"]) == (5, 1)
    unread = next(i for i in LabelStore.for_workspace(ws).items("t") if i.label is None)
    labeled = ok(_cli("project", "label", "t", str(unread.id), "bug|billing", "--workspace", ws, "--json"))
    assert labeled["label"] == "billing|bug"
    stale = _cli("project", "label", "t", str(unread.id), "none", "--expect", "", "--workspace", ws)
    assert stale.returncode == 2 and "now labeled 'billing|bug'" in stale.stderr
    assert "--expect 'billing|bug'" in stale.stderr
    out = tmp_path / "out.csv"
    ok(_cli("project", "export", "t", str(out), "--workspace", ws, "--json"))
    written = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(written.columns) == ["text", "billing", "bug"] and len(written) == 5
    assert written.set_index("text").loc["not read yet"].tolist() == ["1", "1"]
    assert written.set_index("text").loc["nothing to see"].tolist() == ["0", "0"]  # no label applies
    ok(_cli("project", "import", "t2", str(out), "--workspace", ws, "--json"))
    store = LabelStore.for_workspace(ws)
    assert _sets(store, "t2") == _sets(store, "t")
    texts = write_csv(tmp_path / "texts.csv", [("refund me",), ("it crashes",)], header=("text",))
    ok(_cli("project", "import", "t3", str(texts), "--labels-per-text", "several", "--labels", "billing,bug",
            "--workspace", ws, "--json"))
    assert store.project("t3").multi_label and store.project("t3").labels == ("billing", "bug")
