"""The pretraining panel's two teaching boxes: fill-the-mask (a sentence with a word in [brackets], the model's top
guesses for it) and one sentence masked by BERT's 80/10/10 rule.

Fill-the-mask asks either the pretraining running now — the weights of its newest evaluation, a snapshot in the
job's checkpoint folder (``bertdemo.jobs.kinds.pretraining_snapshots``), so the answers improve at each evaluation —
or a saved pretrained model. The engine does the work (``bertdemo.pretraining.fill``, ``.masking``); here are the
choice of model, the words and the colours.
"""
from __future__ import annotations

import html

import gradio as gr

from bertdemo import plots
from bertdemo.jobs.checkpoints import checkpoint_space
from bertdemo.jobs.kinds import pretraining_snapshots
from bertdemo.models import report_tokenizer
from bertdemo.pretraining.fill import HOW_TO, fill_mask, load_fill_model
from bertdemo.pretraining.loop import latest_snapshot
from bertdemo.pretraining.masking import masking_example
from bertdemo.pretraining.saved import find_pretrained
import bertdemo.ui.teaching as teaching
from bertdemo.ui.edge import at_edge, ordinal
from bertdemo.ui.page import PREDICT_QUEUE, Page, esc

EXAMPLE = "The striker scored twice in the final minutes, and the crowd sang until the end of the match."
FILL_EXAMPLE = "The striker scored twice in the final [minutes] of the match."
COLORS = {"[MASK]": "#fecaca", "random": "#fed7aa", "unchanged": "#bbf7d0", "kept": "#f3f4f6", "special": "#e0e7ff"}
LEGEND = {"[MASK]": "chosen → [MASK] (80 %)", "random": "chosen → a random piece (10 %)",
          "unchanged": "chosen, left as it was (10 %)", "kept": "not chosen (no loss)", "special": "special token"}


def masking_html(rows: list[dict]) -> str:
    """``masking_example``'s rows as coloured boxes — what the model sees, with the original under a changed
    piece — and the legend. Tokens are escaped: the sentence is the user's."""
    boxes = []
    for row in rows:
        under = (f'<div style="font-size:.75em;color:#6b7280">{html.escape(row["token"])}</div>'
                 if row["shown"] != row["token"] or row["what"] == "unchanged" else "")
        boxes.append(f'<span class="bd-mask-{row["what"].strip("[]").lower()}" title="{html.escape(LEGEND[row["what"]])}" '
                     f'style="display:inline-block;margin:2px;padding:2px 6px;border-radius:4px;'
                     f'background:{COLORS[row["what"]]};font-family:monospace;text-align:center">'
                     f'{html.escape(row["shown"])}{under}</span>')
    chosen = sum(r["what"] in ("[MASK]", "random", "unchanged") for r in rows)
    legend = " ".join(f'<span style="background:{COLORS[k]};padding:1px 6px;border-radius:4px;margin-right:6px">'
                      f'{html.escape(v)}</span>' for k, v in LEGEND.items())
    count = (f"{chosen} of {sum(r['what'] != 'special' for r in rows)} word-pieces chosen this time: the model is "
             "asked to give back the original of each." if chosen else
             "No piece was chosen this time (15 % of a short sentence is often none or one): mask again.")
    return (f'<div id="masking-tokens" style="line-height:2.2">{"".join(boxes)}</div>'
            f'<div style="margin-top:6px;font-size:.9em">{count}</div>'
            f'<div style="margin-top:6px;font-size:.85em">{legend}</div>')


def fill_summary(blanks: list[dict], asked: str) -> str:
    """One line per blank: where the hidden word ranks among the model's guesses (escaped: the words are the
    user's and the vocabulary's)."""
    lines = [f"Asked {esc(asked)}."]
    for i, blank in enumerate(blanks, start=1):
        top = blank["guesses"][0] if blank["guesses"] else ("?", 0.0)
        if blank["answer"] is None:
            lines.append(f"- blank {i}: no hidden word to compare; top guess **{esc(top[0])}** ({top[1]:.1%})")
        elif blank["rank"] == 1:
            lines.append(f"- blank {i}: the hidden **{esc(blank['answer'])}** is the model's first guess "
                         f"({top[1]:.1%}) ✔")
        elif blank["rank"] is not None:
            lines.append(f"- blank {i}: the hidden **{esc(blank['answer'])}** is its {ordinal(blank['rank'])} guess; "
                         f"its first is **{esc(top[0])}** ({top[1]:.1%})")
        else:
            lines.append(f"- blank {i}: **{esc(blank['answer'])}** is not a word-piece this model knows")
    return "\n".join(lines)


