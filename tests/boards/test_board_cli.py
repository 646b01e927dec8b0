"""``oncohybrid board …`` end to end on two assessed phantom patients: the command-line
contract, the pack PDF (rendered with Poppler, read back with pdftotext), the slides
(read back with python-pptx and as raw OOXML), pseudonymisation, decisions with
follow-up, minutes with attendance, unknown ids."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from oncohybrid.cli.main import app

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None
                                or shutil.which("pdftoppm") is None,
                                reason="Poppler (pdftotext, pdftoppm) not installed")

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, r.stderr


def ok_json(*args: str) -> dict:
    code, out, err = run(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True,
                          text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def render_pngs(path: Path, out: Path) -> list[Path]:
    out.mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "30", "-png", str(path), str(out / "p")], check=True)
    return sorted(out.glob("p-*.png"))


def expected_responses(settings, patient_id: str) -> dict[str, str]:
    """criterion → latest category code, read from the stored assessments directly."""
    from oncohybrid.services.record import latest_assessments

    out = {}
    for crit, a in latest_assessments(patient_id, settings).items():
        out[crit] = a["result"]["timepoints"][-1]["overall"]
    return out


def new_session(date: str = "2026-12-08", specialty: str = "haematology") -> int:
    board = ok_json("board", "create", "Lymphoma MDT", "--specialty", specialty,
                    "--weekday", "tuesday", "--member", "max:nuclear medicine",
                    "--member", "Dr Surgeon:surgery")
    assert set(board) == {"board_id"} and isinstance(board["board_id"], int)
    sess = ok_json("board", "session", str(board["board_id"]), "--date", date)
    assert set(sess) == {"session_id"} and isinstance(sess["session_id"], int)
    return sess["session_id"]


SPELLED = {"PR": "partial response", "PMR": "partial metabolic response",
           "SD": "stable disease", "CR": "complete response", "PD": "progressive disease",
           "CMR": "complete metabolic response", "PMD": "progressive metabolic disease",
           "SMD": "stable metabolic disease", "NMR": "no metabolic response"}


@pytest.mark.slow
def test_pack_pdf_and_slides_carry_each_case_response(in_ws, tmp_path):
    from pptx import Presentation

    sid = new_session()
    p1, p2 = in_ws.patient_ids
    for pid, q in ((p1, "End of treatment: consolidate?"), (p2, "Interim: escalate?")):
        code, out, err = run("board", "add", str(sid), pid, "--question", q)
        assert code == 0, err
    pack = ok_json("board", "pack", str(sid), "--pdf", str(tmp_path / "pack.pdf"),
                   "--pptx", str(tmp_path / "pack.pptx"))
    assert pack["cases"] == 2
    # Pages: the JSON count equals Poppler's, and every page renders to an image.
    pages = pdf_pages(tmp_path / "pack.pdf")
    assert pack["pages"] == pages >= 1 + 2 * 3  # agenda + (sheet + report ≥ 2 pages) × 2
    pngs = render_pngs(tmp_path / "pack.pdf", tmp_path / "png")
    assert len(pngs) == pages
    from PIL import Image

    with Image.open(pngs[1]) as im:  # the first case sheet is not blank
        assert im.convert("L").getextrema()[0] < 100
    text = pdf_text(tmp_path / "pack.pdf")
    agenda, case1, case2 = re.split(r"Case [12] of 2", text, maxsplit=2)
    assert "Agenda" in agenda and "08:00–08:10" in agenda and "08:10–08:20" in agenda
    for pid, section in ((p1, case1), (p2, case2)):
        assert pid in section
        expected = expected_responses(in_ws.settings, pid)
        assert expected, "the phantom patients are assessed"
        for code in expected.values():
            # the engine's code beside its spelled-out form
            assert re.search(rf"\b{re.escape(code)} — {SPELLED[code]}", section), (pid, code)
    assert "End of treatment: consolidate?" in case1 and "Interim: escalate?" in case2
    # The case sections hold the existing tumour-board report.
    assert text.count("PET/CT response report for the tumour board") == 2
    # Agenda page numbers point at the case sheets, and the agenda prints them.
    assert pack["case_pages"][0] == 2
    for k, page_no in enumerate(pack["case_pages"], start=1):
        one = subprocess.run(["pdftotext", "-f", str(page_no), "-l", str(page_no),
                              str(tmp_path / "pack.pdf"), "-"], check=True,
                             capture_output=True, text=True).stdout
        assert f"Case {k} of 2" in one
    rows = [ln.split() for ln in agenda.splitlines() if re.match(r"\s*[12]\s+08:", ln)]
    assert [r[-1] for r in rows] == [str(p) for p in pack["case_pages"]]
    # Slides: title + three per case, each case's slides carry its responses.
    prs = Presentation(str(tmp_path / "pack.pptx"))
    assert pack["slides"] == len(prs.slides) == 1 + 3 * 2
    slides = ["\n".join(sh.text_frame.text for sh in s.shapes if sh.has_text_frame)
              + "\n".join(c.text for sh in s.shapes if sh.has_table
                          for row in sh.table.rows for c in row.cells)
              for s in prs.slides]
    assert "Lymphoma MDT" in slides[0] and "2 case(s)" in slides[0]
    for k, pid in enumerate((p1, p2)):
        expected = expected_responses(in_ws.settings, pid)
        for slide in slides[1 + 3 * k: 4 + 3 * k]:
            assert pid in slide
            for code in expected.values():
                assert f"{code} — {SPELLED[code]}" in slide
    # Key images and trend plot are pictures on the case's 2nd and 3rd slides.
    pics = [sum(1 for sh in s.shapes if sh.shape_type == 13) for s in prs.slides]
    assert pics[2] == 2 and pics[3] == 1 and pics[5] == 2 and pics[6] == 1


def test_pseudonymised_pack_and_slides_hold_no_name_or_id(in_ws, tmp_path):
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient

    sid = new_session("2026-12-15")
    p1, p2 = in_ws.patient_ids
    run("board", "add", str(sid), p1, "--question", f"Patient {p1} (Phantom): restage?")
    run("board", "add", str(sid), p2)
    out = ok_json("board", "pack", str(sid), "--pdf", str(tmp_path / "ps.pdf"), "--pptx",
                  str(tmp_path / "ps.pptx"), "--pseudonymise")
    assert out["pseudonymised"] is True
    from oncohybrid.store.models import Study

    with session_scope(in_ws.settings) as s:
        rows = [(p.patient_id, p.patient_name, p.patient_birth_date)
                for p in s.query(Patient).filter(Patient.patient_id.in_([p1, p2]))]
        # the patients' calendar dates (visits) must not show either
        study_dates = {st.study_date for st in s.query(Study).join(
            Patient, Patient.id == Study.patient_pk).filter(Patient.patient_id.in_([p1, p2]))}
    forbidden = {d.isoformat() for d in study_dates} | {d.strftime("%Y%m%d")
                                                       for d in study_dates}
    assert len(study_dates) == 4
    for pid, name, birth in rows:
        forbidden |= {pid, birth.isoformat(), birth.strftime("%Y%m%d")}
        forbidden |= {w for w in re.split(r"[\^ ]", name) if len(w) > 1}
    with zipfile.ZipFile(tmp_path / "ps.pptx") as z:
        xml = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist()
                        if n.endswith((".xml", ".rels")))
    text = pdf_text(tmp_path / "ps.pdf")
    for word in forbidden:
        assert word.lower() not in xml.lower(), word
        assert word.lower() not in text.lower(), word
    assert len(set(re.findall(r"PSN-[0-9A-F]{10}", xml))) == 2
    assert "[removed]" in xml  # the question's identifiers were taken out
    # responses are still there for the scientific presentation
    for code in expected_responses(in_ws.settings, p1).values():
        assert f"{code} — {SPELLED[code]}" in xml
    # Rendered by LibreOffice (Debian libreoffice-impress, installed by
    # scripts/install-system-deps.sh): one page per slide, text as written.
    soffice = shutil.which("soffice")
    if soffice is None:
        pytest.skip("LibreOffice not installed: slides checked by python-pptx read-back only")
    subprocess.run([soffice, "--headless", "--norestore",
                    f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}",
                    "--convert-to", "pdf", "--outdir", str(tmp_path / "lo"),
                    str(tmp_path / "ps.pptx")], check=True, capture_output=True, timeout=180)
    rendered = tmp_path / "lo" / "ps.pdf"
    assert pdf_pages(rendered) == out["slides"] == 1 + 3 * 2
    assert len(render_pngs(rendered, tmp_path / "lo-png")) == out["slides"]
    slide_text = pdf_text(rendered)
    assert len(set(re.findall(r"PSN-[0-9A-F]{10}", slide_text))) == 2
    for word in forbidden:
        assert word.lower() not in slide_text.lower(), word


def test_unknown_ids_exit_2_naming_the_id_and_write_nothing(in_ws, tmp_path):
    sid = new_session("2026-12-22")
    pid = in_ws.patient_ids[0]
    cases = [
        (["board", "session", "987654", "--date", "2026-12-01"], "987654"),
        (["board", "add", "987654", pid], "987654"),
        (["board", "add", str(sid), "NO-SUCH-PATIENT"], "NO-SUCH-PATIENT"),
        (["board", "decide", "987654", pid, "--decision", "x"], "987654"),
        (["board", "decide", str(sid), "NO-SUCH-PATIENT", "--decision", "x"],
         "NO-SUCH-PATIENT"),
        (["board", "decide", str(sid), pid, "--decision", "x"], pid),  # not on the agenda
        (["board", "pack", "987654", "--pdf", str(tmp_path / "a.pdf"), "--pptx",
          str(tmp_path / "a.pptx")], "987654"),
        (["board", "minutes", "987654", "--pdf", str(tmp_path / "m.pdf")], "987654"),
        (["board", "session", "abc", "--date", "2026-12-01"], "abc"),
        (["board", "session", "1", "--date", "2026-13-01"], "2026-13-01"),
    ]
    for args, named in cases:
        code, out, err = run(*args, "--json")
        assert code == 2, (args, out, err)
        assert out == "", args
        assert named in err, (args, err)
    assert list(tmp_path.iterdir()) == []
    # nothing was added to the session either
    detail = ok_json("board", "show", str(sid))
    assert detail["cases"] == []
    code, _out, err = run("board", "decide", str(sid), pid, "--decision", "x",
                          "--follow-up-days", "-3")
    assert code == 2


def test_decision_follow_up_in_worklist_record_and_audit(in_ws):
    from oncohybrid.services import audit, boards
    from oncohybrid.store.db import session_scope
    from oncohybrid.store.models import Patient

    sid = new_session("2026-12-29")
    pid = in_ws.patient_ids[1]
    run("board", "add", str(sid), pid, "--question", "restage")
    out = ok_json("board", "decide", str(sid), pid, "--decision", "Radiotherapy to residual",
                  "--follow-up-days", "84", "--follow-up-exam", "FDG PET/CT",
                  "--rationale", "PMR with residual uptake", "--dissent", "surgery preferred",
                  "--no-consensus")
    # 2026-12-29 + 84 days: 2 days of December, 31 of January, 28 of February → 23 March
    assert out["follow_up_due"] == "2027-03-23"
    assert out["follow_up_due"] == (dt.date(2026, 12, 29) + dt.timedelta(days=84)).isoformat()
    with session_scope(in_ws.settings) as s:
        pk = s.query(Patient).filter(Patient.patient_id == pid).one().id
    badges = boards.follow_up_badges(in_ws.settings, [pk])
    assert badges == {pk: ["board follow-up: FDG PET/CT due 2027-03-23"]}
    hist = boards.patient_history(in_ws.settings, pk)
    mine = next(h for h in hist if h["session_id"] == sid)
    assert mine["decision"]["dissent"] == "surgery preferred"
    assert mine["decision"]["consensus"] is False
    notes = boards.patient_notes(in_ws.settings, pk)
    assert any("FDG PET/CT" in n and "2027-03-23" in n for n in notes)
    entries = audit.list_entries(in_ws.settings, action="board.decision", limit=5)
    assert entries and entries[0]["target"].startswith("board-case:")
    assert pid not in json.dumps(entries)  # no PHI in the audit log
    # follow-up across sessions: listed until done
    fus = ok_json("board", "follow-ups")["follow_ups"]
    mine_fu = [f for f in fus if f["session_id"] == sid]
    assert [(f["patient_id"], f["exam"], f["due"], f["state"]) for f in mine_fu] == [
        (pid, "FDG PET/CT", "2027-03-23", "planned" if dt.date.today() < dt.date(2027, 3, 9)
         else "due" if dt.date.today() <= dt.date(2027, 3, 23) else "overdue")]
    # marking the follow-up done clears it; an unknown decision id exits 2
    code, _o, err = run("board", "follow-up-done", "987654")
    assert code == 2 and "987654" in err
    assert ok_json("board", "follow-up-done", str(out["decision_id"]))["follow_up_done"]
    assert boards.follow_up_badges(in_ws.settings, [pk]).get(pk) is None
    code, _o, err = run("board", "follow-up-done", str(out["decision_id"]))
    assert code == 2 and "no open follow-up" in err
    # a second decision (here with a new follow-up, then without) replaces the first
    ok_json("board", "decide", str(sid), pid, "--decision", "PET in 6 weeks",
            "--follow-up-days", "42")
    assert boards.follow_up_badges(in_ws.settings, [pk]) == {
        pk: ["board follow-up: imaging due 2027-02-09"]}
    again = ok_json("board", "decide", str(sid), pid, "--decision", "Observe")
    assert again["replaced"] is True and again["follow_up_due"] is None
    assert boards.follow_up_badges(in_ws.settings, [pk]).get(pk) is None


def test_minutes_list_attendance_and_decisions(in_ws, tmp_path):
    sid = new_session("2027-01-05")
    p1 = in_ws.patient_ids[0]
    run("board", "add", str(sid), p1, "--question", "consolidation?")
    for name, spec in (("max", "nuclear medicine"), ("fred", "radiology"),
                       ("Dr A. Oncologist", "medical oncology")):
        code, _o, err = run("board", "attend", str(sid), name, "--specialty", spec)
        assert code == 0, err
    ok_json("board", "decide", str(sid), p1, "--decision", "Consolidative radiotherapy",
            "--follow-up-days", "90")
    closed = ok_json("board", "close", str(sid))
    assert closed == {"session_id": sid, "cases": 1, "decided": 1, "undecided_case_ids": []}
    out = ok_json("board", "minutes", str(sid), "--pdf", str(tmp_path / "minutes.pdf"))
    assert out["attendees"] == 3
    text = pdf_text(tmp_path / "minutes.pdf")
    for word in ("max", "fred", "Dr A. Oncologist", "nuclear medicine", "radiology",
                 "medical oncology", "Consolidative radiotherapy", "2027-04-05",
                 "Attendance (3)", "surgery"):
        assert word in text, word  # surgery: the board specialty that was absent
    # a closed session takes no further decision
    code, out_s, err = run("board", "decide", str(sid), p1, "--decision", "x")
    assert code == 2 and "closed" in err and out_s == ""


def test_logbook_entries_for_attendance_and_presented_cases(in_ws):
    from oncohybrid.services.boards import logbook_entries

    sid = new_session("2027-01-12")
    p1 = in_ws.patient_ids[0]
    run("board", "add", str(sid), p1, "--by", "fred")
    run("board", "attend", str(sid), "fred", "--specialty", "radiology")
    run("board", "decide", str(sid), p1, "--decision", "Observe")
    entries = logbook_entries(in_ws.settings, "fred", dt.date(2027, 1, 12),
                              dt.date(2027, 1, 12))
    assert {e["category"] for e in entries} == {"board-attended", "board-case-presented"}
    for e in entries:
        assert set(e) == {"date", "source", "category", "title", "detail", "score"}
        assert e["source"] == "boards" and e["date"] == "2027-01-12"
        assert p1 not in json.dumps(e)
    assert logbook_entries(in_ws.settings, "fred", dt.date(2027, 1, 13),
                           dt.date(2027, 2, 1)) == []


def test_schedule_creates_the_weekly_sessions(in_ws):
    import calendar

    board = ok_json("board", "create", "GI MDT", "--specialty", "GI", "--weekday", "thu")
    out = ok_json("board", "schedule", str(board["board_id"]), "--from", "2027-02-01",
                  "--to", "2027-02-28")
    thursdays = [f"2027-02-{d:02d}" for d in range(1, 29)
                 if calendar.weekday(2027, 2, d) == calendar.THURSDAY]
    assert [x["date"] for x in out["sessions"]] == thursdays
    again = ok_json("board", "schedule", str(board["board_id"]), "--from", "2027-02-01",
                    "--to", "2027-02-28")
    assert again["sessions"] == []
