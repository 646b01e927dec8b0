"""``oncohybrid fellowship …``: the fellowship programme's call, eligibility, grant,
certificate and its verification (issue #13). ``--json`` prints only JSON; invalid input
exits 2 with the reason (the JSON path) on stderr and nothing on stdout."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

fellowship_app = typer.Typer(help="Fellowship programme: calls, eligibility, grant schedule, "
                             "applications, certificates.", no_args_is_help=True)
call_app = typer.Typer(help="Calls for applications (YAML, validated by a JSON Schema).",
                       no_args_is_help=True)
fellowship_app.add_typer(call_app, name="call")

JSON = typer.Option(False, "--json", help="Print JSON.")
CALL = typer.Option(None, "--call", help="Call id (default: esor-gustave-roussy-2021).")


def register(app: typer.Typer) -> None:
    app.add_typer(fellowship_app, name="fellowship")


def _run(compute: Callable[[], Any], as_json: bool, to_json: Callable[[Any], object],
         to_text: Callable[[Any], str]) -> Any:
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError

    try:
        result = compute()
    except OncohybridError as exc:
        fail(exc)
        return None
    if as_json:
        typer.echo(json.dumps(to_json(result), ensure_ascii=False))
    else:
        typer.echo(to_text(result))
    return result


@fellowship_app.command("eligibility")
def eligibility(applicant: Path = typer.Argument(..., help="Applicant JSON file."),
                call: str | None = CALL, as_json: bool = JSON) -> None:
    """Judge an applicant against every rule of the call, each with its reason."""
    from oncohybrid.services import fellowship as svc

    def text(r: Any) -> str:
        lines = [f"{'ELIGIBLE' if r.eligible else 'NOT ELIGIBLE'}  {r.applicant_id}  "
                 f"(call {r.call_id})"]
        lines += [f"  {'ok  ' if x.ok else 'FAIL'}  {x.rule:28s} {x.reason}" for x in r.rules]
        return "\n".join(lines)

    _run(lambda: svc.eligibility(None, applicant, call), as_json, lambda r: r.as_dict(), text)


@fellowship_app.command("grant")
def grant(call: str | None = CALL, as_json: bool = JSON) -> None:
    """The grant's monthly payments (cents; the rounding remainder in the last one)."""
    from oncohybrid.services import fellowship as svc

    def text(s: Any) -> str:
        rows = [f"{p.month}  {p.amount_eur:>10} EUR" for p in s.payments]
        return "\n".join([*rows, f"total    {s.total_eur:>10} EUR"])

    _run(lambda: svc.grant_schedule(None, call), as_json, lambda s: s.as_dict(), text)


@call_app.command("load")
def call_load(path: Path = typer.Argument(..., help="Call file (YAML)."),
              as_json: bool = JSON) -> None:
    """Validate a call file and keep it in the workspace (usable as --call ID)."""
    from oncohybrid.services import fellowship as svc

    _run(lambda: svc.load_call_file(None, path), as_json,
         lambda c: {"id": c.id, "title": c.title, "deadline": c.deadline_date.isoformat(),
                    "time_zone": c.deadline_zone, "start": c.start.isoformat(),
                    "rules": [r.id for r in c.rules]},
         lambda c: f"loaded call {c.id}: {c.title}, deadline {c.deadline_date} "
                   f"({c.deadline_zone}), {len(c.rules)} rules")


@call_app.command("ls")
def call_ls(as_json: bool = JSON) -> None:
    """The calls known to the workspace (loaded and bundled)."""
    from oncohybrid.services import fellowship as svc

    _run(lambda: svc.list_calls(None), as_json,
         lambda cs: [{"id": c.id, "title": c.title, "deadline": c.deadline_date.isoformat()}
                     for c in cs],
         lambda cs: "\n".join(f"{c.id}\t{c.deadline_date}\t{c.title}" for c in cs))


