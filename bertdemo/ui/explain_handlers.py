"""Handlers for the Predict & Explain tab: probabilities, attention views, attributions, batch prediction.

Attention is computed once per text and kept in the session's ``gr.State``; moving the layer/head
sliders only redraws from that array, so the views switch instantly.
"""
from __future__ import annotations

import html
import tempfile
from functools import lru_cache
from pathlib import Path

import gradio as gr
import numpy as np

from bertdemo import plots
from bertdemo.ui.jobs import at_edge

PREDICTED = "(predicted class)"
SPECIAL = {"[CLS]", "[SEP]", "[PAD]", "[UNK]", "<s>", "</s>", "<pad>"}


# helpers


def _esc(value) -> str:
    return html.escape(str(value))


def _predictor(run_dir: str | None):
    from bertdemo.predict import get_predictor  # torch loads on first prediction, not at app start

    if not run_dir:
        raise ValueError("No model loaded: train one on the Train tab, or load a saved run on the Models tab.")
    return get_predictor(run_dir)


@lru_cache(maxsize=2)
def _base_predictor(model: str, labels: tuple[str, ...], max_length: int):
    """The un-fine-tuned base model with a fresh (seeded) head: what training started from.

    Cached, because loading it takes seconds and a class compares many sentences in a row.
    """
    from bertdemo.predict import base_predictor

    return base_predictor(model, labels, max_length=max_length)


def wordpiece_spans(tokens: list[str]) -> list[tuple[str, str | None]]:
    """Tokens for gr.HighlightedText, tagged so students see special tokens and word continuations."""
    spans = []
    for token in tokens:
        kind = "special" if token in SPECIAL else "continues a word (##)" if token.startswith("##") else None
        spans.append((token + " ", kind))
    return spans


def score_spans(tokens: list[str], scores: np.ndarray) -> list[tuple[str, float]]:
    """Signed scores scaled to [-1, 1] for gr.HighlightedText's colour scale (red +, blue −)."""
    scores = np.asarray(scores, dtype=float)
    scale = float(np.abs(scores).max()) or 1.0
    return [(token + " ", round(float(s) / scale, 4)) for token, s in zip(tokens, scores)]


def _truncation_note(result) -> str:
    pieces = len(result.tokens)
    note = f"{pieces} word-pieces, exactly as the tokenizer produced them."
    if result.truncated:
        note += (f" ✂️ The text was longer than max_length={result.max_length} word-pieces, so only the first "
                 f"{result.max_length} are used (the model never sees the rest).")
    return note


# handlers


class ExplainHandlers:
    @at_edge
    def on_predict(self, run_dir: str | None, text: str):
        """Class probabilities for gr.Label (a dict label → probability); empty text clears it."""
        if not text or not text.strip():
            return None
        return _predictor(run_dir).predict(text)

    @at_edge
    def on_attention(self, run_dir: str | None, text: str, layer: int, head: int):
        """Compute all attention maps once.

        Returns (state, layer slider, head slider, word-pieces, heatmap, all heads, [CLS] row, rollout, note).
        """
        from bertdemo.explain import attention

        if not text or not text.strip():
            raise ValueError("Type a sentence first.")
        result = attention(_predictor(run_dir), text)
        n_layers, n_heads = result.weights.shape[:2]  # (L, H, T, T)
        layer = min(max(int(layer), 1), n_layers)
        head = min(max(int(head), 1), n_heads)
        heat, heads = self._views(result, layer, head)
        return (result, gr.Slider(maximum=n_layers, value=layer), gr.Slider(maximum=n_heads, value=head),
                wordpiece_spans(result.tokens), heat, heads, plots.cls_row_figure(result.tokens, result.weights),
                plots.rollout_figure(result.tokens, result.rollout), _truncation_note(result))

    @at_edge
    def on_attention_view(self, result, layer: int, head: int):
        """Redraw the layer/head views from the stored attention (no model call)."""
        if result is None:
            raise ValueError("Type a sentence and click Explain first.")
        return self._views(result, int(layer), int(head))

    @staticmethod
    def _views(result, layer: int, head: int):
        w = result.weights  # (L, H, T, T)
        heat = plots.attention_figure(result.tokens, w[layer - 1, head - 1],
                                      title=f"Layer {layer}, head {head}: row = query token, column = key token")
        return heat, plots.all_heads_figure(result.tokens, w[layer - 1], layer=layer - 1)

    @at_edge
    def on_attributions(self, run_dir: str | None, text: str, target: str | None):
        """Integrated gradients and gradient×input for the target class → two highlight views + a summary."""
        from bertdemo.explain import attributions

        if not text or not text.strip():
            raise ValueError("Type a sentence first.")
        predictor = _predictor(run_dir)
        target = None if not target or target == PREDICTED else target
        ig = attributions(predictor, text, target=target, method="integrated_gradients")
        gxi = attributions(predictor, text, target=ig.target, method="grad_x_input")
        summary = (f"Explaining class **{_esc(ig.target)}** "
                   f"(probability {ig.probability:.1%}). Red pushes towards it, blue away from it.")
        return summary, score_spans(ig.tokens, ig.scores), score_spans(gxi.tokens, gxi.scores)

    @at_edge
    def on_compare(self, run_dir: str | None, text: str):
        """Base model beside the fine-tuned one on the same sentence → (base probs, tuned probs, two [CLS] rows)."""
        from bertdemo.explain import attention
        from bertdemo.runs import load_run_info

        if not text or not text.strip():
            raise ValueError("Type a sentence first.")
        predictor = _predictor(run_dir)
        base_model = load_run_info(run_dir).base_model
        if base_model == "scratch":
            raise ValueError("This run was trained from scratch: there is no pre-trained base model to compare with.")
        base = attention(_base_predictor(base_model, tuple(predictor.labels), predictor.max_length), text)
        tuned = attention(predictor, text)
        left = plots.cls_row_figure(base.tokens, base.weights)
        right = plots.cls_row_figure(tuned.tokens, tuned.weights)
        left.update_layout(title=dict(text="Base model: [CLS] row per layer"))
        right.update_layout(title=dict(text="Fine-tuned model: [CLS] row per layer"))
        return base.probabilities, tuned.probabilities, left, right

    @at_edge
    def on_batch(self, run_dir: str | None, path: str | None):
        """Predict every row of a CSV/TSV → (preview, path of a CSV with predicted label and probabilities)."""
        from bertdemo.batch import predict_file, save_predictions

        if not path:
            raise ValueError("Upload a CSV/TSV with a text column first.")
        out = predict_file(_predictor(run_dir), path)
        dest = Path(tempfile.mkdtemp(prefix="bertdemo-batch-")) / f"{Path(path).stem}_predictions.csv"
        return out.head(50), str(save_predictions(out, dest))

