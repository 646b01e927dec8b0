"""Final report, certificate and verification (issue #13): the code is an HMAC-SHA-256
signature over the certificate's content; forged or altered codes are invalid."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess

import pytest
from fellowship_data import applicant
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.config import get_settings
from oncohybrid.fellowship.certificate import canonical
from oncohybrid.services import fellowship as svc
from oncohybrid.services import users

runner = CliRunner()
PASSWORD = "Correct-Horse-Battery-9"


def _cli(*args: str) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def fellow(write_applicant):
    users.add_user(None, "mentor1", PASSWORD, "mentor")
    code, out, err = _cli("fellowship", "enrol", str(write_applicant(applicant())),
                          "--mentor", "mentor1", "--json")
    assert code == 0, err
    return json.loads(out)["fellow_id"]


def test_no_certificate_before_the_mentor_signs_off_the_final_report(fellow, tmp_path):
    code, out, err = _cli("fellowship", "certificate", fellow, "--out", str(tmp_path / "c.pdf"))
    assert code == 1 and out == ""
    assert "not signed off" in err and not (tmp_path / "c.pdf").exists()


def test_only_the_fellows_mentor_signs_off(fellow, tmp_path):
    users.add_user(None, "mentor2", PASSWORD, "mentor")
    code, _, err = _cli("fellowship", "report", fellow, "--out", str(tmp_path / "r.pdf"),
                        "--sign-off", "mentor2")
    assert code == 1 and "only the fellow's mentor" in err


def test_certificate_code_verifies_and_altered_or_forged_codes_do_not(fellow, tmp_path):
    code, _, err = _cli("fellowship", "report", fellow, "--out", str(tmp_path / "r.pdf"),
                        "--sign-off", "mentor1")
    assert code == 0, err
    report = subprocess.run(["pdftotext", str(tmp_path / "r.pdf"), "-"], capture_output=True,
                            text=True, check=True).stdout
    assert "Dr Giulia Bianchi" in report and "Signed off by mentor1" in report
    code, out, err = _cli("fellowship", "certificate", fellow, "--out", str(tmp_path / "c.pdf"))
    assert code == 0, err
    cert_code = out.strip()
    text = subprocess.run(["pdftotext", str(tmp_path / "c.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert cert_code in text and "Dr Giulia Bianchi" in text
    assert "Gustave Roussy" in text and "2021-10-01" in text and "2022-09-30" in text

    ok = json.loads(_cli("fellowship", "verify", cert_code, "--json")[1])
    assert ok["valid"] is True
    assert ok["certificate"]["fellow_name"] == "Dr Giulia Bianchi"
    assert ok["certificate"]["serial"] == cert_code.split("-")[0] + "-" + cert_code.split("-")[1]

    # Independent recomputation of the signature: HMAC-SHA-256 over the canonical JSON.
    key = (get_settings().home / "fellowship-certificate.key").read_bytes()
    msg = b"oncohybrid-certificate-v1\x00" + json.dumps(
        ok["certificate"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    sig = base64.b32encode(hmac.new(key, msg, hashlib.sha256).digest()[:20]).decode()
    assert cert_code.replace("-", "").endswith(sig)
    assert canonical(ok["certificate"]) == msg[len(b"oncohybrid-certificate-v1\x00"):]

    # Typed in lower case with spaces it still verifies.
    assert json.loads(_cli("fellowship", "verify", cert_code.lower().replace("-", " - ", 3),
                           "--json")[1])["valid"] is True
    # One character of the signature changed.
    last = cert_code[-1]
    altered = cert_code[:-1] + ("A" if last != "A" else "B")
    bad = json.loads(_cli("fellowship", "verify", altered, "--json")[1])
    assert bad["valid"] is False and bad["certificate"] is None
    # Another serial with this signature.
    serial_swapped = cert_code.replace("-0001-", "-0002-", 1)
    assert json.loads(_cli("fellowship", "verify", serial_swapped, "--json")[1])["valid"] is False
    # A code signed with another key over the same content (forged).
    forged_sig = base64.b32encode(hmac.new(b"x" * 32, msg, hashlib.sha256).digest()[:20]).decode()
    serial = ok["certificate"]["serial"]
    forged = serial + "-" + "-".join(forged_sig[i:i + 4] for i in range(0, 32, 4))
    assert json.loads(_cli("fellowship", "verify", forged, "--json")[1])["valid"] is False
    # Garbage.
    assert json.loads(_cli("fellowship", "verify", "hello", "--json")[1])["valid"] is False


def test_stored_content_altered_in_the_database_no_longer_verifies(fellow, tmp_path):
    _cli("fellowship", "report", fellow, "--out", str(tmp_path / "r.pdf"), "--sign-off",
         "mentor1")
    cert_code = _cli("fellowship", "certificate", fellow, "--out", str(tmp_path / "c.pdf"))[1]
    cert_code = cert_code.strip()
    import sqlalchemy as sa

    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models_fellowship import FellowshipCertificate

    with session_scope(None) as s:
        c = s.scalar(sa.select(FellowshipCertificate))
        c.content = dict(c.content, end="2023-09-30")
    assert svc.verify(None, cert_code)["valid"] is False


def test_reissuing_prints_the_same_certificate(fellow, tmp_path):
    _cli("fellowship", "report", fellow, "--out", str(tmp_path / "r.pdf"), "--sign-off",
         "mentor1")
    first = _cli("fellowship", "certificate", fellow, "--out", str(tmp_path / "a.pdf"))[1]
    second = _cli("fellowship", "certificate", fellow, "--out", str(tmp_path / "b.pdf"))[1]
    assert first == second


def test_link_sets_the_mentor_who_may_then_sign_off(write_applicant, tmp_path):
    users.add_user(None, "mentor3", PASSWORD, "mentor")
    users.add_user(None, "fellow3", PASSWORD, "fellow")
    code, out, err = _cli("fellowship", "enrol", str(write_applicant(applicant(
        applicant_id="APP-3"))), "--json")
    assert code == 0, err
    code, _, err = _cli("fellowship", "report", "APP-3", "--out", str(tmp_path / "r.pdf"),
                        "--sign-off", "mentor3")
    assert code == 1 and "none assigned" in err
    code, out, err = _cli("fellowship", "link", "APP-3", "--user", "fellow3", "--mentor",
                          "mentor3", "--json")
    assert code == 0 and json.loads(out) == {"fellow_id": "APP-3", "user": "fellow3",
                                             "mentor": "mentor3"}
    code, _, err = _cli("fellowship", "link", "APP-3", "--mentor", "fellow3")
    assert code == 2 and "not a mentor" in err
    code, _, err = _cli("fellowship", "report", "APP-3", "--out", str(tmp_path / "r.pdf"),
                        "--sign-off", "mentor3")
    assert code == 0, err


def test_enrolling_the_same_applicant_twice_is_refused(fellow, write_applicant):
    code, out, err = _cli("fellowship", "enrol", str(write_applicant(applicant())), "--json")
    assert code == 2 and out == "" and "$.applicant_id" in err and "already exists" in err


def test_an_ineligible_applicant_cannot_be_enrolled(write_applicant):
    code, out, err = _cli("fellowship", "enrol", str(write_applicant(applicant(
        **{"languages.fr": "A2"}))), "--json")
    assert code == 2 and out == "" and "French level A2 is below the required B2" in err
