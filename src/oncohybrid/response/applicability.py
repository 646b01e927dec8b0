"""Which tracers and modalities each response criterion is valid for (pure).

- PERCIST 1.0 (Wahl RL et al., J Nucl Med 2009;50:122S), EORTC 1999 (Young H et al.,
  Eur J Cancer 1999;35:1773), Deauville / Lugano PET (Cheson BD et al., J Clin Oncol
  2014;32:3059), LYRIC (Cheson BD et al., Blood 2016;128:2489): **FDG PET** (LYRIC: PET/CT).
- Krenning score (Krenning EP et al., Q J Nucl Med 1995;39:Suppl 1; Hope TA et al., J Nucl
  Med 2023 for SSTR PET): **somatostatin-receptor imaging**: Ga-68 DOTATATE/DOTATOC/DOTANOC,
  In-111 pentetreotide, Cu-64 DOTATATE.
- RECIP 1.0 (Gafita A et al., J Nucl Med 2022;63:1651): **PSMA PET** (Ga-68 / F-18 ligands).
- RECIST 1.1, iRECIST, mRECIST, Choi, Lugano CT: **CT or MR** measurements; the PET tracer
  of a PET/CT does not matter to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from oncohybrid.errors import InputError

# Tracer family names as dicom.tracer identifies them (a test keeps the two in step); the
# response engine imports nothing of the platform but errors (docs/architecture.md).
FDG, SSTR, PSMA, UNKNOWN = "FDG", "SSTR", "PSMA", "unknown"


class TracerInfo(Protocol):
    """What this module needs of a tracer (dicom.tracer.TracerInfo provides it)."""

    @property
    def family(self) -> str: ...
    @property
    def radionuclide(self) -> str | None: ...
    @property
    def imaging(self) -> str: ...
    @property
    def problems(self) -> tuple[str, ...]: ...
    def summary(self) -> str: ...


@dataclass(frozen=True)
class Applicability:
    """Tracer families, radionuclides (None: any) and imaging a criterion is valid for."""

    families: tuple[str, ...] | None  # None: anatomical criterion (any tracer)
    nuclides: tuple[str, ...] | None
    imaging: tuple[str, ...]
    reference: str

    def describe(self) -> str:
        if self.families is None:
            return "/".join(self.imaging)
        nuc = f" ({', '.join(self.nuclides)})" if self.nuclides else ""
        return f"{'/'.join(self.families)}{nuc} {'/'.join(self.imaging)}"


_FDG_PET = Applicability((FDG,), ("F-18",), ("PET",), "FDG PET")
_ANATOMY = Applicability(None, None, ("CT", "MR"), "CT/MR")

#: criterion name (as in the response registry / ``--criteria``) -> applicability
APPLICABILITY: dict[str, Applicability] = {
    "percist": _FDG_PET,
    "eortc": _FDG_PET,
    "deauville": _FDG_PET,
    "lugano": _FDG_PET,
    "lugano-pet": _FDG_PET,
    "lyric": _FDG_PET,
    "krenning": Applicability((SSTR,), ("Ga-68", "In-111", "Cu-64"), ("PET", "SPECT/NM"),
                              "SSTR imaging"),
    "recip": Applicability((PSMA,), ("Ga-68", "F-18"), ("PET",), "PSMA PET"),
    "recist1.1": _ANATOMY,
    "recist": _ANATOMY,
    "irecist": _ANATOMY,
    "mrecist": _ANATOMY,
    "choi": _ANATOMY,
    "lugano-ct": _ANATOMY,
}


@dataclass(frozen=True)
class Verdict:
    """``ok``, ``warn`` (unknown tracer) or ``refuse`` (mismatch), with the reason."""

    criterion: str
    level: str
    message: str


def check_criterion(criterion: str, tracer: TracerInfo | None) -> Verdict:
    """Is ``criterion`` valid for the series' tracer and modality?

    >>> from oncohybrid.dicom.tracer import TracerInfo
    >>> lu = TracerInfo("PT", None, "Lu-177 DOTATATE", "SSTR", "Lu-177", 574300.8, False)
    >>> check_criterion("percist", lu).level
    'refuse'
    """
    key = criterion.strip().lower()
    app = APPLICABILITY.get(key)
    if app is None or app.families is None:
        return Verdict(key, "ok", f"{key}: anatomical criterion, any tracer")
    if tracer is None:
        return Verdict(key, "warn", f"{key} is valid for {app.describe()} only; the tracer "
                       "of this series is not known")
    what = tracer.summary()
    if tracer.imaging not in app.imaging:
        return Verdict(key, "refuse", f"{key} is valid for {app.describe()} only; this series "
                       f"is {what}")
    if tracer.family == UNKNOWN:
        if tracer.radionuclide is not None and app.nuclides \
                and tracer.radionuclide not in app.nuclides:
            return Verdict(key, "refuse", f"{key} is valid for {app.describe()} only; this "
                           f"series is {what}")
        return Verdict(key, "warn", f"{key} is valid for {app.describe()} only; the tracer of "
                       f"this series is not stated ({what}): check it")
    if tracer.family not in app.families or (
            app.nuclides and tracer.radionuclide is not None
            and tracer.radionuclide not in app.nuclides):
        return Verdict(key, "refuse", f"{key} is valid for {app.describe()} only; this series "
                       f"is {what}")
    return Verdict(key, "ok", f"{key}: {what}")


def check_criteria(criteria: list[str] | tuple[str, ...], tracer: TracerInfo | None, *,
                   allow_mismatch: bool = False) -> list[str]:
    """Warnings for ``criteria`` on this tracer; InputError (exit 2) on a mismatch unless
    ``allow_mismatch`` (then the mismatch is a warning too). Flags a non-positron
    radionuclide stored as PET whatever the criteria."""
    warnings: list[str] = []
    if tracer is not None:
        warnings.extend(tracer.problems)
    refused = []
    for c in criteria:
        v = check_criterion(c, tracer)
        if v.level == "warn":
            warnings.append(v.message)
        elif v.level == "refuse":
            if allow_mismatch:
                warnings.append(f"{v.message} (assessed anyway: --allow-tracer-mismatch)")
            else:
                refused.append(v.message)
    if refused:
        raise InputError("tracer mismatch: " + "; ".join(refused)
                         + " (override with --allow-tracer-mismatch)")
    return warnings
