"""The Label tab through the app's API (gradio_client): import, a queue, answers, undo, two sessions at once,
bulk accept, export, and Retrain into the Train tab's job. One app per module; each Client is one browser tab."""
from __future__ import annotations

import re
import time

import pandas as pd
import pytest
from gradio_client import Client, handle_file

from conftest import toy_rows, write_csv
from conftest_ui import train_to_end

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # an app server

VIEW = ["item", "info", "probs", "progress", "other_label", "status"]  # buttons are not API values


def _view(values) -> dict:
    return dict(zip(VIEW, values))


def _current(view: dict) -> int | None:
    """The id of the item the server has current: the served view's ``data-current``; every answer names it."""
    found = re.search(r'data-current="(\d+)"', view["item"])
    return int(found.group(1)) if found else None


@pytest.fixture(scope="module")
def project_file(tmp_path_factory):
    rows = toy_rows(per_class=10, seed=4)
    rows = [(t, label if i % 2 else "") for i, (t, label) in enumerate(rows)]  # half unlabeled
    return write_csv(tmp_path_factory.mktemp("label") / "toy_project.csv", rows)


TINY = dict(epochs=1, batch_size=8, learning_rate=1e-3, max_length=32, max_train_rows=0, warmup_ratio=0.0,
            weight_decay=0.01, seed=1, validation_split=0.2, evals_per_epoch=1, patience=0,
            freeze_word_embeddings=False, min_steps=0)


@pytest.fixture(scope="module")
def imported(client, project_file):
    report, project, status = client.predict(handle_file(str(project_file)), "toy", api_name="/label_import")
    assert "30 new items" in report or "30 new" in report
    return "toy"


def test_import_then_label_with_keys_undo_and_progress(app_url, imported):
    tab = Client(app_url[0], verbose=False)
    first = _view(tab.predict(imported, "ann", "in order", False, True, api_name="/label_start"))
    assert "Queue" in first["status"] and "15 items" in first["status"]  # the unlabeled ones
    assert [c[0] for c in first["other_label"]["choices"]] == ["food", "sport", "weather"]  # keys 1, 2, 3
    assert "15 / 30 labeled" in first["progress"] and "unlabeled" in first["info"]
    assert "import 15" in first["progress"] and "next in import order" in first["info"]  # not "anonymous", "order 15"
    before = _current(first)
    second = _view(tab.predict(str(before), "ann", True, api_name="/label_key_2"))  # key 2: sport
    assert _current(second) != before and "Labeled item" in second["status"] and "sport" in second["status"]
    assert "16 / 30 labeled" in second["progress"] and "ann 1" in second["progress"]
    undone = _view(tab.predict("", True, api_name="/label_undo"))
    assert "Undone: 1 item" in undone["status"] and _current(undone) == before  # back on the undone item
    assert "15 / 30 labeled" in undone["progress"]
    skipped = _view(tab.predict(str(before), True, api_name="/label_skip"))
    assert _current(skipped) != before
    refused = _view(tab.predict(str(_current(skipped)), "ann", True, api_name="/label_key_9"))
    assert "no label number 9" in refused["status"] and "15 / 30 labeled" in refused["progress"]


def test_two_sessions_are_not_served_the_same_item(app_url, imported):
    a, b = Client(app_url[0], verbose=False), Client(app_url[0], verbose=False)
    first_a = _view(a.predict(imported, "ann", "random", False, False, api_name="/label_start"))
    first_b = _view(b.predict(imported, "bob", "random", False, False, api_name="/label_start"))
    assert _current(first_a) != _current(first_b)  # the same seeded order, but a's item is locked for a
    assert first_a["info"].endswith("a random pick")  # no made-up score
    after_a = _view(a.predict(str(_current(first_a)), "ann", False, api_name="/label_key_1"))
    assert _current(after_a) != _current(first_b)  # a's prefetched items are not b's current one either


