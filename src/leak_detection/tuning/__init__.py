"""Hyperparameter search over the ``training`` block with Optuna.

The search space is read from parameters (``search_space``), each trial trains with the
mode's own training function and is scored on validation file-level leak F1 (never test),
the study lives in a storage that resumes and can be shared (``study``), and the best
trial becomes a parameters file and a report (``report``).
"""
