"""Export one mode's model to ONNX, prove it computes what PyTorch does, and describe it."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from leak_detection.features.segment_batches import SegmentSource
from leak_detection.features.store import MelFeatureStore
from leak_detection.model.meta import ModelMeta
from leak_detection.model.network import model_from_state
from leak_detection.model.onnx_export import export_onnx, parity

logger = logging.getLogger(__name__)


def _real_feature_batch(mel_features: MelFeatureStore, file_targets: pd.DataFrame, n_samples: int) -> np.ndarray:
    """Up to ``n_samples`` short segments of the test files, in store order."""
    test = SegmentSource.for_split(mel_features, file_targets, "test", memory_budget_bytes=0)
    blocks, n = [], 0
    for x, _, _ in test.ordered_blocks():
        blocks.append(x.numpy())
        n += x.shape[0]
        if n >= n_samples:
            break
    return np.concatenate(blocks)[:n_samples]


def export_onnx_model(
    model: dict[str, torch.Tensor],
    model_meta: dict[str, Any],
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    deployment: dict[str, Any],
) -> tuple[bytes, dict[str, Any]]:
    """ONNX bytes of the model, kept only when its outputs match PyTorch's within tolerance."""
    network = model_from_state(model, model_meta)
    meta = ModelMeta.from_dict(model_meta)
    _, n_short, n_mels, n_frames = mel_features.segments_mel.shape
    onnx_bytes = export_onnx(network, n_mels, n_frames)
    features = _real_feature_batch(mel_features, file_targets, int(deployment["parity_segments"]))
    report = parity(onnx_bytes, network, features)
    tolerance = float(deployment["parity_tolerance"])
    worst = max(report["max_abs_diff_logits"], report["max_abs_diff_leak_aux"])
    report.update({"tolerance": tolerance, "passed": worst < tolerance, "state_dict_sha256": meta.state_dict_sha256})
    if not report["passed"]:
        raise ValueError(
            f"{meta.mode}: ONNX export differs from PyTorch by {worst:.2e} on real features "
            f"(tolerance {tolerance:.0e}); the export is not kept"
        )
    logger.info(
        "%s: ONNX export matches PyTorch on %d test segments (largest difference %.1e, tolerance %.0e)",
        meta.mode,
        report["samples_compared"],
        worst,
        tolerance,
    )
    return onnx_bytes, report


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _with_interval(metrics: dict[str, Any], key: str) -> str:
    interval = metrics.get("intervals", {}).get(key)
    return _pct(metrics.get(key)) + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else "")


