"""The shape rules of the code base, read off the source with `ast` (no imports run):

- a module has at most 500 lines, a function at most 80;
- a project import inside a function says why it is deferred, in a comment on its line or above;
- a Celery task is declared with core.tasks.task (never a Celery app's `.task` or `shared_task`).

Used by tests/architecture/test_shape.py and runnable by hand for the full list:
    python -m tests.architecture.shape

Each rule has a form for one source text (`*_in(path, text)`, which the checker's own tests feed
small synthetic sources) and a form for the product's modules under a root (default: this
checkout).
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

Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def product_modules(root: Path = ROOT) -> Iterator[Path]:
    """The apps' Python modules, migrations left out (they are generated and never edited)."""
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            if "migrations" not in path.relative_to(root).parts:
                yield path


# One source text -------------------------------------------------------------------------------


def long_module_in(path: str, text: str) -> list[Violation]:
    lines = len(text.splitlines())
    if lines <= MAX_MODULE_LINES:
        return []
    return [Violation(path, 1, f"{lines} lines (at most {MAX_MODULE_LINES})")]


def _functions(tree: ast.AST) -> Iterator[Function]:
    for node in ast.walk(tree):
        if isinstance(node, Function):
            yield node


def long_functions_in(path: str, text: str) -> list[Violation]:
    found = []
    for node in _functions(ast.parse(text)):
        length = node.end_lineno - node.lineno + 1
        if length > MAX_FUNCTION_LINES:
            what = f"{node.name}() is {length} lines (at most {MAX_FUNCTION_LINES})"
            found.append(Violation(path, node.lineno, what))
    return sorted(found, key=lambda v: v.line)


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


def _own_imports(function: Function) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports in a function's body, not in the functions nested in it (they count there)."""
    todo = list(ast.iter_child_nodes(function))
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif not isinstance(node, Function | ast.Lambda | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))


def deferred_imports_in(path: str, text: str) -> list[Violation]:
    lines = text.splitlines()
    found = []
    for function in _functions(ast.parse(text)):
        for node in _own_imports(function):
            if _is_project_import(node) and not _has_reason(lines, node):
                what = f"project import inside {function.name}() without a comment saying why"
                found.append(Violation(path, node.lineno, what))
    return sorted(found, key=lambda v: v.line)


TASK_DECORATOR_HOME = "core/tasks.py"
CORE_TASKS = ("tasks", "core.tasks")  # `from core import tasks`, `import core.tasks`


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return f"{_decorator_name(target.value)}.{target.attr}"
    return target.id if isinstance(target, ast.Name) else ""


def tasks_outside_core_in(path: str, text: str) -> list[Violation]:
    """A task declared with a Celery app's `.task` or `shared_task` rather than core.tasks.task
    (ruff's TID251 bans importing `celery.shared_task`; it cannot see `@app.task`)."""
    if path == TASK_DECORATOR_HOME:
        return []
    found = []
    for function in _functions(ast.parse(text)):
        for decorator in function.decorator_list:
            name = _decorator_name(decorator)
            owner, _, last = name.rpartition(".")
            if last == "shared_task" or (last == "task" and owner not in ("", *CORE_TASKS)):
                what = f"{function.name}() is declared with @{name}: use core.tasks.task"
                found.append(Violation(path, decorator.lineno, what))
    return sorted(found, key=lambda v: v.line)


# The product's modules -------------------------------------------------------------------------


def _each_module(rule, root: Path) -> list[Violation]:
    found = []
    for path in product_modules(root):
        name = path.relative_to(root).as_posix()
        try:
            found.extend(rule(name, path.read_text()))
        except SyntaxError as error:  # reported, so one broken module hides no other finding
            found.append(Violation(name, error.lineno or 1, f"does not parse: {error.msg}"))
    return found


def long_modules(root: Path = ROOT) -> list[Violation]:
    return _each_module(long_module_in, root)


def long_functions(root: Path = ROOT) -> list[Violation]:
    return _each_module(long_functions_in, root)


def deferred_imports_without_reason(root: Path = ROOT) -> list[Violation]:
    return _each_module(deferred_imports_in, root)


def tasks_outside_core(root: Path = ROOT) -> list[Violation]:
    return _each_module(tasks_outside_core_in, root)


def main() -> int:
    problems = (
        long_modules() + long_functions() + deferred_imports_without_reason() + tasks_outside_core()
    )
    for problem in sorted(set(problems), key=lambda v: (v.path, v.line)):
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
