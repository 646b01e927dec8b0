"""``oncohybrid stats …`` end to end: the JSON contracts of issue #16 on published data, and
invalid input refused with exit code 2, the reason on stderr and nothing on stdout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

runner = CliRunner()

SF_TABLE2 = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
WRIGHT = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]
MP_TIME = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PL_TIME = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _ok(args: list[str]) -> dict:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _refused(args: list[str], reason: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert reason in res.stderr


@pytest.fixture
def sf_csv(tmp_path: Path) -> Path:
    rows = [[t + 1, f"J{j + 1}", SF_TABLE2[t][j]] for t in range(6) for j in range(4)]
    return _write(tmp_path / "sf.csv", ["target", "judge", "score"], rows)


def test_icc_command_prints_the_six_forms(sf_csv: Path) -> None:
    out = _ok(["stats", "icc", str(sf_csv), "--targets", "target", "--raters", "judge",
               "--ratings", "score", "--json"])
    assert list(out) == ["ICC(1,1)", "ICC(2,1)", "ICC(3,1)", "ICC(1,k)", "ICC(2,k)",
                         "ICC(3,k)"]
    assert [round(out[k]["icc"], 2) for k in out] == [.17, .29, .71, .44, .62, .91]
    assert all(len(v["ci95"]) == 2 for v in out.values())


def test_kappa_command_cohen_and_fleiss(tmp_path: Path) -> None:
    table = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]
    rows = [[i + 1, j + 1] for i in range(3) for j in range(3) for _ in range(table[i][j])]
    f = _write(tmp_path / "k.csv", ["A", "B"], rows)
    out = _ok(["stats", "kappa", str(f), "--rater", "A", "--rater", "B", "--json"])
    assert {"kappa", "se", "ci95", "n"} <= set(out)
    assert (round(out["kappa"], 4), round(out["se"], 4), out["n"]) == (0.4842, 0.1380, 19)
    out = _ok(["stats", "kappa", str(f), "--rater", "A", "--rater", "B", "--weights",
               "linear", "--json"])
    assert round(out["kappa"], 4) == 0.4701
    from test_stats_agreement import FLEISS_1971

    g = _write(tmp_path / "f.csv", [f"r{i}" for i in range(6)], FLEISS_1971.tolist())
    out = _ok(["stats", "kappa", str(g), *sum((["--rater", f"r{i}"] for i in range(6)), []),
               "--json"])
    assert round(out["kappa"], 3) == 0.430 and out["n"] == 30


def test_bland_altman_command_and_plot(tmp_path: Path) -> None:
    pairs = [[w, m] for w, m in zip(WRIGHT, MINI, strict=True)]
    f = _write(tmp_path / "ba.csv", ["wright", "mini"], pairs)
    png = tmp_path / "ba.png"
    out = _ok(["stats", "bland-altman", str(f), "--a", "wright", "--b", "mini", "--plot",
               str(png), "--json"])
    assert out["n"] == 17 and round(out["bias"], 1) == -2.1 and round(out["sd"], 1) == 38.8
    assert out["loa"] == pytest.approx([out["bias"] - 1.959964 * out["sd"],
                                        out["bias"] + 1.959964 * out["sd"]])
    assert "loa_ci95" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_roc_command_single_and_paired(tmp_path: Path) -> None:
    r = np.arange(1, 6)
    score = np.r_[np.repeat(r, [33, 6, 6, 11, 2]), np.repeat(r, [3, 2, 2, 11, 33])]
    truth = np.r_[np.zeros(58, int), np.ones(51, int)]
    rng = np.random.default_rng(1)
    noisy = score + rng.normal(0, 2, score.size)
    f = _write(tmp_path / "roc.csv", ["disease", "ct", "noisy"],
               [[int(a), int(b), round(float(c), 3)]
                for a, b, c in zip(truth, score, noisy, strict=True)])
    out = _ok(["stats", "roc", str(f), "--truth", "disease", "--score", "ct", "--json"])
    assert round(out["scores"]["ct"]["auc"], 3) == 0.893
    assert out["delong_z"] is None and out["delong_p"] is None
    png = tmp_path / "roc.png"
    out = _ok(["stats", "roc", str(f), "--truth", "disease", "--score", "ct", "--score",
               "noisy", "--json", "--plot", str(png)])
    assert set(out["scores"]) == {"ct", "noisy"}
    assert out["delong_z"] > 0 and 0 <= out["delong_p"] <= 1
    assert png.stat().st_size > 1000


def test_km_command_groups_logrank_and_plot(tmp_path: Path) -> None:
    rows = [[t, e, "6-MP"] for t, e in zip(MP_TIME, MP_EVENT, strict=True)] + \
        [[t, 1, "placebo"] for t in PL_TIME]
    f = _write(tmp_path / "km.csv", ["weeks", "relapse", "arm"], rows)
    png = tmp_path / "km.png"
    out = _ok(["stats", "km", str(f), "--time", "weeks", "--event", "relapse", "--group",
               "arm", "--json", "--plot", str(png)])
    assert out["groups"]["6-MP"]["median"] == 23 and out["groups"]["placebo"]["median"] == 8
    assert set(out["groups"]["6-MP"]) >= {"n", "events", "median", "median_ci95"}
    assert round(out["logrank"]["chi2"], 2) == 16.79 and out["logrank"]["df"] == 1
    assert png.stat().st_size > 1000
    out = _ok(["stats", "km", str(f), "--time", "weeks", "--event", "relapse", "--json"])
    assert list(out["groups"]) == ["all"]


def test_table1_accuracy_mcnemar_commands(tmp_path: Path) -> None:
    rows = [["A", 61, "F", 1, 1, 1], ["A", 55, "M", 1, 0, 1], ["A", 70, "F", 0, 0, 0],
            ["A", 48, "M", 0, 1, 0], ["B", 66, "M", 1, 1, 1], ["B", 59, "F", 0, 0, 1],
            ["B", 72, "M", 1, 1, 0], ["B", 51, "F", 0, 0, 0]]
    f = _write(tmp_path / "t.csv", ["arm", "age", "sex", "truth", "reader1", "reader2"], rows)
    out = _ok(["stats", "table1", str(f), "--group", "arm", "--variable", "age",
               "--variable", "sex", "--json"])
    assert out["n"] == {"A": 4, "B": 4}
    assert [r["test"] for r in out["rows"]] == ["Welch t test", "Fisher exact"]
    res = runner.invoke(app, ["stats", "table1", str(f), "--group", "arm", "--csv"])
    assert res.exit_code == 0 and res.stdout.startswith("variable,A,B,test,p")
    out = _ok(["stats", "accuracy", str(f), "--truth", "truth", "--test", "reader1",
               "--json"])
    assert out["sensitivity"]["value"] == 0.75 and out["specificity"]["value"] == 0.75
    out = _ok(["stats", "mcnemar", str(f), "--reader", "reader1", "--reader", "reader2",
               "--json"])
    assert (out["b"], out["c"]) == (2, 2) and out["p"] == 1.0


def test_cox_command(tmp_path: Path) -> None:
    rows = [[t, e, 0] for t, e in zip(MP_TIME, MP_EVENT, strict=True)] + \
        [[t, 1, 1] for t in PL_TIME]
    f = _write(tmp_path / "cox.csv", ["weeks", "relapse", "placebo"], rows)
    out = _ok(["stats", "cox", str(f), "--time", "weeks", "--event", "relapse",
               "--covariate", "placebo", "--json"])
    assert round(out["terms"]["placebo"]["hr"], 2) == 4.82
    assert "ph_test_p" in out["terms"]["placebo"] and "ph_violated" in out


def test_invalid_input_exits_2_with_the_reason(tmp_path: Path, sf_csv: Path) -> None:
    f = _write(tmp_path / "bad.csv", ["a", "b", "y", "txt"],
               [[1, 2, 1, "x"], [2, 3, 1, "y"], [3, 5, 1, "z"], [4, 4, 1, "w"]])
    _refused(["stats", "bland-altman", str(f), "--a", "a", "--b", "nope", "--json"],
             "unknown column 'nope'")
    _refused(["stats", "bland-altman", str(f), "--a", "a", "--b", "txt", "--json"],
             "non-numeric values")
    _refused(["stats", "roc", str(f), "--truth", "y", "--score", "a", "--json"],
             "one class only")
    _refused(["stats", "kappa", str(f), "--rater", "a", "--json"], "at least 2 raters")
    _refused(["stats", "icc", str(f), "--targets", "a", "--raters", "y", "--ratings", "b",
              "--json"], "at least 2 raters")
    _refused(["stats", "km", str(tmp_path / "missing.csv"), "--time", "a", "--event", "y",
              "--json"], "no such file")
    _refused(["stats", "kappa", str(f), "--rater", "a", "--rater", "b", "--weights", "cubic",
              "--json"], "--weights 'cubic'")
    _refused(["stats", "mcnemar", str(f), "--reader", "a", "--json"], "exactly 2")


def test_kappa_reads_numeric_labels_as_numbers(tmp_path: Path) -> None:
    f = _write(tmp_path / "k.csv", ["A", "B"], [["1", "1.0"], ["2", "2"], ["3", "2.0"],
                                                ["1", "1"], ["2", "3"], ["3", "3"]])
    out = _ok(["stats", "kappa", str(f), "--rater", "A", "--rater", "B", "--json"])
    from statsmodels.stats.inter_rater import cohens_kappa

    assert out["kappa"] == pytest.approx(cohens_kappa([[2, 0, 0], [0, 1, 1], [0, 1, 1]]).kappa)


def test_km_plot_shows_the_numbers_at_risk() -> None:
    from oncohybrid.stats import plots

    t = MP_TIME + PL_TIME
    e = MP_EVENT + [1] * 21
    g = ["6-MP"] * 21 + ["placebo"] * 21
    fig = plots.km_plot(t, e, g)
    texts = [x.get_text() for ax in fig.axes for x in ax.texts] + \
        [lbl.get_text() for ax in fig.axes for lbl in ax.get_xticklabels()]
    assert any("At risk" in s for s in texts)
    assert any("21" in s for s in texts)  # both arms start with 21 at risk


def test_undefined_numbers_are_null_in_json(tmp_path: Path) -> None:
    # No positive test: PPV is 0/0, printed as null (JSON has no NaN).
    f = _write(tmp_path / "a.csv", ["truth", "test"], [[1, 0], [0, 0], [1, 0], [0, 0]])
    res = runner.invoke(app, ["stats", "accuracy", str(f), "--truth", "truth", "--test",
                              "test", "--json"])
    assert res.exit_code == 0 and "NaN" not in res.stdout
    out = json.loads(res.stdout)
    assert out["ppv"]["value"] is None and out["ppv"]["ci95"] == [None, None]
    assert out["sensitivity"]["value"] == 0.0
