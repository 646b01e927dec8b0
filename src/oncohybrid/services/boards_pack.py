"""Use-case: a board session's meeting pack (PDF), slides (PPTX) and minutes (PDF).

The pack is one PDF: the session's agenda (time per case, question, latest response per
criterion, start page), then per case a case sheet (question, preparation checklist,
latest response per criterion as the engine's code beside its spelled-out form, earlier
board decisions) followed by the patient's existing tumour-board report pages (the
story, figures and page furniture of :mod:`oncohybrid.report.pdf`, reused, not copied).

The slides (python-pptx, 16:9) hold a title slide and per case three slides: the case
(question, response table, previous decision), the key images (PET coronal MIPs baseline
vs current, fused PET/CT slice through the first target lesion: the same figures as the
report) and the trend (spider plot of the target lesions) with the lesion table. Every
case slide carries the latest response per criterion as text in its footer.

``pseudonymise`` applies :meth:`~oncohybrid.report.data.PatientReportData.pseudonymised`
(keyed-hash pseudonym, no name, ID, birth date, accession numbers, calendar dates of the
patient) and removes the patient's name parts and ID from the free texts (question,
decisions) as well; the session's own date stays.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, OncohybridError
from oncohybrid.services import audit
from oncohybrid.services import boards as board_service

__all__ = ["write_pack", "write_minutes", "CaseMaterial"]

#: Slide size 16:9 (13.333 × 7.5 in), the projector's aspect.
SLIDE_W_IN, SLIDE_H_IN = 13.333, 7.5
#: Slides per case: case, key images, trend.
SLIDES_PER_CASE = 3


@dataclass
class CaseMaterial:
    """What one case's section and slides show."""

    case: dict[str, Any]
    label: str
    data: Any | None  # PatientReportData, None without imaging
    figures: Any | None
    note: str | None
    question: str | None
    responses: list[dict[str, Any]]
    previous: list[dict[str, Any]]
    decision: dict[str, Any] | None


# --------------------------------------------------------------------------------------
# gathering
# --------------------------------------------------------------------------------------


def _scrubber(patient_id: str | None, name: str | None) -> Callable[[str | None], str | None]:
    """Remove the patient's ID and name parts (≥ 2 letters) from a free text."""
    words = [w for w in re.split(r"[\^\s,]+", name or "") if len(w) >= 2]
    if patient_id:
        words.append(patient_id)
    if not words:
        return lambda t: t
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)),
                         re.IGNORECASE)
    return lambda t: None if t is None else pattern.sub("[removed]", t)


def _days_text(data: Any, iso: str | None) -> str:
    """A response date as the report shows it (``day N`` once pseudonymised)."""
    if iso is None:
        return "—"
    if data is None or not data.identity.pseudonymised:
        return iso
    tp = next((t for t in data.timepoints if t.date and t.date.isoformat() == iso), None)
    return data.date_text(tp) if tp is not None else "—"


_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _days_since(text: str, baseline: dt.date | None) -> str:
    """ISO dates in ``text`` as ``day N`` from ``baseline`` (``[date removed]`` without)."""

    def repl(m: re.Match[str]) -> str:
        try:
            d = dt.date.fromisoformat(m.group(0))
        except ValueError:
            return "[date removed]"
        return "[date removed]" if baseline is None else f"day {(d - baseline).days}"

    return _ISO_DATE.sub(repl, text)


