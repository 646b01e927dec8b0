"""Property-based checks of the nuclear-medicine criteria (hypothesis).

- more SUL growth never gives a better PERCIST category;
- a new FDG-avid lesion typical of tumour ⇒ PERCIST PMD; RECIP PD ⇔ TTV ≥ +20 % and new lesion;
- reordering lesions never changes a category (PERCIST, EORTC, Lugano PET/CT, LYRIC,
  Krenning);
- NE never hides an already-met PMD/PD (missing values, failed comparability gate).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from oncohybrid.response import eortc, krenning, lugano, lyric, percist, recip
from oncohybrid.response.model import Case, LesionObs, Role, Special, Timepoint

D0 = dt.date(2024, 1, 1)
LIVER = {"liver_sul_mean": Decimal("1.0"), "liver_sul_sd": Decimal("0.1")}
PERCIST_RANK = {"CMR": 0, "PMR": 1, "SMD": 2, "PMD": 3}

# SUL values in tenths: exact decimals, many landing on the 30 % / 0.8 boundaries.
sul = st.integers(min_value=0, max_value=150).map(lambda n: Decimal(n) / 10)
sul_lists = st.lists(sul, min_size=1, max_size=4)


def pet_tp(i: int, values: list, refs=LIVER, new: bool = False, order=None) -> Timepoint:
    lesions = {f"L{j}": LesionObs(id=f"L{j}", role=Role.TARGET, site=f"organ{j % 2}",
                                  sul_peak=v, suv_max=v)
               for j, v in enumerate(values)}
    if new:
        lesions["N1"] = LesionObs(id="N1", role=Role.NEW, sul_peak=Decimal(3))
    if order is not None:
        keys = list(lesions)
        order.shuffle(keys)
        lesions = {k: lesions[k] for k in keys}
    return Timepoint(index=i, date=D0 + dt.timedelta(days=60 * i), lesions=lesions,
                     references=dict(refs), cycles=2)


def percist_cat(base: list, fu: list, options=None, **kw) -> str:
    case = Case(criteria="percist", timepoints=[pet_tp(0, base), pet_tp(1, fu, **kw)],
                options=options or {})
    return percist.assess(case).timepoints[1].overall


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(["hottest", "sum5"]))
def test_more_sul_growth_never_gives_a_better_percist_category(data, measure):
    opts = {"percist_measure": measure}
    base = data.draw(sul_lists)
    fu = data.draw(st.lists(sul, min_size=len(base), max_size=len(base)))
    extra = data.draw(st.lists(st.integers(0, 60).map(lambda n: Decimal(n) / 10),
                               min_size=len(base), max_size=len(base)))
    hotter = [a + b for a, b in zip(fu, extra, strict=True)]
    c1, c2 = percist_cat(base, fu, opts), percist_cat(base, hotter, opts)
    assert (c1 == "NE") == (c2 == "NE")
    if c1 != "NE":
        assert PERCIST_RANK[c2] >= PERCIST_RANK[c1], (base, fu, hotter, c1, c2)


@settings(max_examples=200, deadline=None)
@given(sul_lists, sul_lists)
def test_new_lesion_is_always_percist_pmd(base, fu):
    assert percist_cat(base, fu, new=True) == "PMD"


@settings(max_examples=200, deadline=None)
@given(sul_lists, sul_lists)
def test_new_lesion_is_pmd_even_when_not_comparable(base, fu):
    bad = {"liver_sul_mean": Decimal("2.0"), "liver_sul_sd": Decimal("0.1")}
    case = Case(criteria="percist", timepoints=[pet_tp(0, base), pet_tp(1, fu, refs=bad,
                                                                        new=True)])
    assert percist.assess(case).timepoints[1].overall == "PMD"


ttv = st.integers(min_value=0, max_value=2000).map(lambda n: Decimal(n) / 10)


@settings(max_examples=300, deadline=None)
@given(ttv.filter(lambda v: v > 0), ttv, st.booleans())
def test_recip_pd_iff_ttv_plus_20pct_and_new_lesion(base, fu, new):
    tps = [Timepoint(index=0, date=D0, lesions={}, ttv_ml=base),
           Timepoint(index=1, date=D0 + dt.timedelta(days=84), lesions={}, ttv_ml=fu,
                     new_lesions=new)]
    cat = recip.assess(Case(criteria="recip", timepoints=tps)).timepoints[1].overall
    assert (cat == "PD") == (new and fu * 10 >= base * 12)
    if new:
        assert cat not in ("PR", "CR")


@settings(max_examples=150, deadline=None)
@given(sul_lists, st.lists(sul_lists, min_size=1, max_size=3), st.integers(0, 10**6),
       st.sampled_from(["hottest", "sum5"]))
def test_reordering_lesions_never_changes_percist_or_eortc(base, fus, seed, measure):
    fus = [(f + [Decimal(1)] * len(base))[: len(base)] for f in fus]
    rng = random.Random(seed)

    def build(order):
        tps = [pet_tp(0, base, order=order)]
        tps += [pet_tp(i + 1, f, order=order) for i, f in enumerate(fus)]
        return tps

    opts = {"percist_measure": measure}
    a = percist.assess(Case(criteria="percist", timepoints=build(None), options=opts))
    b = percist.assess(Case(criteria="percist", timepoints=build(rng), options=opts))
    assert [t.overall for t in a.timepoints] == [t.overall for t in b.timepoints]
    assert a.best_overall_response == b.best_overall_response
    e1 = eortc.assess(Case(criteria="eortc", timepoints=build(None)))
    e2 = eortc.assess(Case(criteria="eortc", timepoints=build(rng)))
    assert [t.overall for t in e1.timepoints] == [t.overall for t in e2.timepoints]


dims = st.tuples(st.integers(0, 80), st.integers(0, 80)).map(
    lambda t: (Decimal(max(t)), Decimal(min(t))))


def ct_tp(i: int, sizes: list, order=None, scores=None) -> Timepoint:
    lesions = {}
    for j, (ldi, sdi) in enumerate(sizes):
        lesions[f"T{j}"] = LesionObs(
            id=f"T{j}", role=Role.TARGET, nodal=j % 2 == 0, ldi_mm=ldi, sdi_mm=sdi,
            deauville=None if scores is None else scores[j])
    if order is not None:
        keys = list(lesions)
        order.shuffle(keys)
        lesions = {k: lesions[k] for k in keys}
    return Timepoint(index=i, date=D0 + dt.timedelta(days=56 * i), lesions=lesions)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(dims, min_size=3, max_size=3), min_size=2, max_size=4),
       st.lists(st.lists(st.integers(1, 5), min_size=3, max_size=3), min_size=4, max_size=4),
       st.integers(0, 10**6), st.sampled_from(["lugano-ct", "lugano-pet", "lugano", "lyric"]))
def test_reordering_lesions_never_changes_lugano_or_lyric(series, scores, seed, name):
    rng = random.Random(seed)
    a = [ct_tp(i, s, scores=scores[i]) for i, s in enumerate(series)]
    b = [ct_tp(i, s, rng, scores=scores[i]) for i, s in enumerate(series)]
    mod = lyric if name == "lyric" else lugano
    ra = mod.assess(Case(criteria=name, timepoints=a))
    rb = mod.assess(Case(criteria=name, timepoints=b))
    assert [t.overall for t in ra.timepoints] == [t.overall for t in rb.timepoints]


@settings(max_examples=100, deadline=None)
@given(st.lists(sul.filter(lambda v: v > 0), min_size=1, max_size=5), st.integers(0, 10**6))
def test_reordering_lesions_never_changes_krenning(values, seed):
    refs = {"liver_suv_max": Decimal(5), "spleen_suv_max": Decimal(9)}
    a = pet_tp(0, values, refs=refs)
    b = pet_tp(0, values, refs=refs, order=random.Random(seed))
    ka = krenning.assess(Case(criteria="krenning", timepoints=[a])).timepoints[0]
    kb = krenning.assess(Case(criteria="krenning", timepoints=[b])).timepoints[0]
    assert ka.overall == kb.overall


@settings(max_examples=200, deadline=None)
@given(sul_lists.filter(lambda v: max(v) >= 2), st.data())
def test_ne_never_hides_percist_pmd(base, data):
    """If the measured lesions already show PMD, a further lesion being not evaluable keeps
    PMD (the unknown value could only raise the hottest SULpeak)."""
    hottest = max(base)
    jump = data.draw(st.integers(1, 50).map(lambda n: Decimal(n) / 10))
    pmd_value = max(hottest * Decimal("1.3"), hottest + Decimal("0.8")) + jump
    fu = [pmd_value] + [Special.NOT_EVALUABLE] * (len(base) - 1)
    extra_base = base + [Decimal(1)]  # one more lesion, unread at follow-up
    fu = fu + [Special.NOT_EVALUABLE]
    assert percist_cat(extra_base, fu) == "PMD"


@settings(max_examples=150, deadline=None)
@given(st.lists(dims.filter(lambda d: d[0] >= 10), min_size=2, max_size=4), st.data())
def test_ne_never_hides_lugano_ct_pd(base, data):
    """A lesion meeting the Lugano per-lesion PD rule stays PD when another target is NE."""
    ldi, sdi = base[0]
    grow = data.draw(st.integers(11, 40))
    # Doubling both axes plus > 10 mm: PPD ≥ 4×, increments > 10 mm, LDi > 15 mm.
    fu = [(2 * ldi + grow, 2 * sdi + grow)] + [
        (Special.NOT_EVALUABLE, Special.NOT_EVALUABLE)] * (len(base) - 1)
    case = Case(criteria="lugano-ct", timepoints=[ct_tp(0, base), ct_tp(1, fu)])
    assert lugano.assess(case).timepoints[1].overall == "PD"


@settings(max_examples=150, deadline=None)
@given(sul_lists.filter(lambda v: sum(v) > 0))
def test_ne_never_hides_eortc_pmd(base):
    total = sum(base)
    fu = [total * 2] + [Special.NOT_EVALUABLE] * (len(base) - 1)
    case = Case(criteria="eortc", timepoints=[pet_tp(0, base), pet_tp(1, fu)])
    assert eortc.assess(case).timepoints[1].overall == "PMD"