@pytest.fixture(scope="module")
def race(client, tmp_path_factory):
    """A second project, for two writers on one item (apart from "toy", whose counts the tests above check); big
    enough that each tab's claims (the item on screen and the ones after it) leave items for the next tab."""
    rows = [(t, label if i % 2 else "") for i, (t, label) in enumerate(toy_rows(per_class=8, seed=9))]
    path = write_csv(tmp_path_factory.mktemp("race") / "race.csv", rows)
    client.predict(handle_file(str(path)), "race", api_name="/label_import")
    return "race"


def test_an_answer_to_an_item_relabeled_meanwhile_is_refused_then_replaces_it_knowingly(app_url, race):
    from bertdemo.labeling.history import set_label
    from bertdemo.labeling.store import LabelStore

    store = LabelStore.for_workspace(app_url[1])
    tab = Client(app_url[0], verbose=False)
    shown = _view(tab.predict(race, "ann", "in order", False, False, api_name="/label_start"))
    item = _current(shown)
    set_label(store, race, item, "weather", annotator="kim", session="cli")  # the CLI labels it meanwhile
    refused = _view(tab.predict(str(item), "ann", False, api_name="/label_key_1"))  # key 1: food
    assert "Not saved" in refused["status"] and "weather" in refused["status"]
    assert _current(refused) == item and "current label **weather**" in refused["info"]  # shown again
    assert 'data-outcome="refused"' in refused["item"]
    assert store.item(race, item).label == "weather"
    replaced = _view(tab.predict(str(item), "ann", False, api_name="/label_key_1"))  # now knowingly
    assert f"Labeled item {item}" in replaced["status"] and store.item(race, item).label == "food"


@pytest.fixture(scope="module")
def ids(client, tmp_path_factory):
    """A project of its own: the test's tab keeps its claims on items that the other tests would be served."""
    rows = [(t, label if i % 3 == 0 else "") for i, (t, label) in enumerate(toy_rows(per_class=4, seed=5))]
    client.predict(handle_file(str(write_csv(tmp_path_factory.mktemp("ids") / "ids.csv", rows))), "ids",
                   api_name="/label_import")
    return "ids"


def test_an_answer_names_its_item_and_one_for_another_item_is_refused_and_labels_nothing(app_url, ids):
    """The page may run a few presses ahead of the server: an answer carries the id of the item on screen at the
    press, and the server saves it only for the item this session has current — a stale id (already answered),
    a foreign one (never served here, or served later), or none is refused with one message, not an error."""
    from bertdemo.labeling.history import last_change
    from bertdemo.labeling.store import LabelStore

    store = LabelStore.for_workspace(app_url[1])
    tab = Client(app_url[0], verbose=False)
    first = _view(tab.predict(ids, "ann", "random", False, False, api_name="/label_start"))
    a = _current(first)
    upcoming = [int(i) for i in re.findall(r'data-item-id="(\d+)"', first["item"])][1:]
    assert upcoming and a not in upcoming  # the cards the page may show ahead, each with its id
    second = _view(tab.predict(f"{a}@7", "ann", False, api_name="/label_key_2"))
    assert f"Labeled item {a}" in second["status"] and 'data-ticket="7"' in second["item"]  # the press's ticket
    b, before = _current(second), last_change(store, ids)
    foreign = next(i.id for i in store.items(ids, labeled=False) if i.id not in (a, b))
    for shown, says in [(f"{a}@8", f"item {a} (already answered or skipped here)"), (str(foreign), f"item {foreign}"),
                        ("", "did not say which item")]:
        for api in ("/label_key_1", "/label_accept"):
            refused = _view(tab.predict(shown, "ann", False, api_name=api))  # no exception: a view and a message
            assert "Not saved" in refused["status"] and says in refused["status"], refused["status"]
            assert f"on item {b}" in refused["status"] or "did not say" in refused["status"]
            assert _current(refused) == b and 'data-outcome="refused"' in refused["item"]
        assert "Not saved" in _view(tab.predict(shown, False, api_name="/label_skip"))["status"]
    assert last_change(store, ids) == before  # nothing was written
    assert store.item(ids, a).label == "sport" and store.item(ids, b).label is None
    assert store.item(ids, foreign).label is None
    no_model = _view(tab.predict(str(b), "ann", False, api_name="/label_accept"))  # Enter without a suggestion
    assert "no suggestion to accept" in no_model["status"] and last_change(store, ids) == before
    assert f"Labeled item {b}" in _view(tab.predict(str(b), "ann", False, api_name="/label_key_1"))["status"]


