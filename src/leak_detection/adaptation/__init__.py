"""Adapting a trained model to a new site from its unlabelled recordings: pseudo-labels, rehearsal, fine-tuning."""
