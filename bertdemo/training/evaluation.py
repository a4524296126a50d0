"""One validation pass during training: the weights as they are now, on the held-out rows, in inference mode."""
from __future__ import annotations

import torch

from bertdemo.metrics import classification_metrics


def validate(session, labels: tuple[str, ...]) -> dict:
    """Full validation metrics (``bertdemo.metrics``) of ``session``'s model; leaves the model in eval mode."""
    s = session
    logits, y_true = validation_logits(s)
    loss = torch.nn.functional.cross_entropy(logits, y_true).item()
    probs = torch.softmax(logits, dim=-1).numpy()
    return classification_metrics(y_true.numpy(), probs, labels, texts=s.val_frame["text"].tolist(), loss=loss)


@torch.inference_mode()
def validation_logits(session) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (N, C) in fp32 on the CPU, class ids (N,)) of the validation rows, in ``session.val_frame`` order."""
    s = session
    s.model.eval()
    logits_all, labels_all = [], []
    for batch in s.val_loader:
        with s.precision.autocast():
            logits = s.model(**{k: v for k, v in batch.items() if k != "labels"}).logits  # (B, C)
        logits, batch_labels = s.accelerator.gather_for_metrics((logits.float(), batch["labels"]))
        logits_all.append(logits.cpu())
        labels_all.append(batch_labels.cpu())
    return torch.cat(logits_all), torch.cat(labels_all)  # (N, C), (N,)
