"""The import direction: ``brain`` and ``generators`` are pure machine learning (they import
neither ``curation`` nor ``fiftyone``), and the study's runner and report do not import each
other in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _curation_graph() -> dict[str, set[str]]:
    """``module -> the curation modules it imports`` (at any depth of the file; ``from a
    import b`` names ``a.b`` when that is a module)."""
    modules = {_module_name(p): p for p in (ROOT / "curation").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


@pytest.mark.parametrize("module", ["datasets", "media", "leftovers"])
def test_project_foundations_import_nothing_from_the_runs_layer(module):
    """Datasets, media paths and leftovers sit below the runs: deleting a project is
    :func:`curation.runs.delete_project`, not something ``datasets`` calls up for."""
    imported = imported_modules(ROOT / "curation" / f"{module}.py")
    assert not {m for m in imported if m.startswith("curation.runs")}, imported


def test_no_import_circle_in_curation():
    """No module of ``curation`` reaches itself through the imports of others, counting the
    imports inside functions too (a circle hidden in a function is still a circle)."""
    graph = _curation_graph()

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            module = todo.pop()
            if module == goal:
                return True
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
        return False

    circles = sorted(m for m in graph if any(reaches(t, m) for t in graph[m]))
    assert not circles, circles


def test_the_circle_check_sees_a_circle_through_a_function(tmp_path, monkeypatch):
    package = tmp_path / "curation"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from curation.b import g\n")
    (package / "b.py").write_text("def g():\n    from curation import a\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    graph = _curation_graph()
    assert graph["curation.a"] == {"curation.b"}
    assert graph["curation.b"] == {"curation.a"}


LAZY_FOLDERS = ("cli", "plugins")
"""The command line and the App plugin import the product inside their commands, so that
``curate --help`` and the App start without loading torch and every run kind."""
OWN_PACKAGES = ("curation", "brain", "generators", "fiftyone")


def test_the_product_imports_its_own_packages_at_the_top_of_files():
    """Outside the CLI and the App plugin, ``curation`` imports its own packages and FiftyOne at
    the top of each file; only optional dependencies (ray, Milvus, cellpose, scikit-image, ...)
    are imported where they are used."""
    inside = []
    for path in sorted((ROOT / "curation").rglob("*.py")):
        if path.relative_to(ROOT / "curation").parts[0] in LAZY_FOLDERS:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                module = None
                if isinstance(node, ast.Import):
                    module = node.names[0].name
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    module = node.module
                if module and _top(module) in OWN_PACKAGES:
                    inside.append(f"{path.relative_to(ROOT)}:{node.lineno} {module}")
    assert not inside, inside


def test_the_command_line_starts_without_torch():
    """``curate --help`` (every command module imported) and the schema load no torch: the
    size policy and image decoding are torch-free, networks load where they run."""
    code = (
        "import sys\n"
        "from curation.cli import main\n"
        "import curation.schema, curation.datasets, curation.runs\n"
        "assert main(['--help']) == 0\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
