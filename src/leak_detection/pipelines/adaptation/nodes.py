"""Adapt a trained model to a new site from its unlabelled recordings, and measure what it gained and forgot.

The method is the incremental learning of Ma et al. (2025): pseudo-labels from the model's most
confident long segments, fine-tuning on them beside a rehearsal of its own training data
(``leak_detection.adaptation``). The adapted model is a new version of the mode's model whose meta
names the base version; evaluation, the model card and predict use it like any other.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from leak_detection.adaptation.fine_tune_rounds import AdaptationRun, RehearsalData, adapt
from leak_detection.adaptation.report import adaptation_markdown
from leak_detection.adaptation.scoring import before_and_after, file_sample, score_files
from leak_detection.adaptation.settings import AdaptationSettings
from leak_detection.adaptation.site import SiteRecordings, read_site
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.audio.recordings import RecordingCollection
from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.rules import DecisionRule, choose_decision_rule
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.features.row_reader import read_row_ranges
from leak_detection.features.segment_batches import SegmentSource
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import LEAK, NOLEAK, resolve_label_mapping
from leak_detection.metrics.model_split import model_split_targets
from leak_detection.metrics.uncertainty import BootstrapSettings, FileSample
from leak_detection.model.meta import ModelMeta, fit_fields
from leak_detection.model.network import model_from_state

logger = logging.getLogger(__name__)


def _site_classes(recordings: RecordingCollection, meta: ModelMeta, label_mapping: dict[str, str]) -> dict[str, str]:
    """The labelled files' classes in the model's own names (binary: LEAK or NOLEAK)."""
    labelled = recordings.table[recordings.table["raw_label"] != ""]
    resolved = resolve_label_mapping(labelled["raw_label"], label_mapping or {})
    classes = {}
    for file_id, raw in zip(labelled["file_id"], labelled["raw_label"], strict=True):
        name = resolved[raw] if meta.mode != "binary" else (LEAK if resolved[raw] == LEAK else NOLEAK)
        if name not in meta.class_names:
            logger.warning(
                "%s: labelled %s, a class this %s model does not have; left unlabelled", file_id, name, meta.mode
            )
            continue
        classes[file_id] = name
    return classes


def read_new_site(
    recordings: RecordingCollection, model_meta: dict[str, Any], label_mapping: dict[str, str]
) -> tuple[SiteRecordings, pd.DataFrame]:
    """The new site's recordings through the model's own front end, and the files that could not be used."""
    meta = ModelMeta.from_dict(model_meta)
    problem = meta.unreproducible_front_end()
    if problem:
        raise ValueError(f"{meta.mode} model {meta.model_version}: cannot compute its features from audio: {problem}")
    classes = _site_classes(recordings, meta, label_mapping)
    site, rejected = read_site(recordings, classes, FrontEndConfig.from_params(meta.feature_config), workers="auto")
    logger.info(
        "%s: new site: %d recordings usable (%d labelled), %d rejected",
        meta.mode,
        len(site.file_ids),
        int(site.labelled.sum()),
        len(rejected),
    )
    return site, rejected


def _file_source(store: MelFeatureStore, targets: pd.DataFrame, budget: int) -> SegmentSource:
    return SegmentSource.for_split(store, targets.assign(split="validation"), "validation", budget)


def _validation_store(
    site: SiteRecordings, store: MelFeatureStore, validation: pd.DataFrame, class_names: list[str]
) -> tuple[MelFeatureStore, pd.DataFrame]:
    """The model's own validation files followed by the new site's labelled files, as one store."""
    position = {fid: i for i, fid in enumerate(store.file_ids)}
    files = np.array([position[f] for f in validation["file_id"]], dtype=np.int64)
    starts, stops = store.file_offsets[files], store.file_offsets[files + 1]
    own = read_row_ranges(store.segments_mel, starts, stops)
    dtype = np.promote_types(own.dtype, site.segments.dtype)
    file_ids = [*validation["file_id"], *site.file_ids]
    combined = MelFeatureStore(
        segments_mel=np.concatenate([own.astype(dtype, copy=False), site.segments.astype(dtype, copy=False)]),
        file_offsets=np.concatenate([[0], np.cumsum(stops - starts), (stops - starts).sum() + site.long_offsets[1:]]),
        labels=np.zeros(len(file_ids), dtype=np.int64),
        file_ids=file_ids,
        groups=file_ids,
        label_names=class_names,
    )
    targets = pd.DataFrame(
        {
            "file_id": file_ids,
            "label": [*validation["label"], *site.classes],
            "target": [*validation["target"], *(class_names.index(c) for c in site.classes)],
        }
    )
    return combined, targets


def _validation(
    site: SiteRecordings, meta: ModelMeta, own: pd.DataFrame, store: MelFeatureStore, budget: int
) -> tuple[SegmentSource, str]:
    """Early stopping and the decision rule on the model's own validation files, joined by the new site's
    labelled files when there are any: the model must keep what it knew while it learns the new site."""
    validation = own[own["split"] == "validation"]
    labelled = site.only(site.labelled)
    if not labelled.file_ids:
        return _file_source(store, validation, budget), f"the model's own {len(validation)} validation files"
    combined, targets = _validation_store(labelled, store, validation, meta.class_names)
    described = (
        f"the model's own {len(validation)} validation files and the new site's {len(labelled.file_ids)} labelled files"
    )
    return _file_source(combined, targets, budget), described


def _rule_on(network: torch.nn.Module, validation: SegmentSource, names: list[str], batch_size: int) -> DecisionRule:
    predictions = predict_segments(network, validation.ordered_blocks(), names.index(LEAK), batch_size=batch_size)
    file_ids = [validation.store.file_ids[i] for i in validation.file_indices]
    scores = SplitScores.from_predictions(predictions, validation.local_offsets, validation.n_short, file_ids, names)
    rule, _ = choose_decision_rule(scores, [names[t] for t in validation.file_targets])
    return rule


def _adapted_meta(
    base: ModelMeta, run: AdaptationRun, rule: DecisionRule, trainer_cfg: dict[str, Any], origin: dict[str, Any]
) -> ModelMeta:
    """The base model's meta with this model's weights, decision rule and fine-tuning, naming its origin."""
    return dataclasses.replace(
        base,
        **fit_fields(run.result),
        threshold=rule.threshold,
        decision_score=rule.score,
        trainer_cfg=trainer_cfg,
        model_version=None,
        extra={**base.extra, "adaptation": origin},
    )


def adapt_model(  # noqa: PLR0913
    model: dict[str, torch.Tensor],
    model_meta: dict[str, Any],
    site: SiteRecordings,
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    adaptation: dict[str, Any],
    training: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], pd.DataFrame]:
    """The adapted model (a new version of the mode's model), its meta and the fine-tuning epoch log."""
    settings = AdaptationSettings.from_params(adaptation)
    base = ModelMeta.from_dict(model_meta, model)
    network = model_from_state(model, model_meta)
    own, _ = model_split_targets(base, mel_features, file_targets, "use_model_split")
    train_ids = set((base.split_file_ids or {}).get("train", []))
    train_targets = file_targets[file_targets["file_id"].isin(train_ids)]
    if train_targets.empty:
        raise ValueError(
            f"{base.mode}: none of model {base.model_version}'s training files are in the current index, so nothing "
            "can be rehearsed; adapt a model trained on this project's current feature store"
        )
    runtime = settings.trainer_config(training, 0).runtime
    budget = int(runtime.memory_budget_mb * 2**20)
    validation, validated_on = _validation(site, base, own, mel_features, budget)
    logger.info("%s: adapting model %s; early stopping on %s", base.mode, base.model_version, validated_on)
    run = adapt(
        network,
        base.class_names,
        site,
        RehearsalData(mel_features, train_targets),
        validation,
        settings,
        training,
        f"{base.mode} adaptation: ",
    )
    rule = _rule_on(
        network.cpu(), validation, base.class_names, settings.trainer_config(training, 0).runtime.eval_batch_size
    )
    state = {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}
    origin = {
        "base_model_version": base.model_version,
        "base_state_dict_sha256": base.state_dict_sha256,
        "site_fingerprint": site.fingerprint,
        "site_files": len(site.file_ids),
        "site_labelled_files": int(site.labelled.sum()),
        "validated_on": validated_on,
        "rounds": run.rounds,
        "settings": settings.to_dict(),
    }
    trainer_cfg = settings.trainer_config(training, settings.rounds - 1).to_dict()
    meta = _adapted_meta(base, run, rule, trainer_cfg, origin)
    logger.info("%s: adapted model: decision rule chosen on %s: %s", base.mode, validated_on, rule.describe())
    return state, meta.to_dict(), pd.DataFrame(run.history)


def _samples(
    state: dict[str, torch.Tensor], meta_dict: dict[str, Any], segments, offsets, file_ids, true_leak, batch_size
) -> FileSample:
    meta = ModelMeta.from_dict(meta_dict)
    scores = score_files(model_from_state(state, meta_dict), segments, offsets, file_ids, meta.class_names, batch_size)
    return file_sample(scores, meta.decision_rule(), true_leak)


def adaptation_report(  # noqa: PLR0913
    model: dict[str, torch.Tensor],
    model_meta: dict[str, Any],
    adapted_model: dict[str, torch.Tensor],
    adapted_model_meta: dict[str, Any],
    site: SiteRecordings,
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    evaluation: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """Before and after, with intervals: on the new site's labelled files, and on the model's own test files
    (what adaptation made it forget)."""
    base = ModelMeta.from_dict(model_meta)
    bootstrap = BootstrapSettings.from_params(evaluation.get("bootstrap"))
    batch = int(evaluation["batch_size"])
    models = ((model, model_meta), (adapted_model, adapted_model_meta))
    own, _ = model_split_targets(base, mel_features, file_targets, "use_model_split")
    test = own[own["split"] == "test"]
    source = _file_source(mel_features, test, int(evaluation["memory_budget_mb"] * 2**20))
    segments = read_row_ranges(mel_features.segments_mel, *_rows_of(mel_features, source.file_indices))
    truth = (test["label"] == LEAK).to_numpy()
    before, after = (
        _samples(s, m, segments, source.local_offsets, list(test["file_id"]), truth, batch) for s, m in models
    )
    report = {
        "mode": base.mode,
        "base_model_version": base.model_version,
        "adapted_model_version": adapted_model_meta.get("model_version"),
        "adaptation": adapted_model_meta.get("adaptation"),
        "original_test": before_and_after(before, after, list(test["group"]), bootstrap),
        "new_site_labelled": None,
    }
    # Each model scores the whole site once; its labelled files are a selection of those scores.
    site_leak = np.array([c == LEAK for c in site.classes])
    on_site = [_samples(s, m, site.segments, site.long_offsets, site.file_ids, site_leak, batch) for s, m in models]
    if site.labelled.any():
        before, after = (_selected(sample, site.labelled) for sample in on_site)
        report["new_site_labelled"] = before_and_after(before, after, None, bootstrap)
    report["new_site_called_leak"] = {
        name: int(sample.predicted_leak.sum()) for name, sample in zip(("before", "after"), on_site, strict=True)
    }
    report["new_site_files"] = len(site.file_ids)
    return report, adaptation_markdown(report)


def _selected(sample: FileSample, keep: np.ndarray) -> FileSample:
    return FileSample(sample.true_leak[keep], sample.predicted_leak[keep], sample.score[keep])


def _rows_of(store: MelFeatureStore, file_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return store.file_offsets[file_indices], store.file_offsets[file_indices + 1]
