"""The package's modules import each other in one direction: no circle, read from the source with ``ast`` (imports
inside functions count too: a circle hidden by a late import is still a circle)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import geoengage

PACKAGE = Path(geoengage.__file__).resolve().parent


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from . import x`` counts as importing ``x``)."""
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                edges |= {c for c in (target, *(f"{target}.{a.name}" for a in node.names)) if c in files}
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in files}
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_package_has_no_import_circle() -> None:
    graph = import_graph()
    assert "geoengage.geometry.registry" in graph and "geoengage.modeling.train" in graph
    assert "geoengage.geometry.base" in graph["geoengage.geometry.pose"]
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_one_version() -> None:
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    assert geoengage.__version__ == project["version"]


def test_the_top_level_lists_every_public_name() -> None:
    """``dir(geoengage)`` shows the lazily served names, and every name of ``__all__`` resolves."""
    listed = dir(geoengage)
    for name in ("train", "score", "evaluate", "evaluate_datasets", "EngagementModel", "make_windows", "clean_frames"):
        assert name in listed
    for name in geoengage.__all__:
        assert getattr(geoengage, name) is not None


def test_models_scripts_import_the_package_only() -> None:
    """``models/*.py`` are entry points: they import geoengage and libraries, never each other, and never change
    ``sys.path`` to do so."""
    scripts = sorted((PACKAGE.parent / "models").glob("*.py"))
    names = {p.stem for p in scripts}
    offenders = []
    for path in scripts:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in names:
                offenders.append(f"{path.name} imports {node.module}")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.name} imports {a.name}" for a in node.names if a.name.split(".")[0] in names]
            elif isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys":
                offenders.append(f"{path.name} uses sys.path")
    assert scripts and not offenders, offenders


def test_detection_holds_no_training_loop() -> None:
    """``geoengage/detect/`` measures faces; training (optimisers, losses, epochs) lives in ``geoengage/modeling``."""
    offenders = []
    for path in sorted((PACKAGE / "detect").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.FunctionDef):
                continue
            arguments = {a.arg for a in node.args.kwonlyargs + node.args.args}
            if "optimizer" in arguments or node.name.startswith("train"):
                offenders.append(f"{path.name}:{node.name}")
    assert not offenders, offenders



def test_imports_inside_functions_say_why() -> None:
    """A package module imported inside a function is there for a heavy or optional dependency (torch, FastAPI, the
    commands' own stacks), and a comment on the line above says which; everything else is imported at the top of the
    module."""
    silent = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        lines = source.split("\n")
        for fn in ast.walk(ast.parse(source, filename=str(path))):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            silent += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}" for node in ast.walk(fn)
                       if isinstance(node, ast.ImportFrom)
                       and (node.level or (node.module or "").startswith("geoengage"))
                       and not lines[node.lineno - 2].strip().startswith("#")]
    assert not silent, silent


def _private_imports(paths: list[Path], *, ours: str) -> list[str]:
    """``file: name`` for each private name (one leading underscore) imported from a module whose name starts with
    ``ours`` (relative imports count)."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(ours)):
                found += [f"{path.name}: {a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    return found


def test_no_module_reaches_into_another_modules_private_names() -> None:
    """What one module needs from another is public (named without a leading underscore, listed in ``__all__``);
    tests share builders through ``geoengage.testing``, not through each other's private helpers."""
    assert _private_imports(sorted(PACKAGE.rglob("*.py")), ours="geoengage") == []
    tests = sorted(Path(__file__).resolve().parent.rglob("test_*.py"))
    assert _private_imports(tests, ours="tests") == []


def test_recording_the_model_files_loads_no_torch() -> None:
    """The hashes of the CNN weight files behind a table's features come from the packaged-model record
    (``detect/models.py``), so recording them (every extraction, import and model's parity settings) does not import
    torch: the CNN modules did, for the weights' paths."""
    import subprocess
    import sys

    code = ("import sys; from geoengage.config import ExtractConfig; from geoengage.dataset import feature_models; "
            "from geoengage.extract import write_frames; models = feature_models(ExtractConfig()); "
            "assert models['expression'] and models['gaze'], models; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
