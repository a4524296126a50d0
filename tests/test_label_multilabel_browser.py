"""The Label tab's keys in a multi-label project, in a real browser (headless Chromium via Playwright): number keys
switch labels on for the text on screen without saving, Enter saves exactly the set shown, 0 is "no label
applies", and U undoes the last save. Needs Debian's ``chromium`` at /usr/bin/chromium."""
from __future__ import annotations

import pytest
from gradio_client import Client, handle_file
from playwright.sync_api import expect

from conftest import write_csv
from test_label_keys_browser import browser  # noqa: F401 - the same Chromium fixture, one per module

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # a real browser


def _idle(tab, timeout: float = 60_000) -> None:
    """Every press answered: nothing queued or on its way, the screen shows the server's item."""
    tab.wait_for_function("() => { const m = window.__bdLabel; return m && !m.inflight && !m.queue.length"
                          " && !document.querySelector('#label-item-text.bd-pending'); }", polling=50, timeout=timeout)


def _on_screen(tab) -> int:
    return int(tab.locator("#label-screen .bd-card").get_attribute("data-item-id"))


def test_two_keys_toggle_two_labels_enter_saves_that_set_and_undo_takes_it_back(browser, app_url, tmp_path):
    from bertdemo.labeling.labelsets import decode_set
    from bertdemo.labeling.store import LabelStore

    # a file with label sets ("a|b", "none") makes a multi-label project; its empty cells are the items to label
    rows = [("Pizza and football tonight", "food|sport"), ("Sunny with rain later", "weather"),
            ("A quiet day at home", "none")]
    rows += [(f"Ticket {i:02d} about lunch, the match or the storm", "") for i in range(8)]
    path = write_csv(tmp_path / "tickets.csv", rows)
    Client(app_url[0], verbose=False).predict(handle_file(str(path)), "ml-keys", api_name="/label_import")
    store = LabelStore.for_workspace(app_url[1])
    assert store.project("ml-keys").multi_label and store.project("ml-keys").labels == ("food", "sport", "weather")

    tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    tab.goto(app_url[0])
    tab.get_by_role("tab", name="5 · Label").click()
    tab.locator("#label-project input").click()
    tab.get_by_role("option", name="ml-keys").click()
    tab.locator("#label-annotator input, #label-annotator textarea").first.fill("ann")
    tab.locator("#label-strategy input").click()
    tab.get_by_role("option", name="in order").click()
    tab.locator("#label-start").click()
    screen = tab.locator("#label-screen")
    expect(screen.locator('.bd-card[data-multi="1"] .bd-toggle[data-k="3"]')).to_contain_text("weather",
                                                                                             timeout=60_000)
    expect(tab.locator("#label-key-1")).to_be_hidden()  # the labels are the card's toggles, not the answer keys
    tab.locator("#label-info").click()  # focus the page, not a text field: keys go to the shortcuts
    choice, on = screen.locator(".bd-choice"), screen.locator(".bd-toggle.bd-on")
    first = _on_screen(tab)
    expect(choice).to_contain_text("Switch labels on")

    tab.keyboard.press("1")
    tab.keyboard.press("3")
    expect(on).to_have_count(2)
    expect(choice).to_have_text("Enter saves: food + weather")
    assert store.item("ml-keys", first).label is None  # toggles are not saved
    tab.keyboard.press("Enter")
    _idle(tab)
    assert decode_set(store.item("ml-keys", first).label) == ("food", "weather")
    second = _on_screen(tab)
    assert second != first
    expect(on).to_have_count(0)  # the next item starts with nothing switched on

    tab.keyboard.press("2")  # on, off again, then "no label applies"
    tab.keyboard.press("2")
    tab.keyboard.press("0")
    expect(choice).to_have_text("Enter saves: no label applies")
    tab.keyboard.press("Enter")
    _idle(tab)
    assert store.item("ml-keys", second).label == "[]"  # explicitly none, not unlabeled

    tab.keyboard.press("u")
    _idle(tab)
    assert store.item("ml-keys", second).label is None
    expect(screen.locator(".bd-card")).to_have_attribute("data-item-id", str(second))  # back on the undone item
    tab.keyboard.press("u")
    _idle(tab)
    assert store.item("ml-keys", first).label is None  # the previous state: unlabeled, as before the first save
    expect(screen.locator(".bd-card")).to_have_attribute("data-item-id", str(first))
    assert tab.locator("#label-alert").inner_text() == ""
    tab.close()


def test_enter_with_nothing_toggled_accepts_the_suggested_set_and_a_key_edits_it(browser, app_url, tmp_path,
                                                                                tiny_ml_run):
    """With a multi-label run suggesting, the suggested labels are the ones switched on when an item shows: Enter
    saves that set as the suggestion; a number key switches one label of it, and Enter saves the edited set."""
    import json
    import shutil

    from bertdemo.labeling.labelsets import decode_set
    from bertdemo.labeling.store import LabelStore
    from conftest import toy_multilabel_rows

    shutil.copytree(tiny_ml_run, app_url[1] / tiny_ml_run.name, dirs_exist_ok=True)
    rows = [("Pizza and football tonight", "food|sport"), ("Sunny with rain later", "weather")]  # the label set
    rows += [(t, "") for t, _ in toy_multilabel_rows(12, seed=5)]
    path = write_csv(tmp_path / "suggested.csv", rows)
    Client(app_url[0], verbose=False).predict(handle_file(str(path)), "ml-suggested", api_name="/label_import")
    store = LabelStore.for_workspace(app_url[1])

    tab = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    tab.goto(app_url[0])
    tab.get_by_role("tab", name="5 · Label").click()
    tab.locator("#label-project input").click()
    tab.get_by_role("option", name="ml-suggested").click()
    tab.locator("#label-annotator input, #label-annotator textarea").first.fill("ann")
    tab.locator("#label-model input").click()
    tab.get_by_role("option", name=tiny_ml_run.name).first.click()
    tab.locator("#label-strategy input").click()
    tab.get_by_role("option", name="in order").click()
    tab.locator("#label-start").click()
    screen = tab.locator("#label-screen")
    card = screen.locator('.bd-card[data-multi="1"][data-suggested]')
    expect(card).to_be_visible(timeout=60_000)
    tab.locator("#label-info").click()
    first, suggested = _on_screen(tab), tuple(json.loads(card.get_attribute("data-suggested")))
    expect(screen.locator(".bd-toggle.bd-on")).to_have_count(len(suggested) or 1)  # the suggestion, or "none"
    expect(screen.locator(".bd-choice")).to_contain_text("Enter accepts the suggestion")
    tab.keyboard.press("Enter")
    _idle(tab)
    saved = store.item("ml-suggested", first)
    assert decode_set(saved.label) == suggested and saved.how == "suggestion"

    second = _on_screen(tab)
    offered = set(json.loads(screen.locator(".bd-card").get_attribute("data-suggested")))
    tab.keyboard.press("2")  # sport: switched on if the model left it off, off if it suggested it
    expect(screen.locator(".bd-choice")).to_contain_text("Enter saves:")
    tab.keyboard.press("Enter")
    _idle(tab)
    saved = store.item("ml-suggested", second)
    assert set(decode_set(saved.label)) == offered ^ {"sport"} and saved.how == "human"
    assert tab.locator("#label-alert").inner_text() == ""
    tab.close()
