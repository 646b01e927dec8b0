"""The eligibility rules of a fellowship call, each with a reason a candidate can act on.

Rule ids are fixed; their parameters come from the call (:mod:`.call`). Every rule
returns ``ok`` and one plain sentence that carries the numbers it decided on. Dates are
compared as calendar dates in the call's time zone; the submission deadline is "end of
day" there, i.e. every instant before the next local midnight (issue #13).

- ``board_certification_recent``: certified in the call's specialty on or before the
  deadline day and at most ``max_years`` calendar years before it, inclusive
  (certified 2018-06-15 for a deadline of 2021-06-15 passes, 2018-06-14 fails; a date
  after the deadline means not yet certified). A 29 February anniversary falls on
  28 February in a common year.
- ``european_radiologist``: the certification country is in the call's list (UK and EL,
  ISO 3166-1 exceptionally reserved codes, are read as GB and GR).
- ``society_full_member``: the named society (its short or full name) and membership
  category (case-insensitive; "Full member" counts as "full").
- ``membership_fee_paid``: the call's year is among the fee-paid years.
- ``english_level`` / ``french_level`` / ``language_level``: the CEFR level (Council of
  Europe 2001) is at least the minimum; "native" counts as C2; a language the applicant
  does not list fails.
- ``single_application``: no other application with status "submitted" (active); withdrawn
  ones do not count.
- ``deadline``: submitted before the first instant after the deadline day (local time).
- ``interview_available``, ``subspecialty_intent``, ``hybrid_imaging_knowledge``,
  ``research_interest``: the applicant's declaration is true.

>>> from oncohybrid.fellowship.call import bundled_call
>>> cutoff(bundled_call().deadline_date, 3).isoformat()
'2018-06-15'
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from oncohybrid.fellowship.applicant import Applicant
from oncohybrid.fellowship.call import CEFR_LEVELS, Call, RuleSpec, cefr_rank

__all__ = ["RuleResult", "Eligibility", "evaluate", "cutoff", "RULES"]

_LANGUAGE_NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish",
                   "it": "Italian", "pt": "Portuguese", "nl": "Dutch"}


@dataclass(frozen=True)
class RuleResult:
    rule: str
    ok: bool
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "ok": self.ok, "reason": self.reason}


@dataclass(frozen=True)
class Eligibility:
    call_id: str
    applicant_id: str
    rules: tuple[RuleResult, ...]

    @property
    def eligible(self) -> bool:
        return all(r.ok for r in self.rules)

    def as_dict(self) -> dict[str, object]:
        return {"eligible": self.eligible, "call": self.call_id,
                "applicant_id": self.applicant_id,
                "rules": [r.as_dict() for r in self.rules]}


def cutoff(deadline: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` years before (29 Feb -> 28 Feb)."""
    try:
        return deadline.replace(year=deadline.year - years)
    except ValueError:
        return deadline.replace(year=deadline.year - years, day=28)


