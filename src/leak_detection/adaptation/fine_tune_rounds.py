"""Rounds of adaptation: pseudo-label the new site with the current model, fine-tune, repeat.

Each round starts from the last round's best weights and trains with the project's own loop
(``training.loop.fit``): the same loss, checkpoints and resume as training, early stopping on the
validation files given.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch

from leak_detection.adaptation.fine_tune import LabelledSegments, rehearsal_sample
from leak_detection.adaptation.pseudo_labels import describe, select_pseudo_labels
from leak_detection.adaptation.scoring import score_files
from leak_detection.adaptation.settings import AdaptationSettings
from leak_detection.adaptation.site import SiteRecordings
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import LEAK
from leak_detection.training.loop import FitResult, fit
from leak_detection.training.loss import LeakLoss

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RehearsalData:
    """The model's original training files, a sample of which is mixed into every round."""

    store: MelFeatureStore
    train_targets: pd.DataFrame


@dataclass
class AdaptationRun:
    """What the rounds did: per round, the pseudo-labels and the fine-tuning; the last fit's result."""

    rounds: list[dict[str, Any]]
    history: list[dict[str, Any]]
    result: FitResult


def adapt(
    network: torch.nn.Module,
    class_names: list[str],
    site: SiteRecordings,
    rehearsal: RehearsalData,
    validation: SegmentSource,
    settings: AdaptationSettings,
    training: dict[str, Any],
    label: str,
) -> AdaptationRun:
    """Fine-tune ``network`` in place for ``settings.rounds`` rounds; its weights end as the last round's best."""
    leak_idx = class_names.index(LEAK)
    rounds, history, result = [], [], None
    for r in range(settings.rounds):
        config = settings.trainer_config(training, r)
        scores = score_files(
            network, site.segments, site.long_offsets, site.file_ids, class_names, config.runtime.eval_batch_size
        )
        pseudo = select_pseudo_labels(scores.long_class_probs, class_names, settings.pseudo_labels)
        logger.info("%sround %d: %s", label, r + 1, describe(pseudo))
        new = LabelledSegments(site.segments[pseudo.long_index], pseudo.classes, pseudo.classes == leak_idx)
        n_rehearsed = round(settings.rehearsal_ratio * len(new))
        mix = new
        if n_rehearsed:
            mix = new + rehearsal_sample(
                rehearsal.store, rehearsal.train_targets, n_rehearsed, leak_idx, settings.seed + r
            )
        weights, pos_weight = mix.class_weights(len(class_names))
        loss_fn = LeakLoss(weights, config.trajectory.leak_aux_weight, pos_weight, config.trajectory.label_smoothing)
        train = mix.source(class_names, int(config.runtime.memory_budget_mb * 2**20))
        fingerprint = _round_fingerprint(site, network, settings, r)
        result = fit(network, train, validation, loss_fn, leak_idx, config, fingerprint, label)
        network.load_state_dict(result.best_state)
        history += [{"round": r + 1, **row} for row in result.history]
        rounds.append(
            {
                "round": r + 1,
                "pseudo_labels": pseudo.per_class,
                "pseudo_labelled_segments": len(new),
                "rehearsal_segments": len(mix) - len(new),
                "best_epoch": result.best_epoch,
                "best_validation_file_leak_f1": result.best_file_leak_f1,
                "epochs_run": result.epochs_run,
            }
        )
    return AdaptationRun(rounds, history, result)


def _round_fingerprint(site: SiteRecordings, network: torch.nn.Module, settings: AdaptationSettings, r: int) -> str:
    """Names this round's data: the site, the weights it starts from and how segments are chosen."""
    digest = hashlib.sha256(f"{site.fingerprint}\0{r}\0{settings.to_dict()}".encode())
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
