"""The Data tab: upload a CSV/TSV or pick a bundled sample, choose the columns, read the data report.

Each load starts by clearing this session's data, so a file that fails to load never leaves the previous one in
place for Start to train on; a new file's columns are always guessed afresh (the dropdowns only count when the
user picks a column in them). The table read here is kept in the session, so training reads no file again.

Multi-label files: "Labels per text", the separator and the 0/1 label columns say how labels are written
(``bertdemo.data.label_choice``); the session keeps the choice as the load resolved it, and the training job reads
the table the same way. The multi-label charts (co-occurrence, labels per text) and the 0/1 column list are drawn
by a step after each load (``on_label_view``), so the ``/load_data`` endpoint answers what it always answered.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from bertdemo import plots
from bertdemo.config import TrainConfig
from bertdemo.data import DataReport, measure_tokens, read_table
from bertdemo.data.label_choice import LabelChoice, describe_label_sets, label_cols_of, load_as_chosen, resolved
from bertdemo.data.multilabel import DEFAULT_SEP, NONE_VALUE, RARE_POSITIVES
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
PER_TEXT = {"auto-detect": "auto", "one label": "one", "several labels": "several"}  # the radio's words → LabelChoice
LABELS_HELP = (f"Several labels per text: write them in one cell separated by the separator "
               f"(`billing{DEFAULT_SEP}bug`), or give one 0/1 column per label. **`{NONE_VALUE}`** in a cell (or a row of zeros) says that no "
               "label applies; an empty cell is a text not labeled yet, and is left out of training.")


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
    choice: LabelChoice = LabelChoice()  # how the labels were read, as resolved ("one" or "several"): the
    # training job reads the table the same way
    multi_label: bool = False


@dataclass(frozen=True)
class LabelView:
    """What the label-format list and the multi-label charts show after a load; after a failed one too, when the
    table was read (its columns, so the 0/1 label columns can be chosen to fix the load)."""
    columns: tuple[str, ...]
    cols: tuple[str, ...]  # the 0/1 label columns in use (found or chosen); () when a label column holds the labels
    report: DataReport | None = None  # None: the load failed
    labels: tuple[str, ...] = ()


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
        *(multilabel_lines(report) if report.multi_label else [
            f"Text column **{esc(report.text_col)}**, label column **{esc(report.label_col)}**, "
            f"{len(report.class_counts)} classes, imbalance {report.imbalance_ratio:.1f}:1."]),
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


def multilabel_lines(report: DataReport) -> list[str]:
    """The report's lines about label sets: how they are written, how many per text, which are too rare."""
    cols = report.label_format.get("label_cols") or []
    sep = report.label_format.get("sep", DEFAULT_SEP)
    where = (f"0/1 label columns **{esc(', '.join(cols))}**" if cols else
             f"label column **{esc(report.label_col)}**, separator `{esc(sep)}`")
    lines = [f"**{describe_label_sets(report)}**",
             f"Text column **{esc(report.text_col)}**, {where}; {len(report.class_counts)} labels, imbalance "
             f"{report.imbalance_ratio:.1f}:1 (counts are texts per label)."]
    if report.rare_labels:
        lines.append(f"Too rare to learn (on fewer than {RARE_POSITIVES} texts): "
                     f"**{esc(', '.join(report.rare_labels))}**.")
    return lines


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
                with gr.Row():
                    self.per_text = gr.Radio(list(PER_TEXT), value="auto-detect", label="Labels per text",
                                             elem_id="labels-per-text",
                                             info="auto-detect: a cell holding the separator, or 0/1 columns, "
                                                  "make a multi-label file.")
                    self.label_sep = gr.Textbox(value=DEFAULT_SEP, label="Separator", max_lines=1, scale=0,
                                                min_width=110, elem_id="label-sep", info="between labels; Enter")
                    self.label_cols = gr.Dropdown(label="0/1 label columns", choices=[], value=[], multiselect=True,
                                                  elem_id="label-cols", info="one column per label (1 = applies)")
                gr.Markdown(LABELS_HELP, elem_classes="bd-item-note")
                self.status = gr.Markdown(elem_id="data-status")
                self.report = gr.Markdown(elem_id="data-report")
                with gr.Row():
                    self.counts_plot = gr.Plot(label="Classes")
                    self.lengths_plot = gr.Plot(label="Lengths")
                with gr.Row(visible=False) as self.multilabel_row:
                    self.cooccurrence_plot = gr.Plot(label="Label co-occurrence", elem_id="cooccurrence-plot")
                    self.per_text_plot = gr.Plot(label="Labels per text", elem_id="labels-per-text-plot")
                self.label_view = gr.State(None)  # LabelView of the last load
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
                   self.dropped, self.conflicts, page.data_state, self.status, self.label_view]
        how = [self.per_text, self.label_sep]  # how labels are written: last among the inputs (API callers of
        # /load_data may leave them out)
        load = dict(fn=self.on_load, inputs=[self.upload, self.text_col, self.label_col, train.max_length,
                                             train.model, page.data_state, *how, self.label_cols],
                    outputs=outputs, **LOAD_QUEUE)
        fresh = dict(fn=self.on_load_fresh, inputs=[self.upload, train.max_length, train.model, *how],
                     outputs=outputs, api_visibility="private", **LOAD_QUEUE)
        columns = dict(fn=self.on_pick_label_cols, inputs=[self.upload, self.text_col, self.label_cols,
                                                           train.max_length, train.model, page.data_state, *how],
                       outputs=outputs, api_visibility="private", **LOAD_QUEUE)
        view = dict(fn=self.on_label_view, inputs=[self.label_view],
                    outputs=[self.label_cols, self.multilabel_row, self.cooccurrence_plot, self.per_text_plot],
                    api_visibility="private")
        self.upload.upload(**fresh).then(**view)
        self.upload.clear(self.on_clear, None, outputs, api_visibility="private").then(**view)  # an empty box
        # holds no data
        self.sample_btn.click(self.on_pick_sample, [self.sample], [self.upload], api_name="pick_sample").then(
            **fresh).then(**view)
        self.text_col.input(**load, api_visibility="private").then(**view)
        self.label_col.input(**load, api_name="load_data").then(**view)
        gr.on([self.per_text.input, self.label_sep.submit, self.label_sep.blur], **load,
              api_visibility="private").then(**view)
        self.label_cols.input(**columns).then(**view)

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

    def on_load_fresh(self, path: str | None, max_length: int = 128, model: str = "default",
                      per_text: str = "auto-detect", label_sep: str = DEFAULT_SEP):
        """A newly uploaded or picked file: its columns (0/1 label columns included) are guessed, whatever the
        dropdowns held; how labels are written stays as the user set it."""
        yield from self._load(path, None, None, max_length, model, table=None, fresh=True,
                              how=(per_text, label_sep, ()))

    def on_load(self, path: str | None, text_col: str | None = None, label_col: str | None = None,
                max_length: int = 128, model: str = "default", loaded: Loaded | None = None,
                per_text: str = "auto-detect", label_sep: str = DEFAULT_SEP, label_cols: list[str] | None = None):
        """Other columns chosen for the same file (or the API's load with explicit columns). A label column,
        when given, holds the labels and the 0/1 label columns are let go (the user just picked it)."""
        cols = () if label_col else label_cols_of(label_cols)
        yield from self._load(path, text_col or None, label_col or None, max_length, model,
                              table=self._same_table(path, loaded), fresh=False, how=(per_text, label_sep, cols))

    def on_pick_label_cols(self, path: str | None, text_col: str | None = None, label_cols: list[str] | None = None,
                           max_length: int = 128, model: str = "default", loaded: Loaded | None = None,
                           per_text: str = "auto-detect", label_sep: str = DEFAULT_SEP):
        """0/1 label columns chosen: they hold the labels, whatever the label column said."""
        yield from self._load(path, text_col or None, None, max_length, model, table=self._same_table(path, loaded),
                              fresh=False, how=(per_text, label_sep, label_cols_of(label_cols)))

    @staticmethod
    def _same_table(path, loaded) -> pd.DataFrame | None:
        # after a Retrain the page holds a labeling project (ProjectSource), which has no file to reuse
        same_file = isinstance(loaded, Loaded) and path and loaded.path == str(path)
        return loaded.table if same_file else None

    @at_edge
    def _load(self, path, text_col, label_col, max_length, model, *, table, fresh: bool, how: tuple):
        """Clear the session's data, then read and check the table → preview, columns, report, charts, state."""
        yield self._cleared(fresh, "Reading the file…" if path else "")
        try:
            if not path:
                raise ValueError("Upload a CSV/TSV file first, or pick a bundled sample and click 'Use this sample'.")
            table = table if table is not None else read_table(path)
            per_text, sep, cols = how
            if per_text not in PER_TEXT:
                raise ValueError(f"Labels per text must be one of {', '.join(PER_TEXT)} (got {str(per_text)[:40]!r}).")
            sep = sep if isinstance(sep, str) else ""
            if not sep.strip() and per_text != "several labels":
                sep = DEFAULT_SEP  # an emptied box means "as usual" unless the user said several labels
            choice = LabelChoice(per_text=PER_TEXT[per_text], sep=sep, cols=cols)
            yield self._loaded(str(path), table, text_col, label_col, max_length, model, choice)
        except ValueError as err:
            failed = {self.status: f"⚠️ **Not loaded.** {esc(err)}"}
            if table is not None:  # the 0/1 columns can still be chosen to fix it
                failed[self.label_view] = LabelView(columns=tuple(map(str, table.columns)), cols=tuple(how[2]))
            yield failed
            raise

    def on_clear(self) -> dict:
        return self._cleared(True, "")

    def _loaded(self, path: str, table: pd.DataFrame, text_col, label_col, max_length, model: str,
                choice: LabelChoice) -> dict:
        data = load_as_chosen(table, TrainConfig(max_length=int(max_length)), choice, text_col=text_col,
                              label_col=label_col)
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
        choice = resolved(choice, data)
        text_col, label_col = report.text_col, "" if choice.cols else report.label_col
        columns = list(table.columns)
        dropped = pd.DataFrame([{"reason": d["reason"], "rows": d["count"],
                                 "example row numbers": ", ".join(map(str, d["examples"]))}
                                for d in report.dropped + report.cut],
                               columns=["reason", "rows", "example row numbers"])
        conflicts = pd.DataFrame([{"text": c["text"], "labels": ", ".join(c["labels"])}
                                  for c in report.conflicting_duplicates], columns=["text", "labels"])
        loaded = Loaded(path=path, table=table, text_col=text_col, label_col=label_col, source=report.source,
                        labels=data.labels, rows=report.rows_kept, choice=choice, multi_label=data.multi_label)
        preview = gr.Dataframe(value=_preview(table), column_widths=_preview_widths(columns, text_col))
        counts = (plots.label_counts_figure(report.class_counts, report.rare_labels) if data.multi_label
                  else plots.class_counts_figure(report.class_counts))
        kind = f"{len(data.labels)} labels (multi-label)" if data.multi_label else f"{len(data.labels)} classes"
        return {self.preview: preview, self.text_col: gr.Dropdown(choices=columns, value=text_col),
                self.label_col: gr.Dropdown(choices=columns, value=label_col or None),
                self.report: report_markdown(report, note), self.counts_plot: counts,
                self.lengths_plot: plots.token_length_figure(report.token_lengths, report.max_length),
                self.dropped: dropped, self.conflicts: conflicts, self.page.data_state: loaded,
                self.label_view: LabelView(columns=tuple(map(str, columns)), cols=choice.cols, report=report,
                                           labels=data.labels),
                self.status: f"Data ready: **{esc(report.source)}**, {report.rows_kept} rows, {kind}."}

    def on_label_view(self, view: LabelView | None) -> dict:
        """The 0/1 label column list (the table's columns, those in use ticked) and the multi-label charts."""
        report = view.report if view else None
        multi = bool(report and report.multi_label)
        return {self.label_cols: gr.Dropdown(choices=list(view.columns) if view else [],
                                             value=list(view.cols) if view else [], multiselect=True),
                self.multilabel_row: gr.Row(visible=multi),
                self.cooccurrence_plot: plots.cooccurrence_figure(report.cooccurrence, view.labels) if multi else None,
                self.per_text_plot: plots.labels_per_text_figure(report.labels_per_text) if multi else None}

    def _cleared(self, fresh: bool, status: str) -> dict:
        cleared = {self.preview: pd.DataFrame(), self.report: "", self.counts_plot: None, self.lengths_plot: None,
                   self.dropped: pd.DataFrame(), self.conflicts: pd.DataFrame(), self.page.data_state: None,
                   self.status: status, self.label_view: None}
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
