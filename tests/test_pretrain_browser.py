"""A real browser on the pretraining panel and its fill-the-mask box, clicked as an impatient newcomer does: the
box asked before any model exists, a file of unlabeled text uploaded, a tiny pretraining started, the box asked
before its first evaluation, while it runs and after a reload; empty and unmarked sentences; "Mask again".

Needs Debian's chromium at /usr/bin/chromium (see tests/test_browser.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from conftest import write_csv
from test_browser import ARGS, CHROMIUM

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # a real browser

PRETRAIN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def page(app_url):
    assert Path(CHROMIUM).exists(), "Install Debian's chromium: sudo apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(app_url[0])
        yield page
        browser.close()


def _open_panel(page) -> None:
    page.get_by_role("tab", name="2 · Train").click()
    page.get_by_role("button", name="First pretrain on these texts").click()
    expect(page.locator("#fill-btn")).to_be_visible(timeout=30_000)


def _ask(page, text: str) -> None:
    box = page.locator("#fill-text textarea")
    box.fill(text)
    page.locator("#fill-btn").click()


def test_the_fill_box_before_during_and_after_a_pretraining(page, tmp_path):
    texts = write_csv(tmp_path / "unlabeled.csv", [(f"the match {i} ended with a late goal by the striker",
                                                     f"note {i}") for i in range(2000)], header=("body", "remark"))
    _open_panel(page)
    # the masking lesson is drawn at load: coloured tokens and a legend; Mask again draws other pieces
    expect(page.locator("#masking-tokens")).to_contain_text("[CLS]", timeout=30_000)
    page.locator("#masking-text textarea").fill("the quick brown fox jumps over the lazy dog near the river bank")
    seen = set()
    for _ in range(4):
        page.locator("#mask-again").click()
        page.wait_for_timeout(400)
        seen.add(page.locator("#masking-tokens").inner_text())
    assert len(seen) > 1, "Mask again always drew the same pieces"

    # asked before any model exists, then with nothing typed or marked: one clear message each, no badge soup
    _ask(page, "The striker [scored] late.")
    expect(page.get_by_text("No pretrained model yet").first).to_be_visible(timeout=15_000)
    _ask(page, "   ")
    expect(page.get_by_text("Type a sentence first").first).to_be_visible(timeout=15_000)

    # an unlabeled file with odd column names: the picker guesses, the note counts; then a tiny run
    page.locator("#pretrain-upload input[type=file]").set_input_files(str(texts))
    expect(page.locator("#pretrain-texts")).to_contain_text("2,000 different texts", timeout=30_000)
    page.get_by_label("tiny").check()
    minutes = page.locator("#pretrain-minutes input[type=number]")
    # long enough that the job still runs when asked after its first evaluation and after a reload, on a slow,
    # busy machine too; Stop ends it below. 2,000 texts: the 40-epoch cap of a 60-text corpus (40 steps) ended the
    # job before the time budget did, and before the running job could answer a second question
    minutes.fill("3")
    minutes.press("Enter")
    page.locator("#start-pretrain").click()
    page.locator("#fill-ask").get_by_label("the pretraining running now").check()
    _ask(page, "The striker [scored] late.")  # at once: no evaluation yet (or, on a fast machine, the first)
    expect(page.get_by_text("not reached its first evaluation").or_(
        page.locator("#fill-summary").get_by_text("the running pretraining at step")).first).to_be_visible(timeout=30_000)

    # the live plot fills in; after the first evaluation the running job answers
    page.wait_for_function("() => { const el = document.querySelector('#pretrain-plot .js-plotly-plot');"
                           " return el && el.data && el.data.length > 2 && el.data[2].x.length > 0; }",
                           timeout=PRETRAIN_TIMEOUT_MS, polling=200)
    _ask(page, "The striker [scored] late.")
    expect(page.locator("#fill-summary")).to_contain_text("the running pretraining at step", timeout=30_000)
    expect(page.locator("#fill-plot .js-plotly-plot")).to_be_visible()

    # a reload mid-job finds the job again; Stop saves the best weights so far, which are chosen and answer
    page.reload()
    _open_panel(page)
    expect(page.locator("#pretrain-progress")).to_contain_text("last evaluation", timeout=30_000)
    page.locator("#stop-pretrain").click()
    expect(page.locator("#pretrain-progress")).to_contain_text("saved as", timeout=PRETRAIN_TIMEOUT_MS)
    expect(page.locator("#pretrained-saved input")).to_have_value(
        page.locator("#pretrain-progress").inner_text().split("saved as ")[1].split(" ")[0], timeout=15_000)
    _ask(page, "The [striker] scored, and a <b>bold</b> [MASK] too.")
    expect(page.locator("#fill-summary")).to_contain_text("Asked", timeout=30_000)
    expect(page.locator("#fill-summary")).to_contain_text("no hidden word to compare")
    assert page.locator("#fill-summary b").count() == 0  # what was typed stays text

    # fine-tune from it: the Train tab's Model box names it
    page.locator("#finetune-from").click()
    expect(page.locator("#finetune-note")).to_contain_text("now holds", timeout=15_000)
