"""Pure parts of the PACS edge: integrity walk, queries, node validation, completion clock."""

from __future__ import annotations

import zlib

import pacs_data
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.dsutils import encode

from oncohybrid.errors import InputError
from oncohybrid.pacs.hooks import StudyCompletionTracker, resolve_study_hooks
from oncohybrid.pacs.integrity import IncompleteDataset, check_complete, read_header
from oncohybrid.pacs.node import PacsNode
from oncohybrid.pacs.query import StudyQuery, parse_date_range, study_result_from_dataset
from oncohybrid.services.pacs import InMemoryNodeRepository, SqlNodeRepository, allowed_callers


def _with_sequences() -> Dataset:
    ds = pacs_data.make_study(n_ct=0, n_pt=1, size=4)[0]
    item = Dataset()
    item.RadionuclideTotalDose = 370_000_000
    item.RadiopharmaceuticalStartTime = "093000"
    inner = Dataset()
    inner.CodeValue = "C-111A1"
    inner.CodingSchemeDesignator = "SRT"
    item.RadionuclideCodeSequence = Sequence([inner])
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    return ds


@pytest.mark.parametrize("implicit,little", [(True, True), (False, True), (False, False)])
def test_every_cut_of_an_encoded_dataset_is_detected(implicit: bool, little: bool) -> None:
    ts = {(True, True): ImplicitVRLittleEndian, (False, True): ExplicitVRLittleEndian,
          (False, False): ExplicitVRBigEndian}[(implicit, little)]
    data = encode(_with_sequences(), implicit, little)
    check_complete(data, ts)
    # element boundaries are legitimate ends of a shorter dataset; find them by parsing
    for cut in range(1, len(data)):
        try:
            check_complete(data[:cut], ts)
        except IncompleteDataset:
            continue
        # a cut that passes must be a clean element boundary: the rest parses on its own
        check_complete(data[cut:], ts)


def test_undefined_length_sequence_without_delimiter_is_incomplete() -> None:
    ds = _with_sequences()
    ds["RadiopharmaceuticalInformationSequence"].is_undefined_length = True
    data = encode(ds, True, True)
    check_complete(data, ImplicitVRLittleEndian)
    cut = data.rindex(b"\xfe\xff\xdd\xe0")  # the sequence delimiter
    with pytest.raises(IncompleteDataset, match="not closed|cut off"):
        check_complete(data[:cut], ImplicitVRLittleEndian)


def test_deflated_dataset_is_checked_after_inflating() -> None:
    raw = encode(_with_sequences(), False, True)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = compressor.compress(raw) + compressor.flush()
    check_complete(deflated, DeflatedExplicitVRLittleEndian)
    with pytest.raises(IncompleteDataset):
        check_complete(deflated[: len(deflated) // 2], DeflatedExplicitVRLittleEndian)


@pytest.mark.parametrize("ts", [ImplicitVRLittleEndian, ExplicitVRLittleEndian,
                                ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian])
def test_read_header_reads_what_pydicom_encoded_in_every_native_syntax(ts) -> None:  # noqa: ANN001
    ds = _with_sequences()  # a sequence before the image attributes: skipped, not read
    ds.NumberOfFrames = 1
    ds.SamplesPerPixel = 1
    raw = encode(ds, ts.is_implicit_VR, ts.is_little_endian)
    if ts.is_deflated:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        raw = compressor.compress(raw) + compressor.flush()
    header = read_header(raw, ts)
    assert header.sop_class_uid == ds.SOPClassUID
    assert header.sop_instance_uid == ds.SOPInstanceUID
    assert header.modality == "PT"
    assert (header.rows, header.columns, header.bits_allocated) == (4, 4, 16)
    assert (header.samples_per_pixel, header.number_of_frames) == (1, "1")
    assert header.pixel_data_bytes == len(ds.PixelData) == 4 * 4 * 2


def test_date_ranges_become_dicom_range_matching() -> None:
    assert parse_date_range("2024-01-01..2024-06-30") == "20240101-20240630"
    assert parse_date_range("..2024-06-30") == "-20240630"
    assert parse_date_range("20240101") == "20240101"
    for bad in ("2024-02-30", "2024-06-30..2024-01-01", "..", "yesterday"):
        with pytest.raises(InputError, match="--date"):
            parse_date_range(bad)


def test_query_limits_and_identifier() -> None:
    with pytest.raises(InputError, match="--limit"):
        StudyQuery(limit=0)
    with pytest.raises(InputError, match="--offset"):
        StudyQuery(offset=-1)
    ident = StudyQuery(patient_id="P1", modality="PT", study_date="20240101-").identifier()
    assert ident.QueryRetrieveLevel == "STUDY"
    assert (ident.PatientID, ident.ModalitiesInStudy, ident.StudyDate) == ("P1", "PT", "20240101-")
    assert ident.StudyInstanceUID == "" and ident.NumberOfStudyRelatedInstances == ""


def test_a_response_missing_optional_keys_is_tolerated() -> None:
    ds = Dataset()
    ds.StudyInstanceUID = "1.2.3"
    ds.NumberOfStudyRelatedInstances = ""
    result = study_result_from_dataset(ds)
    assert result is not None and result.study_instance_uid == "1.2.3"
    assert result.modalities == () and result.n_instances is None and result.patient_id is None
    assert study_result_from_dataset(Dataset()) is None  # no Study UID: nothing to retrieve


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"ae_title": "A" * 17, "host": "h", "port": 104}, "AE title"),
        ({"ae_title": "PACS", "host": "h", "port": 70000}, "port"),
        ({"ae_title": "PACS", "host": "h"}, "needs --ae, --host and --port"),
        ({"url": "ftp://x"}, "http"),
        ({"url": "http://x", "ae_title": "A", "host": "h", "port": 1}, "not both"),
        ({"url": "http://x", "auth": "basic", "secret_env": "X"}, "--user"),
        ({"url": "http://x", "auth": "bearer"}, "--secret-env"),
        ({"url": "http://x", "accept_store": True}, "DIMSE"),
        ({}, "needs --ae"),
    ],
)
def test_node_validation_names_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        PacsNode(name="n", **kwargs)


