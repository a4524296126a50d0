"""The labeling store: import, history and undo, export, migrations, concurrent writers, and kill -9."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from bertdemo.labeling import schema
from bertdemo.labeling.history import changes_since, last_change, set_label, set_labels, undo
from bertdemo.labeling.store import LabelStore, text_key
from bertdemo.labeling.transfer import export_csv, import_file, import_rows
from conftest import ROOT

CHILD_ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.fixture()
def store(tmp_path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite3")


def _csv(path, rows, header="text,label"):
    pd.DataFrame(rows, columns=header.split(",")).to_csv(path, index=False)
    return path


def test_import_is_idempotent_keeps_unlabeled_rows_and_reports_conflicts(store, tmp_path):
    first = _csv(tmp_path / "a.csv", [("Rain again today", "weather"), ("The match was won", "sport"),
                                      ("An unlabeled text", None), ("  ", "sport")])
    report = import_file(store, "news", first)
    assert (report.added, report.unlabeled, report.empty, report.new_labels) == (3, 1, 1, ["sport", "weather"])
    again = import_file(store, "news", first)
    assert (again.added, again.already, again.conflict_count) == (0, 3, 0)  # the same file adds nothing
    second = _csv(tmp_path / "b.csv", [(" Rain   again\ttoday", "sport"), ("An unlabeled text", "weather"),
                                       ("A new one", "food")])
    merged = import_file(store, "news", second)
    assert merged.added == 1 and merged.labeled_now == 1 and merged.new_labels == ["food"]
    assert merged.conflict_count == 1 and merged.conflicts[0]["stored"] == "weather"  # never overwritten
    assert merged.conflicts[0]["file"] == "sport"
    labels = {i.text: i.label for i in store.items("news")}
    assert labels == {"Rain again today": "weather", "The match was won": "sport", "An unlabeled text": "weather",
                      "A new one": "food"}
    assert text_key("Rain  again today ") == text_key("Rain again today") != text_key("rain again today")


def test_a_file_without_a_label_column_is_all_unlabeled(store, tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("review\nfirst review\nsecond review\n")
    report = import_file(store, "reviews", path)
    assert report.added == 2 and report.unlabeled == 2
    assert store.project("reviews").labeled == 0


def test_labels_history_overwrites_and_undo(store):
    import_rows(store, "p", ["a text", "b text", "c text"], ["x", None, None])
    ids = [i.id for i in store.items("p")]
    store.add_label("p", "y")
    set_label(store, "p", ids[1], "x", annotator="ann", session="s1")
    set_label(store, "p", ids[1], "y", annotator="bob", session="s2")  # over someone else's label: a change too
    step = set_labels(store, "p", [(ids[0], "y"), (ids[2], "y")], annotator="ann", session="s1", how="bulk")
    assert [i.label for i in store.items("p")] == ["y", "y", "y"]
    with pytest.raises(ValueError, match="'z' is not a label"):
        set_label(store, "p", ids[0], "z", annotator="ann", session="s1")
    first = undo(store, "p", owner="ann")  # the bulk step, as one
    assert first.step == step and sorted(first.restored) == sorted([ids[0], ids[2]])
    assert [i.label for i in store.items("p")] == ["x", "y", None]
    second = undo(store, "p", owner="ann")  # ann's earlier label of item 1: bob changed it since, it stays
    assert second.restored == [] and second.kept == [ids[1]]
    assert store.item("p", ids[1]).label == "y"
    assert undo(store, "p", owner="ann").step is None  # nothing left to undo for ann (the import is not ann's)
    moved = changes_since(store, "p", 0)
    assert moved["per_class"]["y"]["net"] == 1 and moved["items_changed"] == 2
    assert last_change(store, "p") > step


def test_export_is_training_ready_and_defuses_formulas(store, tmp_path):
    import_rows(store, "p", ['=HYPERLINK("http://x","click")', "+1 spam", "plain", "unlabeled"],
                ["@evil", "-1", "ok", None])
    out = pd.read_csv(export_csv(store, "p", tmp_path / "out.csv", provenance=True), dtype=str, keep_default_na=False)
    assert list(out.columns) == ["text", "label", "how", "annotator", "updated", "split"]
    assert out["text"].tolist() == ['\'=HYPERLINK("http://x","click")', "'+1 spam", "plain"]
    assert out["label"].tolist() == ["'@evil", "'-1", "ok"] and set(out["how"]) == {"imported"}
    plain = pd.read_csv(export_csv(store, "p", tmp_path / "plain.csv"), dtype=str)
    assert list(plain.columns) == ["text", "label"] and len(plain) == 3


def test_a_first_version_database_is_migrated_with_its_data(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in schema._statements(schema.MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO projects (name, created) VALUES ('old', '2026-01-01')")
    conn.execute("INSERT INTO labels VALUES (1, 'pos', '2026-01-01')")
    conn.execute("INSERT INTO items (project_id, key, text, label, how) VALUES (1, 'k', 'kept text', 'pos', 'human')")
    conn.close()
    store = LabelStore(path)
    with store.read() as conn:
        assert schema.version(conn) == schema.LATEST >= 3
        assert "owner" in {row[1] for row in conn.execute("PRAGMA table_info(changes)")}  # 3: undo by owner
    item = store.items("old")[0]
    assert (item.text, item.label, item.split) == ("kept text", "pos", None)
    assert store.claim("old", "me", [item.id], 1) == [item.id]  # a table of version 2 works on the old data
    assert store.integrity() == "ok"


def test_soft_locks_keep_an_item_to_one_session_until_they_expire(store):
    import_rows(store, "p", [f"text {i}" for i in range(5)])
    ids = [i.id for i in store.items("p")]
    assert store.claim("p", "tab-a", ids, 2) == ids[:2]
    assert store.claim("p", "tab-b", ids, 2) == ids[2:4]  # not what tab-a holds
    assert store.locked_by_others("p", "tab-b") == set(ids[:2])
    assert store.claim("p", "tab-a", ids, 5, seconds=-1) == [ids[0], ids[1], ids[4]]  # re-claim, already expired
    assert store.claim("p", "tab-b", ids, 5) == ids  # tab-a's locks expired


WRITER = textwrap.dedent("""
    import sys
    from bertdemo.labeling.store import LabelStore
    from bertdemo.labeling.history import set_label
    store = LabelStore(sys.argv[1])
    ids = [i.id for i in store.items("p")]
    who, label = sys.argv[2], sys.argv[3]
    for item_id in ids[int(sys.argv[4])::2]:
        set_label(store, "p", item_id, label, annotator=who, session=who)
        print("ack", item_id, flush=True)