def test_undo_from_another_tab_takes_back_ones_own_last_label(app_url, race, monkeypatch):
    from bertdemo.labeling.store import LabelStore
    from bertdemo.ui.page import Page

    monkeypatch.setattr(Page, "user", lambda self, request: "kim")  # one person: a login, or one browser
    store = LabelStore.for_workspace(app_url[1])
    first = Client(app_url[0], verbose=False)
    item = _current(_view(first.predict(race, "kim", "in order", False, False, api_name="/label_start")))
    first.predict(str(item), "kim", False, api_name="/label_key_2")
    assert store.item(race, item).label == "sport"
    second = Client(app_url[0], verbose=False)  # a reload, or a second tab
    second.predict(race, "kim", "in order", False, False, api_name="/label_start")
    undone = _view(second.predict("", False, api_name="/label_undo"))
    assert "Undone: 1 item" in undone["status"] and store.item(race, item).label is None


@pytest.fixture(scope="module")
def retrained(client, imported, ui_model_dir):
    """Retrain on the project's labels (the Label tab's button, then the Train tab's job): the run suggests."""
    note = client.predict(imported, "the base model", api_name="/label_retrain")
    assert "Retraining on **toy**" in note
    settings = {**TINY, "epochs": 20, "learning_rate": 1e-2, "batch_size": 4}
    status = train_to_end(client, model=ui_model_dir, **settings)
    assert status["state"] == "done" and status["kind"] == "retrain", status
    client.predict(status["result"]["run"], api_name="/load_run")
    return status["result"]["run"]


def test_retrain_records_the_project_snapshot_and_compares_on_frozen_rows(retrained, app_url):
    import json
    from pathlib import Path

    run = json.loads((Path(app_url[1]) / retrained / "run.json").read_text())
    assert run["provenance"]["project"] == "toy" and run["provenance"]["validation_items"] >= 3
    assert run["data_source"] == "toy" and run["validation_rows"] == run["provenance"]["validation_items"]


def test_retrain_continues_the_projects_last_run(ui_model_dir, app_url, tmp_path):
    """Retrain's default (issue 18): a labeling round from the project's last run, said in the run's notes. The
    first has no run to continue (it starts from the base model, no refusal); the second continues it; the model
    the Train tab shows (the base) is the run's lineage, and settings typed there are kept."""
    import json
    from pathlib import Path

    # another browser, and labels of its own: neither this page's jobs nor "toy"'s suggesting runs see it
    client = Client(app_url[0], verbose=False)
    rows = [(text, label.upper()) for text, label in toy_rows(per_class=8, seed=11)]
    client.predict(handle_file(str(write_csv(tmp_path / "rounds.csv", rows))), "rounds", api_name="/label_import")
    runs = []
    for _ in range(2):
        note = client.predict("rounds", "the last run's weights", api_name="/label_retrain")
        assert "Retraining on **rounds**" in note
        status = train_to_end(client, model=ui_model_dir, **{**TINY, "epochs": 2})
        assert status["state"] == "done" and status["kind"] == "retrain", status
        runs.append((status, json.loads((Path(app_url[1]) / status["result"]["run"] / "run.json").read_text())))
    (_, first), (second_status, second) = runs
    assert first["provenance"]["warm_from"] is None
    start = next(e for e in second_status["events"] if e["event"] == "StartEvent")
    assert any(n.startswith(f"continues from {first['name']}'s weights") for n in start["notes"]), start["notes"]
    assert start["epochs"] == 2  # typed on the Train tab: kept
    assert second["provenance"]["warm_from"] == first["name"]
    assert second["provenance"]["base_model"] == str(ui_model_dir)


