"""Integration with a real PACS (Orthanc + DICOMweb plugin) over loopback.

A synthetic PET/CT study is pushed into Orthanc by REST; we find it by C-FIND and
QIDO-RS, pull it by C-MOVE (into our listener), C-GET and WADO-RS, check that every
instance arrived bit-identical in pixels and equal in headers, and send an SR back by
STOW-RS and C-STORE and find it in Orthanc.
"""

from __future__ import annotations

import json
from pathlib import Path

import highdicom as hd
import pytest
import sqlalchemy as sa
from pydicom import dcmread
from pydicom.sr.codedict import codes
from typer.testing import CliRunner

from oncohybrid.errors import PacsError
from oncohybrid.pacs.node import PacsNode
from oncohybrid.pacs.query import StudyQuery, parse_date_range
from oncohybrid.services import pacs

pytestmark = pytest.mark.orthanc

SCHEMA = json.loads(
    (Path(pacs.__file__).parents[1] / "pacs" / "cli_output.schema.json").read_text()
)


def check_schema(document: object, definition: str) -> None:
    """Validate CLI JSON against its documented schema (``$defs/<definition>``)."""
    import jsonschema

    jsonschema.validate(document, {**SCHEMA, "$ref": f"#/$defs/{definition}"})


HEADER_KEYS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "PatientID",
    "PatientName", "StudyDate", "Modality", "InstanceNumber", "ImagePositionPatient",
    "PixelSpacing", "Rows", "Columns", "RescaleIntercept",
)


@pytest.fixture(scope="module")
def studies(orthanc, tmp_path_factory):  # noqa: ANN001, ANN201
    """Two PET/CT studies of one patient in Orthanc, an early and a late one.

    One is a small phantom study (``oncohybrid.phantom``) when that package is present,
    the other a synthetic study of the same patient half a year apart.
    """
    import pacs_data

    orthanc.delete_all_studies()
    root = tmp_path_factory.mktemp("orthanc-src")
    try:
        from oncohybrid.phantom import generate_cohort
    except ImportError:
        generate_cohort = None
    if generate_cohort is not None:
        generate_cohort(root / "phantom", patients=1, timepoints=1, vendor="ge", seed=5,
                        size="small")
        phantom_paths = sorted((root / "phantom").rglob("*.dcm"))
        phantom = [dcmread(p) for p in phantom_paths]
        patient_id, date = str(phantom[0].PatientID), str(phantom[0].StudyDate)
        other_date = f"{date[:4]}1120" if date[4:6] <= "06" else f"{date[:4]}0210"
        other = pacs_data.make_study(n_ct=2, n_pt=2, patient_id=patient_id,
                                     study_date=other_date, seed=2)
        paths = phantom_paths + pacs_data.write_study(other, root / "other")
        pair = (phantom, other)
    else:
        first = pacs_data.make_study(n_ct=4, n_pt=4, patient_id="PACSIT01",
                                     study_date="20240315", seed=1)
        other = pacs_data.make_study(n_ct=2, n_pt=2, patient_id="PACSIT01",
                                     study_date="20240920", seed=2)
        paths = pacs_data.write_study(first, root / "a") + pacs_data.write_study(other,
                                                                                  root / "b")
        pair = (first, other)
    orthanc.upload(paths)
    early, late = sorted(pair, key=lambda study: str(study[0].StudyDate))
    return {"early": early, "late": late, "patient_id": str(early[0].PatientID),
            "large": pair[0], "small": pair[1]}


def dimse_node(orthanc, **kw) -> PacsNode:  # noqa: ANN001
    return PacsNode(name="orthanc", ae_title=orthanc.aet, host="127.0.0.1",
                    port=orthanc.dicom_port, **kw)


def web_node(orthanc, env: str = "ORTHANC_TEST_SECRET") -> PacsNode:  # noqa: ANN001
    return PacsNode(name="orthanc-web", url=orthanc.dicomweb_url, auth="basic",
                    username=orthanc.auth[0], secret_env=env)


