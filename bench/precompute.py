"""Benchmark of the explanation engine.

Full run (needs the Django project; a temporary SQLite database and media folder
unless DATABASE_URL is set): for every explainer on the demo model and the
demo cases, seconds per case of

* calling the explainer directly (captum, the same inputs already in memory),
  `--batch` cases per call ("direct batched") and one case per call ("direct
  unbatched"), and
* the engine end to end: a precompute job through the task path (claim, load
  inputs, compute, resample, normalise, render the overlay, write the files,
  upsert the rows, mark done). With CELERY_BROKER_URL set and a worker
  running, the job goes through the real queue; otherwise tasks run in-process,

with the engine's overhead over the direct batched calls, in percent and in
milliseconds per case, and the total over all explainers. With tasks run
in-process, the CPU time of the direct batched calls and of the engine (all
threads of the process) is shown too: on a shared machine it varies less than
the wall clock does. Each figure is the
best of `--repeat` runs (three times as many for explainers whose three
measurements take under FAST_ROUND seconds), the three measurements of an
explainer interleaved so that a busy machine slows them alike.

`--direct-only` (no Django needed): direct calls only, unbatched versus
batched, on a randomly initialised demo model and random inputs.

    python bench/precompute.py [--cases 16] [--batch 8] [--repeat 3] [--device cpu|cuda]
                               [--explainers gradcam,saliency] [--direct-only]
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

FAST_ROUND = 3.0
"""Seconds under which one round of an explainer's three measurements counts as cheap."""
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


def direct_only(model, x, *, batch: int, device: torch.device, names, repeat: int) -> None:
    print(f"\nDirect calls: seconds per case, demo model {DEMO_INPUT_SPEC['size']} input, "
          f"{len(x)} cases, device {device}, best of {repeat}")
    print(f"{'explainer':<22}{'unbatched':>12}{f'batch {batch}':>12}{'speed-up':>10}")
    for name in names:
        run_direct(model, x[:2], name, batch=2, device=device)  # warm-up
        one = min(run_direct(model, x, name, batch=1, device=device) for _ in range(repeat)) / len(x)
        many = min(run_direct(model, x, name, batch=batch, device=device) for _ in range(repeat)) / len(x)
        print(f"{name:<22}{one:>12.4f}{many:>12.4f}{one / many:>9.2f}x", flush=True)


def _setup_engine(args):
    """A registered demo model and an imported demo collection in a scratch project."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    workdir = Path(tempfile.mkdtemp(prefix="xrs-bench-"))
    os.environ.setdefault("XRS_VAR_DIR", str(workdir / "var"))
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from safetensors.torch import save_file

    from demo.synthetic import generate_demo_dataset
    from explain import services
    from explain.models import ClassifierModel
    from library import services as library_services
    from library.models import Case, Collection

    if "DATABASE_URL" not in os.environ:
        call_command("migrate", verbosity=0)
    name = f"bench-{args.cases}"
    collection = Collection.objects.filter(name=name).first()
    if collection is None:
        generate_demo_dataset(workdir / "data", cases=args.cases, seed=5, overwrite=True)
        library_services.cases_import(acting_user=None, collection=name, paths=[workdir / "data" / "images"])
        collection = Collection.objects.get(name=name)
    torch.manual_seed(0)
    weights = workdir / "weights.safetensors"
    save_file(AttentionResNet().state_dict(), str(weights))
    record = ClassifierModel.objects.filter(name="bench-net").first() or services.model_register(
        acting_user=None, name="bench-net", form="eager", architecture="explain.compute.models:AttentionResNet",
        init_kwargs={}, weights_path=weights, input_spec=DEMO_INPUT_SPEC, class_labels=["normal", "nodule"],
        cam_layer="layer3",
    )
    cases = list(Case.objects.filter(collection=collection).order_by("pk"))
    return record, collection, cases


def run_engine(record, collection, name: str, *, batch: int) -> float:
    """Seconds for a job computing `name` for every case of the collection (new results)."""
    from explain import selectors, services
    from explain.models import Explanation

    # predictions exist from the warm-up job; drop this explainer's results so that the
    # job computes exactly this explainer's items
    Explanation.objects.filter(model=record, explainer=name).delete()
    started = time.perf_counter()
    job = services.precompute_start(
        acting_user=None, model=record, collection=collection, explainers=[name], with_metrics=False,
        batch_size=batch,
    )
    while (progress := selectors.precompute_progress(job=job))["status"] == "running":
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    if progress["failed"]:
        raise SystemExit(f"{name}: {progress['failed']} items failed: {progress['failures'][:1]}")
    return seconds


def _timed(function, *args, **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all its threads) of function(...)."""
    cpu, wall = time.process_time(), time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


