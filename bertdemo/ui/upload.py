"""The upload field every tab uses: gradio's ``gr.File``, taking only files that were uploaded.

Two gaps of gradio 6 through the HTTP API: a server path sent as a plain string gets a blank "the upstream app
has raised an exception", and a file record holding a URL is fetched (gradio checks local paths against its
upload folder, not URLs). ``upload_file`` refuses both with a message, before anything is read.

(A plain ``gr.File`` with two attributes replaced, not a subclass: gradio builds a component's page config from
its class's ``__init__`` signature, and a subclass with its own signature lost its label and elem_id.)
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder

from bertdemo.workspace import within

NOT_A_FILE = ("This field takes an uploaded file, not a path on the server. From Python, send "
              "gradio_client.handle_file('your.csv'), which uploads it; in the page, choose or drop the file.")


class _Uploaded(FileData):
    @classmethod
    def model_validate(cls, obj, *args, **kwargs):
        if not isinstance(obj, dict):
            raise gr.Error(NOT_A_FILE)
        return FileData.model_validate(obj, *args, **kwargs)


def upload_file(*, also_from: tuple[Path, ...] = (), **kwargs) -> gr.File:
    """``gr.File(**kwargs)`` for one uploaded file; ``also_from`` names folders whose files it may hold too (the
    bundled samples, which the sample picker puts in the Data tab's box)."""
    box = gr.File(**kwargs)
    box.data_model = _Uploaded
    roots = (Path(get_upload_folder()), *also_from)
    move = box.async_move_resource_to_block_cache

    async def guarded_move(url_or_file_path):
        # every file the box takes passes here before gradio copies it to its cache, uploads included
        if url_or_file_path is not None and not _inside(str(url_or_file_path), roots):
            raise gr.Error(NOT_A_FILE)
        return await move(url_or_file_path)

    box.async_move_resource_to_block_cache = guarded_move
    return box


def _inside(path: str, roots: tuple[Path, ...]) -> bool:
    return "://" not in path and within(path, roots)
