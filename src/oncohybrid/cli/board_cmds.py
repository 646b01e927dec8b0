"""``oncohybrid board …``: tumour boards — boards, sessions, agenda, packs, decisions,
minutes (issue #15). Invalid input and unknown ids exit 2 with the reason on stderr,
nothing on stdout and nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

board_app = typer.Typer(help="Tumour boards: boards, sessions, cases, meeting packs and "
                        "slides, decisions with follow-up, attendance, minutes.",
                        no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON only.")
BY = typer.Option("cli", "--by", help="User name recorded as the author (audit log, "
                  "fellowship logbook).")


def register(app: typer.Typer) -> None:
    app.add_typer(board_app, name="board")


def _id(value: str, what: str) -> int:
    from oncohybrid.errors import InputError

    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise InputError(f"{what} {value!r}: not a {what} id (a positive number)")
    return int(text)


def _run(compute: Callable[[], dict[str, Any]], as_json: bool,
         to_text: Callable[[dict[str, Any]], str]) -> None:
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError

    try:
        result = compute()
    except OncohybridError as exc:
        fail(exc)
        return
    typer.echo(json.dumps(result) if as_json else to_text(result))


@board_app.command("create")
def create(name: str = typer.Argument(..., help="Board name, e.g. 'Breast MDT'."),
           specialty: str = typer.Option(..., "--specialty", help="Specialty of the board "
                                         "(breast, head and neck, GI, GU, haematology …)."),
           weekday: str = typer.Option(None, "--weekday", help="Weekly meeting day "
                                       "(monday … sunday or 1–7)."),
           start: str = typer.Option("08:00", "--start", help="Start time HH:MM."),
           minutes_per_case: int = typer.Option(10, "--minutes-per-case",
                                                help="Agenda time per case."),
           every_weeks: int = typer.Option(1, "--every-weeks", help="1 weekly, 2 fortnightly."),
           member: list[str] = typer.Option([], "--member", help="Standing member "
                                            "'NAME:SPECIALTY' (a user name links the user); "
                                            "repeatable."),
           by: str = BY, as_json: bool = JSON) -> None:
    """Create a board; prints {"board_id": …} with --json."""
    from oncohybrid.errors import InputError
    from oncohybrid.services import boards

    def go() -> dict[str, Any]:
        members = []
        for m in member:
            who, sep, spec = m.rpartition(":")
            if not sep or not who.strip() or not spec.strip():
                raise InputError(f"--member {m!r}: expected NAME:SPECIALTY")
            members.append((who, spec))
        out = boards.create_board(None, name, specialty, weekday=weekday, start_time=start,
                                  minutes_per_case=minutes_per_case, every_weeks=every_weeks,
                                  actor=by)
        for who, spec in members:
            boards.add_member(None, out["board_id"], who, spec, actor=by)
        return out

    _run(go, as_json, lambda r: f"board {r['board_id']} created")


@board_app.command("session")
def session(board_id: str = typer.Argument(..., help="Board id."),
            date: str = typer.Option(..., "--date", help="Meeting date YYYY-MM-DD."),
            start: str = typer.Option(None, "--start", help="Start time HH:MM (default: "
                                      "the board's)."),
            by: str = BY, as_json: bool = JSON) -> None:
    """Create a dated session of a board; prints {"session_id": …} with --json."""
    from oncohybrid.services import boards

    _run(lambda: boards.create_session(None, _id(board_id, "board"), date, start_time=start,
                                       actor=by),
         as_json, lambda r: f"session {r['session_id']} created")


@board_app.command("schedule")
def schedule(board_id: str = typer.Argument(..., help="Board id."),
             date_from: str = typer.Option(..., "--from", help="First date YYYY-MM-DD."),
             date_to: str = typer.Option(..., "--to", help="Last date YYYY-MM-DD."),
             by: str = BY, as_json: bool = JSON) -> None:
    """Create the sessions of the board's weekly schedule between two dates."""
    from oncohybrid.services import boards

    _run(lambda: {"sessions": boards.schedule_sessions(None, _id(board_id, "board"),
                                                       date_from, date_to, actor=by)},
         as_json, lambda r: "\n".join(f"session {x['session_id']} {x['date']}"
                                      for x in r["sessions"]) or "no new session")


