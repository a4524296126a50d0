"""Two writers on the same item: the label an answer was shown, soft locks and their renewal, undo across tabs,
one frozen validation set for two retrains at once, and the label snapshot a retrain records."""
from __future__ import annotations

import contextlib
import threading
from types import SimpleNamespace

import pytest

from bertdemo.labeling import store as store_module
from bertdemo.labeling.history import Changed, LabelChanged, changes_since, set_label, set_labels, undo
from bertdemo.labeling.queues import ordered_queue, serve
from bertdemo.labeling.store import LOCK_SECONDS, LabelStore
from bertdemo.labeling.transfer import import_rows
from conftest import toy_rows


@pytest.fixture()
def store(tmp_path) -> LabelStore:
    store = LabelStore(tmp_path / "labels.sqlite3")
    import_rows(store, "p", ["first text", "second text", "third text"])
    store.add_label("p", "x")
    store.add_label("p", "y")
    return store


def _ids(store) -> list[int]:
    return [i.id for i in store.items("p")]


def _changes(store, item_id) -> int:
    with store.read() as conn:
        return conn.execute("SELECT COUNT(*) FROM changes WHERE item_id = ?", (item_id,)).fetchone()[0]


def test_an_answer_to_an_item_relabeled_since_it_was_shown_is_refused(store):
    a, b, c = _ids(store)
    # Tab 1 and the CLI both see item a unlabeled; the CLI answers first.
    set_label(store, "p", a, "y", annotator="bob", session="cli", expected=None)
    with pytest.raises(LabelChanged, match=r"Not saved: item \d+ is now labeled 'y' by bob; it was unlabeled") as no:
        set_label(store, "p", a, "x", annotator="ann", session="tab-1", expected=None)
    assert isinstance(no.value, ValueError) and no.value.changed == [Changed(item=a, shown=None, now="y",
                                                                              annotator="bob")]
    assert "answering once more replaces 'y'" in str(no.value)
    assert store.item("p", a).label == "y" and _changes(store, a) == 1  # bob's label stands, nothing recorded
    set_label(store, "p", a, "x", annotator="ann", session="tab-1", expected="y")  # now knowingly: replaced
    assert store.item("p", a).label == "x" and _changes(store, a) == 2
    # Someone gave it the very label meanwhile: no conflict, and theirs stands as it is.
    set_label(store, "p", b, "x", annotator="bob", expected=None)
    assert set_label(store, "p", b, "x", annotator="ann", how="suggestion", expected=None) is None
    assert (store.item("p", b).annotator, store.item("p", b).how) == ("bob", "human")
    # One changed item stops a whole step: nothing of it is written.
    with pytest.raises(LabelChanged, match="Nothing saved: 1 of the 2 items"):
        set_labels(store, "p", [(c, "y"), (b, "y")], annotator="ann", expected={c: None, b: None})
    assert [i.label for i in store.items("p")] == ["x", "x", None]


def test_answering_releases_only_the_answering_tabs_claim(store):
    a, b, _ = _ids(store)
    assert store.claim("p", "tab-1", [a], 1, seconds=-1) == [a]  # tab 1's claim lapsed while a was on screen...
    assert store.claim("p", "tab-2", [a], 1) == [a]  # ...and tab 2 was served a
    set_label(store, "p", a, "x", annotator="ann", session="tab-1", expected=None)  # a soft lock: still saved
    assert store.locked_by_others("p", "tab-1") == {a}  # tab 2 keeps its claim
    with pytest.raises(LabelChanged, match="is now labeled 'x' by ann"):  # and its answer meets tab 1's label
        set_label(store, "p", a, "y", annotator="bob", session="tab-2", expected=None)
    assert store.item("p", a).label == "x"
    assert store.claim("p", "tab-2", [b], 1) == [b]
    set_label(store, "p", b, "y", annotator="bob", session="tab-2", expected=None)
    assert store.locked_by_others("p", "tab-1") == {a}  # tab 2's answer to b released b only


