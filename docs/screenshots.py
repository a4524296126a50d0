"""Retake the README's screenshots (docs/*.png) from the real app, in one command:

    .venv/bin/python docs/screenshots.py            # writes docs/data.png … docs/models.png
    .venv/bin/python docs/screenshots.py --out /tmp/shots --width 1920

Starts the app on a free port with a fresh workspace, and drives Debian's Chromium (/usr/bin/chromium) as a newcomer
would: the bundled English sample, the embedded default model trained with the defaults (a minute or two on a CPU),
Evaluate, a typed sentence explained, the scored attributions, a labeling project made from the sample with half of
its labels blanked, and the Models tab. Every picture is the full page at a window ``--width`` px wide. Offline: the
default model ships in a package.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "news_topics_en.csv"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
TRAIN_MS = 900_000  # the default model on the sample, on a slow shared CPU
WAIT_MS = 120_000
SETTLE_MS = 800  # plotly draws and gradio sizes its tables after the content arrives
SENTENCE = "The striker scored twice in the final minutes of the derby."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", default=str(REPO / "docs"), help="folder for the PNG files (default: docs/)")
    parser.add_argument("--width", type=int, default=1280, help="browser window width in px (default 1280)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"error: {CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    from bertdemo.ui import build_app, launch_app

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bertdemo-shots-"))
    demo = build_app(scratch / "workspace")
    launch_app(demo, port=_free_port(), prevent_thread_lock=True, quiet=True)
    try:
        walk(demo.local_url, out, args.width, scratch)
    finally:
        demo.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"screenshots in {out}")
    return 0


def walk(url: str, out: Path, width: int, scratch: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": width, "height": 900}).new_page()

        def shot(name: str) -> None:
            page.wait_for_timeout(SETTLE_MS)
            page.screenshot(path=str(out / f"{name}.png"), full_page=True)
            print(f"{name}.png")

        def tab(name: str) -> None:
            page.get_by_role("tab", name=name).click()

        page.goto(url)
        page.locator("#use-sample").click()
        expect(page.get_by_text("Data ready")).to_be_visible(timeout=WAIT_MS)
        shot("data")

        tab("2 · Train")  # the defaults, but no extra epochs for a small data set (minutes on a CPU without bf16)
        page.get_by_role("button", name="Advanced settings").click()
        page.get_by_label("At least this many steps").fill("0")
        page.locator("#start-train").click()
        expect(page.locator("#train-progress")).to_contain_text("done in", timeout=TRAIN_MS)
        page.get_by_role("button", name="Advanced settings").click()  # closed again: the plots in the picture
        shot("train")

        tab("3 · Evaluate")
        expect(page.locator("#eval-summary")).to_contain_text("macro-F1", timeout=WAIT_MS)
        shot("evaluate")

        tab("4 · Predict & Explain")
        box = page.locator("#predict-text textarea")
        box.click()
        box.press_sequentially(SENTENCE, delay=20)
        expect(page.locator("#probs")).to_contain_text("sports", timeout=WAIT_MS)
        page.locator("#explain-btn").click()
        expect(page.locator("#attention-plot .js-plotly-plot")).to_be_visible(timeout=WAIT_MS)
        shot("explain")
        page.get_by_role("tab", name="Attributions, scored").click()
        page.locator("#attr-btn").click()
        expect(page.locator("#attr-summary")).to_contain_text("Shown first", timeout=WAIT_MS)
        expect(page.locator("#deletion-curve .js-plotly-plot")).to_be_visible(timeout=WAIT_MS)
        shot("explain-scored")

        tab("5 · Label")
        page.locator("#label-import-file input[type=file]").set_input_files(str(_partly_labeled(scratch)))
        page.locator("#label-new-name input, #label-new-name textarea").first.fill("news")
        page.locator("#label-import").click()
        expect(page.locator("#label-import-report")).to_contain_text("new items", timeout=WAIT_MS)
        page.locator("#label-annotator input, #label-annotator textarea").first.fill("kim")  # Start asks for it
        page.locator("#label-strategy input").click()
        page.get_by_role("option", name="in order").click()
        page.locator("#label-start").click()
        expect(page.locator("#label-key-1")).to_be_visible(timeout=WAIT_MS)
        page.wait_for_function("() => !document.querySelector('#label-item-text.bd-pending')", timeout=WAIT_MS)
        shot("label")

        tab("6 · Models")
        expect(page.get_by_text("news-topics-en").first).to_be_visible(timeout=WAIT_MS)
        shot("models")
        browser.close()


def _partly_labeled(folder: Path) -> Path:
    """The sample with every other label blanked: a project that is half labeled."""
    import pandas as pd

    table = pd.read_csv(SAMPLE)
    table.loc[table.index % 2 == 1, "label"] = ""
    path = folder / "news_half_labeled.csv"
    table.to_csv(path, index=False)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    raise SystemExit(main())
