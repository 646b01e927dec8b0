"""Hostile input to ingest and the store (issue #12 items 3, 8, 15, 16, 17, 18, CLI tables).

Each test builds the hostile input from real files written by pydicom and checks what ingest
reports and what the store and database hold afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import zipfile
from pathlib import Path

import pydicom
import pytest
import sqlalchemy as sa
from dicomfactory import SeriesSpec, StudySpec, build_cohort, make_instance, to_bytes, write
from typer.testing import CliRunner

from oncohybrid.cli.main import app
from oncohybrid.config import get_settings
from oncohybrid.services.ingest import Ingestor, read_header
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Instance

runner = CliRunner()


def _study(pid: str = "HOST01", n: int = 1, modality: str = "CT") -> StudySpec:
    return StudySpec(pid, "Host^Ile", "20240101", [SeriesSpec(modality, n)])


def _stored() -> dict[str, str]:
    with session_scope() as s:
        return dict(s.execute(sa.select(Instance.sop_instance_uid, Instance.file_path)).all())


def _ingest_with_timeout(paths: list[Path], timeout_s: float = 60.0, **kw):
    """Run an ingest in a thread; fail (instead of hanging the suite) when it blocks."""
    result: dict = {}

    def target() -> None:
        try:
            result["report"] = Ingestor(**kw).ingest_paths(paths)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout_s)
    return t, result


# ----------------------------------------------------------------- item 3: FIFOs and co.


@pytest.mark.parametrize("in_place", [False, True])
def test_fifo_socket_and_outside_symlink_are_skipped_with_reason_not_waited_on(
    backend, tmp_path, in_place
):
    folder = tmp_path / "in"
    st = _study(n=2)
    good = [write(make_instance(st, st.series[0], i), folder / f"{i}.dcm") for i in range(2)]
    fifo = folder / "pipe.dcm"
    os.mkfifo(fifo)
    sock_path = folder / "s.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(sock_path))
    outside = write(make_instance(st, st.series[0], 7), tmp_path / "elsewhere" / "secret.dcm")
    (folder / "link_out.dcm").symlink_to(outside)
    (folder / "link_in.dcm").symlink_to(good[0])  # inside the tree: followed
    (folder / "linkdir").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    try:
        t, result = _ingest_with_timeout([folder], in_place=in_place)
        if t.is_alive():  # unblock the hung reader so the thread can end
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
            t.join(10)
        assert not t.is_alive(), "ingest blocked on the named pipe"
    finally:
        sock.close()
    assert "error" not in result, result.get("error")
    report = result["report"]
    skipped = dict(report.skipped)
    assert "named pipe" in skipped[str(fifo)]
    assert "socket" in skipped[str(sock_path)]
    assert "outside" in skipped[str(folder / "link_out.dcm")]
    assert "folder" in skipped[str(folder / "linkdir")]
    assert report.new == 2 and report.duplicate == 1  # link_in is the same instance again
    assert set(_stored()) == {pydicom.dcmread(p).SOPInstanceUID for p in good}


def test_fifo_named_on_the_command_line_is_reported_not_read(backend, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    t, result = _ingest_with_timeout([fifo], timeout_s=30)
    if t.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(10)
    assert not t.is_alive(), "ingest blocked on the named pipe"
    assert "named pipe" in dict(result["report"].skipped)[str(fifo)]


# ----------------------------------------------------------------- item 8: short Pixel Data


def _short_pixels(ds: pydicom.Dataset, n: int) -> pydicom.Dataset:
    ds.PixelData = bytes(ds.PixelData[:n])  # a consistent element: the file is not cut
    return ds


@pytest.mark.parametrize("in_place", [False, True])
def test_pixel_data_shorter_than_the_image_attributes_imply_is_refused(backend, tmp_path, in_place):
    st = _study(n=3)
    folder = tmp_path / "in"
    ok = write(make_instance(st, st.series[0], 0), folder / "ok.dcm")
    short = write(_short_pixels(make_instance(st, st.series[0], 1), 100), folder / "short.dcm")
    multi = make_instance(st, st.series[0], 2)
    multi.NumberOfFrames = 2  # 2 frames of 8x8x16 bits = 256 bytes, 128 present
    write(multi, folder / "frames.dcm")
    zpath = folder / "a.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("m.dcm", to_bytes(_short_pixels(make_instance(st, st.series[0], 3), 64)))
    # the Pixel Data element declares more bytes than the file holds: a cut file
    cut = folder / "cut.dcm"
    cut.write_bytes(to_bytes(make_instance(st, st.series[0], 4))[:-10])

    report = Ingestor(in_place=in_place).ingest_paths([folder])

    skipped = dict(report.skipped)
    assert "holds 100 bytes" in skipped[str(short)] and "imply 128" in skipped[str(short)]
    assert "Frames 2" in skipped[str(folder / "frames.dcm")]
    assert "imply 256" in skipped[str(folder / "frames.dcm")]
    assert "holds 64 bytes" in skipped[f"{zpath}!m.dcm"]
    assert skipped[str(cut)].startswith("truncated")
    assert report.new == 1
    assert set(_stored()) == {pydicom.dcmread(ok).SOPInstanceUID}


def test_network_dataset_with_short_pixel_data_is_refused(backend):
    st = _study(n=1)
    ds = _short_pixels(make_instance(st, st.series[0], 0), 50)
    out = Ingestor().ingest_dataset(ds)
    assert out.status == "skipped" and "holds 50 bytes" in (out.reason or "")
    assert _stored() == {}


# ----------------------------------------------------------------- item 15: UIDs


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("StudyInstanceUID", "../../../x"),
        ("SeriesInstanceUID", ".."),
        ("SOPInstanceUID", "../../etc/passwd"),
        ("SOPInstanceUID", "1.2.03.4"),
        ("SOPClassUID", "CT Image Storage"),
    ],
)
def test_ingest_accepts_ps35_uids_only(backend, tmp_path, keyword, value):
    st = _study(n=1)
    ds = make_instance(st, st.series[0], 0)
    setattr(ds, keyword, value)
    if keyword in ("SOPInstanceUID", "SOPClassUID"):
        setattr(ds.file_meta, "MediaStorage" + keyword, value)
    path = tmp_path / "in" / "evil.dcm"
    path.parent.mkdir()
    path.write_bytes(to_bytes(ds))

    report = Ingestor().ingest_paths([path])

    assert report.new == 0
    reason = dict(report.skipped)[str(path)]
    assert keyword in reason and "PS3.5" in reason
    assert _stored() == {}
    home = Path(os.environ["ONCOHYBRID_HOME"])
    # nothing was written anywhere under the test folder but the input and the workspace
    for p in tmp_path.rglob("*"):
        assert p.is_relative_to(home) or p.is_relative_to(tmp_path / "in"), p


@pytest.mark.parametrize(
    "uid", ["..", ".", "../../x", "/etc/x", "a/../../b", "x" * 300, "\x00", "", " ..", "1/.."]
)
def test_store_paths_never_leave_the_store(tmp_path, uid):
    from oncohybrid.store.filestore import FileStore

    fs = FileStore(tmp_path / "store")
    path = fs.path_for(uid, uid, uid)
    assert path.resolve().is_relative_to((tmp_path / "store").resolve())
    assert len(path.relative_to(tmp_path / "store").parts) == 3


# ----------------------------------------------------------------- item 17


def test_control_characters_in_file_names_are_escaped_in_cli_output(backend, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    evil = folder / "evil\x1b[2J\x07\x9b\u202egpj.dcm"
    evil.write_text("not dicom")
    res = runner.invoke(app, ["ingest", str(folder)])
    assert res.exit_code == 0, res.output
    for ch in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert ch not in res.stdout
    assert "evil\\x1b[2J\\x07\\x9b\\u202egpj.dcm" in res.stdout
    # --json stays machine-readable and lossless
    res = runner.invoke(app, ["ingest", str(folder), "--json"])
    assert json.loads(res.stdout)["skipped"][0]["path"] == str(evil)


def test_file_cut_anywhere_after_the_preamble_is_reported_as_truncated(tmp_path):
    st = _study(n=1)
    data = to_bytes(make_instance(st, st.series[0], 0))
    import io

    from oncohybrid.services.ingest import SkipFile

    reasons = {}
    for cut in range(132, len(data)):
        with pytest.raises(SkipFile) as info:
            read_header(io.BytesIO(data[:cut]), cut)
        reasons[cut] = info.value.reason
    wrong = {c: r for c, r in reasons.items() if not r.startswith("truncated")}
    assert not wrong, list(wrong.items())[:5]


def test_file_missing_a_uid_in_the_middle_is_still_reported_as_missing(backend, tmp_path):
    st = _study(n=1)
    ds = make_instance(st, st.series[0], 0)
    del ds.SeriesInstanceUID
    path = write(ds, tmp_path / "in" / "noseries.dcm")
    report = Ingestor().ingest_paths([path])
    assert "SeriesInstanceUID missing" in dict(report.skipped)[str(path)]


# ----------------------------------------------------------------- item 18: db adopt


def _temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_db_adopt_removes_leftover_temporary_files(backend, tmp_path):
    build_cohort(tmp_path / "in", junk=False)
    Ingestor().ingest_paths([tmp_path / "in"])
    store = get_settings().store_dir
    some_dir = next(p.parent for p in store.rglob("*.dcm"))
    # left by a killed writer a moment ago (young: the old 1-hour rule kept them)
    for i in range(3):
        (some_dir / f".{i}.dcm.abc{i}.tmp").write_bytes(b"partial")
    res = runner.invoke(app, ["db", "adopt", "--json"])
    assert res.exit_code == 0, res.output
    assert _temp_files(store) == []


def test_db_adopt_that_fails_leaves_no_temporary_files(backend, tmp_path, monkeypatch):
    build_cohort(tmp_path / "in", junk=False)
    Ingestor().ingest_paths([tmp_path / "in"])
    store = get_settings().store_dir
    some_dir = next(p.parent for p in store.rglob("*.dcm"))
    (some_dir / ".x.dcm.abc.tmp").write_bytes(b"partial")
    from oncohybrid.errors import StoreError

    def broken(self, *a, **kw):
        (some_dir / ".y.dcm.def.tmp").write_bytes(b"partial")  # a write cut by the failure
        raise StoreError("database went away")

    monkeypatch.setattr(Ingestor, "_run", broken)
    res = runner.invoke(app, ["db", "adopt"])
    assert res.exit_code == 1
    assert _temp_files(store) == []


def test_temporary_file_of_a_write_in_progress_survives_a_sweep(tmp_path):
    from oncohybrid.store.filestore import FileStore

    fs = FileStore(tmp_path / "store")
    dest = fs.path_for("1.2", "1.2.3", "1.2.3.4")
    seen = {}

    def write_and_sweep(fh):
        fh.write(b"half")
        seen["removed"] = fs.sweep_temp()
        seen["temps"] = _temp_files(tmp_path / "store")

    fs.write_atomic(dest, write_and_sweep)
    assert seen["removed"] == 0 and len(seen["temps"]) == 1
    assert dest.read_bytes() == b"half"


# ----------------------------------------------------------------- CLI tables


def test_ls_tables_elide_long_uids_at_80_columns(backend, tmp_path):
    cohort = build_cohort(tmp_path / "in", junk=False)
    Ingestor().ingest_paths([tmp_path / "in"])
    env = {"COLUMNS": "80", "LINES": "50"}
    for level, key in (("studies", "study_uid"), ("series", "series_uid")):
        res = runner.invoke(app, ["ls", level], env=env)
        assert res.exit_code == 0
        lines = res.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80
        full = json.loads(runner.invoke(app, ["ls", level, "--json"]).stdout)
        for row in full:
            uid = row[key]
            assert len(uid) > 40  # the factory's UIDs are long
            assert uid not in res.stdout  # elided in the table ...
            # ... to one line holding its start and end
            assert sum(uid[:8] in line and uid[-6:] in line for line in lines) == 1, level
        # one line per row (no wrapping): header, rules and title aside
        n_rows = len(cohort.studies) if level == "studies" else 8
        assert len(lines) <= n_rows + 6, res.stdout


def test_ls_tables_escape_control_characters_from_headers(backend, tmp_path):
    st = StudySpec(
        "ESC\x1b[31m", "Evil\x1b]0;pwned\x07^Name\u202e", "20240101", [SeriesSpec("CT", 1)]
    )
    write(make_instance(st, st.series[0], 0), tmp_path / "in" / "a.dcm")
    assert Ingestor().ingest_paths([tmp_path / "in"]).new == 1
    for level in ("patients", "studies", "series"):
        res = runner.invoke(app, ["ls", level], env={"COLUMNS": "120"})
        assert res.exit_code == 0
        assert "\x1b" not in res.stdout and "\x07" not in res.stdout and "\u202e" not in res.stdout
        assert "ESC\\x1b[31m" in res.stdout
