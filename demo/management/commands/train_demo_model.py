from __future__ import annotations

import json
from pathlib import Path

import torch

from core.commands import ProblemCommand
from demo import training
from explain.compute.models import DEMO_CLASS_LABELS, DEMO_INPUT_SPEC, AttentionResNet


class Command(ProblemCommand):
    help = (
        "Train the demo attention ResNet on the train split of a demo dataset (CPU), print its "
        "held-out AUC, and save safetensors weights, a TorchScript export and metrics.json to OUT."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--data", type=Path, required=True, help="a folder written by make_demo_data"
        )
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--epochs", type=int, default=None)
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        data_dir: Path = options["data"]
        if not (data_dir / "labels.csv").is_file():
            self.fail([f"{data_dir}: no labels.csv here; run make_demo_data first"])
        try:
            # through the serving pipeline (library.imaging), so training sees what serving feeds
            arrays = training.load_training_arrays(data_dir, input_spec=DEMO_INPUT_SPEC)
        except training.TrainingDataError as exc:
            self.fail([str(exc)])
        epochs = options["epochs"] or training.DEFAULT_EPOCHS
        bar = self.progress_bar(total=epochs, desc="training", enabled=not options["no_progress"])
        bar.unit = "epoch"

        def progress(stats) -> None:
            bar.set_postfix(loss=f"{stats.loss:.3f}", test_auc=f"{stats.test_auc:.3f}")
            bar.update(1)

        try:
            result = training.train_demo_model(
                arrays.train_x,
                arrays.train_y,
                arrays.test_x,
                arrays.test_y,
                seed=options["seed"],
                epochs=epochs,
                progress=progress,
            )
        finally:
            bar.close()
        out: Path = options["out"]
        out.mkdir(parents=True, exist_ok=True)
        weights_sha = training.save_weights(result.model, out / "weights.safetensors")
        example = torch.from_numpy(arrays.test_x[:1])
        ts_sha = training.export_torchscript(
            result.model, out / "model.torchscript.pt", example=example
        )
        init_kwargs = {
            "in_channels": DEMO_INPUT_SPEC["channels"],
            "num_classes": len(DEMO_CLASS_LABELS),
        }
        init_kwargs["width"] = result.settings["width"]
        metrics = {
            "test_auc": result.test_auc,
            "train_seconds": result.train_seconds,
            "epochs": epochs,
            "seed": options["seed"],
            "train_cases": int(len(arrays.train_y)),
            "test_cases": int(len(arrays.test_y)),
            "architecture": f"{AttentionResNet.__module__}:{AttentionResNet.__name__}",
            "init_kwargs": init_kwargs,
            "cam_layer": AttentionResNet.cam_layer_name,
            "input_spec": DEMO_INPUT_SPEC,
            "class_labels": DEMO_CLASS_LABELS,
            "weights_sha256": weights_sha,
            "torchscript_sha256": ts_sha,
        }
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
        self.stdout.write(
            f"held-out AUC {result.test_auc:.3f} on {len(arrays.test_y)} test cases "
            f"(trained on {len(arrays.train_y)} in {result.train_seconds:.1f} s); saved to {out}"
        )
