"""Synthetic contrast-enhanced ultrasound cine loops with a known bolus curve.

The scene (rows × columns pixels) is tissue of mean echo power ``tissue_power`` with
*frozen* fully developed speckle (exponentially distributed power, the same pattern in
every frame, moving with the tissue) and a round lesion in which microbubbles add
``bolus(t)`` of mean echo power with *fresh* speckle in every frame (bubbles move). The
bolus is a lognormal, gamma-variate or local-density-random-walk curve (formulas of
Strouthos et al., IEEE TUFFC 2010;57:1296 and Tang et al., Interface Focus 2011;1:520,
written here independently of :mod:`oncohybrid.quant.ceus`).

Each frame is translated by a small rigid motion (``motion_px``, smooth breathing-like
sine plus jitter, bilinear), log-compressed with the stated dynamic range
(``Y = 255 · (1 + 10·log10(P) / DR)``, clipped to 0…255, the brightest displayable power
being 1) with Gaussian electronic noise of ``noise_grey`` grey levels, and rounded to
8 bits. :func:`write_us_multiframe` stores it as an Ultrasound Multi-frame Image
(PS3.3 A.7) with (0018,1065) *Frame Time Vector* or (0018,1063) *Frame Time*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = ["US_MULTIFRAME_STORAGE", "CeusCine", "bolus_curve", "synthetic_ceus_cine",
           "write_us_multiframe"]

US_MULTIFRAME_STORAGE = "1.2.840.10008.5.1.4.1.1.3.1"


def bolus_curve(model: str, t: NDArray[np.float64], truth: dict[str, float]) -> NDArray[
        np.float64]:
    """The bolus curve (without baseline) of ``model`` at times ``t``.

    ``truth`` holds ``auc``, ``t0_s`` and ``mu``/``sigma`` (lognormal),
    ``alpha``/``beta_s`` (gamma-variate) or ``mu_s``/``lambda`` (ldrw).
    """
    tau = np.asarray(t, dtype=np.float64) - truth["t0_s"]
    out = np.zeros_like(tau)
    ok = tau > 0
    x = tau[ok]
    auc = truth["auc"]
    if model == "lognormal":
        mu, s = truth["mu"], truth["sigma"]
        out[ok] = auc * np.exp(-(np.log(x) - mu) ** 2 / (2 * s**2)) / (
            x * s * math.sqrt(2 * math.pi))
    elif model == "gamma-variate":
        a, b = truth["alpha"], truth["beta_s"]
        out[ok] = auc * x**a * np.exp(-x / b) / (b ** (a + 1) * math.gamma(a + 1))
    elif model == "ldrw":
        m, lam = truth["mu_s"], truth["lambda"]
        out[ok] = (auc * math.exp(lam) / m) * np.sqrt(lam * m / (2 * math.pi * x)) * np.exp(
            -0.5 * lam * (m / x + x / m))
    else:
        raise ValueError(f"unknown model {model!r}")
    return out


@dataclass
class CeusCine:
    """A synthetic cine: 8-bit frames, frame times and the truth used to make them."""

    frames: NDArray[np.uint8]  # (n, rows, columns)
    times_s: NDArray[np.float64]
    model: str
    truth: dict[str, float]
    dynamic_range_db: float
    tissue_power: float
    lesion_centre_rc: tuple[float, float]
    lesion_radius_px: float
    shifts_rc: NDArray[np.float64] = field(repr=False)  # true translation of each frame

    @property
    def lesion_roi(self) -> tuple[int, int, int, int]:
        """A square X,Y,W,H inside the lesion (clear of its edge by the motion)."""
        r, c = self.lesion_centre_rc
        half = int(self.lesion_radius_px / math.sqrt(2)) - 3
        return int(c) - half, int(r) - half, 2 * half, 2 * half


def synthetic_ceus_cine(model: str = "lognormal", truth: dict[str, float] | None = None, *,
                        rows: int = 120, columns: int = 160, n_frames: int = 300,
                        frame_time_s: float = 0.2, jitter_s: float = 0.0,
                        dynamic_range_db: float = 60.0, tissue_power: float = 1e-4,
                        lesion_radius_px: float = 38.0, motion_px: float = 2.0,
                        noise_grey: float = 1.0, seed: int = 0) -> CeusCine:
    """A cine whose lesion follows ``truth`` (defaults: a liver-lesion-like bolus)."""
    defaults = {
        "lognormal": {"auc": 0.6, "mu": 2.3, "sigma": 0.45, "t0_s": 8.0},
        "gamma-variate": {"auc": 0.6, "alpha": 2.5, "beta_s": 4.0, "t0_s": 8.0},
        "ldrw": {"auc": 0.6, "mu_s": 12.0, "lambda": 4.0, "t0_s": 8.0},
    }
    if model not in defaults:
        raise ValueError(f"unknown model {model!r}")
    tr = dict(defaults[model] if truth is None else truth)
    rng = np.random.default_rng(seed)
    dt = np.full(n_frames, frame_time_s)
    if jitter_s:
        dt = dt + rng.uniform(-jitter_s, jitter_s, n_frames)
    dt[0] = 0.0
    times = np.cumsum(dt)
    bolus = bolus_curve(model, times, tr)

    # Geometry on a padded canvas so that shifts never bring in empty borders.
    pad = int(math.ceil(abs(motion_px) * 1.5)) + 2
    R, C = rows + 2 * pad, columns + 2 * pad
    rr, cc = np.mgrid[0:R, 0:C].astype(np.float64)
    centre = ((rows - 1) / 2 + pad, (columns - 1) / 2 + pad)
    lesion = ((rr - centre[0]) ** 2 + (cc - centre[1]) ** 2) <= lesion_radius_px**2
    # Tissue: frozen speckle over a gently varying echogenicity with a bright band
    # (a vessel wall-like structure) that gives the registration something to hold.
    echogenicity = tissue_power * (1.0 + 0.5 * np.sin(rr / 9.0) * np.cos(cc / 13.0))
    echogenicity[np.abs(rr - 0.25 * R) < 2] *= 30.0
    tissue = echogenicity * rng.exponential(1.0, (R, C))

    phase = rng.uniform(0, 2 * math.pi)
    period = 4.0
    shifts = np.stack([motion_px * np.sin(2 * math.pi * times / period + phase),
                       0.5 * motion_px * np.cos(2 * math.pi * times / (1.5 * period))],
                      axis=1)
    shifts[0] = 0.0

    from scipy.ndimage import shift as nd_shift

    frames = np.empty((n_frames, rows, columns), dtype=np.uint8)
    k = 10.0 / dynamic_range_db
    for i in range(n_frames):
        power = tissue.copy()
        power[lesion] += bolus[i] * rng.exponential(1.0, int(lesion.sum()))
        moved = nd_shift(power, shifts[i], order=1, mode="nearest")[pad:pad + rows,
                                                                      pad:pad + columns]
        with np.errstate(divide="ignore"):
            grey = 255.0 * (1.0 + k * np.log10(np.maximum(moved, 1e-30)))
        grey += rng.normal(0.0, noise_grey, grey.shape) if noise_grey else 0.0
        frames[i] = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return CeusCine(frames, times, model, tr, dynamic_range_db, tissue_power,
                    ((rows - 1) / 2, (columns - 1) / 2), lesion_radius_px, shifts)


def write_us_multiframe(cine: CeusCine, path: Path, *, timing: str = "vector",
                        photometric: str = "MONOCHROME2") -> Path:
    """Write ``cine`` as an Ultrasound Multi-frame Image (PS3.3 A.7).

    ``timing``: ``"vector"`` — (0018,1065) *Frame Time Vector* in ms, first value 0 and
    each next value the interval from the previous frame (PS3.3 C.7.6.5.1.2); ``"constant"``
    — (0018,1063) *Frame Time* (the mean interval); ``"none"`` — neither (an invalid file,
    for tests). ``photometric``: ``MONOCHROME2`` or ``RGB`` (grey copied to R, G and B).
    """
    n, rows, cols = cine.frames.shape
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = US_MULTIFRAME_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY", "ABDOMINAL", "0001"]  # 0001: 2D imaging
    ds.SOPClassUID = US_MULTIFRAME_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20260101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "US"
    ds.Manufacturer = "oncohybrid phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Synthetic CEUS"
    ds.SeriesDescription = f"CEUS {cine.model} bolus, DR {cine.dynamic_range_db:g} dB"
    ds.PatientName = "Phantom^CEUS"
    ds.PatientID = "CEUS-PHANTOM"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.BodyPartExamined = "LIVER"  # unpaired: (0020,0060) Laterality absent
    ds.InstanceNumber = 1
    ds.PatientOrientation = ""
    ds.LossyImageCompression = "00"
    ds.NumberOfFrames = n
    intervals_ms = np.diff(cine.times_s, prepend=cine.times_s[0]) * 1000.0
    if timing == "vector":
        ds.FrameIncrementPointer = 0x00181065
        ds.FrameTimeVector = [f"{v:.6g}" for v in intervals_ms]
    elif timing == "constant":
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = f"{float(np.mean(intervals_ms[1:])):.6g}"
    elif timing != "none":
        raise ValueError(f"timing must be vector, constant or none, got {timing!r}")
    ds.RecommendedDisplayFrameRate = max(1, round(1000.0 / float(np.mean(intervals_ms[1:]))))
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if photometric == "MONOCHROME2":
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        pixels = cine.frames
    elif photometric == "RGB":
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        pixels = np.repeat(cine.frames[..., None], 3, axis=-1)
    else:
        raise ValueError(f"photometric must be MONOCHROME2 or RGB, got {photometric!r}")
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
