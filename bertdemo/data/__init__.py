"""Files and rows in, ``LabeledData`` out: reading tables, cleaning rows, the data report and the split.

``tables`` reads bytes into a DataFrame and finds the text and label columns; ``clean`` drops unusable rows;
``split`` holds out validation; ``report`` describes what was kept; ``labeled`` ties them together from rows
(``labeled_data``) or from a file (``load_data``).
"""
from bertdemo.data.clean import clean_rows, sort_labels
from bertdemo.data.labeled import (LabeledData, Origin, frames_data, labeled_data, load_data, load_heldout,
                                   measure_tokens)
from bertdemo.data.report import DataReport
from bertdemo.data.tables import LABEL_NAMES, TEXT_NAMES, guess_columns, guess_text_column, read_table

__all__ = ["DataReport", "LABEL_NAMES", "LabeledData", "Origin", "TEXT_NAMES", "clean_rows", "frames_data", "guess_columns", "guess_text_column",
           "labeled_data", "load_data", "load_heldout", "measure_tokens", "read_table", "sort_labels"]