""")


def test_two_processes_label_at_once_and_nothing_is_lost(store):
    import_rows(store, "p", [f"text {i}" for i in range(120)], ["a"] + [None] * 119)
    store.add_label("p", "b")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), who, label, offset], cwd=ROOT,
                              env=CHILD_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for who, label, offset in (("ann", "a", "0"), ("bob", "b", "1"))]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outputs]
    acked = {int(line.split()[1]) for out, _ in outputs for line in out.splitlines()}
    assert len(acked) == 120
    items = store.items("p")
    assert all(i.label in ("a", "b") for i in items)
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM changes WHERE session IN ('ann', 'bob')").fetchone()[0] == 120
    assert store.integrity() == "ok"


def _kill_when(proc: subprocess.Popen, ready) -> None:
    while not ready():
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_kill_9_mid_label_keeps_every_acknowledged_label(store):
    import_rows(store, "p", [f"text {i}" for i in range(3000)], ["a"] + [None] * 2999)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.path), "ann", "a", "0"], cwd=ROOT, env=CHILD_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    acked = []
    _kill_when(proc, lambda: len(acked) >= 40 or not acked.append(int(proc.stdout.readline().split()[1])))
    assert proc.returncode == -signal.SIGKILL
    labels = {i.id: i.label for i in store.items("p")}
    assert all(labels[i] == "a" for i in acked)
    assert store.integrity() == "ok"


IMPORTER = textwrap.dedent("""
    import sys
    from bertdemo.labeling.store import LabelStore
    from bertdemo.labeling.transfer import import_file
    print("go", flush=True)
    report = import_file(LabelStore(sys.argv[1]), "big", sys.argv[2])
    print("done", report.added, flush=True)
""")


def test_kill_9_mid_import_leaves_nothing_half_imported(store, tmp_path):
    n = 120_000
    path = _csv(tmp_path / "big.csv", [(f"text number {i}", "ab"[i % 2]) for i in range(n)])
    proc = subprocess.Popen([sys.executable, "-c", IMPORTER, str(store.path), str(path)], cwd=ROOT, env=CHILD_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "go"
    wal = store.path.with_name(store.path.name + "-wal")
    start = time.time()
    _kill_when(proc, lambda: (wal.exists() and wal.stat().st_size > 1_000_000) or time.time() - start > 20)
    assert store.integrity() == "ok"
    with store.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0  # one transaction: none of it
    assert import_file(store, "big", path).added == n  # and running it again does the whole of it


def test_imports_are_credited_to_import_and_a_person_must_give_a_name(tmp_path):
    """An import's labels and a person's stay apart in the per-annotator counts: no default name for a person,
    and no person labels as "import"."""
    from bertdemo.labeling.store import label_counts

    store = LabelStore(tmp_path / "labels.sqlite3")
    import_rows(store, "p", ["a text", "b text", "c text"], ["x", "y", None])
    item = store.items("p", labeled=False)[0].id
    for nobody in ("", "  ", None):
        with pytest.raises(ValueError, match="Type your name"):
            set_label(store, "p", item, "x", annotator=nobody)
    with pytest.raises(ValueError, match="'import' is the name the history gives labels that came from a file"):
        set_label(store, "p", item, "x", annotator="Import", how="suggestion")
    set_label(store, "p", item, "x", annotator="kim")
    assert label_counts(store, "p")["per_annotator"] == {"import": 2, "kim": 1}
    with store.read() as conn:
        assert sorted(conn.execute("SELECT annotator, new_how FROM changes").fetchall()) == [
            ("import", "imported"), ("import", "imported"), ("kim", "human")]
