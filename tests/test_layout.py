"""The house rules a reader relies on to find things, checked on the source: only the UI imports gradio and only
the plot builders import plotly, lower layers never import higher ones, no module imports a package it lives in,
functions stay short, and the README's layout tree names every folder and module."""
from __future__ import annotations

import ast
import re

from conftest import ROOT

PACKAGE = ROOT / "bertdemo"
# Each layer may import its own and the layers before it, never a later one.
LAYERS = [
    {"config", "events", "device", "workspace", "metrics", "multilabel_metrics", "plots", "fast", "spreadsheet", "limits", "seeding"},
    {"runs", "models"},
    {"data"},
    {"training", "inference"},
    {"pretraining"},
    {"explain"},
    {"labeling"},
    {"lesson"},
    {"jobs"},
    {"cli", "cli_common", "cli_labeling", "cli_jobs", "cli_pretrain", "cli_lesson", "ui", "__main__"},
]
MAX_FUNCTION_LINES = 60
LONG_FUNCTIONS: dict[str, str] = {}  # "module:function" -> why it may be longer (none today)


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield path, name, ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "bertdemo":
            found.update(f"bertdemo.{alias.name}" for alias in node.names)  # from bertdemo import runs
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _layer(component: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if component in names)


def test_only_the_ui_imports_gradio_and_only_plots_imports_plotly():
    for path, name, tree in _modules():
        roots = {module.split(".")[0] for module in _imports(tree)}
        if not name.startswith("bertdemo.ui"):
            assert "gradio" not in roots, f"{path} imports gradio"
        if name != "bertdemo.plots":
            assert "plotly" not in roots, f"{path} imports plotly"


def test_no_module_imports_a_later_layer_or_a_package_it_lives_in():
    for path, name, tree in _modules():
        parts = name.split(".")
        if len(parts) < 2:
            continue
        own = _layer(parts[1])
        ancestors = {".".join(parts[:i]) for i in range(2, len(parts))}  # bertdemo itself is everyone's
        for module in _imports(tree):
            if not module.startswith("bertdemo."):
                continue
            assert module not in ancestors, f"{name} imports {module}, a package it lives in"
            assert _layer(module.split(".")[1]) <= own, f"{name} (layer {own}) imports {module}, a later layer"


def test_functions_are_short():
    for path, name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                key = f"{name}:{node.name}"
                assert lines <= MAX_FUNCTION_LINES or key in LONG_FUNCTIONS, f"{key} has {lines} lines"


def test_readme_layout_tree_names_every_folder_and_module():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tree = readme.split("## Layout", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"([\w.]+/?)\s", tree))
    for path in sorted(PACKAGE.rglob("*")):
        if "__pycache__" in path.parts or path.name == "__init__.py" or path.suffix not in ("", ".py"):
            continue
        shown = path.name + ("/" if path.is_dir() else "")
        assert shown in named, f"README's layout tree does not name {path.relative_to(ROOT)}"
    existing = {p.name for p in ROOT.iterdir()} | {p.name for p in PACKAGE.rglob("*")}
    for entry in named:
        if entry.endswith(".py") or entry.endswith("/"):
            assert entry.rstrip("/") in existing, f"README's layout tree names {entry}, which does not exist"
