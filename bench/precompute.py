"""Benchmark of the explanation engine.

Part 1 (pure compute, runs anywhere torch and captum run, GPU included):
seconds per case for every explainer on the demo model, unbatched (one case
per call) versus batched.

Part 2 (end to end, needs the Django project): the engine's throughput through
the task path (claim, load inputs, compute, resample, normalize, render PNG,
store, mark done) against calling the explainers directly on the same inputs
in the same run, as a ratio. With CELERY_BROKER_URL set and a worker running,
the job goes through the real queue; otherwise tasks run in-process.

    python bench/precompute.py [--cases 16] [--batch 8] [--device cpu|cuda] [--direct-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explain.compute.explainers import attention_map, attribute, resolve  # noqa: E402
from explain.compute.models import DEMO_INPUT_SPEC, AttentionResNet  # noqa: E402

EXPLAINERS = [
    "gradcam", "gradcam_plus_plus", "layercam", "saliency", "smoothgrad", "integrated_gradients",
    "gradient_shap", "guided_gradcam", "occlusion", "lime", "kernel_shap", "lrp", "attention",
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_direct(model, x: torch.Tensor, name: str, *, batch: int, device: torch.device) -> float:
    """Seconds for the whole of x, `batch` cases per call."""
    config = resolve(name, None, 0)
    _sync(device)
    started = time.perf_counter()
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch].to(device)
        if name == "attention":
            with torch.no_grad():
                attention_map(model, chunk)
        else:
            attribute(model, chunk, 1, config, cam_layer=model.cam_layer_name)
    _sync(device)
    return time.perf_counter() - started


def part_one(model, x, *, batch: int, device: torch.device, names) -> dict[str, tuple[float, float]]:
    print(f"\nPart 1: seconds per case, demo model {DEMO_INPUT_SPEC['size']} input, {len(x)} cases, device {device}")
    print(f"{'explainer':<22}{'unbatched':>12}{f'batch {batch}':>12}{'speed-up':>10}")
    results = {}
    for name in names:
        run_direct(model, x[:2], name, batch=2, device=device)  # warm-up
        one = run_direct(model, x, name, batch=1, device=device) / len(x)
        many = run_direct(model, x, name, batch=batch, device=device) / len(x)
        results[name] = (one, many)
        print(f"{name:<22}{one:>12.4f}{many:>12.4f}{one / many:>9.2f}x", flush=True)
    return results


def part_two(args, names) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    workdir = Path(tempfile.mkdtemp(prefix="xrs-bench-"))
    os.environ.setdefault("XRS_VAR_DIR", str(workdir / "var"))
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    from explain import selectors, services
    from explain.demo.synthetic import generate_demo_dataset
    from explain.models import Case, Collection, Explanation

    if "DATABASE_URL" not in os.environ:
        call_command("migrate", verbosity=0)
    generate_demo_dataset(workdir / "data", cases=args.cases, seed=5, overwrite=True)
    collection = Collection.objects.filter(name="bench").first()
    if collection is None:
        services.cases_import(acting_user=None, collection="bench", paths=[workdir / "data" / "images"])
        collection = Collection.objects.get(name="bench")
    torch.manual_seed(0)
    weights = workdir / "weights.safetensors"
    from safetensors.torch import save_file

    save_file(AttentionResNet().state_dict(), str(weights))
    from explain.models import ClassifierModel

    record = ClassifierModel.objects.filter(name="bench-net").first() or services.model_register(
        acting_user=None, name="bench-net", form="eager", architecture="explain.compute.models:AttentionResNet",
        init_kwargs={}, weights_path=weights, input_spec=DEMO_INPUT_SPEC, class_labels=["normal", "nodule"],
        cam_layer="layer3",
    )
    cases = list(Case.objects.filter(collection=collection).order_by("pk"))
    x = torch.from_numpy(np.stack([selectors.case_model_input(case=c, input_spec=record.input_spec) for c in cases]))
    from explain import runtime

    device = torch.device(args.device)
    model = runtime.load_model(record, device)
    # warm the engine's caches (model load, inputs) with the prediction items
    services.precompute_start(acting_user=None, model=record, collection=collection, explainers=["saliency"],
                              with_metrics=False, force=True)
    print(f"\nPart 2: engine end to end vs direct calls, {len(cases)} cases, batch {args.batch}, device {device}")
    print(f"{'explainer':<22}{'direct s':>10}{'engine s':>10}{'overhead':>10}")
    total_direct = total_engine = 0.0
    for name in names:
        direct = run_direct(model, x, name, batch=args.batch, device=device)
        # predictions exist from the warm-up job; drop this explainer's results so the job
        # computes exactly the explainer's items
        Explanation.objects.filter(model=record, explainer=name).delete()
        started = time.perf_counter()
        job = services.precompute_start(
            acting_user=None, model=record, collection=collection, explainers=[name], with_metrics=False,
            batch_size=args.batch,
        )
        while selectors.precompute_progress(job=job)["status"] == "running":
            time.sleep(0.05)
        engine = time.perf_counter() - started
        total_direct += direct
        total_engine += engine
        print(f"{name:<22}{direct:>10.3f}{engine:>10.3f}{engine / direct - 1:>9.1%}", flush=True)
    print(f"{'all':<22}{total_direct:>10.3f}{total_engine:>10.3f}{total_engine / total_direct - 1:>9.1%}")
    started = time.perf_counter()
    job = services.precompute_start(
        acting_user=None, model=record, collection=collection, explainers=["gradcam"], with_metrics=True,
        force=True, batch_size=args.batch,
    )
    seconds = time.perf_counter() - started
    sample = Explanation.objects.filter(model=record, explainer="gradcam").order_by("pk").first()
    print(f"\ngradcam with quality metrics: {seconds / len(cases):.3f} s per case through the engine; "
          f"status {selectors.precompute_progress(job=job)['status']}; computed on {sample.device}")
    print("metrics of one case:", {k: round(v, 4) if isinstance(v, float) else v for k, v in sample.metrics.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--explainers", default=",".join(EXPLAINERS))
    parser.add_argument("--direct-only", action="store_true", help="part 1 only (no Django needed)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.explainers.split(",") if n]
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = AttentionResNet().to(device).eval()
    x = torch.randn(args.cases, 1, *DEMO_INPUT_SPEC["size"])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}, {args.threads} CPU threads")
    part_one(model, x, batch=args.batch, device=device, names=names)
    if not args.direct_only:
        part_two(args, names)


if __name__ == "__main__":
    main()
