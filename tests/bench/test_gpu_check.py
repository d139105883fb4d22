"""The GPU check script runs on any device; on a CPU its fp32 checks must pass too."""

import numpy as np
import torch

from bench.gpu_check import FIT_VARIANTS, separable_store, timed_fit, training_gradients_match
from bench.stores import train_and_validation


def test_gpu_check_fast_path_gradients_and_a_short_fit_on_the_cpu():
    assert training_gradients_match(torch.device("cpu"))["ok"]
    train, validation = train_and_validation(separable_store(24, 10, seed=0), 6, memory_budget_bytes=2**30)
    report = timed_fit(FIT_VARIANTS["fp32"], train, validation, torch.device("cpu"), epochs=1, batch=256)
    assert report["finite"] and len(report["samples_per_second_by_epoch"]) == 1
    assert 0.0 <= report["val_file_leak_f1"] <= 1.0
    assert np.isfinite(report["train_loss_by_epoch"]).all()
