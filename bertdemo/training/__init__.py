"""Fine-tuning: ``train(config, data, should_stop, workspace)`` yields typed events and saves the best run.

``loop`` is the loop itself; ``session`` builds what a run holds and takes one step; ``precision`` is the
numeric-precision strategy; ``loaders`` tokenizes and batches; ``checkpoint`` keeps the best weights;
``evaluation`` is one validation pass; ``scratch`` builds the from-zero model.
"""
from bertdemo.training.loop import train

__all__ = ["train"]