@pytest.fixture
def secret_env(orthanc, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("ORTHANC_TEST_SECRET", orthanc.auth[1])


def indexed_files(home: Path) -> dict[str, Path]:
    from oncohybrid.config import get_settings
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Instance

    with session_scope(get_settings()) as s:
        rows = s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all()
    return {uid: Path(p) for uid, p in rows}


def assert_same_instances(originals, files: dict[str, Path]) -> None:  # noqa: ANN001
    assert set(files) == {str(ds.SOPInstanceUID) for ds in originals}
    for ds in originals:
        got = dcmread(files[str(ds.SOPInstanceUID)])
        assert got.PixelData == ds.PixelData
        for key in HEADER_KEYS:
            assert got.get(key) == ds.get(key), key


def test_echo_reaches_orthanc_over_dimse_and_dicomweb(orthanc, secret_env) -> None:  # noqa: ANN001
    assert pacs.echo(dimse_node(orthanc)) > 0
    assert pacs.echo(web_node(orthanc)) > 0


def test_dicomweb_with_a_wrong_password_names_the_auth_problem(orthanc, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ORTHANC_TEST_SECRET", "wrong")
    with pytest.raises(PacsError, match="HTTP 401"):
        pacs.echo(web_node(orthanc))


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_find_by_patient_modality_and_date_range(orthanc, studies, secret_env, kind) -> None:  # noqa: ANN001
    node = dimse_node(orthanc) if kind == "dimse" else web_node(orthanc)
    pid = studies["patient_id"]
    early, late = studies["early"][0], studies["late"][0]

    both = pacs.find(node, StudyQuery(patient_id=pid, modality="PT"))
    assert {r.study_instance_uid for r in both} == {early.StudyInstanceUID,
                                                     late.StudyInstanceUID}

    year = str(early.StudyDate)[:4]
    until_early = StudyQuery(patient_id=pid, study_date=parse_date_range(
        f"{year}-01-01..{early.StudyDate[:4]}-{early.StudyDate[4:6]}-{early.StudyDate[6:]}"))
    (hit,) = pacs.find(node, until_early)
    assert hit.study_instance_uid == early.StudyInstanceUID
    assert hit.study_date == early.StudyDate
    assert hit.patient_id == pid
    assert set(hit.modalities) == {"CT", "PT"}

    assert pacs.find(node, StudyQuery(patient_id="NOSUCHPATIENT")) == []
    page1 = pacs.find(node, StudyQuery(patient_id=pid, limit=1))
    page2 = pacs.find(node, StudyQuery(patient_id=pid, limit=1, offset=1))
    assert len(page1) == len(page2) == 1
    assert {page1[0].study_instance_uid, page2[0].study_instance_uid} == {
        early.StudyInstanceUID, late.StudyInstanceUID}


def test_pull_by_c_move_into_our_listener_is_bit_identical(orthanc, studies, home) -> None:  # noqa: ANN001
    study = studies["large"]
    report = pacs.pull(dimse_node(orthanc), str(study[0].StudyInstanceUID), method="move",
                       local_ae=orthanc.listener_ae, listen_port=orthanc.listener_port)
    assert report.remote_completed == len(study) and not report.remote_failed
    assert report.outcomes == {"new": len(study)}
    assert_same_instances(study, indexed_files(home))

    # a resend (here of the small study, pulled twice) is indexed once
    small = studies["small"]
    for expected in ("new", "duplicate"):
        again = pacs.pull(dimse_node(orthanc), str(small[0].StudyInstanceUID), method="move",
                          local_ae=orthanc.listener_ae, listen_port=orthanc.listener_port)
        assert again.outcomes == {expected: _orthanc_count(orthanc, small)}
    assert len(indexed_files(home)) == len(study) + _orthanc_count(orthanc, small)


def test_pull_by_c_get_is_bit_identical(orthanc, studies, home) -> None:  # noqa: ANN001
    study = studies["small"]
    report = pacs.pull(dimse_node(orthanc), str(study[0].StudyInstanceUID), method="get")
    assert report.outcomes == {"new": len(study)}
    assert_same_instances(study, indexed_files(home))


def test_pull_by_wado_rs_is_bit_identical(orthanc, studies, home, secret_env) -> None:  # noqa: ANN001
    study = studies["large"]
    report = pacs.pull(web_node(orthanc), str(study[0].StudyInstanceUID))
    assert report.method == "wado"
    assert report.outcomes == {"new": len(study)}
    assert_same_instances(study, indexed_files(home))


def _sr_for(evidence, series_number: int):  # noqa: ANN001, ANN202
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name="Reader^Test"),
    )
    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="lesion 1"),
        measurements=[hd.sr.Measurement(name=codes.SCT.Diameter, value=12.0,
                                        unit=codes.UCUM.Millimeter)],
    )
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=observer),
        procedure_reported=hd.sr.CodedConcept("44139-4", "LN", "PET-CT"),
        imaging_measurements=[group],
    )
    return hd.sr.ComprehensiveSR(
        evidence=evidence, content=report, series_instance_uid=hd.UID(),
        series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="oncohybrid",
    )


def _orthanc_has_instance(orthanc, sop_uid: str) -> bool:  # noqa: ANN001
    found = orthanc.rest("POST", "/tools/find", json={
        "Level": "Instance", "Query": {"SOPInstanceUID": sop_uid}}).json()
    return len(found) == 1


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_send_an_sr_back_and_find_it_in_orthanc(orthanc, studies, tmp_path, secret_env,  # noqa: ANN001
                                                kind) -> None:
    node = dimse_node(orthanc) if kind == "dimse" else web_node(orthanc)
    sr = _sr_for(studies["small"], series_number=90 if kind == "dimse" else 91)
    path = tmp_path / "sr.dcm"
    sr.save_as(path, enforce_file_format=True)
    report = pacs.send(node, [path])
    assert report.sent == 1 and report.failed == []
    assert _orthanc_has_instance(orthanc, str(sr.SOPInstanceUID))
    mods = pacs.find(node, StudyQuery(study_instance_uid=str(sr.StudyInstanceUID)))
    assert "SR" in mods[0].modalities


