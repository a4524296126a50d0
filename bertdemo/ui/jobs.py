"""The UI edge: one wrapper that turns engine errors into clean messages, and per-session Stop switches.

Queueing itself is gradio's job: the training event has ``concurrency_limit=1`` under one
``concurrency_id``, so a second Start (another tab, another user) waits in the queue instead of
colliding. What gradio cannot do is stop a running generator *gracefully*: ``cancels=[...]``
abandons it mid-step and the best checkpoint is never saved. So Stop sets a ``threading.Event``
that ``train(..., should_stop=...)`` polls once per step; the engine then saves and yields
``CancelledEvent``. Switches are keyed by gradio's per-tab ``session_hash`` and live in a
``StopSwitches`` object owned by the app (no module-level state).
"""
from __future__ import annotations

import functools
import inspect
import logging
import threading

import gradio as gr

log = logging.getLogger(__name__)


def at_edge(fn):
    """Run a handler; a ``ValueError`` (the engine's "what is wrong and how to fix it") becomes ``gr.Error``.

    Anything else is a bug: it is logged with its traceback on the server and shown briefly to the user.
    Works for plain functions and for generators (streaming handlers).
    """
    def convert(err: Exception) -> gr.Error:
        if isinstance(err, gr.Error):
            return err
        if isinstance(err, ValueError):
            return gr.Error(str(err), print_exception=False)
        log.exception("unexpected error in %s", fn.__name__)
        return gr.Error(f"Something went wrong ({type(err).__name__}: {err}). The details are in the server log.")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as err:
                raise convert(err) from err
        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            raise convert(err) from err
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