@board_app.command("add")
def add(session_id: str = typer.Argument(..., help="Session id."),
        patient_id: str = typer.Argument(..., help="(0010,0020) Patient ID."),
        question: str = typer.Option(None, "--question", help="The clinical question."),
        minutes: int = typer.Option(None, "--minutes", help="Agenda time of this case "
                                    "(default: the board's)."),
        by: str = BY, as_json: bool = JSON) -> None:
    """Put a patient on a session's agenda."""
    from oncohybrid.services import boards

    _run(lambda: boards.add_case(None, _id(session_id, "session"), patient_id,
                                 question=question, minutes=minutes, actor=by),
         as_json, lambda r: f"case {r['case_id']} added at position {r['position']}")


@board_app.command("show")
def show(session_id: str = typer.Argument(..., help="Session id."),
         as_json: bool = JSON) -> None:
    """The session's agenda: time, patient, question, checklist, response, decision."""
    from oncohybrid.services import boards

    def text(d: dict[str, Any]) -> str:
        lines = [f"{d['board']['name']} ({d['board']['specialty']}) {d['date']} "
                 f"{d['start_time']} · {d['status']}"]
        for c in d["cases"]:
            ready = "ready" if c["ready"] else "open: " + ", ".join(
                i["label"] for i in c["checklist"] if i["state"] == "open")
            lines.append(f"{c['position']:>2}. {c['start']}–{c['end']} {c['patient_id']} "
                         f"· {c['question'] or '—'} · {ready}")
            for r in c["responses"]:
                lines.append(f"      {r['name']}: {r['text']}")
            if c["decision"]:
                lines.append(f"      decision: {c['decision']['recommendation']}")
        return "\n".join(lines)

    _run(lambda: boards.session_detail(None, _id(session_id, "session")), as_json, text)


@board_app.command("pack")
def pack(session_id: str = typer.Argument(..., help="Session id."),
         pdf: Path = typer.Option(..., "--pdf", help="Meeting pack PDF to write."),
         pptx: Path = typer.Option(None, "--pptx", help="Slides (PPTX) to write as well."),
         pseudonymise: bool = typer.Option(False, "--pseudonymise", help="No patient name, "
                                           "ID, birth date or patient dates (researchers, "
                                           "scientific presentations)."),
         by: str = BY, as_json: bool = JSON) -> None:
    """Write the meeting pack PDF (agenda + one section per case) and the slides."""
    from oncohybrid.services import boards_pack

    _run(lambda: boards_pack.write_pack(None, _id(session_id, "session"), pdf, pptx=pptx,
                                        pseudonymise=pseudonymise, actor=by),
         as_json, lambda r: f"{r['pdf']}: {r['pages']} page(s), {r['cases']} case(s)"
         + (f"\n{r['pptx']}: {r['slides']} slide(s)" if r["pptx"] else ""))


@board_app.command("decide")
def decide(session_id: str = typer.Argument(..., help="Session id."),
           patient_id: str = typer.Argument(..., help="(0010,0020) Patient ID."),
           decision: str = typer.Option(..., "--decision", help="Consensus recommendation."),
           follow_up_days: int = typer.Option(None, "--follow-up-days", help="Follow-up "
                                              "imaging due this many days after the "
                                              "session (shows in the worklist)."),
           follow_up_exam: str = typer.Option(None, "--follow-up-exam", help="The follow-up "
                                              "exam, e.g. 'FDG PET/CT' (default 'imaging')."),
           rationale: str = typer.Option(None, "--rationale", help="Why."),
           dissent: str = typer.Option(None, "--dissent", help="Dissenting opinion."),
           no_consensus: bool = typer.Option(False, "--no-consensus", help="The room did "
                                             "not reach consensus."),
           by: str = BY, as_json: bool = JSON) -> None:
    """Record the room's decision on a case (replaces an earlier one of the session)."""
    from oncohybrid.services import boards

    _run(lambda: boards.decide(None, _id(session_id, "session"), patient_id, decision,
                               rationale=rationale, dissent=dissent,
                               consensus=not no_consensus, follow_up_days=follow_up_days,
                               follow_up_exam=follow_up_exam, actor=by),
         as_json, lambda r: f"decision {r['decision_id']} recorded" + (
             f"; {r['follow_up_exam']} due {r['follow_up_due']}" if r["follow_up_due"] else ""))


@board_app.command("attend")
def attend(session_id: str = typer.Argument(..., help="Session id."),
           name: str = typer.Argument(..., help="Attendee (a user name links the user)."),
           specialty: str = typer.Option(..., "--specialty", help="Attendee's specialty."),
           by: str = BY, as_json: bool = JSON) -> None:
    """Record one attendee of a session by specialty."""
    from oncohybrid.services import boards

    _run(lambda: boards.attend(None, _id(session_id, "session"), name, specialty, actor=by),
         as_json, lambda r: f"{r['name']} ({r['specialty']}) attended session "
                            f"{r['session_id']}")


