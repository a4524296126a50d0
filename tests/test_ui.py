"""The app driven through its API with gradio_client: every endpoint, on a tiny BERT so it runs in seconds.

One app per module (fixtures in conftest_ui.py); each ``Client`` is one browser session with its own
gr.State, like a tab.
"""
import base64
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file

from conftest_ui import SAMPLE, job_status, start_training, wait_job

pytest_plugins = ["tests.conftest_ui"]
pytestmark = pytest.mark.slow  # an app server

TINY = dict(epochs=1, batch_size=16, learning_rate=1e-3, max_length=64, max_train_rows=0, warmup_ratio=0.0,
            weight_decay=0.01, seed=1, validation_split=0.2, evals_per_epoch=2, patience=0,
            freeze_word_embeddings=False, min_steps=0)


def _train(client: Client, model: str, **overrides) -> str:
    """Start a training job in this session; its id."""
    return start_training(client, model=model, **{**TINY, **overrides})


def _plot(value) -> dict:
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


def _array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or plotly's typed-array form {"dtype", "bdata", "shape"}."""
    if isinstance(value, dict):
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")])
    return np.asarray(value)


@pytest.fixture(scope="module")
def trained(client, small_csv, ui_model_dir):
    """Load the small sample and train the tiny model to completion in this client's session."""
    client.predict(handle_file(small_csv), None, None, 64, api_name="/load_data")
    status = wait_job(client, _train(client, ui_model_dir))
    assert status["state"] == "done", status
    client.predict(status["result"]["run"], api_name="/load_run")  # an API script loads the run it trained
    return status


def test_load_data_shows_preview_columns_and_report(client, small_csv):
    preview, text_col, label_col, report, counts, lengths, dropped, conflicts, status = client.predict(
        handle_file(small_csv), None, None, 64, api_name="/load_data")
    assert preview["value"]["headers"] == ["text", "label"] and len(preview["value"]["data"]) == 20
    assert preview["column_widths"] == ["86%", "14%"]  # the text column takes what the label leaves: no side scroll
    assert text_col["value"] == "text" and label_col["value"] == "label"
    assert "120 kept" in report
    bars = _plot(counts)["data"][0]
    assert sorted(bars["x"]) == ["business", "science_tech", "sports", "world"] and bars["y"] == [30, 30, 30, 30]
    hist = _plot(lengths)
    assert hist["layout"]["shapes"][0]["x0"] == 64  # the max_length line
    assert "Data ready" in status


def test_choosing_columns_explicitly(client, tmp_path):
    path = tmp_path / "odd.tsv"
    path.write_text("label\tmessage\textra\n" + "".join(f"{'a' if i % 2 else 'b'}\tsome text {i}\tx\n"
                                                          for i in range(20)), encoding="utf-8")
    out = client.predict(handle_file(str(path)), "message", "label", 64, api_name="/load_data")
    assert out[1]["value"] == "message" and [c[0] for c in out[1]["choices"]] == ["label", "message", "extra"]
    assert "20 kept" in out[3]


def test_bad_file_shows_the_engine_message_not_a_traceback(client, tmp_path):
    path = tmp_path / "table.csv"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 64)  # what an .xlsx renamed to .csv looks like
    with pytest.raises(Exception) as err:
        client.predict(handle_file(str(path)), None, None, 64, api_name="/load_data")
    message = str(err.value)
    assert "Excel" in message and "Traceback" not in message


def test_a_training_job_records_every_event_and_saves_a_run(trained, client, app_url):
    status = trained
    assert status["state"] == "done" and status["progress"] == 1.0 and status["kind"] == "train"
    run = status["result"]["run"]
    assert "/" not in run  # the API names runs; it never shows the server's folders
    assert (Path(app_url[1]) / run / "model.safetensors").exists()
    seen = [e["event"] for e in status["events"]]
    assert seen[:2] == ["Preparing", "StartEvent"] and seen.count("EvalEvent") == 2 and seen[-1] == "DoneEvent"
    assert [e["seq"] for e in status["events"]] == list(range(1, len(seen) + 1))
    assert job_status(client, status["id"], since=3)["events"] == status["events"][3:]  # follow from where it was
    assert not (Path(app_url[1]) / ".jobs" / status["id"]).exists()  # its checkpoint folder went with it


