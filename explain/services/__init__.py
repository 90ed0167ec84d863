"""Writes of the explain app: the case library, the model registry and the
explanation engine's jobs. Every service takes `acting_user` and records an
audit row in the same transaction as its write."""

from core.errors import ServiceError
from explain.services.precompute import precompute_cancel, precompute_run_items, precompute_start
from explain.services.registry import model_register
from library.models import LesionMask
from library.services import (
    ImportReport,
    TemporaryFolder,
    cases_import,
    cases_import_uploads,
    collection_create,
    collection_get_or_create,
    masks_to_folder,
    uploaded_files_to_folder,
)

__all__ = [
    "ImportReport",
    "LesionMask",
    "ServiceError",
    "TemporaryFolder",
    "cases_import",
    "cases_import_uploads",
    "collection_create",
    "collection_get_or_create",
    "masks_to_folder",
    "model_register",
    "precompute_cancel",
    "precompute_run_items",
    "precompute_start",
    "uploaded_files_to_folder",
]
