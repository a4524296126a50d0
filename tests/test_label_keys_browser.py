"""The Label tab's keyboard loop in a real browser (headless Chromium via Playwright): what is on screen at a key
press is what gets labeled, no press is lost, and a server that stops answering is said so.

Each press is checked three ways: the text and item id on screen when the key went down (an in-page listener
that runs before the app's), the item id the page sent (the request itself, as the network saw it), and the
label the store holds. Needs Debian's ``chromium`` at /usr/bin/chromium.
"""
from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from playwright.sync_api import expect, sync_playwright

from conftest import write_csv

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # a real browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
LABELS = ["food", "sport", "weather"]
PRESSES, RATE = 100, 5.0  # key presses, per second
ANSWERS = {"label_key_1", "label_key_2", "label_key_3", "label_skip", "label_accept", "label_undo", "label_set",
           "label_answers"}

# in-page clock and record: runs in the capture phase at window level, so before the app's own listener
RECORD_JS = """() => {
    window.__presses = []; window.__shownAfter = []; window.__pressedAt = 0;
    window.addEventListener('keydown', (event) => {
        const text = document.getElementById('label-item-text');
        const card = document.querySelector('#label-screen .bd-card');
        window.__presses.push({key: event.key, text: text ? text.innerText : null,
                               id: card ? Number(card.dataset.itemId) : null});
        window.__pressedAt = performance.now();
    }, true);
    new MutationObserver(() => {
        if (window.__pressedAt) { window.__shownAfter.push(performance.now() - window.__pressedAt); window.__pressedAt = 0; }
    }).observe(document.getElementById('label-item'), {subtree: true, childList: true, characterData: true});
}"""


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Install Debian's chromium: sudo apt-get install -y chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def _project(app_url, tmp_path, name: str, unlabeled: int) -> None:
    rows = [(f"Text number {i:03d} about {LABELS[i % 3]} and other things", "") for i in range(unlabeled)]
    rows += [(f"A labeled text about {label}", label) for label in LABELS]  # the label set: keys 1, 2, 3
    path = write_csv(tmp_path / f"{name}.csv", rows)
    report, _, _ = Client(app_url[0], verbose=False).predict(handle_file(str(path)), name,
                                                             api_name="/label_import")
    assert f"{unlabeled + 3} new items" in report


def _start(tab, app_url, name: str) -> None:
    tab.goto(app_url[0])
    tab.get_by_role("tab", name="5 · Label").click()
    tab.locator("#label-project input").click()
    tab.get_by_role("option", name=name).click()
    tab.locator("#label-annotator input, #label-annotator textarea").first.fill("ann")  # asked once, then kept
    tab.locator("#label-strategy input").click()
    tab.get_by_role("option", name="in order").click()
    tab.locator("#label-start").click()
    expect(tab.locator("#label-key-3")).to_contain_text("3 · weather", timeout=60_000)
    expect(tab.locator("#label-screen .bd-card")).to_be_visible(timeout=30_000)
    tab.locator("#label-info").click()  # focus the page, not a text field: keys go to the shortcuts


def _idle(tab, timeout: float = 60_000) -> None:
    """Every press answered: nothing queued or on its way, the screen shows the server's item."""
    tab.wait_for_function("() => { const m = window.__bdLabel; return m && !m.inflight && !m.queue.length"
                          " && !document.querySelector('#label-item-text.bd-pending'); }", polling=50, timeout=timeout)


