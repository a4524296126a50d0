"""The app side of pretraining without a server: the job kind's records, its plots, the panel's settings, the
limits and the masking colours. Fast: a few steps of the tiny size at most."""
from __future__ import annotations

import re

import pytest

from bertdemo import plots
from bertdemo.events import CancelledEvent, DoneEvent, EvalEvent, StartEvent, StepEvent
from bertdemo.jobs.kinds import pretraining_records, pretraining_snapshots, pretraining_work
from bertdemo.limits import Limits
from bertdemo.pretraining import PretrainConfig
from bertdemo.workspace import Workspace


def _events(model_dir: str | None):
    yield StartEvent(total_steps=0, epochs=0, steps_per_epoch=3, train_rows=95, validation_rows=5, labels=(),
                     model="/srv/secret/models/base", device="cpu", precision="fp32", num_processes=1)
    yield StepEvent(step=1, total_steps=10, epoch=0.3, loss=7.0, learning_rate=1e-4, examples_per_s=10.0,
                    elapsed_s=3.0, eta_s=9.0)
    yield EvalEvent(step=1, epoch=0.3, val_loss=6.5, accuracy=0.1, macro_f1=0.1, is_best=True, objective="mlm")
    yield DoneEvent(run_dir=model_dir, metrics={"mlm_loss": 6.5, "mlm_accuracy": 0.1, "steps": 1},
                    train_seconds=3.0, examples_per_s=10.0, stopped_early=False)


def _drain(records):
    out = []
    while True:
        try:
            out.append(next(records))
        except StopIteration as end:
            return out, end.value


def test_records_name_the_saved_model_and_the_snapshot_never_a_server_path(tmp_path):
    snapshots = Workspace(tmp_path / "snaps")
    (snapshots.root / "step-0000001").mkdir(parents=True)
    records, result = _drain(pretraining_records(_events("/srv/ws/pretrained/m-1"), snapshots))
    assert [r["event"] for r in records] == ["StartEvent", "StepEvent", "EvalEvent", "DoneEvent"]
    assert records[0]["model"] == "base"  # a folder by its name only
    assert records[1]["fraction"] == pytest.approx(0.25)  # 3 s of 12: the time share, not 1 of ~10 steps
    assert records[2]["snapshot"] == "step-0000001" and "held-out MLM loss 6.500" in records[2]["note"]
    assert records[3]["model"] == "m-1" and "run_dir" not in records[3] and records[3]["fraction"] == 1.0
    assert result == {"model": "m-1", "state": "done", "metrics": {"mlm_loss": 6.5, "mlm_accuracy": 0.1, "steps": 1}}
    assert "/srv" not in repr(records)


def test_a_stop_before_any_step_says_nothing_was_saved():
    records, result = _drain(pretraining_records(iter([CancelledEvent(step=0, run_dir=None)])))
    assert result == {"model": None, "state": "stopped"} and "nothing saved" in records[0]["note"]


def test_the_job_work_pretrains_and_leaves_snapshots_where_the_page_reads_them(tmp_path):
    """The real loop through the job's work: the snapshot of each evaluation is in the job's checkpoint folder
    while it runs (the runner removes that folder afterwards)."""
    from bertdemo.jobs.runner import JobContext
    from conftest import toy_rows

    texts = [t for t, _ in toy_rows(per_class=10)]
    seen = []

    class Job:
        id = "job1"

    ctx = JobContext(job=Job(), workspace=Workspace(tmp_path), should_stop=lambda: False)
    work = pretraining_work(PretrainConfig(size="tiny", minutes=0, epochs=0, max_steps=4, evals=2, batch_size=8,
                                           max_length=32), owner="kim", texts=texts, source="toy.csv")
    events = work(ctx)
    while True:
        try:
            record = next(events)
        except StopIteration as end:
            result = end.value
            break
        if record["event"] == "EvalEvent":
            seen.append((record["snapshot"], sorted(p.name for p in pretraining_snapshots(ctx.checkpoints).root.iterdir())))
    assert seen == [("step-0000002", ["step-0000002"]), ("step-0000004", ["step-0000004"])]  # older ones dropped
    assert result["state"] == "done" and (tmp_path / "pretrained" / result["model"] / "pretrain.json").is_file()


