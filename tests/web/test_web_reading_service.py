"""The reading room's door to the record (services.reading): lookups and edits without HTTP."""

from __future__ import annotations

import pytest

from oncohybrid.errors import InputError, StoreError


def test_lookups_name_the_patient_the_studies_and_the_recorded_centroid(web_ws):
    from oncohybrid.services import reading

    s, pk = web_ws.settings, web_ws.patient_pk
    assert reading.patient_id_of(pk, s) == web_ws.patient["patient_id"]
    with pytest.raises(StoreError, match="not in the study database"):
        reading.patient_id_of(10**6, s)
    uids = {tp["study_uid"] for tp in web_ws.patient["timepoints"]}
    assert uids <= set(reading.study_uids(s))
    # No observation is recorded on a day without a scan.
    assert reading.lesion_centroid(pk, "L1", "1999-01-01", s) is None


def test_edits_refuse_unknown_lesions_and_time_points_before_writing(web_ws):
    if not web_ws.assessed:
        pytest.skip("record/assess services not installed")
    from oncohybrid.services import reading

    s, pk = web_ws.settings, web_ws.patient_pk
    with pytest.raises(StoreError, match="not recorded for patient"):
        reading.set_lesion_role(pk, "no-such-lesion", "recist1.1", "target", actor="t",
                                settings=s)
    with pytest.raises(StoreError, match="not both recorded"):
        reading.swap_observations(pk, "L1", "no-such-lesion", 1, actor="t", settings=s)
    with pytest.raises(StoreError, match="time point 99: not recorded"):
        reading.swap_observations(pk, "L1", "L2", 99, actor="t", settings=s)


def test_coinciding_points_are_not_a_length(web_ws):
    from oncohybrid.services import reading, viewer

    vols = viewer.study_volumes(web_ws.patient["timepoints"][0]["study_uid"], web_ws.settings)
    with pytest.raises(InputError, match="coincide"):
        reading.manual_length_mm(vols, "axial", 0, [0.5, 0.5], [0.5, 0.5])
    assert reading.manual_length_mm(vols, "axial", 0, [0.0, 0.5], [1.0, 0.5]) > 0
