"""Building, caching and loading the demo: data, model, collection, accounts.

The dataset and the trained model are cached under var/demo, keyed by their
parameters, so only the first `make demo` pays for generating and training.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEMO_VERSION = 1
DEMO_COLLECTION = "Demo chest radiographs"
DEMO_MODEL = "demo-attention-resnet"
DEMO_MODEL_TORCHSCRIPT = "demo-attention-resnet-torchscript"
COMPLETE_MARKER = "COMPLETE"
# What the demo study shows first; the rest is computed in the background.
FAST_EXPLAINERS = ("gradcam", "attention", "similar_cases")


@dataclass(frozen=True)
class DemoPaths:
    data: Path
    model: Path

    @property
    def weights(self) -> Path:
        return self.model / "weights.safetensors"

    @property
    def torchscript(self) -> Path:
        return self.model / "model.torchscript.pt"

    @property
    def metrics(self) -> Path:
        return self.model / "metrics.json"


def demo_paths(var_dir: Path, *, cases: int, seed: int, epochs: int | None = None) -> DemoPaths:
    root = Path(var_dir) / "demo"
    tag = f"v{DEMO_VERSION}-seed{seed}-n{cases}"
    model_tag = tag + (f"-e{epochs}" if epochs else "")
    return DemoPaths(data=root / f"data-{tag}", model=root / f"model-{model_tag}")


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def build_cached(folder: Path, build: Callable[[Path], None]) -> bool:
    """Run `build(tmp)` into a sibling temporary folder, then move it into place.

    Returns False when the folder was already complete (nothing done). A build
    that fails leaves no half-written cache behind.
    """
    if is_complete(folder):
        return False
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        build(staging)
        (staging / COMPLETE_MARKER).write_text("ok\n")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return True


def read_metrics(paths: DemoPaths) -> dict:
    return json.loads(paths.metrics.read_text())
