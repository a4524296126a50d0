"""Nothing on the page is cut at 1,280 or 1,920 px wide: every tab, before and after a run, in a real browser.

Issue 19 item 8: in the Models table the "accuracy" header wrapped as "accura cy" and the right-hand columns were out
of sight, and a plot placeholder was cut at "appear after the first evaluati". The check runs in the page on what is
visible: a table header broken inside a word or clipped, a table wider than its box, a plot text (placeholder or
title) past its plot's edges, a code block in a "How it works" panel that must be scrolled. Screenshots of every tab at
both widths go to the test's temporary folder. The app runs on the tiny test BERT, trained on the bundled sample.
"""
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from test_browser import ARGS, CHROMIUM, _tab
from test_browser_jobs import _set

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # a real browser

WIDTHS = (1280, 1920)
TABS = {  # tab → what shows once it has opened
    "1 · Data": "#use-sample", "2 · Train": "#start-train", "3 · Evaluate": "#misclassified",
    "4 · Predict & Explain": "#predict-text", "5 · Label": "#label-start", "6 · Models": "#runs-table",
    "7 · Jobs": "#jobs-table",
}
TRAIN_TIMEOUT_MS = 300_000

CUT_JS = """() => {
  const shown = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0 && el.offsetParent !== null; };
  const problems = [];
  const brokenWords = el => {  // words of el's own text that the layout spread over two lines
    const out = [];
    for (const node of el.childNodes) {
      if (node.nodeType !== 3) continue;
      const re = /\\S+/g; let m;
      while ((m = re.exec(node.textContent))) {
        const range = document.createRange(); range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
        if (new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size > 1) out.push(m[0]);
      }
    }
    return out;
  };
  for (const th of document.querySelectorAll('th')) {
    if (!shown(th)) continue;
    const text = th.querySelector('.header') || th;
    const name = text.textContent.trim();
    const broken = brokenWords(text);
    if (broken.length) problems.push(`header "${name}" breaks inside ${broken.join(', ')}`);
    for (const el of [th, ...th.querySelectorAll('*')])
      if (el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== 'visible')
        problems.push(`header "${name}" is clipped (${el.scrollWidth} > ${el.clientWidth} px)`);
  }
  for (const box of document.querySelectorAll('.virtual-table-viewport, .table-wrap, .bd-teach pre')) {
    if (!shown(box) || box.scrollWidth <= box.clientWidth + 1) continue;
    const name = box.closest('[id]')?.id || box.textContent.slice(0, 40).trim();
    problems.push(`"${name}" is ${box.scrollWidth} px wide in a ${box.clientWidth} px box`);
  }
  for (const t of document.querySelectorAll('.js-plotly-plot .annotation-text, .js-plotly-plot .gtitle')) {
    const plot = t.closest('.js-plotly-plot');
    if (!shown(plot)) continue;
    const r = t.getBoundingClientRect(), p = plot.getBoundingClientRect();
    if (r.left < p.left - 1 || r.right > p.right + 1)
      problems.push(`plot text "${t.textContent}" (${Math.round(r.width)} px) runs past its ${Math.round(p.width)} px plot`);
  }
  return problems;
}"""


def _cut(tab, where: str) -> list[str]:
    return [f"{where}: {problem}" for problem in tab.evaluate(CUT_JS)]


def _every_tab(tab, width: int, shots: Path, when: str) -> list[str]:
    """Open each tab at ``width`` px, wait for it, look for what is cut and take a screenshot."""
    tab.set_viewport_size({"width": width, "height": 900})
    found = []
    for name, ready in TABS.items():
        _tab(tab, name)
        expect(tab.locator(ready).first).to_be_visible(timeout=30_000)
        tab.wait_for_timeout(600)  # plotly draws its figures and gradio sizes its tables after the tab shows
        found += _cut(tab, f"{width} px, {name}, {when}")
        tab.screenshot(path=str(shots / f"{width}-{name[0]}-{when.replace(' ', '-')}.png"), full_page=True)
    return found


def test_no_header_table_or_placeholder_is_cut_at_1280_and_1920_px(app_url, ui_model_dir, tmp_path):
    assert Path(CHROMIUM).exists(), "Install Debian's chromium: sudo apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        tab = browser.new_context(viewport={"width": WIDTHS[0], "height": 900}).new_page()
        tab.goto(app_url[0])
        expect(tab.locator("#use-sample")).to_be_visible(timeout=30_000)
        found = _every_tab(tab, WIDTHS[0], tmp_path, "before a run")  # placeholders: no run, no data

        _tab(tab, "1 · Data")
        tab.locator("#use-sample").click()
        expect(tab.get_by_text("Data ready")).to_be_visible(timeout=60_000)
        _tab(tab, "2 · Train")
        model = tab.get_by_label("Model", exact=True)
        model.fill(ui_model_dir)
        model.press("Enter")
        _set(tab, "epochs", 1)
        _set(tab, "batch-size", 4)  # 100 steps before the first evaluation: the scores plot's placeholder shows
        tab.get_by_role("button", name="Advanced settings").click()
        tab.get_by_label("At least this many steps").fill("0")
        tab.locator("#start-train").click()
        expect(tab.locator("#scores-plot .annotation-text").first).to_be_visible(timeout=TRAIN_TIMEOUT_MS)
        found += _cut(tab, f"{WIDTHS[0]} px, 2 · Train, while training")
        tab.screenshot(path=str(tmp_path / f"{WIDTHS[0]}-2-while-training.png"), full_page=True)
        expect(tab.locator("#train-progress")).to_contain_text("done in", timeout=TRAIN_TIMEOUT_MS)

        for width in WIDTHS:  # tables filled: the run on Models and Evaluate, the job on Jobs, the data's preview
            found += _every_tab(tab, width, tmp_path, "after a run")
        browser.close()
    assert not found, "cut on the page (screenshots in " + str(tmp_path) + "):\n" + "\n".join(found)
