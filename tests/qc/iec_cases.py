"""The two synthetic IEC phantom configurations of tests/qc."""

from __future__ import annotations

import datetime as dt

from oncohybrid.phantom.iec import PSF

#: 4 mm voxels, Gaussian PSF 8 mm FWHM (an EARL1-like reconstruction, no overshoot).
EARL1_LIKE = dict(voxel_mm=(4.0, 4.0, 4.0), psf=PSF(8.0), ring_angle_deg=17.0,
                  ring_centre_mm=(6.0, -9.0, 3.0), clockwise=False)
#: 2 mm voxels, resolution-modelling PSF with edge overshoot (an EARL2-like reconstruction).
EARL2_LIKE = dict(voxel_mm=(2.0, 2.0, 2.0), psf=PSF(7.5, overshoot=0.5, wide_fwhm_mm=15.0),
                  ring_angle_deg=203.0, ring_centre_mm=(-4.0, 5.0, -2.0), clockwise=True)
REFERENCE = dt.datetime(2026, 11, 2, 8, 0, 0)
