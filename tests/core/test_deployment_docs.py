"""docs/deployment.md lists every environment variable the settings and gunicorn read."""

from __future__ import annotations

import ast
import re

from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "deployment.md"


def _settings_variables() -> set[str]:
    tree = ast.parse((REPO_ROOT / "config" / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.startswith("env_")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def _gunicorn_variables() -> set[str]:
    text = (REPO_ROOT / "config" / "gunicorn.conf.py").read_text()
    return set(re.findall(r'_(?:int|str)\("(GUNICORN_[A-Z_]+)"', text))


def test_the_settings_read_the_variables_this_test_expects_to_find():
    variables = _settings_variables()
    assert {"DJANGO_ENV", "DATABASE_URL", "CELERY_BROKER_URL", "XRS_S3_BUCKET"} <= variables
    assert {"GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_FORWARDED_ALLOW_IPS"} <= _gunicorn_variables()


def test_every_variable_the_settings_and_gunicorn_read_is_documented_in_the_reference_table():
    rows = set(re.findall(r"^\| `([A-Z0-9_]+)`(?:, `([A-Z0-9_]+)`)?", DOC.read_text(), re.M))
    documented = {name for row in rows for name in row if name}
    missing = (_settings_variables() | _gunicorn_variables()) - documented
    assert not missing, f"add to docs/deployment.md section 8: {sorted(missing)}"
