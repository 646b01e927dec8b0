"""The pure tumour-board rules: schedule, agenda, checklist, follow-up, category wording."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from pathlib import Path

import pytest

from oncohybrid.boards import (
    CaseFacts,
    agenda,
    category_text,
    checklist,
    follow_up_due,
    follow_up_state,
    parse_hhmm,
    parse_weekday,
    session_dates,
    spelled_out,
)
from oncohybrid.boards.checklist import is_ready
from oncohybrid.errors import InputError


def test_weekly_sessions_fall_on_the_board_weekday():
    got = session_dates(parse_weekday("tuesday"), dt.date(2026, 12, 1), dt.date(2026, 12, 31))
    tuesdays = [dt.date(2026, 12, d) for d in range(1, 32)
                if calendar.weekday(2026, 12, d) == calendar.TUESDAY]
    assert got == tuesdays and len(got) == 5


def test_fortnightly_sessions_skip_holidays():
    got = session_dates(5, dt.date(2026, 12, 1), dt.date(2027, 1, 31), every_weeks=2,
                        skip=[dt.date(2026, 12, 25)])
    # Fridays from 4 Dec every 14 days: 4, 18 Dec, 1, 15, 29 Jan; 25 Dec is not on that grid
    assert got == [dt.date(2026, 12, 4), dt.date(2026, 12, 18), dt.date(2027, 1, 1),
                   dt.date(2027, 1, 15), dt.date(2027, 1, 29)]
    weekly = session_dates(5, dt.date(2026, 12, 1), dt.date(2026, 12, 31),
                           skip=[dt.date(2026, 12, 25)])
    assert dt.date(2026, 12, 25) not in weekly and len(weekly) == 3


@pytest.mark.parametrize("bad", ["funday", "t", "8", 0])
def test_weekday_names_are_checked(bad):
    with pytest.raises(InputError, match="weekday"):
        parse_weekday(bad)


def test_times_are_hh_mm():
    assert parse_hhmm("07:30") == "07:30"
    for bad in ("7:30", "25:00", "noon"):
        with pytest.raises(InputError):
            parse_hhmm(bad)


def test_agenda_adds_each_case_time_to_the_start():
    slots = agenda("08:00", [None, 15, None, 30], default_minutes=10)
    assert [(s.start, s.end) for s in slots] == [("08:00", "08:10"), ("08:10", "08:25"),
                                                 ("08:25", "08:35"), ("08:35", "09:05")]
    assert sum(s.minutes for s in slots) == 65
    with pytest.raises(InputError):
        agenda("08:00", [0])


def test_checklist_follows_the_record_and_the_ticks():
    empty = checklist(CaseFacts())
    assert [i.state for i in empty] == ["open", "open", "open", "n/a"]
    assert not is_ready(empty)
    facts = CaseFacts(imaging_dates=(dt.date(2026, 1, 5), dt.date(2026, 4, 2)),
                      assessed_until={"percist": dt.date(2026, 1, 5)}, prior_decisions=1,
                      ticks={"imaging_reviewed": "max"})
    items = {i.key: i for i in checklist(facts)}
    assert items["imaging_reviewed"].state == "done" and "max" in items["imaging_reviewed"].note
    assert items["response_assessed"].state == "open"  # latest visit not covered
    assert items["prior_decision"].state == "open"
    ready = CaseFacts(imaging_dates=facts.imaging_dates,
                      assessed_until={"percist": dt.date(2026, 4, 2)}, prior_decisions=1,
                      ticks={"imaging_reviewed": "max", "key_images": "max",
                             "prior_decision": "fred"})
    assert is_ready(checklist(ready))
    # a tick cannot make an item done when its facts are missing
    assert checklist(CaseFacts(ticks={"imaging_reviewed": "max"}))[0].state == "open"


def test_follow_up_due_and_state():
    # 8 Dec 2026 + 84 days: 23 days to 31 Dec, 31 in January, 28 in February → 2 March
    assert follow_up_due(dt.date(2026, 12, 8), 84) == dt.date(2027, 3, 2)
    for bad in (0, -1, 3651):
        with pytest.raises(InputError, match="--follow-up-days"):
            follow_up_due(dt.date(2026, 12, 8), bad)
    due = dt.date(2027, 3, 2)
    assert follow_up_state(due, dt.date(2027, 3, 3)) == "overdue"
    assert follow_up_state(due, dt.date(2027, 2, 20)) == "due"
    assert follow_up_state(due, dt.date(2027, 1, 1)) == "planned"
    assert follow_up_state(due, dt.date(2027, 3, 3), done=True) == "done"


def test_codes_stand_beside_their_spelled_out_form():
    assert category_text("PR") == "PR — partial response"
    assert category_text("PMR", "percist") == "PMR — partial metabolic response"
    assert category_text("3", "krenning") == "3 — uptake grade 3"
    assert category_text("XYZ") == "XYZ"  # unknown: the code alone, never a guess
    assert category_text(None) == "not assessed"


def test_every_category_the_engine_emits_is_spelled_out():
    """Scan the criteria modules for the category strings they return."""
    import oncohybrid.response as response

    src = Path(response.__file__).parent
    codes: set[str] = set()
    for name in ("recist", "irecist", "mrecist", "choi", "percist", "eortc", "lugano",
                 "lyric", "recip"):
        text = (src / f"{name}.py").read_text()
        # constants (``CR, PR = "CR", "PR"``) and assignments of a category
        for line in re.findall(r"^[A-Z_, ]+ = (\".*)$", text, re.M):
            codes |= set(re.findall(r'"([^"]+)"', line))
        codes |= set(re.findall(r'(?:overall|cat|category|kind) = "([^"]+)"', text))
        codes |= set(re.findall(r'levels\.append\("([^"]+)"\)', text))
    codes = {c for c in codes if re.fullmatch(r"i?[A-Z0-9]{2,4}|(?i:non-.*)|baseline", c)}
    assert {"PR", "PMR", "iUPD", "IR1", "NON-CR/NON-PD"} <= codes  # the scan finds them
    missing = sorted(c for c in codes if spelled_out(c) is None)
    assert missing == []
