from __future__ import annotations

import json
from pathlib import Path

from core.commands import ProblemCommand
from explain import services


def _floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


class Command(ProblemCommand):
    help = (
        "Register a classifier: either --architecture package.module:Class with --weights "
        "(safetensors, or a .pt state_dict loaded with weights_only=True), or --torchscript FILE. "
        "The model is run once to check its output before it is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        form = parser.add_mutually_exclusive_group(required=True)
        form.add_argument(
            "--architecture", help="importable class, e.g. explain.compute.models:AttentionResNet"
        )
        form.add_argument("--torchscript", type=Path, help="a TorchScript file")
        parser.add_argument("--weights", type=Path, help="state_dict for --architecture")
        parser.add_argument(
            "--init-kwargs", default="{}", help="constructor arguments as a JSON object"
        )
        parser.add_argument(
            "--classes", required=True, help="class labels in output order, comma separated"
        )
        parser.add_argument(
            "--positive-class", help="the finding the study asks about (default: the last class)"
        )
        parser.add_argument(
            "--input-size", type=int, nargs=2, required=True, metavar=("HEIGHT", "WIDTH")
        )
        parser.add_argument("--channels", type=int, default=1)
        parser.add_argument("--mean", default="0.5", help="per channel, comma separated")
        parser.add_argument("--std", default="0.25", help="per channel, comma separated")
        parser.add_argument(
            "--cam-layer", default="", help="layer for CAM-type explainers (eager only)"
        )
        parser.add_argument("--description", default="")
        parser.add_argument("--user", help="username recorded in the audit trail")

    def handle(self, *args, **options):
        problems = []
        try:
            init_kwargs = json.loads(options["init_kwargs"])
        except json.JSONDecodeError as exc:
            problems.append(f"--init-kwargs is not valid JSON: {exc.msg}")
            init_kwargs = {}
        try:
            mean, std = _floats(options["mean"]), _floats(options["std"])
        except ValueError:
            problems.append("--mean and --std must be comma-separated numbers")
            mean, std = [], []
        if options["architecture"] and not options["weights"]:
            problems.append("--architecture needs --weights")
        if options["torchscript"] and options["weights"]:
            problems.append("--weights goes with --architecture, not with --torchscript")
        if problems:
            self.fail(problems)
        model = services.model_register(
            acting_user=self.acting_user(options["user"]),
            name=options["name"],
            form="torchscript" if options["torchscript"] else "eager",
            architecture=options["architecture"] or "",
            init_kwargs=init_kwargs,
            weights_path=options["weights"],
            torchscript_path=options["torchscript"],
            input_spec={
                "size": list(options["input_size"]),
                "channels": options["channels"],
                "mean": mean,
                "std": std,
            },
            class_labels=[c.strip() for c in options["classes"].split(",") if c.strip()],
            positive_class=options["positive_class"],
            cam_layer=options["cam_layer"],
            description=options["description"],
        )
        self.stdout.write(
            f"registered {model.name} ({model.get_form_display()}, sha256 {model.file_sha256[:12]}…)"
        )
        for name, info in model.explainers.items():
            status = "supported" if info["supported"] else f"unavailable: {info['reason']}"
            self.stdout.write(f"  {name:<22} {status}")
