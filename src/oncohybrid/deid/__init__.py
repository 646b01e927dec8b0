"""PET-safe de-identification: the DICOM PS3.15 Annex E profile on pydicom datasets.

Pure computation (no database, no files): :mod:`.table` holds the standard's Table E.1-1
as data with its edition, :mod:`.profile` the options, their CID 7050 codes and the safe
private PET attributes, :mod:`.engine` applies them to a dataset. The key store
(pseudonyms, UID map, date shifts) and the file copies are in
:mod:`oncohybrid.services.deid`.
"""

from oncohybrid.deid.engine import Deidentifier, Outcome, PatientKey, burned_in_reason
from oncohybrid.deid.profile import DEFAULT_OPTIONS, SAFE_PRIVATE, Option, parse_options
from oncohybrid.deid.table import load_table

__all__ = ["DEFAULT_OPTIONS", "SAFE_PRIVATE", "Deidentifier", "Option", "Outcome",
           "PatientKey", "burned_in_reason", "load_table", "parse_options"]
