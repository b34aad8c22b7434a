"""A static check that a consensus core stays pure: no I/O modules, no global randomness.

Reusable for any core package: `find_impurities(package_dir)` lists every offending import
or call with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN_MODULES = frozenset({"asyncio", "grpc", "os", "socket", "time"})
RANDOM_TYPE_NAMES = frozenset({"Random"})  # importable for annotations, never called


def find_impurities(package_dir: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted(package_dir.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        problems.extend(f"{path}:{line}: {what}" for line, what in _module_impurities(tree))
    return problems


def _module_impurities(tree: ast.Module) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    random_modules: set[str] = set()  # local names bound to the random module
    random_names: set[str] = set()  # local names bound to things imported from random
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in FORBIDDEN_MODULES:
                    found.append((node.lineno, f"imports {alias.name}"))
                if alias.name == "random":
                    random_modules.add(alias.asname or "random")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            root = module.split(".")[0]
            if root in FORBIDDEN_MODULES:
                found.append((node.lineno, f"imports from {module}"))
            if module == "random":
                for alias in node.names:
                    if alias.name not in RANDOM_TYPE_NAMES:
                        found.append((node.lineno, f"imports random.{alias.name}"))
                    random_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in random_modules
        ):
            found.append((node.lineno, f"calls random.{func.attr}()"))
        elif isinstance(func, ast.Name) and func.id in random_names:
            found.append((node.lineno, f"calls {func.id}() from random"))
        elif isinstance(func, ast.Name) and func.id == "__import__":
            found.append((node.lineno, "calls __import__()"))
    return found
