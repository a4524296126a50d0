"""The gradio app (the only package that imports gradio). ``build_app(workspace)`` builds it; ``app.py`` launches it."""
from bertdemo.ui.app import build_app, launch_app

__all__ = ["build_app", "launch_app"]