def test_predict_probabilities_sum_to_one(client, trained):
    label = client.predict("The striker scored twice in the derby.", api_name="/predict")
    confidences = {c["label"]: c["confidence"] for c in label["confidences"]}
    assert set(confidences) == {"business", "science_tech", "sports", "world"}
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-4)
    assert label["label"] == max(confidences, key=confidences.get)


def test_attention_views(client, trained):
    layer, head, pieces, heat, all_heads, cls_row, rollout, note = client.predict(
        "Bertdemo scenes at the stadium", 6, 1, api_name="/attention")
    assert layer["maximum"] == 2 and layer["value"] == 2 and head["maximum"] == 2  # clipped to the tiny model
    tokens = [p["token"].strip() for p in pieces]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and any(t.startswith("##") for t in tokens)
    z = _array(_plot(heat)["data"][0]["z"])
    assert z.shape == (len(tokens), len(tokens))
    np.testing.assert_allclose(z.sum(axis=1), 1.0, atol=1e-3)
    assert len(_plot(all_heads)["data"]) == 2  # one panel per head
    assert _array(_plot(cls_row)["data"][0]["z"]).shape == (2, len(tokens))  # one row per layer
    assert "rollout" in _plot(rollout)["layout"]["title"]["text"].lower()
    assert f"{len(tokens)} word-pieces" in note


def test_long_input_is_truncated_with_a_note(client, trained):
    note = client.predict("word " * 1000, 1, 1, api_name="/attention")[-1]
    assert "longer than max_length" in note


def test_attributions_both_methods(client, trained):
    summary, ig, gxi = client.predict("Shares fell after the bank's results.", "business", api_name="/attributions")
    assert "business" in summary
    for spans in (ig, gxi):
        scores = [s["class_or_confidence"] for s in spans]
        assert spans[0]["token"].strip() == "[CLS]" and max(abs(s) for s in scores) == pytest.approx(1.0)


def test_every_explanation_is_scored_and_the_most_comprehensive_shown_first(client, trained):
    summary, method, highlight, table, curve = client.predict(
        "Shares <b>fell</b> after the bank's results.", "(predicted class)", "deletion", "words",
        api_name="/explanations")[:5]
    rows = table["data"]
    assert len(rows) == 5 and table["headers"][:3] == ["explanation", "comprehensiveness ↑", "sufficiency ↓"]
    comprehensiveness = [r[1] for r in rows]
    assert comprehensiveness == sorted(comprehensiveness, reverse=True)  # the table ranks them
    assert f"Shown first: **{rows[0][0]}**" in summary  # and the first is what is shown
    assert method["value"] in ("integrated_gradients", "grad_x_input", "occlusion", "attention_cls", "rollout_cls")
    words = [h["token"].strip() for h in highlight]
    assert "fell" in words and "[CLS]" not in words  # merged into words, special tokens dropped
    traces = _plot(curve)["data"]
    assert len(traces) == 6 and traces[-1]["name"] == "random (mean)"  # five methods and the random line
    masked = client.predict("Shares fell after the bank's results.", "(predicted class)", "mask", "word-pieces",
                            api_name="/explanations")
    assert "**mask**" in masked[0] and masked[2][0]["token"].strip() == "[CLS]"


