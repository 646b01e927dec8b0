"""Contrast-ultrasound use-cases: the time-intensity curve of a cine's ROI and its fit.

Reads the cine (:mod:`oncohybrid.dicom.ultrasound`), linearises the stated dynamic range,
compensates rigid motion, averages the ROI and fits a bolus model
(:mod:`oncohybrid.quant.ceus`). Invalid input (ROI outside the image, unknown model,
dynamic range not positive, no frame timing) raises an error of exit code 2 naming the
option or attribute.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from oncohybrid.dicom.ultrasound import read_us_cine
from oncohybrid.errors import InputError, OncohybridError
from oncohybrid.quant import ceus as q


class CeusFitError(OncohybridError):
    """A curve that the model cannot be fitted to (exit code 1)."""


@dataclass(frozen=True)
class TicResult:
    """The fitted curve with what was measured and how."""

    fit: q.TicFit
    roi: q.Roi
    times_s: list[float]
    echo_power: list[float]
    frame_time_source: str
    dynamic_range_db: float
    motion_corrected: bool
    max_shift_px: float

    def as_dict(self, with_curve: bool = True) -> dict[str, object]:
        out: dict[str, object] = {
            "model": self.fit.model.value,
            "parameters": {**self.fit.parameters, **self.fit.perfusion},
            "r2": self.fit.r2,
            "roi": {"x": self.roi.x, "y": self.roi.y, "width": self.roi.width,
                    "height": self.roi.height},
            "n_frames": len(self.times_s),
            "frame_time_source": self.frame_time_source,
            "dynamic_range_db": self.dynamic_range_db,
            "echo_power_units": "linear, brightest grey level = 1",
            "motion_correction": {"applied": self.motion_corrected,
                                  "max_shift_px": self.max_shift_px},
        }
        if with_curve:
            out["curve"] = {"t_s": self.times_s, "echo_power": self.echo_power}
        return out


def parse_roi(text: str) -> q.Roi:
    """``X,Y,W,H`` (column, row of the top-left corner, width, height in pixels)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4:
        raise InputError(f"--roi must be X,Y,W,H in whole pixels, got {text!r}")
    return q.Roi(*values)


def tic(path: Path, roi: q.Roi | str, dynamic_range_db: float = 60.0,
        model: str = "lognormal", motion_correction: bool = True) -> TicResult:
    """Fit ``model`` to the ROI time-intensity curve of the cine at ``path``."""
    try:
        m = q.TicModel.parse(model)
    except ValueError as exc:
        raise InputError(f"--model: {exc}") from None
    if not (math.isfinite(dynamic_range_db) and dynamic_range_db > 0):
        raise InputError(f"--dynamic-range-db must be a positive number of dB, got "
                         f"{dynamic_range_db!r}")
    r = parse_roi(roi) if isinstance(roi, str) else roi
    cine = read_us_cine(path)
    try:
        r.check(cine.rows, cine.columns)
    except ValueError as exc:
        raise InputError(f"--roi: {exc}") from None
    power = q.linearise(cine.grey, dynamic_range_db, cine.max_grey)
    max_shift = 0.0
    if motion_correction:
        shifts = q.motion_shifts(cine.grey)
        power = q.compensate(power, shifts)
        max_shift = float(np.max(np.hypot(shifts[:, 0], shifts[:, 1])))
    curve = q.roi_tic(power, r)
    try:
        fit = q.fit_tic(cine.times_s, curve, m)
    except ValueError as exc:
        raise CeusFitError(f"{path}: {exc}") from None
    return TicResult(fit, r, [float(v) for v in cine.times_s], [float(v) for v in curve],
                     cine.frame_time_source, float(dynamic_range_db), motion_correction,
                     max_shift)
