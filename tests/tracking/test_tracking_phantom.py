"""Acceptance on the project phantom: registration + matching over 3 timepoints.

Ground-truth lesions are the detections (labels shuffled); each follow-up is moved by
an extra 20–40 mm on top of the phantom's repositioning, so every pair needs ≥ 2 cm of
correction. Patient 1 responds (lesions shrink and vanish), patient 2 progresses
(lesions grow and new ones appear).
"""

from __future__ import annotations

import numpy as np
from tracking_phantom_harness import run_patient

from oncohybrid.phantom import generate_cohort


def _events(p):
    pres = [[les["present"] for les in tp["lesions"]] for tp in p["timepoints"]]
    pairs = [(a, b) for k in range(len(pres) - 1) for a, b in zip(pres[k], pres[k + 1],
                                                                   strict=True)]
    return any(a and not b for a, b in pairs), any(b and not a for a, b in pairs)


def test_phantom_lesion_decisions_at_least_95_percent_correct(tmp_path):
    truth = generate_cohort(tmp_path, patients=2, timepoints=3, vendor="ge", seed=1,
                            size="small")
    vanished = appeared = False
    correct = total = 0
    for i, p in enumerate(truth["patients"]):
        v, a = _events(p)
        vanished, appeared = vanished or v, appeared or a
        s = run_patient(tmp_path, p, np.random.default_rng(i), extra_shift_mm=(20.0, 40.0))
        assert min(s["rel_shift_mm"]) >= 20.0
        assert max(s["reg_err_mm"]) < 3.0
        assert s["disappeared_correct"] == s["disappeared_total"], s["errors"]
        correct += s["correct"]
        total += s["total"]
    assert vanished and appeared, "phantom plan no longer has vanishing and new lesions"
    assert total >= 8
    assert correct / total >= 0.95