def test_explanations_stream_integrated_gradients_first_then_the_scores(client, trained):
    job = client.submit("Shares fell after the bank's results.", "(predicted class)", "deletion", "words",
                        api_name="/explanations")
    final = job.result(timeout=300)
    streamed = job.outputs()
    assert len(streamed) >= 4  # IG; gradient×input and attention; occlusion; the scores
    summary, method, highlight, table = streamed[0][:4]
    assert "Drawn first: **integrated gradients** (provisional" in summary and "Shown first" not in summary
    assert "Still computing: gradient × input" in summary and "the faithfulness scores" in summary
    assert method["value"] == "integrated_gradients" and highlight
    assert len(table["data"]) == 5 and {row[1] for row in table["data"]} == {"computing…"}  # no score yet
    assert "Still computing: the faithfulness scores." in streamed[-2][0]
    assert "Shown first" in final[0] and "Still computing" not in final[0]
    assert all(isinstance(row[1], float) for row in final[3]["data"])


def test_compare_base_and_fine_tuned(client, trained):
    base_probs, tuned_probs, base, tuned = client.predict("The match ended in a draw.", api_name="/compare")
    for probs in (base_probs, tuned_probs):
        assert sum(c["confidence"] for c in probs["confidences"]) == pytest.approx(1.0, abs=1e-4)
    assert "Base model" in _plot(base)["layout"]["title"]["text"]
    assert _array(_plot(tuned)["data"][0]["z"]).shape[0] == 2


def test_batch_predict_writes_labels_and_probabilities(client, trained, tmp_path):
    import pandas as pd

    path = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["Goal in the last minute", "Profits rose 5%", "<script>alert(1)</script>"]}).to_csv(
        path, index=False)
    line = client.predict(handle_file(str(path)), api_name="/batch_predict")
    assert "starting" in line or "in the queue" in line  # answered at once: the prediction is a job
    job = client.predict(api_name="/list_jobs")[0]
    assert job["kind"] == "batch_predict" and job["lane"] == "predict"
    status = wait_job(client, job["id"])
    assert status["state"] == "done" and status["result"]["rows"] == 3 and "file" not in status["result"]
    download, preview = client.predict(job["id"], api_name="/batch_result")
    assert len(preview["data"]) == 3
    out = pd.read_csv(download)
    assert list(out.columns[:3]) == ["text", "predicted_label", "confidence"]
    probs = out[[c for c in out.columns if c.startswith("p_")]]
    assert probs.shape == (3, 4) and (probs.sum(axis=1) - 1).abs().max() < 1e-3
    assert out["text"].iloc[2] == "<script>alert(1)</script>"


def test_runs_list_zip_load_delete(client, trained, app_url):
    run_dir = trained["result"]["run"]
    runs = client.predict(api_name="/list_runs")
    assert [r["run_dir"] for r in runs] == [run_dir] and runs[0]["status"] == "complete"
    with zipfile.ZipFile(client.predict(run_dir, api_name="/zip_run")) as archive:
        assert f"{Path(run_dir).name}/model.safetensors" in archive.namelist()
    assert f"Model in use: **{Path(run_dir).name}**" in client.predict(Path(run_dir).name, api_name="/load_run")
    for outside in ("/etc", "../", str(Path(app_url[1]).parent)):
        with pytest.raises(Exception, match="not a run in this app's workspace"):
            client.predict(outside, api_name="/delete_run")
        with pytest.raises(Exception, match="not a run in this app's workspace"):
            client.predict(outside, api_name="/load_run")
    assert (Path(app_url[1]) / run_dir).exists()


def test_stop_mid_run_keeps_best_checkpoint(app_url, ui_model_dir):
    workspace = Path(app_url[1])
    other = Client(app_url[0], verbose=False)  # a second tab: its own data and its own Stop
    # the whole sample for 20 epochs (2,000 steps): a fast machine cannot finish before the Stop
    other.predict(handle_file(str(SAMPLE)), None, None, 64, api_name="/load_data")
    job_id = _train(other, ui_model_dir, epochs=20, batch_size=4, evals_per_epoch=4)
    # wait until an evaluation happened, so there is a checkpoint to keep
    wait_job(other, job_id, timeout=240, until=lambda s: any(e["event"] == "EvalEvent" for e in s["events"]))
    assert "Stopping" in other.predict(api_name="/stop")
    stopped_at = time.time()
    status = wait_job(other, job_id, timeout=120)
    event = status["events"][-1]
    assert status["state"] == "stopped" and event["event"] == "CancelledEvent" and event["run"]
    assert event["step"] < 20 * 100 and time.time() - stopped_at < 30
    assert json.loads((workspace / event["run"] / "run.json").read_text())["status"] == "stopped"
    assert "No training job of yours" in other.predict(api_name="/stop")  # nothing left to stop
    # delete it again (with the API, the confirmation step is the caller's)
    other.predict(event["run"], api_name="/delete_run")
    assert not (workspace / event["run"]).exists()


