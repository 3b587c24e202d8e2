"""The digest of the code a step runs: its module's source and that of every project module it
imports, directly or not, found without importing anything. Part of a step's cache key
(studyflow.steps), so an edit inside a helper the step calls invalidates it; and what a Dask
worker is compared by (studyflow.cluster), so a worker running other code is refused.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from pathlib import Path

PROJECT_PACKAGES = ("studyflow", "tasks", "models")


def _imported_modules(source: str, module_name: str, is_package: bool, packages: tuple[str, ...]) -> set[str]:
    """The modules of `packages` that a module's source imports (absolute and relative, at any depth)."""
    package = module_name if is_package else module_name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            # `from tasks import figures` imports the submodule tasks.figures
            found.update(f"{base}.{alias.name}" for alias in node.names)
    with_parents = {
        ".".join(name.split(".")[:depth]) for name in found if name for depth in range(1, name.count(".") + 2)
    }  # importing a.b runs a/__init__.py too
    return {name for name in with_parents if name.split(".")[0] in packages}


def _module_file(name: str) -> Path | None:
    """The source file of a module, found without importing anything (find_spec of a dotted name
    would import its parents). None for a name that is not a module (`from tasks import a_function`)."""
    top, _, rest = name.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") and not rest else None
    for root in spec.submodule_search_locations:
        base = Path(root, *rest.split("."))
        for candidate in ((base.with_suffix(".py"),) if rest else ()) + (base / "__init__.py",):
            if candidate.is_file():
                return candidate
    return None


def code_digest(module_name: str, packages: tuple[str, ...] = PROJECT_PACKAGES) -> str:
    """sha256 over the source of `module_name` and of every module of `packages` it imports,
    directly or not. Keyed on module names and sources, not paths, so two checkouts of the same
    code agree. Read afresh each call (a few ms): an edit made while a session runs still counts.
    """
    sources: dict[str, str] = {}
    pending = [module_name]
    while pending:
        name = pending.pop()
        if name in sources:
            continue
        path = _module_file(name)
        if path is None:
            continue
        sources[name] = path.read_text(encoding="utf-8")
        imported = _imported_modules(sources[name], name, path.name == "__init__.py", packages)
        pending.extend(imported - sources.keys())
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(f"{name}\n{sources[name]}\n".encode())
    return digest.hexdigest()
