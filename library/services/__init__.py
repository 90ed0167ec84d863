"""Writes of the case library.

Every service takes `acting_user` and records an audit row in the same transaction as its
write. Files are staged in storage first and removed again if the transaction fails
(core.storage), so an import never leaves half a case.

- collection: collection_create, collection_get_or_create
- case_import: cases_import (checks the request, then each file) and its ImportReport
- case_reading / case_storing / mask_sources: one file read into a case, then stored
- uploads: uploaded files to a temporary folder; cases_import_uploads
- case_history: case_clinical_history_set (the coordinator's edit of a case's clinical history)
"""

from library.import_sources import UPLOAD_MAX_FILES
from library.services.case_history import case_clinical_history_set
from library.services.case_import import ImportReport, cases_import
from library.services.case_storing import THUMBNAIL_SIZE
from library.services.collection import collection_create, collection_get_or_create
from library.services.uploads import (
    TemporaryFolder,
    cases_import_uploads,
    masks_to_folder,
    uploaded_file_path,
    uploaded_files_to_folder,
)

__all__ = [
    "THUMBNAIL_SIZE",
    "UPLOAD_MAX_FILES",
    "ImportReport",
    "TemporaryFolder",
    "case_clinical_history_set",
    "cases_import",
    "cases_import_uploads",
    "collection_create",
    "collection_get_or_create",
    "masks_to_folder",
    "uploaded_file_path",
    "uploaded_files_to_folder",
]
