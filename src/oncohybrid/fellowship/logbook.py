"""The logbook: entries (derived from the platform or typed by the fellow), grouped by
month and summarised by category, modality and tracer.

An entry is ``{"date": "YYYY-MM-DD", "source", "category", "title", "detail", "score",
...}`` as agreed between the teaching-file, tumour-board and research areas (issue #13);
the clinical entries also carry ``modalities`` and ``tracers`` lists and ``criteria``.

>>> e = [{"date": "2021-10-04", "source": "platform", "category": "study-read",
...       "title": "t", "detail": "", "score": None, "modalities": ["PT", "CT"],
...       "tracers": ["FDG"], "criteria": ["PERCIST"]}]
>>> s = summary(e)
>>> s["by_category"], s["by_modality"], s["by_tracer"], s["criteria"]
({'study-read': 1}, {'CT': 1, 'PT': 1}, {'FDG': 1}, {'PERCIST': 1})
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

__all__ = ["summary", "by_month", "CATEGORY_LABELS"]

CATEGORY_LABELS = {
    "study-read": "Patient studies read",
    "lesion-measured": "Lesions measured or classified",
    "report-downloaded": "Reports produced",
    "quiz": "Teaching-file quizzes",
    "teaching-case-authored": "Teaching cases authored",
    "board-attended": "Tumour boards attended",
    "board-case-presented": "Tumour-board cases presented",
    "research-milestone": "Research milestones",
    "manual": "Manual entries",
}


def by_month(entries: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(entries, key=lambda x: (x["date"], x.get("category", ""))):
        out.setdefault(e["date"][:7], []).append(e)
    return out


def summary(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    entries = list(entries)
    cats = Counter(e["category"] for e in entries)
    mods = Counter(m for e in entries for m in e.get("modalities") or [])
    tracers = Counter(t for e in entries for t in e.get("tracers") or [])
    crit = Counter(c for e in entries for c in e.get("criteria") or [])
    scores = [e["score"] for e in entries if e.get("score") is not None]
    return {"entries": len(entries), "by_category": dict(sorted(cats.items())),
            "by_modality": dict(sorted(mods.items())), "by_tracer": dict(sorted(tracers.items())),
            "criteria": dict(sorted(crit.items())),
            "mean_score": round(sum(scores) / len(scores), 2) if scores else None}
