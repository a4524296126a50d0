"""The upload field every tab uses: gradio's ``gr.File``, taking only files that were uploaded.

Two gaps of gradio 6 through the HTTP API: a server path sent as a plain string gets a blank "the upstream app
has raised an exception", and a file record naming any ``.csv`` on the server (or a URL) was read as if it had
been uploaded — gradio's own upload-folder check is skipped on that path. ``UploadFile`` refuses both with a
message, before anything is read.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData
from gradio.utils import get_upload_folder

NOT_A_FILE = ("This field takes an uploaded file, not a path on the server. From Python, send "
              "gradio_client.handle_file('your.csv'), which uploads it; in the page, choose or drop the file.")


class _Uploaded(FileData):
    @classmethod
    def model_validate(cls, obj, *args, **kwargs):
        if not isinstance(obj, dict):
            raise gr.Error(NOT_A_FILE)
        return FileData.model_validate(obj, *args, **kwargs)


class UploadFile(gr.File):
    """``gr.File`` for one uploaded file (the same arguments); ``also_from`` names folders whose files it may
    hold too (the bundled samples, which the sample picker puts in the Data tab's box)."""

    def __init__(self, *args, also_from: tuple[Path, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.data_model is FileData:
            self.data_model = _Uploaded
        self._also_from = tuple(Path(p).resolve() for p in also_from)

    async def async_move_resource_to_block_cache(self, url_or_file_path):
        # every file the box takes passes here before it is copied to gradio's cache, uploads included
        if url_or_file_path is not None and not self._may_take(str(url_or_file_path)):
            raise gr.Error(NOT_A_FILE)
        return await super().async_move_resource_to_block_cache(url_or_file_path)

    def _may_take(self, path: str) -> bool:
        if "://" in path:
            return False
        try:
            resolved = Path(path).resolve()
        except (OSError, RuntimeError):
            return False
        roots = (Path(get_upload_folder()).resolve(), *self._also_from)
        return any(resolved.is_relative_to(root) for root in roots)
