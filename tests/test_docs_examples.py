"""The worked examples in docs/examples run and give the categories the README states.

RECIST 1.1 by hand: baseline 32 + 18 = 50 mm; week 8: 21 + 9 = 30 mm (−40 %, PR, §4.3.1);
week 17: 26 + 11 = 37 mm (+23 % and +7 mm over the nadir 30 mm) and a new lesion: PD.
PERCIST 1.0 by hand: SULpeak 5.3 → 3.1 is −41.5 % and −2.2 SUL (PMR); 1.9 below the liver
SULmean 2.0 (CMR).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"


@pytest.mark.parametrize(
    ("name", "overall", "best"),
    [
        ("recist-case.json", ["baseline", "PR", "PD"], "PR"),
        ("percist-case.json", ["baseline", "PMR", "CMR"], "CMR"),
    ],
)
def test_example_case_gives_the_documented_categories(name, overall, best):
    out = subprocess.run(
        [sys.executable, "-m", "oncohybrid.cli.main", "respond", str(EXAMPLES / name), "--json"],
        capture_output=True, text=True, check=True,
    )
    doc = json.loads(out.stdout)
    assert [tp["overall"] for tp in doc["timepoints"]] == overall
    assert doc["best_overall_response"] == best
    assert all(tp["trace"] for tp in doc["timepoints"][1:])