@board_app.command("close")
def close(session_id: str = typer.Argument(..., help="Session id."),
          by: str = BY, as_json: bool = JSON) -> None:
    """Close a session: its decisions become final."""
    from oncohybrid.services import boards

    _run(lambda: boards.close_session(None, _id(session_id, "session"), actor=by), as_json,
         lambda r: f"session {r['session_id']} closed: {r['decided']} of {r['cases']} "
                   "case(s) decided")


@board_app.command("minutes")
def minutes(session_id: str = typer.Argument(..., help="Session id."),
            pdf: Path = typer.Option(..., "--pdf", help="Minutes PDF to write."),
            by: str = BY, as_json: bool = JSON) -> None:
    """Write the minutes PDF: attendance by specialty and each case's decision."""
    from oncohybrid.services import boards_pack

    _run(lambda: boards_pack.write_minutes(None, _id(session_id, "session"), pdf, actor=by),
         as_json, lambda r: f"{r['pdf']}: {r['attendees']} attendee(s), {r['cases']} case(s)")


@board_app.command("ls")
def ls(as_json: bool = JSON) -> None:
    """Boards and their sessions."""
    from oncohybrid.services import boards

    def text(r: dict[str, Any]) -> str:
        lines = [f"board {b['board_id']}: {b['name']} ({b['specialty']})" for b in r["boards"]]
        lines += [f"  session {x['session_id']} board {x['board_id']} {x['date']} "
                  f"{x['status']} {x['cases']} case(s)" for x in r["sessions"]]
        return "\n".join(lines) or "no board"

    _run(lambda: {"boards": boards.list_boards(None), "sessions": boards.list_sessions(None)},
         as_json, text)


@board_app.command("dicom")
def dicom(session_id: str = typer.Argument(..., help="Session id."),
          out: Path = typer.Option(..., "--out", help="Folder for the DICOM files (created)."),
          by: str = BY, as_json: bool = JSON) -> None:
    """Write per case an Encapsulated PDF and a Key Object Selection of its key images.

    The PDF is the case's pack section; the Key Object Selection is titled "For
    Conference" and references the CT and PET images through the first target lesion."""
    from oncohybrid.services import boards_pacs

    _run(lambda: boards_pacs.write_dicom(None, _id(session_id, "session"), out, actor=by),
         as_json, lambda r: "\n".join(r["files"]) or "no case with images")


@board_app.command("send")
def send(session_id: str = typer.Argument(..., help="Session id."),
         node: str = typer.Option(..., "--node", help="Configured PACS node "
                                  "(oncohybrid pacs node add)."),
         out: Path = typer.Option(None, "--out", help="Keep the DICOM files in this folder."),
         by: str = BY, as_json: bool = JSON) -> None:
    """Send each case's Encapsulated PDF and Key Object Selection to a PACS node."""
    from oncohybrid.services import boards_pacs

    _run(lambda: boards_pacs.send_session(None, _id(session_id, "session"), node,
                                          out_dir=out, actor=by),
         as_json, lambda r: f"{r['sent']} object(s) sent to {r['node']}"
         + "".join(f"\nfailed: {f['file']}: {f['reason']}" for f in r["failed"]))


@board_app.command("follow-ups")
def follow_ups(as_json: bool = JSON) -> None:
    """Follow-up exams ordered by boards and not yet done, across sessions.

    Oldest due first; overdue ones are marked."""
    from oncohybrid.services import boards

    def text(r: dict[str, Any]) -> str:
        return "\n".join(f"{f['due']} {f['state']:<8} {f['patient_id']} {f['exam']} "
                         f"({f['board']} {f['session_date']}: {f['recommendation']})"
                         for f in r["follow_ups"]) or "no open follow-up"

    _run(lambda: {"follow_ups": boards.open_follow_ups(None)}, as_json, text)


@board_app.command("follow-up-done")
def follow_up_done(decision_id: str = typer.Argument(..., help="Decision id (board "
                                                     "follow-ups --json)."),
                   by: str = BY, as_json: bool = JSON) -> None:
    """Mark a decision's follow-up exam done: it leaves the worklist."""
    from oncohybrid.services import boards

    def go() -> dict[str, Any]:
        did = _id(decision_id, "decision")
        boards.complete_follow_up(None, did, actor=by)
        return {"decision_id": did, "follow_up_done": True}

    _run(go, as_json, lambda r: f"follow-up of decision {r['decision_id']} done")
