from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.commands import ProblemCommand
from explain import runtime
from explain.compute import engine
from explain.explainer_requests import canonical_explainer, explainer_config
from explain.models import ClassifierModel
from library import model_input
from library.models import Case


class Command(ProblemCommand):
    help = (
        "Explain one case with one explainer, without the queue, and write the heatmap on the "
        "case's pixel grid (float32 .npy)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", required=True)
        parser.add_argument("--case", required=True, type=int, help="case id")
        parser.add_argument("--explainer", required=True)
        parser.add_argument("--params", default="{}", help="explainer parameters as JSON")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--placebo", action="store_true", help="explain the weight-randomized model"
        )
        parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
        parser.add_argument("--out", required=True, type=Path)

    def handle(self, *args, **options):
        problems = []
        model = ClassifierModel.objects.filter(name=options["model"]).first()
        case = Case.objects.filter(pk=options["case"]).first()
        if model is None:
            problems.append(f"--model {options['model']!r}: no such registered model")
        if case is None:
            problems.append(f"--case {options['case']}: no such case")
        name = canonical_explainer(options["explainer"])
        if model is not None and not model.explainers.get(name, {}).get("supported"):
            reason = model.explainers.get(name, {}).get("reason", "unknown explainer")
            problems.append(f"--explainer {options['explainer']!r}: {reason}")
        if name == "similar_cases":
            problems.append("similar_cases gives cases, not a heatmap; use precompute")
        try:
            params = json.loads(options["params"])
        except json.JSONDecodeError as exc:
            problems.append(f"--params is not valid JSON: {exc.msg}")
            params = {}
        if problems:
            self.fail(problems)
        try:
            config = explainer_config(
                {"explainer": name, "params": params, "seed": options["seed"]}
            )
        except ValueError as exc:
            self.fail([str(exc)])
        device = engine.pick_device(options["device"])
        net = runtime.load_model(model, device)
        if options["placebo"]:
            net = runtime.load_randomized_model(model, device, seed=config.seed)
        inputs = engine.CaseInput(
            case_id=case.pk,
            x=model_input.case_model_input(case=case, input_spec=model.input_spec),
            rows=case.rows,
            columns=case.columns,
        )
        output = engine.explain_batch(
            net,
            [inputs],
            config,
            target=model.class_labels.index(model.positive_class),
            device=device,
            cam_layer=model.cam_layer or None,
            with_metrics=False,
        )[0]
        out = Path(options["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, output.heatmap.astype(np.float32), allow_pickle=False)
        self.stdout.write(
            f"{name} of case {case.pk} ({case.rows}×{case.columns}) on {device}: range "
            f"[{output.raw_min:.4g}, {output.raw_max:.4g}] in {output.seconds:.2f} s -> {out}"
        )
