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
pytestmark = pytest.mark.slow  # a real browser

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
    # every default but the small-data plan's extra epochs, which take minutes on a CPU without bf16 (the plan
    # has its own tests): Advanced settings → at least 0 steps
    page.get_by_role("button", name="Advanced settings").click()
    page.get_by_label("At least this many steps").fill("0")
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


def test_scored_explanations_show_and_escape_what_was_typed(page, app_url, tmp_path):
    """Runs after the walk above: the page loads the newest run. A typed payload stays text everywhere."""
    tab = page.context.new_page()
    tab.goto(app_url[0])
    _tab(tab, "4 · Predict & Explain")
    box = tab.locator("#predict-text textarea")
    box.fill('Shares fell <img src=x onerror="window.__xss=1"> "quoted" <script>window.__xss=1</script>')
    tab.get_by_role("tab", name="Attributions, scored").click()
    tab.locator("#attr-btn").click()
    expect(tab.locator("#attr-summary")).to_contain_text("Shown first", timeout=120_000)
    expect(tab.locator("#faithfulness-table")).to_contain_text("comprehensiveness")
    expect(tab.locator("#faithfulness-table")).to_contain_text("occlusion")
    expect(tab.locator("#deletion-curve .js-plotly-plot")).to_be_visible(timeout=30_000)
    tab.wait_for_timeout(500)
    assert tab.evaluate("() => window.__xss") is None
    tab.screenshot(path=str(_shots(tmp_path) / "explain-scored.png"), full_page=True)
    tab.close()


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


def test_labeling_with_the_keyboard_survives_a_reload_and_exports(page, app_url, tmp_path):
    """Create a project from a file, label with number keys, undo with U, reload, see the labels kept, export."""
    import statistics

    from bertdemo.labeling.store import LabelStore

    rows = [(f"Item number {i} about {'cooking' if i % 2 else 'football'}", "") for i in range(12)]
    rows[0] = ("A first labeled text about cooking", "food")
    rows[1] = ("A first labeled text about football", "sport")
    path = tmp_path / "kb_project.csv"
    path.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    tab = page.context.new_page()
    tab.goto(app_url[0])
    _tab(tab, "5 · Label")
    tab.locator("#label-import-file input[type=file]").set_input_files(str(path))
    tab.locator("#label-new-name input, #label-new-name textarea").first.fill("keyboard")
    tab.locator("#label-import").click()
    expect(tab.locator("#label-import-report")).to_contain_text("12 new items", timeout=60_000)
    name = tab.locator("#label-annotator input, #label-annotator textarea").first
    tab.locator("#label-start").click()  # a new project's queue is in order already; but nobody is named yet
    expect(tab.locator("#label-status")).to_contain_text("Type your name", timeout=30_000)
    name.fill("kim")
    tab.locator("#label-start").click()
    item = tab.locator("#label-item-text")
    expect(tab.locator("#label-key-1")).to_contain_text("1 · food", timeout=60_000)
    tab.locator("#label-item").click()  # focus the page, not a text field: keys go to the shortcuts
    tab.evaluate("""() => {  // in-page clock: from the key press (capture phase, before the app) to the new text
        window.__shown = [];
        document.addEventListener('keydown', () => { window.__pressed = performance.now(); }, true);
        new MutationObserver(() => {
            if (window.__pressed) { window.__shown.push(performance.now() - window.__pressed); window.__pressed = 0; }
        }).observe(document.getElementById('label-item'), {subtree: true, childList: true, characterData: true});
    }""")
    texts, waits, confirmed = [item.inner_text()], [], []
    for key in "1212121":
        started = time.perf_counter()
        tab.keyboard.press(key)
        tab.wait_for_function("(before) => { const el = document.getElementById('label-item-text');"
                              " return el && el.innerText !== before; }", arg=texts[-1], polling=10, timeout=30_000)
        waits.append(time.perf_counter() - started)
        shown = item.inner_text()
        tab.wait_for_function("() => !document.querySelector('#label-item-text.bd-pending')", polling=10,
                              timeout=30_000)  # the server's reply has rendered
        confirmed.append(time.perf_counter() - started)
        assert item.inner_text() == shown  # and it is the item the page showed at once
        texts.append(shown)
    tab.keyboard.press("u")  # undo the last answer: its item is back on screen
    expect(item).to_have_text(texts[-2], timeout=30_000)
    expect(tab.locator("#label-status")).to_contain_text("Undone")
    in_page = tab.evaluate("() => window.__shown")
    assert len(in_page) >= len(waits)
    print(f"\nlabel tab, {len(waits)} key presses: the next item shows {statistics.median(in_page):.1f} ms after the "
          f"key (median, in-page clock; {1000 * statistics.median(waits):.0f} ms seen from Playwright); the server's "
          f"reply has rendered after {1000 * statistics.median(confirmed):.0f} ms (median)")

    store = LabelStore.for_workspace(app_url[1])
    labeled = {i.text: i.label for i in store.items("keyboard") if i.label}
    assert len(labeled) == 2 + 6 and labeled[texts[0]] == "food" and labeled[texts[1]] == "sport"
    tab.reload()
    _tab(tab, "5 · Label")
    expect(tab.locator("#label-annotator input, #label-annotator textarea").first).to_have_value(
        "kim", timeout=30_000)  # asked once: this browser remembers the name
    tab.locator("#label-project input").click()
    tab.get_by_role("option", name="keyboard").click()
    strategy = tab.locator("#label-strategy input")
    strategy.click()
    tab.get_by_role("option", name="in order").click()
    tab.locator("#label-start").click()
    expect(tab.locator("#label-progress")).to_contain_text("8 / 12 labeled", timeout=60_000)
    expect(tab.locator("#label-progress")).to_contain_text("kim 6")
    expect(tab.locator("#label-progress")).to_contain_text("import 2")
    expect(item).to_have_text(texts[-2])  # the undone item is the first unlabeled one again
    tab.locator("#label-export").click()
    link = tab.locator("#label-export-file a").first
    expect(link).to_be_visible(timeout=30_000)
    exported = tab.request.get(link.get_attribute("href")).text()
    assert exported.splitlines()[0] == "text,label" and len(exported.strip().splitlines()) == 1 + 8
    tab.screenshot(path=str(_shots(tmp_path) / "label.png"), full_page=True)
    tab.close()


