"""Helper of the batch tests: ingest the phantom cohort into the current workspace."""

from __future__ import annotations

from pathlib import Path


def ingest(data: Path) -> None:
    from oncohybrid.services.ingest import Ingestor

    with Ingestor() as ing:
        ing.ingest_paths([data])
