"""Fitting a model: configuration, the loop, its state and checkpoints."""
