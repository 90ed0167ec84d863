"""Which explanation methods a registered model supports, and why the others are unavailable.

The explanation engine implements the methods listed in :data:`EXPLAINERS`. Each method needs
some of the *requirements* below; :func:`explainer_support` inspects a model with one probe
forward (and one backward) and reports, per explainer, whether every requirement holds and,
if not, a reason that names the offending module or layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from captum.attr._core.lrp import SUPPORTED_LAYERS_WITH_RULES, SUPPORTED_NON_LINEAR_LAYERS
from captum.attr._utils.lrp_rules import PropagationRule
from torch import nn

from explain.compute.loading import InputSpec, ModelRejected, is_torchscript, resolve_cam_layer

# Requirements -------------------------------------------------------------------------------
INPUTS = "inputs"  # the model can be called on a batch of inputs
OUTPUTS = "outputs"  # it returns one score per class
INPUT_GRADIENTS = "input_gradients"  # the class score is differentiable w.r.t. the input
HOOKS = "hooks"  # forward/backward hooks can be attached to submodules (eager only)
CAM_LAYER = "cam_layer"  # a named layer, used once, giving an (N, C, h, w) feature map
DISTINCT_RELUS = "distinct_relus"  # every nn.ReLU is its own module, used once, not in place
LRP_RULES = "lrp_rules"  # every leaf module has an LRP rule, none reused, nothing in place
ATTENTION_MAP = "attention_map"  # a module stores its spatial attention map in `last_map`
EMBEDDING = "embedding"  # the model has an `embedding(x)` method (penultimate features)

REQUIREMENT_ORDER = (
    INPUTS,
    OUTPUTS,
    HOOKS,
    CAM_LAYER,
    INPUT_GRADIENTS,
    DISTINCT_RELUS,
    LRP_RULES,
    ATTENTION_MAP,
    EMBEDDING,
)

LISTED_MODULES = 3
"""How many offending modules a reason names before summarising the rest."""

TORCHSCRIPT_NO_HOOKS = "TorchScript modules accept no forward hooks"
TORCHSCRIPT_NO_EMBEDDING = (
    "needs the model's penultimate embedding, which TorchScript does not expose"
)


@dataclass(frozen=True)
class ExplainerInfo:
    name: str
    family: str  # "cam", "gradient", "hybrid", "perturbation", "relevance", "model"
    label: str  # human title shown to study designers
    needs: frozenset[str]


def _info(name: str, family: str, label: str, *needs: str) -> tuple[str, ExplainerInfo]:
    return name, ExplainerInfo(name, family, label, frozenset((INPUTS, OUTPUTS, *needs)))


EXPLAINERS: dict[str, ExplainerInfo] = dict(
    [
        _info("gradcam", "cam", "Grad-CAM", HOOKS, CAM_LAYER),
        _info("gradcam_plus_plus", "cam", "Grad-CAM++", HOOKS, CAM_LAYER),
        _info("layercam", "cam", "LayerCAM", HOOKS, CAM_LAYER),
        _info("saliency", "gradient", "Saliency (input gradients)", INPUT_GRADIENTS),
        _info("smoothgrad", "gradient", "SmoothGrad", INPUT_GRADIENTS),
        _info("integrated_gradients", "gradient", "Integrated Gradients", INPUT_GRADIENTS),
        _info("gradient_shap", "gradient", "GradientSHAP", INPUT_GRADIENTS),
        _info(
            "guided_gradcam",
            "hybrid",
            "Guided Grad-CAM",
            HOOKS,
            CAM_LAYER,
            INPUT_GRADIENTS,
            DISTINCT_RELUS,
        ),
        _info("occlusion", "perturbation", "Occlusion"),
        _info("lime", "perturbation", "LIME"),
        _info("kernel_shap", "perturbation", "Kernel SHAP"),
        _info(
            "lrp",
            "relevance",
            "Layer-wise Relevance Propagation (LRP)",
            HOOKS,
            INPUT_GRADIENTS,
            LRP_RULES,
        ),
        _info("attention", "model", "Model attention map", HOOKS, ATTENTION_MAP),
        _info("similar_cases", "model", "Similar cases", EMBEDDING),
    ]
)
"""Ordered: this is the order in which explainers are offered to study designers."""

FORMS = ("eager", "torchscript")


@dataclass
class ForwardTrace:
    """What one probe forward/backward revealed; ``problems`` maps requirement -> reason."""

    form: str
    cam_layer: str | None
    cam_shape: tuple[int, int] | None = None
    cam_problem: str | None = None
    attention_module: str | None = None
    embedding_size: int | None = None
    problems: dict[str, str] = field(default_factory=dict)


def probe_input(spec: InputSpec, model: nn.Module | None = None) -> torch.Tensor:
    """A fixed-seed random image in [0, 1], normalised with the spec, on the model's device."""
    generator = torch.Generator().manual_seed(0)
    h, w = spec.size
    x = torch.rand((1, spec.channels, h, w), generator=generator)
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    x = (x - mean) / std
    if model is not None:
        ref = next(iter(model.parameters()), None)
        if ref is None:
            ref = next(iter(model.buffers()), None)
        if ref is not None:
            dtype = ref.dtype if ref.dtype.is_floating_point else x.dtype
            x = x.to(device=ref.device, dtype=dtype)
    return x


