"""A real browser (headless Chromium) and a training job that outlives its page: a reload, a closed tab and a
second tab, each mid-run. The loss plot comes back with its whole history; the reloaded page stops the job, the
job of a closed tab finishes (its run is on the Models tab), the second tab stops the job with its best checkpoint
kept; and a new Start is accepted after each.

One browser context is one browser (its localStorage holds the key that makes its tabs one owner); the app runs
on the tiny test BERT, with enough epochs that a run lasts well past the reload.
"""
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from test_browser import ARGS, CHROMIUM, _points_js, _tab

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow

# The plot comes back with its history after a reload (about 1-3 s on an idle 2-core machine; over 8 s when the
# machine runs other suites): the test waits for the history, and leaves the time to the closing note's figure
BACK_WITHIN_MS = 30_000
JOB_TIMEOUT_MS = 400_000


@pytest.fixture()
def browser_context(app_url):
    assert Path(CHROMIUM).exists(), "Install Debian's chromium: sudo apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        yield context
        browser.close()


def _open(context, url: str):
    tab = context.new_page()
    tab.goto(url)
    expect(tab.locator("#use-sample")).to_be_visible(timeout=30_000)
    return tab


def _set(tab, elem_id: str, value) -> None:
    box = tab.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def _start(tab, model_dir: str, epochs: int = 6) -> str:
    """Load the sample, choose the tiny model, epochs of batches of 4 (100 steps each: half a minute or so on 2
    cores), Start; the job id the page shows."""
    tab.locator("#use-sample").click()
    expect(tab.get_by_text("Data ready")).to_be_visible(timeout=60_000)
    _tab(tab, "2 · Train")
    tab.locator("#start-train").wait_for()
    model = tab.get_by_label("Model", exact=True)
    model.fill(model_dir)
    model.press("Enter")
    _set(tab, "epochs", epochs)
    _set(tab, "batch-size", 4)
    tab.get_by_role("button", name="Advanced settings").click()
    tab.get_by_label("At least this many steps").fill("0")
    tab.locator("#start-train").click()
    job_id = tab.locator("#train-job-id textarea, #train-job-id input")
    expect(job_id).not_to_have_value("", timeout=30_000)
    return job_id.input_value()


def _points(tab) -> int:
    return tab.evaluate(f"() => {_points_js('loss-plot')}")


def _wait_points(tab, more_than: int, timeout: int = JOB_TIMEOUT_MS) -> int:
    tab.wait_for_function(f"() => {_points_js('loss-plot')} > {more_than}", timeout=timeout, polling=100)
    return _points(tab)


def _store(app_url):
    from bertdemo.jobs import JobStore

    return JobStore.for_workspace(app_url[1])


def _job(app_url, job_id: str):
    return _store(app_url).get(job_id)


def _finish_and_start_again(tab, app_url, job_id: str, model_dir: str) -> None:
    """The job ends by itself; its run is on the Models tab; a new Start is accepted (no slot held)."""
    expect(tab.locator("#train-progress")).to_contain_text("done in", timeout=JOB_TIMEOUT_MS)
    job = _job(app_url, job_id)
    assert job.state == "done" and (Path(app_url[1]) / job.result["run"]).exists()
    _tab(tab, "6 · Models")
    expect(tab.get_by_text(job.result["run"]).first).to_be_visible(timeout=30_000)
    _start_again(tab, app_url, job_id)


