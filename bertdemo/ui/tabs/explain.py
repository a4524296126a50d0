"""The Predict & Explain tab: probabilities as you type, attention views, attributions, base vs fine-tuned, and
batch prediction of a file.

Attention is computed once per text and kept in the session's ``gr.State``; moving the layer/head sliders only
redraws from that array, so the views switch instantly.

The scored explanations stream (``explain.methods.explain_stream``): integrated gradients are drawn as soon as they
exist, marked provisional, and the other methods and the faithfulness table fill the same panel as they finish;
the panel says what is still computing, and once the scores are in it shows the most comprehensive method.
"""
from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr
import numpy as np
import pandas as pd

from bertdemo import plots
from bertdemo.explain.attention import attention
from bertdemo.explain.attributions import attributions
from bertdemo.explain.methods import FAITHFULNESS, TITLES, Explained, explain_stream
from bertdemo.explain.tokens import word_spans
from bertdemo.inference.predict import Predictor, base_predictor, get_predictor
from bertdemo.runs import load_run_info, run_in
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge
from bertdemo.ui.tabs.batch import BatchPanel
from bertdemo.ui.page import PREDICT_QUEUE, Page, RunListener, RunView, esc
from bertdemo.ui.upload import upload_file

PREDICTED = "(predicted class)"  # the target dropdown's default: the most probable class (or label)
BASE_CACHE_SIZE = 2  # base models kept for the comparison (a class compares many sentences in a row)


def wordpiece_spans(tokens: list[str], special: list[bool]) -> list[tuple[str, str | None]]:
    """Tokens for gr.HighlightedText, tagged so students see special tokens and word continuations."""
    return [(token + " ", "special" if is_special else "continues a word (##)" if token.startswith("##") else None)
            for token, is_special in zip(tokens, special)]


def score_spans(tokens: list[str], scores: np.ndarray) -> list[tuple[str, float]]:
    """Signed scores scaled to [-1, 1] for gr.HighlightedText's colour scale (red +, blue −)."""
    scores = np.asarray(scores, dtype=float)
    scale = float(np.abs(scores).max()) or 1.0
    return [(token + " ", round(float(s) / scale, 4)) for token, s in zip(tokens, scores)]


def highlight_spans(result: Explained, method: str, unit: str) -> list[tuple[str, float]]:
    """One method's scores for gr.HighlightedText, merged into words unless ``unit`` is "word-pieces" (special
    tokens are dropped in the word view)."""
    scores = np.asarray(result.scores[method], dtype=float)
    if unit == "word-pieces":
        return score_spans(result.tokens, scores)
    words = word_spans(result.tokens, scores, special=result.special, word_ids=result.word_ids)
    return score_spans([w for w, _ in words], np.array([s for _, s in words])) if words else []


def explanation_summary(result: Explained) -> str:
    """Which explanation is shown first and why, in classroom words; while scores are computing, that the one
    drawn is provisional and what is still to come."""
    if result.provisional:
        why = ", usually the most faithful" if result.shown_first == "integrated_gradients" else ""
        return (f"Explaining **{esc(result.target)}** (probability {result.probabilities[result.target]:.1%}). "
                f"Drawn first: **{esc(TITLES[result.shown_first])}** (provisional{why}); once the scores are in, "
                f"the most comprehensive explanation on this text is shown.\n\n"
                f"⏳ Still computing: {esc(pending_words(result))}.")
    first, f = result.shown_first, result.faithfulness[result.shown_first]
    n = f.bins[1] if len(f.bins) > 1 else 0
    drop = (f"removing its top {n} word-piece{'s' if n != 1 else ''} drops P({esc(result.target)}) from "
            f"{f.curve[0]:.2f} to {f.curve[1]:.2f}") if n else ""
    worse = [TITLES[m] for m, r in result.faithfulness.items() if not r.beats_random]
    note = (f" ⚠️ No better than random on this text: {esc(', '.join(worse))}." if worse else "")
    return (f"Explaining **{esc(result.target)}** (probability {result.probabilities[result.target]:.1%}). Shown first: "
            f"**{esc(TITLES[first])}**, the most comprehensive on this text: {drop}." + note +
            f" Scores measured with **{esc(result.operator)}**.")


def pending_words(result: Explained) -> str:
    """``result.pending`` in words: "occlusion (leave one out), the faithfulness scores"."""
    return ", ".join("the faithfulness scores" if step == FAITHFULNESS else TITLES[step] for step in result.pending)


