"""The gradio Blocks app: layout first, then each event wired once.

``build_app(workspace)`` returns the Blocks without launching (tests launch it on a free port);
``launch_app`` adds the theme, CSS and server settings. Every endpoint has an explicit ``api_name``
so ``gradio_client`` can drive it. Training runs under one concurrency group of size 1 (jobs queue);
prediction events have their own, larger group so they stay responsive while a job trains.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from bertdemo.runs import default_workspace
from bertdemo.ui import teaching
from bertdemo.ui.explain_handlers import PREDICTED, ExplainHandlers
from bertdemo.ui.handlers import Handlers, config_defaults

DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # the bundled samples
TRAIN_QUEUE = dict(concurrency_limit=1, concurrency_id="train")  # one training job at a time, others wait
PREDICT_QUEUE = dict(concurrency_limit=4, concurrency_id="predict")  # cheap forward passes, several at once

CSS = """
.bd-progress {height: 18px; background: #e5e7eb; border-radius: 9px; overflow: hidden;}
.bd-bar {height: 100%; background: linear-gradient(90deg, #2563eb, #60a5fa); transition: width .4s;}
.bd-progress-text {font-size: 0.95em; margin-top: 4px; font-variant-numeric: tabular-nums;}
.bd-teach {background: #f8fafc; border-left: 4px solid #93c5fd; padding: 0 10px; font-size: 0.95em;}
"""


def _teach(text: str, *, scale: int = 1) -> None:
    with gr.Column(scale=scale, min_width=260, elem_classes="bd-teach"):
        with gr.Accordion("How it works", open=True):
            gr.Markdown(text)


def build_app(workspace: str | Path | None = None, *, data_dir: str | Path = DATA_DIR) -> gr.Blocks:
    """The whole app, per-session state included; nothing is loaded or trained until someone uses it."""
    h = Handlers(workspace or default_workspace(), data_dir)
    x = ExplainHandlers()
    d = config_defaults()

    with gr.Blocks(title="bertdemo — fine-tune and explain a small BERT") as demo:
        data_state = gr.State(None)  # {"path", "text_col", "label_col", ...} of this session's data
        run_state = gr.State(None)  # the folder of the run this session uses
        attention_state = gr.State(None)  # the AttentionResult of the last explained text

        gr.Markdown(teaching.INTRO)
        run_header = gr.Markdown("**No model loaded yet.**", elem_id="run-header")

        with gr.Tabs() as tabs:
            # --- 1 Data -----------------------------------------------------------------------
            with gr.Tab("1 · Data", id="data"):
                with gr.Row():
                    with gr.Column(scale=3):
                        with gr.Row():
                            upload = gr.File(label="Upload a CSV or TSV (a text column and a label column)",
                                             file_types=[".csv", ".tsv", ".txt"], type="filepath", scale=2,
                                             elem_id="upload")
                            with gr.Column(scale=1):
                                sample = gr.Dropdown(label="…or a bundled sample", choices=h.sample_choices())
                                sample_btn = gr.Button("Use this sample", variant="primary", elem_id="use-sample")
                        with gr.Row():
                            text_col = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True)
                            label_col = gr.Dropdown(label="Label column", choices=[], allow_custom_value=True)
                        data_status = gr.Markdown()
                        report = gr.Markdown(elem_id="data-report")
                        with gr.Row():
                            counts_plot = gr.Plot(label="Classes")
                            lengths_plot = gr.Plot(label="Lengths")
                        preview = gr.Dataframe(label="Preview (first 20 rows)", interactive=False, wrap=True,
                                               max_height=360, elem_id="preview")
                        with gr.Row():
                            dropped = gr.Dataframe(label="Dropped rows (reasons)", interactive=False)
                            conflicts = gr.Dataframe(label="Same text, different labels", interactive=False,
                                                     wrap=True)
                    _teach(teaching.DATA)

            # --- 2 Train ----------------------------------------------------------------------
            with gr.Tab("2 · Train", id="train"):
                with gr.Row():
                    with gr.Column(scale=3):
                        with gr.Row():
                            model = gr.Dropdown(
                                label="Model", choices=["default", "scratch"], value=d["model"],
                                allow_custom_value=True,
                                info='"default": the embedded MiniLM (pre-trained, offline). "scratch": a tiny '
                                     'BERT learned from zero. Or type a Hugging Face id / a local folder.')
                            epochs = gr.Slider(1, 20, value=d["epochs"], step=1, label="Epochs", elem_id="epochs",
                                               info="Passes over the training rows.")
                            batch_size = gr.Slider(4, 128, value=d["batch_size"], step=4, label="Batch size",
                                                   info="Examples per update step.")
                        with gr.Row():
                            learning_rate = gr.Number(value=d["learning_rate"], label="Learning rate",
                                                      info="Size of each update; 1e-4 suits MiniLM, 2e-5 BERT-base.")
                            max_length = gr.Slider(16, 512, value=d["max_length"], step=8, label="Max length",
                                                   elem_id="max-length",
                                                   info="Word-pieces per text; longer texts are cut.")
                            max_train_rows = gr.Number(value=d["max_train_rows"], precision=0,
                                                       label="Max training rows", info="0 = all; fewer = faster.",
                                                       elem_id="max-rows")
                        with gr.Accordion("Advanced settings", open=False):
                            with gr.Row():
                                warmup_ratio = gr.Slider(0, 0.5, value=d["warmup_ratio"], step=0.01,
                                                         label="Warm-up share")
                                weight_decay = gr.Number(value=d["weight_decay"], label="Weight decay")
                                seed = gr.Number(value=d["seed"], precision=0, label="Seed")
                            with gr.Row():
                                validation_split = gr.Slider(0.05, 0.5, value=d["validation_split"], step=0.05,
                                                             label="Validation share")
                                evals_per_epoch = gr.Slider(1, 10, value=d["evals_per_epoch"], step=1,
                                                            label="Evaluations per epoch")
                                patience = gr.Slider(0, 10, value=d["patience"], step=1,
                                                     label="Early-stopping patience (0 = off)")
                            with gr.Row():
                                dropout = gr.Slider(0, 0.5, value=d["dropout"], step=0.05, label="Dropout",
                                                    info="0 = off: faster, and the same accuracy on our "
                                                         "benchmarks; 0.1 is what BERT was pretrained with.")
                                freeze = gr.Checkbox(value=d["freeze_word_embeddings"],
                                                     label="Freeze the word embeddings (≈1.35× faster; untick "
                                                           "for the last bit of accuracy)")
                        with gr.Row():
                            start_btn = gr.Button("Start training", variant="primary", elem_id="start-train")
                            stop_btn = gr.Button("Stop", variant="stop", elem_id="stop-train")
                        progress = gr.HTML(elem_id="train-progress")
                        stop_note = gr.Markdown()
                        with gr.Row():
                            loss_plot = gr.Plot(label="Loss", elem_id="loss-plot")
                            scores_plot = gr.Plot(label="Validation scores", elem_id="scores-plot")
                        lr_plot = gr.Plot(label="Learning rate")
                        with gr.Accordion("Last training event (raw)", open=False):
                            last_event = gr.JSON(label="event")
                    _teach(teaching.TRAIN)

            # --- 3 Evaluate -------------------------------------------------------------------
            with gr.Tab("3 · Evaluate", id="evaluate"):
                with gr.Row():
                    with gr.Column(scale=3):
                        eval_summary = gr.Markdown(elem_id="eval-summary")
                        with gr.Row():
                            per_class = gr.Dataframe(label="Per class", interactive=False)
                            confusion = gr.Plot(label="Confusion matrix")
                        misclassified = gr.Dataframe(
                            label="Misclassified validation examples, most confident first — click one to explain it",
                            interactive=False, wrap=True, max_height=420, elem_id="misclassified",
                            column_widths=["64%", "12%", "12%", "12%"])
                    _teach(teaching.EVALUATE)

            # --- 4 Predict & Explain ----------------------------------------------------------
            with gr.Tab("4 · Predict & Explain", id="explain"):
                with gr.Row():
                    with gr.Column(scale=3):
                        with gr.Row():
                            text = gr.Textbox(label="Type a sentence (predictions update as you type)", lines=3,
                                              scale=2, elem_id="predict-text")
                            probs = gr.Label(label="Class probabilities", num_top_classes=10, scale=1,
                                             elem_id="probs")
                        explain_btn = gr.Button("Explain: attention and attributions", variant="primary",
                                                elem_id="explain-btn")
                        pieces = gr.HighlightedText(label="Word-pieces (as the tokenizer produced them)",
                                                    show_legend=True, elem_id="wordpieces")
                        pieces_note = gr.Markdown()
                        gr.Markdown(teaching.CAUTION)
                        with gr.Tab("Attention: one head"):
                            with gr.Row():
                                layer = gr.Slider(1, 6, value=6, step=1, label="Layer")
                                head = gr.Slider(1, 12, value=1, step=1, label="Head")
                            heatmap = gr.Plot(label="Attention heatmap", elem_id="attention-plot")
                        with gr.Tab("All heads"):
                            all_heads = gr.Plot(label="All heads of the chosen layer")
                        with gr.Tab("[CLS] row"):
                            cls_row = gr.Plot(label="[CLS] row per layer")
                        with gr.Tab("Rollout"):
                            rollout = gr.Plot(label="Attention rollout")
                        with gr.Tab("Attributions"):
                            target = gr.Dropdown(label="Explain which class", choices=[PREDICTED], value=PREDICTED,
                                                 allow_custom_value=True)
                            attr_btn = gr.Button("Compute attributions")
                            attr_summary = gr.Markdown()
                            ig_spans = gr.HighlightedText(label="Integrated gradients", show_legend=False,
                                                          elem_id="ig")
                            gxi_spans = gr.HighlightedText(label="Gradient × input", show_legend=False)
                        with gr.Tab("Base vs fine-tuned"):
                            gr.Markdown(teaching.COMPARE)
                            compare_btn = gr.Button("Compare on this sentence")
                            with gr.Row():
                                base_probs = gr.Label(label="Base model (random head): probabilities")
                                tuned_probs = gr.Label(label="Fine-tuned model: probabilities")
                            with gr.Row():
                                base_plot = gr.Plot(label="Base model")
                                tuned_plot = gr.Plot(label="Fine-tuned model")
                        with gr.Accordion("Batch: predict a whole CSV", open=False):
                            batch_file = gr.File(label="CSV/TSV with a text column", file_types=[".csv", ".tsv"],
                                                 type="filepath")
                            batch_btn = gr.Button("Predict all rows")
                            batch_out = gr.File(label="Download predictions", height=90)
                            batch_preview = gr.Dataframe(label="First rows", interactive=False, wrap=True)
                    with gr.Column(scale=1, min_width=260, elem_classes="bd-teach"):
                        with gr.Accordion("How it works", open=True):
                            gr.Markdown(teaching.PREDICT)
                            gr.Markdown(teaching.ATTENTION)
                            gr.Markdown(teaching.ATTRIBUTION)

            # --- 5 Models ---------------------------------------------------------------------
            with gr.Tab("5 · Models", id="models"):
                with gr.Row():
                    with gr.Column(scale=3):
                        runs_table = gr.Dataframe(label="Saved runs (newest first)", interactive=False, wrap=True)
                        run_pick = gr.Dropdown(label="Run", choices=[], allow_custom_value=True)
                        with gr.Row():
                            load_btn = gr.Button("Load into the app", variant="primary")
                            zip_btn = gr.Button("Download as zip")
                            delete_btn = gr.Button("Delete…", variant="stop")
                        with gr.Row(visible=False) as confirm_row:
                            confirm_text = gr.Markdown()
                            confirm_btn = gr.Button("Yes, delete it", variant="stop")
                            cancel_btn = gr.Button("Cancel")
                        zip_file = gr.File(label="Zip", height=90)
                        runs_json = gr.JSON(visible=False)
                    _teach(teaching.MODELS)

        # --- wiring: each event once ------------------------------------------------------------
        show_run = dict(fn=h.on_show_run, inputs=[run_state],
                        outputs=[run_header, eval_summary, per_class, confusion, misclassified, runs_table,
                                 run_pick, target], api_visibility="private")
        data_outputs = [preview, text_col, label_col, report, counts_plot, lengths_plot, dropped, conflicts,
                        data_state, data_status]
        load_data = dict(fn=h.on_load_data, inputs=[upload, text_col, label_col, max_length], outputs=data_outputs)

        demo.load(h.on_app_start, None, [run_state, sample], api_visibility="private").then(**show_run)

        upload.upload(**load_data, api_name="load_data")
        sample_btn.click(h.on_pick_sample, [sample], [upload], api_name="pick_sample").then(
            **load_data, api_visibility="private")
        text_col.input(**load_data, api_visibility="private")
        label_col.input(**load_data, api_visibility="private")

        settings = dict(model=model, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                        max_length=max_length, max_train_rows=max_train_rows, warmup_ratio=warmup_ratio,
                        weight_decay=weight_decay, seed=seed, validation_split=validation_split,
                        evals_per_epoch=evals_per_epoch, patience=patience, freeze_word_embeddings=freeze,
                        dropout=dropout)
        start_btn.click(h.on_queue_training, [data_state], [progress], queue=False, api_visibility="private").then(
            h.on_train, inputs=[data_state], inputs_kwargs=settings,
            outputs=[progress, loss_plot, scores_plot, lr_plot, last_event, run_state],
            api_name="train", show_progress="hidden", **TRAIN_QUEUE).then(**show_run)
        stop_btn.click(h.on_stop, None, [stop_note], api_name="stop", queue=False)

        misclassified.select(h.on_pick_misclassified, [misclassified], [text, tabs],
                             api_visibility="private").then(
            x.on_predict, [run_state, text], [probs], api_visibility="private", **PREDICT_QUEUE)

        text.input(x.on_predict, [run_state, text], [probs], api_name="predict", trigger_mode="always_last",
                   show_progress="hidden", **PREDICT_QUEUE)
        attention_outputs = [attention_state, layer, head, pieces, heatmap, all_heads, cls_row, rollout, pieces_note]
        for trigger in (explain_btn.click, text.submit):
            trigger(x.on_attention, [run_state, text, layer, head], attention_outputs,
                    api_name="attention" if trigger == explain_btn.click else None,
                    api_visibility="public" if trigger == explain_btn.click else "private", **PREDICT_QUEUE)
        for slider in (layer, head):
            slider.input(x.on_attention_view, [attention_state, layer, head], [heatmap, all_heads],
                         api_visibility="private", trigger_mode="always_last", show_progress="hidden",
                         **PREDICT_QUEUE)
        attr_btn.click(x.on_attributions, [run_state, text, target], [attr_summary, ig_spans, gxi_spans],
                       api_name="attributions", **PREDICT_QUEUE)
        compare_btn.click(x.on_compare, [run_state, text], [base_probs, tuned_probs, base_plot, tuned_plot],
                          api_name="compare",
                          **PREDICT_QUEUE)
        batch_btn.click(x.on_batch, [run_state, batch_file], [batch_preview, batch_out], api_name="batch_predict",
                        **PREDICT_QUEUE)

        list_btn = gr.Button(visible=False)  # API-only: the saved runs as JSON
        list_btn.click(h.on_list_runs, None, [runs_json], api_name="list_runs")
        load_btn.click(h.on_load_run, [run_pick], [run_state], api_name="load_run").then(**show_run)
        zip_btn.click(h.on_zip_run, [run_pick], [zip_file], api_name="zip_run")
        delete_btn.click(h.on_ask_delete, [run_pick], [confirm_row, confirm_text], api_visibility="private")
        cancel_btn.click(lambda: gr.Row(visible=False), None, [confirm_row], api_visibility="private")
        confirm_btn.click(h.on_delete_run, [run_pick, run_state], [run_state, confirm_row],
                          api_name="delete_run").then(**show_run)
    return demo


def launch_app(demo: gr.Blocks, *, host: str = "127.0.0.1", port: int | None = None, share: bool = False,
               auth: tuple[str, str] | None = None, **kwargs):
    """Queue and launch with the house theme; returns what ``Blocks.launch`` returns."""
    demo.queue(default_concurrency_limit=4)
    return demo.launch(server_name=host, server_port=port, share=share, auth=auth, theme=gr.themes.Soft(),
                       css=CSS, footer_links=["api"], **kwargs)
