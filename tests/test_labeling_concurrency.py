"""Two writers at once: one frozen validation set for two retrains, and the label snapshot a retrain records."""
from __future__ import annotations

import contextlib
import threading

import pytest

from bertdemo.labeling.history import changes_since, set_label
from bertdemo.labeling.store import LabelStore
from bertdemo.labeling.transfer import import_rows
from conftest import toy_rows


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
