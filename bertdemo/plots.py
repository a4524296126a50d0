"""Plotly figure builders: plain data in (lists, dicts, numpy arrays), a ``plotly`` figure out.

The only module that imports plotly. It knows nothing about gradio, torch or the run folders:
the UI passes in what the engine returned (event dicts, a data report, metrics, attention arrays).

Token axes use integer positions with the word-pieces as tick labels, because plotly merges
repeated category names ("the" twice would become one row) — wrong for attention maps.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# helpers

_HEIGHT = 340  # px; small enough to sit beside the teaching panel on a projector
_MARGIN = dict(l=50, r=20, t=50, b=40)
_TRAIN_COLOR = "#1f77b4"
_VAL_COLOR = "#d62728"
_HEAT = "Blues"  # a sequential scale: attention weights and counts are all ≥ 0
PLACEHOLDER_LINE = 30  # characters a line of a blank figure's message holds: plotly never wraps a text, and 30
# characters at 15 px fit the narrowest plot of the page (half a column at 1,280 px)


def _layout(fig: go.Figure, title: str, *, height: int = _HEIGHT, **kwargs) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01), height=height, margin=_MARGIN,
                      template="plotly_white", **kwargs)
    return fig


def empty_figure(message: str = "Nothing to show yet") -> go.Figure:
    """A blank figure that says why it is blank (nicer than an empty gr.Plot)."""
    fig = go.Figure()
    lines = textwrap.wrap(message, PLACEHOLDER_LINE)  # whole words on each line
    fig.add_annotation(text="<br>".join(lines), x=0.5, y=0.5, xref="paper", yref="paper",
                       showarrow=False, font=dict(size=15, color="#666"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "", height=220)


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """TensorBoard-style exponential moving average, bias-corrected so the start is not pulled to 0."""
    if not 0 <= weight < 1:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * float(v)
        out.append(avg / (1 - weight**i))
    return out


def _token_ticks(tokens: Sequence[str], angle: int = -60) -> dict:
    return dict(tickmode="array", tickvals=list(range(len(tokens))), ticktext=list(tokens), tickangle=angle)


# training


def loss_figure(steps: Sequence[Mapping], evals: Sequence[Mapping] = (), *, smoothing: float = 0.9) -> go.Figure:
    """Training loss per step (raw, faint; smoothed, bold) and validation loss per evaluation.

    ``steps``: StepEvent dicts (``step``, ``loss``); ``evals``: EvalEvent dicts (``step``, ``val_loss``).
    """
    if not steps and not evals:
        return empty_figure("The loss curve appears here once training starts")
    fig = go.Figure()
    x = [s["step"] for s in steps]
    y = [s["loss"] for s in steps]
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="train loss (per step)",
                             line=dict(color=_TRAIN_COLOR, width=1), opacity=0.3))
    fig.add_trace(go.Scatter(x=x, y=smooth(y, smoothing) if y else [], mode="lines",
                             name="train loss (smoothed)", line=dict(color=_TRAIN_COLOR, width=3)))
    fig.add_trace(go.Scatter(x=[e["step"] for e in evals], y=[e["val_loss"] for e in evals],
                             mode="lines+markers", name="validation loss",
                             line=dict(color=_VAL_COLOR, width=2), marker=dict(size=9)))
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title="cross-entropy loss", rangemode="tozero")
    return _layout(fig, "Loss (lower is better)", legend=dict(orientation="h", y=-0.25))


def eval_metrics_figure(evals: Sequence[Mapping]) -> go.Figure:
    """Validation accuracy and macro-F1 at each evaluation; the best checkpoint gets a star."""
    if not evals:
        return empty_figure("Validation accuracy and macro-F1 appear after the first evaluation")
    x = [e["step"] for e in evals]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[e["accuracy"] for e in evals], mode="lines+markers", name="accuracy"))
    fig.add_trace(go.Scatter(x=x, y=[e["macro_f1"] for e in evals], mode="lines+markers", name="macro-F1"))
    best = [e for e in evals if e.get("is_best")]
    if best:
        b = best[-1]
        fig.add_trace(go.Scatter(x=[b["step"]], y=[b["macro_f1"]], mode="markers", name="best (kept)",
                                 marker=dict(symbol="star", size=16, color="gold", line=dict(width=1))))
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title="score", range=[0, 1.02])
    return _layout(fig, "Validation scores (higher is better)", legend=dict(orientation="h", y=-0.25))


def learning_rate_figure(steps: Sequence[Mapping]) -> go.Figure:
    """The learning-rate schedule as it was applied, step by step (warm-up, then decay)."""
    if not steps:
        return empty_figure("The learning-rate schedule appears here once training starts")
    fig = go.Figure(go.Scatter(x=[s["step"] for s in steps], y=[s["learning_rate"] for s in steps],
                               mode="lines", line=dict(color="#2ca02c", width=2), name="learning rate"))
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title="learning rate", exponentformat="e", rangemode="tozero")
    return _layout(fig, "Learning rate", height=260)


def pretraining_figure(steps: Sequence[Mapping], evals: Sequence[Mapping] = (), *,
                       smoothing: float = 0.9) -> go.Figure:
    """Masked-LM pretraining: the loss per step (raw, faint; smoothed) and held-out, beside the held-out
    masked-token accuracy. ``steps``: StepEvent dicts; ``evals``: EvalEvent dicts (``val_loss``, ``accuracy``)."""
    if not steps and not evals:
        return empty_figure("The masked-LM loss and accuracy appear here once pretraining starts")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.12,
                        subplot_titles=("MLM loss (lower is better)", "masked-token accuracy, held out"))
    x = [s["step"] for s in steps]
    y = [s["loss"] for s in steps]
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="train loss (per step)",
                             line=dict(color=_TRAIN_COLOR, width=1), opacity=0.3), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=smooth(y, smoothing) if y else [], mode="lines", name="train loss (smoothed)",
                             line=dict(color=_TRAIN_COLOR, width=3)), row=1, col=1)
    ex = [e["step"] for e in evals]
    fig.add_trace(go.Scatter(x=ex, y=[e["val_loss"] for e in evals], mode="lines+markers", name="held-out loss",
                             line=dict(color=_VAL_COLOR, width=2), marker=dict(size=8)), row=1, col=1)
    fig.add_trace(go.Scatter(x=ex, y=[e["accuracy"] for e in evals], mode="lines+markers",
                             name="masked-token accuracy", line=dict(color="#2ca02c", width=2),
                             marker=dict(size=8)), row=1, col=2)
    fig.update_xaxes(title="optimizer step", rangemode="tozero")
    fig.update_yaxes(title="cross-entropy on masked tokens", rangemode="tozero", row=1, col=1)
    # a fixed 0–1 axis: a small model's first accuracies (a few %) must not look like a steep climb
    fig.update_yaxes(title="share guessed right", range=[0, 1.02], tickformat=".0%", row=1, col=2)
    return _layout(fig, "", height=_HEIGHT, legend=dict(orientation="h", y=-0.3))


def fill_mask_figure(blanks: Sequence[Mapping]) -> go.Figure:
    """The top guesses of each blank (``fill_mask``'s entries) as horizontal bars of probability, most likely on
    top; the hidden word's bar, when it is among them, in green."""
    if not blanks:
        return empty_figure("Mark a word with [brackets] and ask")
    fig = make_subplots(rows=len(blanks), cols=1, vertical_spacing=0.12 if len(blanks) > 1 else 0.0,
                        subplot_titles=[f"blank {i + 1}" + (f" (hidden: {b['answer']})" if b.get("answer") else "")
                                        for i, b in enumerate(blanks)])
    for i, blank in enumerate(blanks, start=1):
        pieces = [g[0] for g in blank["guesses"]][::-1]
        probs = [g[1] for g in blank["guesses"]][::-1]
        colors = ["#2ca02c" if p == blank.get("answer") else _TRAIN_COLOR for p in pieces]
        # positions, not names, on the axis: two blanks may share a guess, and plotly merges equal categories
        fig.add_trace(go.Bar(x=probs, y=list(range(len(pieces))), orientation="h", marker_color=colors,
                             text=[f"{p:.1%}" for p in probs], textposition="auto", showlegend=False), row=i, col=1)
        fig.update_yaxes(tickmode="array", tickvals=list(range(len(pieces))), ticktext=pieces, row=i, col=1)
        fig.update_xaxes(range=[0, 1], tickformat=".0%", row=i, col=1)
    _layout(fig, "", height=max(220, 170 * len(blanks)))
    return fig.update_layout(margin=dict(l=90, r=20, t=40, b=30))  # room for the word-pieces on the left


# data


def class_counts_figure(class_counts: Mapping[str, int]) -> go.Figure:
    """Rows per label, largest first."""
    if not class_counts:
        return empty_figure("No labels found")
    items = sorted(class_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    fig = go.Figure(go.Bar(x=[str(k) for k, _ in items], y=[v for _, v in items],
                           text=[v for _, v in items], textposition="auto", marker_color=_TRAIN_COLOR))
    fig.update_xaxes(title="label", type="category")
    fig.update_yaxes(title="rows")
    return _layout(fig, "Examples per class")


def token_length_figure(token_lengths: Sequence[int], max_length: int) -> go.Figure:
    """Histogram of word-piece counts per text with a dashed line at ``max_length`` (longer ones get cut)."""
    if not len(token_lengths):
        return empty_figure("No texts to measure")
    lengths = np.asarray(token_lengths)
    cut = int((lengths > max_length).sum())
    fig = go.Figure(go.Histogram(x=lengths, nbinsx=40, marker_color=_TRAIN_COLOR, name="texts"))
    fig.add_vline(x=max_length, line=dict(color=_VAL_COLOR, dash="dash", width=2),
                  annotation_text=f"max_length = {max_length} ({cut} truncated)", annotation_position="top left")
    fig.update_xaxes(title="word-pieces per text (incl. [CLS] and [SEP])", rangemode="tozero")
    fig.update_yaxes(title="texts")
    return _layout(fig, "Text length in word-pieces", showlegend=False)


# evaluation


def confusion_figure(confusion: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """Confusion matrix: rows are the true label, columns the prediction; the diagonal is correct."""
    z = np.asarray(confusion, dtype=float)
    if z.size == 0:
        return empty_figure("No evaluation yet")
    names = [str(label) for label in labels]
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, colorscale=_HEAT, text=z.astype(int),
                               texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z:.0f} rows"
                               "<extra></extra>", showscale=False))
    fig.update_xaxes(title="predicted label", type="category", side="bottom")
    fig.update_yaxes(title="true label", type="category", autorange="reversed")
    size = max(_HEIGHT, 60 * len(names) + 120)
    return _layout(fig, "Confusion matrix (validation)", height=min(size, 700))


