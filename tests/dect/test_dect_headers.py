"""Recognising vendor dual-energy CT series from their headers (#19)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from oncohybrid.dicom.dect import DectRole, classify_dect


def _ds(image_type, description="", **attrs) -> Dataset:
    ds = Dataset()
    ds.ImageType = image_type
    ds.SeriesDescription = description
    ds.Modality = "CT"
    for k, v in attrs.items():
        setattr(ds, k, v)
    return ds


def test_siemens_dual_source_tubes_low_and_tin_filtered_high():
    a = classify_dect(_ds(["ORIGINAL", "PRIMARY", "AXIAL", "CT_SOM5 SPI DUAL"],
                          "DE_Abdomen 1.0 Qr40 A_80kV", KVP="80"))
    b = classify_dect(_ds(["ORIGINAL", "PRIMARY", "AXIAL", "CT_SOM5 SPI DUAL"],
                          "DE_Abdomen 1.0 Qr40 B_Sn150kV", KVP="150"))
    assert (a.role, a.kvp, a.tin_filter) == (DectRole.TUBE_SPECTRUM, 80.0, False)
    assert (b.role, b.kvp, b.tin_filter, b.spectrum_label) == (
        DectRole.TUBE_SPECTRUM, 150.0, True, "Sn150kV")


def test_tin_from_filter_material_without_description():
    info = classify_dect(_ds(["ORIGINAL", "PRIMARY", "AXIAL"], "", KVP="140",
                             FilterMaterial="TIN"))
    assert (info.role, info.tin_filter, info.source) == (DectRole.TUBE_SPECTRUM, True, "kvp")


def test_siemens_mixed_image():
    info = classify_dect(_ds(["DERIVED", "PRIMARY", "AXIAL", "CT_SOM5 SPI DUAL", "MIX"],
                             "DE_Abdomen 1.0 Qr40 F_0.6", KVP="80"))
    assert info.role is DectRole.MIXED


@pytest.mark.parametrize(("image_type", "description", "kev"), [
    (["DERIVED", "SECONDARY", "AXIAL", "CT_GSI", "MONOCHROMATIC"], "70keV Mono", 70.0),
    (["DERIVED", "PRIMARY", "AXIAL", "MONOE"], "MonoE 50keV", 50.0),
    (["DERIVED", "PRIMARY", "AXIAL", "CT_SOM5 SPI DUAL", "MONOENERGETIC"], "Mono+ 40 keV",
     40.0),
])
def test_vendor_monoenergetic_series(image_type, description, kev):
    info = classify_dect(_ds(image_type, description, KVP="140"))
    assert (info.role, info.energy_kev, info.source) == (DectRole.MONOENERGETIC, kev,
                                                         "image type")


def test_standard_monoenergetic_energy_equivalent_wins():
    ds = _ds(["DERIVED", "PRIMARY", "AXIAL"], "Spectral 65keV")
    ds.MultienergyCTAcquisition = "YES"
    ds.MonoenergeticEnergyEquivalent = 60.0
    info = classify_dect(ds)
    assert (info.role, info.energy_kev, info.source) == (DectRole.MONOENERGETIC, 60.0,
                                                         "multi-energy module")


def test_material_density_series():
    ge = classify_dect(_ds(["DERIVED", "SECONDARY", "AXIAL", "GSI MD", "IODINE WATER"],
                           "Iodine(Water)"))
    philips = classify_dect(_ds(["DERIVED", "PRIMARY", "AXIAL", "IODINE DENSITY"],
                                "Iodine density"))
    assert (ge.role, ge.material) == (DectRole.MATERIAL_DENSITY, "iodine")
    assert (philips.role, philips.material) == (DectRole.MATERIAL_DENSITY, "iodine")
    vnc = classify_dect(_ds(["DERIVED", "SECONDARY", "AXIAL", "VNC"], "VNC"))
    assert vnc.role is DectRole.VIRTUAL_NON_CONTRAST


def test_plain_ct_is_single_energy():
    info = classify_dect(_ds(["ORIGINAL", "PRIMARY", "AXIAL"], "Abdomen 5.0", KVP="120"))
    assert (info.role, info.dual_energy) == (DectRole.SINGLE_ENERGY, False)


def test_outputs_of_dect_iodine_are_recognised(tmp_path):
    import pydicom

    from oncohybrid.phantom.dect import write_dect_phantom
    from oncohybrid.services.dect import calibrate_dect, iodine_maps

    ph = write_dect_phantom(tmp_path / "p", shape=(2, 64, 64), pixel_mm=3.0)
    calibrate_dect(ph.low_dir, ph.high_dir, ph.inserts_json, tmp_path / "cal.json")
    res = iodine_maps(ph.low_dir, ph.high_dir, tmp_path / "cal.json", tmp_path / "o", kev=70)
    vmi = classify_dect(pydicom.dcmread(next((tmp_path / "o" / "VMI_70keV").glob("*.dcm"))))
    vnc = classify_dect(pydicom.dcmread(next((tmp_path / "o" / "VNC").glob("*.dcm"))))
    assert (vmi.role, vmi.energy_kev) == (DectRole.MONOENERGETIC, 70.0)
    assert vnc.role is DectRole.VIRTUAL_NON_CONTRAST
    assert res["outputs"]["n_vmi_files"] == 2
