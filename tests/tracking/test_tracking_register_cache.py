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


def _volume(shape, spacing, rng, oblique=False):
    import highdicom as hd

    aff = np.eye(4)
    cols = np.diag(spacing).astype(float)  # (slice, row, column) axes → LPS columns
    if oblique:
        c, s = np.cos(0.3), np.sin(0.3)
        cols = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ cols
    aff[:3, :3] = cols[:, ::-1]
    aff[:3, 3] = rng.uniform(-300, 300, 3)
    arr = rng.normal(0, 900, shape).astype(np.float32)
    flat = arr.reshape(-1)
    flat[::97] = rng.integers(-1200, 1700, flat[::97].size)  # integer HU, both clips
    flat[5::101] = np.array([np.nan, -0.0, 1e-30, -1e-38, 1500.0001, -1000.0001, 1499.9999,
                             np.inf, -np.inf, 3e38], np.float32)[np.arange(flat[5::101].size) % 10]
    return hd.Volume(arr, aff, "PATIENT")


@pytest.mark.parametrize(("shape", "spacing", "oblique"), [
    ((281, 64, 64), (2.5, 1.953125, 1.953125), False),   # the clinical grid, 2x2x2 bins
    ((31, 40, 29), (1.0, 1.7, 2.4), True),              # bins 5x2x2, sizes not multiples
    ((10, 12, 14), (3.0, 0.9, 4.9), False),             # 1 x 5 x 1 bins
    ((7, 9, 11), (1.2, 1.2, 1.2), True),                # 4x4x4 bins, 1 or 2 per axis
    ((6, 5, 5), (1.0, 1.0, 1.0), False),                # bin 5: one output voxel in y, x
])
def test_numpy_clamp_and_shrink_equal_itk(shape, spacing, oblique):
    rng = np.random.default_rng(sum(shape))
    vol = _volume(shape, spacing, rng, oblique)
    got = register._shrunk_in_numpy(vol, 5.0)
    img = sitk.Clamp(to_sitk(vol), sitk.sitkFloat32, register._HU_MIN, register._HU_MAX)
    want = sitk.BinShrink(img, [max(1, int(5.0 // s)) for s in img.GetSpacing()])
    assert got is not None
    assert got.GetSize() == want.GetSize()
    assert got.GetOrigin() == want.GetOrigin()
    assert got.GetSpacing() == want.GetSpacing()
    assert got.GetDirection() == want.GetDirection()
    assert got.GetPixelID() == want.GetPixelID()
    assert sitk.GetArrayViewFromImage(got).tobytes() == sitk.GetArrayViewFromImage(want).tobytes()
    # And the whole working image (the Gaussian needs 4 voxels per axis).
    if min(want.GetSize()) < 4:
        for make in (lambda: register._working_image_of(vol, 5.0),
                     lambda: register._working_image(to_sitk(vol), 5.0)):
            with pytest.raises(RuntimeError):
                make()
        return
    a = register._working_image_of(vol, 5.0)
    b = register._working_image(to_sitk(vol), 5.0)
    assert sitk.GetArrayViewFromImage(a).tobytes() == sitk.GetArrayViewFromImage(b).tobytes()
    assert (a.GetOrigin(), a.GetSpacing(), a.GetSize()) == (b.GetOrigin(), b.GetSpacing(),
                                                            b.GetSize())


def test_numpy_shrink_not_used_where_itk_does_otherwise():
    import highdicom as hd

    rng = np.random.default_rng(3)
    fine = _volume((8, 8, 8), (6.0, 6.0, 6.0), rng)  # no bin (factors 1): ITK path
    assert register._shrunk_in_numpy(fine, 5.0) is None
    small = _volume((1, 8, 8), (1.0, 1.0, 1.0), rng)  # too small for a bin in z
    assert register._shrunk_in_numpy(small, 5.0) is None
    ints = hd.Volume(rng.integers(-1100, 1600, (24, 24, 24)).astype(np.int16),
                     np.diag([1.0, 1, 1, 1]), "PATIENT")
    assert register._shrunk_in_numpy(ints, 5.0) is None  # other dtypes: ITK path
    assert register._shrunk_in_numpy(to_sitk(fine), 5.0) is None
    # Both paths give the same working image where numpy does not apply.
    b = register._working_image_of(ints, 5.0)
    assert sitk.GetArrayViewFromImage(b).tobytes() == sitk.GetArrayViewFromImage(
        register._working_image(to_sitk(ints), 5.0)).tobytes()