def test_completion_tracker_waits_for_the_quiet_period() -> None:
    now = [100.0]
    calls = []
    tracker = StudyCompletionTracker(10, [calls.append], clock=lambda: now[0])
    tracker.touch("1.2", calling_ae="CT1")
    now[0] += 9
    tracker.touch("1.2", calling_ae="PET1", new=False)
    now[0] += 9.9
    assert tracker.check() == [] and calls == []
    now[0] += 0.2
    (event,) = tracker.check()
    assert calls == [event]
    assert (event.instances, event.new_instances) == (2, 1)
    assert event.calling_ae_titles == ("CT1", "PET1")
    assert tracker.pending == []


def test_a_failing_hook_does_not_stop_the_others() -> None:
    now = [0.0]
    calls = []

    def broken(_event):  # noqa: ANN001, ANN202
        raise RuntimeError("boom")

    tracker = StudyCompletionTracker(1, [broken, calls.append], clock=lambda: now[0])
    tracker.touch("9.9")
    now[0] = 5
    tracker.check()
    assert len(calls) == 1


def test_unknown_hook_name_lists_registered_hooks() -> None:
    with pytest.raises(InputError, match="registered: .*log"):
        resolve_study_hooks(["quantify-later"])


def test_sql_node_repository_round_trip_and_allow_list(home) -> None:  # noqa: ANN001
    repo = SqlNodeRepository()
    repo.add(PacsNode(name="pacs", ae_title="PACS", host="127.0.0.1", port=104,
                      accept_store=True, retrieve="get"))
    repo.add(PacsNode(name="web", url="https://pacs.example/dicom-web/", auth="bearer",
                      secret_env="TOKEN"))
    with pytest.raises(InputError, match="exists"):
        repo.add(PacsNode(name="pacs", ae_title="X", host="h", port=1))
    repo.add(PacsNode(name="pacs", ae_title="PACS2", host="127.0.0.1", port=105,
                      accept_store=True), replace=True)
    assert [n.name for n in repo.list()] == ["pacs", "web"]
    assert repo.get("pacs").ae_title == "PACS2" and repo.get("pacs").port == 105
    assert repo.get("web").url == "https://pacs.example/dicom-web"
    assert [(c.ae_title, c.host) for c in allowed_callers(repo=repo)] == [("PACS2", "127.0.0.1")]
    repo.remove("web")
    with pytest.raises(InputError, match="no PACS node named 'web'"):
        repo.get("web")
    with pytest.raises(InputError, match="known: pacs"):
        repo.remove("web")


def test_in_memory_repository_behaves_like_the_sql_one() -> None:
    repo = InMemoryNodeRepository()
    repo.add(PacsNode(name="a", ae_title="A", host="h", port=1))
    with pytest.raises(InputError):
        repo.add(PacsNode(name="a", ae_title="A", host="h", port=1))
    assert repo.get("a").address == "A@h:1"
    repo.remove("a")
    assert repo.list() == []
