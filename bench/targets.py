"""The issue's performance targets, evaluated on a results dict.

A target names where its measured value lives in the results, so the JSON and the
printed table can never disagree with each other.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

_OPERATORS = {">=": operator.ge, "<=": operator.le}


@dataclass(frozen=True)
class Target:
    name: str
    path: tuple[str, ...]
    op: str
    bound: float
    unit: str
    detail: Callable[[dict], str]


def _get(results: dict, path: tuple[str, ...]):
    value = results
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _memory_cases(r: dict) -> str:
    cases = r["memory"]["cases"]
    return (
        ", ".join(
            f"{name} {c['peak_rss_mb']:,.0f} MB ({'streamed' if c['streamed'] else 'in memory'})"
            for name, c in cases.items()
        )
        + f"; budget {r['memory']['memory_budget_mb']:g} MB"
    )


TARGETS: tuple[Target, ...] = (
    Target(
        "training: fraction of roofline",
        ("training", "roofline_fraction"),
        ">=",
        0.5,
        "",
        lambda r: (
            f"{r['training']['project']['samples_per_second']:,.0f} of "
            f"{r['training']['roofline']['roofline_samples_per_second']:,.0f} samples/s "
            f"(peak matmul {r['training']['roofline']['peak_gflops']:.0f} GFLOP/s)"
        ),
    ),
    Target(
        "training: speed-up over h5py+DataLoader baseline",
        ("training", "speedup_vs_baseline"),
        ">=",
        3.0,
        "x",
        lambda r: (
            f"{r['training']['project']['samples_per_second']:,.0f} vs "
            f"{r['training']['baseline']['samples_per_second']:,.0f} samples/s"
        ),
    ),
    Target(
        "extraction: real-time factor",
        ("extraction", "project", "realtime_factor"),
        ">=",
        2000.0,
        "x",
        lambda r: (
            f"{r['extraction']['recordings']['audio_seconds']:,.0f} s of audio in "
            f"{r['extraction']['project']['seconds']:.1f} s"
        ),
    ),
    Target(
        "extraction: speed-up over per-segment numpy baseline",
        ("extraction", "speedup_vs_baseline"),
        ">=",
        3.0,
        "x",
        lambda r: (
            f"{r['extraction']['project']['seconds']:.1f} s vs {r['extraction']['baseline']['seconds']:.1f} s"
            f"; features match: {r['extraction']['parity_all_files']['ok']}"
        ),
    ),
    Target(
        "inference: segments/s (predict_segments, eval mode)",
        ("inference", "predict_segments_per_second"),
        ">=",
        100_000.0,
        "/s",
        lambda r: (
            f"compute ceiling {r['inference']['compute_ceiling']['ceiling_segments_per_second']:,.0f}/s "
            f"({r['inference']['compute_ceiling']['eval_flops_per_segment'] / 1e6:.2f} MFLOP at "
            f"{r['inference']['compute_ceiling']['peak_gflops']:.0f} GFLOP/s); bare model at batch "
            f"{r['inference']['batch_size']} {r['inference']['torch_segments_per_second']:,.0f}/s; ONNX Runtime "
            f"{r['inference']['onnx']['segments_per_second']:,.0f}/s; predict_recordings "
            f"{r['inference']['predict_recordings']['files_per_second']:.1f} files/s"
        ),
    ),
    Target("memory: peak RSS 10x / 1x store", ("memory", "peak_ratio"), "<=", 1.2, "x", _memory_cases),
    Target(
        "demo: kedro run --pipelines train_both",
        ("demo_run", "seconds"),
        "<=",
        300.0,
        "s",
        lambda r: r["demo_run"]["note"],
    ),
)


def evaluate(results: dict) -> list[dict]:
    """One row per target: measured value, bound and PASS / FAIL / SKIPPED / ERROR."""
    rows = []
    for target in TARGETS:
        section = results.get(target.path[0]) or {}
        value = _get(results, target.path)
        if section.get("skipped"):
            status, detail = "SKIPPED", section.get("reason", "")
        elif value is None:
            status, detail = "ERROR", section.get("error", "not measured")
        else:
            status = "PASS" if _OPERATORS[target.op](value, target.bound) else "FAIL"
            detail = target.detail(results)
        rows.append(
            {
                "target": target.name,
                "measured": value,
                "condition": f"{target.op} {target.bound:g}{target.unit}",
                "unit": target.unit,
                "status": status,
                "detail": detail.splitlines()[0] if detail else "",
            }
        )
    return rows
