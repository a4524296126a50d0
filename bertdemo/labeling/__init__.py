"""Labeling with the model in the loop: projects in SQLite, queues to label from, suspicious labels, retraining.

``store`` (the database: projects, items, soft locks), ``schema`` (its migrations), ``history`` (label changes
and undo), ``transfer`` (import and export), ``queues`` (which item next: uncertainty, diversity, random, in
order), ``suspicious`` (labels the model believes are wrong, from out-of-sample probabilities), ``retrain``
(a project's labels to a training run, and the before/after), ``simulate`` (the active-learning curve).
"""
