"""The import-linter contracts in pyproject.toml (checked by `lint-imports` in `make test` and
`make lint`) cover every app, so a new app cannot silently sit outside the layers."""

from __future__ import annotations

import tomllib

from tests.architecture import shape

PYPROJECT = tomllib.loads((shape.ROOT / "pyproject.toml").read_text())
IMPORTLINTER = PYPROJECT["tool"]["importlinter"]
CONTRACTS = IMPORTLINTER["contracts"]
(LAYERS,) = (contract for contract in CONTRACTS if contract["type"] == "layers")


def _apps() -> set[str]:
    """Every top-level folder of the checkout that is a Django app (it has an apps.py)."""
    return {path.parent.name for path in shape.ROOT.glob("*/apps.py")}


def test_the_layers_name_every_app_and_nothing_else():
    assert set(LAYERS["layers"]) == _apps() | {"config"}


def test_import_linter_reads_every_app_and_the_shape_rules_walk_every_app():
    assert set(IMPORTLINTER["root_packages"]) == _apps() | {"config"}
    assert set(shape.APPS) == _apps() | {"config"}


def test_every_app_but_the_demo_is_forbidden_to_import_the_demo():
    (contract,) = (c for c in CONTRACTS if c.get("forbidden_modules") == ["demo"])
    assert set(contract["source_modules"]) == (_apps() | {"config"}) - {"demo"}


def test_the_pure_cores_are_forbidden_django_and_the_apps_models():
    (contract,) = (c for c in CONTRACTS if "django" in c.get("forbidden_modules", []))
    assert set(contract["source_modules"]) >= {
        "explain.compute",
        "library.imaging",
        "analysis.stats",
        "studies.randomization",
    }
    forbidden = set(contract["forbidden_modules"])
    apps_with_models = {app for app in _apps() if (shape.ROOT / app / "models.py").exists()}
    assert {app for app in apps_with_models if {app, f"{app}.models"} & forbidden} == (
        apps_with_models
    )
