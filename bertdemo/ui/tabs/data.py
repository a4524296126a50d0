"""The Data tab: upload a CSV/TSV or pick a bundled sample, choose the columns, read the data report.

Each load starts by clearing this session's data, so a file that fails to load never leaves the previous one in
place for Start to train on; a new file's columns are always guessed afresh (the dropdowns only count when the
user picks a column in them). The table read here is kept in the session, so training reads no file again.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.config import TrainConfig
from bertdemo.data import DataReport, guess_columns, load_data, measure_tokens, read_table
from bertdemo.models import report_tokenizer
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge
from bertdemo.ui.page import LOAD_QUEUE, Page, esc, teach
from bertdemo.ui.upload import upload_file

DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
PREVIEW_ROWS = 20
PREVIEW_CHARS = 400  # a preview cell shows this many characters of a text (a news article would fill the screen)
PREVIEW_OTHER_COLUMN = 14  # % of the preview's width for each column but the text's
PREVIEW_TEXT_COLUMN = 30  # % at least for the text column (a file of more than 6 columns scrolls sideways)


@dataclass(frozen=True)
class Loaded:
    """This session's data, as ``gr.State`` keeps it: the table as read, and the columns chosen."""
    path: str  # the uploaded file the table was read from (gradio's copy of it)
    table: pd.DataFrame
    text_col: str
    label_col: str
    source: str
    labels: tuple[str, ...]
    rows: int


@dataclass(frozen=True)
class ProjectSource:
    """This session's data when it is a labeling project's labels (Retrain on the Label tab)."""
    store_path: str
    project: str
    from_run: str | None  # start from this run's weights instead of the base model
    source: str
    labels: tuple[str, ...]
    rows: int


def report_markdown(report: DataReport, note: str = "") -> str:
    """The data report as Markdown; every value that came from the file is HTML-escaped."""
    stats = report.token_stats()
    where = (f" Encoding {esc(report.encoding)}, delimiter: {DELIMITERS.get(report.delimiter, esc(report.delimiter))}."
             if report.encoding else "")
    lines = [
        f"**{esc(report.source)}** — {report.rows_total} rows read, **{report.rows_kept} kept** "
        f"({report.train_rows} train / {report.validation_rows} validation, {esc(report.validation_source)}).{where}",
        f"Text column **{esc(report.text_col)}**, label column **{esc(report.label_col)}**, "
        f"{len(report.class_counts)} classes, imbalance {report.imbalance_ratio:.1f}:1.",
        f"Exact duplicates dropped: {report.exact_duplicates}; texts with conflicting labels: "
        f"{len(report.conflicting_duplicates)}; validation texts also in train: {report.train_validation_overlap}.",
    ]
    if stats:
        lines.append(f"Word-pieces per text: median {stats['median']:.0f}, 95 % ≤ {stats['p95']:.0f}, "
                     f"max {stats['max']}; **{stats['truncated']} longer than max_length={stats['max_length']}**.")
    if note:
        lines.append(esc(note))
    lines += [f"⚠️ {esc(w)}" for w in report.warnings]
    return "\n\n".join(lines)