def test_a_claim_renewed_while_its_item_is_on_screen_outlasts_the_lock_time(store, monkeypatch):
    clock = SimpleNamespace(now=1_000.0)
    monkeypatch.setattr(store_module, "time", SimpleNamespace(time=lambda: clock.now))
    queue = ordered_queue(store, "p", "in_order")
    shown, _ = serve(store, "p", queue, 0, "tab-1")
    clock.now += 0.8 * LOCK_SECONDS
    assert store.renew("p", "tab-1", [shown[0].id]) == [shown[0].id]  # tab 1 is still at it
    clock.now += 0.8 * LOCK_SECONDS  # past the first claim's end
    other, _ = serve(store, "p", queue, 0, "tab-2")
    assert other[0].id != shown[0].id
    clock.now += 1.1 * LOCK_SECONDS  # tab 1 went away: its claim lapses, and the item goes to tab 2
    assert [e.id for e in serve(store, "p", queue, 0, "tab-2", n=2)[0]] == [shown[0].id, other[0].id]
    assert store.renew("p", "tab-1", [shown[0].id]) == []  # too late to renew: tab 2 has it now


def test_undo_follows_the_owner_across_tabs(store):
    a, b, _ = _ids(store)
    set_label(store, "p", a, "x", annotator="ann", session="tab-1", owner="user:ann")
    set_label(store, "p", b, "x", annotator="bob", session="tab-2", owner="user:bob")
    done = undo(store, "p", owner="user:ann", session="tab-3")  # ann after a reload: another tab
    assert done.restored == [a] and store.item("p", a).label is None
    assert store.item("p", b).label == "x"  # bob's later step is bob's to undo
    assert undo(store, "p", owner="user:ann").step is None
    with pytest.raises(ValueError, match="whose step"):
        undo(store, "p", owner="")


@pytest.fixture()
def labeled(tmp_path) -> LabelStore:
    store = LabelStore(tmp_path / "labeled.sqlite3")
    rows = toy_rows(per_class=10, seed=1)
    import_rows(store, "p", [t for t, _ in rows] + ["a text labeled late"], [label for _, label in rows] + [None])
    return store


def test_two_retrains_at_once_freeze_one_validation_set(labeled, monkeypatch):
    from bertdemo.config import TrainConfig
    from bertdemo.labeling import retrain

    results: dict = {}

    def other_retrain() -> None:  # the CLI's retrain, with another seed, beside the app's
        try:
            results["other"] = retrain.freeze_validation(labeled, "p", TrainConfig(seed=7))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            results["other"] = err

    other = threading.Thread(target=other_retrain)
    other_writes = threading.Event()
    real_split, real_write = retrain.train_test_split, labeled.write

    def split_while_the_other_runs(*args, **kwargs):
        if threading.current_thread() is not other:  # the first retrain, after its check: the other one runs
            other.start()  # up to its own write (or waits for ours)
            assert other_writes.wait(30)
        return real_split(*args, **kwargs)

    @contextlib.contextmanager
    def write():
        if threading.current_thread() is other:
            other_writes.set()
        with real_write() as conn:
            yield conn

    monkeypatch.setattr(retrain, "train_test_split", split_while_the_other_runs)
    monkeypatch.setattr(labeled, "write", write)
    first = retrain.freeze_validation(labeled, "p", TrainConfig(seed=1))
    other.join(30)
    assert results["other"] == first  # the second retrain found the first one's set
    assert [i.id for i in labeled.items("p", split="validation")] == first


def test_a_label_written_while_a_retrain_reads_is_not_counted_as_trained_on(labeled, monkeypatch):
    from bertdemo.config import TrainConfig
    from bertdemo.labeling import retrain

    late = labeled.items("p", labeled=False)[0]
    real = retrain.last_change

    def label_then_read(*args, **kwargs):  # between the retrain's read of the items and of the last change
        set_label(labeled, "p", late.id, "food", annotator="bob")
        return real(*args, **kwargs)

    monkeypatch.setattr(retrain, "last_change", label_then_read)
    data = retrain.project_data(labeled, "p", TrainConfig(seed=1))
    assert late.text not in set(data.train["text"]) | set(data.validation["text"])
    moved = changes_since(labeled, "p", data.provenance["snapshot"])
    assert moved["changes"] == 1 and moved["per_class"]["food"]["in"] == 1  # the next retrain's news