def _display(name: str) -> str:
    return name or "(model)"


def _module_ref(name: str, module: nn.Module) -> str:
    return f"module '{_display(name)}' ({type(module).__name__})"


def _summarise(problems: list[str]) -> str:
    text = ", ".join(problems[:LISTED_MODULES])
    if len(problems) > LISTED_MODULES:
        text += f" and {len(problems) - LISTED_MODULES} more"
    return text


def _has_lrp_rule(module: nn.Module) -> bool:
    if hasattr(module, "rule"):
        return isinstance(module.rule, PropagationRule)
    kind = type(module)  # captum matches exact types, not subclasses
    return kind in SUPPORTED_LAYERS_WITH_RULES or kind in SUPPORTED_NON_LINEAR_LAYERS


def _times(n: int) -> str:
    return f"{n} times"


def trace_forward(model: nn.Module, *, spec: InputSpec, cam_layer: str | None) -> ForwardTrace:
    """Run one forward (with hooks on every module, for eager models) and one backward."""
    form = "torchscript" if is_torchscript(model) else "eager"
    trace = ForwardTrace(form=form, cam_layer=cam_layer)
    x = probe_input(spec, model).requires_grad_(True)

    calls: dict[int, int] = {}
    cam_outputs: list[object] = []
    handles = []
    modules: list[tuple[str, nn.Module]] = []
    cam_module: nn.Module | None = None
    attention_before: dict[str, int | None] = {}
    if form == "eager":
        modules = [(n, m) for n, m in model.named_modules() if n]
        for _name, module in modules:
            calls[id(module)] = 0

            def count(mod, _inputs, output, key=id(module)):
                calls[key] += 1

            handles.append(module.register_forward_hook(count))
        if cam_layer is not None:
            cam_module = dict(model.named_modules()).get(cam_layer)
            if cam_module is not None:
                handles.append(
                    cam_module.register_forward_hook(lambda m, i, o: cam_outputs.append(o))
                )
        for name, module in modules:
            if hasattr(module, "last_map"):
                value = module.last_map
                attention_before[name] = id(value) if value is not None else None

    try:
        with torch.enable_grad():
            output = model(x)
    except Exception as exc:
        raise ModelRejected(f"forward pass failed: {type(exc).__name__}: {exc}") from exc
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or output.shape[0] != 1:
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelRejected(f"model output is {shape}; expected a tensor of shape (1, classes)")

    cam_tensor = _check_cam_layer(trace, model, cam_module, cam_outputs, calls)
    _check_gradients(trace, output, x, cam_tensor)
    if form == "torchscript":
        for requirement in (HOOKS, CAM_LAYER, DISTINCT_RELUS, LRP_RULES, ATTENTION_MAP):
            trace.problems[requirement] = TORCHSCRIPT_NO_HOOKS
        trace.problems[EMBEDDING] = TORCHSCRIPT_NO_EMBEDDING
        return trace

    _check_relus(trace, modules, calls)
    _check_lrp(trace, modules, calls)
    if LRP_RULES not in trace.problems and INPUT_GRADIENTS not in trace.problems:
        _trial_lrp(trace, model, x)
    _check_attention(trace, modules, attention_before)
    _check_embedding(trace, model, x.detach())
    return trace


def _check_cam_layer(
    trace: ForwardTrace,
    model: nn.Module,
    cam_module: nn.Module | None,
    cam_outputs: list[object],
    calls: dict[int, int],
) -> torch.Tensor | None:
    name = trace.cam_layer
    if trace.form == "torchscript":
        return None
    problem = None
    tensor = None
    if name is None:
        problem = "no CAM layer was named"
    elif cam_module is None:
        problem = f"layer '{name}' does not exist in the model"
    elif not cam_outputs:
        problem = f"layer '{name}' ({type(cam_module).__name__}) did not run during the forward"
    elif calls.get(id(cam_module), len(cam_outputs)) > 1 or len(cam_outputs) > 1:
        problem = (
            f"layer '{name}' ({type(cam_module).__name__}) is applied "
            f"{_times(len(cam_outputs))} per forward; a CAM layer must be used once"
        )
    elif not isinstance(cam_outputs[0], torch.Tensor):
        problem = (
            f"layer '{name}' ({type(cam_module).__name__}) returns a "
            f"{type(cam_outputs[0]).__name__}, not a tensor"
        )
    else:
        out = cam_outputs[0]
        if out.dim() != 4 or out.shape[0] != 1:
            problem = (
                f"layer '{name}' ({type(cam_module).__name__}) gives output of shape "
                f"{tuple(out.shape)}, not a 4-D feature map (N, C, h, w)"
            )
        else:
            tensor = out
            trace.cam_shape = (int(out.shape[2]), int(out.shape[3]))
    if problem is not None:
        trace.cam_problem = problem
        trace.problems[CAM_LAYER] = (
            f"{problem}; CAM methods need a layer with a 4-D feature map (N, C, h, w)"
        )
    return tensor