class DataTab:
    def __init__(self, page: Page):
        self.page = page
        with gr.Row():
            with gr.Column(scale=3):
                with gr.Row():
                    self.upload = upload_file(label="Upload a CSV or TSV (a text column and a label column)",
                                          file_types=[".csv", ".tsv", ".txt"], type="filepath", scale=2,
                                          elem_id="upload", also_from=(page.data_dir,))
                    with gr.Column(scale=1):
                        self.sample = gr.Dropdown(label="…or a bundled sample", choices=self.sample_choices())
                        self.sample_btn = gr.Button("Use this sample", variant="primary", elem_id="use-sample")
                with gr.Row():
                    self.text_col = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True)
                    self.label_col = gr.Dropdown(label="Label column", choices=[], allow_custom_value=True)
                self.status = gr.Markdown(elem_id="data-status")
                self.report = gr.Markdown(elem_id="data-report")
                with gr.Row():
                    self.counts_plot = gr.Plot(label="Classes")
                    self.lengths_plot = gr.Plot(label="Lengths")
                self.preview = gr.Dataframe(label=f"Preview (first {PREVIEW_ROWS} rows)", interactive=False,
                                            wrap=True, max_height=360, elem_id="preview")
                with gr.Row():
                    self.dropped = gr.Dataframe(label="Dropped or cut rows (reasons)", interactive=False, wrap=True)
                    self.conflicts = gr.Dataframe(label="Same text, different labels", interactive=False, wrap=True)
            teach(teaching.DATA)
        page.page_loads.append(([self.sample], self.on_page_load))

    def on_page_load(self) -> dict:
        samples = self.sample_choices()
        return {self.sample: gr.Dropdown(choices=samples, value=samples[0] if samples else None)}

    def wire(self) -> None:
        page, train = self.page, self.page.parts["train"]
        outputs = [self.preview, self.text_col, self.label_col, self.report, self.counts_plot, self.lengths_plot,
                   self.dropped, self.conflicts, page.data_state, self.status]
        load = dict(fn=self.on_load, inputs=[self.upload, self.text_col, self.label_col, train.max_length,
                                             train.model, page.data_state], outputs=outputs, **LOAD_QUEUE)
        fresh = dict(fn=self.on_load_fresh, inputs=[self.upload, train.max_length, train.model], outputs=outputs,
                     api_visibility="private", **LOAD_QUEUE)
        self.upload.upload(**fresh)
        self.upload.clear(self.on_clear, None, outputs, api_visibility="private")  # an empty box holds no data
        self.sample_btn.click(self.on_pick_sample, [self.sample], [self.upload], api_name="pick_sample").then(**fresh)
        self.text_col.input(**load, api_visibility="private")
        self.label_col.input(**load, api_name="load_data")

    def sample_choices(self) -> list[str]:
        """The bundled sample files, looked up when a page loads (samples may be added while running)."""
        folder = self.page.data_dir
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".csv", ".tsv"))

    @at_edge
    def on_pick_sample(self, name: str | None) -> str:
        if not name:
            raise ValueError("Choose a sample file first.")
        path = self.page.data_dir / Path(name).name  # never a path outside data/
        if not path.is_file() or Path(name).name not in self.sample_choices():
            raise ValueError(f"Sample {name!r} is not one of the bundled samples; pick one from the list.")
        return str(path)

    def on_load_fresh(self, path: str | None, max_length: int = 128, model: str = "default"):
        """A newly uploaded or picked file: its columns are guessed, whatever the dropdowns held."""
        yield from self._load(path, None, None, max_length, model, table=None, fresh=True)

    def on_load(self, path: str | None, text_col: str | None = None, label_col: str | None = None,
                max_length: int = 128, model: str = "default", loaded: Loaded | None = None):
        """Other columns chosen for the same file (or the API's load with explicit columns)."""
        # after a Retrain the page holds a labeling project (ProjectSource), which has no file to reuse
        same_file = isinstance(loaded, Loaded) and path and loaded.path == str(path)
        table = loaded.table if same_file else None
        yield from self._load(path, text_col or None, label_col or None, max_length, model, table=table, fresh=False)

    @at_edge
    def _load(self, path, text_col, label_col, max_length, model, *, table, fresh: bool):
        """Clear the session's data, then read and check the table → preview, columns, report, charts, state."""
        yield self._cleared(fresh, "Reading the file…" if path else "")
        try:
            if not path:
                raise ValueError("Upload a CSV/TSV file first, or pick a bundled sample and click 'Use this sample'.")
            table = table if table is not None else read_table(path)
            yield self._loaded(str(path), table, text_col, label_col, max_length, model)
        except ValueError as err:
            yield {self.status: f"⚠️ **Not loaded.** {esc(err)}"}
            raise

    def on_clear(self) -> dict:
        return self._cleared(True, "")

    def _loaded(self, path: str, table: pd.DataFrame, text_col, label_col, max_length, model: str) -> dict:
        text_col, label_col = guess_columns(table, text_col, label_col)
        data = load_data(table, TrainConfig(max_length=int(max_length)), text_col=text_col, label_col=label_col)
        note = ""
        try:
            self.page.check_model(model)
            tokenizer = report_tokenizer(model)
            if tokenizer is None:
                note = "Word-piece lengths: 'scratch' learns its vocabulary while training, so they are not known yet."
            else:
                data = measure_tokens(data, tokenizer)
        except ValueError as err:
            note = f"Word-piece lengths need the chosen model's tokenizer, which did not load: {err}"
        report = data.report
        columns = list(table.columns)
        dropped = pd.DataFrame([{"reason": d["reason"], "rows": d["count"],
                                 "example row numbers": ", ".join(map(str, d["examples"]))}
                                for d in report.dropped + report.cut],
                               columns=["reason", "rows", "example row numbers"])
        conflicts = pd.DataFrame([{"text": c["text"], "labels": ", ".join(c["labels"])}
                                  for c in report.conflicting_duplicates], columns=["text", "labels"])
        loaded = Loaded(path=path, table=table, text_col=text_col, label_col=label_col, source=report.source, labels=data.labels,
                        rows=report.rows_kept)
        preview = gr.Dataframe(value=_preview(table), column_widths=_preview_widths(columns, text_col))
        return {self.preview: preview, self.text_col: gr.Dropdown(choices=columns, value=text_col),
                self.label_col: gr.Dropdown(choices=columns, value=label_col),
                self.report: report_markdown(report, note), self.counts_plot: plots.class_counts_figure(report.class_counts),
                self.lengths_plot: plots.token_length_figure(report.token_lengths, report.max_length),
                self.dropped: dropped, self.conflicts: conflicts, self.page.data_state: loaded,
                self.status: f"Data ready: **{esc(report.source)}**, {report.rows_kept} rows, {len(data.labels)} classes."}

    def _cleared(self, fresh: bool, status: str) -> dict:
        cleared = {self.preview: pd.DataFrame(), self.report: "", self.counts_plot: None, self.lengths_plot: None,
                   self.dropped: pd.DataFrame(), self.conflicts: pd.DataFrame(), self.page.data_state: None,
                   self.status: status}
        if fresh:  # a new file: the old file's column names mean nothing for it
            cleared.update({self.text_col: gr.Dropdown(choices=[], value=None),
                            self.label_col: gr.Dropdown(choices=[], value=None)})
        return cleared


def _preview(table: pd.DataFrame) -> pd.DataFrame:
    """The first rows, each cell cut to ``PREVIEW_CHARS`` characters for the screen (the data keeps them whole)."""
    return table.head(PREVIEW_ROWS).map(
        lambda v: v[:PREVIEW_CHARS] + "…" if isinstance(v, str) and len(v) > PREVIEW_CHARS else v)


def _preview_widths(columns: list[str], text_col: str) -> list[str]:
    """The preview's column widths: the text column takes what the others leave, so a file of a few columns fits the
    box (gradio's own widths follow the cells and overflow it); a file of many columns scrolls sideways."""
    text = max(100 - PREVIEW_OTHER_COLUMN * (len(columns) - 1), PREVIEW_TEXT_COLUMN)
    return [f"{text}%" if c == text_col else f"{PREVIEW_OTHER_COLUMN}%" for c in columns]