def test_a_model_suggests_and_bulk_accept_is_one_undoable_step(app_url, client, retrained, imported):
    from bertdemo.labeling.store import LabelStore

    store = LabelStore.for_workspace(app_url[1])
    with store.read() as conn:
        holders = {holder for (holder,) in conn.execute("SELECT holder FROM locks")}
    for holder in holders:
        store.release(holder)  # the tabs of the tests above are gone; gradio_client never closes them
    view = _view(client.predict(imported, "ann", "uncertain (margin)", False, True, api_name="/label_start"))
    assert "the model suggests" in view["info"]
    deadline = time.time() + 60  # the highlights: "being computed", then there when the page asks again
    while 'data-highlights="pending"' in view["item"].split("bd-upcoming")[0] and time.time() < deadline:
        assert "word highlights are being computed" in view["item"]
        time.sleep(0.3)
        view = _view(client.predict(str(_current(view)), True, api_name="/label_redraw"))
    assert 'data-highlights="pending"' not in view["item"].split("bd-upcoming")[0] and "rgba(" in view["item"]
    confidences = {c["label"]: c["confidence"] for c in view["probs"]["confidences"]}
    assert abs(sum(confidences.values()) - 1) < 1e-3
    summary, sample = client.predict(0.5, api_name="/label_bulk_preview")
    n = int(summary.split("**")[1].split()[0])
    assert n > 0 and len(sample["data"]) > 0, (summary, view["probs"])
    applied = client.predict(0.5, "ann", False, api_name="/label_bulk_apply")
    assert f"Accepted **{n}**" in applied[-1]
    assert "Accepted" in _view(applied[:-1])["status"]
    assert "Undone" in _view(client.predict("", False, api_name="/label_undo"))["status"]


def test_export_has_provenance_and_is_spreadsheet_safe(client, imported):
    path = client.predict(imported, True, api_name="/label_export")
    exported = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(exported.columns) == ["text", "label", "how", "annotator", "updated", "split"]
    assert len(exported) >= 15 and set(exported["how"]) <= {"imported", "human", "suggestion", "bulk"}


def test_highlighted_items_read_exactly_as_the_original_text():
    """The highlights come from an uncased tokenizer; the item on screen still keeps its case, accents, spacing
    and the part past max_length (the page swaps in the highlighted next item, then the plain one may follow)."""
    import numpy as np

    from bertdemo.models import load_tokenizer
    from bertdemo.ui.label_view import item_html, text_pieces

    tokenizer = load_tokenizer("default")
    text = "Élan of the Café: DON'T stop, naïve <b>résumé</b> " + "tail " * 10
    n = len(tokenizer(text, truncation=True, max_length=12)["input_ids"])
    pieces = text_pieces(tokenizer, text, 12, np.linspace(-1, 1, n), special=[i in (0, n - 1) for i in range(n)])
    assert "".join(piece for piece, _ in pieces) == text
    assert ("Café", pytest.approx(pieces[6][1])) == pieces[6] and pieces[-1][1] is None  # the cut tail: unscored
    html = item_html(text, pieces)
    assert "<b>" not in html and "&lt;b&gt;résumé&lt;/b&gt;" in html and "Élan" in html


def test_prefetched_highlights_call_the_tokenizer_under_the_predictors_lock(tiny_run, monkeypatch):
    from bertdemo.inference.predict import get_predictor
    from bertdemo.ui.label_view import Prefetcher

    predictor = get_predictor(tiny_run)  # the cached one, which the prefetcher's thread uses too
    tokenizer, held = predictor.tokenizer, []

    class Watched:  # the tokenizer, noting for each call whether the predictor's lock was held
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def __call__(self, *args, **kwargs):
            held.append(predictor._tokenizer_lock.locked())
            return tokenizer(*args, **kwargs)

    monkeypatch.setattr(predictor, "tokenizer", Watched())
    words = Prefetcher().wait(str(tiny_run), 1, "Rain  and PIZZA today", None)
    assert "".join(piece for piece, _ in words) == "Rain  and PIZZA today"  # the offsets path ran
    assert held and all(held)


