"""Site-adaptation benchmark: does adapting to an unseen site from its unlabelled recordings help there?

    python -m bench.adaptation              # ~6 min on 2 cores (3 split seeds): bench/results/adaptation.json
    python -m bench.adaptation --quick      # a smoke run on a tiny demo (~1 min)

The binary model is trained on the demo's other sites (the usual split by sensor, so it has an in-site
test split of its own). The held-out sites (``site02``, ``site05``: other sensors, other gains) are the
new network. Their sensors are dealt into two halves: the model adapts on the first half's recordings
without their labels (the project's ``adapt_model`` node: pseudo-labels, rehearsal, fine-tuning), and
is scored before and after on the second half, which adaptation never heard, and on the first half
(the paper's setting, scoring the very recordings it adapted on). The original in-site test F1 before
and after shows what was forgotten. File-level leak F1 with 95 % bootstrap intervals throughout.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")

from bench.cross_site import Scale, _store, demo_recordings  # noqa: E402  (after the tqdm switch)

OUTPUT = Path(__file__).resolve().parent / "results" / "adaptation.json"


FULL = Scale(360, 6, 8, ("site02*", "site05*"), epochs=12, patience=4)
QUICK = Scale(72, 4, 4, ("site02*",), epochs=2, patience=2)


def _subset(store, keep: np.ndarray):
    """The files where ``keep`` is true, as a store of their own (segments in memory)."""
    from leak_detection.features.row_reader import read_row_ranges
    from leak_detection.features.store import MelFeatureStore

    ids = np.flatnonzero(keep)
    starts, stops = store.file_offsets[ids], store.file_offsets[ids + 1]
    return MelFeatureStore(
        segments_mel=read_row_ranges(store.segments_mel, starts, stops),
        file_offsets=np.concatenate([[0], np.cumsum(stops - starts)]),
        labels=store.labels[ids],
        file_ids=[store.file_ids[i] for i in ids],
        groups=[store.groups[i] for i in ids],
        label_names=store.label_names,
        feature_config=store.feature_config,
        source_fingerprint=store.source_fingerprint,
        durations_s=store.durations_s[ids],
        sample_rates=store.sample_rates[ids],
    )


def _site(store, name: str):
    from leak_detection.adaptation.site import SiteRecordings

    return SiteRecordings(
        file_ids=list(store.file_ids),
        long_offsets=store.file_offsets,
        segments=np.asarray(store.segments_mel),
        classes=[""] * store.n_files,
        fingerprint=f"{store.source_fingerprint}:{name}",
    )


def _f1(state, meta, site, true_leak) -> Any:
    from leak_detection.adaptation.scoring import file_sample, score_files
    from leak_detection.model.meta import ModelMeta
    from leak_detection.model.network import model_from_state

    m = ModelMeta.from_dict(meta)
    scores = score_files(
        model_from_state(state, meta), site.segments, site.long_offsets, site.file_ids, m.class_names, 8192
    )
    return file_sample(scores, m.decision_rule(), true_leak)


def _compare(base, adapted, site, store, bootstrap) -> dict:
    from leak_detection.adaptation.scoring import before_and_after
    from leak_detection.labels import LEAK

    truth = np.array([store.label_names[label] == LEAK for label in store.labels])
    before, after = (_f1(state, meta, site, truth) for state, meta in (base, adapted))
    return before_and_after(before, after, list(store.groups), bootstrap)


SEEDS = (42, 43, 44)
"""Split seeds: each trains its own base model, so a change is seen on three models, not one."""
PARTS = ("new_site_never_heard", "new_site_adapted_on", "original_test")


def _project_settings() -> dict[str, Any]:
    """The adaptation block users run with (conf/base/parameters_adaptation.yml)."""
    import yaml

    conf = Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_adaptation.yml"
    return yaml.safe_load(conf.read_text())["binary"]["adaptation"]


def _one_split(store, new: np.ndarray, scale: Scale, seed: int, workdir: Path) -> dict:
    from leak_detection.metrics.uncertainty import BootstrapSettings
    from leak_detection.pipelines.adaptation.nodes import adapt_model
    from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
    from leak_detection.pipelines.feature_extraction.nodes import index_recordings
    from leak_detection.pipelines.training.nodes import train_model

    known = _subset(store, ~new)
    splits = {"ratios": {"train": 0.7, "validation": 0.2, "test": 0.1}, "seed": seed}
    targets = file_targets(index_recordings(known, splits), "binary")
    training = {"epochs": scale.epochs, "patience": scale.patience, "fresh_start": True}
    training["checkpoint_dir"] = str(workdir / f"seed{seed}" / "checkpoints")
    started = time.perf_counter()
    base = train_model(known, targets, summarise_classes(targets, "binary"), training, "binary")[:2]
    trained_s = time.perf_counter() - started
    new_groups = sorted(set(np.asarray(store.groups)[new]))
    first = np.isin(store.groups, new_groups[0::2]) & new
    heard, unheard = _subset(store, first), _subset(store, new & ~first)
    started = time.perf_counter()
    adapted = adapt_model(*base, _site(heard, "heard"), known, targets, _project_settings(), training)[:2]
    adapted_s = time.perf_counter() - started
    test = _subset(known, np.isin(known.file_ids, targets.loc[targets["split"] == "test", "file_id"]))
    sets = {"new_site_never_heard": unheard, "new_site_adapted_on": heard, "original_test": test}
    return {
        "new_site_groups": {"adapted_on": new_groups[0::2], "held_out_of_adaptation": new_groups[1::2]},
        "pseudo_labels": adapted[1]["adaptation"]["rounds"],
        **{key: _compare(base, adapted, _site(s, key), s, BootstrapSettings()) for key, s in sets.items()},
        "seconds": {"training": trained_s, "adaptation": adapted_s},
    }


def run(scale: Scale, recordings_dir: Path | None, seeds: tuple[int, ...] = SEEDS) -> dict:
    with tempfile.TemporaryDirectory(prefix="leak-adaptation-") as tmp:
        workdir = Path(tmp)
        recordings_dir = recordings_dir or demo_recordings(scale, workdir)
        store = _store(recordings_dir, "file_median", {})
        new = np.array([any(fnmatch.fnmatch(g, p) for p in scale.holdout_sites) for g in store.groups])
        by_seed = {}
        for seed in seeds:
            print(f"[adaptation] split seed {seed} ...", file=sys.stderr, flush=True)
            by_seed[seed] = _one_split(store, new, scale, seed, workdir)
    mean_change = {
        part: {
            m: float(np.mean([r[part]["metrics"][m]["change"] for r in by_seed.values()])) for m in ("f1", "roc_auc")
        }
        for part in PARTS
    }
    return {"scale": scale.__dict__, "settings": _project_settings(), "by_seed": by_seed, "mean_change": mean_change}


NAMES = {
    "new_site_never_heard": "new site, sensors adaptation never heard",
    "new_site_adapted_on": "new site, recordings adapted on (unlabelled)",
    "original_test": "original in-site test",
}


def _cell(value: float, interval: list[float] | None) -> str:
    return f"{value:+.3f}" if interval is None else f"{value:.3f} [{interval[0]:.2f}, {interval[1]:.2f}]"


def table(results: dict) -> str:
    lines = ["| split seed | files | n (leaks) | F1 before | F1 after | change |", "|---|---|---|---|---|---|"]
    for seed, row in results["by_seed"].items():
        for key, name in NAMES.items():
            r, f1 = row[key], row[key]["metrics"]["f1"]
            lines.append(
                f"| {seed} | {name} | {r['files']} ({r['leak_files']}) | {_cell(f1['before'], f1['before_interval'])} "
                f"| {_cell(f1['after'], f1['after_interval'])} | {_cell(f1['change'], f1['change_interval'])} |"
            )
    for key, name in NAMES.items():
        change = results["mean_change"][key]
        lines.append(f"| mean | {name} | | | | F1 {change['f1']:+.3f}, AUC {change['roc_auc']:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.adaptation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tiny demo and 2 epochs: a smoke run")
    parser.add_argument("--recordings", type=Path, help="an existing demo-like recordings folder")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="split seeds (one base model each)")
    args = parser.parse_args(argv)
    results = run(QUICK if args.quick else FULL, args.recordings, tuple(args.seeds))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(table(results))
    print(f"\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
