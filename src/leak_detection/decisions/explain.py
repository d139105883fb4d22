"""Why a recording was called what it was: one figure of its audio, its features and the model's votes.

The scores come from the same chain as predict (front end from the model's meta, ``SplitScores``,
``decide_files`` with the model's rule), so the figure shows the decision predict makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from leak_detection.audio.front_end import FrontEndConfig, recording_features, to_mono
from leak_detection.audio.recordings import read_recording
from leak_detection.audio.remote import location
from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.rules import decide_files, long_rule_scores
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.features.familiarity import recording_summary
from leak_detection.model.meta import ModelMeta
from leak_detection.model.network import model_from_state

WAVEFORM_POINTS = 4000
"""Points drawn for the waveform: an hour of audio at full rate would be a solid block anyway."""


@dataclass(frozen=True)
class Explanation:
    """One recording as the model saw it."""

    samples: np.ndarray
    sample_rate: int
    features: np.ndarray  # [n_long, n_short, n_mels, n_frames]
    long_scores: np.ndarray  # the rule's score per long segment
    long_class_probs: np.ndarray  # [n_long, n_classes]
    decision: str
    predicted_class: str
    unfamiliarity: float | None


def explain_recording(
    path: str | Path,
    state: dict[str, torch.Tensor],
    model_meta: dict,
    storage_options: dict[str, Any] | None = None,
) -> Explanation:
    """Score one recording (a local path or an fsspec URL) with a saved model exactly as predict would.

    ``storage_options`` are fsspec's options for a URL (the ``inbox`` catalog entry's credentials
    and ``fs_args``, as predict reads with); a store out of reach is ``StorageUnreachable``.
    """
    samples, rate = read_recording(location(path), storage_options or {})
    meta = ModelMeta.from_dict(model_meta, state)
    features = recording_features(samples, int(rate), FrontEndConfig.from_params(meta.feature_config))
    n_long, n_short, n_mels, n_frames = features.shape
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).reshape(-1, 1, n_mels, n_frames)
    predictions = predict_segments(model_from_state(state, model_meta), [(x, None, None)], meta.leak_output_idx)
    scores = SplitScores.from_predictions(predictions, np.array([0, n_long]), n_short, [str(path)], meta.class_names)
    rule = meta.decision_rule()
    decided = decide_files(scores, rule)
    familiarity = meta.familiarity_statistics()
    return Explanation(
        samples=to_mono(samples),
        sample_rate=int(rate),
        features=features,
        long_scores=long_rule_scores(rule, scores),
        long_class_probs=scores.long_class_probs,
        decision=str(decided.decision[0]),
        predicted_class=decided.predicted_class[0],
        unfamiliarity=float(familiarity.unfamiliarity(recording_summary(features))[0]) if familiarity else None,
    )


def explanation_figure(explained: Explanation, model_meta: dict, title: str) -> Figure:
    """Waveform, log-mel spectrogram, the vote's long-segment scores and the class probabilities over time."""
    meta = ModelMeta.from_dict(model_meta)
    hop = meta.seconds_per_long_hop or 1.0
    times = np.arange(len(explained.long_scores)) * hop
    # A bare Figure draws without pyplot, so no backend is chosen for the process that calls this.
    fig = Figure(figsize=(11, 10), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True)
    step = max(1, len(explained.samples) // WAVEFORM_POINTS)
    axes[0].plot(np.arange(0, len(explained.samples), step) / explained.sample_rate, explained.samples[::step], lw=0.5)
    axes[0].set_ylabel("waveform")
    mel = explained.features[:, 0, :, 0].T
    axes[1].imshow(mel, aspect="auto", origin="lower", extent=(0, times[-1] + hop, 0, mel.shape[0]), cmap="magma")
    axes[1].set_ylabel("log-mel band")
    _vote_panel(axes[2], times, explained, meta.threshold, meta.decision_score or "leak_probability")
    for k, name in enumerate(meta.class_names):
        axes[3].plot(times, explained.long_class_probs[:, k], label=name)
    axes[3].set_ylim(-0.03, 1.03)
    axes[3].set_ylabel("class probability")
    axes[3].set_xlabel("time (s)")
    axes[3].legend(loc="upper right", ncol=len(meta.class_names), fontsize="small")
    familiar = "" if explained.unfamiliarity is None else f"; unfamiliarity {explained.unfamiliarity:.2f}"
    fig.suptitle(f"{title}: {explained.decision} ({explained.predicted_class}){familiar}")
    return fig


def _vote_panel(axis, times: np.ndarray, explained: Explanation, threshold: float, score: str) -> None:
    over = explained.long_scores >= threshold
    axis.bar(
        times,
        explained.long_scores,
        width=(times[1] - times[0]) if len(times) > 1 else 0.25,
        align="edge",
        color=np.where(over, "tab:red", "tab:blue"),
    )
    axis.axhline(threshold, color="black", ls="--", lw=1)
    axis.set_ylim(0, 1)
    axis.set_ylabel(score.replace("_", " "))
    axis.set_title(
        f"{int(over.sum())} of {len(over)} long segments at or over {threshold:.2f}: the vote needs "
        f"{int(np.ceil(len(over) / 2))}",
        fontsize="medium",
    )
