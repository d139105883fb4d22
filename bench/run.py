"""Run the benchmark suite, write the results JSON and print the summary tables.

    python -m bench                  # full suite (~6 min on 2 idle cores): bench/results/latest.json
    python -m bench --quick          # tiny sizes: a smoke test of the whole suite (~30 s)
    python -m bench --skip-demo-run  # everything but the 2-3 minute `kedro run`
    python -m bench --only training inference

A section that fails is recorded with its error and the others still run; the exit
status is 1 when any section failed, 0 otherwise (missed targets are results, not
errors).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import traceback
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"
SECTIONS = ("training", "memory", "extraction", "inference", "demo_run")


def _section_functions() -> dict:
    # Imported on demand: ``--help`` should not wait for torch.
    from bench.demo_run import measure_demo_run
    from bench.extraction import measure_extraction
    from bench.inference import measure_inference
    from bench.memory import measure_memory
    from bench.training import measure_training

    return {
        "training": measure_training,
        "memory": measure_memory,
        "extraction": measure_extraction,
        "inference": measure_inference,
        "demo_run": lambda settings, workdir: measure_demo_run(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Leak-detection performance benchmarks.")
    parser.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run (implies --skip-demo-run)")
    parser.add_argument("--skip-demo-run", action="store_true", help="do not time `kedro run --pipelines train_both`")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run only these sections")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"results JSON (default {DEFAULT_OUTPUT})")
    return parser.parse_args(argv)


def run_section(name: str, measure, settings, workdir: Path) -> dict:
    """One section, with the machine's conditions while it ran; an exception becomes its result."""
    from bench.conditions import SectionConditions

    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    section_dir = workdir / name
    section_dir.mkdir()
    with SectionConditions() as conditions:
        try:
            result = measure(settings, section_dir)
        except Exception as exc:  # noqa: BLE001 - one broken section must not lose the others
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    result["conditions"] = conditions.report()
    print(f"[bench] {name} done in {conditions.wall_seconds:.0f} s", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from bench.machine import load_average, machine_info
    from bench.report import summary
    from bench.settings import FULL, QUICK
    from bench.targets import evaluate

    settings = QUICK if args.quick else FULL
    selected = args.only or SECTIONS
    skip_demo = args.quick or args.skip_demo_run
    results: dict = {
        "suite": {
            "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
            "quick": args.quick,
            "settings": settings.to_dict(),
        },
        "machine": machine_info(),
    }
    functions = _section_functions()
    with tempfile.TemporaryDirectory(prefix="leak-bench-") as workdir:
        for name in SECTIONS:
            if name not in selected:
                results[name] = {"skipped": True, "reason": "not in --only"}
            elif name == "demo_run" and skip_demo:
                results[name] = {"skipped": True, "reason": "--quick" if args.quick else "--skip-demo-run"}
            else:
                results[name] = run_section(name, functions[name], settings, Path(workdir))
    results["machine"]["load_average_at_end"] = load_average()
    results["targets"] = evaluate(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(summary(results))
    print(f"\nresults: {args.output}")
    failed = [name for name in selected if "error" in results.get(name, {})]
    for name in failed:
        print(f"[bench] {name} failed: {results[name]['error']}", file=sys.stderr)
    return 1 if failed else 0