def _check_gradients(
    trace: ForwardTrace, output: torch.Tensor, x: torch.Tensor, cam: torch.Tensor | None
) -> None:
    requirement = "gradient methods need the class score to be differentiable in the input"
    if not torch.isfinite(output).all():
        trace.problems[INPUT_GRADIENTS] = (
            f"model output holds NaN or infinite values; {requirement}"
        )
        return
    score = output[0, int(output[0].argmax())]
    if not score.requires_grad:
        trace.problems[INPUT_GRADIENTS] = f"the model output carries no gradient; {requirement}"
        if cam is not None:
            trace.problems[CAM_LAYER] = (
                f"the model output carries no gradient to layer '{trace.cam_layer}'; "
                "CAM methods need gradients at the CAM layer"
            )
        return
    targets = [x] + ([cam] if cam is not None and cam.requires_grad else [])
    try:
        grads = torch.autograd.grad(score, targets, allow_unused=True)
    except RuntimeError as exc:
        trace.problems[INPUT_GRADIENTS] = f"backward pass failed ({exc}); {requirement}"
        return
    if grads[0] is None:
        trace.problems[INPUT_GRADIENTS] = f"the output does not depend on the input; {requirement}"
    elif not torch.isfinite(grads[0]).all():
        trace.problems[INPUT_GRADIENTS] = f"input gradients are NaN or infinite; {requirement}"
    if cam is not None and (len(grads) < 2 or grads[1] is None):
        trace.problems[CAM_LAYER] = (
            f"no gradient reaches layer '{trace.cam_layer}' from the class score; "
            "CAM methods need gradients at the CAM layer"
        )


def _check_relus(
    trace: ForwardTrace, modules: list[tuple[str, nn.Module]], calls: dict[int, int]
) -> None:
    relus = [(n, m) for n, m in modules if isinstance(m, nn.ReLU)]
    if not relus:
        trace.problems[DISTINCT_RELUS] = (
            "the model has no nn.ReLU modules; guided backpropagation overrides ReLU modules "
            "(functional ReLUs are not overridden)"
        )
        return
    bad = []
    for name, module in relus:
        if calls[id(module)] > 1:
            bad.append(
                f"{_module_ref(name, module)} is applied {_times(calls[id(module)])} per forward"
            )
        if getattr(module, "inplace", False) is True:
            bad.append(f"{_module_ref(name, module)} works in place (inplace=True)")
    if bad:
        trace.problems[DISTINCT_RELUS] = (
            f"{_summarise(bad)}; guided backpropagation needs a distinct ReLU module per use, "
            "not in place"
        )


def _check_lrp(
    trace: ForwardTrace, modules: list[tuple[str, nn.Module]], calls: dict[int, int]
) -> None:
    leaves = [(n, m) for n, m in modules if next(m.children(), None) is None]
    if not leaves:
        trace.problems[LRP_RULES] = "the model has no submodules to attach LRP rules to"
        return
    bad = []
    for name, module in leaves:
        if not _has_lrp_rule(module):
            if hasattr(module, "rule"):
                bad.append(f"{_module_ref(name, module)} has a `rule` that is no LRP rule")
            else:
                bad.append(f"{_module_ref(name, module)} has no LRP rule")
        if calls[id(module)] > 1:
            bad.append(
                f"{_module_ref(name, module)} is applied {_times(calls[id(module)])} per forward"
            )
        if getattr(module, "inplace", False) is True:
            bad.append(f"{_module_ref(name, module)} works in place (inplace=True)")
    if bad:
        trace.problems[LRP_RULES] = (
            f"{_summarise(bad)}; LRP needs a rule for every leaf module "
            "(a captum default or a `rule` attribute), each used once and none in place"
        )


