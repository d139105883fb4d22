"""The printed summary: targets first, then the numbers behind them, as Markdown tables."""

from __future__ import annotations

from collections.abc import Callable


def _format(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(targets: list[dict]) -> str:
    rows = [
        [
            t["target"],
            _format(t["measured"]) + (t["unit"] if t["measured"] is not None else ""),
            t["condition"],
            f"**{t['status']}**",
            t["detail"],
        ]
        for t in targets
    ]
    return _table(["target", "measured", "goal", "result", "detail"], rows)


# (label, section, getter): every number worth reading, in the order of the sections.
MEASUREMENTS: list[tuple[str, str, Callable[[dict], object]]] = [
    ("project loop, samples/s (1 epoch of fit)", "training", lambda s: s["project"]["samples_per_second"]),
    ("baseline h5py+DataLoader, samples/s", "training", lambda s: s["baseline"]["samples_per_second"]),
    ("baseline share spent loading data", "training", lambda s: s["baseline"]["data_loading_share"]),
    ("peak fp32 matmul, GFLOP/s", "training", lambda s: s["roofline"]["peak_gflops"]),
    (
        "training FLOPs per sample (fast path, 3x fwd)",
        "training",
        lambda s: float(s["roofline"]["training_flops_per_sample"]),
    ),
    ("roofline, samples/s", "training", lambda s: s["roofline"]["roofline_samples_per_second"]),
    ("project extraction, x real time", "extraction", lambda s: s["project"]["realtime_factor"]),
    ("baseline extraction, x real time", "extraction", lambda s: s["baseline"]["realtime_factor"]),
    ("features project vs baseline, max abs diff dB", "extraction", lambda s: s["parity_all_files"]["max_abs_diff_db"]),
    ("predict_segments, segments/s", "inference", lambda s: s["predict_segments_per_second"]),
    ("bare model at the full batch, segments/s", "inference", lambda s: s["torch_segments_per_second"]),
    ("compute ceiling, segments/s", "inference", lambda s: s["compute_ceiling"]["ceiling_segments_per_second"]),
    ("ONNX Runtime, segments/s", "inference", lambda s: s["onnx"]["segments_per_second"]),
    ("predict_recordings, 10 s files/s", "inference", lambda s: s["predict_recordings"]["files_per_second"]),
    ("peak RSS 1x store, MB", "memory", lambda s: s["cases"]["1x"]["peak_rss_mb"]),
    ("peak RSS 10x store, MB", "memory", lambda s: s["cases"]["10x"]["peak_rss_mb"]),
    ("demo train_both, s", "demo_run", lambda s: s["seconds"]),
]


def measurements_table(results: dict) -> str:
    rows = []
    for label, section, get in MEASUREMENTS:
        data = results.get(section) or {}
        try:
            value = get(data)
        except (KeyError, TypeError):
            value = None
        others = (data.get("conditions") or {}).get("cores_busy_with_other_processes")
        rows.append([section, label, _format(value), _format(others)])
    return _table(["section", "measurement", "value", "other processes' cores during section"], rows)


def summary(results: dict) -> str:
    machine = results["machine"]
    head = (
        f"{machine['cpu_model']}, {machine['usable_cores']} cores, torch {machine['torch_version']} "
        f"({machine['torch_threads']} threads), numpy {machine['numpy_version']}, {machine['date_utc']}; "
        f"load average {machine['load_average_at_start']} -> {machine.get('load_average_at_end')}"
    )
    return "\n\n".join([head, targets_table(results["targets"]), measurements_table(results)])
