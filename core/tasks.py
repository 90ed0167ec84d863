"""Tasks every deployment has: a probe that tells what a worker can do."""

from __future__ import annotations

import platform

from celery import shared_task


@shared_task(name="core.worker_probe", acks_late=True)
def worker_probe() -> dict:
    """Report the worker's host and whether it sees a CUDA device (used by health checks)."""
    import torch

    return {
        "hostname": platform.node(),
        "torch": torch.__version__,
        "cuda": bool(torch.cuda.is_available()),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