def _start_again(tab, app_url, job_id: str) -> None:
    """A new Start is accepted and runs to its end: the old job holds no slot. The data is the page's own (a
    reloaded page has none yet), so the sample is loaded again first; 40 rows make the run a few steps."""
    _tab(tab, "1 · Data")
    tab.locator("#use-sample").click()
    expect(tab.get_by_text("Data ready")).to_be_visible(timeout=60_000)
    _tab(tab, "2 · Train")
    _set(tab, "epochs", 1)
    _set(tab, "max-rows", 40)
    tab.locator("#start-train").click()
    try:
        expect(tab.locator("#train-job-id textarea, #train-job-id input")).not_to_have_value(job_id, timeout=30_000)
    except AssertionError:
        toasts = tab.locator(".toast-body, .toast-text, [data-testid='toast-body']").all_inner_texts()
        jobs = [(j.id, j.state, j.reason) for j in _store(app_url).find()]
        raise AssertionError(f"the second Start was not accepted: toasts {toasts}, jobs {jobs}") from None
    expect(tab.locator("#train-progress")).to_contain_text("done in", timeout=JOB_TIMEOUT_MS)


def test_a_reload_mid_run_brings_back_the_whole_plot_and_the_reloaded_page_stops_it(browser_context, app_url,
                                                                                     ui_model_dir):
    tab = _open(browser_context, app_url[0])
    job_id = _start(tab, ui_model_dir)
    before = _wait_points(tab, 5)
    assert _job(app_url, job_id).state == "running"
    tab.reload()
    _tab(tab, "2 · Train")
    after = _wait_points(tab, before - 1, timeout=BACK_WITHIN_MS)  # at least the history it had
    _wait_points(tab, after)  # and it is live again
    assert tab.locator("#train-job-id textarea, #train-job-id input").input_value() == job_id
    tab.locator("#stop-train").click()  # the reloaded page holds the job: its Stop works (the closed-tab walk
    expect(tab.locator("#train-progress")).to_contain_text("stopped", timeout=60_000)  # runs one to its end)
    assert _job(app_url, job_id).state == "stopped"
    _start_again(tab, app_url, job_id)


def test_a_closed_tab_does_not_stop_the_job_and_a_new_tab_finds_it(browser_context, app_url, ui_model_dir):
    tab = _open(browser_context, app_url[0])
    job_id = _start(tab, ui_model_dir)
    seen = _wait_points(tab, 3)
    tab.close()
    time.sleep(10)
    assert _job(app_url, job_id).state in ("running", "done")  # it went on without a page
    new = _open(browser_context, app_url[0])
    _tab(new, "2 · Train")
    _wait_points(new, seen, timeout=10_000)  # more than the closed tab had seen: it trained on
    _finish_and_start_again(new, app_url, job_id, ui_model_dir)


def test_a_second_tab_follows_the_same_job_and_its_stop_keeps_the_best_checkpoint(browser_context, app_url,
                                                                                  ui_model_dir):
    first = _open(browser_context, app_url[0])
    job_id = _start(first, ui_model_dir, epochs=20)
    second = _open(browser_context, app_url[0])
    _tab(second, "2 · Train")
    _wait_points(second, 3)
    expect(second.locator("#train-job-id textarea, #train-job-id input")).to_have_value(job_id)
    deadline = time.time() + 120
    while not any(e["event"] == "EvalEvent" for e in _events(app_url, job_id)) and time.time() < deadline:
        time.sleep(0.2)  # an evaluation first: then there is a checkpoint to keep
    second.locator("#stop-train").click()
    expect(second.locator("#train-progress")).to_contain_text("best checkpoint saved", timeout=60_000)
    expect(first.locator("#train-progress")).to_contain_text("best checkpoint saved", timeout=10_000)
    job = _job(app_url, job_id)
    assert job.state == "stopped" and job.result["run"]
    from bertdemo.runs import load_run_info

    assert load_run_info(Path(app_url[1]) / job.result["run"]).status == "stopped"
    first.locator("#start-train").click()  # the stopped job holds no slot
    expect(first.locator("#train-job-id textarea, #train-job-id input")).not_to_have_value(job_id, timeout=30_000)
    expect(first.locator("#train-progress")).not_to_contain_text("at most", timeout=5_000)
    first.locator("#stop-train").click()


def _events(app_url, job_id: str) -> list[dict]:
    return _store(app_url).events(job_id)
