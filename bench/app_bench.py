"""What a user of the app waits for: the Predict & Explain endpoints through Gradio, next to the engine alone.

Launches the app in this process on a free local port with the run's folder as workspace, loads the run in
a ``gradio_client`` session (as a browser tab does), then times, text by text and alternating, the engine's
``Predictor.predict`` and the app's ``/predict`` (typing), ``/attention`` (Explain: weights, rollout and the
figures) and ``/attributions`` (integrated gradients and gradient×input, highlighted), plus a one-line
Gradio app that echoes its input: Gradio's own round trip (HTTP, queue, JSON, the client), the floor under
every endpoint.

    python bench/app_bench.py --run workspace/RUN --data trec --out bench/out/app-trec.json
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import read_labeled, resolve_data, write_result  # noqa: E402
from predict_bench import alternate, texts_near  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def echo_app():
    """The smallest queued Gradio endpoint: what any event costs before bertdemo does anything."""
    import gradio as gr

    with gr.Blocks() as demo:
        text, out = gr.Textbox(), gr.Textbox()
        text.input(lambda t: t, text, out, api_name="echo")
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    return demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a saved run folder")
    parser.add_argument("--data", nargs="+", default=["trec"], help="where the short texts come from")
    parser.add_argument("--repeats", type=int, default=3, help="passes over the 20 short texts")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    from gradio_client import Client

    from bertdemo.inference.predict import get_predictor
    from bertdemo.ui import build_app, launch_app
    from bertdemo.ui.tabs.explain import PREDICTED
    from hw import machine_line

    run_dir = str(Path(args.run).resolve())
    demo = build_app(Path(run_dir).parent)
    launch_app(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    echo = echo_app()
    try:
        client = Client(demo.local_url, verbose=False)
        echo_client = Client(echo.local_url, verbose=False)
        client.predict(run_dir, api_name="/load_run")
        predictor = get_predictor(run_dir)  # the very predictor the app's handlers use (one cache)
        texts = texts_near(predictor.tokenizer, read_labeled(resolve_data(args.data)[1])[0], 12, 20)
        calls = {
            "gradio echo (floor)": lambda t: echo_client.predict(t, api_name="/echo"),
            "engine predict": predictor.predict,
            "app /predict": lambda t: client.predict(t, api_name="/predict"),
            "app /attention": lambda t: client.predict(t, 1, 1, api_name="/attention"),
            "app /attributions": lambda t: client.predict(t, PREDICTED, api_name="/attributions"),
        }
        timings = alternate(calls, texts, args.repeats)  # warm-up, then text by text, call by call
    finally:
        demo.close()
        echo.close()
    result = {"machine": machine_line(), "run": run_dir, "texts": len(texts), **timings}
    text = write_result(result, args.out, "app")
    print(text)


if __name__ == "__main__":
    main()
