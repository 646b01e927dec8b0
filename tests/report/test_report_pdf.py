"""Tumour-board PDF: content, pseudonymisation, meeting pack (phantom + response engine)."""

from __future__ import annotations

import re
import subprocess

import pytest
from report_tools import pdf_pages, pdf_text, save_pngs, squash

from oncohybrid.report.pdf import FOOTER_TEXT, render_meeting_pack, render_patient_report

DPI = 60  # low resolution keeps the suite fast; layout is resolution-independent


@pytest.fixture(scope="module")
def pdf_p0(data_p0, tmp_path_factory):
    return render_patient_report(data_p0, tmp_path_factory.mktemp("pdf") / "p0.pdf", dpi=DPI)


def test_report_shows_the_rule_trace_numbers_and_footer_on_every_page(data_p0, pdf_p0):
    pdf = pdf_p0
    pngs = save_pngs(pdf, "patient-report")
    n = pdf_pages(pdf)
    assert len(pngs) == n >= 2
    text = squash(pdf_text(pdf))
    # Every line of every criterion's rule trace is printed verbatim.
    for key, assessment in data_p0.assessments.items():
        for tp in assessment["timepoints"]:
            for line in tp["trace"]:
                assert squash(line) in text, (key, line)
        assert f"best overall response: {assessment['best_overall_response']}" in text
    # Numbers of the lesion table: baseline long axis of each target, one decimal.
    for les in data_p0.lesions:
        m = les.measurements["TP0"]
        assert f"{m.ld_mm:.1f}" in text, les.lesion_id
    recist_now = data_p0.assessments["recist1.1"]["timepoints"][-1]
    assert f"sum {recist_now['sum_mm']} mm" in text
    # Identity, reader, date, header and footer with page numbers.
    assert "PHANTOM, PH3-001" in text and "Dr A. Reader" in text and "2025-01-15" in text
    assert text.count(squash(FOOTER_TEXT)) == n
    for k in range(1, n + 1):
        assert f"page {k} of {n}" in text
    for heading in ("PET maximum-intensity projections", "key fused PET/CT slices",
                    "Lesions", "Cohort and lesion trajectories", "Sign-off"):
        assert heading in text


def test_pseudonymised_report_has_no_name_id_birth_date_accession_or_dates(data_p0, tmp_path):
    anon = data_p0.pseudonymised(b"k" * 32)
    pdf = render_patient_report(anon, tmp_path / "anon.pdf", dpi=DPI)
    save_pngs(pdf, "patient-report-pseudonymised")
    raw = pdf_text(pdf)
    text = squash(raw)
    ident = data_p0.identity
    for secret in (ident.patient_id, "Phantom", "PHANTOM", ident.birth_date.isoformat(),
                   *(tp.accession_number for tp in data_p0.timepoints),
                   *(tp.date.isoformat() for tp in data_p0.timepoints)):
        assert secret not in text, secret
    assert re.search(r"PSN-[0-9A-F]{10}", text)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    assert ident.patient_id not in info and "PSN-" in info  # document metadata too
    assert "day 0" in text and f"day {data_p0.day_offset(data_p0.current)}" in text
    # The same key gives the same pseudonym; another key another one.
    assert anon.identity.patient_id == data_p0.pseudonymised(b"k" * 32).identity.patient_id
    assert anon.identity.patient_id != data_p0.pseudonymised(b"j" * 32).identity.patient_id
    # The rule trace survives (with dates replaced).
    line = anon.assessments["recist1.1"]["timepoints"][-1]["trace"][0]
    assert squash(line) in text


