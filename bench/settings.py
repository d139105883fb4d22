"""Sizes of every measurement, for the full suite and for the quick smoke run.

One place decides how big each workload is, so that the quick mode used by the test
exercises exactly the code of the full run, only on smaller inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class BenchSettings:
    # Synthetic feature store for training: n_files x long_per_file long segments
    # (3 short segments each); the last validation_files files validate.
    store_files: int
    long_per_file: int
    validation_files: int
    memory_scale: int  # the "10x" store is this many times the 1x store
    memory_budget_mb: float  # the 1x split fits in it, the scaled one does not
    memory_max_batches: int  # both memory runs stop after this many batches
    batch_size: int
    baseline_batches: int  # timed batches of the h5py + DataLoader baseline
    baseline_warmup_batches: int
    matmul_sizes: tuple[int, ...]  # square sizes tried for the peak GFLOP/s
    matmul_repeats: int
    # Feature extraction over generated demo recordings.
    demo_recordings: int
    demo_min_s: float
    demo_max_s: float
    extraction_rounds: int  # project and baseline alternate; the fastest round of each counts
    # Inference.
    inference_batch_size: int
    inference_batches: int
    onnx_batches: int
    predict_files: int
    predict_file_s: float
    seed: int = 20251125

    @property
    def long_segments(self) -> int:
        return self.store_files * self.long_per_file

    def to_dict(self) -> dict:
        return asdict(self)


FULL = BenchSettings(
    store_files=1700,
    long_per_file=100,  # 170,000 long segments = 510,000 short; training split 501,000
    validation_files=30,
    memory_scale=10,
    memory_budget_mb=256,
    memory_max_batches=200,
    batch_size=1024,
    baseline_batches=40,
    baseline_warmup_batches=2,
    matmul_sizes=(2048, 3072, 4096),
    matmul_repeats=5,
    demo_recordings=360,
    demo_min_s=5.0,
    demo_max_s=30.0,  # the project's demo defaults
    extraction_rounds=3,
    inference_batch_size=8192,
    inference_batches=48,
    onnx_batches=24,
    predict_files=200,
    predict_file_s=10.0,
)

QUICK = BenchSettings(
    store_files=40,
    long_per_file=25,
    validation_files=4,
    memory_scale=10,
    memory_budget_mb=1,
    memory_max_batches=4,
    batch_size=1024,
    baseline_batches=2,
    baseline_warmup_batches=1,
    matmul_sizes=(512,),
    matmul_repeats=2,
    demo_recordings=6,
    demo_min_s=2.0,
    demo_max_s=4.0,
    extraction_rounds=1,
    inference_batch_size=8192,
    inference_batches=2,
    onnx_batches=1,
    predict_files=5,
    predict_file_s=10.0,
)
