"""Writes of the explain app: the model registry and the explanation engine's jobs. Every
service takes `acting_user` and records an audit row in the same transaction as its write.
(The worker side of a job, which no user starts, is :mod:`explain.worker`.)"""

from core.errors import ServiceError
from explain.services.precompute import precompute_cancel, precompute_start
from explain.services.registry import model_register, model_register_upload

__all__ = [
    "ServiceError",
    "model_register",
    "model_register_upload",
    "precompute_cancel",
    "precompute_start",
]
