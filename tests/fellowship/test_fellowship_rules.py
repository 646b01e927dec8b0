"""Each eligibility rule of the ESOR 2021 call at its boundaries (issue #13 acceptance)."""

from __future__ import annotations

import datetime as dt

import pytest
from fellowship_data import applicant

from oncohybrid.fellowship.applicant import parse_applicant
from oncohybrid.fellowship.call import bundled_call, cefr_rank
from oncohybrid.fellowship.rules import cutoff, evaluate

CALL = bundled_call("esor-gustave-roussy-2021")


def judge(**changes):
    res = evaluate(CALL, parse_applicant(applicant(**changes), CALL))
    return res, {r.rule: r for r in res.rules}


def test_the_reference_applicant_meets_every_rule_of_the_call():
    res, by_id = judge()
    assert res.eligible
    assert list(by_id) == [
        "board_certification_recent", "european_radiologist", "society_full_member",
        "membership_fee_paid", "english_level", "french_level", "single_application",
        "deadline", "interview_available", "subspecialty_intent", "hybrid_imaging_knowledge",
        "research_interest"]


def test_certified_exactly_three_years_before_the_deadline_is_eligible():
    # 2021-06-15 minus 3 calendar years = 2018-06-15 (1096 days: 2020 is a leap year).
    res, by_id = judge(**{"board_certification.date": "2018-06-15"})
    r = by_id["board_certification_recent"]
    assert r.ok and res.eligible
    assert "2018-06-15" in r.reason and "1096 days" in r.reason


def test_certified_one_day_more_than_three_years_before_is_not():
    res, by_id = judge(**{"board_certification.date": "2018-06-14"})
    r = by_id["board_certification_recent"]
    assert not r.ok and not res.eligible
    assert "1097 days" in r.reason and "2018-06-15" in r.reason


def test_certified_on_the_deadline_day_passes_and_the_day_after_is_not_yet_certified():
    assert judge(**{"board_certification.date": "2021-06-15"})[1][
        "board_certification_recent"].ok
    r = judge(**{"board_certification.date": "2021-06-16"})[1]["board_certification_recent"]
    assert not r.ok and "not yet certified" in r.reason.lower()


def test_a_leap_day_deadline_counts_back_to_28_february():
    assert cutoff(dt.date(2024, 2, 29), 3) == dt.date(2021, 2, 28)


def test_a_certification_in_another_specialty_fails():
    r = judge(**{"board_certification.specialty": "nuclear medicine"})[1][
        "board_certification_recent"]
    assert not r.ok and "nuclear medicine" in r.reason


def test_submitted_at_23_59_59_paris_summer_time_is_in_time():
    assert judge(submitted_at="2021-06-15T23:59:59+02:00")[1]["deadline"].ok


def test_21_59_59_utc_is_23_59_59_in_paris_and_in_time():
    # Paris is on CEST (UTC+02:00) in June.
    assert judge(submitted_at="2021-06-15T21:59:59Z")[1]["deadline"].ok


def test_22_00_utc_is_midnight_in_paris_and_late():
    r = judge(submitted_at="2021-06-15T22:00:00Z")[1]["deadline"]
    assert not r.ok
    assert "2021-06-16 00:00:00" in r.reason and "22:00:00 UTC" in r.reason


def test_23_30_utc_on_the_deadline_day_is_late_though_still_the_15th_in_utc():
    assert not judge(submitted_at="2021-06-15T23:30:00+00:00")[1]["deadline"].ok


def test_an_offset_west_of_utc_is_converted_before_comparing():
    # 17:30 in New York (EDT, UTC-04:00) = 21:30 UTC = 23:30 Paris: in time.
    assert judge(submitted_at="2021-06-15T17:30:00-04:00")[1]["deadline"].ok
    # 18:00 EDT = 22:00 UTC = 00:00 Paris: late.
    assert not judge(submitted_at="2021-06-15T18:00:00-04:00")[1]["deadline"].ok


def test_cefr_levels_are_ordered_and_native_counts_as_c2():
    ranks = [cefr_rank(x) for x in ("A1", "A2", "B1", "B2", "C1", "C2")]
    assert ranks == sorted(ranks) and len(set(ranks)) == 6
    assert cefr_rank("native") == cefr_rank("C2") == cefr_rank("Native")


