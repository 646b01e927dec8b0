"""#11: the body fill and thorax shared by the reference placements and proofs of one CT
give the same references as computing them afresh, and a changed CT is never served the
results of the old values."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_quant_references import AFFINE, torso

import oncohybrid.quant.references as refs
from oncohybrid.quant.references import blood_pool_reference, liver_reference


def _both(pet, ct):
    out = []
    for place in (liver_reference, blood_pool_reference):
        try:
            out.append(dataclasses.asdict(place(pet, ct=ct, affine=AFFINE, sul_per_suv=0.8)))
        except refs.GeometryError as exc:
            out.append(repr(exc))
    return out


def _fresh(pet, ct):
    refs._PER_CT.clear()
    first = _both(pet, ct)
    return first


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, str):
            assert x == y
            continue
        assert x.keys() == y.keys()
        for k in x:
            assert np.array_equal(np.asarray(x[k]), np.asarray(y[k])) or x[k] == y[k], k


def test_shared_results_equal_fresh_ones_and_follow_changed_values():
    pet, ct = torso()
    fresh = _fresh(pet, ct)
    _same(_both(pet, ct), fresh)  # second round served from the memo
    _same(_both(pet, ct.copy()), fresh)  # an equal copy too
    spine = ct == 400.0
    ct[spine] = -80.0  # changed in place: no vertebral bone any more
    _same(_both(pet, ct), _fresh(pet, ct))
    assert "no vertebral bone" in _both(pet, ct)[1]


def test_thorax_and_body_fill_equal_the_direct_computation():
    _pet, ct = torso()
    grid = refs.image_grid(ct, None, AFFINE)[1]
    refs._PER_CT.clear()
    th = refs._thorax(ct, grid)
    assert refs._thorax(ct.copy(), grid) is th
    vol = np.moveaxis(ct, refs._axial_axis(grid), 0)
    direct = refs._thorax_of(vol.copy(), refs._axial_axis(grid), grid)
    for f in ("z_mm", "mid_x", "right_mm2", "left_mm2"):
        assert np.array_equal(getattr(th, f), getattr(direct, f), equal_nan=True)
    assert np.array_equal(refs._filled_body(vol), refs._fill_holes_per_slice(vol > -400.0))
    with pytest.raises(ValueError):
        refs._filled_body(vol)[0, 0, 0] = True  # shared: read-only


def test_memo_keeps_only_the_last_few_cts():
    refs._PER_CT.clear()
    rng = np.random.default_rng(0)
    for _ in range(refs._PER_CT_SIZE + 3):
        refs._filled_body(rng.normal(size=(3, 5, 5)).astype(np.float32) * 1000)
    assert len(refs._PER_CT) == refs._PER_CT_SIZE
