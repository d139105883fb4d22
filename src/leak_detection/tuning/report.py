"""What a study found: a JSON report, its Markdown reading, two figures and the tuned parameters file.

The best trial is set beside the trial of the mode's own settings (enqueued first in a new
study), scored the same way, so the gain is measured rather than assumed.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any

import optuna
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.importance import FanovaImportanceEvaluator, get_param_importances
from optuna.trial import FrozenTrial, TrialState

from leak_detection.tuning.objective import TRIAL_FACTS
from leak_detection.tuning.settings import TuningSettings
from leak_detection.tuning.study import DEFAULT_SETTINGS_ATTR, describe_storage

SCORE_TEXT = "validation file-level leak F1 of each trial's best epoch (the test files are never used)"
TUNED_ENV = "tuned"
TRAIN_COMMAND = f"kedro run --pipelines train_both --env {TUNED_ENV}"
MIN_TRIALS_FOR_IMPORTANCE = 5
"""fANOVA fits a forest to the finished trials; on fewer than this it ranks settings at random."""


def tuned_parameters_path(mode: str) -> str:
    return f"conf/{TUNED_ENV}/parameters_tuned_{mode}.yml"


def _finished(study: optuna.Study) -> list[FrozenTrial]:
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if not finished:
        states = dict(Counter(t.state.name for t in study.trials))
        raise ValueError(f"study {study.study_name!r} has no finished trial yet ({states}): nothing to report")
    return finished


def _default_trial(study: optuna.Study) -> FrozenTrial | None:
    return next((t for t in study.trials if t.user_attrs.get(DEFAULT_SETTINGS_ATTR)), None)


def trial_summary(trial: FrozenTrial) -> dict[str, Any]:
    seconds = trial.duration.total_seconds() if trial.duration is not None else None
    facts = {key: trial.user_attrs[key] for key in TRIAL_FACTS if key in trial.user_attrs}
    summary = {"number": trial.number, "state": trial.state.name, "value": trial.value, "params": trial.params}
    return {**summary, "seconds": seconds, **facts}


def parameter_importances(study: optuna.Study, seed: int) -> tuple[dict[str, float], str | None]:
    """fANOVA importances of the searched settings, or why there are none yet."""
    finished = _finished(study)
    if len(finished) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}, f"needs at least {MIN_TRIALS_FOR_IMPORTANCE} finished trials ({len(finished)} so far)"
    try:
        importances = get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=seed))
    except (ValueError, RuntimeError) as exc:
        return {}, f"not computable yet: {exc}"
    return {name: float(value) for name, value in importances.items()}, None


def _mean_seconds(trials: list[FrozenTrial], state: TrialState) -> float | None:
    seconds = [t.duration.total_seconds() for t in trials if t.state == state and t.duration is not None]
    return statistics.fmean(seconds) if seconds else None


def study_report(study: optuna.Study, settings: TuningSettings, mode: str) -> dict[str, Any]:
    """The study as JSON: trial counts and times, the best trial beside the default settings', importances."""
    finished = _finished(study)
    best, default = study.best_trial, _default_trial(study)
    importances, importance_note = parameter_importances(study, settings.sampler_seed)
    compared = default is not None and default.state == TrialState.COMPLETE
    return {
        "mode": mode,
        "study_name": study.study_name,
        "storage": describe_storage(study._storage),  # noqa: SLF001 - Optuna has no public accessor
        "score": SCORE_TEXT,
        "trials": dict(Counter(t.state.name for t in study.trials)),
        "seconds_per_trial": {
            "finished": _mean_seconds(study.trials, TrialState.COMPLETE),
            "pruned": _mean_seconds(study.trials, TrialState.PRUNED),
        },
        "best_trial": trial_summary(best),
        "default_settings_trial": trial_summary(default) if default is not None else None,
        "gain_over_default_settings": best.value - default.value if compared else None,
        "parameter_importance": importances,
        "parameter_importance_note": importance_note,
        "search_space": settings.to_dict()["search_space"],
        "fixed_training": settings.training,
        "ranking": [trial_summary(t) for t in sorted(finished, key=lambda t: -t.value)[:10]],
        "tuned_parameters": tuned_parameters_path(mode),
        "train_with_them": TRAIN_COMMAND,
    }


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "–" if value is None else str(value)


