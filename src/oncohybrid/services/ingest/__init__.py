"""Ingest DICOM files, folders, ``.zip`` archives and network datasets into the study database.

The use-case behind ``oncohybrid ingest`` and the DICOM Storage SCP, by responsibility:

* :mod:`.sources` - finding files (folder walks, ``.zip`` members) and opening only
  regular files (a FIFO never blocks a run);
* :mod:`.headers` - reading and validating one file's header (no database): truncation,
  short pixel data, PS3.5 UIDs, the attributes every composite instance carries;
* :mod:`.index` - the database rows (hierarchy, instances, ingest logs) in one
  transaction per batch;
* :mod:`.ingestor` - :class:`Ingestor`, the orchestration: batches, the file store
  placement (copies, hard links, in place), duplicates and conflicts;
* :mod:`.report` - outcomes, the run report and the progress bar.

``from oncohybrid.services.ingest import Ingestor, read_header, ...`` keeps working.
"""

from oncohybrid.services.ingest.headers import (
    DEFER_SIZE,
    HEADER_TAGS,
    REQUIRED_ATTRIBUTES,
    HeaderRecord,
    SkipFile,
    read_header,
    record_from_dataset,
)
from oncohybrid.services.ingest.ingestor import BATCH_SIZE, Ingestor
from oncohybrid.services.ingest.report import IngestOutcome, IngestReport
from oncohybrid.services.ingest.sources import count_files

__all__ = [
    "BATCH_SIZE",
    "DEFER_SIZE",
    "HEADER_TAGS",
    "REQUIRED_ATTRIBUTES",
    "HeaderRecord",
    "IngestOutcome",
    "IngestReport",
    "Ingestor",
    "SkipFile",
    "count_files",
    "read_header",
    "record_from_dataset",
]
