"""mRECIST for hepatocellular carcinoma — Lencioni R, Llovet JM. Semin Liver Dis
2010;30:52–60.

Everything follows RECIST 1.1 (``recist.run_recist``) except (criteria.md §4):

- targets are measured by their longest **viable** (arterially enhancing) diameter,
  ``viable_ld_mm``; nodes by short axis as in RECIST;
- PD is ≥ +20 % over the smallest viable sum on study with **no 5 mm absolute floor**
  (Lencioni 2010; KJR 2022 comparison table);
- a follow-up without a late-arterial phase (``arterial_phase: false``) is NE;
- non-target "neither CR nor PD" is spelled IR/SD (incomplete response/stable disease);
- porta hepatis nodes are malignant only from 20 mm short axis (reactive nodes are common
  in cirrhosis); new effusion/ascites needs positive cytology;
- a new intrahepatic nodule counts when ≥ 10 mm with the typical HCC pattern
  (``hcc_typical``: arterial hyperenhancement with washout); < 10 mm is equivocal; an
  atypical nodule counts once it has grown by ≥ 10 mm. An equivocal nodule confirmed
  later dates progression to its first appearance **[V]**.
"""

from __future__ import annotations

from decimal import Decimal

from oncohybrid.response.model import Assessment, Case
from oncohybrid.response.recist import Flavour, run_recist

__all__ = ["MRECIST", "assess"]

MRECIST = Flavour(
    name="mRECIST",
    field="viable_ld_mm",
    pd_floor_mm=Decimal(0),
    noncr_label="IR/SD",
    porta_hepatis_node_mm=Decimal(20),
    needs_arterial_phase=True,
    hcc_new_lesions=True,
    cite_target="mRECIST, Lencioni & Llovet 2010, target response",
    cite_nontarget="mRECIST, Lencioni & Llovet 2010, non-target response",
    cite_new="mRECIST, Lencioni & Llovet 2010, new lesions",
    cite_table="mRECIST overall response (RECIST 1.1 Table 1)",
)


def assess(case: Case) -> Assessment:
    """Assess ``case`` under mRECIST (HCC); see the module docstring."""
    flavour = MRECIST
    mm = case.options.get("porta_hepatis_node_mm")
    if mm is not None:
        from dataclasses import replace

        flavour = replace(flavour, porta_hepatis_node_mm=Decimal(mm))
    return run_recist(case, flavour, label="mrecist")
