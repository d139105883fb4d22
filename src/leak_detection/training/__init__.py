"""Fitting a model.

``config`` (the ``training`` parameters, by concern), ``loss``, ``schedule`` (AdamW and
its warm-up and cosine), ``runtime`` (device, precision, speed switches), ``epoch`` (one
pass over the training split), ``state`` (what a checkpoint holds), ``checkpoints`` (the
folder and the resume rule) and ``loop`` (``fit``: epochs, validation, early stopping).
"""
