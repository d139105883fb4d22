"""The layout docs/architecture.md describes, checked: the domain never reaches up into Kedro's glue."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "leak_detection"
DOMAIN = ("audio", "features", "model", "decisions", "metrics", "training", "adaptation", "tuning", "demo", "runs")
GLUE = ("leak_detection.pipelines", "leak_detection.datasets", "leak_detection.hooks", "leak_detection.console")
KEDRO_OWN = {"__init__.py", "__main__.py", "settings.py", "pipeline_registry.py"}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domain_packages_never_import_kedro_adapters_nodes_or_entry_points():
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for package in DOMAIN
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(GLUE)
    ]
    assert offenders == []


def test_every_domain_package_exists_and_says_what_it_holds():
    for package in DOMAIN:
        init = PACKAGE / package / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"{package}/__init__.py has no docstring"


def test_at_most_eight_modules_sit_flat_beside_kedros_own_files():
    flat = {p.name for p in PACKAGE.glob("*.py")} - KEDRO_OWN
    assert len(flat) <= 8, sorted(flat)


def test_no_function_in_the_package_is_longer_than_a_screen():
    too_long = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > 80
    ]
    assert too_long == []
