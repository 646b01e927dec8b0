"""The logbook filled from the platform (issue #13): patient records read and reports
produced (from the audit trail, with the patient's modalities and tracers from the
study database), tumour-board attendance (the boards area's ``logbook_entries``), manual
entries and research milestones; monthly sign-off by the mentor only."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fellowship_data import applicant

from oncohybrid.config import get_settings
from oncohybrid.errors import InputError
from oncohybrid.services import audit, users
from oncohybrid.services import fellowship as svc

PW = "Correct-Horse-Battery-9"
CALL = (Path(__file__).parents[2] / "src/oncohybrid/fellowship/calls/"
        "esor-gustave-roussy-2021.yaml").read_text()


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    from oncohybrid.phantom import generate_cohort
    from oncohybrid.services.ingest import Ingestor
    from oncohybrid.services.worklist import patient_pk_of_study

    home = tmp_path_factory.mktemp("logbook")
    settings = get_settings(home)
    truth = generate_cohort(home / "ph", patients=1, timepoints=1, vendor="siemens", seed=7,
                            size="small")
    ing = Ingestor(settings)
    try:
        ing.ingest_paths([home / "ph"])
    finally:
        ing.close()
    pk = patient_pk_of_study(truth["patients"][0]["timepoints"][0]["study_uid"], settings)
    for name, role in (("fred", "fellow"), ("max", "mentor"), ("pia", "physician")):
        users.add_user(settings, name, PW, role, actor="test")
    today = dt.date.today()
    call = home / "call.yaml"
    call.write_text(CALL.replace("id: esor-gustave-roussy-2021", "id: year-now")
                    .replace('start: "2021-10-01"', f'start: "{today.replace(day=1)}"'))
    svc.load_call_file(settings, call)
    a = home / "a.json"
    import json

    a.write_text(json.dumps(applicant(applicant_id="F-1")))
    svc.enrol(settings, a, call_id="year-now", username="fred", mentor="max")
    return settings, pk


def test_reading_a_patient_fills_the_logbook_with_modalities_and_tracers(ws):
    settings, pk = ws
    audit.record(settings, "fred", "patient.read", f"patient:{pk}", {"view": "page"})
    audit.record(settings, "fred", "patient.read", f"patient:{pk}", {"view": "viewer"})
    audit.record(settings, "fred", "report.download", f"patient:{pk}", {})
    audit.record(settings, "pia", "patient.read", f"patient:{pk}", {"view": "page"})
    book = svc.logbook(settings, "F-1", username="max", role="mentor")
    s = book["summary"]
    # Two reads of one patient on one day are one entry; another user's read is not his.
    assert s["by_category"]["study-read"] == 1
    assert s["by_category"]["report-downloaded"] == 1
    assert s["by_modality"] == {"CT": 2, "PT": 2}
    assert s["by_tracer"] == {"Fluorodeoxyglucose": 2}
    entry = next(e for m in book["months"] for e in m["rows"] if e["category"] == "study-read")
    assert entry["title"] == f"Patient record #{pk} read"
    assert entry["date"] == dt.datetime.now(dt.UTC).date().isoformat()


def test_a_tumour_board_attended_appears_in_the_logbook(ws):
    boards = pytest.importorskip("oncohybrid.services.boards")
    if not hasattr(boards, "logbook_entries"):
        pytest.skip("the boards area has no logbook_entries yet")
    settings, _ = ws
    b = boards.create_board(settings, "Thoracic", "thoracic oncology")
    x = boards.create_session(settings, b["board_id"], dt.date.today())
    boards.attend(settings, x["session_id"], "fred", "radiology")
    s = svc.logbook(settings, "F-1", username="max", role="mentor")["summary"]
    assert s["by_category"].get("board-attended") == 1


def test_manual_entries_and_research_milestones_are_in_the_year_only(ws):
    settings, _ = ws
    today = dt.date.today()
    svc.add_log_entry(settings, "F-1", today, "ESOR course", actor="fred")
    with pytest.raises(InputError, match="outside the fellowship year"):
        svc.add_log_entry(settings, "F-1", today.replace(year=today.year - 2), "old",
                          actor="fred")
    svc.update_research(settings, "F-1", title="PERCIST in lymphoma", milestones={
        "protocol": {"status": "done", "date": today.isoformat()},
        "ethics": {"status": "in progress"}},
        collaborators=[{"name": "Dr Physicist", "role": "physicist"}], actor="fred")
    with pytest.raises(InputError, match="milestones.protocol.date"):
        svc.update_research(settings, "F-1", title="x",
                            milestones={"protocol": {"status": "done"}}, collaborators=[],
                            actor="fred")
    s = svc.logbook(settings, "F-1", username="fred", role="fellow")["summary"]
    assert s["by_category"]["manual"] == 1 and s["by_category"]["research-milestone"] == 1


def test_only_the_mentor_signs_a_month_and_only_once(ws):
    settings, _ = ws
    month = dt.date.today().strftime("%Y-%m")
    with pytest.raises(svc.Forbidden):
        svc.sign_month(settings, "F-1", month, mentor="pia")
    svc.sign_month(settings, "F-1", month, mentor="max", comment="good month")
    view = svc.fellow_view(settings, "F-1", username="max", role="mentor")
    n = next(m["entries"] for m in svc.logbook(settings, "F-1", username="max",
                                               role="mentor")["months"] if m["month"] == month)
    assert view["signoffs"][month]["entries"] == n > 0
    with pytest.raises(InputError, match="already signed off"):
        svc.sign_month(settings, "F-1", month, mentor="max")
    actions = [e["action"] for e in audit.list_entries(settings, username="max")]
    assert "fellowship.logbook.signoff" in actions


def test_evaluations_are_written_by_the_right_person_with_scores_1_to_5(ws):
    settings, _ = ws
    good = {"clinical": 4, "research": 5, "professionalism": 5, "communication": 4}
    svc.add_evaluation(settings, "F-1", "mentor-to-fellow", "month 3", good, "", author="max")
    svc.add_evaluation(settings, "F-1", "fellow-to-programme", "month 3", good, "",
                       author="fred")
    with pytest.raises(svc.Forbidden):
        svc.add_evaluation(settings, "F-1", "mentor-to-fellow", "month 3", good, "",
                           author="fred")
    with pytest.raises(InputError, match="scores.research"):
        svc.add_evaluation(settings, "F-1", "mentor-to-fellow", "m4", dict(good, research=6),
                           "", author="max")
    ev = svc.fellow_view(settings, "F-1", username="max", role="mentor")["evaluations"]
    assert [e["mean"] for e in ev] == ["4.5", "4.5"]


def test_teaching_and_research_entries_come_through_the_shared_interface(ws, monkeypatch):
    """A stand-in for services.teaching / services.research with the agreed signature:
    their entries (with quiz scores) join the logbook and its summary."""
    import sys
    import types

    settings, _ = ws
    today = dt.date.today()
    calls = []

    def entries(source, rows):
        def logbook_entries(settings_, username, start, end):
            calls.append((source, username, start, end))
            return rows
        return logbook_entries

    teach = types.ModuleType("oncohybrid.services.teaching")
    teach.logbook_entries = entries("teaching", [
        {"date": today.isoformat(), "source": "teaching", "category": "quiz",
         "title": "PERCIST quiz", "detail": "8/10", "score": 0.8},
        {"date": today.isoformat(), "source": "teaching", "category": "quiz",
         "title": "Deauville quiz", "detail": "6/10", "score": 0.6}])
    research = types.ModuleType("oncohybrid.services.research")
    research.logbook_entries = entries("research", [
        {"date": today.isoformat(), "source": "research", "category": "research-milestone",
         "title": "Cohort frozen", "detail": "", "score": None}])
    monkeypatch.setitem(sys.modules, "oncohybrid.services.teaching", teach)
    monkeypatch.setitem(sys.modules, "oncohybrid.services.research", research)
    book = svc.logbook(settings, "F-1", username="max", role="mentor")
    s = book["summary"]
    assert s["by_category"]["quiz"] == 2 and s["mean_score"] == 0.7
    assert s["by_category"]["research-milestone"] >= 1
    start = dt.date.fromisoformat(book["fellow"]["start"])
    assert ("teaching", "fred", start, dt.date.fromisoformat(book["fellow"]["end"])) in calls