def _board(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
    years = spec.params["max_years"]
    specialty = spec.params["specialty"]
    deadline = call.deadline_date
    earliest = cutoff(deadline, years)
    if a.specialty.strip().lower() != specialty.lower():
        return RuleResult(spec.id, False, f"Board certification is in {a.specialty!r}, not "
                                          f"{specialty}.")
    if a.certification_date > deadline:
        return RuleResult(spec.id, False, f"Not yet certified at the deadline: the "
                          f"certification date {a.certification_date} is after the deadline "
                          f"{deadline}.")
    days = (deadline - a.certification_date).days
    if a.certification_date < earliest:
        return RuleResult(spec.id, False, f"Certified on {a.certification_date}, {days} days "
                          f"before the deadline {deadline}: more than {years} years (the "
                          f"earliest accepted date is {earliest}).")
    return RuleResult(spec.id, True, f"Certified on {a.certification_date}, {days} days before "
                      f"the deadline {deadline}: within {years} years (on or after "
                      f"{earliest}).")


#: ISO 3166-1 "exceptionally reserved" codes in common use for European countries (UK for
#: the United Kingdom, EL for Greece in EU documents) and the assigned codes they stand for.
COUNTRY_ALIASES = {"UK": "GB", "EL": "GR"}


def _european(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
    countries = spec.params["countries"]
    code = COUNTRY_ALIASES.get(a.certification_country, a.certification_country)
    shown = code if code == a.certification_country else f"{a.certification_country} ({code})"
    ok = code in countries
    return RuleResult(spec.id, ok, f"Certification country {shown} is "
                      f"{'' if ok else 'not '}in the call's list of {len(countries)} European "
                      "countries.")


def _norm_category(text: str) -> str:
    t = " ".join(text.strip().lower().split())
    for suffix in (" membership", " member"):
        if t.endswith(suffix):
            t = t[: -len(suffix)]
    return t


def _society(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
    want_soc, want_cat = spec.params["society"], spec.params["category"]
    # The society may be written by its short or its full name (ESR, European Society of
    # Radiology); the category as "full", "Full member" or "full membership".
    names = {want_soc.lower()}
    if call.society.get("short", "").lower() == want_soc.lower():
        names.add(call.society.get("name", "").lower())
    soc_ok = " ".join(a.society.strip().lower().split()) in names
    cat_ok = _norm_category(a.membership_category) == _norm_category(want_cat)
    if soc_ok and cat_ok:
        return RuleResult(spec.id, True, f"{want_soc} membership category is {want_cat}.")
    if not soc_ok:
        return RuleResult(spec.id, False, f"Membership is of {a.society!r}, not {want_soc}.")
    return RuleResult(spec.id, False, f"{want_soc} membership category is "
                      f"{a.membership_category!r}, not {want_cat}.")


def _fee(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
    year = spec.params["year"]
    ok = year in a.fee_paid_years
    paid = ", ".join(map(str, sorted(a.fee_paid_years))) or "none"
    return RuleResult(spec.id, ok, f"Membership fee for {year} is {'' if ok else 'not '}"
                      f"settled (years paid: {paid}).")


def _language(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
    code = spec.params["language"].lower()
    need = spec.params["min_level"]
    name = _LANGUAGE_NAMES.get(code, code)
    have = a.languages.get(code)
    if have is None:
        return RuleResult(spec.id, False, f"No {name} level declared; {need} or higher is "
                          "required.")
    shown = "native (counts as C2)" if have == "native" else have
    ok = cefr_rank(have) >= CEFR_LEVELS.index(need)
    return RuleResult(spec.id, ok, f"{name} level {shown} is {'at least' if ok else 'below'} "
                      f"the required {need}.")


def _single(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
    active = [o for o in a.other_applications if o.status == "submitted"]
    withdrawn = len(a.other_applications) - len(active)
    note = f" ({withdrawn} withdrawn, not counted)" if withdrawn else ""
    if active:
        names = "; ".join(o.programme + (f" - {o.topic}" if o.topic else "") for o in active)
        return RuleResult(spec.id, False, f"{len(active)} other active application(s): "
                          f"{names}{note}.")
    return RuleResult(spec.id, True, f"No other active application{note}.")


def _deadline(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
    zone = ZoneInfo(call.deadline_zone)
    local = a.submitted_at.astimezone(zone)
    utc = a.submitted_at.astimezone(dt.UTC)
    ok = a.submitted_at < call.deadline_end
    when = (f"submitted {local:%Y-%m-%d %H:%M:%S} {call.deadline_zone} time "
            f"(UTC{local:%z}; {utc:%Y-%m-%d %H:%M:%S} UTC)")
    return RuleResult(spec.id, ok, f"{when[0].upper()}{when[1:]}, "
                      f"{'on or before' if ok else 'after'} the deadline {call.deadline_date} "
                      f"23:59:59 {call.deadline_zone}.")


def _flag(field: str, yes: str, no: str) -> Callable[[Call, Applicant, RuleSpec], RuleResult]:
    def rule(call: Call, a: Applicant, spec: RuleSpec) -> RuleResult:
        ok = bool(getattr(a, field))
        return RuleResult(spec.id, ok, yes if ok else no)

    return rule


RULES: dict[str, Callable[[Call, Applicant, RuleSpec], RuleResult]] = {
    "board_certification_recent": _board,
    "european_radiologist": _european,
    "society_full_member": _society,
    "membership_fee_paid": _fee,
    "english_level": _language,
    "french_level": _language,
    "language_level": _language,
    "single_application": _single,
    "deadline": _deadline,
    "interview_available": _flag("interview_available",
                                 "Available for a video interview.",
                                 "Not available for a video interview."),
    "subspecialty_intent": _flag("wishes_to_subspecialise",
                                 "Declares the wish to subspecialise in hybrid imaging.",
                                 "Does not declare the wish to subspecialise."),
    "hybrid_imaging_knowledge": _flag("declares_hybrid_imaging_knowledge",
                                      "Declares knowledge of hybrid imaging.",
                                      "Does not declare knowledge of hybrid imaging."),
    "research_interest": _flag("declares_research_interest",
                               "Declares an interest in research.",
                               "Does not declare an interest in research."),
}


def evaluate(call: Call, applicant: Applicant) -> Eligibility:
    """One result per rule of the call, in the call's order."""
    return Eligibility(call.id, applicant.applicant_id,
                       tuple(RULES[spec.id](call, applicant, spec) for spec in call.rules))
