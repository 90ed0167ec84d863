"""The shape rules (tests/architecture/shape.py) hold over the product's modules, and the
checker itself reports what it should on small sources."""

from __future__ import annotations

from pathlib import Path

from tests.architecture import shape


def _listing(violations: list[shape.Violation]) -> str:
    return "\n" + "\n".join(str(violation) for violation in violations)


def test_no_module_is_longer_than_500_lines():
    found = shape.long_modules()
    assert not found, _listing(found)


def test_no_function_is_longer_than_80_lines():
    found = shape.long_functions()
    assert not found, _listing(found)


def test_every_project_import_inside_a_function_says_why_it_is_deferred():
    found = shape.deferred_imports_without_reason()
    assert not found, _listing(found)


def test_every_task_is_declared_with_the_one_task_decorator():
    found = shape.tasks_outside_core()
    assert not found, _listing(found)


# The checker ------------------------------------------------------------------------------------


def _function(name: str, body_lines: int) -> str:
    return f"def {name}():\n" + "    x = 1\n" * (body_lines - 1)


def test_a_501_line_module_is_reported_and_a_500_line_one_is_not():
    assert shape.long_module_in("m.py", "x = 1\n" * 500) == []
    (found,) = shape.long_module_in("m.py", "x = 1\n" * 501)
    assert str(found) == "m.py:1: 501 lines (at most 500)"


def test_a_90_line_function_is_reported_with_its_line_and_an_80_line_one_is_not():
    source = "import os\n\n\n" + _function("short", 80) + "\n\n" + _function("long", 90)
    (found,) = shape.long_functions_in("m.py", source)
    assert found == shape.Violation("m.py", 86, "long() is 90 lines (at most 80)")


def test_a_long_method_and_a_long_nested_function_are_reported_too():
    nested = "    " + _function("inner", 85).replace("\n", "\n    ").rstrip() + "\n"
    source = "class Thing:\n" + nested + "\n\ndef outer():\n" + nested
    found = shape.long_functions_in("m.py", source)
    assert [v.what for v in found] == [
        "inner() is 85 lines (at most 80)",
        "outer() is 86 lines (at most 80)",
        "inner() is 85 lines (at most 80)",
    ]


def test_a_project_import_inside_a_function_without_a_comment_is_reported():
    source = "def load():\n    from library.models import Case\n    return Case\n"
    (found,) = shape.deferred_imports_in("m.py", source)
    assert found == shape.Violation(
        "m.py", 2, "project import inside load() without a comment saying why"
    )


def test_a_deferred_import_with_a_comment_on_its_line_or_above_is_not_reported():
    source = (
        "def load():\n"
        "    # the app registry is not ready when this module is imported\n"
        "    from library.models import Case\n"
        "    import explain.models  # a cycle: explain imports this module\n"
        "    from . import sibling  # noqa\n"
        "    return Case, explain.models, sibling\n"
    )
    assert shape.deferred_imports_in("m.py", source) == []


def test_third_party_imports_in_functions_and_project_imports_at_the_top_are_not_reported():
    source = (
        "from library.models import Case\n\n\n"
        "def plot():\n"
        "    import matplotlib\n"
        "    import torch.nn\n"
        "    return matplotlib, torch.nn, Case\n"
    )
    assert shape.deferred_imports_in("m.py", source) == []


def test_a_relative_import_in_a_function_counts_as_a_project_import():
    source = "def load():\n    from .models import Case\n    return Case\n"
    assert [v.line for v in shape.deferred_imports_in("m.py", source)] == [2]


def test_an_import_in_a_nested_function_is_reported_once_against_the_inner_function():
    source = (
        "def outer():\n"
        "    def inner():\n"
        "        from studies import models\n"
        "        return models\n"
        "    return inner\n"
    )
    (found,) = shape.deferred_imports_in("m.py", source)
    assert (found.line, found.what.split()[3]) == (3, "inner()")


def test_the_rules_walk_the_apps_under_a_root_and_leave_migrations_out(tmp_path: Path):
    (tmp_path / "library" / "migrations").mkdir(parents=True)
    (tmp_path / "library" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 900)
    (tmp_path / "library" / "big.py").write_text("x = 1\n" * 600)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "views.py").write_text(_function("page", 81))
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "huge.py").write_text("x = 1\n" * 900)  # not an app

    assert [str(v) for v in shape.long_modules(tmp_path)] == [
        "library/big.py:1: 600 lines (at most 500)"
    ]
    assert [v.path for v in shape.long_functions(tmp_path)] == ["studies/views.py"]
    assert shape.deferred_imports_without_reason(tmp_path) == []


def test_a_module_that_does_not_parse_is_reported_rather_than_stopping_the_check(tmp_path: Path):
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "broken.py").write_text("def f(:\n    pass\n")
    (found,) = shape.long_functions(tmp_path)
    assert (found.path, found.what.startswith("does not parse")) == ("core/broken.py", True)


def test_a_task_declared_with_a_celery_app_or_shared_task_is_reported_outside_core_tasks():
    source = (
        "from celery import shared_task\n"
        "from config.celery import app\n\n\n"
        "@app.task(name='x')\n"
        "def one():\n    pass\n\n\n"
        "@shared_task\n"
        "def two():\n    pass\n\n\n"
        "@celery.shared_task(bind=True)\n"
        "def three(self):\n    pass\n"
    )
    found = shape.tasks_outside_core_in("explain/tasks.py", source)
    assert [(v.line, v.what.split()[0]) for v in found] == [
        (5, "one()"),
        (10, "two()"),
        (15, "three()"),
    ]
    assert shape.tasks_outside_core_in("core/tasks.py", source) == []


def test_a_task_declared_with_core_tasks_task_is_not_reported():
    source = (
        "from core.tasks import task\n"
        "from core import tasks\n\n\n"
        "@task(name='explain.x', queue='gpu')\n"
        "def one():\n    pass\n\n\n"
        "@tasks.task(name='explain.y')\n"
        "def two():\n    pass\n"
    )
    assert shape.tasks_outside_core_in("explain/tasks.py", source) == []
