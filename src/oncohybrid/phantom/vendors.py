"""Scanner profiles: grids, timing conventions and header flavour per vendor.

The timing conventions follow the vendor behaviour summarised in the project's PET
quantification notes (§1, §2.2–2.3):

* Siemens — Units BQML; (0008,0031) *Series Time* = scan start = decay reference.
* GE — Units BQML; Series Time *later* than the acquisition (post-processed series); the
  reference is the scan start, also stored in the private (0009,xx0D) *scan datetime*
  under creator ``GEMS_PETD_01``, with the administration datetime in (0009,xx3B).
* Philips — Units CNTS; the SUV scale factor (7053,xx00) and activity concentration scale
  factor (7053,xx09) under creator ``Philips PET Private Group``, referenced to Series
  Time; Acquisition Time equals Series Time on every slice.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VENDORS", "VendorProfile"]


@dataclass(frozen=True)
class VendorProfile:
    key: str
    manufacturer: str
    model: str
    software: str
    units: str  # (0054,1001)
    half_life_s: str  # (0018,1075) as written (DS)
    pet_pixel_mm: float
    pet_matrix: dict[str, int]  # by size
    pet_slice_mm: float
    bed_length_mm: float
    bed_duration_s: int
    ct_kernel: str
    pet_recon: str


VENDORS: dict[str, VendorProfile] = {
    "siemens": VendorProfile(
        key="siemens", manufacturer="SIEMENS", model="Biograph Vision 600",
        software="VG80B", units="BQML", half_life_s="6586.2",
        pet_pixel_mm=4.0728, pet_matrix={"clinical": 128, "small": 100}, pet_slice_mm=3.0,
        bed_length_mm=160.0, bed_duration_s=120, ct_kernel="Br38f",
        pet_recon="PSF+TOF 4i5s",
    ),
    "ge": VendorProfile(
        key="ge", manufacturer="GE MEDICAL SYSTEMS", model="Discovery MI",
        software="pet_coreload.46.00", units="BQML", half_life_s="6586.2",
        pet_pixel_mm=4.6875, pet_matrix={"clinical": 128, "small": 86}, pet_slice_mm=3.27,
        bed_length_mm=150.0, bed_duration_s=150, ct_kernel="STANDARD",
        pet_recon="VPFXS",
    ),
    "philips": VendorProfile(
        key="philips", manufacturer="Philips Medical Systems", model="Vereos PET/CT",
        software="3.5.0", units="CNTS", half_life_s="6588",
        pet_pixel_mm=4.0, pet_matrix={"clinical": 144, "small": 100}, pet_slice_mm=4.0,
        bed_length_mm=164.0, bed_duration_s=90, ct_kernel="B",
        pet_recon="BLOB-OS-TF",
    ),
}
