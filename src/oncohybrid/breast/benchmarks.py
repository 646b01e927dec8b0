"""Benchmark ranges shown beside each audit rate.

Two kinds of reference, both cited per entry:

- *acceptable ranges*: the minimally acceptable interpretive performance criteria that the
  ACR BI-RADS Atlas, 5th edition ("Follow-up and outcome monitoring") adopts - for
  screening mammography Carney PA, Sickles EA, Monsees BS, et al. Identifying minimally
  acceptable interpretive performance criteria for screening mammography. Radiology
  2010;255:354-361; for diagnostic mammography Carney PA, Parikh J, Sickles EA, et al.
  Diagnostic mammography: identifying minimally acceptable interpretive performance
  criteria. Radiology 2013;267:359-367;
- *BCSC means*: the Breast Cancer Surveillance Consortium national benchmarks for digital
  mammography - screening: Lehman CD, Arao RF, Sprague BL, et al. National performance
  benchmarks for modern screening digital mammography: update from the Breast Cancer
  Surveillance Consortium. Radiology 2017;283:49-58; diagnostic: Sprague BL, Arao RF,
  Miglioretti DL, et al. National performance benchmarks for modern diagnostic digital
  mammography: update from the Breast Cancer Surveillance Consortium. Radiology
  2017;283:59-69.

The minimal-cancer (> 30 %) and node-negative (> 75 %) goals are the atlas's desirable
goals for screening audits (carried from the 4th edition's audit table).

The BCSC means were checked against the papers' abstracts (PMC5375631; Radiology
2017;283:59 abstract) - ``bcsc_verified``. The acceptable ranges were written from
secondary knowledge and not re-read in the Carney papers - ``range_verified`` is False
until someone does (docs/breast.md).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BENCHMARKS", "Benchmark"]

_CARNEY_S = "Carney et al. Radiology 2010;255:354-361 (ACR BI-RADS 5th ed. acceptable range)"
_CARNEY_D = "Carney et al. Radiology 2013;267:359-367 (ACR BI-RADS 5th ed. acceptable range)"
_BCSC_S = "BCSC: Lehman et al. Radiology 2017;283:49-58"
_BCSC_D = "BCSC: Sprague et al. Radiology 2017;283:59-69"
_GOALS = "ACR BI-RADS Atlas audit desirable goals (screening)"


@dataclass(frozen=True)
class Benchmark:
    """A range (either end may be open) and the BCSC mean, as the metric's own unit
    (fractions for rates, per 1,000 for the cancer detection rate)."""

    low: float | None
    high: float | None
    source: str
    bcsc: float | None = None
    bcsc_source: str | None = None
    range_verified: bool = False
    bcsc_verified: bool = True

    def within(self, value: float | None) -> bool | None:
        if value is None or (self.low is None and self.high is None):
            return None
        if self.low is not None and value < self.low:
            return False
        return not (self.high is not None and value > self.high)

    def as_dict(self, value: float | None) -> dict[str, object]:
        return {"range": [self.low, self.high], "source": self.source, "bcsc": self.bcsc,
                "bcsc_source": self.bcsc_source, "within_range": self.within(value),
                "range_verified": self.range_verified,
                "bcsc_verified": self.bcsc_verified and self.bcsc is not None}


BENCHMARKS: dict[str, dict[str, Benchmark]] = {
    "screening": {
        "recall_rate": Benchmark(0.05, 0.12, _CARNEY_S, 0.116, _BCSC_S),
        "cdr_per_1000": Benchmark(2.5, None, _CARNEY_S, 5.1, _BCSC_S),
        "ppv1": Benchmark(0.03, 0.08, _CARNEY_S, 0.044, _BCSC_S),
        "sensitivity": Benchmark(0.75, None, _CARNEY_S, 0.869, _BCSC_S),
        "specificity": Benchmark(0.88, 0.95, _CARNEY_S, 0.889, _BCSC_S),
        "minimal_cancer_fraction": Benchmark(0.30, None, _GOALS, 0.577, _BCSC_S),
        "node_negative_invasive_fraction": Benchmark(0.75, None, _GOALS, 0.794, _BCSC_S),
    },
    "diagnostic": {
        "abnormal_interpretation_rate": Benchmark(0.08, 0.25, _CARNEY_D, 0.126, _BCSC_D),
        "ppv2": Benchmark(0.15, 0.40, _CARNEY_D, 0.275, _BCSC_D),
        "ppv3": Benchmark(0.20, 0.45, _CARNEY_D, 0.304, _BCSC_D),
        "sensitivity": Benchmark(0.80, None, _CARNEY_D, 0.878, _BCSC_D),
        "specificity": Benchmark(0.80, 0.95, _CARNEY_D, 0.905, _BCSC_D),
        "cdr_per_1000": Benchmark(20.0, None, _CARNEY_D, 34.7, _BCSC_D),
        "minimal_cancer_fraction": Benchmark(None, None, _BCSC_D, 0.456, _BCSC_D),
        "node_negative_invasive_fraction": Benchmark(None, None, _BCSC_D, 0.696, _BCSC_D),
    },
}
