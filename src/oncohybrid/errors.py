"""One exception family for the whole platform.

Messages name the file, series, attribute or JSON path and say what is wrong, so a
physician or PACS administrator can act on them. The CLI prints them without a
traceback and exits non-zero.
"""

from __future__ import annotations


class OncohybridError(Exception):
    """Base class of every error the platform raises on purpose."""

    exit_code: int = 1


class DicomError(OncohybridError):
    """A DICOM file or series that cannot be read or used (names file and attribute)."""


class GeometryError(DicomError):
    """A series whose geometry cannot form a volume (tilt, gaps, mixed orientation)."""


class SUVError(DicomError):
    """A PET series for which SUV cannot be computed (names the attribute/reason)."""


class SUVHeaderError(SUVError):
    """A PET header value that is garbage or outside its plausible range (names the
    attribute and the value); refused like invalid input, exit code 2."""

    exit_code = 2


class InputError(OncohybridError):
    """Invalid user input (JSON case files, CLI options); exit code 2."""

    exit_code = 2


class StoreError(OncohybridError):
    """Database or file-store problem."""


class PacsError(OncohybridError):
    """A DICOM network or DICOMweb peer refused or failed."""
