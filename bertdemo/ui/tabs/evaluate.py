"""The Evaluate tab: the selected run's validation metrics, confusion matrix and most confident mistakes
(clicking one opens it in Predict & Explain)."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from bertdemo import plots
import bertdemo.ui.teaching as teaching
from bertdemo.ui.page import PREDICT_QUEUE, Page, RunListener, RunView, esc, teach

MISCLASSIFIED_COLUMNS = ["text", "label", "predicted", "confidence"]


class EvaluateTab:
    def __init__(self, page: Page):
        self.page = page
        with gr.Row():
            with gr.Column(scale=3):
                self.summary = gr.Markdown(elem_id="eval-summary")
                with gr.Row():
                    self.per_class = gr.Dataframe(label="Per class", interactive=False)
                    self.confusion = gr.Plot(label="Confusion matrix")
                self.misclassified = gr.Dataframe(
                    label="Misclassified validation examples, most confident first — click one to explain it",
                    interactive=False, wrap=True, max_height=420, elem_id="misclassified",
                    column_widths=["64%", "12%", "12%", "12%"])
            teach(teaching.EVALUATE)
        page.listeners.append(RunListener([self.summary, self.per_class, self.confusion, self.misclassified],
                                          self.show_run))

    def wire(self) -> None:
        explain = self.page.parts["explain"]
        self.misclassified.select(self.on_pick_misclassified, [self.misclassified], [explain.text, self.page.tabs],
                                  api_visibility="private").then(
            explain.on_predict, [self.page.run_state, explain.text], [explain.probs], api_visibility="private",
            **PREDICT_QUEUE)

    def show_run(self, view: RunView) -> dict:
        if view.info is None:
            return {self.summary: "", self.per_class: pd.DataFrame(),
                    self.confusion: plots.empty_figure("Train a model (Train tab) or load a saved run (Models tab)"),
                    self.misclassified: pd.DataFrame(columns=MISCLASSIFIED_COLUMNS)}
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
                self.misclassified: wrong}

    def on_pick_misclassified(self, table: pd.DataFrame, evt: gr.SelectData) -> dict:
        """Clicking a misclassified example opens it in Predict & Explain."""
        explain = self.page.parts["explain"]
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return {explain.text: str(table.iloc[int(row)]["text"]), self.page.tabs: gr.Tabs(selected="explain")}
