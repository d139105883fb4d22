"""Performance benchmark suite of the leak-detection project (issue 6).

``python -m bench`` from the project root measures training, feature extraction,
inference, memory and the demo run, each against a baseline or a bound measured in
the same run on the same machine, and writes ``bench/results/latest.json``. See
``bench/README.md``.
"""

import os

# Every entry point (``python -m bench``, ``bench.train_child``, ``bench.profiles``) imports
# this package before the project: no telemetry prompt, and no progress bars in the
# measured output (tqdm reads its environment when it is imported).
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
