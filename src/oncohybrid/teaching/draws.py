"""Balanced quiz draws without replacement by tag.

Rapid-reporting trainers build "balanced packets" (anchors-platforms §7: one site's
packets repeated cases, so every draw here is unique). A draw takes the eligible items
(those with at least one of the requested tags), then takes one item per tag in turn,
round-robin over the tags, each time the next not yet drawn item of that tag's shuffled
pool, until ``n`` items are drawn or every pool is empty. Each tag therefore contributes
as evenly as its pool allows (counts differ by at most one while every pool lasts) and no
item is drawn twice.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Hashable, Sequence
from typing import TypeVar

from oncohybrid.errors import InputError

K = TypeVar("K", bound=Hashable)

__all__ = ["balanced_draw", "UNTAGGED"]

#: The tag of items that have none.
UNTAGGED = "untagged"


def balanced_draw(items: Sequence[tuple[K, Collection[str]]], n: int, *,
                  tags: Sequence[str] | None = None,
                  rng: random.Random | None = None) -> list[K]:
    """Draw up to ``n`` distinct item keys balanced over ``tags`` (all tags when None).

    ``items`` are (key, tags) pairs. Fewer than ``n`` come back only when fewer are
    eligible.

    >>> balanced_draw([(1, ["ct"]), (2, ["ct"]), (3, ["pet"])], 2, rng=random.Random(0))
    [2, 3]
    """
    if n < 1:
        raise InputError(f"number of questions must be at least 1, got {n}")
    rng = rng or random.Random()
    tag_of = {key: set(t) or {UNTAGGED} for key, t in items}
    wanted = list(dict.fromkeys(tags)) if tags else sorted({t for ts in tag_of.values()
                                                            for t in ts})
    pools: dict[str, list[K]] = {}
    for tag in wanted:
        pool = [key for key, ts in tag_of.items() if tag in ts]
        rng.shuffle(pool)
        pools[tag] = pool
    order = [t for t in wanted if pools[t]]
    rng.shuffle(order)
    drawn: list[K] = []
    seen: set[K] = set()
    while len(drawn) < n and order:
        for tag in list(order):
            pool = pools[tag]
            while pool and pool[-1] in seen:
                pool.pop()
            if not pool:
                order.remove(tag)
                continue
            key = pool.pop()
            seen.add(key)
            drawn.append(key)
            if len(drawn) == n:
                break
    return drawn