def test_cli_node_config_echo_and_find_round_trip(orthanc, studies, home, secret_env) -> None:  # noqa: ANN001
    from oncohybrid.cli.main import app

    runner = CliRunner()
    r = runner.invoke(app, ["pacs", "node", "add", "main", "--ae", orthanc.aet, "--host",
                            "127.0.0.1", "--port", str(orthanc.dicom_port), "--accept-store"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["pacs", "node", "add", "web", "--url", orthanc.dicomweb_url,
                            "--auth", "basic", "--user", orthanc.auth[0],
                            "--secret-env", "ORTHANC_TEST_SECRET"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["pacs", "node", "ls", "--json"])
    check_schema(json.loads(r.stdout), "node_ls")
    listed = {n["name"]: n for n in json.loads(r.stdout)}
    assert listed["main"]["accept_store"] is True and listed["web"]["kind"] == "dicomweb"
    assert orthanc.auth[1] not in r.stdout
    for name in ("main", "web"):
        r = runner.invoke(app, ["pacs", "echo", name, "--json"])
        assert r.exit_code == 0 and json.loads(r.stdout)["ok"] is True
        check_schema(json.loads(r.stdout), "echo")
        late = studies["late"][0]
        since = f"{late.StudyDate[:4]}-{late.StudyDate[4:6]}-{late.StudyDate[6:]}.."
        r = runner.invoke(app, ["pacs", "find", "--node", name, "--patient-id",
                                studies["patient_id"], "--date", since, "--json"])
        assert r.exit_code == 0, r.output
        check_schema(json.loads(r.stdout), "find")
        (hit,) = json.loads(r.stdout)
        assert hit["study_instance_uid"] == str(late.StudyInstanceUID)
    r = runner.invoke(app, ["pacs", "node", "rm", "web"])
    assert r.exit_code == 0
    r = runner.invoke(app, ["pacs", "echo", "web"])
    assert r.exit_code == 2 and "no PACS node named 'web'" in r.output


def test_c_move_honours_the_listener_allow_list(orthanc, studies, home) -> None:  # noqa: ANN001
    from oncohybrid.services.pacs import SqlNodeRepository

    repo = SqlNodeRepository()
    repo.add(PacsNode(name="modality", ae_title="CT01", host="127.0.0.1", port=104,
                      accept_store=True))
    study = studies["small"]
    with pytest.raises(PacsError, match="C-MOVE"):  # Orthanc is not on the allow-list
        pacs.pull(dimse_node(orthanc), str(study[0].StudyInstanceUID), method="move",
                  local_ae=orthanc.listener_ae, listen_port=orthanc.listener_port)
    assert indexed_files(home) == {}
    repo.add(dimse_node(orthanc, accept_store=True))
    report = pacs.pull(dimse_node(orthanc), str(study[0].StudyInstanceUID), method="move",
                       local_ae=orthanc.listener_ae, listen_port=orthanc.listener_port)
    assert report.outcomes == {"new": _orthanc_count(orthanc, study)}


def _orthanc_count(orthanc, study) -> int:  # noqa: ANN001
    """Instances of the study in Orthanc now (SRs sent back by other tests included)."""
    found = orthanc.rest("POST", "/tools/find", json={
        "Level": "Instance", "Query": {"StudyInstanceUID": str(study[0].StudyInstanceUID)}})
    return len(found.json())


def test_cli_pull_and_send(orthanc, studies, home, tmp_path) -> None:  # noqa: ANN001
    from oncohybrid.cli.main import app

    runner = CliRunner()
    assert runner.invoke(app, ["pacs", "node", "add", "main", "--ae", orthanc.aet, "--host",
                               "127.0.0.1", "--port", str(orthanc.dicom_port),
                               "--retrieve", "get"]).exit_code == 0
    study = studies["small"]
    r = runner.invoke(app, ["pacs", "pull", "--node", "main", str(study[0].StudyInstanceUID),
                            "--json"])
    assert r.exit_code == 0, r.output
    check_schema(json.loads(r.stdout), "pull")
    assert json.loads(r.stdout)["outcomes"] == {"new": _orthanc_count(orthanc, study)}
    sr = _sr_for(study, series_number=92)
    sr.save_as(tmp_path / "sr.dcm", enforce_file_format=True)
    r = runner.invoke(app, ["pacs", "send", "--node", "main", str(tmp_path / "sr.dcm"),
                            "--json"])
    assert r.exit_code == 0, r.output
    check_schema(json.loads(r.stdout), "send")
    assert json.loads(r.stdout) == {"node": "main", "sent": 1, "failed": []}
    assert _orthanc_has_instance(orthanc, str(sr.SOPInstanceUID))
    (tmp_path / "junk.dcm").write_bytes(b"not dicom")
    r = runner.invoke(app, ["pacs", "send", "--node", "main", str(tmp_path / "junk.dcm")])
    assert r.exit_code == 1 and "junk.dcm" in r.output