def test_pretraining_figure_has_train_heldout_and_accuracy_on_a_fixed_axis():
    steps = [{"step": i, "loss": 8.0 - i * 0.1} for i in range(1, 11)]
    evals = [{"step": 5, "val_loss": 7.6, "accuracy": 0.05}, {"step": 10, "val_loss": 7.2, "accuracy": 0.08}]
    fig = plots.pretraining_figure(steps, evals)
    names = [t.name for t in fig.data]
    assert names == ["train loss (per step)", "train loss (smoothed)", "held-out loss", "masked-token accuracy"]
    assert list(fig.data[2].y) == [7.6, 7.2] and list(fig.data[3].y) == [0.05, 0.08]
    assert tuple(fig.layout.yaxis2.range) == (0, 1.02)
    assert plots.pretraining_figure([], []).layout.annotations  # a message, not an empty frame


def test_fill_mask_figure_marks_the_hidden_word_and_keeps_repeated_guesses_apart():
    blanks = [{"answer": "cat", "guesses": [("dog", 0.5), ("cat", 0.3), ("the", 0.1)], "rank": 2},
              {"answer": None, "guesses": [("the", 0.6), ("dog", 0.2), ("a", 0.1)], "rank": None}]
    fig = plots.fill_mask_figure(blanks)
    first, second = fig.data
    assert list(first.x) == [0.1, 0.3, 0.5]  # most likely on top
    assert list(first.marker.color) == ["#1f77b4", "#2ca02c", "#1f77b4"]  # green: the hidden word
    assert list(fig.layout.yaxis.ticktext) == ["the", "cat", "dog"] and list(fig.layout.yaxis2.ticktext)[-1] == "the"
    assert set(second.marker.color) == {"#1f77b4"}  # a [MASK] blank has no answer to colour


def test_limits_refuse_a_budget_longer_than_a_job_may_run():
    limits = Limits(max_job_minutes=10)
    limits.check_pretraining(PretrainConfig(minutes=10))
    with pytest.raises(ValueError, match=r"longer than one job may run.*max_job_minutes"):
        limits.check_pretraining(PretrainConfig(minutes=10.5))
    with pytest.raises(ValueError, match="batch_size 999"):
        Limits().check_pretraining(PretrainConfig(batch_size=999))


def test_panel_settings_are_cast_to_the_config_types():
    from bertdemo.ui.tabs.pretrain import typed_pretrain_settings

    values = typed_pretrain_settings({"layers": 3.0, "minutes": 2, "whole_word_mask": 1, "size": "tiny"})
    assert values == {"layers": 3, "minutes": 2.0, "whole_word_mask": True, "size": "tiny"}
    assert type(values["layers"]) is int and type(values["minutes"]) is float
    with pytest.raises(ValueError, match="whole number"):
        typed_pretrain_settings({"layers": 2.5})
    with pytest.raises(ValueError, match="'minutes' is empty"):
        typed_pretrain_settings({"minutes": None})


def test_masking_html_colours_each_kind_and_escapes_the_sentence():
    from bertdemo.ui.tabs.fill_mask import COLORS, masking_html

    rows = [{"token": "[CLS]", "shown": "[CLS]", "what": "special"},
            {"token": "<b>", "shown": "[MASK]", "what": "[MASK]"},
            {"token": "cat", "shown": "dog", "what": "random"},
            {"token": "sat", "shown": "sat", "what": "unchanged"},
            {"token": "on", "shown": "on", "what": "kept"}]
    page = masking_html(rows)
    assert "<b>" not in page and "&lt;b&gt;" in page  # the original under the [MASK], escaped
    for what, color in COLORS.items():
        assert f"background:{color};font-family" in page, what
    assert "3 of 4 word-pieces chosen" in page
    assert re.search(r"No piece was chosen", masking_html([rows[0], rows[4]]))


