"""The Label tab: a project's items one at a time, keyboard first, with the model's probabilities and word
highlights beside each; queues to work from; bulk accept; and Retrain, which trains on the project's labels in
the Train tab's live view.

Each answer is one store write and a lookup: the next items are served from a queue ranked when labeling
started, claimed for this session (others do not get them for a few minutes), and their highlights are computed
in the background while the current one is answered. Every answer names the item it answers (the one on the
page's screen at the key press, ``label_view.Shown``) and is saved only if that is the item this session has
current: the page may run ahead of the server by a few presses, never label another item than the one it showed.

The model that suggests is the project's own latest run (``labeling.ranking.project_model``) or one picked for it
in "Suggestions from"; when a retrain of the project ends, its run takes over by itself (``draw_compare``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import gradio as gr
import pandas as pd

import bertdemo.ui.teaching as teaching
from bertdemo.data import read_table
from bertdemo.data.label_choice import label_cols_of
from bertdemo.data.multilabel import DEFAULT_SEP
from bertdemo.inference.predict import get_predictor
from bertdemo.labeling import queues
from bertdemo.labeling.labelsets import decode_set, shown_set
from bertdemo.labeling.toggling import highlight_target, label_scores, thresholds_of
from bertdemo.labeling.history import (IMPORTER, LabelChanged, annotator_name, changes_since, last_change,
                                       set_label, set_label_set, set_labels, undo)
from bertdemo.labeling.retrain import compare, project_runs
from bertdemo.labeling.store import LOCK_SECONDS, LabelStore, label_counts
from bertdemo.jobs.kinds import suspicious_work
from bertdemo.labeling.ranking import (NO_MODEL_NOTE, default_strategy, project_model, rank_queue, rerank,
                                       suggesting_runs)
from bertdemo.labeling.suspicious import FoldProgress
from bertdemo.labeling.transfer import export_csv, import_file
from bertdemo.runs import load_run_info, run_in
from bertdemo.ui.edge import at_edge, refusing, user_error
from bertdemo.ui.label_view import (HIGHLIGHTS_NOTE, KEYS_HELP, PRESSES_JS, SCREEN_HTML, SHOWN_JS, Prefetcher, Press,
                                    SetChoice, card_html, item_html, parse_presses, parse_shown, served_html)
from bertdemo.ui.jobs import JobView, state_line
from bertdemo.ui.page import INSTANT, LABEL_QUEUE, PREDICT_QUEUE, Page, esc
from bertdemo.ui.tabs.curve import CurvePanel
from bertdemo.ui.tabs.data import PER_TEXT  # the Data tab's "labels per text" words
from bertdemo.ui.upload import upload_file

KEYS = 9  # labels with a number key; more are set from the dropdown
PREFETCH = 3  # items explained ahead of the one on screen
# Items claimed after the current one and handed to the page, which may show them before the server's reply
# comes: a labeler pressing faster than the replies come runs this far ahead before the page makes them wait.
LOOKAHEAD = 5
QUEUES = {"uncertain (margin)": "margin", "uncertain (entropy)": "entropy",
          "uncertain (least confidence)": "least_confidence",
          "uncertain (label nearest its threshold)": queues.LABEL_UNCERTAINTY, "suspicious labels": "suspicious",
          "misclassified (last run)": "misclassified", "random": "random", "in order": "in_order"}
QUEUE_NAMES = {kind: name for name, kind in QUEUES.items()}
NO_SUGGESTIONS = "none"  # "Suggestions from": no model (the plain orders without suggestions)
MODEL_NOTE = "Uncertainty queues rank this project's unlabeled items with the model chosen under Suggestions from."
# An answer is a store write and a lookup (tens of ms); the page shows the next item before the reply comes
# (KEYBOARD_JS), and the reply goes through the queue without a limit so that a refusal is shown (page.INSTANT).
# The page sends one answer at a time, so gradio's own "once" guard (a click while the last one is pending is
# dropped without a word) has nothing to protect: "multiple" lets the page's queue be the only gate.
ANSWER = dict(show_progress="hidden", trigger_mode="multiple", **INSTANT)
EMPTY = "Choose a project and a queue, then Start labeling."
DONE = "This queue is done: nothing left to label in it."
HELD = ("The {n} item{s} left in this queue {are} on screen in other sessions right now. An item comes back when "
        "its tab closes, or {minutes} minutes after that tab last showed it: press Start again then.")


@dataclass(frozen=True)
class Labeling:
    """This session's place in a project, as ``gr.State`` keeps it."""
    project: str
    holder: str  # the session that claims items
    strategy: str
    run: str | None  # the model suggesting labels (None: no suggestions)
    queue: tuple = ()  # QueueEntry, ranked when labeling started
    position: int = 0  # the queue position of the item on screen
    current: object = None  # the QueueEntry on screen (None: the queue is done)
    upcoming: tuple = ()  # the entries claimed after it, in the order they will come
    skipped: frozenset = field(default_factory=frozenset)
    diversity: int = 0  # the first picks spread over this many clusters (uncertainty queues), when ranked again
    multi_label: bool = False  # the project's items take label sets: keys toggle on the page, Enter saves the set


