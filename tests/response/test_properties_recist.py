"""Property-based invariants of the RECIST-family engines (hypothesis).

- more growth never gives a better category;
- an unequivocal new lesion always gives PD (RECIST 1.1 §4.3.5);
- a timepoint's categories do not depend on the order lesions are listed in;
- NE never hides an already-met PD (RECIST 1.1 §4.4.2), checked against an independent
  nadir / partial-sum computation.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncohybrid.response import assess_case, load_case

RANK = {"CR": 0, "PR": 1, "SD": 2, "PD": 4, "iCR": 0, "iPR": 1, "iSD": 2, "iUPD": 4, "iCPD": 5}
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

tenths = st.integers(min_value=0, max_value=1200).map(lambda n: Decimal(n) / 10)


@st.composite
def histories(draw):
    """Targets (nodal flag, baseline size) and 0–3 complete follow-up visits."""
    n = draw(st.integers(1, 5))
    nodal = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    base = [Decimal(draw(st.integers(150 if nd else 100, 1200))) / 10 for nd in nodal]
    k = draw(st.integers(0, 3))
    visits = [draw(st.lists(tenths, min_size=n, max_size=n)) for _ in range(k)]
    return nodal, base, visits


def build(nodal, base, visits, criteria="recist1.1", extra_last=(), options=None):
    field = "viable_ld_mm" if criteria == "mrecist" else "ld_mm"
    d0 = dt.date(2024, 1, 1)
    tps = []
    for i, vals in enumerate([base, *visits]):
        les = []
        for j, (nd, v) in enumerate(zip(nodal, vals, strict=True)):
            item = {"id": f"T{j}", ("sa_mm" if nd else field): v}
            if i == 0:
                item.update(role="target", nodal=nd, site="lymph node" if nd else f"organ{j}")
            les.append(item)
        tps.append({"date": str(d0 + dt.timedelta(days=56 * i)), "lesions": les})
    tps[-1]["lesions"].extend(extra_last)
    return {"criteria": criteria, "options": options or {}, "timepoints": tps}


def last(data):
    return assess_case(load_case(data)).timepoints[-1]


@SETTINGS
@given(histories(), st.data())
def test_more_growth_never_gives_a_better_category(hist, data):
    nodal, base, visits = hist
    n = len(base)
    cur = data.draw(st.lists(tenths, min_size=n, max_size=n))
    grow = data.draw(st.lists(st.integers(0, 300), min_size=n, max_size=n))
    more = [c + Decimal(g) / 10 for c, g in zip(cur, grow, strict=True)]
    for criteria in ("recist1.1", "irecist", "mrecist"):
        a = last(build(nodal, base, [*visits, cur], criteria))
        b = last(build(nodal, base, [*visits, more], criteria))
        if a.overall in RANK and b.overall in RANK:
            assert RANK[b.overall] >= RANK[a.overall], (criteria, a.overall, b.overall)


@SETTINGS
@given(histories(), st.data())
def test_unequivocal_new_lesion_is_pd(hist, data):
    nodal, base, visits = hist
    cur = data.draw(st.lists(tenths, min_size=len(base), max_size=len(base)))
    new = {"id": "NEW", "role": "new", "site": "liver", "state": "unequivocal"}
    tp = last(build(nodal, base, [*visits, cur], extra_last=[new]))
    assert tp.overall == "PD"
    assert tp.new_lesions == "Yes"


@SETTINGS
@given(histories(), st.data())
def test_lesion_order_does_not_change_categories(hist, data):
    nodal, base, visits = hist
    data_case = build(nodal, base, visits)
    data_case["timepoints"][-1]["lesions"].append(
        {"id": "NT", "role": "non-target", "state": "present"}
        if len(visits) == 0
        else {
            "id": "X",
            "role": "new",
            "state": data.draw(st.sampled_from(["equivocal", "absent"])),
        }
    )
    for criteria in ("recist1.1", "irecist", "mrecist"):
        data_case["criteria"] = criteria
        if criteria == "mrecist":
            for tp in data_case["timepoints"]:
                for les in tp["lesions"]:
                    if "ld_mm" in les:
                        les["viable_ld_mm"] = les["ld_mm"]
        ref = assess_case(load_case(data_case))
        shuffled = dict(data_case)
        shuffled["timepoints"] = [
            dict(tp, lesions=data.draw(st.permutations(tp["lesions"])))
            for tp in data_case["timepoints"]
        ]
        got = assess_case(load_case(shuffled))
        for r, g in zip(ref.timepoints, got.timepoints, strict=True):
            assert (r.overall, r.target, r.non_target, r.new_lesions) == (
                g.overall,
                g.target,
                g.non_target,
                g.new_lesions,
            )
            assert r.numbers.get("sum_mm") == g.numbers.get("sum_mm")


@SETTINGS
@given(histories(), st.data())
def test_ne_never_hides_an_already_met_pd(hist, data):
    nodal, base, visits = hist
    n = len(base)
    cur = data.draw(st.lists(tenths, min_size=n, max_size=n))
    missing = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n))
    shown = ["not_evaluable" if j in missing else v for j, v in enumerate(cur)]
    tp = last(build(nodal, base, [*visits, shown]))
    # independent reference: nadir = smallest complete sum so far, baseline included
    nadir = min(sum(v) for v in [base, *visits])
    partial = sum((v for j, v in enumerate(cur) if j not in missing), Decimal(0))
    if partial * 5 >= nadir * 6 and partial - nadir >= 5:
        assert tp.overall == "PD"
    else:
        assert tp.overall == "NE"