def _gather(settings: Settings, detail: dict[str, Any], *, pseudonymise: bool, dpi: int,
            progress: Callable[[str], None] | None) -> list[CaseMaterial]:
    from oncohybrid.report import pdf as report_pdf
    from oncohybrid.services import report as report_service

    key = report_service.pseudonym_key(settings) if pseudonymise else None
    session_date = dt.date.fromisoformat(detail["date"])
    out: list[CaseMaterial] = []
    for k, c in enumerate(detail["cases"], start=1):
        if progress:
            progress(f"case {k}/{len(detail['cases'])}")
        data = figs = note = None
        try:
            data = report_service.load_report_data(c["patient_pk"], settings)
        except InputError as exc:  # no PET or CT study: the sheet says so
            note = str(exc)
        scrub = (_scrubber(c["patient_id"], c["patient_name"]) if pseudonymise
                 else (lambda t: t))
        if data is not None:
            if key is not None:
                data = data.pseudonymised(key)
            figs = report_pdf._render_figures(data, dpi, 4)
            label = report_pdf.patient_label(data)
        elif key is not None:
            from oncohybrid.report.data import pseudonym

            label = pseudonym(c["patient_id"] or str(c["patient_pk"]), key)
        else:
            label = c["patient_id"] or f"#{c['patient_pk']}"
        if note and pseudonymise:
            note = scrub(note)
        responses = [{**r, "when": _days_text(data, r["date"])} for r in c["responses"]]
        previous = []
        for p in c["previous"]:
            when = p["date"]
            if pseudonymise:
                days = (session_date - dt.date.fromisoformat(p["date"])).days
                when = f"{days} days before this meeting"
            previous.append({**p, "when": when, "recommendation": scrub(p["recommendation"]),
                             "rationale": scrub(p["rationale"]), "dissent": scrub(p["dissent"])})
        decision = c["decision"]
        if decision and pseudonymise:
            decision = {**decision, "recommendation": scrub(decision["recommendation"]),
                        "rationale": scrub(decision["rationale"]),
                        "dissent": scrub(decision["dissent"])}
        if pseudonymise:  # checklist notes name visit dates: days since baseline
            base = data.baseline.date if data is not None else None
            c = {**c, "checklist": [{**i, "note": _days_since(i["note"], base)}
                                    for i in c["checklist"]]}
        out.append(CaseMaterial(case=c, label=label, data=data, figures=figs, note=note,
                                question=scrub(c["question"]), responses=responses,
                                previous=previous, decision=decision))
    return out


def _response_line(m: CaseMaterial) -> str:
    """``RECIST 1.1: PR — partial response; PERCIST 1.0: PMR — …`` (or why none)."""
    if not m.responses:
        return "Response: not assessed (no stored assessment)"
    return "; ".join(f"{r['name']}: {r['text']}" for r in m.responses)


