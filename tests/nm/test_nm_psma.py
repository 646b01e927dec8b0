"""PROMISE V2 (Seifert et al., Eur Urol 2023;83:405–412): miPSMA expression score against
blood pool, liver (spleen for PSMA-1007) and parotid, and the miTNM fields."""

from __future__ import annotations

import pytest

from oncohybrid.errors import InputError
from oncohybrid.nm.psma import PsmaLesion, expression_score, mitnm

REFS = {"blood_pool_suv_mean": 1.6, "liver_suv_mean": 5.2, "parotid_suv_mean": 13.0}


@pytest.mark.parametrize(("suv", "score"), [(1.0, 0), (1.59, 0), (1.6, 1), (5.19, 1),
                                            (5.2, 2), (12.9, 2), (13.0, 3), (40.0, 3)])
def test_expression_score_boundaries_are_at_or_above_the_reference(suv, score):
    assert expression_score(suv, **REFS) == score


def test_psma_1007_compares_with_the_spleen_not_the_liver():
    # liver 12 (hepatobiliary), spleen 6: a lesion of SUVmax 8 is score 2 against the spleen
    args = {"blood_pool_suv_mean": 1.5, "liver_suv_mean": 12.0, "parotid_suv_mean": 14.0}
    assert expression_score(8.0, **args) == 1
    assert expression_score(8.0, **args, spleen_suv_mean=6.0, tracer="18F-PSMA-1007") == 2
    with pytest.raises(InputError, match="spleen"):
        expression_score(8.0, **args, tracer="PSMA-1007")


def test_implausible_reference_order_is_refused():
    with pytest.raises(InputError, match="blood pool ≤ liver ≤ parotid"):
        expression_score(3.0, blood_pool_suv_mean=6, liver_suv_mean=5, parotid_suv_mean=12)


@pytest.mark.parametrize(("lesions", "stage"), [
    ([], "miT0 miN0 miM0"),
    ([PsmaLesion("prostate")], "miT2u miN0 miM0"),
    ([PsmaLesion("prostate", focus=1), PsmaLesion("prostate", focus=2)], "miT2m miN0 miM0"),
    ([PsmaLesion("prostate"), PsmaLesion("seminal_vesicle")], "miT3b miN0 miM0"),
    ([PsmaLesion("prostate_bed"), PsmaLesion("pelvic_node", "obturator"),
      PsmaLesion("pelvic_node", "obturator")], "miTr miN1 miM0"),
    ([PsmaLesion("pelvic_node", "obturator"), PsmaLesion("pelvic_node", "common_iliac")],
     "miT0 miN2 miM0"),
    ([PsmaLesion("bone")] * 4 + [PsmaLesion("visceral", "lung")],
     "miT0 miN0 miM1b(diss) miM1c(lung)"),
    ([PsmaLesion("extrapelvic_node", "supradiaphragmatic"),
      PsmaLesion("extrapelvic_node", "retroperitoneal")], "miT0 miN0 miM1a(RP,SD) "),
])
def test_mitnm_stage(lesions, stage):
    assert mitnm(lesions)["stage"] == stage.strip()


def test_diffuse_marrow_involvement_and_bad_sites():
    assert mitnm([PsmaLesion("bone")], diffuse_marrow=True)["miM"] == "miM1b(dmi)"
    with pytest.raises(InputError, match="pelvic node region"):
        mitnm([PsmaLesion("pelvic_node", "groin")])
    with pytest.raises(InputError, match="is not one of"):
        mitnm([PsmaLesion("skin")])


def test_psma_command_stage_and_scores(tmp_path):
    import json

    from typer.testing import CliRunner

    from oncohybrid.cli.main import app

    case = {"tracer": "68Ga-PSMA-11",
            "references": {"blood_pool_suv_mean": 1.6, "liver_suv_mean": 5.2,
                           "parotid_suv_mean": 13.0},
            "lesions": [{"id": "P", "site": "prostate", "suv_max": 22.0},
                        {"id": "N", "site": "pelvic_node", "region": "obturator",
                         "suv_max": 6.1},
                        {"id": "B", "site": "bone", "suv_max": 3.0}]}
    f = tmp_path / "case.json"
    f.write_text(json.dumps(case))
    runner = CliRunner()
    res = runner.invoke(app, ["psma", str(f), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["mitnm"]["stage"] == "miT2u miN1 miM1b(uni)"
    assert [r["psma_expression_score"] for r in doc["lesions"]] == [3, 2, 1]
    assert doc["psma_expression_score_max"] == 3
    case["lesions"][0]["site"] = "skin"
    f.write_text(json.dumps(case))
    bad = runner.invoke(app, ["psma", str(f), "--json"])
    assert bad.exit_code == 2 and bad.stdout == "" and "skin" in bad.stderr
    f.write_text("{not json")
    assert runner.invoke(app, ["psma", str(f), "--json"]).exit_code == 2
