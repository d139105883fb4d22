"""The adaptation report in Markdown: what the model gained at the new site and what it forgot."""

from __future__ import annotations

from typing import Any


def _number(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.3f}"


def _interval(interval: list[float] | None) -> str:
    return "" if not interval else f" [{interval[0]:.2f}, {interval[1]:.2f}]"


def _table(block: dict[str, Any]) -> list[str]:
    lines = ["| metric | before | after | change |", "|---|---|---|---|"]
    for key, row in block["metrics"].items():
        lines.append(
            f"| {key} | {_number(row['before'])}{_interval(row['before_interval'])} "
            f"| {_number(row['after'])}{_interval(row['after_interval'])} "
            f"| {_number(row['change'])}{_interval(row['change_interval'])} |"
        )
    return lines


def _pseudo_label_lines(adaptation: dict[str, Any]) -> list[str]:
    lines = ["| round | class | predicted | confident | kept | left out |", "|---|---|---|---|---|---|"]
    for round_ in adaptation["rounds"]:
        for row in round_["pseudo_labels"]:
            lines.append(
                f"| {round_['round']} | {row['class']} | {row['predicted']} | {row['confident']} | {row['kept']} "
                f"| {'yes' if row['left_out'] else ''} |"
            )
    return lines


def adaptation_markdown(report: dict[str, Any]) -> str:
    adaptation = report["adaptation"] or {}
    called = report["new_site_called_leak"]
    lines = [
        f"# Site adaptation: {report['mode']}",
        "",
        f"Model `{report['adapted_model_version']}`, adapted from `{report['base_model_version']}` on "
        f"{report['new_site_files']} recordings of the new site ({adaptation.get('site_labelled_files', 0)} "
        f"labelled); early stopping on {adaptation.get('validated_on', 'n/a')}. Figures are file-level, with "
        "95 % bootstrap intervals; a change whose interval holds 0 is not shown to be real.",
        "",
        "## New site, labelled files",
        "",
    ]
    site = report["new_site_labelled"]
    if site is None:
        lines.append("No labels were given (`--params adaptation_manifest=PATH`), so the gain cannot be measured here.")
    else:
        lines += [f"{site['files']} files, {site['leak_files']} leaks.", "", *_table(site)]
    test = report["original_test"]
    lines += [
        "",
        f"New-site recordings called LEAK: {called.get('before')} before, {called.get('after')} after.",
        "",
        "## Original test files (what was forgotten)",
        "",
        f"{test['files']} files, {test['leak_files']} leaks.",
        "",
        *_table(test),
        "",
        "## Pseudo-labels (long segments)",
        "",
        *_pseudo_label_lines(adaptation),
        "",
    ]
    return "\n".join(lines)
