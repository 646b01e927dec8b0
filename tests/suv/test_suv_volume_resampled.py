"""suv_volume on a series load_series resamples (non-uniform spacing): per-slice factors
(Decay Correction NONE) are applied to each stored plane before the resampling.

Before: the factors were applied after loading, to the volume slice nearest each stored
position, so a plane interpolated between slices kept its Bq/ml values in the SUV volume.
"""

from __future__ import annotations

import numpy as np
import pytest
from suv_testdata import pet_series

from oncohybrid.dicom.suv import Normalisation, compute_suv, suv_volume
from oncohybrid.dicom.volume import volume_notes
from oncohybrid.errors import SUVError

ZS = (0.0, 4.0, 8.0, 14.0)  # last gap 1.5 voxels: resampled onto 3.5 mm planes


def _series():
    return pet_series(
        4, pixels=True, DecayCorrection="NONE", CorrectedImage=["NORM", "ATTN", "SCAT"],
        per_slice=[dict(ImagePositionPatient=[0.0, 0.0, z], AcquisitionTime=f"1{1 + i}0000")
                   for i, z in enumerate(ZS)])


def test_resampled_planes_are_interpolated_suv_not_activity() -> None:
    datasets = _series()
    scaling = compute_suv(datasets)
    assert scaling.per_slice is not None
    vol, _ = suv_volume(datasets, scaling=scaling)
    assert any("resampled" in n for n in volume_notes(vol))
    # SUV of each stored plane (pixels 100, 200, 300, 400; slope 1) at its position, then
    # linear interpolation along z onto the volume's planes.
    suv = [100.0 * (i + 1) * scaling.factor(Normalisation.BW, ds.SOPInstanceUID)
           for i, ds in enumerate(datasets)]
    z = vol.affine[2, 3] + vol.affine[2, 0] * np.arange(vol.shape[0])
    want = np.interp(z, ZS, suv)
    np.testing.assert_allclose(vol.array[:, 0, 0], want, rtol=1e-5)
    assert float(vol.array.max()) < 1.0  # SUV, not Bq/ml (~340 before)


def test_unavailable_normalisation_is_still_refused() -> None:
    datasets = _series()
    for ds in datasets:
        del ds.PatientSize
    with pytest.raises(SUVError, match="not available"):
        suv_volume(datasets, normalisation=Normalisation.LBM_JANMA)