def engine_versus_direct(args, names) -> None:
    record, collection, cases = _setup_engine(args)
    from config.celery import app
    from explain import runtime, selectors, services
    from explain.models import Explanation
    from library import model_input

    device = torch.device(args.device)
    x = torch.from_numpy(np.stack([model_input.case_model_input(case=c, input_spec=record.input_spec) for c in cases]))
    model = runtime.load_model(record, device)  # the engine's own (cached) copy
    # warm the engine's caches (model, inputs on disk) and store the predictions
    services.precompute_start(acting_user=None, model=record, collection=collection, explainers=["saliency"],
                              with_metrics=False, force=True)
    in_process = app.conf.task_always_eager  # else the engine's CPU time is the worker's, not ours
    n = len(cases)
    print(f"\nEngine end to end vs direct calls: seconds per case, demo model, {n} demo cases "
          f"({min(c.rows for c in cases)}-{max(c.rows for c in cases)} rows), batch {args.batch}, "
          f"device {device}, tasks {'in-process' if in_process else 'through the queue'}")
    print(f"{'':<22}{'wall clock':-^70}  {'CPU time, all threads':-^34}")
    header = (f"{'explainer':<22}{'direct batched':>15}{'direct unbatched':>17}{'engine':>10}"
              f"{'overhead':>10}{'overhead ms/case':>18}  {'direct':>8}{'engine':>8}{'overhead ms/case':>18}"
              f"{'runs':>6}")
    print(header)
    print("-" * len(header))
    totals = np.zeros(5)
    for name in names:
        run_direct(model, x[:2], name, batch=2, device=device)  # warm-up
        best = np.full(5, np.inf)
        rounds = done = 0
        while done < max(rounds, args.repeat):
            started = time.perf_counter()
            batched = _timed(run_direct, model, x, name, batch=args.batch, device=device)
            unbatched = _timed(run_direct, model, x, name, batch=1, device=device)
            engine = _timed(run_engine, record, collection, name, batch=args.batch)
            best = np.minimum(best, [batched[0], unbatched[0], engine[0], batched[1], engine[1]])
            done += 1
            if done == 1 and time.perf_counter() - started < FAST_ROUND:
                rounds = 3 * args.repeat  # cheap: more tries at a quiet moment of the machine
        per_case = best / n
        totals += per_case
        print(f"{_row(name, per_case, in_process)}{done:>6}", flush=True)
    print("-" * len(header))
    print(_row("all", totals, in_process))
    print("each figure: the best of `runs` interleaved runs; overhead = engine / direct batched - 1;\n"
          "load average (1, 5, 15 min) at the end: " + ", ".join(f"{load:.2f}" for load in os.getloadavg()))
    started = time.perf_counter()
    job = services.precompute_start(
        acting_user=None, model=record, collection=collection, explainers=["gradcam"], with_metrics=True,
        force=True, batch_size=args.batch,
    )
    while selectors.precompute_progress(job=job)["status"] == "running":
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    sample = Explanation.objects.filter(model=record, explainer="gradcam").order_by("pk").first()
    print(f"\ngradcam with quality metrics: {seconds / n:.3f} s per case through the engine; "
          f"status {selectors.precompute_progress(job=job)['status']}; computed on {sample.device}")
    print("metrics of one case:", {k: round(v, 4) if isinstance(v, float) else v for k, v in sample.metrics.items()})


def _row(name: str, per_case, in_process: bool) -> str:
    batched, unbatched, engine, cpu_direct, cpu_engine = per_case
    cpu = (f"{cpu_direct:>8.4f}{cpu_engine:>8.4f}{(cpu_engine - cpu_direct) * 1000:>18.1f}"
           if in_process else f"{'n/a':>8}{'n/a':>8}{'n/a':>18}")
    return (f"{name:<22}{batched:>15.4f}{unbatched:>17.4f}{engine:>10.4f}"
            f"{engine / batched - 1:>+10.1%}{(engine - batched) * 1000:>18.1f}  {cpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--explainers", default=",".join(EXPLAINERS))
    parser.add_argument("--direct-only", action="store_true", help="direct calls only (no Django needed)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [n for n in args.explainers.split(",") if n]
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"torch {torch.__version__} on {name}, {args.threads} CPU threads, {os.cpu_count()} CPUs")
    if args.direct_only:
        torch.manual_seed(0)
        model = AttentionResNet().to(device).eval()
        x = torch.randn(args.cases, 1, *DEMO_INPUT_SPEC["size"])
        direct_only(model, x, batch=args.batch, device=device, names=names, repeat=args.repeat)
    else:
        engine_versus_direct(args, names)


if __name__ == "__main__":
    main()