COLUMNS = ("explanation", "comprehensiveness ↑", "sufficiency ↓", "random: comp. / suff.", "τ with occlusion",
           "better than random")


def faithfulness_table(result: Explained) -> pd.DataFrame:
    """One row per method, the most comprehensive first; methods not scored yet follow, marked as computing."""
    rows = []
    for method, f in sorted(result.faithfulness.items(), key=lambda kv: -kv[1].comprehensiveness):
        rows.append(dict(zip(COLUMNS, (TITLES[method], round(f.comprehensiveness, 3), round(f.sufficiency, 3),
                                       f"{f.random_comprehensiveness:.3f} / {f.random_sufficiency:.3f}",
                                       "—" if f.tau_occlusion is None else round(f.tau_occlusion, 2),
                                       "yes" if f.beats_random else "no"))))
    waiting = [m for m in result.scores if m not in result.faithfulness] + \
              [m for m in result.pending if m != FAITHFULNESS]
    for method in waiting:
        rows.append({column: TITLES[method] if column == COLUMNS[0] else "computing…" for column in COLUMNS})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def deletion_figure(result: Explained):
    """The deletion curves of the scored methods; None (an empty plot) until the scores are in: even a blank
    plotly figure costs more to build than a forward pass, and a streamed item waits for it."""
    if not result.faithfulness:
        return None
    any_result = next(iter(result.faithfulness.values()))
    pieces = sum(not s for s in result.special)
    return plots.deletion_curve_figure({TITLES[m]: f.curve for m, f in result.faithfulness.items()},
                                       any_result.random_curve, any_result.bins, pieces, result.target)


def predicted_set_words(labels: tuple[str, ...]) -> str:
    """A multi-label prediction in words: the labels that reach their thresholds, or that none does."""
    if not labels:
        return "**Predicted: no label** — no label's probability reaches its threshold."
    return "**Predicted labels:** " + ", ".join(f"**{esc(label)}**" for label in labels)


def truncation_note(result) -> str:
    note = f"{len(result.tokens)} word-pieces, exactly as the tokenizer produced them."
    if result.truncated:
        note += (f" ✂️ The text was longer than max_length={result.max_length} word-pieces, so only the first "
                 f"{result.max_length} are used (the model never sees the rest).")
    return note


