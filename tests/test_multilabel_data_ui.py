"""The Data and Train tabs with multi-label files, driven at the handler level as a page would (no server): the
report says the file is multi-label and draws per-label counts, co-occurrence and labels per text with the file's
numbers; a wrong separator or a column that is not 0/1 gets a message, not a crash; a new file resets the label
columns; and Start trains the file as it was read, through the job runner, with the choice kept in the job."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from conftest import toy_multilabel_rows, write_csv

LABELS = ("food", "sport", "weather")


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_model_dir):
    from bertdemo.ui import build_app

    demo = build_app(tmp_path_factory.mktemp("ws"), model_dirs=(Path(tiny_model_dir).parent,))
    yield demo.bertdemo_page
    demo.bertdemo_page.runner.close()


def _load(handler, *args) -> tuple[dict, Exception | None]:
    """Every update a load handler yields merged as the page would see them, and the error it ended with."""
    seen: dict = {}
    try:
        for update in handler(*args):
            seen.update(update)
    except gr.Error as err:
        return seen, err
    return seen, None


def _sets(cell: str) -> set[str]:
    return set() if cell == "none" else set(cell.split("|"))


def test_a_multi_label_file_is_reported_as_one_with_its_counts_cooccurrence_and_labels_per_text(app, toy_ml_csv):
    tab = app.parts["data"]
    out, err = _load(tab.on_load_fresh, str(toy_ml_csv), 32, "default", "auto-detect", "|")
    assert err is None
    sets = [_sets(cell) for _, cell in toy_multilabel_rows()]
    mean, none = sum(map(len, sets)) / len(sets), sum(not s for s in sets) / len(sets)
    assert f"Multi-label: texts carry {mean:.1f} labels on average; {none:.0%} carry none." in out[tab.report]
    assert "3 labels (multi-label)" in out[tab.status]
    bars = out[tab.counts_plot].data[0]
    assert dict(zip(bars.x, bars.y)) == {label: sum(label in s for s in sets) for label in LABELS}
    loaded = out[app.data_state]
    assert loaded.multi_label and loaded.choice.per_text == "several" and loaded.choice.sep == "|"

    view = tab.on_label_view(out[tab.label_view])
    assert view[tab.multilabel_row].visible is True
    heat = view[tab.cooccurrence_plot].data[0]
    assert heat.z.tolist() == [[sum(a in s and b in s for s in sets) for b in LABELS] for a in LABELS]
    hist = view[tab.per_text_plot].data[0]
    assert dict(zip(hist.x, hist.y)) == {n: sum(len(s) == n for s in sets) for n in range(4)}
    assert [c[0] for c in view[tab.label_cols].choices] == ["text", "label"] and view[tab.label_cols].value == []


def test_zero_one_columns_are_found_and_ticked_and_rare_labels_named(app, tmp_path):
    tab = app.parts["data"]
    rows = [(text, *(int(label in _sets(cell)) for label in LABELS), int(i < 3))  # "urgent" on 3 texts only
            for i, (text, cell) in enumerate(toy_multilabel_rows())]
    path = write_csv(tmp_path / "flags.csv", rows, header=("text", *LABELS, "urgent"))
    out, err = _load(tab.on_load_fresh, str(path), 32, "default", "auto-detect", "|")
    assert err is None
    loaded = out[app.data_state]
    assert loaded.choice.cols == (*LABELS, "urgent") and loaded.label_col == ""
    assert out[tab.label_col].value is None  # no one label column: the 0/1 columns hold the labels
    assert "0/1 label columns" in out[tab.report] and "Too rare to learn" in out[tab.report]
    assert "**urgent**" in out[tab.report]
    bars = out[tab.counts_plot].data[0]
    assert dict(zip(bars.x, bars.text))["urgent"] == "3 (too rare)"
    assert tab.on_label_view(out[tab.label_view])[tab.label_cols].value == [*LABELS, "urgent"]

    # untick "urgent": the three other columns are the labels
    out, err = _load(tab.on_pick_label_cols, str(path), "text", list(LABELS), 32, "default", loaded,
                     "auto-detect", "|")
    assert err is None and out[app.data_state].labels == LABELS


def test_a_wrong_separator_and_a_column_that_is_not_0_1_get_a_message_not_a_crash(app, toy_ml_csv, tmp_path):
    tab = app.parts["data"]
    out, err = _load(tab.on_load, str(toy_ml_csv), None, None, 32, "default", None, "several labels", ";")
    assert isinstance(err, gr.Error) and "Not loaded" in out[tab.status]
    assert "holds the separator ';'" in err.message and "'|'" in err.message
    assert out[app.data_state] is None

    out, err = _load(tab.on_load, str(toy_ml_csv), None, None, 32, "default", None, "several labels", ",")
    assert isinstance(err, gr.Error) and "cannot be used" in err.message

    path = write_csv(tmp_path / "notes.csv", [(f"text {i}", i % 2, "check" if i == 4 else i % 3 == 0)
                                              for i in range(20)], header=("text", "bug", "billing"))
    out, err = _load(tab.on_pick_label_cols, str(path), None, ["bug", "billing"], 32, "default", None,
                     "auto-detect", "|")
    assert isinstance(err, gr.Error) and "Label column 'billing' is not 0/1" in err.message
    assert out[app.data_state] is None
    # the table was read: its columns stay offered, to choose other label columns
    view = tab.on_label_view(out[tab.label_view])
    assert [c[0] for c in view[tab.label_cols].choices] == ["text", "bug", "billing"]
    assert view[tab.multilabel_row].visible is False


def test_a_second_file_with_other_columns_resets_the_label_choices(app, toy_ml_csv, tmp_path):
    tab = app.parts["data"]
    first, _ = _load(tab.on_load_fresh, str(toy_ml_csv), 32, "default", "auto-detect", "|")
    assert first[app.data_state].multi_label
    second = write_csv(tmp_path / "reviews.csv", [(f"a review {i}", i % 3 + 1) for i in range(30)],
                       header=("review", "stars"))
    out, err = _load(tab.on_load_fresh, str(second), 32, "default", "auto-detect", "|")
    assert err is None and not out[app.data_state].multi_label
    assert "3 classes." in out[tab.status] and "Multi-label" not in out[tab.report]
    view = tab.on_label_view(out[tab.label_view])
    assert [c[0] for c in view[tab.label_cols].choices] == ["review", "stars"] and view[tab.label_cols].value == []
    assert view[tab.multilabel_row].visible is False and view[tab.cooccurrence_plot] is None


def test_one_label_per_text_keeps_a_cell_with_the_separator_as_one_class(app, toy_ml_csv):
    tab = app.parts["data"]
    out, err = _load(tab.on_load, str(toy_ml_csv), None, None, 32, "default", None, "one label", "|")
    assert err is None
    loaded = out[app.data_state]
    assert not loaded.multi_label and loaded.choice.per_text == "one"
    assert "food|sport" in loaded.labels and "food" in loaded.labels
    # one label per text: "none" is no class but a missing label (as in any single-label file): those rows drop
    assert loaded.rows == sum(cell != "none" for _, cell in toy_multilabel_rows())


def test_start_trains_the_file_as_read_and_the_job_keeps_the_choice(app, tmp_path, tiny_model_dir):
    """The Train tab's Start on a 0/1 file: a multi-label run with thresholds, micro-F1 and the thresholds in the
    run's summary line, and the label choice in the job's saved parameters (read back as a restart would)."""
    from bertdemo.jobs import JobStore
    from bertdemo.ui.tabs.train import config_defaults, ended_note

    tab, train = app.parts["data"], app.parts["train"]
    rows = [(text, *(int(label in _sets(cell)) for label in LABELS)) for text, cell in toy_multilabel_rows()]
    path = write_csv(tmp_path / "flags.csv", rows, header=("text", *LABELS))
    out, err = _load(tab.on_load_fresh, str(path), 32, "default", "auto-detect", "|")
    assert err is None
    settings = {**{name: config_defaults()[name] for name in train.settings},
                "model": str(tiny_model_dir), "epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "max_length": 32,
                "min_steps": 0, "freeze_word_embeddings": False}
    started = train.on_start(out[app.data_state], SimpleNamespace(username="alice", session_hash="s1"), **settings)
    job = app.runner.wait(started[train.job_id], timeout=300)
    assert job.state == "done", job.reason
    run = Path(app.workspace.root) / job.result["run"]
    config = json.loads((run / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification" and set(config["thresholds"]) == set(LABELS)
    assert job.result["metrics"]["thresholds"] == config["thresholds"]
    note = ended_note(job, app.runner.store.events(job.id)[-1])
    assert f"micro-F1 {job.result['metrics']['micro_f1']:.3f}" in note and "thresholds tuned on validation" in note
    kept = JobStore.for_workspace(app.workspace).get(job.id).params  # what a restarted server reads
    assert kept["labels"] == {"per_text": "several", "sep": "|", "cols": list(LABELS)} and kept["multi_label"]