def _atomic_write(path: Path, data: bytes) -> Path:
    """Write through a temporary file in the target folder, so that a failure leaves
    nothing (or the previous file) behind."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise OncohybridError(f"cannot write {path}: {exc}") from exc
    return path


def _check_target(path: str | os.PathLike[str], suffix: str, option: str) -> Path:
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise InputError(f"{option} {p}: expected a {suffix} file name")
    if p.exists() and p.is_dir():
        raise InputError(f"{option} {p}: is a folder")
    return p


# --------------------------------------------------------------------------------------
# the pack PDF
# --------------------------------------------------------------------------------------


def _case_sheet(m: CaseMaterial, k: int, n: int, st: dict[str, Any]) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    from oncohybrid.report import pdf as rp

    c = m.case
    w = rp._BODY_W
    p, b = st["cell"], st["cellb"]
    story: list[Any] = [
        Paragraph(f"Case {k} of {n} · {c['start']}–{c['end']} · {rp._esc(m.label)}",
                  st["title"]),
        Paragraph("<b>Clinical question:</b> " + rp._esc(m.question or "none given"),
                  st["base"]),
        Spacer(1, 2),
        Paragraph("Latest response per criterion", st["h2"]),
    ]
    if m.responses:
        rows: list[list[Any]] = [["Criterion", "Latest category (engine code — meaning)",
                                  "At", "Best overall response"]]
        for r in m.responses:
            rows.append([Paragraph(rp._esc(r["name"]), b),
                         Paragraph(f"<b>{rp._esc(r['text'])}</b>", p),
                         Paragraph(rp._esc(r["when"]), p),
                         Paragraph(rp._esc(r["best_text"]), p)])
        story.append(rp._table(rows, [0.18 * w, 0.42 * w, 0.12 * w, 0.28 * w]))
    else:
        story.append(Paragraph("Not assessed: no stored response assessment.", st["base"]))
    story.append(Paragraph("Preparation checklist", st["h2"]))
    rows = [["Item", "State", "Note"]]
    for item in c["checklist"]:
        rows.append([item["label"], item["state"], Paragraph(rp._esc(item["note"]), p)])
    story.append(rp._table(rows, [0.3 * w, 0.1 * w, 0.6 * w]))
    story.append(Paragraph("Earlier board decisions", st["h2"]))
    if m.previous:
        rows = [["When", "Board", "Recommendation", "Follow-up"]]
        for d in m.previous:
            fu = f"{d['follow_up_exam']} due {d['follow_up_due']}" if d["follow_up_due"] else "—"
            if m.data is not None and m.data.identity.pseudonymised:
                fu = d["follow_up_exam"] or "—"
            rows.append([Paragraph(rp._esc(d["when"]), p), Paragraph(rp._esc(d["board"]), p),
                         Paragraph(rp._esc(d["recommendation"]), p), Paragraph(rp._esc(fu), p)])
        story.append(rp._table(rows, [0.2 * w, 0.18 * w, 0.44 * w, 0.18 * w]))
    else:
        story.append(Paragraph("None: first discussion of this patient.", st["base"]))
    if m.decision:
        d = m.decision
        story += [Paragraph("Decision of this meeting", st["h2"]),
                  Paragraph(rp._esc(d["recommendation"]) + ("" if d["consensus"]
                                                             else " (no consensus)"),
                            st["base"])]
    if m.note:
        story.append(Paragraph("No images: " + rp._esc(m.note), st["base"]))
    story.append(Spacer(1, 8))
    return story


def _agenda(detail: dict[str, Any], mats: list[CaseMaterial], st: dict[str, Any],
            pages: dict[str, int], *, pseudonymised: bool) -> list[Any]:
    from reportlab.platypus import Paragraph, Spacer

    from oncohybrid.report import pdf as rp

    b = detail["board"]
    p = st["cell"]
    w = rp._BODY_W
    rows: list[list[Any]] = [["#", "Time", "Patient", "Question", "Latest response", "Page"]]
    for k, m in enumerate(mats, start=1):
        resp = "<br/>".join(f"{rp._esc(r['name'])}: <b>{rp._esc(r['text'])}</b>"
                            for r in m.responses) or "not assessed"
        rows.append([str(k), f"{m.case['start']}–{m.case['end']}",
                     Paragraph(rp._esc(m.label), p),
                     Paragraph(rp._esc(m.question or "—"), p), Paragraph(resp, p),
                     str(pages.get(f"c{k}", ""))])
    total = sum(m.case["minutes"] for m in mats)
    members = ", ".join(sorted({x["specialty"] for x in detail["members"]})) or "—"
    return [
        Spacer(1, 12),
        Paragraph(rp._esc(f"{b['name']} — tumour board"), st["title"]),
        Paragraph(rp._esc(f"{b['specialty']} · {detail['date']} · start {detail['start_time']}"
                          f" · {len(mats)} case(s), {total} min"
                          + (" · pseudonymised" if pseudonymised else "")), st["subtitle"]),
        Paragraph("Agenda", st["h2"]),
        rp._table(rows, [0.04 * w, 0.12 * w, 0.2 * w, 0.26 * w, 0.32 * w, 0.06 * w],
                  extra=[("ALIGN", (-1, 1), (-1, -1), "RIGHT")]),
        Spacer(1, 6),
        Paragraph(f"Specialties of the board's members: {rp._esc(members)}.", st["base"]),
        Paragraph("Each case holds its sheet (question, preparation, latest response per "
                  "criterion with the engine's code, earlier decisions) and the patient's "
                  "tumour-board report. Categories are computed by the oncohybrid response "
                  "engine and must be confirmed by the reading physician.", st["small"]),
    ]


def _render_pack_pdf(detail: dict[str, Any], mats: list[CaseMaterial], *,
                     pseudonymised: bool, agenda: bool = True, first: int = 1,
                     total: int | None = None) -> tuple[bytes, dict[str, int]]:
    """The pack (agenda + case sections); without ``agenda`` the case sections alone,
    numbered from ``first`` of ``total`` (one case's section for the PACS)."""
    from reportlab.platypus import PageBreak

    from oncohybrid.report import pdf as rp

    rp._register_fonts()
    st = rp._styles()
    title = f"{detail['board']['name']} {detail['date']}"
    pages: dict[str, int] = {}
    buf = io.BytesIO()
    for _pass in range(3):  # pass 1 finds the start pages, pass 2 prints them
        buf = io.BytesIO()
        doc = rp._doc(buf, title, "Tumour-board meeting pack")
        story: list[Any] = []
        if agenda:
            story += [rp._SetHeader("meeting agenda"),
                      *_agenda(detail, mats, st, pages, pseudonymised=pseudonymised)]
        found: dict[str, int] = {}
        for k, m in enumerate(mats, start=first):
            if story:
                story.append(PageBreak())
            story.append(rp._SetHeader(m.label, bookmark=f"c{k}", outline=f"{k}. {m.label}",
                                       pages=found))
            story += _case_sheet(m, k, total or len(mats), st)
            if m.data is not None and m.figures is not None:
                story += rp._patient_story(m.data, m.figures, st, bookmark=f"r{k}")
        doc.build(story, canvasmaker=rp._NumberedCanvas)
        if found == pages or not agenda:
            break
        pages = found
    return buf.getvalue(), pages


# --------------------------------------------------------------------------------------
# the slides
# --------------------------------------------------------------------------------------


def _pptx_bytes(detail: dict[str, Any], mats: list[CaseMaterial], *, pseudonymised: bool
                ) -> tuple[bytes, int]:
    from pptx import Presentation
    from pptx.dml.color import RGBColor
    from pptx.util import Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(SLIDE_W_IN), Inches(SLIDE_H_IN)
    b = detail["board"]
    props = prs.core_properties
    props.title = f"{b['name']} tumour board {detail['date']}"
    props.author = "oncohybrid"
    props.last_modified_by = "oncohybrid"
    props.subject = "Tumour-board slides" + (" (pseudonymised)" if pseudonymised else "")
    props.comments = ""
    props.keywords = ""
    blank = prs.slide_layouts[6]
    ink = RGBColor(0x10, 0x10, 0x10)
    accent = RGBColor(0x1F, 0x3A, 0x5F)

    def text(slide: Any, x: float, y: float, w: float, h: float, lines: list[str], *,
             size: int = 20, bold_first: bool = False, colour: Any = ink) -> None:
        tf = slide.shapes.add_textbox(Inches(x), Inches(y), Inches(w), Inches(h)).text_frame
        tf.word_wrap = True
        for i, line in enumerate(lines):
            par = tf.paragraphs[0] if i == 0 else tf.add_paragraph()
            run = par.add_run()
            run.text = line
            run.font.size = Pt(size)
            run.font.color.rgb = colour
            run.font.bold = bold_first and i == 0

    def picture(slide: Any, png: bytes, x: float, y: float, w: float, h: float) -> None:
        from PIL import Image

        with Image.open(io.BytesIO(png)) as im:
            pw, ph = im.size
        scale = min(w / pw, h / ph)
        iw, ih = pw * scale, ph * scale
        slide.shapes.add_picture(io.BytesIO(png), Inches(x + (w - iw) / 2),
                                 Inches(y + (h - ih) / 2), Inches(iw), Inches(ih))

    def table(slide: Any, rows: list[list[str]], x: float, y: float, w: float,
              widths: list[float], size: int = 16) -> None:
        shape = slide.shapes.add_table(len(rows), len(rows[0]), Inches(x), Inches(y),
                                       Inches(w), Inches(0.45 * len(rows)))
        t = shape.table
        for j, f in enumerate(widths):
            t.columns[j].width = Inches(w * f)
        for i, row in enumerate(rows):
            for j, val in enumerate(row):
                cell = t.cell(i, j)
                cell.text = val
                for par in cell.text_frame.paragraphs:
                    for run in par.runs:
                        run.font.size = Pt(size)
                        run.font.bold = i == 0

    def header(slide: Any, title: str, footer: str) -> None:
        text(slide, 0.4, 0.2, SLIDE_W_IN - 0.8, 0.9, [title], size=30, bold_first=True,
             colour=accent)
        text(slide, 0.4, SLIDE_H_IN - 0.85, SLIDE_W_IN - 0.8, 0.7, [footer], size=14)

    s = prs.slides.add_slide(prs.slide_layouts[0])
    # the layout's placeholders are laid out for 4:3; span the 16:9 width
    for shape, top, height in ((s.shapes.title, 2.0, 1.6), (s.placeholders[1], 3.8, 1.2)):
        shape.left, shape.width = Inches(0.6), Inches(SLIDE_W_IN - 1.2)
        shape.top, shape.height = Inches(top), Inches(height)
    s.shapes.title.text = f"{b['name']} — tumour board"
    s.placeholders[1].text = (f"{b['specialty']} · {detail['date']} · {len(mats)} case(s)"
                              + (" · pseudonymised" if pseudonymised else ""))
    for k, m in enumerate(mats, start=1):
        footer = _response_line(m)
        title = f"Case {k}: {m.label}"
        # 1. the case
        s = prs.slides.add_slide(blank)
        header(s, title, footer)
        text(s, 0.4, 1.1, SLIDE_W_IN - 0.8, 1.0,
             [f"Question: {m.question or 'none given'}"], size=22)
        if m.responses:
            rows = [["Criterion", "Latest response", "Best overall"]]
            rows += [[r["name"], r["text"], r["best_text"] or "—"] for r in m.responses]
            table(s, rows, 0.4, 2.1, SLIDE_W_IN - 0.8, [0.22, 0.48, 0.30], size=18)
        else:
            text(s, 0.4, 2.1, 8, 0.6, ["Not assessed: no stored response assessment."])
        prev = (f"Previous decision ({m.previous[0]['when']}, {m.previous[0]['board']}): "
                f"{m.previous[0]['recommendation']}" if m.previous
                else "Previous decision: none (first discussion)")
        y_prev = 2.3 + 0.45 * (len(m.responses) + 1)
        text(s, 0.4, min(y_prev, SLIDE_H_IN - 1.6), SLIDE_W_IN - 0.8, 0.7, [prev], size=18)
        # 2. key images
        s = prs.slides.add_slide(blank)
        header(s, f"{title} — key images", footer)
        figs = m.figures
        if figs is not None and (figs.mip or figs.slices):
            # baseline | current side by side in each row: MIPs above, fused slice below
            if figs.mip and figs.slices:
                picture(s, figs.mip, 0.3, 1.05, SLIDE_W_IN - 0.6, 2.95)
                picture(s, figs.slices[0][1], 0.3, 4.0, SLIDE_W_IN - 0.6, 2.6)
            elif figs.mip or figs.slices:
                picture(s, figs.mip or figs.slices[0][1], 0.3, 1.05, SLIDE_W_IN - 0.6, 5.5)
        else:
            text(s, 0.4, 2.0, 10, 1, [m.note or "No images available."], size=20)
        # 3. trend and lesions
        s = prs.slides.add_slide(blank)
        header(s, f"{title} — trend and lesions", footer)
        if figs is not None and figs.spider:
            picture(s, figs.spider, 0.3, 1.1, 6.2, 5.4)
        else:
            text(s, 0.4, 1.2, 6, 1, ["No trend: fewer than two timepoints with target "
                                     "lesions."], size=18)
        if m.data is not None and m.data.lesions:
            d = m.data
            rows = [["Lesion", "Site", "Role", "Baseline", "Current", "Δ size"]]
            for les in d.lesions[:8]:
                b0, b1 = les.size_mm(d.baseline.label), les.size_mm(d.current.label)
                delta = (f"{(b1 - b0) / b0 * 100:+.0f} %" if b0 and b1 is not None else "—")
                rows.append([les.lesion_id, les.site or "—", les.role,
                             "—" if b0 is None else f"{b0:.0f} mm",
                             "—" if b1 is None else f"{b1:.0f} mm", delta])
            table(s, rows, 6.7, 1.2, 6.3, [0.13, 0.17, 0.19, 0.18, 0.18, 0.15], size=12)
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue(), len(prs.slides)


# --------------------------------------------------------------------------------------
# use-cases
# --------------------------------------------------------------------------------------


def write_pack(settings: Settings | None, session_id: int, pdf: str | os.PathLike[str], *,
               pptx: str | os.PathLike[str] | None = None, pseudonymise: bool = False,
               actor: str = "cli", dpi: int = 110,
               progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write the meeting pack PDF (and slides) of a session; returns paths and counts."""
    settings = settings or get_settings()
    pdf_path = _check_target(pdf, ".pdf", "--pdf")
    pptx_path = _check_target(pptx, ".pptx", "--pptx") if pptx is not None else None
    detail = board_service.session_detail(settings, session_id)
    if not detail["cases"]:
        raise InputError(f"session {session_id}: no case on the agenda; nothing to pack "
                         "(board add)")
    mats = _gather(settings, detail, pseudonymise=pseudonymise, dpi=dpi, progress=progress)
    pdf_bytes, pages = _render_pack_pdf(detail, mats, pseudonymised=pseudonymise)
    slides = None
    pptx_bytes = None
    if pptx_path is not None:
        pptx_bytes, slides = _pptx_bytes(detail, mats, pseudonymised=pseudonymise)
    _atomic_write(pdf_path, pdf_bytes)
    if pptx_path is not None and pptx_bytes is not None:
        _atomic_write(pptx_path, pptx_bytes)
    audit.record(settings, actor, "board.pack", f"board-session:{session_id}",
                 {"cases": len(mats), "pseudonymised": pseudonymise,
                  "slides": pptx_path is not None})
    return {"session_id": int(session_id), "pdf": str(pdf_path),
            "pptx": str(pptx_path) if pptx_path else None, "cases": len(mats),
            "pages": _page_count(pdf_bytes), "slides": slides,
            "case_pages": [pages.get(f"c{k}") for k in range(1, len(mats) + 1)],
            "pseudonymised": pseudonymise}


def _page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))


def write_minutes(settings: Settings | None, session_id: int, pdf: str | os.PathLike[str], *,
                  actor: str = "cli") -> dict[str, Any]:
    """Minutes PDF: attendance by specialty, then each case's question and decision."""
    from reportlab.platypus import Paragraph, Spacer

    from oncohybrid.report import pdf as rp

    settings = settings or get_settings()
    path = _check_target(pdf, ".pdf", "--pdf")
    d = board_service.session_detail(settings, session_id)
    rp._register_fonts()
    st = rp._styles()
    w = rp._BODY_W
    p = st["cell"]
    b = d["board"]
    story: list[Any] = [
        rp._SetHeader("minutes"),
        Paragraph(rp._esc(f"{b['name']} — tumour board minutes"), st["title"]),
        Paragraph(rp._esc(f"{b['specialty']} · {d['date']} · start {d['start_time']} · "
                          f"session {d['session_id']} · "
                          + (f"closed {d['closed_at']} by {d['closed_by']}"
                             if d["status"] == "closed" else "not closed yet")),
                  st["subtitle"]),
        Paragraph(f"Attendance ({len(d['attendance'])})", st["h2"]),
    ]
    if d["attendance"]:
        rows: list[list[Any]] = [["Specialty", "Name", "User"]]
        rows += [[Paragraph(rp._esc(a["specialty"]), p), Paragraph(rp._esc(a["name"]), p),
                  Paragraph(rp._esc(a["username"] or "—"), p)] for a in d["attendance"]]
        story.append(rp._table(rows, [0.3 * w, 0.45 * w, 0.25 * w]))
        story.append(Paragraph("Specialties present: " + rp._esc(
            ", ".join(d["specialties_present"])) + (
            ". Board specialties absent: " + rp._esc(", ".join(d["specialties_missing"]))
            if d["specialties_missing"] else "."), st["base"]))
    else:
        story.append(Paragraph("No attendance recorded.", st["base"]))
    story.append(Paragraph(f"Cases ({len(d['cases'])})", st["h2"]))
    rows = [["#", "Patient", "Question", "Recommendation", "Follow-up"]]
    for c in d["cases"]:
        dec = c["decision"]
        patient = c["patient_id"] or f"#{c['patient_pk']}"
        if c["patient_name"]:
            patient = f"{c['patient_name'].replace('^', ' ').strip()} — {patient}"
        if dec:
            text = rp._esc(dec["recommendation"])
            text += "<br/><b>Consensus</b>" if dec["consensus"] else "<br/><b>No consensus</b>"
            if dec["rationale"]:
                text += "<br/>Rationale: " + rp._esc(dec["rationale"])
            if dec["dissent"]:
                text += "<br/>Dissent: " + rp._esc(dec["dissent"])
            fu = (f"{dec['follow_up_exam']} due {dec['follow_up_due']}"
                  if dec["follow_up_due"] else "none")
        else:
            text, fu = "not decided", "—"
        rows.append([str(c["position"]), Paragraph(rp._esc(patient), p),
                     Paragraph(rp._esc(c["question"] or "—"), p), Paragraph(text, p),
                     Paragraph(rp._esc(fu), p)])
    story.append(rp._table(rows, [0.05 * w, 0.2 * w, 0.22 * w, 0.35 * w, 0.18 * w]))
    story += [Spacer(1, 10), Paragraph("Minutes generated from the decisions recorded in the "
                                       "room; each decision is in the patient's record and "
                                       "the audit log.", st["small"])]
    buf = io.BytesIO()
    doc = rp._doc(buf, f"Minutes {b['name']} {d['date']}", "Tumour-board minutes")
    doc.build(story, canvasmaker=rp._NumberedCanvas)
    _atomic_write(path, buf.getvalue())
    audit.record(settings, actor, "board.minutes", f"board-session:{session_id}",
                 {"cases": len(d["cases"]), "attendees": len(d["attendance"])})
    return {"session_id": int(session_id), "pdf": str(path), "cases": len(d["cases"]),
            "attendees": len(d["attendance"]), "pages": _page_count(buf.getvalue())}