def test_two_sessions_train_at_once_queue_while_prediction_stays_live(client, trained, app_url, small_csv,
                                                                      ui_model_dir):
    clients = [Client(app_url[0], verbose=False) for _ in range(2)]
    for c in clients:
        c.predict(handle_file(small_csv), None, None, 64, api_name="/load_data")
    ids = [_train(c, ui_model_dir, seed=i, epochs=3) for i, c in enumerate(clients)]
    second = job_status(clients[1], ids[1])
    assert second["state"] == "queued" and second["ahead"] == 1 and "2nd in the queue" in second["line"]
    wait_job(clients[0], ids[0], until=lambda s: s["state"] == "running")
    started = time.perf_counter()  # another session predicts while a job trains
    label = client.predict("stocks rallied", api_name="/predict")
    latency = time.perf_counter() - started
    assert "confidences" in label and latency < 10
    finals = [wait_job(c, i) for c, i in zip(clients, ids)]
    assert all(f["state"] == "done" for f in finals)
    assert len({f["result"]["run"] for f in finals}) == 2
    # one trainer at a time: the job queued second started only once the first had finished
    assert finals[1]["started"] >= finals[0]["ended"] - 0.5


def test_the_data_report_counts_word_pieces_with_the_chosen_models_tokenizer(client, small_csv, tmp_path):
    """A model with its own (here: a tiny, character-level) vocabulary gets its own word-piece lengths."""
    import pandas as pd
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from bertdemo.training.scratch import build_scratch_tokenizer

    texts = pd.read_csv(small_csv)["text"].tolist()
    tokenizer = build_scratch_tokenizer(texts, vocab_size=70)  # barely more than the alphabet: words split apart
    torch.manual_seed(0)
    BertForSequenceClassification(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64)).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)

    def median_pieces(model: str) -> float:
        report = client.predict(handle_file(small_csv), None, None, 512, model, api_name="/load_data")[3]
        return float(report.split("Word-pieces per text: median ")[1].split(",")[0])

    own = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    assert median_pieces(str(tmp_path)) == float(np.median(own))
    assert median_pieces("default") < 0.5 * float(np.median(own))


def test_a_server_path_instead_of_an_uploaded_file_gets_a_message(client, app_url, small_csv):
    """API clients that send a path as a string are told what to send; a raw file record naming a server file or
    a URL is refused before anything is read (gradio_client would upload a local record, so raw HTTP here)."""
    import httpx

    for endpoint, args in (("/load_data", (None, None, 32)), ("/label_import", ("x",))):
        for raw in (str(small_csv), "/etc/passwd", "../../etc/passwd"):
            with pytest.raises(Exception, match="takes an uploaded file, not a path"):
                client.predict(raw, *args, api_name=endpoint)
    with httpx.Client(base_url=app_url[0], timeout=60) as http:
        for path in (str(small_csv), "http://127.0.0.1:9/rows.csv"):
            record = {"path": path, "meta": {"_type": "gradio.FileData"}}
            event = http.post("gradio_api/call/load_data", json={"data": [record, None, None, 32, "default"]})
            reply = http.get(f"gradio_api/call/load_data/{event.json()['event_id']}").text
            assert "event: error" in reply and "Data ready" not in reply, reply