@fellowship_app.command("enrol")
def enrol(applicant: Path = typer.Argument(..., help="The selected applicant's JSON file."),
          call: str | None = CALL,
          user: str | None = typer.Option(None, "--user", help="The fellow's platform account "
                                          "(its reading, boards and teaching fill the logbook)."),
          mentor: str | None = typer.Option(None, "--mentor", help="The mentor's account."),
          as_json: bool = JSON) -> None:
    """Record a selected, eligible applicant as the call's fellow (director's shortcut for
    a selection made outside the web portal)."""
    from oncohybrid.services import fellowship as svc

    _run(lambda: svc.enrol(None, applicant, call_id=call, username=user, mentor=mentor),
         as_json, lambda fid: {"fellow_id": fid}, lambda fid: f"fellow {fid} enrolled")


@fellowship_app.command("link")
def link(fellow_id: str = typer.Argument(..., help="Fellow id (the applicant id)."),
         user: str | None = typer.Option(None, "--user", help="The fellow's platform account."),
         mentor: str | None = typer.Option(None, "--mentor", help="The mentor's account."),
         as_json: bool = JSON) -> None:
    """Link the fellow's platform account (whose work fills the logbook) and the mentor."""
    from oncohybrid.services import fellowship as svc

    def go() -> dict:
        svc.set_year(None, fellow_id, username=user, mentor=mentor, actor="cli")
        v = svc.fellow_view(None, fellow_id, username="cli", role="director")
        return {"fellow_id": fellow_id, "user": v["username"], "mentor": v["mentor"]}

    _run(go, as_json, lambda r: r,
         lambda r: f"fellow {fellow_id}: account {r['user'] or '-'}, mentor {r['mentor'] or '-'}")


@fellowship_app.command("report")
def report(fellow_id: str = typer.Argument(..., help="Fellow id (the applicant id)."),
           out: Path = typer.Option(..., "--out", help="Write the final report PDF here."),
           sign_off: str | None = typer.Option(None, "--sign-off", help="Sign the final report "
                                               "off as this mentor (the fellow's mentor)."),
           as_json: bool = JSON) -> None:
    """The final written report (PDF) from the logbook and the research record."""
    from oncohybrid.services import fellowship as svc

    def go() -> Path:
        if sign_off:
            svc.sign_off_report(None, fellow_id, mentor=sign_off)
        return svc.final_report(None, fellow_id, out, username="cli", role="director")

    _run(go, as_json, lambda p: {"fellow_id": fellow_id, "pdf": str(p),
                                 "signed_off_by": sign_off},
         lambda p: f"final report written to {p}")


@fellowship_app.command("certificate")
def certificate(fellow_id: str = typer.Argument(..., help="Fellow id (the applicant id)."),
                out: Path = typer.Option(..., "--out", help="Write the certificate PDF here."),
                as_json: bool = JSON) -> None:
    """Issue the certificate (PDF) and print its verification code."""
    from oncohybrid.services import fellowship as svc

    _run(lambda: svc.issue_certificate(None, fellow_id, out), as_json,
         lambda r: {"fellow_id": fellow_id, "code": r[0], "pdf": str(r[1])},
         lambda r: r[0])


@fellowship_app.command("verify")
def verify(code: str = typer.Argument(..., help="The code printed on the certificate."),
           as_json: bool = JSON) -> None:
    """Check a certificate's verification code (the signature over its content)."""
    from oncohybrid.services import fellowship as svc

    def text(r: dict) -> str:
        if not r["valid"]:
            return f"INVALID: {r['reason']}"
        c = r["certificate"]
        return (f"VALID: certificate {c['serial']}: {c['fellow_name']}, {c['programme']} "
                f"in {c['topic']}, {c['host']}, {c['start']} to {c['end']}")

    _run(lambda: svc.verify(None, code), as_json, lambda r: r, text)


@fellowship_app.command("schema")
def schema(which: str = typer.Argument("applicant", help="applicant or call")) -> None:
    """Print the JSON Schema of the applicant file or of a call."""
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import InputError
    from oncohybrid.fellowship.applicant import applicant_schema
    from oncohybrid.fellowship.call import call_schema

    if which not in ("applicant", "call"):
        fail(InputError(f"schema: {which!r} is not 'applicant' or 'call'"))
    typer.echo(json.dumps(applicant_schema() if which == "applicant" else call_schema(),
                          indent=2))
