"""PSMA PET: PROMISE V2 molecular-imaging TNM (miTNM) and the PSMA expression score.

Seifert R, Emmett L, Rowe SP, et al. *Second Version of the Prostate Cancer Molecular
Imaging Standardized Evaluation Framework Including Response Evaluation for Clinical
Trials (PROMISE V2).* Eur Urol 2023;83:405–412, building on PROMISE V1 (Eiber M et al.,
J Nucl Med 2018;59:469–478).

**miPSMA expression score** of a lesion, its SUVmax against the SUVmean of reference
organs: 0 below the blood pool; 1 at or above the blood pool and below the liver; 2 at or
above the liver and below the parotid glands; 3 at or above the parotid glands. For
¹⁸F-PSMA-1007 (hepatobiliary excretion) the spleen replaces the liver (PROMISE V2).
A score ≥ 2 is the usual visual threshold of "PSMA-positive" disease for radioligand
therapy selection (VISION used a liver comparison; criteria.md §RECIP).

**miTNM** (PROMISE V1 Table 2 with the V2 changes) from the lesion sites:

- miT: ``miT0`` (no local tumour), ``miT2u``/``miT2m`` (organ-confined, uni-/multifocal),
  ``miT3a`` (extraprostatic extension), ``miT3b`` (seminal vesicle), ``miT4`` (adjacent
  structures: external sphincter, rectum, bladder, pelvic wall), ``miTr`` (local
  recurrence after prostatectomy);
- miN: ``miN0``, ``miN1`` (one pelvic node region), ``miN2`` (two or more regions;
  V2's replacement of V1's N1a/N1b) [V: wording of V2 not re-read];
- miM: ``miM0``; ``miM1a`` extrapelvic nodes (RP retroperitoneal, SD supradiaphragmatic,
  NR other); ``miM1b`` bone with pattern ``uni`` (1 lesion), ``oligo`` (2–3), ``diss``
  (≥ 4) or ``dmi`` (diffuse marrow involvement); ``miM1c`` other organs (named).
  The stage string lists every M category present (e.g. ``miM1a(RP) miM1b(oligo)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from oncohybrid.errors import InputError

__all__ = ["LOCAL_SITES", "PELVIC_REGIONS", "PsmaLesion", "expression_score", "mitnm"]

#: Local-site codes and the miT they imply, in increasing order of extent.
LOCAL_SITES = {"prostate": "miT2", "extraprostatic": "miT3a", "seminal_vesicle": "miT3b",
               "adjacent": "miT4", "prostate_bed": "miTr"}
#: Pelvic lymph-node regions (PROMISE V1 Table 2).
PELVIC_REGIONS = ("internal_iliac", "external_iliac", "common_iliac", "obturator",
                  "presacral", "other_pelvic")
_EXTRAPELVIC = {"retroperitoneal": "RP", "supradiaphragmatic": "SD", "other": "NR"}


def expression_score(lesion_suv_max: float, *, blood_pool_suv_mean: float,
                     liver_suv_mean: float | None, parotid_suv_mean: float,
                     spleen_suv_mean: float | None = None, tracer: str = "") -> int:
    """miPSMA expression score 0–3 (module docstring).

    >>> [expression_score(x, blood_pool_suv_mean=1.5, liver_suv_mean=5,
    ...                   parotid_suv_mean=12) for x in (1, 1.5, 5, 12)]
    [0, 1, 2, 3]
    """
    liver_like = liver_suv_mean
    if "1007" in tracer.replace(" ", ""):
        if spleen_suv_mean is None:
            raise InputError("PSMA-1007: PROMISE V2 uses the spleen instead of the liver; "
                             "give the spleen SUVmean")
        liver_like = spleen_suv_mean
    if liver_like is None:
        raise InputError("PSMA expression score: the liver SUVmean is required")
    refs = {"blood pool": blood_pool_suv_mean, "liver/spleen": liver_like,
            "parotid": parotid_suv_mean}
    for name, v in refs.items():
        if not v > 0:
            raise InputError(f"PSMA expression score: {name} SUVmean must be positive, got {v}")
    if not blood_pool_suv_mean <= liver_like <= parotid_suv_mean:
        raise InputError(
            f"PSMA expression score: expected blood pool ≤ liver ≤ parotid SUVmean, got "
            f"{blood_pool_suv_mean:g}, {liver_like:g}, {parotid_suv_mean:g}")
    if lesion_suv_max >= parotid_suv_mean:
        return 3
    if lesion_suv_max >= liver_like:
        return 2
    if lesion_suv_max >= blood_pool_suv_mean:
        return 1
    return 0


@dataclass(frozen=True)
class PsmaLesion:
    """One PSMA-positive lesion for miTNM: ``site`` is a local site (:data:`LOCAL_SITES`),
    ``pelvic_node`` (with ``region`` from :data:`PELVIC_REGIONS`), ``extrapelvic_node``
    (``region`` retroperitoneal, supradiaphragmatic or other), ``bone`` or ``visceral``
    (``region`` = organ name); ``focus`` numbers intraprostatic foci."""

    site: str
    region: str = ""
    focus: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def _t_category(local: Sequence[PsmaLesion]) -> str:
    if not local:
        return "miT0"
    order = ["miT2", "miT3a", "miT3b", "miT4"]
    cats = {LOCAL_SITES[les.site] for les in local}
    if "miTr" in cats:
        return "miTr"
    worst = max(cats, key=order.index)
    if worst == "miT2":
        foci = {les.focus for les in local if les.site == "prostate"}
        return "miT2m" if len(foci) > 1 else "miT2u"
    return worst


def mitnm(lesions: Iterable[PsmaLesion], *, diffuse_marrow: bool = False) -> dict[str, Any]:
    """PROMISE miTNM fields from PSMA-positive lesions.

    >>> r = mitnm([PsmaLesion("prostate", focus=1), PsmaLesion("prostate", focus=2),
    ...            PsmaLesion("pelvic_node", "obturator"), PsmaLesion("bone"),
    ...            PsmaLesion("bone"), PsmaLesion("extrapelvic_node", "retroperitoneal")])
    >>> r["stage"]
    'miT2m miN1 miM1a(RP) miM1b(oligo)'
    """
    items = list(lesions)
    local, pelvic, extra_nodes, bone, visceral = [], set(), set(), 0, set()
    for les in items:
        if les.site in LOCAL_SITES:
            local.append(les)
        elif les.site == "pelvic_node":
            if les.region not in PELVIC_REGIONS:
                raise InputError(f"pelvic node region must be one of {', '.join(PELVIC_REGIONS)}"
                                 f", got {les.region!r}")
            pelvic.add(les.region)
        elif les.site == "extrapelvic_node":
            if les.region not in _EXTRAPELVIC:
                raise InputError("extrapelvic node region must be retroperitoneal, "
                                 f"supradiaphragmatic or other, got {les.region!r}")
            extra_nodes.add(_EXTRAPELVIC[les.region])
        elif les.site == "bone":
            bone += 1
        elif les.site == "visceral":
            if not les.region:
                raise InputError("a visceral lesion needs its organ (region)")
            visceral.add(les.region)
        else:
            known = [*LOCAL_SITES, "pelvic_node", "extrapelvic_node", "bone", "visceral"]
            raise InputError(f"PSMA lesion site {les.site!r} is not one of "
                             f"{', '.join(known)}")
    t = _t_category(local)
    n = "miN0" if not pelvic else ("miN1" if len(pelvic) == 1 else "miN2")
    m_parts = []
    if extra_nodes:
        m_parts.append(f"miM1a({','.join(sorted(extra_nodes))})")
    if bone or diffuse_marrow:
        pattern = ("dmi" if diffuse_marrow else "uni" if bone == 1
                   else "oligo" if bone <= 3 else "diss")
        m_parts.append(f"miM1b({pattern})")
    if visceral:
        m_parts.append(f"miM1c({','.join(sorted(visceral))})")
    m = " ".join(m_parts) or "miM0"
    return {"miT": t, "miN": n, "miM": m, "stage": f"{t} {n} {m}",
            "pelvic_node_regions": sorted(pelvic), "extrapelvic_regions": sorted(extra_nodes),
            "bone_lesions": bone, "visceral_organs": sorted(visceral),
            "source": "PROMISE V2, Seifert et al., Eur Urol 2023;83:405-412"}


def promise_report(case: dict[str, Any]) -> dict[str, Any]:
    """miTNM and per-lesion miPSMA expression scores of a JSON case (``oncohybrid psma``)::

        {"tracer": "68Ga-PSMA-11",
         "references": {"blood_pool_suv_mean": 1.6, "liver_suv_mean": 5.2,
                        "parotid_suv_mean": 13.0, "spleen_suv_mean": null},
         "diffuse_marrow": false,
         "lesions": [{"id": "L1", "site": "bone", "region": "", "focus": 1,
                      "suv_max": 12.3}]}

    Lesions without ``suv_max`` (or without references) get a null score; the stage uses
    every lesion listed (they are the PSMA-positive findings of the reader).
    """
    if not isinstance(case, dict):
        raise InputError("PSMA case: expected a JSON object")
    lesions_in = case.get("lesions")
    if not isinstance(lesions_in, list):
        raise InputError("PSMA case: 'lesions' must be a list")
    refs = case.get("references") or {}
    if not isinstance(refs, dict):
        raise InputError("PSMA case: 'references' must be an object")
    tracer = str(case.get("tracer") or "")

    def num(value: Any, where: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"PSMA case: {where} must be a number, got {value!r}")
        return float(value)

    ref = {k: num(refs.get(k), f"references.{k}") for k in (
        "blood_pool_suv_mean", "liver_suv_mean", "parotid_suv_mean", "spleen_suv_mean")}
    lesions: list[PsmaLesion] = []
    rows = []
    for i, item in enumerate(lesions_in):
        where = f"lesions[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("site"), str):
            raise InputError(f"PSMA case: {where} needs a 'site' string")
        focus = item.get("focus", 1)
        if isinstance(focus, bool) or not isinstance(focus, int):
            raise InputError(f"PSMA case: {where}.focus must be a whole number")
        les = PsmaLesion(item["site"], str(item.get("region") or ""), focus)
        lesions.append(les)
        suv = num(item.get("suv_max"), f"{where}.suv_max")
        score = None
        reason = None
        if suv is None:
            reason = "no suv_max"
        elif ref["blood_pool_suv_mean"] is None or ref["parotid_suv_mean"] is None:
            reason = "blood pool and parotid SUVmean needed"
        else:
            score = expression_score(suv, blood_pool_suv_mean=ref["blood_pool_suv_mean"],
                                     liver_suv_mean=ref["liver_suv_mean"],
                                     parotid_suv_mean=ref["parotid_suv_mean"],
                                     spleen_suv_mean=ref["spleen_suv_mean"], tracer=tracer)
        rows.append({"id": item.get("id", f"L{i + 1}"), "site": les.site, "region": les.region,
                     "suv_max": suv, "psma_expression_score": score, "reason": reason})
    stage = mitnm(lesions, diffuse_marrow=bool(case.get("diffuse_marrow", False)))
    scores = [r["psma_expression_score"] for r in rows if r["psma_expression_score"] is not None]
    return {"tracer": tracer or None, "mitnm": stage, "lesions": rows,
            "psma_expression_score_max": max(scores) if scores else None,
            "source": stage["source"]}
