"""quantify_pet converts the PET to the quant/segment volume type once (issue #11).

Before, ``segment.grid.as_grid`` was entered at nearly every step (references, segmentation,
physiological re-segmentation, lesion and whole-body metrics). The PET is now converted
once (``segment.grid.grid_image``) and the GridImage carried through; physiological
exclusion of a PERCIST segmentation no longer segments a second time.
"""

from __future__ import annotations

import sys

import pytest

phantom = pytest.importorskip("oncohybrid.phantom")


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    root = tmp_path_factory.mktemp("onevol")
    truth = phantom.generate_cohort(root, patients=1, timepoints=1, vendor="siemens", seed=3,
                                    noise_free=False, size="small")
    return root / truth["patients"][0]["patient_id"] / "TP0"


def _count_calls(monkeypatch, name: str, home: str) -> list[int]:
    """Wrap function ``name`` of module ``home`` wherever an oncohybrid module binds it."""
    import importlib

    original = getattr(importlib.import_module(home), name)
    calls = [0]

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    for mod_name, mod in list(sys.modules.items()):
        if mod_name.startswith("oncohybrid") and getattr(mod, name, None) is original:
            monkeypatch.setattr(mod, name, counting)
    return calls


def test_quantify_pet_converts_the_pet_volume_once(patient, monkeypatch):
    import oncohybrid.quant.pet  # noqa: F401 - bind every module before patching
    import oncohybrid.quant.references  # noqa: F401
    import oncohybrid.segment.threshold  # noqa: F401
    from oncohybrid.services.quantify import quantify_pet

    conversions = _count_calls(monkeypatch, "as_grid", "oncohybrid.segment.grid")
    segmentations = _count_calls(monkeypatch, "segment_lesions", "oncohybrid.segment.threshold")
    res = quantify_pet(patient / "PT", ct_source=patient / "CT", method="percist")
    # physiological exclusion (whole-body FDG default) did drop components ...
    assert res.physiological["excluded"]
    assert res.liver is not None and res.blood_pool is not None and res.lesions
    # ... yet the PET volume was converted once and the lesions segmented once
    assert conversions[0] == 1
    assert segmentations[0] == 1
