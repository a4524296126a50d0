"""The Evaluate tab: the selected run's validation metrics, confusion matrix and most confident mistakes
(clicking one opens it in Predict & Explain).

A multi-label run shows micro-, macro- and samples-F1, subset accuracy and Hamming loss beside the same figures at
a fixed 0.5, a per-label table with each threshold, each label's 2×2 confusion and the texts with a wrong label
decision, the most wrong first. Its thresholds panel moves one label's threshold and shows the validation F1 it
would give, live (``bertdemo.inference.thresholds``: the run's validation probabilities are predicted once), and
Save writes the thresholds into the run.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.data.multilabel import format_cell
from bertdemo.inference.thresholds import (label_f1, run_thresholds, save_thresholds, threshold_scores,
                                           validation_set)
from bertdemo.runs import load_run_info, read_json, run_in
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge
from bertdemo.ui.page import PREDICT_QUEUE, Page, RunListener, RunView, esc, teach

MISCLASSIFIED_COLUMNS = ["text", "label", "predicted", "confidence"]
MISCLASSIFIED_LABEL = "Misclassified validation examples, most confident first — click one to explain it"
MULTILABEL_MISCLASSIFIED_LABEL = ("Validation texts with a wrong label decision, the most wrong first (wrongness: how "
                                  "far the worst-decided label's probability is from the truth) — click one to "
                                  "explain it")
MULTILABEL_MISCLASSIFIED_COLUMNS = ["text", "labels", "predicted", "wrongness"]  # 4, like the single-label table
HEADLINE = (("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("samples_f1", "samples-F1"),
            ("accuracy", "subset accuracy"), ("hamming_loss", "Hamming loss (lower is better)"))
THRESHOLDS_TEACHING = """A label applies to a text when its probability reaches the label's **threshold**. Training
chose each one to maximise that label's F1 on the validation rows. Lower a threshold: the label is given more often
(recall up, precision down); raise it: the opposite. Move the slider to see the validation F1 change, then **Save**
to make predictions use it."""


class EvaluateTab:
    def __init__(self, page: Page):
        self.page = page
        with gr.Row():
            with gr.Column(scale=3):
                self.summary = gr.Markdown(elem_id="eval-summary")
                with gr.Row():
                    self.per_class = gr.Dataframe(label="Per class", interactive=False)
                    self.confusion = gr.Plot(label="Confusion matrix")
                self._thresholds_layout()
                self.misclassified = gr.Dataframe(
                    label=MISCLASSIFIED_LABEL, interactive=False, wrap=True, max_height=420, elem_id="misclassified",
                    column_widths=["64%", "12%", "12%", "12%"])
            teach(teaching.EVALUATE)
        self.view_outputs = [self.summary, self.per_class, self.confusion, self.misclassified, self.threshold_panel,
                             self.threshold_label, self.threshold, self.threshold_note, self.edited]
        page.listeners.append(RunListener(self.view_outputs, self.show_run))

    def _thresholds_layout(self) -> None:
        with gr.Accordion("Decision thresholds (multi-label)", open=True, visible=False,
                          elem_id="thresholds") as self.threshold_panel:
            gr.Markdown(THRESHOLDS_TEACHING)
            with gr.Row():
                # custom values allowed: an API client's session never saw the run's labels as choices; the
                # handlers refuse a label the run lacks
                self.threshold_label = gr.Dropdown(label="Label", choices=[], elem_id="threshold-label", scale=1,
                                                   allow_custom_value=True)
                self.threshold = gr.Slider(0.01, 0.99, value=0.5, step=0.01, label="Threshold", scale=2,
                                           elem_id="threshold-slider")
            self.threshold_note = gr.Markdown(elem_id="threshold-note")
            self.save_btn = gr.Button("Save thresholds to the run", elem_id="threshold-save")
            self.edited = gr.State(None)  # {label: threshold} of the labels moved in this view (not yet saved):
            # only these are saved, so a label someone else saved meanwhile keeps their threshold

    def wire(self) -> None:
        explain = self.page.parts["explain"]
        run = self.page.run_state
        self.misclassified.select(self.on_pick_misclassified, [self.misclassified], [explain.text, self.page.tabs],
                                  api_visibility="private").then(
            explain.on_predict_view, [run, explain.text], explain.prediction_outputs, api_visibility="private",
            **PREDICT_QUEUE)
        self.threshold_label.input(self.on_threshold_label, [run, self.threshold_label, self.edited],
                                   [self.threshold, self.threshold_note], api_visibility="private",
                                   **PREDICT_QUEUE)
        self.threshold.input(self.on_threshold, [run, self.threshold_label, self.threshold, self.edited],
                             [self.edited, self.threshold_note], api_name="threshold", trigger_mode="always_last",
                             show_progress="hidden", **PREDICT_QUEUE)
        self.save_btn.click(self.on_save_thresholds, [run, self.edited, self.threshold_label], self.view_outputs,
                            api_name="save_thresholds", **PREDICT_QUEUE)

    def show_run(self, view: RunView) -> dict:
        hidden = {self.threshold_panel: gr.Accordion(visible=False), self.edited: None,
                  self.threshold_label: gr.skip(), self.threshold: gr.skip(), self.threshold_note: ""}
        if view.info is None:
            return {self.summary: "", self.per_class: pd.DataFrame(),
                    self.confusion: plots.empty_figure("Train a model (Train tab) or load a saved run (Models tab)"),
                    self.misclassified: gr.Dataframe(pd.DataFrame(columns=MISCLASSIFIED_COLUMNS),
                                                     label=MISCLASSIFIED_LABEL), **hidden}
        if view.info.multi_label or view.metrics.get("multi_label"):
            return self._multilabel_view(view)
        info, metrics = view.info, view.metrics
        summary = (f"## Accuracy {metrics.get('accuracy', 0):.1%} · macro-F1 {metrics.get('macro_f1', 0):.3f}\n"
                   f"on {metrics.get('count', info.validation_rows)} validation rows of `{esc(info.data_source)}`.")
        per_class = pd.DataFrame([{"class": label, **{k: round(v, 3) if isinstance(v, float) else v
                                                        for k, v in m.items()}}
                                  for label, m in metrics.get("per_class", {}).items()])
        confusion = (plots.confusion_figure(metrics["confusion"], metrics.get("labels", info.labels))
                     if metrics.get("confusion") else plots.empty_figure("No confusion matrix in this run"))
        wrong = pd.DataFrame(metrics.get("misclassified", []), columns=MISCLASSIFIED_COLUMNS)
        wrong["confidence"] = wrong["confidence"].astype(float).round(3)
        return {self.summary: summary, self.per_class: per_class, self.confusion: confusion,
                self.misclassified: gr.Dataframe(wrong, label=MISCLASSIFIED_LABEL), **hidden}

    def _multilabel_view(self, view: RunView, label: str | None = None) -> dict:
        info, metrics = view.info, view.metrics
        thresholds = _saved_thresholds(view)
        labels = list(thresholds)
        first = label if label in thresholds else labels[0] if labels else None
        return {self.summary: multilabel_summary(metrics, info.data_source, info.validation_rows),
                self.per_class: per_label_table(metrics, thresholds),
                self.confusion: plots.label_confusion_figure(metrics.get("label_confusion", {})),
                self.misclassified: gr.Dataframe(multilabel_misclassified(metrics),
                                                 label=MULTILABEL_MISCLASSIFIED_LABEL),
                self.threshold_panel: gr.Accordion(visible=True), self.edited: {},
                self.threshold_label: gr.Dropdown(choices=labels, value=first),
                self.threshold: gr.Slider(value=thresholds.get(first, 0.5)),
                self.threshold_note: "Move the slider to see this label's validation F1 at another threshold."}

    @at_edge
    def on_threshold_label(self, run_dir: str | None, label: str, edited: dict | None) -> dict:
        """Another label chosen: the slider jumps to its (edited) threshold, and the note shows what it gives."""
        edited = self._edited(run_dir, edited)
        if label not in edited:
            raise ValueError(f"Choose one of the run's labels: {', '.join(edited)}.")
        value = float(edited[label])
        return {self.threshold: gr.Slider(value=value), self.threshold_note: self._note(run_dir, label, edited)}

    @at_edge
    def on_threshold(self, run_dir: str | None, label: str, value: float, edited: dict | None) -> dict:
        """The slider moved: keep the new threshold (unsaved) and show the validation F1 it gives."""
        if label not in self._edited(run_dir, edited):
            raise ValueError(f"Choose one of the run's labels: {', '.join(self._edited(run_dir, edited))}.")
        moved = {**(edited or {}), label: float(value)}
        return {self.edited: moved, self.threshold_note: self._note(run_dir, label, self._edited(run_dir, moved))}

    @at_edge
    def on_save_thresholds(self, run_dir: str | None, edited: dict | None, label: str | None = None) -> dict:
        """Write the thresholds into the run; the whole view is redrawn from the run's recomputed metrics, the
        label being edited still chosen."""
        path = self._run(run_dir)
        saved = save_thresholds(path, dict(edited or {}))
        view = RunView(info=load_run_info(path), metrics=read_json(path, "metrics.json") or {}, runs=[])
        label = label if label in saved else next(iter(saved))
        shown = self._multilabel_view(view, label)
        note = (f"✅ Saved the thresholds of {len(saved)} labels to the run: predictions use them now.\n\n"
                + self._note(run_dir, label, saved))
        return {**shown, self.threshold_note: note}

    def _note(self, run_dir: str | None, label: str, edited: dict) -> str:
        path = self._run(run_dir)
        validation = validation_set(path)
        saved = run_thresholds(path)
        now, before = float(edited[label]), float(saved.get(label, 0.5))
        scores, at_saved = threshold_scores(validation, edited), threshold_scores(validation, saved)
        return (f"**{esc(label)}** at **{now:.2f}**: validation F1 **{label_f1(validation, label, now):.3f}** "
                f"(saved threshold {before:.2f}: {label_f1(validation, label, before):.3f})  \n"
                f"All labels at these thresholds: micro-F1 **{scores['micro_f1']:.3f}** "
                f"(saved: {at_saved['micro_f1']:.3f}) · macro-F1 **{scores['macro_f1']:.3f}** "
                f"(saved: {at_saved['macro_f1']:.3f}), on {len(validation.texts)} validation texts."
                + ("" if _same(edited, saved) else "  \n*Not saved yet.*"))

    def _edited(self, run_dir: str | None, edited: dict | None) -> dict:
        """Every label's threshold as the view shows it: the run's saved ones, with the labels moved here."""
        return {**run_thresholds(self._run(run_dir)), **(edited or {})}

    def _run(self, run_dir: str | None):
        if not run_dir:
            raise ValueError("No model loaded: train one on the Train tab, or load a saved run on the Models tab.")
        return run_in(self.page.workspace, run_dir)

    def on_pick_misclassified(self, table: pd.DataFrame, evt: gr.SelectData) -> dict:
        """Clicking a misclassified example opens it in Predict & Explain."""
        explain = self.page.parts["explain"]
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return {explain.text: str(table.iloc[int(row)]["text"]), self.page.tabs: gr.Tabs(selected="explain")}


def multilabel_summary(metrics: dict, source: str, rows: int) -> str:
    """The headline multi-label figures at the run's thresholds, beside the same at a fixed 0.5."""
    fixed = metrics.get("at_0_5", {})
    lines = ["| | at the run's thresholds | at 0.5 |", "|---|---:|---:|"]
    for key, name in HEADLINE:
        value = metrics.get(key)
        at_half = fixed.get(key)
        lines.append(f"| {name} | {_figure(value, key)} | {_figure(at_half, key)} |")
    return (f"## Micro-F1 {metrics.get('micro_f1', 0):.3f} · macro-F1 {metrics.get('macro_f1', 0):.3f}\n"
            f"Multi-label: on {metrics.get('count', rows)} validation rows of `{esc(source)}`.\n\n" + "\n".join(lines))


