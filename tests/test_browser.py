"""A real browser (headless Chromium via Playwright) walks the whole app on the bundled sample.

Needs Debian's ``chromium`` package at /usr/bin/chromium (``apt-get install chromium``); Playwright's own
browser download is not used. Trains the embedded default model for one epoch on the bundled English
sample, so it exercises exactly what a newcomer clicks. Screenshots of each tab go to
``$BERTDEMO_SCREENSHOTS`` when set (``docs/`` for the README), else to the test's temporary folder.
"""
import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

pytest_plugins = ["tests.conftest_ui"]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TRAIN_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def page(app_url):
    assert Path(CHROMIUM).exists(), "Install Debian's chromium: sudo apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
        page.goto(app_url[0])
        yield page
        browser.close()


def _shots(tmp_path) -> Path:
    out = Path(os.environ.get("BERTDEMO_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def _points_js(elem_id: str) -> str:
    """JS: how many training-loss points the live plot holds right now (0 before it is drawn)."""
    return (f"(() => {{ const el = document.querySelector('#{elem_id} .js-plotly-plot');"
            f" return el && el.data && el.data.length && el.data[0].x ? el.data[0].x.length : 0; }})()")


def test_newcomer_goes_from_sample_csv_to_an_explained_prediction(page, tmp_path):
    shots = _shots(tmp_path)
    started = time.perf_counter()

    # 1 Data: one click on the bundled sample
    expect(page.locator("#use-sample")).to_be_visible(timeout=30_000)
    page.locator("#use-sample").click()
    expect(page.get_by_text("Data ready")).to_be_visible(timeout=60_000)
    expect(page.locator("#data-report")).to_contain_text("kept")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "data.png"), full_page=True)

    # 2 Train: the defaults a newcomer gets, Start; the loss plot appears and keeps updating
    _tab(page, "2 · Train")
    page.locator("#start-train").click()
    page.wait_for_function(f"() => {_points_js('loss-plot')} > 0", timeout=TRAIN_TIMEOUT_MS, polling=100)
    first = page.evaluate(f"() => {_points_js('loss-plot')}")
    page.wait_for_function(f"() => {_points_js('loss-plot')} > {first}", timeout=TRAIN_TIMEOUT_MS, polling=100)
    expect(page.locator("#train-progress")).to_contain_text("done in", timeout=TRAIN_TIMEOUT_MS)
    trained_after = time.perf_counter() - started
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "train.png"), full_page=True)

    # 3 Evaluate: filled in for the new run
    _tab(page, "3 · Evaluate")
    expect(page.locator("#eval-summary")).to_contain_text("macro-F1", timeout=30_000)
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots / "evaluate.png"), full_page=True)

    # 4 Predict & Explain: probabilities while typing, then the attention heatmap
    _tab(page, "4 · Predict & Explain")
    box = page.locator("#predict-text textarea")
    box.click()
    box.press_sequentially("The striker scored twice in the final minutes of the derby.", delay=20)
    expect(page.locator("#probs")).to_contain_text("sports", timeout=30_000)
    page.locator("#explain-btn").click()
    expect(page.locator("#attention-plot .js-plotly-plot")).to_be_visible(timeout=60_000)
    expect(page.locator("#wordpieces")).to_contain_text("[CLS]")
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots / "explain.png"), full_page=True)

    # 5 Models: the run is listed
    _tab(page, "6 · Models")
    expect(page.get_by_text("news-topics-en").first).to_be_visible(timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "models.png"), full_page=True)
    print(f"\nbrowser: trained after {trained_after:.1f} s; whole walk {time.perf_counter() - started:.1f} s")


def test_html_in_a_csv_cell_shows_as_text(page, app_url, tmp_path):
    path = tmp_path / "evil.csv"
    evil = "<img src=x onerror=\"window.__xss=1\"><script>window.__xss=1</script>"
    rows = [f"{evil} {i},{'a' if i % 2 else 'b'}" if i == 0 else f"harmless text {i},{'a' if i % 2 else 'b'}"
            for i in range(20)]
    path.write_text("text,label\n" + "\n".join(f'"{r.rsplit(",", 1)[0]}",{r.rsplit(",", 1)[1]}' for r in rows),
                    encoding="utf-8")
    page = page.context.new_page()  # a second tab: a session of its own
    page.goto(app_url[0])
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#data-status")).to_contain_text("Data ready: evil.csv", timeout=60_000)
    expect(page.locator("#preview")).to_contain_text("<script>window.__xss=1</script>", timeout=30_000)
    assert page.evaluate("() => window.__xss") is None
    page.close()


def test_a_file_that_fails_to_load_leaves_no_data_behind_and_new_files_get_their_own_columns(page, app_url, tmp_path):
    """The bug: a second file with other column names failed (the old file's column names were reused), the old
    report stayed, and Start trained on the old file."""
    first = tmp_path / "first.csv"
    first.write_text("text,label\n" + "".join(f"text number {i},{'a' if i % 2 else 'b'}\n" for i in range(20)))
    second = tmp_path / "second.csv"
    second.write_text("review,stars\n" + "".join(f"a review {i},{i % 3 + 1}\n" for i in range(30)))
    broken = tmp_path / "broken.csv"
    broken.write_text("comment,rating\n" + "".join(f"same rating {i},5\n" for i in range(10)))  # one class
    tab = page.context.new_page()
    tab.goto(app_url[0])
    status, report = tab.locator("#data-status"), tab.locator("#data-report")

    def upload(path):  # as a person does it: clear the box (×) if it holds a file, then choose the next file
        clear = tab.locator("#upload button[aria-label=Clear]")
        if clear.count():
            clear.click()
        tab.locator("#upload input[type=file]").set_input_files(str(path))

    upload(first)
    expect(status).to_contain_text("Data ready: first.csv", timeout=60_000)
    upload(second)
    expect(status).to_contain_text("Data ready: second.csv", timeout=60_000)
    expect(report).to_contain_text("Text column review, label column stars")
    expect(report).to_contain_text("30 kept")
    upload(broken)
    expect(status).to_contain_text("Not loaded", timeout=60_000)
    expect(status).to_contain_text("only one class")
    expect(report).not_to_contain_text("second.csv")  # the previous file's report is gone
    _tab(tab, "2 · Train")
    tab.locator("#start-train").click()
    expect(tab.get_by_text("Load a data file first").first).to_be_visible(timeout=30_000)
    tab.close()
