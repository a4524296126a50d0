"""Masked-language-model pretraining on one's own texts: from scratch or continued, then fine-tuned like any model."""
from bertdemo.pretraining.config import OBJECTIVES, SCRATCH, SIZES, PretrainConfig
from bertdemo.pretraining.loop import pretrain

__all__ = ["OBJECTIVES", "SCRATCH", "SIZES", "PretrainConfig", "pretrain"]
