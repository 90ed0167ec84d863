"""The shape rules of the code base, read off the source with `ast` (no imports run).

Used by tests/architecture/test_shape.py and runnable by hand for the full list:
    python -m tests.architecture.shape
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("config", "core", "library", "explain", "studies", "analysis", "demo")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def product_modules() -> Iterator[Path]:
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def long_modules() -> list[Violation]:
    found = []
    for path in product_modules():
        lines = len(path.read_text().splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(Violation(_relative(path), 1, f"{lines} lines (at most {MAX_MODULE_LINES})"))
    return found


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def long_functions() -> list[Violation]:
    found = []
    for path in product_modules():
        for node in _functions(ast.parse(path.read_text())):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                found.append(
                    Violation(
                        _relative(path),
                        node.lineno,
                        f"{node.name}() is {length} lines (at most {MAX_FUNCTION_LINES})",
                    )
                )
    return found


def _is_project_import(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        if node.level:  # a relative import stays inside the package
            return True
        names = [node.module or ""]
    else:
        names = [alias.name for alias in node.names]
    return any(name.split(".")[0] in APPS for name in names)


def _has_reason(lines: list[str], node: ast.stmt) -> bool:
    """A comment on the import's lines or on the line just above says why it is deferred."""
    above = lines[node.lineno - 2] if node.lineno >= 2 else ""
    own = lines[node.lineno - 1 : node.end_lineno]
    return above.strip().startswith("#") or any("#" in line for line in own)


def deferred_imports_without_reason() -> list[Violation]:
    found = []
    for path in product_modules():
        text = path.read_text()
        lines = text.splitlines()
        for function in _functions(ast.parse(text)):
            for node in ast.walk(function):
                if (
                    isinstance(node, ast.Import | ast.ImportFrom)
                    and _is_project_import(node)
                    and not _has_reason(lines, node)
                ):
                    found.append(
                        Violation(
                            _relative(path),
                            node.lineno,
                            f"project import inside {function.name}() without a comment saying why",
                        )
                    )
    return found


def main() -> int:
    problems = long_modules() + long_functions() + deferred_imports_without_reason()
    for problem in sorted(set(problems), key=lambda v: (v.path, v.line)):
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