class ExplainTab:
    def __init__(self, page: Page):
        self.page = page
        self._base: dict[tuple, Predictor] = {}
        self._base_lock = threading.Lock()
        self.attention_state = gr.State(None)  # the AttentionResult of the last explained text
        with gr.Row():
            with gr.Column(scale=3):
                self._predict_layout()
                self._attention_layout()
                self._attribution_layout()
                self._compare_layout()
                self.batch = BatchPanel(page)
            with gr.Column(scale=1, min_width=260, elem_classes="bd-teach"):
                with gr.Accordion("How it works", open=True):
                    gr.Markdown(teaching.PREDICT)
                    gr.Markdown(teaching.ATTENTION)
                    gr.Markdown(teaching.ATTRIBUTION)
        page.listeners.append(RunListener([self.target, *self.prediction_outputs], self.show_run))

    def _predict_layout(self) -> None:
        with gr.Row():
            self.text = gr.Textbox(label="Type a sentence (predictions update as you type)", lines=3, scale=2,
                                   elem_id="predict-text")
            self.probs = gr.Label(label="Class probabilities", num_top_classes=10, scale=1, elem_id="probs")
            with gr.Column(scale=1, visible=False) as self.label_column:  # multi-label runs, instead of gr.Label
                self.label_words = gr.Markdown(elem_id="predicted-labels")
                self.label_plot = gr.Plot(label="Label probabilities and thresholds", elem_id="label-probs")
        self.prediction_outputs = [self.probs, self.label_column, self.label_words, self.label_plot]
        self.explain_btn = gr.Button("Explain: attention and attributions", variant="primary", elem_id="explain-btn")
        self.pieces = gr.HighlightedText(label="Word-pieces (as the tokenizer produced them)", show_legend=True,
                                         elem_id="wordpieces")
        self.pieces_note = gr.Markdown()
        gr.Markdown(teaching.CAUTION)

    def _attention_layout(self) -> None:
        with gr.Tab("Attention: one head"):
            with gr.Row():
                self.layer = gr.Slider(1, 6, value=6, step=1, label="Layer")
                self.head = gr.Slider(1, 12, value=1, step=1, label="Head")
            self.heatmap = gr.Plot(label="Attention heatmap", elem_id="attention-plot")
        with gr.Tab("All heads"):
            self.all_heads = gr.Plot(label="All heads of the chosen layer")
        with gr.Tab("[CLS] row"):
            self.cls_row = gr.Plot(label="[CLS] row per layer")
        with gr.Tab("Rollout"):
            self.rollout = gr.Plot(label="Attention rollout")

    def _attribution_layout(self) -> None:
        with gr.Tab("Attributions, scored"):
            with gr.Row():
                self.target = gr.Dropdown(label="Explain which class", choices=[PREDICTED], value=PREDICTED,
                                          allow_custom_value=True)
                self.operator = gr.Radio(["deletion", "mask"], value="deletion", label="Removal in the test",
                                         info="deletion: the pieces are taken out (ERASER); mask: replaced by [MASK]")
            self.attr_btn = gr.Button("Compute and score every explanation", elem_id="attr-btn")
            self.attr_summary = gr.Markdown(elem_id="attr-summary")
            with gr.Row():
                self.method = gr.Dropdown(label="Highlight", choices=[], elem_id="attr-method")
                self.unit = gr.Radio(["words", "word-pieces"], value="words", label="Show as")
            self.highlight = gr.HighlightedText(label="The explanation (red: towards the class, blue: away)",
                                                show_legend=False, elem_id="attr-highlight")
            self.scores_table = gr.Dataframe(label="How faithful is each explanation on this text?", interactive=False,
                                             wrap=True, elem_id="faithfulness-table")
            self.curve = gr.Plot(label="Deletion test", elem_id="deletion-curve")
            with gr.Accordion("Integrated gradients and gradient × input, word-piece by word-piece", open=False):
                self.ig_spans = gr.HighlightedText(label="Integrated gradients", show_legend=False, elem_id="ig")
                self.gxi_spans = gr.HighlightedText(label="Gradient × input", show_legend=False)
            self.explained_state = gr.State(None)

    def _compare_layout(self) -> None:
        with gr.Tab("Base vs fine-tuned"):
            gr.Markdown(teaching.COMPARE)
            self.compare_btn = gr.Button("Compare on this sentence")
            with gr.Row():
                self.base_probs = gr.Label(label="Base model (random head): probabilities")
                self.tuned_probs = gr.Label(label="Fine-tuned model: probabilities")
            with gr.Row():
                self.base_plot = gr.Plot(label="Base model")
                self.tuned_plot = gr.Plot(label="Fine-tuned model")

    def wire(self) -> None:
        run = self.page.run_state
        self.text.input(self.on_predict_view, [run, self.text], self.prediction_outputs, api_visibility="private",
                        trigger_mode="always_last", show_progress="hidden", **PREDICT_QUEUE)
        api_predict = gr.Button(visible=False)  # API-only: /predict keeps its one output (the probabilities)
        api_predict.click(self.on_predict, [run, self.text], [self.probs], api_name="predict", **PREDICT_QUEUE)
        outputs = [self.attention_state, self.layer, self.head, self.pieces, self.heatmap, self.all_heads,
                   self.cls_row, self.rollout, self.pieces_note]
        inputs = [run, self.text, self.layer, self.head]
        self.explain_btn.click(self.on_attention, inputs, outputs, api_name="attention", **PREDICT_QUEUE)
        self.text.submit(self.on_attention, inputs, outputs, api_visibility="private", **PREDICT_QUEUE)
        for slider in (self.layer, self.head):
            slider.input(self.on_attention_view, [self.attention_state, self.layer, self.head],
                         [self.heatmap, self.all_heads], api_visibility="private", trigger_mode="always_last",
                         show_progress="hidden", **PREDICT_QUEUE)
        hidden = gr.Button(visible=False)  # API-only: the two gradient methods alone, word-piece by word-piece
        hidden.click(self.on_attributions, [run, self.text, self.target],
                     [self.attr_summary, self.ig_spans, self.gxi_spans], api_name="attributions", **PREDICT_QUEUE)
        scored = [self.explained_state, self.attr_summary, self.method, self.highlight, self.scores_table, self.curve,
                  self.ig_spans, self.gxi_spans]
        self.attr_btn.click(self.on_explanations, [run, self.text, self.target, self.operator, self.unit], scored,
                            api_name="explanations", **PREDICT_QUEUE)
        for control in (self.method, self.unit):
            control.input(self.on_highlight, [self.explained_state, self.method, self.unit], [self.highlight],
                          api_visibility="private", show_progress="hidden")
        self.compare_btn.click(self.on_compare, [run, self.text],
                               [self.base_probs, self.tuned_probs, self.base_plot, self.tuned_plot],
                               api_name="compare", **PREDICT_QUEUE)
        self.batch.wire()

    def show_run(self, view: RunView) -> dict:
        labels = view.info.labels if view.info is not None else ()
        multi = bool(view.info is not None and view.info.multi_label)
        first = ("(most probable label)", PREDICTED) if multi else PREDICTED
        return {self.target: gr.Dropdown(choices=[first, *labels], value=PREDICTED,
                                         label="Explain which label" if multi else "Explain which class"),
                self.probs: gr.Label(visible=not multi), self.label_column: gr.Column(visible=multi),
                self.label_words: "", self.label_plot: None}

    def predictor(self, run_dir: str | None) -> Predictor:
        if not run_dir:
            raise ValueError("No model loaded: train one on the Train tab, or load a saved run on the Models tab.")
        return get_predictor(run_in(self.page.workspace, run_dir))

    @at_edge
    def on_predict(self, run_dir: str | None, text: str):
        """Class probabilities for gr.Label (a dict label → probability); empty text clears it."""
        if not text or not text.strip():
            return None
        return self.predictor(run_dir).predict(text)

    @at_edge
    def on_predict_view(self, run_dir: str | None, text: str) -> dict:
        """What the page shows as you type: the probabilities for gr.Label; for a multi-label run also one bar per
        label against its threshold and the predicted set in words. Empty text clears them."""
        if not text or not text.strip():
            return {self.probs: None, self.label_column: gr.skip(), self.label_words: "", self.label_plot: None}
        predictor = self.predictor(run_dir)
        probs = predictor.predict(text)
        if not predictor.multi_label:
            return {self.probs: probs, self.label_column: gr.skip(), self.label_words: gr.skip(),
                    self.label_plot: gr.skip()}
        chosen = predictor.decide(np.array([[probs[label] for label in predictor.labels]]))[0]
        thresholds = dict(zip(predictor.labels, predictor.thresholds.tolist()))
        return {self.probs: probs, self.label_column: gr.skip(), self.label_words: predicted_set_words(chosen),
                self.label_plot: plots.label_thresholds_figure(probs, thresholds)}

    @at_edge
    def on_attention(self, run_dir: str | None, text: str, layer: int, head: int) -> dict:
        """Compute all attention maps once; show the chosen layer and head, every head, [CLS] rows and rollout."""
        if not text or not text.strip():
            raise ValueError("Type a sentence first.")
        result = attention(self.predictor(run_dir), text)
        n_layers, n_heads = result.weights.shape[:2]  # (L, H, T, T)
        layer = min(max(int(layer), 1), n_layers)
        head = min(max(int(head), 1), n_heads)
        heat, heads = self._views(result, layer, head)
        return {self.attention_state: result, self.layer: gr.Slider(maximum=n_layers, value=layer),
                self.head: gr.Slider(maximum=n_heads, value=head),
                self.pieces: wordpiece_spans(result.tokens, result.special), self.heatmap: heat,
                self.all_heads: heads, self.cls_row: plots.cls_row_figure(result.tokens, result.weights),
                self.rollout: plots.rollout_figure(result.tokens, result.rollout),
                self.pieces_note: truncation_note(result)}

    @at_edge
    def on_attention_view(self, result, layer: int, head: int) -> dict:
        """Redraw the layer/head views from the stored attention (no model call)."""
        if result is None:
            raise ValueError("Type a sentence and click Explain first.")
        heat, heads = self._views(result, int(layer), int(head))
        return {self.heatmap: heat, self.all_heads: heads}

    @staticmethod
    def _views(result, layer: int, head: int):
        w = result.weights  # (L, H, T, T)
        heat = plots.attention_figure(result.tokens, w[layer - 1, head - 1],
                                      title=f"Layer {layer}, head {head}: row = query token, column = key token")
        return heat, plots.all_heads_figure(result.tokens, w[layer - 1], layer=layer - 1)

    @at_edge
    def on_attributions(self, run_dir: str | None, text: str, target: str | None) -> dict:
        """Integrated gradients and gradient×input for the target class → two highlight views and a summary."""
        if not text or not text.strip():
            raise ValueError("Type a sentence first.")
        predictor = self.predictor(run_dir)
        target = None if not target or target == PREDICTED else target
        ig = attributions(predictor, text, target=target, method="integrated_gradients")
        gxi = attributions(predictor, text, target=ig.target, method="grad_x_input")
        summary = (f"Explaining class **{esc(ig.target)}** "
                   f"(probability {ig.probability:.1%}). Red pushes towards it, blue away from it.")
        return {self.attr_summary: summary, self.ig_spans: score_spans(ig.tokens, ig.scores),
                self.gxi_spans: score_spans(gxi.tokens, gxi.scores)}

    @at_edge
    def on_explanations(self, run_dir: str | None, text: str, target: str | None, operator: str, unit: str):
        """Every method's scores on this text, with their faithfulness; the most comprehensive shown first.
        Streams: integrated gradients first (provisional), then each stage as it finishes."""
        if not text or not text.strip():
            raise ValueError("Type a sentence first.")
        target = None if not target or target == PREDICTED else target
        stream = explain_stream(self.predictor(run_dir), text, target=target, operator=operator or "deletion")
        for n, result in enumerate(stream):
            yield self._explanations_view(result, unit, redraw=n == 0 or not result.provisional)

    def _explanations_view(self, result: Explained, unit: str, *, redraw: bool) -> dict:
        """Every output of the scored panel for one streamed ``result``. Only the first and the last redraw the
        highlight and pick the method: in between, a method the user chose stays."""
        first, choices = result.shown_first, [(TITLES[m], m) for m in result.scores]

        def spans(method: str):
            return score_spans(result.tokens, result.scores[method]) if method in result.scores else None

        return {self.explained_state: result, self.attr_summary: explanation_summary(result),
                self.method: gr.Dropdown(choices=choices, value=first) if redraw else gr.Dropdown(choices=choices),
                self.highlight: highlight_spans(result, first, unit) if redraw else gr.skip(),
                self.scores_table: faithfulness_table(result), self.curve: deletion_figure(result),
                self.ig_spans: spans("integrated_gradients"), self.gxi_spans: spans("grad_x_input")}

    @at_edge
    def on_highlight(self, result, method: str, unit: str):
        if result is None:
            raise ValueError("Compute the explanations first.")
        return highlight_spans(result, method if method in result.scores else result.shown_first, unit)

    @at_edge
    def on_compare(self, run_dir: str | None, text: str) -> dict:
        """The base model beside the fine-tuned one on the same sentence: probabilities and [CLS] rows."""
        if not text or not text.strip():
            raise ValueError("Type a sentence first.")
        predictor = self.predictor(run_dir)
        base_model = load_run_info(run_in(self.page.workspace, run_dir)).base_model
        if base_model == "scratch":
            raise ValueError("This run was trained from scratch: there is no pre-trained base model to compare with.")
        base = attention(self._base_predictor(base_model, predictor.labels, predictor.max_length,
                                              predictor.multi_label), text)
        tuned = attention(predictor, text)
        left = plots.cls_row_figure(base.tokens, base.weights)
        right = plots.cls_row_figure(tuned.tokens, tuned.weights)
        left.update_layout(title=dict(text="Base model: [CLS] row per layer"))
        right.update_layout(title=dict(text="Fine-tuned model: [CLS] row per layer"))
        return {self.base_probs: base.probabilities, self.tuned_probs: tuned.probabilities, self.base_plot: left,
                self.tuned_plot: right}

    def _base_predictor(self, model: str, labels: tuple[str, ...], max_length: int,
                        multi_label: bool = False) -> Predictor:
        """The un-fine-tuned base model with a fresh (seeded) head: what training started from. Kept, because
        loading it takes seconds and a class compares many sentences in a row."""
        key = (model, tuple(labels), max_length, multi_label)
        with self._base_lock:
            if key not in self._base:
                if len(self._base) >= BASE_CACHE_SIZE:
                    self._base.pop(next(iter(self._base)))
                self._base[key] = base_predictor(model, tuple(labels), max_length=max_length,
                                                 multi_label=multi_label)
            return self._base[key]
