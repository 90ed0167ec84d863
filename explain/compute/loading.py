"""Load registered models and check that they can be served.

Two registration forms exist:

* eager: an importable architecture ``"package.module:Class"``, constructor keyword arguments
  and a weights file holding a plain ``state_dict`` (safetensors or a weights-only torch file);
* TorchScript: a ``torch.jit.save`` archive.

Arbitrary pickles are never loaded: torch files go through ``torch.load(weights_only=True)``.
Everything that a model author can get wrong raises :class:`ModelRejected` with one readable
line per problem.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

MAX_LISTED = 5
"""How many missing/unexpected/mismatched keys a rejection lists before summarising."""

TORCH_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin")
SAFETENSORS_SUFFIX = ".safetensors"


class ModelRejected(Exception):
    """A model (or its registration data) cannot be used; ``reasons`` holds one line each."""

    def __init__(self, reasons: str | list[str]):
        self.reasons: list[str] = [reasons] if isinstance(reasons, str) else list(reasons)
        super().__init__("; ".join(self.reasons))

    def __str__(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class InputSpec:
    """What the model expects: ``size`` is (height, width) of the normalised input tensor."""

    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InputSpec:
        if not isinstance(d, Mapping):
            raise ModelRejected(f"input spec must be a mapping, not {type(d).__name__}")
        reasons: list[str] = []
        for key in ("size", "channels", "mean", "std"):
            if key not in d:
                reasons.append(f"input spec is missing '{key}'")
        if reasons:
            raise ModelRejected(reasons)

        size = d["size"]
        if (
            not isinstance(size, list | tuple)
            or len(size) != 2
            or not all(_is_int(v) and v > 0 for v in size)
        ):
            reasons.append(
                f"input size must be two positive integers (height, width), got {size!r}"
            )
            size = (1, 1)

        channels = d["channels"]
        if not _is_int(channels) or channels not in (1, 3):
            reasons.append(f"input channels must be 1 or 3, got {channels!r}")
            channels = None

        mean = _float_tuple(d["mean"], "mean", reasons)
        std = _float_tuple(d["std"], "std", reasons)
        if channels is not None:
            for name, values in (("mean", mean), ("std", std)):
                if values is not None and len(values) != channels:
                    reasons.append(
                        f"input {name} has {len(values)} values but there are {channels} channels"
                    )
        if std is not None and any(not v > 0 for v in std):
            reasons.append(f"input std values must all be > 0, got {list(std)}")
        if reasons:
            raise ModelRejected(reasons)
        return cls(size=(int(size[0]), int(size[1])), channels=int(channels), mean=mean, std=std)

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "channels": self.channels,
            "mean": list(self.mean),
            "std": list(self.std),
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _float_tuple(values: Any, name: str, reasons: list[str]) -> tuple[float, ...] | None:
    if not isinstance(values, list | tuple) or not values:
        reasons.append(f"input {name} must be a non-empty list of numbers, got {values!r}")
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            reasons.append(f"input {name} must hold finite numbers, got {v!r}")
            return None
        out.append(float(v))
    return tuple(out)


# --------------------------------------------------------------------------- architecture


def resolve_architecture(path: str) -> type[nn.Module]:
    """Import ``"package.module:Class"`` (attribute may be dotted) and return the class.

    Only ``nn.Module`` subclasses are accepted; nothing found here is ever called.
    """
    if not isinstance(path, str) or path.count(":") != 1:
        raise ModelRejected(f"architecture must look like 'package.module:ClassName', got {path!r}")
    module_name, attr_path = (part.strip() for part in path.split(":"))
    if (
        not module_name
        or not attr_path
        or not all(part.isidentifier() for part in module_name.split(".") + attr_path.split("."))
    ):
        raise ModelRejected(f"architecture must look like 'package.module:ClassName', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ModelRejected(f"cannot import module '{module_name}': {exc}") from exc
    except Exception as exc:  # importing runs the module's code; report whatever it raised
        raise ModelRejected(
            f"importing module '{module_name}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    obj: Any = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise ModelRejected(f"module '{module_name}' has no attribute '{attr_path}'")
        obj = getattr(obj, part)
    if not isinstance(obj, type) or not issubclass(obj, nn.Module):
        kind = "a class" if isinstance(obj, type) else type(obj).__name__
        raise ModelRejected(
            f"'{path}' is {kind} but not a torch.nn.Module subclass; "
            "only nn.Module subclasses can be registered"
        )
    if obj is nn.Module:
        raise ModelRejected("'torch.nn.Module' itself is not a model architecture")
    return obj


# --------------------------------------------------------------------------- weights


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """Read a plain ``state_dict`` from ``.safetensors`` or ``.pt``/``.pth``/``.bin``."""
    path = Path(path)
    if not path.is_file():
        raise ModelRejected(f"weights file '{path.name}' does not exist")
    suffix = path.suffix.lower()
    if suffix == SAFETENSORS_SUFFIX:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            loaded: Any = load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelRejected(f"'{path.name}' is not a readable safetensors file: {exc}") from exc
    elif suffix in TORCH_WEIGHT_SUFFIXES:
        if _is_torchscript_archive(path):
            raise ModelRejected(
                f"'{path.name}' is a TorchScript archive, not a state_dict; "
                "register it as a TorchScript model instead"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loaded = torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            if "weights only" in str(exc).lower():
                raise ModelRejected(
                    f"'{path.name}' is not a plain state_dict (arbitrary pickles are never loaded)"
                ) from exc
            raise ModelRejected(f"'{path.name}' is not a readable PyTorch weights file") from exc
        except Exception as exc:  # torch raises KeyError/RuntimeError/EOFError on garbage
            raise ModelRejected(
                f"'{path.name}' is not a readable PyTorch weights file "
                f"({type(exc).__name__}: {exc})"
            ) from exc
    else:
        raise ModelRejected(
            f"weights file '{path.name}' must end in .safetensors, .pt, .pth or .bin"
        )
    return _plain_state_dict(loaded, path.name)


def _is_torchscript_archive(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(name.endswith("/constants.pkl") or name == "constants.pkl" for name in names)


def _plain_state_dict(loaded: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(loaded, nn.Module):
        raise ModelRejected(f"'{name}' holds a whole module, not a state_dict")
    if not isinstance(loaded, Mapping):
        raise ModelRejected(
            f"'{name}' holds a {type(loaded).__name__}, not a state_dict (a mapping of tensors)"
        )
    if isinstance(loaded.get("state_dict"), Mapping):
        # training checkpoints often wrap the weights: {"state_dict": ..., "epoch": ...}
        loaded = loaded["state_dict"]
    if not loaded:
        raise ModelRejected(f"'{name}' holds an empty state_dict")
    bad = [
        f"'{key}' ({type(value).__name__})"
        for key, value in loaded.items()
        if not isinstance(key, str) or not isinstance(value, torch.Tensor)
    ]
    if bad:
        raise ModelRejected(
            f"'{name}' is not a plain state_dict: non-tensor values for " + _first_few(bad)
        )
    return dict(loaded)


def _quoted(names: list[str]) -> list[str]:
    return [f"'{name}'" for name in names]


def _first_few(items: list[str], limit: int = MAX_LISTED) -> str:
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown += f" and {len(items) - limit} more"
    return shown


# --------------------------------------------------------------------------- models


def _device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelRejected(f"unknown device {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelRejected(f"device {device!r} is not available on this machine")
    return dev


def load_eager(
    architecture: str, init_kwargs: dict, weights: Path, *, device: str = "cpu"
) -> nn.Module:
    """Build ``architecture(**init_kwargs)``, load ``weights`` strictly, return it in eval mode."""
    dev = _device(device)
    cls = resolve_architecture(architecture)
    if not isinstance(init_kwargs, Mapping) or not all(isinstance(k, str) for k in init_kwargs):
        raise ModelRejected("constructor arguments must be a JSON object with string keys")
    state = load_state_dict_file(Path(weights))
    try:
        model = cls(**init_kwargs)
    except TypeError as exc:
        raise ModelRejected(f"constructor rejected the arguments: {exc}") from exc
    except Exception as exc:
        raise ModelRejected(f"constructor failed: {type(exc).__name__}: {exc}") from exc

    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [
        f"'{k}' is {tuple(state[k].shape)} in the file but {tuple(v.shape)} in the model"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    reasons = []
    if missing:
        reasons.append(
            f"{len(missing)} weights missing from the file: " + _first_few(_quoted(missing))
        )
    if unexpected:
        reasons.append(
            f"{len(unexpected)} unexpected weights in the file: " + _first_few(_quoted(unexpected))
        )
    if mismatched:
        reasons.append(f"{len(mismatched)} shape mismatches: " + _first_few(mismatched))
    if reasons:
        raise ModelRejected(reasons)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # e.g. dtype problems the checks above do not catch
        raise ModelRejected(f"weights do not fit the architecture: {exc}") from exc
    return model.to(dev).eval()


def load_torchscript(path: Path, *, device: str = "cpu") -> torch.jit.ScriptModule:
    """Load a ``torch.jit.save`` archive (TorchScript runs no pickled Python code)."""
    dev = _device(device)
    path = Path(path)
    if not path.is_file():
        raise ModelRejected(f"TorchScript file '{path.name}' does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.10 deprecates jit
            model = torch.jit.load(str(path), map_location=dev)
    except Exception as exc:
        raise ModelRejected(
            f"'{path.name}' is not a TorchScript archive (save it with torch.jit.save)"
        ) from exc
    return model.eval()


def is_torchscript(model: nn.Module) -> bool:
    return isinstance(model, torch.jit.ScriptModule)


def resolve_cam_layer(model: nn.Module, cam_layer: str | None) -> str | None:
    """The named CAM layer, else the eager model's own ``cam_layer_name`` (if it has one)."""
    if cam_layer:
        return cam_layer
    if is_torchscript(model):
        return None
    default = getattr(model, "cam_layer_name", None)
    return default if isinstance(default, str) and default else None


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks (the registry records it for each model)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
