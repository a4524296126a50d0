"""bertdemo: fine-tune, evaluate and explain BERT-family text classifiers (the engine; the app is bertdemo.ui)."""

__version__ = "0.1.0"