def _results_table(evaluation_metrics: dict[str, Any]) -> list[str]:
    keys = ("f1", "precision", "recall", "specificity", "roc_auc", "average_precision")
    lines = [
        "| split | files | leaks | " + " | ".join(keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for name in ("validation", "test"):
        m = evaluation_metrics[name]
        cells = [_with_interval(m, k) for k in keys]
        lines.append(f"| {name} | {m['n_files']} | {m['n_leak_files']} | " + " | ".join(cells) + " |")
    test, boot = evaluation_metrics["test"], evaluation_metrics["bootstrap"]
    lines += [
        "",
        f"Test figures in brackets are {boot['confidence']:.0%} bootstrap intervals ({boot['resamples']} resamples "
        f"by {boot['unit']}, stratified by class): read the interval, not the point, when comparing models. "
        "`roc_auc` and `average_precision` rank files by their vote score and do not depend on the threshold.",
    ]
    if "macro_f1" in test:
        lines.append(f"Test macro F1 over the classes present: {_with_interval(test, 'macro_f1')}.")
    return lines


def _front_end_limit(meta: ModelMeta) -> str:
    config = meta.feature_config
    problem = meta.unreproducible_front_end()
    if problem:
        return (
            f"- Trained on a store whose features this project cannot compute from audio: {problem}. "
            "`leak-detect predict` cannot serve this model; score new data with features made by that same "
            "front end, or train on recordings."
        )
    return (
        f"- Recordings shorter than {config['long_segment'] / config['sample_rate']:.2f} s are refused; "
        f"everything is resampled to {config['sample_rate']} Hz, so energy above "
        f"{config['sample_rate'] // 2} Hz is not seen."
    )


def _data_section(meta: ModelMeta, class_summary: dict[str, Any]) -> list[str]:
    per_class = meta.train_files_per_class
    if per_class is None:  # older metas: the class summary of the current index
        per_class = class_summary["files_per_class"]["train"]
    return [
        "## Data",
        "",
        f"- Dataset fingerprint: `{meta.dataset_fingerprint}`",
        f"- Files per split: {meta.split_files} (split SHA-256 `{meta.split_sha256}`; the file ids are in "
        f"`model_meta.json`); training files per class: {per_class}",
        "- Splits are by group (site / sensor / source recording), stratified by class. Evaluation scores only "
        "this model's own validation and test files.",
        "",
    ]


def _use_and_limits(meta: ModelMeta, n_test_leaks: int) -> list[str]:
    return [
        "## Intended use",
        "",
        "Screening acoustic recordings of pressurised water pipes (hydrophones, accelerometers, contact "
        "microphones) for leak noise, to rank sites for a field visit. A LEAK call is a reason to listen "
        "and survey, not a confirmed leak.",
        "",
        "## Known limits",
        "",
        _front_end_limit(meta),
        "- The model has only seen the sites, sensors and pipe materials of its training data; on a new "
        "network, check a sample of its calls before trusting its rates. Per-site results are in "
        "`metrics.json` (`test_by_group`).",
        "- Figures from a small test split move a lot with one file (see the intervals); a perfect test "
        f"figure has a collapsed interval: with {n_test_leaks} test leaks and none missed, the true "
        f"recall may still be as low as about {max(0.0, 1 - 3 / max(n_test_leaks, 1)):.2f}. A model "
        "trained on the built-in synthetic demo recordings says nothing about real pipes.",
        "- Continuous loud noise in the leak band (some pumps, heavy traffic) can be called LEAK; see "
        "`test_leak_calls_by_true_class` in `metrics.json`.",
        "",
    ]


def _origin(meta: ModelMeta) -> list[str]:
    """How the model came to be: trained, or adapted to a new site from another version."""
    adaptation = meta.extra.get("adaptation")
    if not adaptation:
        return ["- Origin: trained on the data below"]
    return [
        f"- Origin: adapted to a new site from model `{adaptation.get('base_model_version')}` with pseudo-labels "
        f"of {adaptation.get('site_files')} unlabelled recordings ({adaptation.get('site_labelled_files')} labelled; "
        f"site fingerprint `{adaptation.get('site_fingerprint')}`), in {len(adaptation.get('rounds', []))} round(s); "
        "before and after in `data/08_reporting/<mode>/adaptation/adaptation.md`"
    ]


def _check_same_model(meta: ModelMeta, evaluation_metrics: dict[str, Any]) -> None:
    scored = evaluation_metrics.get("model_state_dict_sha256")
    if scored is not None and scored != meta.state_dict_sha256:
        raise ValueError(
            f"{meta.mode}: metrics.json scored other weights (version "
            f"{evaluation_metrics.get('model_version')}) than model {meta.model_version}; evaluate this "
            "model first: `kedro run --pipelines evaluation` with the same --load-versions"
        )


def model_card(
    model_meta: dict[str, Any],
    evaluation_metrics: dict[str, Any],
    class_summary: dict[str, Any],
    onnx_parity: dict[str, Any],
) -> str:
    """A Markdown model card written beside the export."""
    meta = ModelMeta.from_dict(model_meta)
    mode = meta.mode
    _check_same_model(meta, evaluation_metrics)
    test = evaluation_metrics["test"]
    config = meta.feature_config
    classes = ", ".join(f"{i} = {name}" for i, name in enumerate(meta.class_names))
    lines = [
        f"# Model card: LeakCNNMulti, {mode} mode",
        "",
        f"- Version: `{meta.model_version or 'unknown'}`; weights SHA-256 `{meta.state_dict_sha256}`",
        *_origin(meta),
        f"- Outputs: {classes}; LEAK is output {meta.leak_output_idx}"
        + ("; plus a leak-vs-rest logit (`leak_aux_logit`)" if mode == "multiclass" else ""),
        f"- Parameters: {meta.param_count:,}; input `[batch, 1, {config.get('n_mels', 'n_mels')}, 1]` log-mel "
        "(normalisation inside the model)",
        f"- Decision rule (chosen on validation): {evaluation_metrics['decision_rule']['description']}. "
        "The leak probability of a segment is "
        + ("`softmax[LEAK]`" if mode == "binary" else "`0.5*softmax[LEAK] + 0.5*sigmoid(aux)`")
        + ", averaged over the 3 short segments of each long segment; a file's class is LEAK exactly when "
        "its vote says LEAK",
        "",
        "## Feature configuration",
        "",
        "| key | value |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in config.items()],
        "",
        *_data_section(meta, class_summary),
        f"## Results (file level, model `{evaluation_metrics.get('model_version')}`)",
        "",
        *_results_table(evaluation_metrics),
        "",
        f"Long-segment leak F1 on test: {_pct(test.get('long_segment_leak_f1'))}. Training: best epoch "
        f"{meta.best_epoch} of {meta.epochs_run}, {meta.training_seconds:.0f} s on {meta.device}.",
        "",
        "## ONNX export",
        "",
        f"`model.onnx` (opset 17, dynamic batch axis, input `log_mel`) matches PyTorch on "
        f"{onnx_parity['samples_compared']} real test segments: largest absolute difference "
        f"{onnx_parity['max_abs_diff_logits']:.1e} on logits"
        + (f", {onnx_parity['max_abs_diff_leak_aux']:.1e} on the leak logit" if mode == "multiclass" else "")
        + f" (tolerance {onnx_parity['tolerance']:.0e}).",
        "",
        *_use_and_limits(meta, test["n_leak_files"]),
    ]
    return "\n".join(lines)
