"""Protocol schedule matching and cohort flow (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from oncohybrid.errors import InputError
from oncohybrid.research.cohort import (
    CohortQuery,
    consort_figure,
    evaluate_cohort,
    multi_fact,
    parse_criterion,
)
from oncohybrid.research.schedule import Exam, match_exams, parse_protocol

PROTO = parse_protocol({"timepoints": [
    {"name": "baseline", "day": 0, "modality": "PT", "tracer": "FDG"},
    {"name": "interim", "day": 42, "before": 7, "after": 7, "modality": "PT", "tracer": "FDG"},
    {"name": "eot", "day": 120, "before": 14, "after": 28, "modality": "PT"},
    {"name": "follow-up", "day": 365, "before": 30, "after": 30, "modality": "CT"},
], "grace_days": 30})
D0 = dt.date(2024, 1, 10)


def pet(day: int, tracer: str = "FDG") -> Exam:
    return Exam(f"pt{day}", D0 + dt.timedelta(days=day), frozenset({"PT", "CT"}),
                frozenset({tracer}))


def status(rows):
    return {r.name: r.status for r in rows}


def test_done_inside_window_and_due_before_window_closes():
    rows = match_exams(PROTO, [pet(0), pet(45)], today=D0 + dt.timedelta(days=60))
    assert status(rows) == {"baseline": "done", "interim": "done", "eot": "due",
                            "follow-up": "due"}
    assert rows[1].deviation_days == 3 and rows[2].notes == [
        f"window opens {(D0 + dt.timedelta(days=106)).isoformat()}"]


def test_out_of_window_overdue_and_missing():
    # interim done on day 60 (window 35-49): out of window, 18 days late
    rows = match_exams(PROTO, [pet(0), pet(60)], today=D0 + dt.timedelta(days=160))
    s = status(rows)
    assert s["interim"] == "out of window" and rows[1].deviation_days == 18
    assert s["eot"] == "overdue"  # window closed on day 148, 12 days ago (< 30)
    rows = match_exams(PROTO, [pet(0), pet(60)], today=D0 + dt.timedelta(days=200))
    assert status(rows)["eot"] == "missing"  # 52 days after the window closed
    # interim skipped but end of treatment done: interim can no longer be done
    rows = match_exams(PROTO, [pet(0), pet(118)], today=D0 + dt.timedelta(days=125))
    assert status(rows)["interim"] == "missing" and status(rows)["eot"] == "done"


def test_tracer_must_fit_and_no_baseline_means_nothing_dated():
    rows = match_exams(PROTO, [pet(0, "PSMA")], today=D0)
    assert all(r.status == "due" and r.target is None for r in rows)
    assert rows[0].notes == ["no baseline exam yet"]


def test_clinical_anchor():
    proto = parse_protocol({"anchor": "treatment_start", "timepoints": [
        {"name": "baseline", "day": -14, "before": 14, "after": 14},
        {"name": "interim", "day": 42, "before": 7, "after": 7}]})
    rows = match_exams(proto, [pet(-20), pet(40)], today=D0 + dt.timedelta(days=50),
                       anchor_date=D0)
    assert status(rows) == {"baseline": "done", "interim": "done"}


@pytest.mark.parametrize("doc, msg", [
    ({"timepoints": []}, "non-empty"),
    ({"timepoints": [{"name": "b", "day": 3}]}, "day 0"),
    ({"timepoints": [{"name": "b", "day": 0}, {"name": "i", "day": 0}]}, "increase"),
    ({"timepoints": [{"name": "b", "day": 0, "before": -1}]}, "≥ 0"),
    ({"timepoints": [{"name": "b", "day": 0, "modality": "XX"}]}, "modality"),
    ({"timepoints": [{"name": "b", "day": "x"}]}, "whole number"),
])
def test_bad_protocols(doc, msg):
    with pytest.raises(InputError, match=msg):
        parse_protocol(doc)


def test_flow_counts_each_excluded_patient_once_in_criterion_order(tmp_path):
    q = CohortQuery((parse_criterion("include", "adult: [age] >= 18"),
                     parse_criterion("include", "FDG PET: [tracer(fdg)] = '1'"),
                     parse_criterion("exclude", "lymphoma: [tumour_type] = 'lymphoma'")))
    pts = [(1, {"age": "70", **multi_fact("tracer", ["FDG"]), "tumour_type": "lung"}),
           (2, {"age": "16", **multi_fact("tracer", ["PSMA"])}),  # fails both inclusions
           (3, {"age": "50", **multi_fact("tracer", ["FDG"]), "tumour_type": "lymphoma"}),
           (4, {"age": "40", **multi_fact("tracer", ["PSMA"])})]
    outcomes, flow = evaluate_cohort(q, pts)
    assert [o.included for o in outcomes] == [True, False, False, False]
    assert outcomes[1].reasons == ["inclusion not met: adult", "inclusion not met: FDG PET"]
    assert flow.assessed == 4 and flow.included == 1 and flow.excluded == 3
    assert list(flow.excluded_by.values()) == [1, 1, 1]
    assert list(flow.failing_by.values()) == [1, 2, 1]
    png = consort_figure(flow, tmp_path / "consort.png", title="t",
                         tracking={"baseline done": 1})
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
