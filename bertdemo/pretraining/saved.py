"""Pretrained models on disk: ``<workspace>/pretrained/<name>/``, a folder that ``transformers.pipeline
("fill-mask")`` and ``AutoModelForSequenceClassification`` both load, so ``train --model FOLDER`` fine-tunes from
it like from any model. Apart from the classifier runs (``bertdemo.runs``), which the Evaluate, Predict and Label
tabs list: a masked-LM has no classes to predict.

The folder holds the weights (safetensors), the tokenizer, ``pretrain.json`` (what ``list_pretrained`` reads,
written last: its presence marks a whole folder), ``events.jsonl`` and a model card (README.md).
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path

from bertdemo.runs import new_run_name
from bertdemo.workspace import Workspace, as_workspace

PRETRAINED_DIR = "pretrained"
INFO_FILE = "pretrain.json"


def pretrained_space(workspace: Workspace | str | Path | None = None) -> Workspace:
    return Workspace(as_workspace(workspace).root / PRETRAINED_DIR)


def save_pretrained(workspace: Workspace | str | Path | None, *, model, tokenizer, info: dict,
                    events: list[dict]) -> Path:
    """Write the folder atomically (staged, then one rename); returns its path."""
    space = pretrained_space(workspace)
    name = f"{new_run_name(info.get('source') or 'texts', 'pretrain-' + info.get('size', 'model'))}-{uuid.uuid4().hex[:6]}"
    with space.staging(name) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        with open(tmp / "events.jsonl", "w", encoding="utf-8") as handle:
            for event in events:
                handle.write(json.dumps(event, ensure_ascii=False, default=str) + "\n")
        info = {**info, "name": name}
        (tmp / "README.md").write_text(model_card(info), encoding="utf-8")
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return space.root / name


def model_card(info: dict) -> str:
    held = info.get("held_out", {})
    lines = [
        f"# {info.get('name', 'pretrained model')}", "",
        f"A masked-language model pretrained with bertdemo ({info.get('status', 'complete')}).", "",
        f"- start: {info.get('start')} · size: {info.get('shape')} · objective: {info.get('objective')}"
        + (" (whole-word masking)" if info.get("whole_word_mask") else ""),
        f"- texts: {info.get('texts'):,} from {info.get('source')} (fingerprint {info.get('fingerprint')}), "
        f"{info.get('held_out_texts'):,} of them held out",
        f"- steps: {info.get('steps'):,} of {info.get('batch_size')} sequences of up to {info.get('max_length')} "
        f"word-pieces, {info.get('tokens', 0):,} tokens, {info.get('seconds', 0):.0f} s on {info.get('device')} "
        f"({info.get('precision')})",
        f"- held-out masked-LM loss **{held.get('loss', float('nan')):.3f}**, masked-token accuracy "
        f"**{held.get('accuracy', 0):.1%}**" + (f", next-sentence accuracy {held['nsp_accuracy']:.1%}"
                                                 if held.get("nsp_accuracy") is not None else ""),
        "", "Load it with `transformers.pipeline(\"fill-mask\", model=FOLDER)`, or fine-tune it: "
        "`python -m bertdemo train DATA.csv --model FOLDER`.", ""]
    return "\n".join(lines)


def list_pretrained(workspace: Workspace | str | Path | None = None) -> list[dict]:
    """The whole pretrained folders, newest first, each its ``pretrain.json`` with "path"."""
    root = pretrained_space(workspace).root
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.name.startswith(".") or not (child / INFO_FILE).is_file():
            continue
        try:
            info = json.loads((child / INFO_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append({**info, "name": child.name, "path": str(child)})
    return sorted(found, key=lambda i: (i.get("created", ""), i["name"]), reverse=True)


def find_pretrained(name: str, workspace: Workspace | str | Path | None = None) -> Path:
    """The folder of a pretrained model named ``name`` (its folder name), inside the workspace only."""
    path = pretrained_space(workspace).child(name, what="pretrained model")
    if not (path / INFO_FILE).is_file():
        raise ValueError(f"{Path(name).name} is not a pretrained model in this workspace: pick one from the list.")
    return path
