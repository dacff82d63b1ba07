"""The import direction: ``brain`` and ``generators`` are pure machine learning (they import
neither ``curation`` nor ``fiftyone``), and the study's runner and report do not import each
other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("curation", "fiftyone")


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (at any depth of the file, absolute names)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _top(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("package", ["brain", "generators"])
def test_ml_packages_import_neither_curation_nor_fiftyone(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files
    upward = {
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in imported_modules(path)
        if _top(module) in FORBIDDEN
    }
    assert not upward, sorted(upward)


def test_the_walk_sees_every_kind_of_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import fiftyone.core as c\ndef f():\n    from curation.x import y\n")
    assert imported_modules(source) == {"fiftyone.core", "curation.x"}


def test_runner_and_report_do_not_import_each_other():
    experiment = ROOT / "curation" / "experiment"
    runner = imported_modules(experiment / "runner.py")
    report = imported_modules(experiment / "report.py")
    assert "curation.experiment.runner" not in report
    assert "curation.experiment.report" in runner  # the direction that is allowed


def test_no_import_cycle_inside_the_study():
    """No module of ``curation.experiment`` reaches itself through the others' imports."""
    folder = ROOT / "curation" / "experiment"
    graph = {
        f"curation.experiment.{p.stem}": {
            m for m in imported_modules(p) if m.startswith("curation.experiment.")
        }
        for p in folder.glob("*.py")
        if p.stem != "__init__"
    }

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [module for module in graph if reaches(module, module, {module})]
    assert not cycles, cycles
