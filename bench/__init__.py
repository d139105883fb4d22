"""Performance benchmark suite of the leak-detection project (issue 6).

``python -m bench`` from the project root measures training, feature extraction,
inference, memory and the demo run, each against a baseline or a bound measured in
the same run on the same machine, and writes ``bench/results/latest.json``. See
``bench/README.md``.
"""
