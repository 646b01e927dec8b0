"""Pure pieces of the fellowship package: rubric scoring and ranking, the programme
calendar, iCalendar invitations (RFC 5545) across summer time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from oncohybrid.errors import InputError
from oncohybrid.fellowship.call import bundled_call
from oncohybrid.fellowship.grant import split
from oncohybrid.fellowship.ics import invitation
from oncohybrid.fellowship.programme import default_plan, set_week
from oncohybrid.fellowship.scoring import rank, weighted_total

CALL = bundled_call()


def test_weighted_total_is_the_rubric_weighted_sum():
    # 0.30*10 + 0.25*5 + 0.25*7.5 + 0.20*0 = 3 + 1.25 + 1.875 + 0 = 6.125 -> 6.13 (half up)
    assert weighted_total(CALL.rubric, {"cv": 10, "motivation": 5, "research": "7.5",
                                        "hybrid": 0}) == Decimal("6.13")


@pytest.mark.parametrize("bad", [11, -1, "7.3", "x", None])
def test_scores_outside_0_10_in_halves_are_refused_naming_the_criterion(bad):
    with pytest.raises(InputError, match="scores.cv"):
        weighted_total(CALL.rubric, {"cv": bad, "motivation": 5, "research": 5, "hybrid": 5})


def test_ranking_by_mean_with_unscored_last():
    r = rank({"1": [Decimal("7.00"), Decimal("8.00")], "2": [Decimal("9.10")], "3": []})
    assert [(x.key, x.rank, str(x.mean) if x.mean else None) for x in r] == [
        ("2", 1, "9.10"), ("1", 2, "7.50"), ("3", None, None)]


def test_ties_rank_the_application_with_more_reviews_first():
    r = rank({"a": [Decimal(8)], "b": [Decimal(8), Decimal(8)]})
    assert [x.key for x in r] == ["b", "a"]


@pytest.mark.parametrize("total,n,last", [("23000.00", 12, "1916.63"), ("100.00", 3, "33.34"),
                                          ("10.00", 4, "2.50"), ("0.05", 2, "0.02")])
def test_split_puts_the_rounding_remainder_in_the_last_payment(total, n, last):
    parts = split(Decimal(total), n)
    assert sum(parts) == Decimal(total) and str(parts[-1]) == last


def test_default_programme_covers_the_year_week_by_week_from_the_templates():
    plan = default_plan(CALL)
    assert plan[0] == {"week": 1, "start": "2021-10-01", "module": "equipment",
                       "label": CALL.modules[0].label}
    assert plan[1]["start"] == "2021-10-08"
    counts = {m.id: sum(w["module"] == m.id for w in plan) for m in CALL.modules}
    # 52 template weeks + the 53rd week (2022-09-30) filled by the last module
    assert counts["petct"] == 8 and counts["research"] == 12 and len(plan) == 53
    moved = set_week(CALL, plan, 3, "mdt-breast")
    assert moved[2]["module"] == "mdt-breast" and plan[2]["module"] == "petct"
    with pytest.raises(InputError, match="module"):
        set_week(CALL, plan, 3, "surgery")


def test_ics_is_in_the_applicants_zone_with_crlf_and_folded_lines():
    start = dt.datetime(2021, 11, 2, 15, 0, tzinfo=dt.UTC)  # after EU, before US change
    text = invitation("x@y", start, 45, "America/New_York", "Interview " + "x" * 100,
                      "video", "d@example.org", stamp=start)
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    # 15:00 UTC on 2 November 2021 = 11:00 EDT (US summer time ended 7 November).
    assert "DTSTART;TZID=America/New_York:20211102T110000" in text
    assert "DTEND;TZID=America/New_York:20211102T114500" in text
    assert "TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500" in text
    assert "DTSTART:20211107T020000" in text  # the onset in the old (EDT) local time


def test_ics_for_a_zone_without_summer_time_has_one_standard_block():
    text = invitation("x@y", dt.datetime(2021, 7, 1, 8, tzinfo=dt.UTC), 30, "Asia/Tokyo",
                      "Interview", "video", "d@example.org")
    assert text.count("BEGIN:STANDARD") == 1 and "BEGIN:DAYLIGHT" not in text
    assert "DTSTART;TZID=Asia/Tokyo:20210701T170000" in text
