"""What an ingest run reports: per-instance outcomes, the run summary, the progress bar."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from oncohybrid.services.ingest.sources import _walk_files


@dataclass
class IngestOutcome:
    """Result of ingesting one dataset (network) or file."""

    status: str  # "new" | "duplicate" | "conflict" | "skipped"
    path: str | None = None  # stored file (new/duplicate), copy kept aside (conflict), source
    reason: str | None = None  # why it was skipped
    sop_instance_uid: str | None = None
    study_instance_uid: str | None = None  # set by ingest_files_batch (completion tracking)


@dataclass
class IngestReport:
    """Summary of one ingest run; ``skipped`` lists (path, reason)."""

    new: int = 0
    duplicate: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ingest_id: int | None = None
    elapsed_s: float = 0.0
    #: same SOP Instance UID as a stored instance, other content: one dict per file with
    #: ``path``, ``sop_instance_uid``, ``stored_path``, ``stored_sha256``, ``new_sha256``
    #: and ``kept_as`` (the copy kept for review); never counted as duplicates.
    conflicts: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ingest_id": self.ingest_id,
            "new": self.new,
            "duplicate": self.duplicate,
            "n_conflicts": len(self.conflicts),
            "conflicts": list(self.conflicts),
            "n_skipped": len(self.skipped),
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "elapsed_s": round(self.elapsed_s, 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _progress_bar(roots: list[str]) -> Any:
    """A rich progress bar on stderr over the number of files (archives count as one)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    total = sum(1 for p in roots for _, problem in _walk_files(p) if problem is None)
    progress = Progress(
        TextColumn("ingest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )
    task = progress.add_task("ingest", total=total)

    class _Bar:
        def __enter__(self) -> _Bar:
            progress.start()
            return self

        def __exit__(self, *exc: object) -> None:
            progress.stop()

        def advance(self) -> None:
            progress.advance(task)

    return _Bar()
