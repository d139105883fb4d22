"""leak-detection: acoustic water-leak detectors trained as a Kedro project."""

__version__ = "0.1.0"