@contextmanager
def keep_lrp_rules(model: nn.Module) -> Iterator[None]:
    """Restore the modules' own ``rule`` attributes afterwards.

    captum's ``LRP.attribute`` deletes every ``rule`` attribute when it finishes, including
    rules the model author set, so a second LRP call on the same model would fail.
    """
    saved = {module: vars(module)["rule"] for module in model.modules() if "rule" in vars(module)}
    try:
        yield
    finally:
        for module in model.modules():
            if module in saved:
                module.rule = saved[module]
            elif "rule" in vars(module):
                del module.rule


def _trial_lrp(trace: ForwardTrace, model: nn.Module, x: torch.Tensor) -> None:
    """Run captum's LRP once: the static checks miss e.g. broadcasting multi-input modules."""
    from captum.attr import LRP

    requirement = "LRP must run through captum on this model"
    try:
        with keep_lrp_rules(model), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            relevance = LRP(model).attribute(x.detach().clone(), target=0)
    except Exception as exc:
        trace.problems[LRP_RULES] = (
            f"a trial LRP run failed ({type(exc).__name__}: {exc}); {requirement}"
        )
        return
    if not torch.isfinite(relevance).all():
        trace.problems[LRP_RULES] = f"a trial LRP run gave NaN or infinite relevance; {requirement}"


def _check_attention(
    trace: ForwardTrace, modules: list[tuple[str, nn.Module]], before: dict[str, int | None]
) -> None:
    requirement = "the attention explainer needs a module that stores its map in `last_map`"
    if not before:
        trace.problems[ATTENTION_MAP] = f"no module has a `last_map` attribute; {requirement}"
        return
    by_name = dict(modules)
    problems = []
    for name, old_id in before.items():
        value = getattr(by_name[name], "last_map", None)
        ref = _module_ref(name, by_name[name])
        if not isinstance(value, torch.Tensor) or id(value) == old_id:
            problems.append(f"{ref} did not store a tensor in `last_map` during the forward")
            continue
        shape = tuple(value.shape)
        if not (len(shape) == 3 or (len(shape) == 4 and shape[1] == 1)) or shape[0] != 1:
            problems.append(
                f"{ref} stores `last_map` of shape {shape}, not (1, h, w) or (1, 1, h, w)"
            )
            continue
        trace.attention_module = name
        return
    trace.problems[ATTENTION_MAP] = f"{_summarise(problems)}; {requirement}"


def _check_embedding(trace: ForwardTrace, model: nn.Module, x: torch.Tensor) -> None:
    requirement = "similar cases need an `embedding(x)` method returning (1, D) features"
    method = getattr(model, "embedding", None)
    if not callable(method) or isinstance(method, nn.Module):
        trace.problems[EMBEDDING] = f"the model has no `embedding` method; {requirement}"
        return
    try:
        with torch.no_grad():
            emb = method(x)
    except Exception as exc:
        trace.problems[EMBEDDING] = (
            f"`embedding(x)` failed: {type(exc).__name__}: {exc}; {requirement}"
        )
        return
    if not isinstance(emb, torch.Tensor) or emb.dim() != 2 or emb.shape[0] != 1:
        shape = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
        trace.problems[EMBEDDING] = f"`embedding(x)` returned {shape}; {requirement}"
    elif emb.shape[1] == 0 or not torch.isfinite(emb).all():
        trace.problems[EMBEDDING] = f"`embedding(x)` is empty or not finite; {requirement}"
    else:
        trace.embedding_size = int(emb.shape[1])


def support_from_trace(trace: ForwardTrace) -> dict[str, dict]:
    result: dict[str, dict] = {}
    for name, info in EXPLAINERS.items():
        reasons: list[str] = []
        for requirement in REQUIREMENT_ORDER:
            reason = trace.problems.get(requirement)
            if requirement in info.needs and reason and reason not in reasons:
                reasons.append(reason)
        result[name] = {"supported": not reasons, "reason": "; ".join(reasons)}
    return result


def explainer_support(
    model: nn.Module, *, form: str, cam_layer: str | None, spec: InputSpec
) -> dict[str, dict]:
    """Per explainer: ``{"supported": bool, "reason": str}`` (reason empty when supported).

    ``cam_layer`` None falls back to the model's ``cam_layer_name`` as in
    :func:`~explain.compute.model_check.check_model` (whose result already holds this mapping).
    Runs one probe forward and backward; raises :class:`ModelRejected` if the forward fails.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if (form == "torchscript") != is_torchscript(model):
        actual = "torchscript" if is_torchscript(model) else "eager"
        raise ValueError(f"form {form!r} given for a model that is {actual}")
    was_training = model.training
    model.eval()
    try:
        cam = resolve_cam_layer(model, cam_layer) if form == "eager" else None
        trace = trace_forward(model, spec=spec, cam_layer=cam)
    finally:
        model.train(was_training)
    return support_from_trace(trace)