class LabelTab:
    def __init__(self, page: Page):
        self.page = page
        self.store = LabelStore.for_workspace(page.workspace)
        self.prefetch = Prefetcher()
        self.state = gr.State(None)
        self._views = itertools.count(1)  # a stamp per render of the item: the page tells a new view from an old one
        self.name_memory = gr.BrowserState("", storage_key="bertdemo-annotator")  # the name, asked once per browser
        self.help_shown = gr.State(False)
        with gr.Column(elem_id="label-panel"):
            self._project_layout()
            with gr.Row():
                with gr.Column(scale=3):
                    self._item_layout()
                with gr.Column(scale=2):
                    self.probs = gr.Label(label="Model: class probabilities", num_top_classes=6, elem_id="label-probs")
                    self.highlights = gr.Checkbox(value=True, label="Show word highlights (red: towards the "
                                                                     "suggestion; blue: away)",
                                                  elem_id="label-highlights")
                    self.progress = gr.Markdown(elem_id="label-progress")
                    self.help = gr.Markdown(KEYS_HELP, visible=False, elem_id="label-help")
            self._tools_layout()
        page.page_loads.append(([self.project], lambda: {self.project: gr.Dropdown(choices=self.project_choices())}))
        page.watch.add(JobView("suspicious", ("suspicious",), outputs=[*self.view_outputs, self.status],
                               draw=self.draw_suspicious))
        page.watch.add(JobView("retrain", ("retrain",), draw=self.draw_compare,
                               outputs=[self.compare, self.model, self.strategy, *self.view_outputs, self.status],
                               inputs=(self.state, self.project, self.highlights)))

    def _project_layout(self) -> None:
        with gr.Row():
            self.project = gr.Dropdown(label="Project", choices=self.project_choices(), allow_custom_value=True,
                                       elem_id="label-project", scale=2)
            self.annotator = gr.Textbox(label="Your name (for the history)", value="", scale=1,
                                        placeholder="type it once: your labels are credited to it",
                                        elem_id="label-annotator")
            self.strategy = gr.Dropdown(label="Queue", choices=list(QUEUES), value=QUEUE_NAMES["in_order"], scale=2,
                                        info=NO_MODEL_NOTE, elem_id="label-strategy")
            self.model = gr.Dropdown(label="Suggestions from", choices=[], value=None, scale=2,
                                     info="this project's latest run, unless you pick another",
                                     allow_custom_value=True,  # any run by name (API scripts); _usable checks it
                                     elem_id="label-model")
            self.diversity = gr.Checkbox(label="Spread picks over clusters", value=False, scale=1)
            self.start_btn = gr.Button("Start labeling", variant="primary", scale=1, elem_id="label-start")
        with gr.Accordion("New project, or import more texts (CSV/TSV; empty label cells are unlabeled; cells like "
                          "'billing|bug', one 0/1 column per label, or 'several labels' below make a multi-label "
                          "project, where 'none' means no label applies)",
                          open=not self.project_choices()):
            with gr.Row():
                self.import_file = upload_file(label="CSV/TSV", file_types=[".csv", ".tsv", ".txt"], type="filepath",
                                           elem_id="label-import-file")
                with gr.Column():
                    self.new_name = gr.Textbox(label="Project name (new, or the one to import into)",
                                               elem_id="label-new-name")
                    self.import_btn = gr.Button("Import", elem_id="label-import")
            with gr.Row():  # how the file writes its labels: the Data tab's choice, with the same words
                self.import_per_text = gr.Radio(list(PER_TEXT), value="auto-detect", label="Labels per text",
                                                elem_id="label-import-per-text",
                                                info="several labels: a multi-label project even from unlabeled "
                                                     "texts, or cells of one label each. A multi-label project "
                                                     "reads a file with its own separator or columns.")
                self.import_sep = gr.Textbox(value=DEFAULT_SEP, label="Separator", max_lines=1, scale=0,
                                             min_width=110, elem_id="label-import-sep", info="between labels")
                self.import_cols = gr.Dropdown(label="0/1 label columns", choices=[], value=[], multiselect=True,
                                               allow_custom_value=True,  # API clients name them without an upload
                                               elem_id="label-import-cols", info="one column per label (1 = applies)")
                self.import_labels = gr.Textbox(label="Labels to start with (optional)", value="",
                                                placeholder="billing, bug, feature", elem_id="label-import-labels")
            self.import_report = gr.Markdown(elem_id="label-import-report")
        self.status = gr.Markdown(elem_id="label-status")

    def _item_layout(self) -> None:
        # The item box belongs to the page's keyboard loop (KEYBOARD_JS): it shows the server's current item, or the
        # one the server listed after it while answers are on their way. The server's view (the current item, the
        # items claimed after it) is rendered, hidden, into ``item``, which the loop reads.
        self.screen = gr.HTML(SCREEN_HTML.format(EMPTY), elem_id="label-item")
        self.item = gr.HTML(served_html(0, None, empty=EMPTY), elem_id="label-served", elem_classes="bd-hidden")
        self.shown = gr.Textbox(visible=False, label="Item shown (id@ticket)")  # filled by SHOWN_JS at each answer
        self.presses = gr.Textbox(visible=False, label="Presses (id:action,…)")  # filled by PRESSES_JS
        self.info = gr.Markdown(elem_id="label-info")
        with gr.Row():
            self.keys = [gr.Button(f"{k}", visible=False, elem_id=f"label-key-{k}", min_width=80)
                         for k in range(1, KEYS + 1)]
        with gr.Row():
            self.accept_btn = gr.Button("⏎ Accept the suggestion", variant="primary", elem_id="label-accept")
            self.skip_btn = gr.Button("S · Skip", elem_id="label-skip")
            self.undo_btn = gr.Button("U · Undo", elem_id="label-undo")
            self.help_btn = gr.Button("? · Keys", elem_id="label-help-toggle")
        with gr.Row():
            self.other_label = gr.Dropdown(label="Any label", choices=[], scale=2)
            self.other_btn = gr.Button("Set this label", scale=1, elem_id="label-set")
            self.new_label = gr.Textbox(label="Add a label to the set", scale=2)
            self.add_label_btn = gr.Button("Add", scale=1, elem_id="label-add")
        self.refresh_btn = gr.Button("Redraw", elem_id="label-refresh", elem_classes="bd-hidden")  # the loop's poll
        self.answers_btn = gr.Button("Answers", elem_id="label-answers", elem_classes="bd-hidden")  # the loop's sends

    def _tools_layout(self) -> None:
        with gr.Accordion("Bulk: accept every suggestion the model is sure of", open=False):
            with gr.Row():
                self.threshold = gr.Slider(0.5, 1.0, value=0.95, step=0.01, label="At least this probability")
                self.bulk_preview_btn = gr.Button("Show how many")
                self.bulk_apply_btn = gr.Button("Accept them (one undoable step)", variant="stop")
            self.bulk_summary = gr.Markdown()
            self.bulk_sample = gr.Dataframe(label="A sample of them", interactive=False, wrap=True)
        with gr.Accordion("Retrain on this project's labels", open=True):
            with gr.Row():
                self.retrain_from = gr.Radio(["the last run's weights", "the base model"],
                                             value="the last run's weights", label="Start from",
                                             info="The last run's weights: a round in seconds, not minutes (its "
                                                  "first run, or one after the classes changed, starts from the "
                                                  "base model anyway).")
                self.retrain_btn = gr.Button("Retrain (opens the Train tab)", variant="primary",
                                             elem_id="label-retrain")
            self.compare = gr.Markdown(elem_id="label-compare")
        with gr.Row():
            self.provenance = gr.Checkbox(label="Export with provenance (how, who, when, split)", value=False)
            self.export_btn = gr.Button("Export labels as CSV", elem_id="label-export")
            self.export_file = gr.File(label="Labels CSV", height=90, elem_id="label-export-file")
        with gr.Accordion("Delete the project", open=False):
            with gr.Row():
                self.confirm_name = gr.Textbox(label="Type the project's name to delete it with all its labels",
                                               scale=3, elem_id="label-delete-confirm")
                self.delete_btn = gr.Button("Delete for good", variant="stop", scale=1, elem_id="label-delete")
        self.curve = CurvePanel(self.page)
        with gr.Accordion("How it works", open=False):
            gr.Markdown(teaching.LABEL)

    # wiring

    @property
    def view_outputs(self) -> list:
        return [self.state, self.item, self.info, self.probs, self.progress, self.other_label, self.accept_btn,
                *self.keys, self.other_btn]

    def wire(self) -> None:
        page = self.page
        view = self.view_outputs
        self.start_btn.click(self.on_start, [self.project, self.annotator, self.strategy, self.diversity,
                                             self.highlights, self.model],
                             [*view, self.status], api_name="label_start", **LABEL_QUEUE).success(
            **page.watch.follow())
        self.project.change(self.on_project, [self.project], [self.strategy, self.model], api_name="label_project")
        self.model.input(self.on_model, [self.state, self.project, self.model, self.highlights], [*view, self.status],
                         api_name="label_model", **LABEL_QUEUE)
        page.parts_tab("label").select(**page.watch.follow())
        page.parts_tab("label").select(lambda remembered, typed: typed or remembered or "",
                                       [self.name_memory, self.annotator], [self.annotator],
                                       api_visibility="private", queue=False)
        # .change, not .input: from .input the value never reached localStorage (seen in Chromium, gradio 6)
        self.annotator.change(lambda typed: (typed or "").strip(), [self.annotator], [self.name_memory],
                              api_visibility="private", queue=False)
        # The answer path: each event's first input after the state is the item on screen at the press (``shown``),
        # which SHOWN_JS fills in from the page's loop; a refusal comes back as the view and one message.
        answer = dict(outputs=[*view, self.status], js=SHOWN_JS, **ANSWER)
        first = [self.state, self.shown]
        for k, button in enumerate(self.keys, start=1):
            button.click(self._answering(self._key_handler(k)), [*first, self.annotator, self.highlights],
                         api_name=f"label_key_{k}", **answer)
        self.accept_btn.click(self._answering(self.on_accept), [*first, self.annotator, self.highlights],
                              api_name="label_accept", **answer)
        self.other_btn.click(self._answering(self.on_set), [*first, self.other_label, self.annotator, self.highlights],
                             api_name="label_set", **answer)
        self.skip_btn.click(self._answering(self.on_skip), [*first, self.highlights], api_name="label_skip", **answer)
        self.answers_btn.click(self._answering(self.on_answers), [*first, self.presses, self.annotator,
                                                                  self.highlights],
                               api_name="label_answers", **{**answer, "js": PRESSES_JS})
        self.undo_btn.click(self._answering(self.on_undo), [*first, self.highlights], api_name="label_undo", **answer)
        self.refresh_btn.click(self._answering(self.on_redraw), [*first, self.highlights], api_name="label_redraw",
                               **answer)
        self.help_btn.click(lambda shown: (not shown, gr.Markdown(visible=not shown)), [self.help_shown],
                            [self.help_shown, self.help], api_visibility="private", queue=False)
        self.add_label_btn.click(self._answering(self.on_add_label), [*first, self.new_label, self.highlights],
                                 answer["outputs"] + [self.new_label], api_name="label_add",
                                 **{k: v for k, v in answer.items() if k != "outputs"})
        self._wire_project_files()
        self.bulk_preview_btn.click(self.on_bulk_preview, [self.state, self.threshold],
                                    [self.bulk_summary, self.bulk_sample], api_name="label_bulk_preview",
                                    **PREDICT_QUEUE)
        self.bulk_apply_btn.click(self.on_bulk_apply, [self.state, self.threshold, self.annotator, self.highlights],
                                  [*view, self.status, self.bulk_summary], api_name="label_bulk_apply",
                                  **PREDICT_QUEUE)
        page.unloads.append(self.on_unload)
        train = page.parts["train"]
        self.curve.wire(train.model)
        self.retrain_btn.click(self.on_retrain, [self.project, self.retrain_from, page.run_state],
                               [page.data_state, page.tabs, self.compare], api_name="label_retrain").success(
            **train.start_event()).success(**page.watch.follow())

    def _wire_project_files(self) -> None:
        """Import, export and delete."""
        # the choices after the old two inputs, each with a value: an API client sending (file, name) still works
        self.import_btn.click(self.on_import, [self.import_file, self.new_name, self.import_per_text, self.import_sep,
                                               self.import_cols, self.import_labels],
                              [self.import_report, self.project, self.status], api_name="label_import")
        self.import_file.upload(self.on_import_columns, [self.import_file], [self.import_cols],
                                api_visibility="private")
        self.export_btn.click(self.on_export, [self.project, self.provenance], [self.export_file],
                              api_name="label_export")
        self.delete_btn.click(self.on_delete, [self.project, self.confirm_name],
                              [self.project, self.confirm_name, self.status], api_name="label_delete")

    # starting and answering

    def on_unload(self, request: gr.Request) -> None:
        """The tab closed or reloaded: its claimed items go back to everyone at once, not after the lock expires."""
        if request is not None and request.session_hash:
            self.store.release(request.session_hash)

    def project_choices(self) -> list[str]:
        return [p.name for p in self.store.projects()]

    @at_edge
    def on_start(self, project: str | None, annotator: str, strategy: str, diversity: bool, highlights: bool,
                 model: str | None = None, request: gr.Request = None) -> dict:
        """Rank the queue and show the first item; suspicious labels (k-fold training, minutes) become a job whose
        ranking the page picks up when it is done (``draw_suspicious``). ``model``: a run name, ``NO_SUGGESTIONS``,
        or empty for the project's latest run. What cannot start yet (no name, no model for an uncertainty queue)
        is said in the status line, once, instead of painting every output as an error."""
        if not project:
            return self._start_refusal("Choose a project first, or import a file to start one.")
        try:
            annotator_name(annotator)  # a bad name is refused before minutes of ranking
        except ValueError as err:
            return self._start_refusal(str(err))
        kind = QUEUES.get(strategy, strategy)
        run, note = self._usable(project, self._suggesting_run(project, model), kind)
        if run is None and (kind in queues.NEEDS_MODEL or kind == "misclassified"):
            picked = " picked" if model == NO_SUGGESTIONS else ""
            return self._start_refusal(f"The {strategy} queue needs a model, and project {project} has none yet"
                                       f"{picked}: its uncertainty queues come once it has a run (Retrain below, "
                                       "or pick a compatible run under Suggestions from). Label in order or at "
                                       "random meanwhile.")
        holder = request.session_hash if request is not None else "api"
        self.store.release(holder)
        if kind == "suspicious":
            return self._start_suspicious(project, run, request)
        entries = next(rank_queue(self.store, project, kind, run=run, diversity=10 if diversity else 0))
        session = Labeling(project=project, holder=holder, strategy=kind, run=run, queue=tuple(entries),
                           diversity=10 if diversity else 0, multi_label=self.store.project(project).multi_label)
        return self._move(session, 0, highlights, keys=True, status=f"Queue **{esc(strategy)}**: {len(entries)} items"
                          + (f", suggestions from `{esc(run.rsplit('/', 1)[-1])}`." if run else ", no suggestions.")
                          + note)

    def _start_refusal(self, message: str) -> dict:
        """Something the user can fix before labeling starts: one warning and the status line, the rest of the tab
        as it was."""
        gr.Warning(esc(message))
        return {self.status: f"**{esc(message)}**"}

    def _suggesting_run(self, project: str, model: str | None) -> str | None:
        """The run folder that suggests labels: the one picked, none, or (empty) the project's latest run."""
        if model == NO_SUGGESTIONS:
            return None
        if model:
            return str(run_in(self.page.workspace, model))
        found = project_model(self.store, project, self.page.workspace)
        return str(found) if found else None

    def _usable(self, project: str, run: str | None, kind: str) -> tuple[str | None, str]:
        """``run`` unless it was trained on labels this project lacks: then a model queue is refused, and the
        plain orders go on without suggestions (and a note saying so)."""
        if not run:
            return None, ""
        info, project_info = load_run_info(run), self.store.project(project)
        theirs, ours = info.labels, project_info.labels
        if info.multi_label != project_info.multi_label:  # one label per text against label sets: no suggestion fits
            gives = "label sets" if info.multi_label else "one label per text"
            if kind not in queues.ORDERS:
                raise ValueError(f"The model in use gives {gives}, and project {project} does not. Retrain on this "
                                 "project (below) or pick one of its runs under Suggestions from; the random and "
                                 "in-order queues work without a model.")
            return None, f" The model in use gives {gives}, unlike this project, so it suggests nothing here."
        if not ours or set(theirs) <= set(ours):
            return run, ""
        if kind not in queues.ORDERS:
            raise ValueError(f"The model in use was trained on other labels ({', '.join(theirs)}) than project "
                             f"{project} has ({', '.join(ours)}). Retrain on this project (below) or pick one of its "
                             "runs under Suggestions from; the random and in-order queues work without a model.")
        return None, " The model in use was trained on other labels, so it suggests nothing here."

    def _start_suspicious(self, project: str, run: str | None, request) -> dict:
        info = self.store.project(project)
        job = self.page.runner.submit("suspicious", self.page.user(request),
                                      suspicious_work(self.store.path, info.name),
                                      title=f"suspicious labels in {info.name} ({info.labeled} labeled)",
                                      params={"project": info.name})
        return {self.status: fold_progress_html(None, note="suspicious labels: " + state_line(
            job, self.page.runner.ahead(job)) + " — the first item shows when the ranking is done; you may reload "
            "or close this page meanwhile.")}

    @at_edge
    def on_project(self, project: str | None) -> dict:
        """Another project chosen (or just imported): its models under Suggestions from, and the queue it starts
        with — the smallest margin once it has a model of its own, else import order."""
        known = project in self.project_choices()
        run = project_model(self.store, project, self.page.workspace) if known else None
        kinds = queues.strategies_for(known and self.store.project(project).multi_label)  # its kind's rankings
        return {self.strategy: gr.Dropdown(choices=[QUEUE_NAMES[k] for k in kinds if k in QUEUE_NAMES],
                                           value=QUEUE_NAMES[default_strategy(run)],
                                           info=MODEL_NOTE if run else NO_MODEL_NOTE),
                self.model: self._model_dropdown(project if known else None, run.name if run else None)}

    def _model_dropdown(self, project: str | None, value: str | None) -> gr.Dropdown:
        runs = suggesting_runs(self.store, project, self.page.workspace) if project else []
        choices = [(f"{r.name} · this project's run" if r.provenance.get("project") == project else
                    f"{r.name} · trained on {r.data_source}", r.name) for r in runs]
        return gr.Dropdown(choices=choices + [("no suggestions", NO_SUGGESTIONS)], value=value or NO_SUGGESTIONS)

    @at_edge
    def on_model(self, session: Labeling | None, project: str | None, model: str | None, highlights: bool) -> dict:
        """Another model picked under Suggestions from: the session goes on with its suggestions and ranking."""
        if session is None or session.project != project:
            return {}  # not labeling this project yet: Start uses the model picked
        run, note = self._usable(project, self._suggesting_run(project, model), session.strategy)
        if run == session.run:
            return {}
        name = f"`{esc(run.rsplit('/', 1)[-1])}`" if run else "no model"
        return self._switch_model(session, run, highlights, status=f"Suggestions now come from {name}.{note}")

    def _switch_model(self, session: Labeling, run: str | None, highlights: bool, *, status: str) -> dict:
        """Go on labeling with ``run`` suggesting: the queue ranked again, the item on screen first (if it still
        waits for an answer), as the new model sees it."""
        entries = rerank(self.store, session.project, session.strategy, session.queue[session.position:], run=run,
                         keep=session.current, diversity=session.diversity)
        self.store.release(session.holder, [e.id for e in session.upcoming])
        moved = replace(session, run=run, queue=tuple(entries), position=0, current=None, upcoming=())
        return self._move(moved, 0, highlights, status=status)

    def draw_suspicious(self, job, events: list[dict], ahead: int, request, page_memo: dict) -> dict:
        """The suspicious-label job's progress; once done, its ranking becomes this page's queue."""
        project = job.params.get("project", "")
        if job.active:
            progress = next((e for e in reversed(events) if e["event"] == "FoldProgress"), None)
            waiting = job.state == "queued" or job.stop_requested or progress is None  # else the bar says it all
            return {self.status: fold_progress_html(progress, note=f"suspicious labels in {project}"
                                                    + (": " + state_line(job, ahead) if waiting else ""))}
        if job.state != "done":
            return {self.status: f"Suspicious-label scoring of **{esc(project)}** {esc(state_line(job, 0))}"}
        if page_memo.get("applied") == job.id:  # once per page: the annotator may have moved on since
            return {}
        page_memo["applied"] = job.id
        if last_change(self.store, project) != job.result.get("snapshot"):
            return {self.status: f"The suspicious-label ranking of **{esc(project)}** is out of date (labels changed "
                                 "since it was computed): Start labeling with that queue again for a fresh one."}
        ranked = next((e for e in reversed(events) if e["event"] == "Ranked"), {})
        entries = tuple(queues.QueueEntry(**e) for e in ranked.get("entries", ()))
        holder = request.session_hash if request is not None else "api"
        session = Labeling(project=project, holder=holder, strategy="suspicious", run=None, queue=entries,
                           multi_label=self.store.project(project).multi_label)
        return self._move(session, 0, True, keys=True, status=f"Queue **suspicious labels** of {esc(project)}: "
                          f"{len(entries)} labeled items, likeliest wrong first (job `{job.id}`).")

    def _key_handler(self, k: int):
        def on_key(session: Labeling | None, shown: str, annotator: str, highlights: bool,
                   request: gr.Request) -> dict:
            return self._answer(session, shown, Press(parse_shown(shown).item, "key", key=k), annotator=annotator,
                                highlights=highlights, request=request)
        on_key.__qualname__ = f"LabelTab.on_key_{k}"
        return on_key

    def on_accept(self, session: Labeling | None, shown: str, annotator: str, highlights: bool,
                  request: gr.Request) -> dict:
        return self._answer(session, shown, Press(parse_shown(shown).item, "accept"), annotator=annotator,
                            highlights=highlights, request=request)

    def on_set(self, session: Labeling | None, shown: str, label: str | None, annotator: str, highlights: bool,
               request: gr.Request) -> dict:
        if not label:
            raise ValueError("Choose a label in the list first.")
        return self._answer(session, shown, Press(parse_shown(shown).item, "set", label=label), annotator=annotator,
                            highlights=highlights, request=request)

    def on_skip(self, session: Labeling | None, shown: str, highlights: bool) -> dict:
        return self._answer(session, shown, Press(parse_shown(shown).item, "skip"), annotator="", highlights=highlights,
                            request=None)

    def on_answers(self, session: Labeling | None, shown: str, presses: str, annotator: str, highlights: bool,
                   request: gr.Request) -> dict:
        """Several presses in the order they were made, each on the item it was pressed on (``parse_presses``):
        how the page sends what it queued while the last reply was on its way. They are done one by one, as if sent
        one at a time, until one is refused; the view says how many were saved."""
        said = parse_presses(presses)
        if not said:
            raise ValueError("Not saved: no key presses came with this answer. Reload the page.")
        return self._answer(session, shown, *said, annotator=annotator, highlights=highlights, request=request)

    def _answer(self, session: Labeling | None, shown: str, *presses: Press, annotator: str, highlights: bool,
                request) -> dict:
        """Do ``presses`` in order (``_step``) and show where that leaves the session. A refused press stops there:
        what came before it stays done, and the view says what was refused and why."""
        session, ticket, done = self._session(session), parse_shown(shown).ticket, []
        for press in presses:
            try:
                session, status = self._step(session, press, annotator, request)
            except LabelChanged as refused:  # show it again, with its label now: the next answer replaces it knowingly
                session = replace(session, current=replace(session.current, label=refused.changed[0].now))
                self.store.renew(session.project, session.holder, [e.id for e in (session.current, *session.upcoming)])
                return self._refused_after(session, done, esc(refused), highlights, ticket)
            except ValueError as refused:
                return self._refused_after(session, done, user_error(refused, "LabelTab._step").message, highlights,
                                           ticket)
            done.append(status)
        status = done[-1] if len(done) == 1 else f"{len(done)} answers saved in order; the last: {done[-1]}"
        return self._view(session, highlights, status=status, ticket=ticket)

    def _refused_after(self, session: Labeling, done: list[str], message: str, highlights: bool, ticket: str) -> dict:
        if done:
            message = f"{len(done)} answer(s) saved (the last: {done[-1]}), then: {message}"
        gr.Warning(message)
        return self._view(session, highlights, status=message, ticket=ticket, refused=True)

    def _step(self, session: Labeling, press: Press, annotator: str, request) -> tuple[Labeling, str]:
        """One press on the item it was pressed on: the session after it and what it did. Raises ``ValueError``
        (``LabelChanged`` among them) and does nothing when the press is not for this session's current item, or
        the item's label changed since it was served (``current.label``: serving checks it)."""
        entry = self._shown_entry(session, press.item)
        if press.kind == "skip":
            self.store.release(session.holder, [entry.id])
            session = replace(session, skipped=session.skipped | {entry.id})
            return self._advance(session, session.position + 1), f"Skipped item {entry.id}."
        if session.multi_label:
            return self._step_set(session, entry, press, annotator, request)
        if press.kind == "save" or press.labels is not None:
            raise ValueError("Not saved: this project takes one label per text, not a set. Press its number key.")
        labels = self.store.project(session.project).labels
        how, label = "human", press.label
        if press.kind == "key":
            if press.key > len(labels):
                raise ValueError(f"There is no label number {press.key}: this project has {len(labels)}.")
            label = labels[press.key - 1]
        elif press.kind == "accept":
            if entry.suggested is None:
                raise ValueError("There is no suggestion to accept for this item: no model suggests labels in this "
                                 "queue. Press a number key, or S to skip.")
            if entry.suggested not in labels:
                raise ValueError(f"The model suggests {entry.suggested!r}, which is not in this project's label set. "
                                 "Add it first, or choose a label.")
            how, label = "suggestion", entry.suggested
        set_label(self.store, session.project, entry.id, label, annotator=annotator, session=session.holder,
                  owner=self.page.user(request), how=how, expected=entry.label)
        return self._advance(session, session.position + 1), f"Labeled item {entry.id} **{esc(label)}**."

    def _step_set(self, session: Labeling, entry, press: Press, annotator: str, request) -> tuple[Labeling, str]:
        """``_step`` in a multi-label project: the page sends the whole set it shows (toggles never leave it), saved
        as it is ("save") or as the model's suggestion ("accept", checked to be the set the server suggests)."""
        if press.kind not in ("save", "accept"):
            raise ValueError("Not saved: in a multi-label project the number keys switch labels on and off on the page, "
                             "and Enter saves the set shown. (API clients: send the set with label_answers as "
                             "ITEM:m=SET, SET a URL-encoded JSON list of labels.)")
        how, chosen = "human", press.labels
        if press.kind == "accept":
            suggested = self._suggested(session, entry)
            if suggested is None:
                raise ValueError("There is no suggestion to accept for this item: no model suggests labels in this "
                                 "queue. Switch labels on with their keys (0: no label applies), then Enter.")
            if press.labels is not None and tuple(press.labels) != suggested:
                raise ValueError(f"Not saved: the model now suggests {shown_set(suggested)} for item {entry.id}, not "
                                 f"the {shown_set(press.labels)} shown. Look at it again, then answer.")
            how, chosen = "suggestion", suggested
        set_label_set(self.store, session.project, entry.id, chosen, annotator=annotator, session=session.holder,
                      owner=self.page.user(request), how=how, expected=decode_set(entry.label))
        return self._advance(session, session.position + 1), f"Labeled item {entry.id} **{esc(shown_set(chosen))}**."

    def _suggested(self, session: Labeling, entry) -> tuple[str, ...] | None:
        """The set the model suggests for ``entry`` (the queue's, decided by the label thresholds): the one its card
        shows and Enter accepts."""
        return decode_set(entry.suggested)

    def _predictor(self, session: Labeling):
        return get_predictor(session.run) if session.run else None

    def _target(self, session: Labeling, entry) -> str | None:
        """The label the word highlights explain: the suggestion, or for a label set its likeliest label."""
        if not session.multi_label:
            return entry.suggested
        return entry.pair_label or highlight_target(entry.probabilities)  # a suspicious pair: the label in question

    def on_undo(self, session: Labeling | None, shown: str, highlights: bool, request: gr.Request) -> dict:
        """Take back this user's last step, whichever tab made it (a reload, a second tab)."""
        session = self._session(session)
        ticket = parse_shown(shown).ticket
        done = undo(self.store, session.project, owner=self.page.user(request), session=session.holder)
        if done.step is None:
            return self._view(session, highlights, status="Nothing of yours to undo.", ticket=ticket)
        kept = f" ({len(done.kept)} kept: someone changed them since)" if done.kept else ""
        back = [i for i, entry in enumerate(session.queue) if entry.id in done.restored]
        status = f"Undone: {len(done.restored)} item(s) back as they were{kept}."
        if back and session.current is not None and back[0] < session.position:
            return self._move(replace(session, skipped=session.skipped - set(done.restored)), back[0], highlights,
                              status=status, ticket=ticket)
        return self._view(session, highlights, status=status, ticket=ticket)

    def on_redraw(self, session: Labeling | None, shown: str, highlights: bool) -> dict:
        """The view again: the highlights box was ticked, or the page asks whether the highlights are ready."""
        return self._view(self._session(session), highlights, ticket=parse_shown(shown).ticket)

    def on_add_label(self, session: Labeling | None, shown: str, label: str, highlights: bool) -> dict:
        session = self._session(session)
        self.store.add_label(session.project, label)
        return {**self._view(session, highlights, status=f"Added the label **{esc(label.strip())}**.", keys=True,
                             ticket=parse_shown(shown).ticket), self.new_label: ""}

    def _session(self, session: Labeling | None) -> Labeling:
        if session is None:
            raise ValueError("Choose a project and a queue, then click Start labeling.")
        return session

    def _shown_entry(self, session: Labeling, item: int | None):
        """The entry an answer is for: the item this session has current, and the one the page says was on screen
        when the key was pressed (``item``). Anything else is refused: the page never labels an item it did not
        show."""
        if session.current is None:
            raise ValueError("This queue is done. Choose another queue, or Retrain.")
        if item is None:
            raise ValueError("Not saved: the answer did not say which item it is for. Reload the page (API clients: "
                             f"pass the id of the item shown, now item {session.current.id}).")
        if item != session.current.id:
            earlier = " (already answered or skipped here)" if any(e.id == item for e in session.queue[
                :session.position]) else ""
            raise ValueError(f"Not saved: the answer is for item {item}{earlier}, but this page is on item "
                             f"{session.current.id}, which is on screen now. Look at it and answer again.")
        return session.current

    def _answering(self, fn):
        """An answer-path handler at the edge: a refusal is the view as it stands, its message in the status line
        and one toast (``refusing``), with the press's ticket, so the page knows that press was answered."""
        return refusing(self._refusal)(fn)

    def _refusal(self, message: str, arguments: dict) -> dict:
        session, ticket = arguments.get("session"), parse_shown(arguments.get("shown")).ticket
        if session is None:
            return {self.item: served_html(next(self._views), None, empty=EMPTY, ticket=ticket, refused=True),
                    self.status: message}
        return self._view(session, arguments.get("highlights", True), status=message, ticket=ticket, refused=True)

    # the view

    def _move(self, session: Labeling, start: int, highlights: bool, *, status: str = "", keys: bool = False,
              ticket: str = "") -> dict:
        return self._view(self._advance(session, start), highlights, status=status, keys=keys, ticket=ticket)

    def _advance(self, session: Labeling, start: int) -> Labeling:
        """The session at the next items from queue position ``start`` on, claimed for it."""
        entries, position = queues.serve(self.store, session.project, session.queue, start, session.holder,
                                         skip=session.skipped, n=1 + LOOKAHEAD)
        if session.run:
            for entry in entries[:1 + PREFETCH]:  # the next ones are explained while this one is answered
                self.prefetch.ask(session.run, entry.id, entry.text, self._target(session, entry))
        return replace(session, current=entries[0] if entries else None, upcoming=tuple(entries[1:]),
                       position=position)

    def _view(self, session: Labeling, highlights: bool, *, status: str = "", keys: bool = False, ticket: str = "",
              refused: bool = False) -> dict:
        """Everything the tab shows of ``session``; ``keys`` also relabels the buttons (a new label set).
        ``ticket``: the page's press this view answers; ``refused``: that press was not done (``status`` says why)."""
        entry = session.current
        updates = {self.state: session, self.progress: self._progress(session.project)}
        if keys:  # a multi-label project's labels are toggles on its cards (label_view.toggles_html), not buttons
            labels, single = self.store.project(session.project).labels, not session.multi_label
            updates[self.other_label] = gr.Dropdown(choices=list(labels), value=None, visible=single)
            updates[self.other_btn] = gr.Button(visible=single)
            for k, button in enumerate(self.keys, start=1):
                updates[button] = gr.Button(f"{k} · {labels[k - 1]}" if k <= len(labels) else f"{k}",
                                            visible=single and k <= len(labels))
        if status:
            updates[self.status] = status
        stamp = next(self._views)
        if entry is None:
            updates.update({self.item: served_html(stamp, None, empty=self._empty_note(session), ticket=ticket,
                                                   refused=refused),
                            self.info: "", self.probs: None,
                            self.accept_btn: gr.Button("⏎ Accept the suggestion", interactive=False)})
            return updates
        current = self.store.item(session.project, entry.id)
        labels = self.store.project(session.project).labels if session.multi_label else ()
        updates.update({
            self.item: served_html(stamp, self._card(session, entry, highlights, labels),
                                   [self._card(session, e, highlights, labels) for e in session.upcoming],
                                   current_id=entry.id, ticket=ticket, refused=refused),
            self.probs: entry.probabilities or None})
        if session.multi_label:  # Enter saves what is switched on, or the suggestion: the page decides which
            updates[self.info] = _set_info(entry, current, session.strategy, self._suggested(session, entry))
            updates[self.accept_btn] = gr.Button("⏎ Save the labels switched on (before any: the suggestion)",
                                                 interactive=True)
        else:
            updates[self.info] = _entry_info(entry, current, session.strategy)
            updates[self.accept_btn] = gr.Button(f"⏎ Accept: {entry.suggested}" if entry.suggested else
                                                 "⏎ Accept the suggestion", interactive=entry.suggested is not None)
        return updates

    def _empty_note(self, session: Labeling) -> str:
        """Nothing to serve: done, or the rest is claimed by other sessions (which a newcomer would take for done)."""
        n = queues.held_elsewhere(self.store, session.project, session.queue, session.holder, skip=session.skipped)
        if not n:
            return DONE
        return HELD.format(n=n, s="" if n == 1 else "s", are="is" if n == 1 else "are",
                           minutes=round(LOCK_SECONDS / 60))

    def _card(self, session: Labeling, entry, highlights: bool, labels: tuple = ()) -> str:
        """One item as the page holds it; while its highlights are being computed it says so, and the page asks
        again (``on_redraw``) until they are there. In a multi-label project (``labels``: the project's) it also
        carries a toggle per label, with the model's probability against the label's threshold."""
        words = self.prefetch.ready(session.run, entry.id, entry.text, self._target(session, entry)) \
            if session.run and highlights else None
        pending = bool(session.run and highlights and not words)
        choice = None
        if session.multi_label:
            scores = label_scores(entry.probabilities, thresholds_of(self._predictor(session)), labels)
            choice = SetChoice(labels=tuple(labels), scores={s.label: (s.probability, s.threshold) for s in scores},
                               current=decode_set(entry.label), suggested=self._suggested(session, entry))
        return card_html(entry.id, item_html(entry.text, words, note=HIGHLIGHTS_NOTE if pending else ""),
                         suggested=entry.suggested, highlights_pending=pending, choice=choice)

    def _progress(self, project: str) -> str:
        status = label_counts(self.store, project)
        per_label = " · ".join(f"{esc(k)} {v}" for k, v in status["per_label"].items())
        who = " · ".join(f"{esc(k)} {v}" for k, v in sorted(status["per_annotator"].items(), key=lambda kv: -kv[1]))
        share = status["labeled"] / status["items"] if status["items"] else 0.0
        return (f"**{status['labeled']} / {status['items']} labeled** ({share:.0%})\n\nper label: {per_label or '—'}"
                f"\n\nper annotator: {who or '—'}")

    # project files, bulk, retrain

    @at_edge
    def on_import(self, path: str | None, name: str | None, per_text: str = "auto-detect", label_sep: str = DEFAULT_SEP,
                  label_cols: list[str] | None = None, labels: str = "", request: gr.Request = None) -> dict:
        """A file's labels are credited to "import" in the history, never to the name in the box (a person's).
        ``per_text``, ``label_sep`` and ``label_cols`` say how the file writes its labels, as in the Data tab;
        ``labels`` ("billing, bug, feature") are the project's labels to start with."""
        if not path:
            raise ValueError("Choose a CSV/TSV file to import first.")
        if per_text not in PER_TEXT:
            raise ValueError(f"Labels per text must be one of {', '.join(PER_TEXT)} (got {str(per_text)[:40]!r}).")
        from pathlib import Path

        name = (name or "").strip() or Path(path).stem
        sep = label_sep.strip() if isinstance(label_sep, str) and label_sep.strip() else DEFAULT_SEP  # emptied box
        report = import_file(self.store, name, path, annotator=IMPORTER, owner=self.page.user(request),
                             per_text=PER_TEXT[per_text], label_sep=sep, label_cols=label_cols_of(label_cols) or None,
                             label_names=label_cols_of(labels))
        conflicts = "".join(f"\n- item {c['item']}: kept **{esc(c['stored'])}**, the file says **{esc(c['file'])}** — "
                            f"{esc(c['text'][:80])}" for c in report.conflicts[:10])
        info = self.store.project(report.project)
        labels = esc(", ".join(info.labels[:20]) + (", …" if len(info.labels) > 20 else "")) if info.labels else \
            "none yet (Start, then 'Add a label to the set')"
        return {self.import_report: esc(report.summary()) + conflicts,
                self.project: gr.Dropdown(choices=self.project_choices(), value=report.project),
                self.status: f"Project **{esc(report.project)}** ({'multi' if info.multi_label else 'single'}-label; "
                             f"labels: {labels}) is ready: choose a queue and Start labeling."}

    def on_import_columns(self, path: str | None) -> gr.Dropdown:
        """The uploaded file's columns, to pick 0/1 label columns from."""
        try:
            columns = [str(c) for c in read_table(path).columns] if path else []
        except ValueError:  # a file the intake cannot read: Import says why, with the same message
            columns = []
        return gr.Dropdown(choices=columns, value=[])

    @at_edge
    def on_export(self, project: str | None, provenance: bool) -> str:
        if not project:
            raise ValueError("Choose a project first.")
        dest = self.page.workspace.download_dir() / f"{project.replace(' ', '_')}_labels.csv"
        return str(export_csv(self.store, project, dest, provenance=provenance))

    @at_edge
    def on_delete(self, project: str | None, confirm: str, request: gr.Request) -> dict:
        """Delete a project, its items and their history: only its owner (or an admin) may, and only after
        typing its name, because nothing brings the labels back."""
        if not project:
            raise ValueError("Choose the project to delete first.")
        info = self.store.project(project)
        if not self.page.may_change(info.owner, request):
            raise ValueError(f"Project {project} was made by someone else: only they (or an admin) can delete it. "
                             "You can label it and export its labels.")
        if (confirm or "").strip() != info.name:
            raise ValueError(f"Type the project's name, {info.name}, in the box to confirm; its labels cannot be "
                             "brought back. Export them first if you may want them.")
        self.store.delete_project(info.name)
        return {self.project: gr.Dropdown(choices=self.project_choices(), value=None),
                self.confirm_name: "", self.status: f"Deleted project **{esc(info.name)}** and its labels."}

    @at_edge
    def on_bulk_preview(self, session: Labeling | None, threshold: float) -> dict:
        sure = self._confident(session, threshold)
        shown = sure[:: max(1, len(sure) // 20)][:20]
        if session.multi_label:  # every label is far from its threshold: each one's probability says how far
            sample = pd.DataFrame([{"text": e.text, "suggested": shown_set(decode_set(e.suggested)),
                                    "probabilities": ", ".join(f"{k} {p:.2f}" for k, p in e.probabilities.items())}
                                   for e in shown], columns=["text", "suggested", "probabilities"])
        else:
            sample = pd.DataFrame([{"text": e.text, "suggested": e.suggested,
                                    "probability": round(e.probabilities[e.suggested], 3)} for e in shown],
                                  columns=["text", "suggested", "probability"])
        return {self.bulk_summary: f"**{len(sure)} unlabeled items** have a suggestion at probability ≥ "
                                   f"{threshold:.2f}. A sample is below; Accept labels all of them as one step (U "
                                   "undoes it).", self.bulk_sample: sample}

    @at_edge
    def on_bulk_apply(self, session: Labeling | None, threshold: float, annotator: str, highlights: bool,
                      request: gr.Request) -> dict:
        sure = self._confident(session, threshold)
        if not sure:
            raise ValueError(f"No unlabeled item has a suggestion at probability ≥ {threshold:.2f}.")
        try:  # the suggestions are for items unlabeled when they were scored: any labeled since stops the step
            set_labels(self.store, session.project, [(e.id, e.suggested) for e in sure], annotator=annotator,
                       session=session.holder, owner=self.page.user(request), how="bulk",
                       expected={e.id: e.label for e in sure})
        except LabelChanged as refused:
            first = refused.changed[0]
            raise ValueError(f"Nothing accepted: {len(refused.changed)} of the {len(sure)} items were labeled after "
                             f"their suggestions were made (item {first.item}: {first.now!r}, by {first.annotator}). "
                             "Accept again: the suggestions are then made for the items still unlabeled.") from refused
        return {**self._move(session, session.position, highlights, status=f"Accepted {len(sure)} suggestions."),
                self.bulk_summary: f"Accepted **{len(sure)}** suggestions as one step: **U** undoes it."}

    def _confident(self, session: Labeling | None, threshold: float) -> list:
        session = self._session(session)
        if not session.run:
            raise ValueError("Bulk accept needs a model's suggestions: load a run, then Start labeling again.")
        return queues.confident_suggestions(self.store, session.project, get_predictor(session.run), float(threshold))

    @at_edge
    def on_retrain(self, project: str | None, start_from: str, run_dir: str | None) -> dict:
        from bertdemo.ui.tabs.data import ProjectSource

        if not project:
            raise ValueError("Choose a project to retrain on.")
        info = self.store.project(project)
        if info.labeled < 4:
            raise ValueError(f"Project {project!r} has {info.labeled} labels: label a few per class first.")
        from_run = None
        if start_from != "the base model":  # the round continues it where it can (labeling.rounds), else says why not
            last = project_model(self.store, project, self.page.workspace)
            from_run = str(last) if last else None
        source = ProjectSource(store_path=str(self.store.path), project=project, from_run=from_run,
                               source=project, labels=info.labels, rows=info.labeled)
        return {self.page.data_state: source, self.page.tabs: gr.Tabs(selected="train"),
                self.compare: f"Retraining on **{esc(project)}** ({info.labeled} labels): watch it on the Train tab."}

    def draw_compare(self, job, events: list[dict], ahead: int, request, page_memo: dict, session=None,
                     project=None, highlights=True) -> dict:
        """While a retrain job runs, where to watch it; once it has a run, before/after on the project's frozen
        validation set and the label changes in between — and, on a page labeling that project, the new run
        takes over the suggestions and the ranking by itself (once per page and job)."""
        trained = job.params.get("project") or ""
        if job.active:
            return {self.compare: f"Retraining on **{esc(trained)}** (job `{job.id}`): {esc(state_line(job, ahead))} "
                                  "— watch it on the Train tab."}
        run = job.result.get("run")
        if not run or not (self.page.workspace.root / run).exists():
            return {self.compare: f"Retraining on **{esc(trained)}** {esc(state_line(job, 0))}"}
        updates = {self.compare: self.compare_text(trained, run)}
        if project != trained or page_memo.get("applied") == job.id:
            return updates
        page_memo["applied"] = job.id
        updates[self.model] = self._model_dropdown(trained, run)
        updates[self.strategy] = gr.Dropdown(info=MODEL_NOTE)
        run_dir = str(run_in(self.page.workspace, run))
        if session is not None and session.project == trained and session.run != run_dir \
                and session.strategy != "suspicious":
            updates.update(self._switch_model(session, run_dir, bool(highlights),
                                              status=f"Retrained: suggestions and scores now come from `{esc(run)}`, "
                                                     "this project's new run."))
        return updates

    def compare_text(self, project: str, run_name: str) -> str:
        runs = project_runs(self.store, project)
        index = next((i for i, r in enumerate(runs) if r["run"] == run_name), None)
        if index is None:
            return f"`{esc(run_name)}` was not trained on {esc(project)}'s labels."
        before = runs[index - 1] if index else None
        before_dir = self.page.workspace.root / before["run"] if before else None
        result = compare(self.store, project, before_dir if before_dir and before_dir.exists() else None,
                         self.page.workspace.root / run_name)
        moved = changes_since(self.store, project, before["snapshot"]) if before else None
        return compare_markdown(result, moved)


def compare_markdown(result: dict, moved: dict | None) -> str:
    """The before/after table on the frozen validation set and what moved in the labels."""
    before, after = result["before"], result["after"]
    head = f"**Frozen validation set: {result['rows']} items** (the same rows for every run of this project)\n\n"
    if before is None:
        rows = [f"| accuracy | {after['accuracy']:.3f} |", f"| macro-F1 | {after['macro_f1']:.3f} |"]
        rows += [f"| F1 {esc(c)} | {f:.3f} |" for c, f in after["per_class_f1"].items()]
        return head + "| | this run |\n|---|---|\n" + "\n".join(rows) + "\n\nThe first run of this project."
    rows = [f"| accuracy | {before['accuracy']:.3f} | {after['accuracy']:.3f} |",
            f"| macro-F1 | {before['macro_f1']:.3f} | {after['macro_f1']:.3f} |"]
    rows += [f"| F1 {esc(c)} | {before['per_class_f1'].get(c, 0.0):.3f} | {f:.3f} |"
             for c, f in after["per_class_f1"].items()]
    table = head + f"| | before (`{esc(before['run'])}`) | after |\n|---|---|---|\n" + "\n".join(rows)
    classes = ", ".join(f"{esc(c)} {m['net']:+d}" for c, m in moved["per_class"].items() if m["net"])
    return table + (f"\n\n**{moved['changes']} label changes** since the last run, on {moved['items_changed']} "
                    f"items{': ' + classes if classes else ''}.")


def fold_progress_html(progress: dict | None, *, note: str = "") -> str:
    """The suspicious-label job's bar from its latest ``FoldProgress`` record (None before the first): fold k of
    K, the step in that fold, the rows scored so far and the time left (``note`` is escaped)."""
    fields = {f: progress[f] for f in FoldProgress.__dataclass_fields__ if f in progress} if progress else None
    fold = FoldProgress(**fields) if fields else None
    pct = 100.0 * fold.fraction if fold else 0.0
    text = " · ".join(part for part in (f"{pct:.0f}% · {fold.line()}" if fold else "", esc(note)) if part)
    return (f'<div class="bd-progress"><div class="bd-bar" style="width:{pct:.1f}%"></div></div>'
            f'<div class="bd-progress-text">{text}</div>')


def _entry_info(entry, current, strategy: str) -> str:
    now = f"current label **{esc(current.label)}** ({esc(current.how)}, {esc(current.annotator)})" \
        if current.label else "unlabeled"
    suggested = f" · the model suggests **{esc(entry.suggested)}**" if entry.suggested else ""
    if entry.suggested and entry.suggested in entry.probabilities:
        suggested += f" ({entry.probabilities[entry.suggested]:.0%})"
    return f"Item {entry.id}: {now}{suggested} · {_why_served(entry, strategy)}"


def _set_info(entry, current, strategy: str, suggested: tuple[str, ...] | None) -> str:
    """``_entry_info`` for a multi-label item: its set now and the suggested set (labels at or above their
    thresholds; each label's probability and threshold are on its toggle)."""
    if current.label is None:
        now = "unlabeled"
    else:
        now = f"labels now **{esc(shown_set(decode_set(current.label)))}** ({esc(current.how)}, {esc(current.annotator)})"
    said = f" · the model suggests **{esc(shown_set(suggested))}**" if suggested is not None else ""
    why = _why_served(entry, strategy)
    return f"Item {entry.id}: {now}{said}" + (f" · {why}" if why else "")


def _why_served(entry, strategy: str) -> str:
    """Why the queue serves this item, in the queue's own terms; the plain orders have no score to show."""
    if entry.pair_kind == "missing":  # a suspicious (text, label) pair of a multi-label project; score = |y − p|
        return f"the model is sure of **{esc(entry.pair_label)}** ({entry.score:.0%}), which is not given"
    if entry.pair_kind == "unlikely":
        return f"the given label **{esc(entry.pair_label)}** is unlikely to the model ({1 - entry.score:.0%})"
    return {"random": "a random pick",
            "in_order": "next in import order",
            "margin": f"margin {1 - entry.score:.3f} between the two likeliest classes",
            "entropy": f"entropy {entry.score:.3f}",
            "least_confidence": f"top probability only {1 - entry.score:.3f}",
            queues.LABEL_UNCERTAINTY: f"its least sure label is {1 - entry.score:.3f} from its threshold",
            "suspicious": f"the given label's out-of-sample probability {1 - entry.score:.3f}",
            "misclassified": f"the run's confidence in its wrong answer {entry.score:.3f}"}.get(strategy, "")