def probabilities_figure(probabilities: Mapping[str, float]) -> go.Figure:
    """Horizontal bars of class probabilities, highest on top."""
    if not probabilities:
        return empty_figure("Type a sentence to see the class probabilities")
    items = sorted(probabilities.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[p for _, p in items], y=[str(k) for k, _ in items], orientation="h",
                           text=[f"{p:.1%}" for _, p in items], textposition="auto", marker_color=_TRAIN_COLOR))
    fig.update_xaxes(title="probability", range=[0, 1])
    fig.update_yaxes(type="category")
    return _layout(fig, "Class probabilities", height=max(220, 40 * len(items) + 110))


# attention


def attention_figure(tokens: Sequence[str], weights: np.ndarray, *, title: str = "Attention") -> go.Figure:
    """One token × token attention map: row i shows how much token i attends to each token j.

    ``weights``: (T, T), rows sum to 1.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] != len(tokens):
        raise ValueError(f"attention weights must be (T, T) with T={len(tokens)} tokens, got shape {w.shape}")
    hover = [[f"{tokens[i]} → {tokens[j]}: {w[i, j]:.3f}" for j in range(len(tokens))] for i in range(len(tokens))]
    fig = go.Figure(go.Heatmap(z=w, colorscale=_HEAT, zmin=0, text=hover, hoverinfo="text",
                               colorbar=dict(title="weight", thickness=12)))
    fig.update_xaxes(title="attended-to token (key)", **_token_ticks(tokens))
    fig.update_yaxes(title="attending token (query)", autorange="reversed", **_token_ticks(tokens, 0))
    size = int(min(720, max(380, 22 * len(tokens) + 160)))
    return _layout(fig, title, height=size)


def all_heads_figure(tokens: Sequence[str], layer_weights: np.ndarray, *, layer: int) -> go.Figure:
    """Small multiples: every head of one layer side by side, so students see that heads differ.

    ``layer_weights``: (H, T, T) — the heads of ``layer`` (0-based; shown 1-based).
    """
    w = np.asarray(layer_weights, dtype=float)
    if w.ndim != 3 or w.shape[1:] != (len(tokens), len(tokens)):
        raise ValueError(f"layer weights must be (H, T, T) with T={len(tokens)}, got shape {w.shape}")
    heads = w.shape[0]
    cols = min(heads, 4)
    rows = int(np.ceil(heads / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[f"head {h + 1}" for h in range(heads)],
                        horizontal_spacing=0.03, vertical_spacing=0.08)
    for h in range(heads):
        fig.add_trace(go.Heatmap(z=w[h], colorscale=_HEAT, zmin=0, zmax=1, showscale=False,
                                 hovertemplate=f"head {h + 1}<br>query %{{y}} → key %{{x}}: %{{z:.3f}}"
                                               "<extra></extra>"),
                      row=h // cols + 1, col=h % cols + 1)
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False, autorange="reversed")
    return _layout(fig, f"All {heads} heads of layer {layer + 1} (rows: query token, columns: key token)",
                   height=230 * rows + 60)


def cls_row_figure(tokens: Sequence[str], weights: np.ndarray) -> go.Figure:
    """How much [CLS] (position 0) attends to each token, per layer, averaged over heads.

    ``weights``: (L, H, T, T). [CLS]'s final vector feeds the classifier, so its row is where
    the sentence summary is gathered — but see the caution about attention ≠ explanation.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 4 or w.shape[2:] != (len(tokens), len(tokens)):
        raise ValueError(f"attention must be (L, H, T, T) with T={len(tokens)}, got shape {w.shape}")
    rows = w[:, :, 0, :].mean(axis=1)  # (L, T)
    layers = [f"layer {i + 1}" for i in range(rows.shape[0])]
    fig = go.Figure(go.Heatmap(z=rows, y=layers, colorscale=_HEAT, zmin=0, colorbar=dict(thickness=12),
                               customdata=np.array([list(tokens)] * len(layers)),
                               hovertemplate="%{y}, [CLS] → %{customdata}: %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title="token", **_token_ticks(tokens))
    fig.update_yaxes(type="category")
    return _layout(fig, "[CLS] row: where the sentence summary looks, layer by layer (mean over heads)",
                   height=max(260, 28 * len(layers) + 160))


def rollout_figure(tokens: Sequence[str], rollout: np.ndarray) -> go.Figure:
    """Attention rollout (Abnar & Zuidema 2020): attention multiplied through all layers, residual included."""
    return attention_figure(tokens, rollout, title="Attention rollout (all layers combined)")


def attribution_figure(tokens: Sequence[str], scores: Sequence[float], *, title: str = "Attribution") -> go.Figure:
    """Signed per-token scores as bars: red pushes towards the target class, blue away from it."""
    s = np.asarray(scores, dtype=float)
    if s.shape != (len(tokens),):
        raise ValueError(f"scores must have one value per token ({len(tokens)}), got shape {s.shape}")
    colors = [_VAL_COLOR if v > 0 else _TRAIN_COLOR for v in s]
    fig = go.Figure(go.Bar(x=list(range(len(tokens))), y=s, marker_color=colors,
                           customdata=list(tokens), hovertemplate="%{customdata}: %{y:.3f}<extra></extra>"))
    fig.update_xaxes(**_token_ticks(tokens))
    fig.update_yaxes(title="score", zeroline=True)
    return _layout(fig, title, height=300)


# labeling


def al_curve_figure(table: Mapping) -> go.Figure:
    """Test accuracy against the number of labels, one line per strategy, the spread over seeds as error bars.

    ``table``: ``bertdemo.labeling.simulate.curve_table``'s dict (``budgets``, a list per strategy, ``spread``).
    """
    budgets = list(table.get("budgets", []))
    strategies = [k for k in table if k not in ("budgets", "spread", "macro_f1", "seconds_per_round")]
    if not budgets or not strategies:
        return empty_figure("The curve appears here as the simulated rounds finish")
    fig = go.Figure()
    for strategy in strategies:
        means = table[strategy]
        spread = table.get("spread", {}).get(strategy) or [None] * len(means)
        upper = [(s[1] - m) if s and m is not None else 0 for s, m in zip(spread, means)]
        lower = [(m - s[0]) if s and m is not None else 0 for s, m in zip(spread, means)]
        fig.add_trace(go.Scatter(x=budgets[:len(means)], y=means, mode="lines+markers", name=str(strategy),
                                 error_y=dict(type="data", array=upper, arrayminus=lower, visible=True)))
    fig.update_xaxes(title="labels", rangemode="tozero")
    fig.update_yaxes(title="test accuracy", range=[0, 1.02])
    return _layout(fig, "Active learning: accuracy as labels are added", legend=dict(orientation="h", y=-0.25))


def lesson_figure(table: Mapping) -> go.Figure:
    """The lesson "what pretraining buys": test accuracy against labels, one line per starting point, the
    spread over seeds as error bars. ``table``: ``bertdemo.lesson.lesson_table``'s dict."""
    counts, arms = list(table.get("labels", [])), dict(table.get("arms", {}))
    if not counts or not arms:
        return empty_figure("The lines appear here as the fine-tunes finish")
    fig = go.Figure()
    for arm, means in arms.items():
        spread = table.get("spread", {}).get(arm) or [None] * len(means)
        upper = [(s[1] - m) if s and m is not None else 0 for s, m in zip(spread, means)]
        lower = [(m - s[0]) if s and m is not None else 0 for s, m in zip(spread, means)]
        fig.add_trace(go.Scatter(x=counts[:len(means)], y=means, mode="lines+markers", name=str(arm),
                                 error_y=dict(type="data", array=upper, arrayminus=lower, visible=True)))
    fig.update_xaxes(title="labels (log scale)", type="log")
    fig.update_yaxes(title="test accuracy", range=[0, 1.02])
    return _layout(fig, "What pretraining buys: accuracy against labels", legend=dict(orientation="h", y=-0.25))


def deletion_curve_figure(curves: Mapping[str, Sequence[float]], random_curve: Sequence[float],
                          removed: Sequence[int], pieces: int, target: str) -> go.Figure:
    """The deletion test: p(target) as the top-scored word-pieces are removed, one line per explanation method
    and a dashed one for random orderings. A faithful explanation falls fastest."""
    if not curves:
        return empty_figure("Compute the explanations to see the deletion test")
    x = [k / max(1, pieces) for k in removed]
    fig = go.Figure()
    for name, curve in curves.items():
        fig.add_trace(go.Scatter(x=x, y=list(curve), mode="lines+markers", name=str(name),
                                 customdata=list(removed), hovertemplate="%{customdata} removed: %{y:.3f}<extra></extra>"))
    fig.add_trace(go.Scatter(x=x, y=list(random_curve), mode="lines", name="random (mean)",
                             line=dict(color="#6b7280", dash="dash", width=2)))
    fig.update_xaxes(title="share of word-pieces removed (top-scored first)", tickformat=".0%", range=[0, max(x) * 1.05])
    fig.update_yaxes(title=f"P({target})", range=[0, 1.02])
    return _layout(fig, "Deletion test: the faster the probability falls, the more faithful",
                   legend=dict(orientation="h", y=-0.3), height=360)


# multi-label runs: per-label probabilities against thresholds, and each label's 2×2 confusion


def label_thresholds_figure(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> go.Figure:
    """One horizontal bar per label (its own sigmoid probability) with a tick at its threshold; a label at or above
    its threshold is predicted and drawn in the strong colour. Labels keep their order (not sorted by probability):
    the bars stay put as the user types."""
    if not probabilities:
        return empty_figure("Type a sentence to see each label's probability")
    names = [str(label) for label in probabilities]
    probs = [float(probabilities[label]) for label in probabilities]
    cuts = [float(thresholds.get(label, 0.5)) for label in probabilities]
    chosen = [p >= t for p, t in zip(probs, cuts)]
    fig = go.Figure(go.Bar(
        x=probs, y=names, orientation="h", name="probability",
        marker_color=[_TRAIN_COLOR if c else "#c7d2e0" for c in chosen],
        text=[f"{p:.1%}" + (" ✓" if c else "") for p, c in zip(probs, chosen)], textposition="auto",
        customdata=cuts, hovertemplate="%{y}: %{x:.3f} (threshold %{customdata:.3f})<extra></extra>"))
    fig.add_trace(go.Scatter(x=cuts, y=names, mode="markers", name="threshold", hoverinfo="skip",
                             marker=dict(symbol="line-ns", size=26, line=dict(width=3, color=_VAL_COLOR))))
    fig.update_xaxes(title="probability (each label its own sigmoid)", range=[0, 1])
    fig.update_yaxes(type="category", autorange="reversed")
    return _layout(fig, "Label probabilities against their thresholds", height=max(220, 40 * len(names) + 120),
                   showlegend=False)


def label_confusion_figure(label_confusion: Mapping[str, Sequence[Sequence[int]]]) -> go.Figure:
    """Each label's 2×2 confusion side by side (rows: true no/yes, columns: predicted no/yes; the diagonal is
    right), counts coloured within each label."""
    if not label_confusion:
        return empty_figure("No per-label confusion in this run")
    names = [str(label) for label in label_confusion]
    columns = min(4, len(names))
    rows = -(-len(names) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=names, horizontal_spacing=0.08,
                        vertical_spacing=0.2 / max(1, rows - 1) if rows > 1 else 0.1)
    for i, label in enumerate(label_confusion):
        z = np.asarray(label_confusion[label], dtype=float)  # (2, 2) [[tn, fp], [fn, tp]]
        fig.add_trace(go.Heatmap(z=z, x=["predicted no", "predicted yes"], y=["true no", "true yes"],
                                 colorscale=_HEAT, showscale=False, text=z.astype(int), texttemplate="%{text}",
                                 hovertemplate=f"{label}<br>%{{y}}, %{{x}}: %{{z:.0f}} texts<extra></extra>"),
                      row=i // columns + 1, col=i % columns + 1)
    fig.update_yaxes(autorange="reversed", type="category")
    for col in range(2, columns + 1):  # the row names once, at the left: side by side they would overlap
        fig.update_yaxes(showticklabels=False, col=col)
    fig.update_xaxes(type="category")
    return _layout(fig, "Per-label confusion (validation)", height=min(220 * rows + 80, 900))


# multi-label data: per-label counts with the rare ones marked, label co-occurrence, labels per text


def label_counts_figure(label_counts: Mapping[str, int], rare: Sequence[str] = ()) -> go.Figure:
    """Texts per label, largest first; the labels in ``rare`` (too few texts to learn) in the warning colour."""
    if not label_counts:
        return empty_figure("No labels found")
    items = sorted(label_counts.items(), key=lambda kv: (-kv[1], kv[0]))
    rare = set(rare)
    fig = go.Figure(go.Bar(x=[str(k) for k, _ in items], y=[v for _, v in items],
                           text=[f"{v} (too rare)" if k in rare else v for k, v in items], textposition="auto",
                           marker_color=[_VAL_COLOR if k in rare else _TRAIN_COLOR for k, _ in items]))
    fig.update_xaxes(title="label", type="category")
    fig.update_yaxes(title="texts carrying it")
    return _layout(fig, "Texts per label")


def cooccurrence_figure(cooccurrence: Sequence[Sequence[int]], labels: Sequence[str]) -> go.Figure:
    """Texts carrying both labels (row, column), in label order; the diagonal is each label's own count."""
    z = np.asarray(cooccurrence, dtype=float)
    if z.size == 0:
        return empty_figure("One label per text: nothing co-occurs")
    names = [str(label) for label in labels]
    fig = go.Figure(go.Heatmap(z=z, x=names, y=names, colorscale=_HEAT, text=z.astype(int), texttemplate="%{text}",
                               hovertemplate="%{y} and %{x}: %{z:.0f} texts<extra></extra>", showscale=False))
    fig.update_xaxes(type="category", side="bottom")
    fig.update_yaxes(type="category", autorange="reversed")
    size = max(_HEIGHT, 50 * len(names) + 120)
    return _layout(fig, "Label co-occurrence (texts with both)", height=min(size, 700))


def labels_per_text_figure(labels_per_text: Mapping[str, int]) -> go.Figure:
    """How many texts carry 0, 1, 2… labels (0: the explicit "none")."""
    if not labels_per_text:
        return empty_figure("No label sets")
    counts = sorted((int(k), int(v)) for k, v in labels_per_text.items())
    fig = go.Figure(go.Bar(x=[k for k, _ in counts], y=[v for _, v in counts], text=[v for _, v in counts],
                           textposition="auto", marker_color=_TRAIN_COLOR))
    fig.update_xaxes(title="labels on a text (0 = none applies)", tickmode="linear", dtick=1)
    fig.update_yaxes(title="texts")
    return _layout(fig, "Labels per text")
