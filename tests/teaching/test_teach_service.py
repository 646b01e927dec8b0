"""Quizzes, authoring, search, collections, the record and the logbook entries (#14),
through the service on the assessed phantom workspace. Expected numbers are worked out
in the tests (kappa by hand from a 2×2 table, SM-2 intervals, scores by the rules)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from oncohybrid.errors import InputError, StoreError
from oncohybrid.services import teaching
from oncohybrid.store.db import session_scope
from oncohybrid.store.models_teach import TeachQuiz, TeachReview


@pytest.fixture(scope="module")
def case(teach_ws):
    s = teach_ws.settings
    cid = teaching.capture_case(teach_ws.patient["patient_id"], title="Service case",
                                author="max", settings=s)["case_id"]
    teaching.update_case(cid, {"history": "Smoker, lung mass", "diagnosis": "NSCLC",
                               "teaching_points": "Look at both lungs.",
                               "tags": ["tumour:lung cancer", "difficulty:hard"]},
                         username="max", settings=s)
    teaching.set_status(cid, "published", username="max", settings=s)
    return cid


def _questions(ws, cid):
    return {(q["kind"], q["params"].get("criterion")): q
            for q in teaching.case_detail(cid, ws.settings)["questions"]}


def test_search_by_words_and_tags(teach_ws, case):
    s = teach_ws.settings
    assert case in [c["case_id"] for c in teaching.list_cases(s, q="smoker lung")]
    assert case not in [c["case_id"] for c in teaching.list_cases(s, q="smoker liver")]
    assert case in [c["case_id"] for c in teaching.list_cases(s, tags=["difficulty:HARD"])]
    assert case not in [c["case_id"] for c in teaching.list_cases(s, tags=["difficulty:easy"])]
    assert case not in [c["case_id"] for c in teaching.list_cases(s, statuses=["draft"])]


def test_revisions_keep_every_version(teach_ws, case):
    s = teach_ws.settings
    n = teaching.update_case(case, {"findings": "4 lesions"}, username="max", note="typo",
                             settings=s)
    same = teaching.update_case(case, {"findings": "4 lesions"}, username="max", settings=s)
    assert same == n  # nothing changed: no new revision
    revs = teaching.case_detail(case, s)["revisions"]
    assert revs[0]["number"] == n and revs[0]["note"] == "typo"
    assert revs[0]["fields"]["findings"] == "4 lesions"
    assert any(r["fields"]["findings"] == "" for r in revs[1:])
    with pytest.raises(InputError, match="certainty"):
        teaching.update_case(case, {"certainty": "probably"}, username="max", settings=s)
    with pytest.raises(InputError, match="status"):
        teaching.set_status(case, "archived", username="max", settings=s)


def test_unknown_case_reveals_after_commit(teach_ws, case):
    s = teach_ws.settings
    detail = teaching.case_detail(case, s, reveal=False)
    assert "diagnosis" not in detail and "ground_truth" not in detail
    assert all("reference" not in q for q in detail["questions"])
    assert all("lesions" not in q["params"] for q in detail["questions"])
    quiz = teaching.create_quiz("fred", mode="case", case_id=case, settings=s)
    q = _questions(teach_ws, case)[("category", "recist1.1")]
    r = teaching.answer_question(quiz, q["pk"], {"category": "PR"}, username="fred", settings=s)
    assert r == {"recorded": True, "question_pk": q["pk"]}  # nothing revealed yet
    view = teaching.quiz_view(quiz, "fred", s)
    assert not view["reveal"] and "result" not in view["questions"][0]
    assert view["questions"][0]["case_title"] == "Unknown case"
    teaching.finish_quiz(quiz, username="fred", settings=s)
    view = teaching.quiz_view(quiz, "fred", s)
    first = next(x for x in view["questions"] if x["pk"] == q["pk"])
    assert view["reveal"] and first["score"] == 1.0 and first["diagnosis"] == "NSCLC"
    with pytest.raises(InputError, match="finished"):
        teaching.answer_question(quiz, view["questions"][1]["pk"], {"category": "PMR"},
                                 username="fred", settings=s)


def test_timed_exam_scores_late_answers_zero(teach_ws, case):
    s = teach_ws.settings
    quiz = teaching.create_quiz("erin", mode="exam", tags=["criterion:recist1.1"], n=1,
                                time_limit_s=60, settings=s)
    with session_scope(s) as ss:  # the exam started two minutes ago
        ss.get(TeachQuiz, quiz).created_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    q = teaching.quiz_view(quiz, "erin", s)["questions"][0]
    assert teaching.answer_question(quiz, q["pk"], {"category": "PR"}, username="erin",
                                    settings=s) == {"recorded": True, "question_pk": q["pk"]}
    teaching.finish_quiz(quiz, username="erin", settings=s)
    shown = teaching.quiz_view(quiz, "erin", s)["questions"][0]
    assert shown["score"] == 0.0 and shown["result"]["feedback"][0].startswith("time is up")
    with pytest.raises(InputError, match="time limit"):
        teaching.create_quiz("erin", mode="exam", n=1, time_limit_s=5, settings=s)


def test_balanced_quiz_draws_without_replacement(teach_ws, case):
    s = teach_ws.settings
    for seed in range(5):
        quiz = teaching.create_quiz("gus", tags=["kind:category", "kind:percist",
                                                 "kind:click"], n=3, seed=seed, settings=s)
        view = teaching.quiz_view(quiz, "gus", s)
        kinds = sorted(q["kind"] for q in view["questions"])
        assert kinds == ["category", "click", "percist"]
        assert len({q["pk"] for q in view["questions"]}) == 3
    with pytest.raises(InputError, match="no question matches"):
        teaching.create_quiz("gus", tags=["organ:brain"], n=3, settings=s)


def test_sm2_review_brings_back_missed_questions(teach_ws, case):
    s = teach_ws.settings
    quiz = teaching.create_quiz("hal", tags=["kind:percist"], n=1, settings=s)
    q = teaching.quiz_view(quiz, "hal", s)["questions"][0]
    r = teaching.answer_question(quiz, q["pk"], {"category": "PMD"}, username="hal", settings=s)
    assert r["score"] == 0.0
    with session_scope(s) as ss:
        row = ss.scalar(sa.select(TeachReview).where(TeachReview.username == "hal"))
        assert (row.repetitions, row.interval_days) == (0, 1)
        assert row.due == dt.date.today() + dt.timedelta(days=1)
        row.due = dt.date.today()  # a day later
    review = teaching.create_quiz("hal", mode="review", n=10, settings=s)
    assert [x["pk"] for x in teaching.quiz_view(review, "hal", s)["questions"]] == [q["pk"]]
    r = teaching.answer_question(review, q["pk"], {"category": "PMR"}, username="hal",
                                 settings=s)
    assert r["correct"]
    with session_scope(s) as ss:
        row = ss.scalar(sa.select(TeachReview).where(TeachReview.username == "hal"))
        # q = 5: first successful repetition, interval 1, EF 2.5 + 0.1
        assert (row.repetitions, row.interval_days) == (1, 1)
        assert row.easiness == pytest.approx(2.6)
    with pytest.raises(InputError, match="due for review"):
        teaching.create_quiz("hal", mode="review", n=10, settings=s)


def test_record_kappa_accuracy_localisation_and_logbook(teach_ws, case):
    s = teach_ws.settings
    qs = _questions(teach_ws, case)
    # Four category answers under RECIST 1.1 over two quizzes (the case has one RECIST
    # question; each quiz may hold it once): PR/PR right, SD/PR wrong.
    answers = [("PR", "recist1.1"), ("SD", "recist1.1")]
    for given, crit in answers:
        quiz = teaching.create_quiz("ivy", tags=[f"criterion:{crit}"], n=1, settings=s)
        pk = teaching.quiz_view(quiz, "ivy", s)["questions"][0]["pk"]
        assert pk == qs[("category", crit)]["pk"]
        teaching.answer_question(quiz, pk, {"category": given}, username="ivy", settings=s)
    # Deauville: reference 5; answers 5 and 3 (score 1 and 0: 3 is across the boundary)
    for grade in (5, 3):
        quiz = teaching.create_quiz("ivy", tags=["kind:deauville"], n=1, settings=s)
        pk = teaching.quiz_view(quiz, "ivy", s)["questions"][0]["pk"]
        teaching.answer_question(quiz, pk, {"grade": grade}, username="ivy", settings=s)
    # a click far outside the body: a miss and a false positive
    quiz = teaching.create_quiz("ivy", tags=["kind:click"], n=1, settings=s)
    pk = teaching.quiz_view(quiz, "ivy", s)["questions"][0]["pk"]
    r = teaching.answer_question(quiz, pk, {"clicks": [{"orientation": "axial", "index": 40,
                                                        "fx": 0.01, "fy": 0.01}]},
                                 username="ivy", settings=s)
    assert (r["score"], r["result"]["details"]["false_positives"]) == (0.0, 1)
    rec = teaching.trainee_record("ivy", s)
    # kappa (PR,PR),(SD,PR): categories {PR, SD}; table [[1,0],[1,0]] rows trainee, cols
    # reference → po = 0.5, pe = 0.5·1 + 0.5·0 = 0.5 → kappa = 0
    k = rec["kappa"]["recist1.1"]
    assert (k["n"], k["agreement"], k["kappa"]) == (2, 0.5, 0.0)
    d = rec["kappa"]["deauville"]
    assert (d["n"], d["agreement"]) == (2, 0.5)
    assert rec["topics"]["kind:deauville"]["accuracy"] == 0.5
    assert rec["topics"]["criterion:recist1.1"]["n"] == 2
    month = dt.date.today().strftime("%Y-%m")
    assert rec["topics"]["kind:click"]["by_month"] == {month: 0.0}
    assert rec["localisation"][0]["misses"] == 1 and rec["localisation"][0]["sensitivity"] == 0
    assert rec["n_scored"] == 5 and rec["mean_score"] == pytest.approx(2 / 5)
    today = dt.date.today()
    entries = teaching.logbook_entries(s, "ivy", today - dt.timedelta(days=1), today)
    assert len(entries) == 5 and {e["category"] for e in entries} == {"quiz"}
    assert all(set(e) == {"date", "source", "category", "title", "detail", "score"}
               and e["source"] == "teaching" for e in entries)
    assert sorted(e["score"] for e in entries) == [0.0, 0.0, 0.0, 1.0, 1.0]
    authored = teaching.logbook_entries(s, "max", today, today)
    assert any(e["category"] == "teaching-case-authored" and e["title"] == "Service case"
               for e in authored)
    assert teaching.logbook_entries(s, "ivy", today + dt.timedelta(days=1),
                                    today + dt.timedelta(days=9)) == []


def test_free_text_is_marked_by_a_mentor(teach_ws, case):
    s = teach_ws.settings
    pk = teaching.add_question(case, "free_text", "Name two pitfalls of RECIST in lung.",
                               {}, {"answer": "atelectasis; cavitation"}, settings=s)
    quiz = teaching.create_quiz("jo", tags=["kind:free_text"], n=1, settings=s)
    r = teaching.answer_question(quiz, pk, {"text": "atelectasis"}, username="jo", settings=s)
    assert r["pending"] and r["score"] is None
    pending = [p for p in teaching.pending_marks(s) if p["username"] == "jo"]
    assert pending[0]["text"] == "atelectasis"
    teaching.mark_answer(pending[0]["pk"], 0.5, mentor="max", comment="one of two", settings=s)
    rec = teaching.trainee_record("jo", s)
    assert rec["answers"][0]["score"] == 0.5
    with pytest.raises(InputError):
        teaching.mark_answer(pending[0]["pk"], 2, mentor="max", settings=s)
    teaching.delete_question(case, pk, settings=s)


def test_multiple_choice_authoring_and_collections(teach_ws, case):
    s = teach_ws.settings
    with pytest.raises(InputError, match="among the options"):
        teaching.add_question(case, "choice", "Histology?", {"options": ["a", "b"]},
                              {"answer": ["c"]}, settings=s)
    with pytest.raises(InputError, match="generated from the ground truth"):
        teaching.add_question(case, "deauville", "?", {}, {"answer": 3}, settings=s)
    pk = teaching.add_question(case, "choice", "Most likely histology?",
                               {"options": ["adenocarcinoma", "squamous", "lymphoma"]},
                               {"answer": ["adenocarcinoma"]}, settings=s)
    quiz = teaching.create_quiz("kim", tags=["kind:choice"], n=1, settings=s)
    r = teaching.answer_question(quiz, pk, {"choice": ["squamous"]}, username="kim",
                                 settings=s)
    assert r["score"] == 0.0 and "adenocarcinoma" in r["result"]["feedback"][0]
    col = teaching.create_collection("Case of the week", kind="case-of-the-week",
                                     username="max", settings=s)
    teaching.add_to_collection(col, case, s)
    teaching.add_to_collection(col, case, s)  # once only
    cols = {c["name"]: c for c in teaching.list_collections(s)}
    assert [c["case_id"] for c in cols["Case of the week"]["cases"]] == [case]
    with pytest.raises(InputError, match="exists already"):
        teaching.create_collection("Case of the week", username="max", settings=s)
    with pytest.raises(StoreError):
        teaching.add_to_collection(col, "TC-NONE", s)
    teaching.delete_question(case, pk, settings=s)