def test_payloads_in_every_field_stay_text(page, app_url, tmp_path):
    """Script and markup in a file's name, column names, labels and texts, and in project and annotator names:
    shown as text everywhere (reports, tables, toasts, the Label tab), never run."""
    img = '<img src=x onerror="window.__xss=1">'
    quote = '"><svg onload="window.__xss=1">'
    folder = tmp_path / "evil"
    folder.mkdir()
    path = folder / "evil<b onmouseover=alert(1)>.csv"
    rows = [(f"{img} some long text number {i} {quote}", f"<i>{'ab'[i % 2]}</i>{quote}") for i in range(20)]
    header = f'"words{img}","class{quote}"'
    path.write_text(header + "\n" + "".join(f'"{t.replace(chr(34), chr(34) * 2)}","{label.replace(chr(34), chr(34) * 2)}"\n'
                                            for t, label in rows), encoding="utf-8")
    tab = page.context.new_page()
    tab.goto(app_url[0])
    tab.locator("#upload input[type=file]").set_input_files(str(path))
    expect(tab.locator("#data-status")).to_contain_text("Data ready", timeout=60_000)
    expect(tab.locator("#data-report")).to_contain_text("onerror")  # the column name, as text
    expect(tab.locator("#preview")).to_contain_text("<img src=x")
    _tab(tab, "5 · Label")
    tab.locator("#label-import-file input[type=file]").set_input_files(str(path))
    tab.locator("#label-new-name input, #label-new-name textarea").first.fill(f"x{img}")
    tab.locator("#label-import").click()
    expect(tab.get_by_text("is not usable").first).to_be_visible(timeout=30_000)  # refused, the name as text
    tab.locator("#label-new-name input, #label-new-name textarea").first.fill("payloads")
    tab.locator("#label-import").click()
    expect(tab.locator("#label-import-report")).to_contain_text("20 new items", timeout=30_000)
    tab.locator("#label-annotator input, #label-annotator textarea").first.fill(f"ann{quote}")
    strategy = tab.locator("#label-strategy input")
    strategy.click()
    tab.get_by_role("option", name="in order").click()
    tab.locator("#label-start").click()
    expect(tab.get_by_text("is not usable").first).to_be_visible(timeout=30_000)
    tab.wait_for_timeout(800)
    assert tab.evaluate("() => window.__xss") is None
    tab.close()
