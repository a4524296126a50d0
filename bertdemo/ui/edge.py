"""The UI edge: one wrapper that turns engine errors into clean messages.

A ``ValueError`` is the engine saying what is wrong and how to fix it: the user sees its message (HTML-escaped:
gradio renders error text as HTML, and messages quote file names, columns and labels from user files). Anything
else is a bug: the user sees a plain message with a reference, and the exception with its traceback goes to the
server log only (exception texts carry paths and internals).

Long work is not here: it runs as jobs in the server's runner (``bertdemo.jobs``), whose Stop is a flag the job
reads, and pages follow jobs by id (``bertdemo.ui.jobs``).
"""
from __future__ import annotations

import errno
import functools
import html
import inspect
import logging
import uuid

import gradio as gr

log = logging.getLogger(__name__)


def user_error(err: Exception, where: str) -> gr.Error:
    """The ``gr.Error`` a user sees for ``err`` raised in the handler ``where``."""
    if isinstance(err, gr.Error):
        return err
    if isinstance(err, ValueError):
        return gr.Error(html.escape(str(err), quote=False), print_exception=False)
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        log.error("disk full in %s: %s", where, err)
        return gr.Error("The server's disk is full, so this could not be saved (nothing half-saved was kept). Tell "
                        "whoever runs this app; try again once there is space.", print_exception=False)
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


def refusing(on_refusal):
    """``at_edge`` for quick actions whose refusals are expected, such as a label answer to an item the server has
    moved past: instead of a ``gr.Error``, which gradio paints as a red "Error" badge over every output, the user
    gets one message — a warning toast, and ``on_refusal(message, arguments)``'s outputs (the view as it stands,
    saying why), where ``arguments`` are the handler's arguments by name. Unexpected errors are logged and
    worded as by ``user_error``."""
    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as err:
                message = user_error(err, fn.__qualname__).message
                gr.Warning(message)
                return on_refusal(message, signature.bind(*args, **kwargs).arguments)
        return wrapper
    return decorate


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
