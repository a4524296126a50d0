"""The Label tab in a multi-label project, through the app's API (gradio_client), as the page's loop sends it:
each answer carries the whole set on screen ("ITEM:m=SET"), or accepts the suggested set shown ("ITEM:a=SET");
the store then holds exactly that set, "no label applies" included, and undo puts the previous set back. Number
keys toggle on the page only: sent to the server, they are refused and save nothing."""
from __future__ import annotations

import json
import re
import shutil
from urllib.parse import quote

import pytest
from gradio_client import Client

from conftest import toy_multilabel_rows

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # an app server

LABELS = ["food", "sport", "weather"]
from test_ui_label import _current, _view  # noqa: E402 - the Label tab's API views, read one way


def _set(labels) -> str:
    """A set as the page's loop encodes it in a press (encodeURIComponent of its JSON)."""
    return quote(json.dumps(list(labels)), safe="")


def multilabel_project(store, name: str, n: int = 12, texts: list[str] | None = None) -> str:
    """A multi-label project of ``n`` unlabeled texts with the labels food, sport, weather (keys 1, 2, 3)."""
    from bertdemo.labeling.transfer import import_rows

    store.create_project(name, LABELS, multi_label=True)
    import_rows(store, name, texts or [f"Ticket {i:02d} about {LABELS[i % 3]} and more" for i in range(n)])
    return name


@pytest.fixture(scope="module")
def store(app_url):
    from bertdemo.labeling.store import LabelStore

    return LabelStore.for_workspace(app_url[1])


def test_saved_sets_are_exactly_the_ones_sent_and_undo_restores_the_previous_set(app_url, store):
    from bertdemo.labeling.labelsets import decode_set
    from bertdemo.labeling.history import set_label_set

    project = multilabel_project(store, "tickets")
    tab = Client(app_url[0], verbose=False)
    first = _view(tab.predict(project, "ann", "in order", False, False, api_name="/label_start"))
    a = _current(first)
    # a toggle per label in the project's order, numbered, and "no label applies" as 0; nothing on yet
    assert re.findall(r'data-k="(\d)" data-label="(\w+)"', first["item"])[:3] == [("1", "food"), ("2", "sport"),
                                                                               ("3", "weather")]
    assert 'data-multi="1"' in first["item"] and 'data-k="0"' in first["item"] and "data-suggested" not in first["item"]
    assert "unlabeled" in first["info"]

    saved = _view(tab.predict(f"{a}@1", f"{a}:m={_set(['sport', 'food'])}", "ann", False, api_name="/label_answers"))
    assert decode_set(store.item(project, a).label) == ("food", "sport")
    assert f"Labeled item {a} **food + sport**" in saved["status"]
    b = _current(saved)
    assert b != a
    nothing = _view(tab.predict(f"{b}@2", f"{b}:m={_set([])}", "ann", False, api_name="/label_answers"))
    assert store.item(project, b).label == "[]" and "no label" in nothing["status"]  # "none", not unlabeled
    c = _current(nothing)

    undone = _view(tab.predict("@3", False, api_name="/label_undo"))
    assert "Undone: 1 item" in undone["status"] and _current(undone) == b and store.item(project, b).label is None

    # item c gets a set elsewhere (the CLI) while on screen: the answer is refused, shown again with its set now,
    # then saved knowingly; undo brings the earlier set back, not "unlabeled"
    c = _current(_view(tab.predict(f"{b}@4", f"{b}:m={_set(['weather'])}", "ann", False, api_name="/label_answers")))
    set_label_set(store, project, c, ["sport", "weather"], annotator="kim", session="cli")
    refused = _view(tab.predict(f"{c}@5", f"{c}:m={_set(['food'])}", "ann", False, api_name="/label_answers"))
    assert "Not saved" in refused["status"] and _current(refused) == c
    assert "labels now **sport + weather**" in refused["info"] and 'data-now="[&quot;sport&quot;, ' in refused["item"]
    assert decode_set(store.item(project, c).label) == ("sport", "weather")
    tab.predict(f"{c}@6", f"{c}:m={_set(['food'])}", "ann", False, api_name="/label_answers")
    assert decode_set(store.item(project, c).label) == ("food",)
    again = _view(tab.predict("@7", False, api_name="/label_undo"))
    assert "Undone: 1 item" in again["status"] and decode_set(store.item(project, c).label) == ("sport", "weather")


def test_a_number_key_an_unknown_label_or_a_suggestion_without_a_model_saves_nothing(app_url, store):
    from bertdemo.labeling.history import last_change

    project = multilabel_project(store, "refusals")
    tab = Client(app_url[0], verbose=False)
    item = _current(_view(tab.predict(project, "ann", "in order", False, False, api_name="/label_start")))
    before = last_change(store, project)
    for api, args, says in [
            ("/label_key_1", (str(item), "ann", False), "switch labels on and off"),  # toggles stay on the page
            ("/label_answers", (str(item), f"{item}:m={_set(['food', 'billing'])}", "ann", False), "'billing'"),
            ("/label_answers", (str(item), f"{item}:a", "ann", False), "no suggestion to accept"),
            ("/label_answers", (str(item), f"{item}:m=not-json", "ann", False), "not a label set")]:
        refused = _view(tab.predict(*args, api_name=api))
        assert says in refused["status"].lower() or says in refused["status"], refused["status"]
        assert _current(refused) == item and 'data-outcome="refused"' in refused["item"]
    assert last_change(store, project) == before and store.item(project, item).label is None


