"""The layout rules of docs/architecture.md, read from the source (no imports are run).

- imports flow ``service`` -> ``models`` -> ``pipeline``; ``models/training`` is never imported by
  inference code, and ``pipeline`` imports no torch, whisper, transformers or fastapi;
- no import cycles between project modules;
- no module imports another module's private (``_name``) name;
- argparse lives only in ``service/commands`` (and in scripts under datasets/, bench/);
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "models", "service")
TRAINING_USERS = ("models.training", "service.commands.train")  # `robocall train/evaluate`
HEAVY = ("torch", "whisper", "faster_whisper", "ctranslate2", "transformers", "fastapi")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[tuple[str, str | None]]:
    """(module, imported name or None) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                yield node.module, alias.name


def _project_target(module: str, name: str | None) -> str | None:
    """The project module an import names (``from pipeline import report``: pipeline.report)."""
    if name is not None and f"{module}.{name}" in MODULES:
        return f"{module}.{name}"
    return module if module in MODULES else None


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for target, name in _imports(path):
            found = _project_target(target, name)
            if found is not None and found != module:
                edges[module].add(found)
    return edges


def _layer(module: str) -> int:
    if module.startswith("models.training"):
        return 2  # training sits beside service: it may use models and pipeline
    return {"pipeline": 0, "models": 1, "service": 3}[module.split(".")[0]]


def test_imports_flow_service_models_pipeline() -> None:
    wrong = []
    for module, targets in _edges().items():
        for target in targets:
            if module.startswith("models.training") and target.startswith("service"):
                wrong.append(f"{module} -> {target}")
            elif target.startswith("models.training") and not module.startswith(TRAINING_USERS):
                wrong.append(f"{module} -> {target} (training code at run time)")
            elif _layer(target) > _layer(module):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layer order:\n" + "\n".join(sorted(wrong))


def test_pipeline_imports_no_heavy_library() -> None:
    wrong = [
        f"{module}: {target}"
        for module, path in MODULES.items()
        if module.startswith("pipeline")
        for target, _ in _imports(path)
        if target.split(".")[0] in HEAVY
    ]
    assert not wrong, "pipeline/ must stay free of model libraries:\n" + "\n".join(wrong)


def test_no_import_cycles() -> None:
    edges = _edges()
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    cycles: list[str] = []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target, [*stack, target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_module_imports_a_private_name() -> None:
    wrong = [
        f"{module}: from {target} import {name}"
        for module, path in MODULES.items()
        for target, name in _imports(path)
        if name is not None
        and name.startswith("_")
        and not name.startswith("__")
        and _project_target(target, None) is not None
    ]
    assert not wrong, "private names imported across modules:\n" + "\n".join(wrong)


def test_argparse_lives_only_in_the_commands() -> None:
    wrong = [
        module
        for module, path in MODULES.items()
        if not module.startswith("service.commands")
        and module != "service.cli"
        and not module.startswith("models.training")  # `python -m models.training.X` tools
        and any(target == "argparse" for target, _ in _imports(path))
    ]
    assert not wrong, "argparse outside service/commands: " + ", ".join(wrong)