@pytest.mark.parametrize("level,ok", [("B2", False), ("C1", True), ("C2", True),
                                      ("native", True), ("A1", False)])
def test_english_needs_c1(level, ok):
    r = judge(**{"languages.en": level})[1]["english_level"]
    assert r.ok is ok
    assert ("C1" in r.reason) and (level in r.reason or "native" in r.reason)


@pytest.mark.parametrize("level,ok", [("B1", False), ("B2", True), ("C1", True),
                                      ("native", True)])
def test_french_needs_b2(level, ok):
    assert judge(**{"languages.fr": level})[1]["french_level"].ok is ok


def test_a_missing_language_fails_its_rule_and_is_not_a_schema_error():
    res, by_id = judge(**{"languages.fr": ...})
    assert not by_id["french_level"].ok and not res.eligible
    assert "No French level" in by_id["french_level"].reason
    assert by_id["english_level"].ok


def test_a_lower_case_cefr_level_is_read_as_upper_case():
    assert judge(**{"languages.fr": "b2"})[1]["french_level"].ok


def test_a_withdrawn_second_application_does_not_count():
    res, by_id = judge(other_applications=[
        {"programme": "ESOR Exchange Programme", "topic": "Oncologic imaging",
         "status": "withdrawn"}])
    assert by_id["single_application"].ok and res.eligible
    assert "1 withdrawn" in by_id["single_application"].reason


def test_an_active_second_application_makes_the_applicant_ineligible():
    res, by_id = judge(other_applications=[
        {"programme": "ESOR Exchange Programme", "topic": "Oncologic imaging",
         "status": "submitted"},
        {"programme": "ESOR Visiting Scholarship", "topic": "Cardiac", "status": "withdrawn"}])
    assert not by_id["single_application"].ok and not res.eligible
    assert "ESOR Exchange Programme" in by_id["single_application"].reason


@pytest.mark.parametrize("country,ok", [("FR", True), ("GB", True), ("CH", True),
                                        ("NO", True), ("TR", True), ("US", False),
                                        ("BR", False)])
def test_the_certification_country_must_be_in_the_calls_european_list(country, ok):
    assert judge(**{"board_certification.country": country})[1][
        "european_radiologist"].ok is ok


def test_society_membership_must_be_full_and_the_2021_fee_paid():
    r = judge(**{"society_membership.category": "junior"})[1]["society_full_member"]
    assert not r.ok and "junior" in r.reason
    assert not judge(**{"society_membership.society": "RSNA"})[1]["society_full_member"].ok
    r = judge(**{"society_membership.fee_paid_years": [2019, 2020]})[1]["membership_fee_paid"]
    assert not r.ok and "2021" in r.reason and "2019, 2020" in r.reason


@pytest.mark.parametrize("field,rule", [
    ("interview_available", "interview_available"),
    ("wishes_to_subspecialise", "subspecialty_intent"),
    ("declares_hybrid_imaging_knowledge", "hybrid_imaging_knowledge"),
    ("declares_research_interest", "research_interest")])
def test_each_declaration_must_be_true(field, rule):
    res, by_id = judge(**{field: False})
    assert not by_id[rule].ok and not res.eligible
    assert sum(not r.ok for r in res.rules) == 1


@pytest.mark.parametrize("society,category,ok", [
    ("ESR", "full", True), ("esr", "Full", True), ("European Society of Radiology", "full", True),
    ("ESR", "Full member", True), ("ESR", "full membership", True),
    ("ESR", "junior", False), ("ESR", "full-time", False), ("ESTRO", "full", False)])
def test_society_may_be_named_in_short_or_in_full(society, category, ok):
    by_id = judge(**{"society_membership.society": society,
                     "society_membership.category": category})[1]
    assert by_id["society_full_member"].ok is ok


@pytest.mark.parametrize("text,ok", [("2021-06-15 23:59:59+02:00", True),
                                     ("2021-06-15T23:59:59+0200", True),
                                     ("2021-06-15t22:00:00z", False)])
def test_rfc3339_spellings_of_the_submission_time_are_read(text, ok):
    assert judge(submitted_at=text)[1]["deadline"].ok is ok


@pytest.mark.parametrize("code", ["UK", "EL"])
def test_reserved_codes_uk_and_el_are_read_as_gb_and_gr(code):
    r = judge(**{"board_certification.country": code})[1]["european_radiologist"]
    assert r.ok and code in r.reason