def test_enter_with_nothing_toggled_accepts_the_suggested_set_the_card_shows(app_url, store, tiny_ml_run):
    """With a multi-label run suggesting, each card shows each label's probability against its tuned threshold
    and the suggested set (the labels at or above it); accepting saves that set, credited to the suggestion, and a
    set that is not the one suggested now is refused."""
    from bertdemo.inference.predict import get_predictor
    from bertdemo.labeling.labelsets import decode_set, shown_set

    shutil.copytree(tiny_ml_run, app_url[1] / tiny_ml_run.name, dirs_exist_ok=True)
    project = multilabel_project(store, "suggested", texts=[text for text, _ in toy_multilabel_rows(40, seed=3)])
    tab = Client(app_url[0], verbose=False)
    first = _view(tab.predict(project, "ann", "in order", False, False, tiny_ml_run.name, api_name="/label_start"))
    item = _current(first)
    predictor = get_predictor(app_url[1] / tiny_ml_run.name)
    text = store.item(project, item).text
    probs = predictor.predict_proba([text])
    expected = predictor.decide(probs)[0]
    card = first["item"].split('<div class="bd-upcoming">')[0]
    assert f'data-suggested="{json.dumps(list(expected)).replace(chr(34), "&quot;")}"' in card
    for label, p, t in zip(predictor.labels, probs[0], predictor.thresholds):
        assert f'title="probability {p:.3f}, threshold {t:.3f}"' in card  # each toggle: p against its threshold
    other = [label for label in LABELS if label not in expected][:1] or []
    wrong = _view(tab.predict(f"{item}@1", f"{item}:a={_set(other)}", "ann", False, api_name="/label_answers"))
    assert "Not saved" in wrong["status"] and store.item(project, item).label is None
    accepted = _view(tab.predict(f"{item}@2", f"{item}:a={_set(expected)}", "ann", False, api_name="/label_answers"))
    saved = store.item(project, item)
    assert decode_set(saved.label) == tuple(expected) and saved.how == "suggestion"
    assert _current(accepted) != item

    # bulk accept offers sets too, each the one the thresholds decide for its text
    summary, sample = tab.predict(0.5, api_name="/label_bulk_preview")
    rows = sample["data"]
    assert "unlabeled items" in summary and sample["headers"] == ["text", "suggested", "probabilities"] and rows
    decided = predictor.decide(predictor.predict_proba([row[0] for row in rows]))
    assert [row[1] for row in rows] == [shown_set(labels) for labels in decided]


def test_a_multi_label_project_offers_the_queues_of_its_kind(app_url, store):
    project = multilabel_project(store, "kinds", n=3)
    queue, _ = Client(app_url[0], verbose=False).predict(project, api_name="/label_project")
    names = [c[0] for c in queue["choices"]]
    assert "uncertain (label nearest its threshold)" in names and "uncertain (margin)" not in names
    assert queue["value"] == "in order"  # no model yet


def test_the_import_panel_starts_a_multi_label_project_from_unlabeled_texts(app_url, store, tmp_path):
    """A team starting to tag tickets: unlabeled texts, 'several labels' and the labels to start with make a
    multi-label project whose first item shows a toggle per label; 0/1 columns picked by name are read; the old
    two-argument call still imports (auto-detect)."""
    from gradio_client import handle_file

    from conftest import write_csv

    texts = write_csv(tmp_path / "tickets.csv", [("refund me twice",), ("the app crashes",)], header=("text",))
    tab = Client(app_url[0], verbose=False)
    report, _, status = tab.predict(handle_file(str(texts)), "tagging", "several labels", "|", [],
                                    "billing, bug, feature", api_name="/label_import")
    info = store.project("tagging")
    assert info.multi_label and info.labels == ("billing", "bug", "feature") and "2 new items (2 unlabeled)" in report
    assert "multi-label; labels: billing, bug, feature" in status
    first = _view(tab.predict("tagging", "ann", "in order", False, False, api_name="/label_start"))
    assert re.findall(r'data-k="(\d)" data-label="(\w+)"', first["item"])[:3] == [("1", "billing"), ("2", "bug"),
                                                                               ("3", "feature")]
    with pytest.raises(Exception, match="may not be called 'none'"):
        tab.predict(handle_file(str(texts)), "tagging", "auto-detect", "|", [], "none", api_name="/label_import")

    columns = tmp_path / "cols.csv"
    columns.write_text("text,is_billing,is_bug,id\nrefund me,1,0,7\ncrash,0,1,8\n", encoding="utf-8")
    tab.predict(handle_file(str(columns)), "picked", "auto-detect", "|", ["is_billing", "is_bug"], "",
                api_name="/label_import")
    assert store.project("picked").label_format["label_cols"] == ["is_billing", "is_bug"]
    _, _, plain = tab.predict(handle_file(str(texts)), "plain", api_name="/label_import")
    assert not store.project("plain").multi_label and "single-label" in plain
