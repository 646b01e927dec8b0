"""Lesion tracking across timepoints: registration-aware matching with overrides.

See ``oncohybrid.tracking.match`` and docs/tracking.md.
"""

from oncohybrid.tracking.match import (
    LesionObservation,
    Match,
    MatchParams,
    NewLesion,
    Override,
    OverrideKind,
    TimepointLesions,
    TimepointMatch,
    TrackingResult,
    track_lesions,
)

__all__ = [
    "LesionObservation",
    "Match",
    "MatchParams",
    "NewLesion",
    "Override",
    "OverrideKind",
    "TimepointLesions",
    "TimepointMatch",
    "TrackingResult",
    "track_lesions",
]