def per_label_table(metrics: dict, thresholds: dict[str, float]) -> pd.DataFrame:
    """label, precision, recall, F1, support and threshold for each label."""
    rows = []
    for label, m in metrics.get("per_class", {}).items():
        rows.append({"label": label, "precision": round(m["precision"], 3), "recall": round(m["recall"], 3),
                     "f1": round(m["f1"], 3), "support": m["support"],
                     "threshold": round(float(thresholds.get(label, 0.5)), 3)})
    return pd.DataFrame(rows, columns=["label", "precision", "recall", "f1", "support", "threshold"])


def multilabel_misclassified(metrics: dict) -> pd.DataFrame:
    """The texts with a wrong label decision, the most wrong first (as ``multilabel_metrics`` ordered them)."""
    rows = [{"text": m["text"], "labels": format_cell(tuple(m["labels"])),
             "predicted": format_cell(tuple(m["predicted"])), "wrongness": round(float(m["wrongness"]), 3)}
            for m in metrics.get("misclassified", [])]
    return pd.DataFrame(rows, columns=MULTILABEL_MISCLASSIFIED_COLUMNS)


def _saved_thresholds(view: RunView) -> dict[str, float]:
    """The thresholds predictions use (the model's config.json); metrics.json's when the config cannot be read."""
    try:
        return run_thresholds(view.info.path)
    except (ValueError, OSError):
        return {label: float(t) for label, t in view.metrics.get("thresholds", {}).items()}


def _same(a: dict, b: dict) -> bool:
    return all(abs(float(a[k]) - float(b.get(k, 0.5))) < 1e-9 for k in a)


def _figure(value, key: str) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    return f"{value:.3f}" if key != "accuracy" else f"{value:.1%}"
