"""Registration + matching over several timepoints of a synthetic torso patient.

Acceptance: with repositioning ≥ 2 cm and lesions that shrink, grow, vanish and appear,
≥ 95 % of lesion decisions are correct (ground-truth masks/centroids as detections,
labels shuffled so that nothing but geometry can be used).
"""

from __future__ import annotations

import numpy as np
from tracking_torso import Lesion, default_lesions, make_timepoint, score_tracking

from oncohybrid.imaging.register import register_ct
from oncohybrid.tracking import LesionObservation, TimepointLesions, track_lesions


def _observations(truth, rng):
    labels = {}
    obs = []
    for n, gid in enumerate(rng.permutation(sorted(truth.lesions))):
        centre, vol = truth.lesions[gid]
        label = f"s{n}"
        labels[label] = gid
        obs.append(LesionObservation(label, tuple(centre), float(vol[0]), mask=truth.masks[gid]))
    return obs, labels


def test_chain_over_four_timepoints_is_at_least_95_percent_correct():
    rng = np.random.default_rng(11)
    lesions = default_lesions(rng, 8)
    newcomer = Lesion("NEW2", np.array([-60.0, -50.0, -10.0]), np.array([8.0, 7.0, 9.0]))
    lesions.append(newcomer)
    all_ids = {les.gid for les in lesions}
    plan = [
        dict(rotation_deg=0.0, shift_mm=(0, 0, 0), present=all_ids - {"NEW2"}),
        dict(rotation_deg=4.0, shift_mm=(25, -20, 15), present=all_ids - {"NEW2", "G3"},
             scale={"G0": 0.7, "G1": 1.3}),
        dict(rotation_deg=-3.0, shift_mm=(-30, 22, -20), present=all_ids,
             scale={"G0": 0.5, "G1": 1.5, "NEW2": 0.8}),
        dict(rotation_deg=5.0, shift_mm=(20, 25, 30), present=all_ids - {"G5"},
             scale={"G0": 0.4, "G1": 1.6, "G3": 0.6}),
    ]
    truths = [make_timepoint(lesions, seed=20 + k, **p) for k, p in enumerate(plan)]
    tps, gt = [], []
    for k, truth in enumerate(truths):
        obs, labels = _observations(truth, rng)
        reg = None if k == 0 else register_ct(truths[0].ct, truth.ct)
        tps.append(TimepointLesions(obs, registration=reg))
        gt.append(labels)
    result = track_lesions(tps, reference_grid=truths[0].ct)
    s = score_tracking(result, gt)
    assert s["total"] == sum(len(g) for g in gt[1:])
    assert s["correct"] / s["total"] >= 0.95, s["errors"]
    assert s["disappeared_correct"] == s["disappeared_total"], s["errors"]
    # The lesion absent at TP1 and back at TP2 kept its id; the TP2 newcomer reached TP3.
    inverse0 = {v: k for k, v in gt[0].items()}
    assert result.history[inverse0["G3"]][1] is None
    assert gt[2][result.history[inverse0["G3"]][2]] == "G3"
    new_tracks = [lid for lid, h in result.history.items() if h[0] is None]
    assert len(new_tracks) == 1 and gt[3][result.history[new_tracks[0]][3]] == "NEW2"