def test_whole_word_masking_takes_a_batch_with_the_shorter_last_sequence():
    """Packed sequences are full but the last: whole-word masking's offsets must pad like the ids (it failed with
    "Unable to create tensor" on every such batch, in the app's Start with the box ticked)."""
    from bertdemo.models import load_tokenizer
    from bertdemo.pretraining import corpus
    from bertdemo.pretraining.masking import IGNORE, PretrainCollator

    tokenizer = load_tokenizer("default")
    texts = [f"unbelievably photosynthesis happened {i} times near the riverbank" for i in range(12)]
    sequences = corpus.pack(texts, tokenizer, 32, offsets=True)
    assert len({len(s["input_ids"]) for s in sequences}) == 2  # full ones and a shorter last one
    batch = PretrainCollator(tokenizer, 0.5, whole_word_mask=True, seed=0)(sequences)
    assert batch["input_ids"].shape == batch["labels"].shape == (len(sequences), 32)
    short = len(sequences[-1]["input_ids"])
    assert (batch["labels"][-1, short:] == IGNORE).all()  # padding is never a blank
    pieces = tokenizer.convert_ids_to_tokens(sequences[0]["input_ids"])
    chosen = (batch["labels"][0] != IGNORE).tolist()
    for i, piece in enumerate(pieces):  # a word's pieces are chosen together
        if piece.startswith("##"):
            assert chosen[i] == chosen[i - 1], (pieces[i - 1], piece)


def test_the_lesson_job_records_every_point_and_returns_the_table(tmp_path, monkeypatch):
    """The lesson's work as the runner drives it, with the engine's generator replaced by a scripted one."""
    import bertdemo.jobs.kinds as kinds
    from bertdemo.jobs.runner import JobContext
    from bertdemo.lesson import LessonConfig, LessonPoint, LessonProgress, LessonResult, lesson_table

    points = [LessonPoint("random init", 0, 100, 0.4, 0.3, 2.0), LessonPoint("pretrained here", 0, 100, 0.6, 0.5, 2.0)]

    def scripted(*args, **kwargs):
        yield LessonProgress("pretraining", "pretraining: held-out masked-LM loss 5.000", 0, 2)
        yield LessonProgress("fine-tuning", "fine-tuning random init on 100 labels (seed 0)", 0, 2)
        yield points[0]
        yield LessonProgress("fine-tuning", "fine-tuning pretrained here on 100 labels (seed 0)", 1, 2)
        yield points[1]
        yield LessonResult(table=lesson_table(points), pretrained="/srv/ws/pretrained/lesson-1", pretrain_metrics={},
                           seconds=9.0)
    monkeypatch.setattr(kinds, "lesson", scripted)

    class Job:
        id = "job1"

    records, result = _drain(kinds.lesson_work([], [], [], [], LessonConfig())(
        JobContext(job=Job(), workspace=Workspace(tmp_path), should_stop=lambda: False)))
    assert [r["event"] for r in records] == ["LessonProgress", "LessonProgress", "LessonPoint", "LessonProgress",
                                             "LessonPoint"]
    assert "fraction" not in records[0] and records[1]["fraction"] == pytest.approx(0.3)
    assert records[3]["fraction"] == pytest.approx(0.65) and records[2]["accuracy"] == 0.4
    assert result["state"] == "done" and result["model"] == "lesson-1" and "/srv" not in repr(records + [result])
    figure = plots.lesson_figure(result["table"])
    assert [t.name for t in figure.data] == ["random init", "pretrained here"] and list(figure.data[1].y) == [0.6]
    assert "appear here" in plots.lesson_figure({}).layout.annotations[0].text