def test_100_presses_at_5_per_second_label_exactly_what_was_shown(browser, app_url, tmp_path):
    from bertdemo.labeling.history import changes_since, last_change
    from bertdemo.labeling.store import LabelStore

    _project(app_url, tmp_path, "fast", unlabeled=130)
    store = LabelStore.for_workspace(app_url[1])
    config = Client(app_url[0], verbose=False).config
    api = {d["id"]: d.get("api_name") for d in config["dependencies"]}
    tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    sent = []  # (item id, what was pressed) of each press the page sent, in the order it sent them
    requests = []

    def on_request(request):
        if "/queue/join" in request.url and request.method == "POST":
            body = json.loads(request.post_data)
            name = api.get(body["fn_index"])
            if name == "label_answers":  # the presses queued while the last reply was on its way, in order
                requests.append(len(sent))
                sent.extend(tuple(p.split(":")) for p in body["data"][2].split(","))
            elif name in ANSWERS:
                sent.append((body["data"][1].split("@")[0], name))

    tab.on("request", on_request)
    _start(tab, app_url, "fast")
    before = last_change(store, "fast")
    tab.evaluate(RECORD_JS)
    rng = random.Random(19)
    keys = [rng.choice("1231231231s") for _ in range(PRESSES)]  # mostly labels, some skips
    started = time.perf_counter()
    for i, key in enumerate(keys):
        time.sleep(max(0.0, started + i / RATE - time.perf_counter()))
        tab.keyboard.press(key)
    pressing = time.perf_counter() - started
    _idle(tab)
    presses = tab.evaluate("() => window.__presses")
    shown_after = tab.evaluate("() => window.__shownAfter")
    loop = tab.evaluate("() => ({pressed: window.__bdLabel.pressed, sent: window.__bdLabel.sent})")
    replies = tab.evaluate("() => window.__bdLabel.replyMs")
    alert = tab.locator("#label-alert").inner_text()

    assert len(presses) == PRESSES and alert == "", alert
    mismatches, drops = [], PRESSES - len(sent)
    for i, (key, press) in enumerate(zip(keys, presses)):
        item, pressed = sent[i] if i < len(sent) else ("", "")
        stored = store.item("fast", press["id"])
        expected = None if key == "s" else LABELS[int(key) - 1]
        if (pressed != ("s" if key == "s" else f"k{key}") or item != str(press["id"]) or stored.text != press["text"]
                or stored.label != expected):
            mismatches.append((i, key, press, item, pressed, stored.text, stored.label))
    ids = [p["id"] for p in presses]
    changes = changes_since(store, "fast", before)["changes"]
    print(f"\nfast presses: {PRESSES} in {pressing:.1f} s; {len(sent)} sent, {drops} dropped, {len(mismatches)} "
          f"mismatches; {changes} label changes for {sum(k != 's' for k in keys)} label keys; the next item shows "
          f"{statistics.median(shown_after):.1f} ms after the key (median, in-page clock; max "
          f"{max(shown_after):.1f} ms); the server's reply after {statistics.median(replies):.0f} ms (median; max "
          f"{max(replies):.0f} ms), in {len(requests)} requests")
    assert not mismatches, mismatches[:5]
    assert drops == 0 and loop == {"pressed": PRESSES, "sent": PRESSES}
    assert len(set(ids)) == PRESSES  # each press on a new item: none shown twice, none jumped back
    assert ids == sorted(ids)  # the in-order queue, in order
    assert changes == sum(k != "s" for k in keys)  # one store change per label key: none lost, none doubled
    tab.close()


def test_a_server_that_stops_answering_is_said_so_and_nothing_is_shown_as_saved(browser, app_url, tmp_path):
    """Answers that never come back (the server is stuck or gone) pause the keys with a message; the screen shows the item
    the unconfirmed answer was for, as the info line does. Enter without a suggestion says why nothing happened,
    and a click on a label button labels the item on screen, as its key does."""
    from bertdemo.labeling.store import LabelStore

    _project(app_url, tmp_path, "gone", unlabeled=10)
    store = LabelStore.for_workspace(app_url[1])
    tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    _start(tab, app_url, "gone")
    alert, text = tab.locator("#label-alert"), tab.locator("#label-item-text")
    tab.keyboard.press("Enter")  # no model: no suggestion to accept
    expect(alert).to_contain_text("No suggestion to accept")
    tab.keyboard.press("1")
    _idle(tab)
    clicked = int(tab.locator("#label-screen .bd-card").get_attribute("data-item-id"))
    tab.locator("#label-key-2").click()  # a click is a press like a key: queued with the card on screen
    _idle(tab)
    assert store.item("gone", clicked).label == "sport"
    first = text.inner_text()
    item = int(tab.locator("#label-screen .bd-card").get_attribute("data-item-id"))
    held = []  # from now on no answer reaches the server, and none comes back: it hangs, as a stuck server does
    tab.route("**/queue/join**", lambda route: held.append(route))
    tab.keyboard.press("2")
    expect(text).not_to_have_text(first)  # the page moves on at once…
    expect(alert).to_contain_text("Not saved: the server has not answered", timeout=15_000)  # …then says so
    expect(text).to_have_text(first)  # and shows the item whose answer is not confirmed
    expect(tab.locator("#label-info")).to_contain_text(f"Item {item}")
    tab.keyboard.press("3")
    expect(alert).to_contain_text("keys are paused")
    assert store.item("gone", item).label is None and held
    tab.close()
