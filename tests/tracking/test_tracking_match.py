"""Lesion matching logic on centroids and small masks (no registration)."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pytest

from oncohybrid.errors import InputError
from oncohybrid.tracking import (
    LesionObservation,
    MatchParams,
    Override,
    OverrideKind,
    TimepointLesions,
    track_lesions,
)


def L(label, x, y=0.0, z=0.0, vol=1.0, mask=None):  # noqa: N802 - reads like a table row
    return LesionObservation(label, (x, y, z), volume_ml=vol, mask=mask)


def TP(*lesions, registration=None):  # noqa: N802
    return TimepointLesions(list(lesions), registration=registration)


def test_matches_by_distance_and_reports_new_and_disappeared():
    r = track_lesions([TP(L("A", 0), L("B", 100)), TP(L("b", 103), L("n", -200))])
    tp = r.timepoints[0]
    assert tp.assignments == {"b": "B", "n": "n@TP1"}
    assert tp.disappeared == ["A"]
    assert tp.matches[0].distance_mm == pytest.approx(3.0)
    assert r.history == {"A": ["A", None], "B": ["B", "b"], "n@TP1": [None, "n"]}


def test_assignment_is_globally_optimal_not_greedy():
    # Greedy on the closest pair would give a2->A (d=5) and leave a1 unmatched beyond
    # its gate; the optimum pairs a1->A (10) and a2->B (12).
    params = MatchParams(min_gate_mm=15.0, gate_radius_factor=0.0)
    r = track_lesions([TP(L("A", 0), L("B", 20)), TP(L("a1", -10), L("a2", 5 + 3))],
                      params=params)
    assert r.timepoints[0].assignments == {"a1": "A", "a2": "B"}


def test_gate_grows_with_lesion_size():
    big = 4 / 3 * np.pi * 30**3 / 1000  # r = 30 mm
    far = [TP(L("A", 0, vol=big)), TP(L("a", 60, vol=big))]
    assert track_lesions(far).timepoints[0].assignments == {"a": "A"}
    small = [TP(L("A", 0, vol=0.5)), TP(L("a", 60, vol=0.5))]
    assert track_lesions(small).timepoints[0].assignments == {"a": "a@TP1"}


def test_lesion_that_vanished_and_came_back_keeps_its_id_and_new_lesion_is_tracked():
    tps = [
        TP(L("A", 0), L("B", 100)),
        TP(L("b1", 101)),  # A vanished
        TP(L("a2", 1), L("b2", 99), L("n2", -150)),  # A back, N appears
        TP(L("a3", 2), L("n3", -148)),  # B gone, N tracked
    ]
    r = track_lesions(tps)
    assert r.timepoints[0].disappeared == ["A"]
    assert r.timepoints[1].assignments == {"a2": "A", "b2": "B", "n2": "n2@TP2"}
    assert r.timepoints[2].assignments == {"a3": "A", "n3": "n2@TP2"}
    assert r.timepoints[2].disappeared == ["B"]
    assert r.history["A"] == ["A", None, "a2", "a3"]


def test_overrides_take_precedence():
    tps = [TP(L("A", 0), L("B", 50)), TP(L("x", 1), L("y", 51))]
    ovs = [
        Override(OverrideKind.MATCH, 1, label="y", lesion_id="A", reason="reader 1"),
        Override(OverrideKind.NEW, 1, label="x", lesion_id="C"),
    ]
    tp = track_lesions(tps, overrides=ovs).timepoints[0]
    assert tp.assignments == {"y": "A", "x": "C"}
    assert [m.forced for m in tp.matches] == [True]
    assert tp.disappeared == ["B"]
    # Forced unmatched: B may not be matched, y becomes new.
    tp = track_lesions(tps, overrides=[Override(OverrideKind.UNMATCHED, 1, lesion_id="B")])
    assert tp.timepoints[0].assignments == {"x": "A", "y": "y@TP1"}
    assert tp.timepoints[0].disappeared == ["B"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (Override(OverrideKind.MATCH, 1, label="zz", lesion_id="A"), r"overrides\[0\].label"),
        (Override(OverrideKind.MATCH, 1, label="x"), r"overrides\[0\].lesion_id"),
        (Override(OverrideKind.NEW, 0, label="x"), r"overrides\[0\].timepoint"),
        (Override(OverrideKind.MATCH, 1, label="x", lesion_id="Q"), "'Q' is not a lesion"),
    ],
)
def test_invalid_overrides_are_rejected_with_their_path(override, message):
    with pytest.raises(InputError, match=message):
        track_lesions([TP(L("A", 0)), TP(L("x", 1))], overrides=[override])


def _mask(centre_idx, radius_vox, shape=(20, 40, 40), aff=None):
    aff = np.diag([2.0, 2.0, 2.0, 1.0]) if aff is None else aff
    g = np.indices(shape)
    m = sum((g[i] - centre_idx[i]) ** 2 for i in range(3)) <= radius_vox**2
    return hd.Volume(m.astype(np.uint8), aff, "PATIENT")


def test_overlap_decides_between_equidistant_candidates_and_dice_is_reported():
    # Two baseline lesions whose centroids are equally far from the follow-up lesion;
    # the mask of the follow-up overlaps only one of them (a crescent-like shift).
    a = _mask((10, 15, 15), 4)
    b = _mask((10, 25, 15), 4)
    f = _mask((10, 16, 15), 4)
    tps = [
        TP(LesionObservation("A", (30, 30, 20), 0.3, mask=a),
           LesionObservation("B", (30, 50, 20), 0.3, mask=b)),
        # Centroid given deliberately in the middle: only the masks can tell.
        TP(LesionObservation("f", (30, 40, 20), 0.3, mask=f)),
    ]
    tp = track_lesions(tps).timepoints[0]
    assert tp.assignments == {"f": "A"}
    expected = 2 * (a.array & f.array).sum() / (a.array.sum() + f.array.sum())
    assert tp.matches[0].dice == pytest.approx(expected)


def _sphere_mm(centre_mm, radius_mm, shape, aff):
    idx = np.indices(shape).reshape(3, -1).T
    lps = idx @ aff[:3, :3].T + aff[:3, 3]
    m = (((lps - np.asarray(centre_mm)) ** 2).sum(1) <= radius_mm**2).reshape(shape)
    return hd.Volume(m.astype(np.uint8), aff, "PATIENT")


def test_mask_on_another_grid_is_resampled_to_the_reference_grid():
    aff_b = np.diag([2.0, 2.0, 2.0, 1.0])
    aff_f = np.diag([3.0, 1.0, 1.0, 1.0])
    aff_f[:3, 3] = (5.0, -3.0, 2.0)
    centre = (20.0, 40.0, 40.0)
    b = _sphere_mm(centre, 10.0, (20, 40, 40), aff_b)
    f = _sphere_mm(centre, 10.0, (14, 80, 80), aff_f)
    decoy = _sphere_mm((20.0, 40.0, 62.0), 10.0, (20, 40, 40), aff_b)
    tp = track_lesions([
        TP(LesionObservation("A", centre, mask=b), LesionObservation("D", centre, mask=decoy)),
        TP(LesionObservation("a", centre, mask=f)),
    ]).timepoints[0]
    assert tp.assignments == {"a": "A"}
    assert tp.matches[0].dice > 0.8


def test_plain_matrix_registration_maps_centroids_and_masks():
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    centre_b = np.array([20.0, 40.0, 40.0])
    shift = np.array([30.0, -12.0, 8.0])  # follow-up = baseline + shift
    b = _sphere_mm(centre_b, 8.0, (30, 50, 50), aff)
    f = _sphere_mm(centre_b + shift, 8.0, (30, 50, 50), aff)
    decoy = _sphere_mm(centre_b + shift, 8.0, (30, 50, 50), aff)  # where the lesion moved to
    fu_to_base = np.eye(4)
    fu_to_base[:3, 3] = -shift
    tps = [
        TP(LesionObservation("A", tuple(centre_b), mask=b),
           LesionObservation("D", tuple(centre_b + shift), mask=decoy)),
        TP(LesionObservation("a", tuple(centre_b + shift), mask=f), registration=fu_to_base),
    ]
    tp = track_lesions(tps).timepoints[0]
    assert tp.assignments == {"a": "A"}
    assert tp.matches[0].distance_mm == pytest.approx(0.0, abs=1e-9)
    assert tp.matches[0].dice == pytest.approx(1.0)
