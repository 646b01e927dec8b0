"""The grant's disbursement schedule: equal monthly payments rounded to the cent, the
rounding remainder in the last payment, so that the payments add up to the total exactly.

Amounts are :class:`~decimal.Decimal` euros; each regular payment is the total divided by
the number of payments rounded half-up to 0.01 (the usual commercial rounding, EU
Council Regulation 1103/97 art. 5 for euro amounts), the last one is the total minus the
others.

>>> from oncohybrid.fellowship.call import bundled_call
>>> s = schedule(bundled_call())
>>> str(s.payments[0].amount_eur), str(s.payments[-1].amount_eur), s.payments[-1].month
('1916.67', '1916.63', '2022-09')
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from oncohybrid.fellowship.call import Call

__all__ = ["Payment", "Schedule", "schedule", "split"]

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Payment:
    month: str  # YYYY-MM
    amount_eur: Decimal


@dataclass(frozen=True)
class Schedule:
    total_eur: Decimal
    payments: tuple[Payment, ...]

    def as_dict(self) -> dict[str, object]:
        return {"total_eur": str(self.total_eur.quantize(CENT)),
                "payments": [{"month": p.month, "amount_eur": str(p.amount_eur)}
                             for p in self.payments]}


def split(total: Decimal, n: int) -> list[Decimal]:
    """``n`` amounts rounded to the cent whose sum is ``total`` (remainder last)."""
    if n < 1:
        raise ValueError("at least one payment")
    total = total.quantize(CENT)
    regular = (total / n).quantize(CENT, rounding=ROUND_HALF_UP)
    return [regular] * (n - 1) + [total - regular * (n - 1)]


def _month(start: dt.date, k: int) -> str:
    y, m = divmod(start.month - 1 + k, 12)
    return f"{start.year + y:04d}-{m + 1:02d}"


def schedule(call: Call) -> Schedule:
    """Monthly payments from the start month of the call."""
    amounts = split(call.grant_total_eur, call.grant_payments)
    return Schedule(call.grant_total_eur.quantize(CENT),
                    tuple(Payment(_month(call.start, k), a) for k, a in enumerate(amounts)))
