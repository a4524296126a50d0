"""The UI edge: what users see of errors. Engine messages are shown escaped; anything else is a plain message with
a reference, and its text (paths, internals) goes to the server log only."""
from __future__ import annotations

import logging

import gradio as gr
import pytest

from bertdemo.ui.edge import at_edge


def test_engine_messages_are_shown_escaped():
    @at_edge
    def handler():
        raise ValueError("No column named '<img src=x onerror=alert(1)>'. Pick one of: 'text', 'label'.")

    with pytest.raises(gr.Error) as err:
        handler()
    message = err.value.message
    assert "<img" not in message and "&lt;img src=x onerror=alert(1)&gt;" in message
    assert "No column named '" in message  # quotes stay readable: the text is escaped for HTML content


def test_unexpected_errors_show_a_reference_and_log_the_details(caplog):
    @at_edge
    def handler():
        raise RuntimeError("cannot open /srv/secret/workspace/model.bin")

    with caplog.at_level(logging.ERROR), pytest.raises(gr.Error) as err:
        handler()
    message = err.value.message
    assert "/srv/secret" not in message and "RuntimeError" not in message and "reference" in message
    reference = message.split("reference ")[1].split(")")[0]
    assert any(reference in r.getMessage() and "/srv/secret" in (r.exc_text or "") for r in caplog.records)


def test_streaming_handlers_are_wrapped_too():
    @at_edge
    def handler():
        yield 1
        raise ValueError("bad <b>file</b>")

    stream = handler()
    assert next(stream) == 1
    with pytest.raises(gr.Error, match="bad &lt;b&gt;file&lt;/b&gt;"):
        next(stream)


def test_a_full_disk_is_said_plainly():
    import errno

    @at_edge
    def handler():
        raise OSError(errno.ENOSPC, "No space left on device", "/srv/ws/.tmp-run/model.safetensors")

    with pytest.raises(gr.Error) as err:
        handler()
    assert "disk is full" in err.value.message and "/srv" not in err.value.message