def test_a_failed_prefetch_is_logged_and_computed_again_next_time(monkeypatch, caplog):
    import logging

    from bertdemo.ui import label_view

    attempts = []

    def flaky(run_dir, text, target):
        attempts.append(text)
        if len(attempts) == 1:
            raise RuntimeError("out of memory for a moment")
        return [(text, 1.0)]

    monkeypatch.setattr(label_view, "_word_scores", flaky)
    prefetch = label_view.Prefetcher()
    with caplog.at_level(logging.WARNING, logger="bertdemo.ui.label_view"):
        with pytest.raises(RuntimeError, match="out of memory"):
            prefetch.wait("run", 7, "a text", "x")
        assert prefetch.wait("run", 7, "a text", "x") == [("a text", 1.0)] and len(attempts) == 2  # tried again
    assert "word highlights failed" in caplog.text and "out of memory" in caplog.text
    assert prefetch.wait("run", 7, "a text", "x") == [("a text", 1.0)] and len(attempts) == 2  # a success is kept


def test_items_on_other_labelers_screens_are_not_called_done(app_url, client, tmp_path):
    """Three unlabeled items (of six), all on the first tab's screen (the item and the ones after it): a second labeler is
    told they are held elsewhere and when they come back, not that the queue is done; once the first tab has
    labeled them, it is done."""
    rows = [(t, label if i < 3 else "") for i, (t, label) in enumerate(toy_rows(per_class=2, seed=12))]
    client.predict(handle_file(str(write_csv(tmp_path / "three.csv", rows))), "three", api_name="/label_import")
    first, second = Client(app_url[0], verbose=False), Client(app_url[0], verbose=False)
    view = _view(first.predict("three", "ann", "in order", False, False, api_name="/label_start"))
    held = _view(second.predict("three", "bob", "in order", False, False, api_name="/label_start"))
    assert _current(held) is None and "The 3 items left in this queue are on screen in other sessions" in held["item"]
    assert "press Start again" in held["item"] and "This queue is done" not in held["item"]
    for _ in range(3):
        view = _view(first.predict(str(_current(view)), "ann", False, api_name="/label_key_1"))
        assert "Labeled item" in view["status"], view["status"]
    assert "This queue is done" in view["item"]
    done = _view(second.predict("three", "bob", "in order", False, False, api_name="/label_start"))
    assert "This queue is done" in done["item"]


def test_a_new_project_starts_labeling_at_once_in_import_order(client, tmp_path):
    """No model yet: the project starts in import order; an uncertainty queue, or labeling as nobody, gets one
    message in the status line (no error on every output), and in order then starts at once."""
    rows = [(t, "") for t, _ in toy_rows(per_class=3, seed=11)]
    client.predict(handle_file(str(write_csv(tmp_path / "fresh.csv", rows))), "fresh", api_name="/label_import")
    queue, model = client.predict("fresh", api_name="/label_project")
    strategy = queue["value"]
    assert (strategy, model["value"]) == ("in order", "none")
    assert "the uncertainty queues come once the project has a run" in queue["info"]  # the tab says so
    refused = _view(client.predict("fresh", "ann", "uncertain (margin)", False, False, api_name="/label_start"))
    assert "needs a model" in refused["status"] and "project fresh has none yet" in refused["status"]
    nobody = _view(client.predict("fresh", "", strategy, False, False, api_name="/label_start"))
    assert "Type your name" in nobody["status"]
    started = _view(client.predict("fresh", "ann", strategy, False, False, api_name="/label_start"))
    assert "9 items, no suggestions" in started["status"] and "next in import order" in started["info"]


@pytest.fixture(scope="module")
def other_tab(app_url, small_csv, ui_model_dir, retrained):
    """Another tab that trained a newer run on another file (the news sample: other labels) and loaded it on the
    Models tab; returns the tab and that run."""
    tab = Client(app_url[0], verbose=False)
    tab.predict(handle_file(small_csv), None, None, 32, api_name="/load_data")
    status = train_to_end(tab, model=ui_model_dir, **TINY)
    assert status["state"] == "done" and status["kind"] == "train", status
    tab.predict(status["result"]["run"], api_name="/load_run")
    return tab, status["result"]["run"]


