"""``oncohybrid fellowship eligibility|grant|call load`` (issue #13 command-line contract):
JSON on stdout, exit 0; invalid input exit 2, the JSON path on stderr, nothing on stdout."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from fellowship_data import applicant
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.fellowship.call import bundled_call

runner = CliRunner()


def _ok(args: list[str]) -> dict:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _refused(args: list[str], *reasons: str) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    for reason in reasons:
        assert reason in res.stderr, res.stderr
    return res.stderr


def test_eligibility_json_has_one_entry_per_rule_of_the_call(write_applicant):
    out = _ok(["fellowship", "eligibility", str(write_applicant(applicant())), "--json"])
    assert out["eligible"] is True
    assert [r["rule"] for r in out["rules"]] == [r.id for r in bundled_call().rules]
    assert all(set(r) == {"rule", "ok", "reason"} and r["reason"] for r in out["rules"])


def test_eligibility_reports_the_failed_rule_with_its_numbers(write_applicant):
    path = write_applicant(applicant(**{"board_certification.date": "2018-06-14",
                                        "submitted_at": "2021-06-15T22:00:00Z"}))
    out = _ok(["fellowship", "eligibility", str(path), "--call",
               "esor-gustave-roussy-2021", "--json"])
    assert out["eligible"] is False
    failed = {r["rule"]: r["reason"] for r in out["rules"] if not r["ok"]}
    assert set(failed) == {"board_certification_recent", "deadline"}
    assert "2018-06-14" in failed["board_certification_recent"]


@pytest.mark.parametrize("changes,path", [
    ({"submitted_at": "2021-06-15T23:00:00"}, "$.submitted_at"),
    ({"submitted_at": ...}, "$.submitted_at"),
    ({"board_certification.date": "2018-02-30"}, "$.board_certification.date"),
    ({"board_certification.country": "ITA"}, "$.board_certification.country"),
    ({"languages.en": "D1"}, "$.languages.en"),
    ({"society_membership.fee_paid_years": ["2021"]}, "$.society_membership.fee_paid_years[0]"),
    ({"interview_available": "yes"}, "$.interview_available"),
    ({"other_applications": [{"programme": "ESOR Exchange", "status": "pending"}]},
     "$.other_applications[0].status"),
    ({"track": "surgery"}, "$.track"),
    ({"languages": {"eng": "C1"}}, "$.languages"),
])
def test_invalid_applicant_exits_2_naming_the_json_path(write_applicant, changes, path):
    p = write_applicant(applicant(**changes))
    _refused(["fellowship", "eligibility", str(p), "--json"], path)


def test_an_applicant_file_that_is_not_json_exits_2(write_applicant):
    p = write_applicant('{"applicant_id": "A",')
    _refused(["fellowship", "eligibility", str(p), "--json"], "not valid JSON", "line 1")


def test_an_unknown_call_exits_2(write_applicant):
    _refused(["fellowship", "eligibility", str(write_applicant(applicant())), "--call",
              "nope-1999", "--json"], "nope-1999")


def test_grant_schedule_is_twelve_payments_to_the_cent_remainder_last():
    out = _ok(["fellowship", "grant", "--json"])
    assert out["total_eur"] == "23000.00"
    months = [p["month"] for p in out["payments"]]
    assert months == [f"2021-{m:02d}" for m in (10, 11, 12)] + [f"2022-{m:02d}"
                                                               for m in range(1, 10)]
    amounts = [Decimal(p["amount_eur"]) for p in out["payments"]]
    # 23000 / 12 = 1916.666…: 11 x 1916.67 = 21083.37; last = 23000 - 21083.37 = 1916.63
    assert amounts[:11] == [Decimal("1916.67")] * 11 and amounts[11] == Decimal("1916.63")
    assert sum(amounts) == Decimal("23000.00")
    assert all(p["amount_eur"].count(".") == 1 and len(p["amount_eur"].split(".")[1]) == 2
               for p in out["payments"])


CALL_2022 = (Path(__file__).parents[2] / "src/oncohybrid/fellowship/calls/"
             "esor-gustave-roussy-2021.yaml").read_text()


def test_call_load_keeps_a_new_call_usable_as_call_id(tmp_path, write_applicant):
    text = (CALL_2022.replace("id: esor-gustave-roussy-2021", "id: test-call-2022")
            .replace('date: "2021-06-15"', 'date: "2022-01-31"')
            .replace('total_eur: "23000.00"', 'total_eur: "1000.00"')
            .replace("payments: 12", "payments: 3"))
    f = tmp_path / "c.yaml"
    f.write_text(text)
    out = _ok(["fellowship", "call", "load", str(f), "--json"])
    assert out["id"] == "test-call-2022" and out["deadline"] == "2022-01-31"
    grant = _ok(["fellowship", "grant", "--call", "test-call-2022", "--json"])
    assert [p["amount_eur"] for p in grant["payments"]] == ["333.33", "333.33", "333.34"]
    # In winter Paris is UTC+01:00: 22:59:59Z on 31 January is 23:59:59 local, in time.
    ok = _ok(["fellowship", "eligibility", str(write_applicant(applicant(
        submitted_at="2022-01-31T22:59:59Z"))), "--call", "test-call-2022", "--json"])
    assert {r["rule"]: r["ok"] for r in ok["rules"]}["deadline"] is True
    late = _ok(["fellowship", "eligibility", str(write_applicant(applicant(
        submitted_at="2022-01-31T23:00:00Z"))), "--call", "test-call-2022", "--json"])
    assert {r["rule"]: r["ok"] for r in late["rules"]}["deadline"] is False


@pytest.mark.parametrize("old,new,path", [
    ("places: 1", "places: one", "$.places"),
    ('date: "2021-06-15"', 'date: "15/06/2021"', "$.deadline.date"),
    ("time_zone: Europe/Paris\nstart", "time_zone: Europe/Atlantis\nstart", "$.deadline.time_zone"),
    ("  - id: deadline\n", "  - id: deadlines\n", "$.rules[7].id"),
    ("params: {language: fr, min_level: B2}", "params: {language: fr, min_level: D1}",
     "$.rules[5].params.min_level"),
    ("params: {max_years: 3, specialty: radiology}", "params: {max_years: three, specialty: "
     "radiology}", "$.rules[0].params.max_years"),
    ('total_eur: "23000.00"', 'total_eur: "23,000"', "$.grant.total_eur"),
    ("tracks: [research, clinical]", "tracks: [research, clinical", "line"),
])
def test_malformed_call_yaml_exits_2_naming_the_field(tmp_path, old, new, path):
    assert old in CALL_2022
    f = tmp_path / "bad.yaml"
    f.write_text(CALL_2022.replace(old, new, 1))
    _refused(["fellowship", "call", "load", str(f), "--json"], path, "bad.yaml")


def test_an_unquoted_norway_in_the_country_list_is_explained(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(CALL_2022.replace('"NO"', "NO"))
    _refused(["fellowship", "call", "load", str(f)], "$.rules[1].params.countries", '"NO"')


def test_the_schemas_are_printed_and_the_bundled_files_follow_them():
    from fellowship_data import GOOD
    from jsonschema import Draft202012Validator

    applicant_schema = _ok(["fellowship", "schema", "applicant"])
    Draft202012Validator.check_schema(applicant_schema)
    assert not list(Draft202012Validator(applicant_schema).iter_errors(GOOD))
    call_schema = _ok(["fellowship", "schema", "call"])
    Draft202012Validator.check_schema(call_schema)
    assert bundled_call().source["id"] == "esor-gustave-roussy-2021"
    _refused(["fellowship", "schema", "nope"], "nope")
