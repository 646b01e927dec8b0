"""Scoring of every automatically marked question kind with hand-made answers (#14).

References are worked out by hand in each test: which voxels a sphere of radius 3 holds,
which grades sit on which side of the Deauville 3|4 boundary, the SM-2 intervals of
Wozniak (1990) for a run of answers.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter

import numpy as np
import pytest

from oncohybrid.errors import InputError
from oncohybrid.teaching import (
    SM2State,
    balanced_draw,
    quality_from_score,
    score_category,
    score_choice,
    score_clicks,
    score_measurement,
    score_ordinal,
    sm2_review,
)
from oncohybrid.teaching.scoring import point_voxel


# ---------------------------------------------------------------- categories
def test_right_category_scores_one_and_feeds_back_the_rule_trace():
    trace = ["PR: sum 56.2 mm is -43% from baseline 98.6 mm (≤ -30%)"]
    s = score_category("partial response", "PR", "recist1.1", trace)
    assert (s.score, s.correct, s.given, s.expected) == (1.0, True, "PR", "PR")
    assert trace[0] in s.feedback


def test_off_by_one_category_is_wrong_and_says_how_far():
    s = score_category("SD", "PR", "recist1.1")
    assert (s.score, s.correct, s.details["off_by"]) == (0.0, False, 1)
    assert "1 category off" in " ".join(s.feedback)
    assert score_category("PD", "CR", "recist1.1").details["off_by"] == 3
    assert score_category("PMD", "PMR", "percist").details["off_by"] == 2


def test_category_of_another_criterion_is_refused():
    with pytest.raises(InputError, match="not a percist category"):
        score_category("PR", "PMR", "percist")
    with pytest.raises(InputError, match="no category"):
        score_category("  ", "PR", "recist1.1")


# ---------------------------------------------------------------- Deauville / Krenning
@pytest.mark.parametrize(("given", "ref", "expected"), [
    (4, 4, 1.0), (5, 4, 0.5), (2, 3, 0.5), (1, 2, 0.5),
    (3, 4, 0.0),  # one step, but across the 3 | 4 boundary (Lugano: CMR vs not)
    (4, 3, 0.0), (2, 4, 0.0), (1, 5, 0.0)])
def test_deauville_partial_credit_only_on_the_same_side_of_3_4(given, ref, expected):
    assert score_ordinal(given, ref, "deauville").score == expected


def test_krenning_boundary_is_the_prrt_cutoff_3():
    assert score_ordinal(3, 4, "krenning").score == 0.5
    assert score_ordinal(2, 3, "krenning").score == 0.0
    assert score_ordinal("0", 0, "krenning").correct


@pytest.mark.parametrize("bad", [0, 6, "x", True, "4.5"])
def test_impossible_deauville_answers_are_refused(bad):
    with pytest.raises(InputError, match="deauville"):
        score_ordinal(bad, 4, "deauville")


# ---------------------------------------------------------------- multiple choice
def test_multiple_choice_single_and_partial():
    opts = ["lymphoma", "sarcoidosis", "metastasis", "infection"]
    assert score_choice("lymphoma", ["lymphoma"], opts).correct
    assert score_choice(["metastasis"], ["lymphoma"], opts).score == 0.0
    # two right options: one right pick = half, plus a wrong pick = nothing
    assert score_choice(["lymphoma"], ["lymphoma", "sarcoidosis"], opts).score == 0.5
    assert score_choice(["lymphoma", "infection"], ["lymphoma", "sarcoidosis"],
                        opts).score == 0.0
    s = score_choice(["sarcoidosis", "lymphoma"], ["lymphoma", "sarcoidosis"], opts)
    assert (s.score, s.correct) == (1.0, True)
    with pytest.raises(InputError, match="not one of the options"):
        score_choice(["lupus"], ["lymphoma"], opts)


# ---------------------------------------------------------------- measurement
def test_measurement_tolerance_is_the_larger_of_mm_and_percent():
    # reference 35.76 mm: 10 % = 3.576 mm > 2 mm
    assert score_measurement(32.2, 35.76).correct  # -3.56 mm
    assert not score_measurement(32.1, 35.76).correct  # -3.66 mm
    # reference 12 mm: 10 % = 1.2 mm < 2 mm
    assert score_measurement(14.0, 12.0).correct
    assert not score_measurement(14.1, 12.0).correct
    assert score_measurement(30, 35.76, tolerance_mm=6).correct
    with pytest.raises(InputError, match="positive length"):
        score_measurement(-3, 12.0)


# ---------------------------------------------------------------- lesion clicks
def _two_spheres() -> tuple[np.ndarray, dict[int, str]]:
    lab = np.zeros((20, 20, 20), np.uint8)
    k, j, i = np.indices(lab.shape)
    lab[(k - 5) ** 2 + (j - 5) ** 2 + (i - 5) ** 2 <= 9] = 1  # radius 3 around (5,5,5)
    lab[(k - 14) ** 2 + (j - 14) ** 2 + (i - 14) ** 2 <= 4] = 2  # radius 2 around (14,14,14)
    return lab, {1: "L1", 2: "L2"}


def test_clicks_hit_miss_and_false_positive():
    lab, names = _two_spheres()
    c = score_clicks([(5, 5, 5), (0, 0, 0)], lab, names)
    assert (c.hits, c.misses, c.false_positives) == (("L1",), ("L2",), 1)
    assert c.sensitivity == 0.5
    assert c.score == pytest.approx(1 / 3)  # 1 hit / (2 lesions + 1 FP)
    s = c.as_score()
    assert not s.correct and s.details["false_positives"] == 1


def test_click_on_border_voxel_is_a_hit_and_one_beyond_is_not():
    lab, names = _two_spheres()
    # (5,5,8) is at distance 3: the last voxel of the sphere; (5,5,9) is outside.
    assert lab[5, 5, 8] == 1 and lab[5, 5, 9] == 0
    assert score_clicks([(5, 5, 8)], lab, names, targets=[1]).hits == ("L1",)
    c = score_clicks([(5, 5, 9)], lab, names, targets=[1])
    assert (c.hits, c.misses, c.false_positives) == ((), ("L1",), 1)


def test_border_voxel_by_lps_point_on_a_real_affine():
    lab, names = _two_spheres()
    # 2 mm voxels, origin at (-10, -20, 100) mm; index axes (k, j, i) along z, y, x.
    affine = np.array([[0, 0, 2.0, -10], [0, 2.0, 0, -20], [2.0, 0, 0, 100], [0, 0, 0, 1]])
    centre = affine @ np.array([5, 5, 8, 1.0])  # border voxel centre
    inside = centre[:3] + [0.99, 0, 0]  # 0.99 mm along x: still that voxel (half = 1 mm)
    outside = centre[:3] + [1.01, 0, 0]  # 1.01 mm: next voxel, outside the sphere
    assert point_voxel(affine, inside, lab.shape) == (5, 5, 8)
    assert point_voxel(affine, outside, lab.shape) == (5, 5, 9)
    assert point_voxel(affine, affine[:3, 3] - 5, lab.shape) is None


def test_repeat_clicks_count_once_and_other_lesions_are_false_positives():
    lab, names = _two_spheres()
    c = score_clicks([(5, 5, 5), (5, 5, 6), (14, 14, 14)], lab, names, targets=[1])
    assert (c.hits, c.misses, c.false_positives) == (("L1",), (), 1)
    assert "not asked for" in c.clicks[2]["result"]
    full = score_clicks([(5, 5, 5), (14, 14, 14)], lab, names)
    assert (full.score, full.as_score().correct) == (1.0, True)
    assert score_clicks([None], lab, names).false_positives == 1
    with pytest.raises(InputError, match="outside the volume"):
        score_clicks([(25, 0, 0)], lab, names)


# ---------------------------------------------------------------- draws
def test_balanced_draw_is_unique_and_balanced_by_tag():
    items = [(f"ct{n}", ["CT"]) for n in range(10)] + \
        [(f"pet{n}", ["PET"]) for n in range(10)] + \
        [(f"both{n}", ["CT", "PET"]) for n in range(4)] + [(f"mr{n}", ["MR"]) for n in range(2)]
    for seed in range(30):
        got = balanced_draw(items, 9, rng=random.Random(seed))
        assert len(got) == len(set(got)) == 9
        tags = dict(items)
        per = Counter()
        for key in got:
            # the tag a key was drawn for is one of its own; count the exclusive ones
            if tags[key] == ["CT"]:
                per["CT"] += 1
            elif tags[key] == ["PET"]:
                per["PET"] += 1
            elif tags[key] == ["MR"]:
                per["MR"] += 1
        assert per["MR"] == 2  # round-robin reaches the small pool each round
    got = balanced_draw(items, 100, tags=["MR", "CT"], rng=random.Random(1))
    assert sorted(got) == sorted([k for k, t in items if "MR" in t or "CT" in t])


def test_balanced_draw_counts_differ_by_at_most_one():
    items = [(n, [t]) for n, t in enumerate(["a"] * 8 + ["b"] * 8 + ["c"] * 8)]
    for seed in range(20):
        got = balanced_draw(items, 7, rng=random.Random(seed))
        counts = Counter(dict(items)[k][0] for k in got)
        assert max(counts.values()) - min(counts.values()) <= 1 and sum(counts.values()) == 7
    with pytest.raises(InputError):
        balanced_draw(items, 0)


# ---------------------------------------------------------------- SM-2
def test_sm2_intervals_follow_wozniak_1990():
    day = dt.date(2026, 1, 1)
    s = SM2State()
    s = sm2_review(s, 5, day)  # EF 2.5 + 0.1 = 2.6, I(1) = 1
    assert (s.repetitions, s.interval_days, s.due) == (1, 1, dt.date(2026, 1, 2))
    s = sm2_review(s, 4, s.due)  # EF unchanged by q=4 (0.1 - 1*(0.08+0.02) = 0), I(2) = 6
    assert (s.repetitions, s.interval_days) == (2, 6) and s.easiness == pytest.approx(2.6)
    s = sm2_review(s, 3, s.due)  # EF 2.6 - 0.14 = 2.46, I(3) = ceil(6 × 2.46) = 15
    assert s.easiness == pytest.approx(2.46) and s.interval_days == 15
    miss = sm2_review(s, 1, day)  # q < 3: start again, EF unchanged
    assert (miss.repetitions, miss.interval_days, miss.easiness) == (0, 1, s.easiness)
    low = SM2State(easiness=1.35)
    assert sm2_review(low, 3, day).easiness == 1.3  # floor
    assert quality_from_score(1.0, True) == 5 and quality_from_score(0.0, False) == 0
    with pytest.raises(InputError):
        sm2_review(s, 6, day)


def test_categories_of_other_criteria_in_their_own_spelling():
    assert score_category("ipr", "iPR", "irecist").correct
    assert score_category("iUPD", "iPR", "irecist").details["off_by"] == 2
    assert score_category("IR2", "IR2", "lyric").correct
    assert score_category("NMR", "PMR", "lugano-pet").details["off_by"] == 1
    with pytest.raises(InputError, match="not a irecist category"):
        score_category("PR", "iPR", "irecist")
