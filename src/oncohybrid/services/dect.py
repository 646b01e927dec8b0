"""Dual-energy CT use-cases: calibrate on an iodine phantom; iodine, VNC and VMI maps.

``calibrate_dect(LOW_DIR, HIGH_DIR, inserts_json)`` reads a registered low/high kV pair of a
phantom, measures the mean HU in spherical VOIs around the inserts of known iodine
concentration and fits the two-material basis (:func:`oncohybrid.quant.dect.calibrate`).

``iodine_maps(LOW_DIR, HIGH_DIR, calibration_json, out_dir)`` decomposes a patient pair with
that calibration and writes

- ``iodine.dcm``: a Parametric Map (highdicom; float pixels; Real World Value Mapping in
  UCUM ``mg/mL``) on the low-kV series' grid;
- ``VNC/`` and ``VMI_<keV>keV/``: derived CT Image series (one file per slice, copied from
  the low-kV images with new UIDs, ``DERIVED\\SECONDARY`` Image Type, Source Image
  Sequence naming both tube images), HU with Rescale Intercept −1024;

and, given VOIs, the lesion iodine mean, the aortic iodine, NIC and the dual-energy ratio.

Inserts file (``--inserts``)::

    {"inserts": [{"name": "I5", "centre_lps_mm": [x, y, z], "radius_mm": 6,
                  "iodine_mg_ml": 5.0}, ...]}

(a bare list of those objects is accepted too). Each VOI is the ball of ``radius_mm``
around the centre (LPS mm); keep it inside the rod. Concentrations in mg/ml, ≥ 0; at least
two distinct concentrations; a 0 mg/ml insert (or water background VOI) anchors the water.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from oncohybrid.dicom.dect import DectError, DectSeriesInfo, pair_low_high
from oncohybrid.errors import InputError
from oncohybrid.quant.dect import (
    VMI_KEV_RANGE,
    DectCalibration,
    calibrate,
    decompose,
    normalised_iodine_concentration,
    virtual_monoenergetic,
    voi_stats,
)

__all__ = ["DectPair", "calibrate_dect", "iodine_maps", "load_pair", "read_inserts",
           "sphere_mask"]


@dataclass(frozen=True)
class DectPair:
    """A checked low/high kV pair on one grid."""

    low_info: DectSeriesInfo
    high_info: DectSeriesInfo
    hu_low: np.ndarray
    hu_high: np.ndarray
    affine: np.ndarray
    low_datasets: list[Dataset]  # in volume order when one_per_slice
    high_datasets: list[Dataset]
    one_per_slice: bool = True


def load_pair(low_dir: str | Path, high_dir: str | Path) -> DectPair:
    """Read, classify and check a low/high pair (KVP, frame of reference, one grid)."""
    from oncohybrid.dicom.volume import load_series, read_series, sort_slices, volume_notes

    for name, d in (("LOW_DIR", low_dir), ("HIGH_DIR", high_dir)):
        if not Path(d).is_dir():
            raise InputError(f"{name} {d}: no such directory")
    low = read_series(low_dir)
    high = read_series(high_dir)
    lo_info, hi_info = pair_low_high(low, high)
    v_lo = load_series(low, dtype=np.float64)
    v_hi = load_series(high, dtype=np.float64)
    if v_lo.array.shape != v_hi.array.shape:
        raise DectError(f"grid: LOW_DIR has {v_lo.array.shape} voxels and HIGH_DIR "
                        f"{v_hi.array.shape} (slices, rows, columns); the pair must be "
                        "reconstructed or resampled onto one grid")
    if not np.allclose(v_lo.affine, v_hi.affine, atol=1e-3):
        raise DectError("grid: LOW_DIR and HIGH_DIR differ in (0020,0032) Image Position / "
                        "(0020,0037) Image Orientation / (0028,0030) Pixel Spacing; the pair "
                        "must be on one grid")
    # The derived CT series are written slice for slice over the low-kV images; a
    # multi-frame object or a series load_series resampled (tilt, irregular spacing) has no
    # image per slice to copy (refused; the numbers in calibrate are unaffected).
    one_per_slice = (len(low) == len(high) == v_lo.array.shape[0]
                     and not volume_notes(v_lo) and not volume_notes(v_hi))
    if one_per_slice:
        low = sort_slices(low)
        high = sort_slices(high)
    return DectPair(lo_info, hi_info, np.asarray(v_lo.array), np.asarray(v_hi.array),
                    np.asarray(v_lo.affine, dtype=np.float64), low, high, one_per_slice)


def sphere_mask(shape: Sequence[int], affine: np.ndarray, centre_lps_mm: Sequence[float],
                radius_mm: float) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` of ``centre_lps_mm`` (LPS mm)."""
    shape = tuple(int(s) for s in shape)
    centre = np.asarray(centre_lps_mm, dtype=np.float64)
    inv = np.linalg.inv(affine)
    c_idx = inv[:3, :3] @ centre + inv[:3, 3]
    steps = np.linalg.norm(affine[:3, :3], axis=0)
    half = np.ceil(radius_mm / steps) + 1
    lo = np.maximum(np.floor(c_idx - half), 0).astype(int)
    hi = np.minimum(np.ceil(c_idx + half) + 1, shape).astype(int)
    mask = np.zeros(shape, dtype=bool)
    if np.any(hi <= lo):
        return mask
    idx = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)],
                               indexing="ij"), axis=-1).astype(np.float64)
    pos = idx @ affine[:3, :3].T + affine[:3, 3]
    inside = np.sum((pos - centre) ** 2, axis=-1) <= radius_mm**2
    mask[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = inside
    return mask


def _number(value: object, where: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise InputError(f"{where}: expected a number, got {value!r}")
    if positive and value <= 0:
        raise InputError(f"{where}: must be > 0, got {value!r}")
    if value < 0:
        raise InputError(f"{where}: must be ≥ 0, got {value!r}")
    return float(value)


def read_inserts(path: str | Path) -> list[dict[str, Any]]:
    """Parse and check the inserts file (see the module docstring); names the JSON path."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--inserts {p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--inserts {p}: not readable JSON ({exc})") from None
    items = data.get("inserts") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise InputError(f"--inserts {p}: expected {{\"inserts\": [...]}} with at least two "
                         "inserts")
    out = []
    for i, item in enumerate(items):
        where = f"--inserts inserts[{i}]"
        if not isinstance(item, dict):
            raise InputError(f"{where}: expected an object")
        centre = item.get("centre_lps_mm")
        if not isinstance(centre, list) or len(centre) != 3:
            raise InputError(f"{where}.centre_lps_mm: expected [x, y, z] in LPS mm")
        xyz = []
        for j, v in enumerate(centre):
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InputError(f"{where}.centre_lps_mm[{j}]: expected a number, got {v!r}")
            xyz.append(float(v))
        out.append({"name": str(item.get("name", f"insert{i}")), "centre_lps_mm": xyz,
                    "radius_mm": _number(item.get("radius_mm"), f"{where}.radius_mm",
                                         positive=True),
                    "iodine_mg_ml": _number(item.get("iodine_mg_ml"),
                                            f"{where}.iodine_mg_ml")})
    if len({it["iodine_mg_ml"] for it in out}) < 2:
        raise InputError(f"--inserts {p}: iodine_mg_ml: at least two different "
                         "concentrations are needed to fit the basis")
    return out


def calibrate_dect(low_dir: str | Path, high_dir: str | Path, inserts_path: str | Path,
                   out_path: str | Path | None = None) -> dict[str, Any]:
    """Measure the inserts and fit the basis; writes CAL.json when ``out_path`` is given."""
    inserts = read_inserts(inserts_path)
    pair = load_pair(low_dir, high_dir)
    lo_means, hi_means, conc, rows = [], [], [], []
    for i, ins in enumerate(inserts):
        mask = sphere_mask(pair.hu_low.shape, pair.affine, ins["centre_lps_mm"],
                           ins["radius_mm"])
        n = int(mask.sum())
        if n == 0:
            raise InputError(f"--inserts inserts[{i}].centre_lps_mm: the VOI of "
                             f"{ins['name']!r} lies outside the images")
        lo_m, hi_m = float(pair.hu_low[mask].mean()), float(pair.hu_high[mask].mean())
        lo_means.append(lo_m)
        hi_means.append(hi_m)
        conc.append(ins["iodine_mg_ml"])
        rows.append({"name": ins["name"], "iodine_mg_ml": ins["iodine_mg_ml"],
                     "n_voxels": n, "hu_low_mean": lo_m, "hu_high_mean": hi_m})
    try:
        cal = calibrate(lo_means, hi_means, conc, kvp_low=pair.low_info.kvp or 0.0,
                        kvp_high=pair.high_info.kvp or 0.0, tin_low=pair.low_info.tin_filter,
                        tin_high=pair.high_info.tin_filter)
    except ValueError as exc:
        raise InputError(f"--inserts: the measured inserts give no usable basis: {exc}") \
            from None
    result = {"calibration": cal.to_json(), "inserts": rows,
              "low": pair.low_info.to_json(), "high": pair.high_info.to_json()}
    if out_path is not None:
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        result["out"] = str(out)
    return result


def read_calibration(path: str | Path) -> DectCalibration:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"--calibration {p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--calibration {p}: not readable JSON ({exc})") from None
    body = data.get("calibration", data) if isinstance(data, dict) else None
    if not isinstance(body, dict):
        raise InputError(f"--calibration {p}: expected the JSON written by dect calibrate")
    try:
        return DectCalibration.from_json(body)
    except KeyError as exc:
        raise InputError(f"--calibration {p}: calibration.{exc.args[0]} is missing") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"--calibration {p}: {exc}") from None


def _check_spectra(cal: DectCalibration, pair: DectPair) -> None:
    for name, info, kvp, tin in (("low", pair.low_info, cal.kvp_low, cal.tin_low),
                                 ("high", pair.high_info, cal.kvp_high, cal.tin_high)):
        if info.kvp is None or abs(info.kvp - kvp) > 0.5 or info.tin_filter != tin:
            want = f"{'Sn' if tin else ''}{kvp:g}kV"
            raise InputError(f"--calibration: kvp_{name} is {want} but the {name}-kV series "
                             f"is {info.spectrum_label} ((0018,0060) KVP); calibrate at the "
                             "spectra of the patient scan")


def _sop_ref(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


def _write_derived_ct(directory: Path, hu: np.ndarray, pair: DectPair, *, series_number: int,
                      description: str, token: str, kev: float | None) -> list[Path]:
    """Derived CT Image series (PS3.3 A.3) on the low-kV images' grid."""
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    directory.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid()
    stored = np.clip(np.rint(hu) + 1024.0, 0, 65535).astype("<u2")
    paths = []
    for k, (src, src_hi) in enumerate(zip(pair.low_datasets, pair.high_datasets,
                                          strict=True)):
        ds = deepcopy(src)
        ds.remove_private_tags()
        for kw in ("LargestImagePixelValue", "SmallestImagePixelValue",
                   "PixelPaddingValue", "WindowCenterWidthExplanation", "VOILUTSequence",
                   "IconImageSequence"):
            if kw in ds:
                delattr(ds, kw)
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPInstanceUID = sop
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL", token]
        ds.DerivationDescription = (
            f"Two-material (water/iodine) decomposition of {pair.low_info.spectrum_label} and "
            f"{pair.high_info.spectrum_label} images, phantom-calibrated basis "
            "(McCollough 2015, Radiology 276:637)")
        ds.SourceImageSequence = [_sop_ref(src), _sop_ref(src_hi)]
        if kev is not None:
            ds.KVP = ""
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.InstanceNumber = k + 1
        ds.PixelData = stored[k].tobytes()
        ds["PixelData"].VR = "OW"
        path = directory / f"IM{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _write_iodine_map(path: Path, iodine: np.ndarray, pair: DectPair) -> None:
    """Parametric Map (PS3.3 A.75) of iodine density, UCUM mg/mL, via highdicom."""
    import highdicom as hd
    from pydicom.sr.coding import Code
    from pydicom.uid import generate_uid

    from oncohybrid import __version__

    values = np.asarray(iodine, dtype=np.float32)
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        hi = lo + 1.0
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="IODINE", lut_explanation="Iodine density (water/iodine decomposition)",
        unit=Code("mg/mL", "UCUM", "mg/mL"), value_range=(lo, hi), slope=1.0, intercept=0.0)
    pm = hd.pm.ParametricMap(
        source_images=pair.low_datasets, pixel_array=values,
        series_instance_uid=generate_uid(), series_number=901, sop_instance_uid=generate_uid(),
        instance_number=1, manufacturer="oncohybrid", manufacturer_model_name="oncohybrid dect",
        software_versions=__version__, device_serial_number="0",
        contains_recognizable_visual_features=False, real_world_value_mappings=[mapping],
        voi_lut_transformations=[hd.VOILUTTransformation(window_center=5.0,
                                                         window_width=10.0)],
        content_label="IODINE", content_description="Iodine density map (mg/mL)",
        further_source_images=pair.high_datasets)
    pm.SeriesDescription = "Iodine density (DECT)"
    # (0020,0060) Laterality, Type 2C in the General Series module: copied from the source,
    # else sent empty (dciodvfy cannot evaluate the paired-structure condition).
    pm.Laterality = str(pair.low_datasets[0].get("Laterality", "") or "")
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.save_as(path)


def _voi_json(mask: np.ndarray, pair: DectPair, dec: Any) -> dict[str, Any]:
    s = voi_stats(mask, pair.hu_low, pair.hu_high, dec)
    der = s.dual_energy_ratio
    return {"n_voxels": s.n_voxels, "iodine_mean_mg_ml": s.iodine_mean_mg_ml,
            "iodine_sd_mg_ml": s.iodine_sd_mg_ml, "vnc_mean_hu": s.vnc_mean_hu,
            "hu_low_mean": s.hu_low_mean, "hu_high_mean": s.hu_high_mean,
            "dual_energy_ratio": der if np.isfinite(der) else None}


def iodine_maps(low_dir: str | Path, high_dir: str | Path, calibration_path: str | Path,
                out_dir: str | Path, *, kev: float = 70.0,
                voi_centre_lps_mm: Sequence[float] | None = None,
                voi_radius_mm: float | None = None,
                aorta_centre_lps_mm: Sequence[float] | None = None,
                aorta_radius_mm: float | None = None) -> dict[str, Any]:
    """Decompose, write iodine (Parametric Map), VNC and VMI series; VOI numbers if asked."""
    if not VMI_KEV_RANGE[0] <= kev <= VMI_KEV_RANGE[1]:
        raise InputError(f"--kev {kev:g}: must be within {VMI_KEV_RANGE[0]:g}-"
                         f"{VMI_KEV_RANGE[1]:g} keV (the NIST table above the iodine K edge)")
    if (voi_centre_lps_mm is None) != (voi_radius_mm is None):
        raise InputError("--voi-centre and --voi-radius-mm go together")
    if aorta_centre_lps_mm is not None and voi_radius_mm is None and aorta_radius_mm is None:
        raise InputError("--aorta-centre needs --voi-radius-mm (or --aorta-radius-mm)")
    for name, r in (("--voi-radius-mm", voi_radius_mm), ("--aorta-radius-mm", aorta_radius_mm)):
        if r is not None and not (np.isfinite(r) and r > 0):
            raise InputError(f"{name} {r}: must be > 0")
    cal = read_calibration(calibration_path)
    pair = load_pair(low_dir, high_dir)
    _check_spectra(cal, pair)
    if not pair.one_per_slice:
        raise DectError("LOW_DIR/HIGH_DIR: the output series are written one image per slice "
                        "of single-frame, uniformly spaced, untilted series; this pair is "
                        "multi-frame or was resampled on loading (not supported yet)")
    dec = decompose(pair.hu_low, pair.hu_high, cal)
    vmi = virtual_monoenergetic(dec, kev)
    # VOIs are checked before anything is written.
    shape = pair.hu_low.shape
    voi_mask = aorta_mask = None
    if voi_centre_lps_mm is not None and voi_radius_mm is not None:
        voi_mask = sphere_mask(shape, pair.affine, voi_centre_lps_mm, voi_radius_mm)
        if not voi_mask.any():
            raise InputError("--voi-centre: the VOI lies outside the images")
    if aorta_centre_lps_mm is not None:
        radius = aorta_radius_mm if aorta_radius_mm is not None else voi_radius_mm
        aorta_mask = sphere_mask(shape, pair.affine, aorta_centre_lps_mm, float(radius or 0))
        if not aorta_mask.any():
            raise InputError("--aorta-centre: the VOI lies outside the images")
    out = Path(out_dir)
    iodine_path = out / "iodine.dcm"
    _write_iodine_map(iodine_path, dec.iodine_mg_ml, pair)
    kev_label = f"{kev:g}"
    vnc_paths = _write_derived_ct(out / "VNC", dec.vnc_hu, pair, series_number=902,
                                  description="Virtual non-contrast (DECT)", token="VNC",
                                  kev=None)
    vmi_paths = _write_derived_ct(out / f"VMI_{kev_label}keV", vmi, pair, series_number=903,
                                  description=f"Virtual monoenergetic {kev_label} keV (DECT)",
                                  token="MONOENERGETIC", kev=kev)
    result: dict[str, Any] = {
        "low": pair.low_info.to_json(), "high": pair.high_info.to_json(),
        "calibration": cal.to_json(), "kev": kev,
        "outputs": {"iodine": str(iodine_path), "vnc": str(out / "VNC"),
                    "vmi": str(out / f"VMI_{kev_label}keV"),
                    "n_vnc_files": len(vnc_paths), "n_vmi_files": len(vmi_paths)},
    }
    if voi_mask is not None:
        result["voi"] = _voi_json(voi_mask, pair, dec)
    if aorta_mask is not None:
        aorta = _voi_json(aorta_mask, pair, dec)
        result["aorta"] = aorta
        if "voi" in result:
            nic = normalised_iodine_concentration(result["voi"]["iodine_mean_mg_ml"],
                                                  aorta["iodine_mean_mg_ml"])
            result["voi"]["normalised_iodine_concentration"] = nic if np.isfinite(nic) else None
    return result
