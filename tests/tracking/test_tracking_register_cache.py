"""The baseline's prepared working images are reused across follow-ups (#11) without
changing a bit of the result; Clamp with a float output equals Cast then Clamp."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import SimpleITK as sitk
from tracking_torso import default_lesions, make_timepoint

import oncohybrid.imaging.register as register
from oncohybrid.imaging.resample import to_sitk


@pytest.fixture()
def one_itk_thread():
    # ITK's threaded metric sums in a scheduling-dependent order (last-bit noise);
    # one thread makes a registration reproducible to the bit.
    old = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    yield
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(old)


def _fingerprint(reg: register.Registration) -> tuple:
    return (reg.transform.GetParameters(), reg.transform.GetFixedParameters(),
            reg.matrix_lps.tobytes(), repr(reg.metric_value), reg.stages, reg.initialiser,
            tuple(reg.notes))


def test_cached_baseline_gives_identical_registrations(one_itk_thread):
    rng = np.random.default_rng(11)
    lesions = default_lesions(rng, 4)
    base = make_timepoint(lesions, seed=1)
    fus = [make_timepoint(lesions, rotation_deg=r, shift_mm=s, seed=k)
           for k, (r, s) in enumerate([(3.0, (15.0, -10.0, 5.0)), (-2.0, (-8.0, 12.0, 20.0))],
                                      start=3)]
    register._FIXED.clear()
    # Uncached reference: an sitk.Image baseline is prepared on every call.
    ref = [_fingerprint(register.register_ct(to_sitk(base.ct), fu.ct)) for fu in fus]
    assert not register._FIXED
    got = [_fingerprint(register.register_ct(base.ct, fu.ct)) for fu in fus]
    assert len(register._FIXED) == 1
    assert got == ref
    # Again from the cache, in the other order.
    assert [_fingerprint(register.register_ct(base.ct, fu.ct)) for fu in fus[::-1]] == ref[::-1]
    # Another resolution is another entry.
    register.register_ct(base.ct, fus[0].ct, stages=("rigid",), resolution_mm=6.0)
    assert len(register._FIXED) == 2
    del base
    gc.collect()
    assert not register._FIXED  # entries go with the volume


def test_cached_images_are_private_copies():
    img = sitk.GetImageFromArray(np.linspace(-1200, 1600, 20 * 24 * 28, dtype=np.float32)
                                 .reshape(20, 24, 28))
    img.SetSpacing((2.0, 2.0, 2.5))
    fixed = register._prepare_fixed(img, 5.0, (2, 4, 2, 1, 2, 1))
    copy = fixed.copy()
    assert copy.pyramid[1] is copy.image
    for f, im in fixed.pyramid.items():
        assert copy.pyramid[f] is not im
        np.testing.assert_array_equal(sitk.GetArrayFromImage(copy.pyramid[f]),
                                      sitk.GetArrayFromImage(im))
        assert copy.pyramid[f].GetOrigin() == im.GetOrigin()
        assert copy.pyramid[f].GetSpacing() == im.GetSpacing()
    copy.image[0, 0, 0] = 1234.5
    assert fixed.image[0, 0, 0] != 1234.5


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.float64, np.uint16])
def test_clamp_to_float_equals_cast_then_clamp(dtype):
    rng = np.random.default_rng(5)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    lo, hi = (info.min, info.max) if info else (-5000.0, 5000.0)
    arr = rng.uniform(max(lo, -5000), min(hi, 5000), size=(7, 9, 11)).astype(dtype)
    flat = arr.reshape(-1)
    edge = [-1000, 1500, -1001, 1501, 0, -999, 1499]
    if not info:
        edge += [-1000.0000001, 1500.0000001, -999.99999, 1499.99999, np.nextafter(1500, 2000),
                 np.nan, -0.0, 1e-30, -1e-30, np.inf, -np.inf]
    edge = [v for v in edge if info is None or lo <= v <= hi]
    flat[: len(edge)] = np.array(edge).astype(dtype)
    img = sitk.GetImageFromArray(arr)
    old = sitk.Clamp(sitk.Cast(img, sitk.sitkFloat32), sitk.sitkFloat32,
                     register._HU_MIN, register._HU_MAX)
    new = sitk.Clamp(img, sitk.sitkFloat32, register._HU_MIN, register._HU_MAX)
    a, b = sitk.GetArrayFromImage(old), sitk.GetArrayFromImage(new)
    assert a.dtype == b.dtype == np.float32
    assert a.tobytes() == b.tobytes()
