"""One validation pass during training: the weights as they are now, on the held-out rows, in inference mode."""
from __future__ import annotations

import torch

from bertdemo.fast.frozen_cache import kept_states
from bertdemo.metrics import classification_metrics
from bertdemo.multilabel_metrics import validation_summary
from bertdemo.training.loaders import model_inputs


def validate(session, labels: tuple[str, ...], *, keep: bool = False) -> dict:
    """Full validation metrics (``bertdemo.metrics``; multi-label: ``bertdemo.multilabel_metrics``, thresholds
    tuned on these rows) of ``session``'s model; leaves the model in eval mode. ``keep``: as ``validation_logits``."""
    s = session
    logits, y_true = validation_logits(s, keep=keep)
    if getattr(s, "multi_label", False):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y_true.float()).item()
        return validation_summary(y_true.numpy(), torch.sigmoid(logits).numpy(), labels,
                                  texts=s.val_frame["text"].tolist(), loss=loss)
    loss = torch.nn.functional.cross_entropy(logits, y_true).item()
    probs = torch.softmax(logits, dim=-1).numpy()
    return classification_metrics(y_true.numpy(), probs, labels, texts=s.val_frame["text"].tolist(), loss=loss)


@torch.inference_mode()
def validation_logits(session, *, keep: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, C) in fp32 on the CPU, class ids (N,) or multi-label 0/1 rows (N, C)) of the validation rows,
    in ``session.val_frame`` order.

    ``keep``: these rows will be validated again (after each epoch), so their frozen layers' output is kept like
    the training rows' (within the same budget) and passes that find it start above the frozen layers."""
    s = session
    s.model.eval()
    logits_all, labels_all = [], []
    cache = s.frozen_cache if keep else None
    for batch in s.val_loader:
        with s.precision.autocast(), kept_states(cache, batch):
            logits = s.model(**model_inputs(batch)).logits  # (B, C)
        logits, batch_labels = s.accelerator.gather_for_metrics((logits.float(), batch["labels"]))
        logits_all.append(logits.cpu())
        labels_all.append(batch_labels.cpu())
    return torch.cat(logits_all), torch.cat(labels_all)  # (N, C), (N,)