def _settings_table(report: dict[str, Any]) -> list[str]:
    default = (report["default_settings_trial"] or {}).get("params", {})
    lines = ["| setting | best trial | default settings | searched over | importance |", "|---|---|---|---|---|"]
    for name, space in report["search_space"].items():
        over = f"{list(space['choices'])}" if "choices" in space else f"{space['low']:g} to {space['high']:g}"
        over += " (log)" if space.get("log") else ""
        importance = report["parameter_importance"].get(name)
        lines.append(
            f"| {name} | {_number(report['best_trial']['params'].get(name))} | {_number(default.get(name))} "
            f"| {over} | {_number(importance)} |"
        )
    return lines


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a page a person reads."""
    best, default = report["best_trial"], report["default_settings_trial"]
    times = report["seconds_per_trial"]
    against = (
        f" against {default['value']:.3f} for the default settings (trial {default['number']})"
        if default is not None and default["value"] is not None
        else ""
    )
    lines = [
        f"# Tuning: {report['mode']}, study `{report['study_name']}`",
        "",
        f"Score: {report['score']}. Study store: `{report['storage']}`.",
        f"Trials: {', '.join(f'{n} {s.lower()}' for s, n in sorted(report['trials'].items()))}; "
        f"seconds per trial: {_number(times['finished'])} finished, {_number(times['pruned'])} pruned.",
        "",
        f"**Best: trial {best['number']}, validation F1 {best['value']:.3f}**{against}. "
        "A validation set of a few dozen files moves by one file at a time: judge the tuned model by its test "
        "F1 and interval after training, not by this gain alone.",
        "",
        *_settings_table(report),
        "",
        f"Train with them: `{report['train_with_them']}` (reads `{report['tuned_parameters']}`).",
    ]
    if report["parameter_importance_note"]:
        lines += ["", f"Parameter importance: {report['parameter_importance_note']}."]
    lines += ["", "## Ranking", "", "| trial | validation F1 | epochs | seconds | settings |", "|---|---|---|---|---|"]
    for t in report["ranking"]:
        settings = ", ".join(f"{k}={_number(v)}" for k, v in t["params"].items())
        lines.append(
            f"| {t['number']} | {t['value']:.3f} | {_number(t.get('epochs_run'))} | {_number(t['seconds'])} "
            f"| {settings} |"
        )
    return "\n".join(lines) + "\n"


def history_figure(study: optuna.Study) -> Figure:
    """Each trial's score and the best so far; pruned trials at their last reported F1."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    finished = [t for t in study.trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED and t.intermediate_values]
    ax.scatter([t.number for t in finished], [t.value for t in finished], label="finished", color="tab:blue")
    ax.scatter(
        [t.number for t in pruned],
        [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
        label="pruned (best F1 when stopped)",
        marker="x",
        color="tab:gray",
    )
    best, running = [], -math.inf
    for t in sorted(finished, key=lambda t: t.number):
        running = max(running, t.value)
        best.append((t.number, running))
    best.append((study.trials[-1].number, running))  # the line runs on past the trials after the last best
    ax.step(*zip(*best, strict=True), where="post", color="tab:red", label="best so far")
    ax.set(xlabel="trial", ylabel="validation file-level leak F1", title=f"Optimisation history: {study.study_name}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def importance_figure(report: dict[str, Any]) -> Figure:
    """The fANOVA importance of each searched setting, or the reason it is not known yet."""
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    importances = sorted(report["parameter_importance"].items(), key=lambda item: item[1])
    if importances:
        ax.barh([name for name, _ in importances], [value for _, value in importances], color="tab:blue")
        ax.set(xlabel="importance (fANOVA, share of the score's variance)")
    else:
        ax.text(0.5, 0.5, f"Parameter importance {report['parameter_importance_note']}", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title(f"Parameter importance: {report['study_name']}")
    fig.tight_layout()
    return fig


def tuned_parameters_text(report: dict[str, Any]) -> str:
    """The best trial's settings as a parameters file of the ``tuned`` env, saying where they came from."""
    best, mode = report["best_trial"], report["mode"]
    header = [
        f"# Tuned training settings of {mode}: trial {best['number']} of study {report['study_name']!r} "
        f"({report['storage']}),",
        f"# validation file-level leak F1 {best['value']:.4f}. Written by the tune pipeline; a new best rewrites it.",
        f"# Settings not listed come from conf/base. Train with them: {TRAIN_COMMAND}",
    ]
    body = yaml.safe_dump({mode: {"training": dict(best["params"])}}, sort_keys=False)
    return "\n".join(header) + "\n" + body
