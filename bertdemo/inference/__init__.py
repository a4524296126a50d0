"""Using a saved run: ``predict`` (the cached, thread-safe ``Predictor``), ``batch_predict`` (a whole file to a
spreadsheet-safe CSV) and ``evaluate`` (scoring a held-out labeled file)."""
from bertdemo.inference.predict import Predictor, base_predictor, forget_predictor, get_predictor

__all__ = ["Predictor", "base_predictor", "forget_predictor", "get_predictor"]
