"""The UI edge: one wrapper that turns engine errors into clean messages, and per-session Stop switches.

A ``ValueError`` is the engine saying what is wrong and how to fix it: the user sees its message (HTML-escaped:
gradio renders error text as HTML, and messages quote file names, columns and labels from user files). Anything
else is a bug: the user sees a plain message with a reference, and the exception with its traceback goes to the
server log only (exception texts carry paths and internals).

Queueing itself is gradio's job: the training event has ``concurrency_limit=1`` under one ``concurrency_id``,
so a second Start (another tab, another user) waits in the queue instead of colliding. What gradio cannot do is
stop a running generator *gracefully*: ``cancels=[...]`` abandons it mid-step and the best checkpoint is never
saved. So Stop sets a ``threading.Event`` that ``train(..., should_stop=...)`` polls once per step; the engine then
saves and yields ``CancelledEvent``. Switches are keyed by gradio's per-tab ``session_hash`` and live in a
``StopSwitches`` object owned by the app (no module-level state).
"""
from __future__ import annotations

import functools
import html
import inspect
import logging
import threading
import uuid

import gradio as gr

log = logging.getLogger(__name__)


def user_error(err: Exception, where: str) -> gr.Error:
    """The ``gr.Error`` a user sees for ``err`` raised in the handler ``where``."""
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, ValueError):
        return gr.Error(html.escape(str(err), quote=False), print_exception=False)
    reference = uuid.uuid4().hex[:8]
    log.exception("unexpected error in %s (reference %s)", where, reference)
    return gr.Error(f"Something went wrong on the server (reference {reference}). Try again; if it keeps happening, "
                    "tell whoever runs this app: the details are in the server log.", print_exception=False)


def at_edge(fn):
    """Run a handler with ``user_error`` for whatever it raises. Works for plain functions and for generators
    (streaming handlers)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise user_error(err, fn.__qualname__) from err
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise user_error(err, fn.__qualname__) from err
    return wrapper


class StopSwitches:
    """One Stop switch per browser session; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._switches: dict[str, threading.Event] = {}

    def arm(self, session: str) -> threading.Event:
        """A fresh, un-pressed switch for the job this session is about to queue."""
        with self._lock:
            switch = self._switches[session] = threading.Event()
            return switch

    def get(self, session: str) -> threading.Event:
        """The armed switch (Stop may already be pressed while the job waited in the queue), or a new one."""
        with self._lock:
            return self._switches.setdefault(session, threading.Event())

    def press(self, session: str) -> bool:
        """Ask this session's job to stop; False if it has none."""
        with self._lock:
            switch = self._switches.get(session)
        if switch is None:
            return False
        switch.set()
        return True

    def release(self, session: str, switch: threading.Event) -> None:
        """Forget the switch once its job has ended (unless a newer job re-armed the session)."""
        with self._lock:
            if self._switches.get(session) is switch:
                del self._switches[session]
