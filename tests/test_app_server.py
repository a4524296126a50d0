"""The app as a newcomer starts it: ``python app.py`` in a fresh process, with a saved run in the workspace.

A fresh process matters here: the first prediction and the first explanation, fired at once, used to import
transformers lazily in two threads and fail with an ImportError. It also checks that the start-up sweep removes
what a crashed save left, and that the server binds to 127.0.0.1 only.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from gradio_client import Client

from conftest import ROOT
from conftest_ui import free_port

pytestmark = pytest.mark.slow  # a server process of its own


@pytest.fixture(scope="module")
def fresh_server(tmp_path_factory, tiny_run):
    tmp_path = tmp_path_factory.mktemp("server")
    workspace = tmp_path / "ws"
    shutil.copytree(tiny_run, workspace / tiny_run.name)
    (workspace / ".tmp-20260101-crashed-run-abcdef").mkdir()  # left by a save that was killed
    port = free_port()
    log = open(tmp_path / "server.log", "w+")
    proc = subprocess.Popen([sys.executable, "app.py", "--workspace", str(workspace), "--port", str(port)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.5)
    try:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        yield url, workspace, tiny_run.name, tmp_path / "server.log"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_first_prediction_and_explanation_at_once_on_a_fresh_server(fresh_server):
    url, workspace, run_name, log_path = fresh_server
    databases = ("labeling.", "jobs.", ".jobs")  # the labeling store, the job table, the jobs' folder
    assert [p.name for p in workspace.iterdir() if not p.name.startswith(databases)] == [run_name]  # swept
    clients = [Client(url, verbose=False) for _ in range(2)]
    for client in clients:
        client.predict(run_name, api_name="/load_run")
    results, errors = {}, []
    start = threading.Barrier(2)

    def call(name, fn):
        try:
            start.wait()
            results[name] = fn()
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(f"{name}: {err}")

    threads = [threading.Thread(target=call, args=("predict", lambda: clients[0].predict(
                   "the rain and the thunder", api_name="/predict"))),
               threading.Thread(target=call, args=("attention", lambda: clients[1].predict(
                   "the rain and the thunder", 1, 1, api_name="/attention")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    assert {c["label"] for c in results["predict"]["confidences"]} == {"food", "sport", "weather"}
    assert "word-pieces" in results["attention"][-1]
    log = log_path.read_text()
    assert "ImportError" not in log and "Traceback" not in log, log[-3000:]


def test_the_server_listens_on_loopback_only(fresh_server):
    """Read off the kernel's socket table (/proc/net/tcp*): every listening socket on the port is 127.0.0.1."""
    port = int(fresh_server[0].rsplit(":", 1)[1].strip("/"))
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in list(handle)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, port_hex = local.rsplit(":", 1)
                if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                    listening.append(address)
    assert listening == ["0100007F"]  # 127.0.0.1, little-endian hex; no 0.0.0.0, no IPv6 wildcard