def test_the_projects_own_run_suggests_not_the_newest_or_the_loaded_one(imported, retrained, other_tab):
    tab, other_run = other_tab
    queue, model = tab.predict(imported, api_name="/label_project")
    strategy = queue["value"]
    assert (strategy, model["value"]) == ("uncertain (margin)", retrained)
    assert [value for _, value in model["choices"]] == [retrained, "none"]  # the other run has other labels
    view = _view(tab.predict(imported, "ann", strategy, False, False, api_name="/label_start"))
    assert f"suggestions from `{retrained}`" in view["status"] and "the model suggests" in view["info"]
    assert "between the two likeliest classes" in view["info"]
    with pytest.raises(Exception, match="trained on other labels"):  # picked anyway: still refused
        tab.predict(imported, "ann", strategy, False, False, other_run, api_name="/label_start")


def test_a_retrain_that_ends_takes_over_the_suggestions_by_itself(app_url, client, imported, retrained):
    """The page was labeling without a model when the project's retrain ended: the jobs view's next tick (what
    every page runs each second) puts the new run in charge, the item on screen first, without Start again."""
    from dataclasses import dataclass

    from bertdemo.ui.tabs.label import NO_SUGGESTIONS

    @dataclass
    class Request:  # the page of the tab that started the retrain
        session_hash: str
        username: str | None = None

    page = app_url[2].bertdemo_page
    label, request = page.parts["label"], Request(client.session_hash)
    session = label.on_start(imported, "ann", "in order", False, False, NO_SUGGESTIONS, request)[label.state]
    assert session.run is None and session.current.suggested is None
    updates = page.watch.on_tick({}, request, session, imported, False)
    after = updates[label.state]
    assert after.run.endswith(retrained) and after.current.id == session.current.id  # the same item, now suggested
    assert after.current.suggested is not None and "the model suggests" in updates[label.info]
    assert f"now come from `{retrained}`" in updates[label.status] and updates[label.model].value == retrained
    later = page.watch.on_tick(updates[page.watch.seen], request, after, imported, False)  # its next tick
    assert label.state not in later and label.compare not in later  # applied once
    reloaded = page.watch.on_tick({}, request, None, imported, False)  # a reload: drawn, nothing to take over
    assert label.state not in reloaded and "Frozen validation set" in reloaded[label.compare]


def test_suspicious_label_progress_shows_folds_rows_and_time_left(client, imported, ui_model_dir, monkeypatch):
    import bertdemo.labeling.suspicious as suspicious
    from bertdemo.ui.tabs.label import fold_progress_html
    from conftest_ui import wait_job

    monkeypatch.setattr(suspicious, "FOLD_SETTINGS", {**suspicious.FOLD_SETTINGS, "model": ui_model_dir,
                                                      "min_steps": 10, "max_length": 32})
    started = _view(client.predict(imported, "ann", "suspicious labels", False, False, api_name="/label_start"))
    assert "step 0/100" not in started["status"] and "epoch" not in started["status"]
    job = client.predict(api_name="/list_jobs")[0]
    status = wait_job(client, job["id"], timeout=600)
    progress = [e for e in status["events"] if e["event"] == "FoldProgress"]
    folds, last = [e for e in progress if not e["neighbours"]], progress[-1]
    assert folds and "rows scored" in folds[-1]["note"] and folds[-1]["scored"] == folds[-1]["rows"] > 0
    # then the pass that finds each text's nearest neighbours, the last of 3 folds + 1
    assert last["neighbours"] and last["fold"] == last["folds"] == 4 and last["step"] == last["steps"] == last["rows"]
    assert "nearest neighbours (4 of 4)" in last["note"] and "texts embedded" in last["note"]
    html = fold_progress_html(folds[len(folds) // 2], note="suspicious labels in toy")
    assert "fold " in html and " of 4 · step " in html and "rows scored · ETA" in html
    assert "epoch" not in html and "examples/s" not in html and "lr " not in html
    record = {"fold": 2, "folds": 3, "step": 40, "steps": 100, "scored": 120, "rows": 360, "elapsed_s": 50.0,
              "eta_s": 65.0, "fraction": 0.46, "note": "x", "event": "FoldProgress"}
    assert "47% · fold 2 of 3 · step 40/100 · 120 of 360 rows scored · ETA 1:05" in fold_progress_html(record)