class FillMaskBox:
    LIVE = "the pretraining running now"
    SAVED = "the saved model chosen above"

    def __init__(self, page: Page, panel):
        self.page, self.panel = page, panel  # panel: the PretrainPanel (its saved-models dropdown)
        with gr.Group():
            gr.Markdown("#### Fill the mask\n" + teaching.FILL_MASK)
            with gr.Row():
                self.text = gr.Textbox(value=FILL_EXAMPLE, label="Sentence ([brackets] around the word to hide)",
                                       max_lines=3, scale=3, elem_id="fill-text")
                self.ask = gr.Radio([self.LIVE, self.SAVED], value=self.SAVED, label="Ask", scale=2,
                                    elem_id="fill-ask")
                self.button = gr.Button("Fill the mask", variant="primary", scale=0, min_width=130,
                                        elem_id="fill-btn")
            self.summary = gr.Markdown(elem_id="fill-summary")
            self.plot = gr.Plot(label="Top 5 guesses", elem_id="fill-plot")

    def wire(self) -> None:
        event = dict(fn=self.on_fill, inputs=[self.text, self.ask, self.panel.saved],
                     outputs=[self.summary, self.plot], **PREDICT_QUEUE)
        self.button.click(**event, api_name="fill_mask")
        self.text.submit(**event, api_visibility="private")

    def folder(self, ask: str, saved: str | None, request) -> tuple[str, str]:
        """(the model folder to ask, how to name it); a ValueError says what to do when there is none."""
        if ask == self.LIVE:
            job = self.page.watch.latest(self.page.user(request), ("pretrain",))
            if job is None or not job.active and not job.result.get("model"):
                raise ValueError("No pretraining is running: start one above, or choose a saved pretrained model "
                                 f"and ask “{self.SAVED}”.")
            if not job.active:  # it has just ended: its saved model is the newest evaluation's successor
                return str(find_pretrained(job.result["model"], self.page.workspace)), f"{job.result['model']} (saved)"
            snapshot = latest_snapshot(pretraining_snapshots(checkpoint_space(self.page.workspace, job.id)))
            if snapshot is None:
                raise ValueError("The pretraining has not reached its first evaluation yet, so it has no weights to "
                                 "ask: try again after the first point on the held-out curve.")
            return str(snapshot), f"the running pretraining at step {int(snapshot.name.split('-')[-1])}"
        if not saved:
            raise ValueError("No pretrained model yet: pretrain one above (or, while it runs, ask "
                             f"“{self.LIVE}”).")
        return str(find_pretrained(saved, self.page.workspace)), saved

    @at_edge
    def on_fill(self, text: str, ask: str, saved: str | None, request: gr.Request) -> dict:
        if not (text or "").strip():  # said before "no model yet": typing comes first, and needs no model
            raise ValueError("Type a sentence first. " + HOW_TO)
        self.page.limits.check_text(text)
        for attempt in range(2):
            folder, asked = self.folder(ask, saved, request)
            try:
                model, tokenizer = load_fill_model(folder)
                break
            except OSError:  # a newer evaluation replaced that snapshot (or the job ended) while it loaded
                if attempt:
                    raise ValueError("The model changed while it was loading: ask again.") from None
        blanks = fill_mask(model, tokenizer, text, k=5)
        return {self.summary: fill_summary(blanks, asked), self.plot: plots.fill_mask_figure(blanks)}


class MaskingLesson:
    """One editable sentence masked as in pretraining, coloured; "Mask again" draws other pieces."""

    def __init__(self, page: Page):
        self.page = page
        with gr.Group():
            gr.Markdown("#### BERT's masking, 80/10/10\n" + teaching.MASKING)
            with gr.Row():
                self.text = gr.Textbox(value=EXAMPLE, label="Example sentence", max_lines=3, scale=4,
                                       elem_id="masking-text")
                self.again = gr.Button("Mask again", scale=0, min_width=120, elem_id="mask-again")
            self.tokens = gr.HTML(elem_id="masking-view")
            self.seed = gr.State(0)
        page.page_loads.append(([self.tokens], self.on_page_load))

    def wire(self) -> None:
        self.again.click(self.on_again, [self.text, self.seed], [self.tokens, self.seed], api_name="mask_again",
                         **PREDICT_QUEUE)
        self.text.submit(self.on_again, [self.text, self.seed], [self.tokens, self.seed], api_visibility="private",
                         **PREDICT_QUEUE)

    def on_page_load(self) -> dict:
        try:
            return {self.tokens: self.example(EXAMPLE, 0)}
        except ValueError as err:  # a page load must not fail for the lesson: it says why it is empty instead
            return {self.tokens: f"<p>{esc(err)}</p>"}

    def example(self, text: str, seed: int) -> str:
        text = (text or "").strip()
        if not text:
            raise ValueError("Type a sentence to mask.")
        # the embedded default's WordPiece vocabulary: the one a newcomer's fine-tuning uses (cached, offline)
        return masking_html(masking_example(report_tokenizer("default"), text[:1000], seed=seed))

    @at_edge
    def on_again(self, text: str, seed: int | None) -> dict:
        seed = int(seed or 0) + 1
        return {self.tokens: self.example(text, seed), self.seed: seed}