def test_meeting_pack_has_a_cover_and_each_patient_section(data_p0, data_p1, pdf_p0, tmp_path):
    one = pdf_pages(pdf_p0)
    two = pdf_pages(render_patient_report(data_p1, tmp_path / "b.pdf", dpi=DPI))
    pack = render_meeting_pack([data_p0, data_p1], tmp_path / "pack.pdf", title="Thoracic board",
                               meeting_date="2025-01-20", dpi=DPI)
    save_pngs(pack, "meeting-pack")
    assert pdf_pages(pack) == 1 + one + two
    cover = page_text(pack, 1)
    assert "Thoracic board" in cover and "Agenda" in cover
    # The agenda row of each patient ends with the first page of the patient's section.
    starts = {"PH3-001": 2, "PH3-002": 2 + one}
    for pid, first in starts.items():
        row = next(line for line in cover.splitlines() if pid in line)
        assert row.split()[-1] == str(first), row
        assert f"PHANTOM, {pid}" in page_text(pack, first)
        assert "PET/CT response report" in page_text(pack, first)


def page_text(pdf, page: int) -> str:
    return subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf),
                           "-"], check=True, capture_output=True, text=True).stdout


def test_views_are_radiological_whatever_the_slice_order():
    """A focus at the patient's left-head lands right-top in the coronal MIP, for
    feet-first (z ascending) and head-first (z descending) slice stacks alike."""
    import numpy as np

    from oncohybrid.report.plots import _oriented

    arr = np.zeros((10, 8, 6), dtype=np.float32)  # (slice z, row y, column x)
    arr[8, 3, 5] = 1.0  # top slice (highest z when ascending), largest x = patient left
    for z_step in (2.0, -2.0):
        affine = np.array([[0, 0, 1.5, -4], [0, 1.5, 0, -5], [z_step, 0, 0, 100], [0, 0, 0, 1]])
        out, origin, spacing = _oriented(arr, affine)
        mip = out.max(axis=1)  # (x, z) as drawn with origin="lower": x → right, z → up
        x, z = np.unravel_index(np.argmax(mip), mip.shape)
        assert x == 5  # rightmost column: viewer's right = patient's left
        expected_z = 8 if z_step > 0 else 1  # descending stacks are flipped to ascending
        assert z == expected_z
        assert np.allclose(spacing, [1.5, 1.5, 2.0])
        assert origin[2] == (100 if z_step > 0 else 100 + z_step * 9)


def test_non_latin_names_are_printed_with_embedded_unicode_fonts(data_p0, tmp_path):
    """'Zoë 山田' once printed as 'Zoë □□': DejaVu has no CJK glyphs, so those runs use
    the CJK fallback font; both are embedded (pdffonts) and the text extracts."""
    import dataclasses
    import shutil

    if not (shutil.which("pdftotext") and shutil.which("pdffonts")):
        pytest.skip("poppler-utils (pdftotext, pdffonts) is not installed")
    from pathlib import Path

    cjk = ["/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
           "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"]
    if not any(Path(f).is_file() for f in cjk):
        pytest.fail(f"no CJK TrueType font ({cjk}): run scripts/install-system-deps.sh")
    ident = dataclasses.replace(data_p0.identity, name="山田^Zoë Ἀθηνᾶ Σмирнова")
    data = dataclasses.replace(data_p0, identity=ident, reader="Dr 李 Reader")
    out = render_patient_report(data, tmp_path / "unicode.pdf", dpi=DPI)
    text = pdf_text(out)
    n = pdf_pages(out)
    assert "山田, Zoë Ἀθηνᾶ Σмирнова" in text
    assert "Dr 李 Reader" in text
    assert "\ufffd" not in text and "□" not in text
    # The running header (drawn on the canvas) carries the name on every page.
    assert text.count("山田") >= n + 1
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    names = {line.split()[0].split("+")[-1]: line for line in fonts}
    fallback = {"DroidSansFallback", "WenQuanYiZenHei", "AR-PL-UMing-CN", "ARPLUMingCN"}
    assert "DejaVuSans" in names and fallback & set(names), fonts
    # emb and sub columns: embedded subsets, not references to fonts on the reader's PC
    # (ReportLab always lists an unused Helvetica resource; no text is set in it).
    for name, line in names.items():
        if name != "Helvetica":
            assert re.search(r"\byes\s+yes\b", line), line
