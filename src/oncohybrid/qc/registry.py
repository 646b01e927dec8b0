"""Scanner identity and reconstruction attributes read from DICOM headers (issue #20).

Identity (PS3.3 C.7.5.1 General Equipment module): (0008,0070) *Manufacturer*,
(0008,1090) *Manufacturer's Model Name*, (0018,1000) *Device Serial Number*, (0008,1010)
*Station Name*, (0018,1020) *Software Versions*; the sending AE title from the File Meta
(0002,0016) *Source Application Entity Title* when the file has one.

Reconstruction attributes compared against a scanner's EARL-compliant protocol (PS3.3
C.8.9.1 PET Series, C.7.6.2/C.7.6.3 Image Plane/Pixel): (0054,1103) *Reconstruction
Method*, (0018,1210) *Convolution Kernel*, (0054,1101) *Attenuation Correction Method*,
(0054,1105) *Scatter Correction Method*, (0018,0050) *Slice Thickness*, (0028,0030)
*Pixel Spacing*, (0028,0010)/(0028,0011) *Rows*/*Columns*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

__all__ = ["RECON_ATTRIBUTES", "ScannerIdentity", "compare_recon", "recon_attributes",
           "scanner_identity"]

RECON_ATTRIBUTES: tuple[str, ...] = (
    "ReconstructionMethod", "ConvolutionKernel", "AttenuationCorrectionMethod",
    "ScatterCorrectionMethod", "SliceThickness", "PixelSpacing", "Rows", "Columns",
)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        s = "\\".join(str(v).strip() for v in value)
    else:
        s = str(value).strip()
    return s or None


@dataclass(frozen=True)
class ScannerIdentity:
    manufacturer: str | None
    model: str | None
    serial_number: str | None
    station_name: str | None
    software_versions: str | None
    ae_title: str | None

    @property
    def key(self) -> str:
        """Registry key: manufacturer|model|serial, or manufacturer|model|station:NAME."""
        tail = self.serial_number or (f"station:{self.station_name}" if self.station_name
                                      else "unknown")
        return "|".join([(self.manufacturer or "?"), (self.model or "?"), tail]).upper()

    @property
    def label(self) -> str:
        name = " ".join(x for x in (self.manufacturer, self.model) if x) or "unknown scanner"
        extra = f"serial {self.serial_number}" if self.serial_number else (
            f"station {self.station_name}" if self.station_name else "")
        return f"{name} ({extra})" if extra else name


def scanner_identity(ds: Dataset) -> ScannerIdentity:
    """The scanner of one instance (General Equipment module).

    >>> from pydicom.dataset import Dataset
    >>> ds = Dataset(); ds.Manufacturer = "SIEMENS"; ds.ManufacturerModelName = "Biograph"
    >>> ds.DeviceSerialNumber = "123"; scanner_identity(ds).key
    'SIEMENS|BIOGRAPH|123'
    """
    meta = getattr(ds, "file_meta", None)
    ae = _text(meta.get("SourceApplicationEntityTitle")) if meta is not None else None
    return ScannerIdentity(
        manufacturer=_text(ds.get("Manufacturer")),
        model=_text(ds.get("ManufacturerModelName")),
        serial_number=_text(ds.get("DeviceSerialNumber")),
        station_name=_text(ds.get("StationName")),
        software_versions=_text(ds.get("SoftwareVersions")),
        ae_title=ae,
    )


def _norm(keyword: str, value: Any) -> str | None:
    s = _text(value)
    if s is None:
        return None
    if keyword in ("SliceThickness", "PixelSpacing"):
        try:
            return "\\".join(f"{float(v):.2f}" for v in s.split("\\"))
        except ValueError:
            return s.upper()
    return " ".join(s.upper().split())


def recon_attributes(ds: Dataset) -> dict[str, str]:
    """The reconstruction attributes present in ``ds``, normalised for comparison."""
    out: dict[str, str] = {}
    for kw in RECON_ATTRIBUTES:
        v = _norm(kw, ds.get(kw))
        if v is not None:
            out[kw] = v
    return out


def compare_recon(series: dict[str, str], protocol: dict[str, str]) -> list[str]:
    """Differences of a series' reconstruction from a protocol (empty: it matches); an
    attribute of the protocol missing from the series counts as a difference."""
    diffs = []
    for kw, want in protocol.items():
        got = series.get(kw)
        if got != want:
            diffs.append(f"{kw} {got!r} (protocol {want!r})")
    return diffs
