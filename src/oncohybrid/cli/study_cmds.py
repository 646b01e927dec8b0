"""``oncohybrid study …``: research studies, cohorts, exam schedules, CRFs, export (#16).

Invalid input exits 2 with the reason on stderr and nothing on stdout; ``--json`` prints
only JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

study_app = typer.Typer(help="Research studies: create, cohorts (CONSORT), exam schedule, "
                        "CRFs (REDCap dictionary and data), export.", no_args_is_help=True)
crf_app = typer.Typer(help="Case report forms: REDCap data dictionary and data, entry, "
                      "locking.", no_args_is_help=True)
study_app.add_typer(crf_app, name="crf")

JSON = typer.Option(False, "--json", help="Print JSON only.")
STUDY = typer.Argument(..., help="The study key.")


def register(app: typer.Typer) -> None:
    app.add_typer(study_app, name="study")


def _run(compute: Callable[[], Any], as_json: bool, text: Callable[[Any], str]) -> None:
    from oncohybrid.cli.main import fail
    from oncohybrid.errors import OncohybridError

    try:
        result = compute()
    except OncohybridError as exc:
        fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        typer.echo(text(result))


def _investigator(spec: str) -> tuple[str, str, str | None]:
    from oncohybrid.errors import InputError

    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise InputError(f"--investigator {spec!r}: write USER:ROLE or USER:ROLE:DAG")
    return parts[0], parts[1], parts[2] if len(parts) == 3 and parts[2] else None


@study_app.command("create")
def create(key: str = STUDY,
           title: str = typer.Option(None, "--title", help="Study title (default: the key)."),
           protocol: Path = typer.Option(None, "--protocol", help="Protocol YAML/JSON: "
                                         "anchor, grace_days, timepoints [name, day, before, "
                                         "after, modality, tracer]."),
           ethics_number: str = typer.Option(None, "--ethics-number"),
           ethics_date: str = typer.Option(None, "--ethics-date", help="YYYY-MM-DD"),
           ethics_file: Path = typer.Option(None, "--ethics-file", help="Approval letter "
                                            "(copied into the workspace)."),
           investigator: list[str] = typer.Option([], "--investigator",
                                                  help="USER:ROLE[:DAG] (roles: pi, "
                                                  "investigator, data-manager, statistician, "
                                                  "fellow); repeatable."),
           dag: list[str] = typer.Option([], "--dag", help="Data-access group; repeatable."),
           as_json: bool = JSON) -> None:
    """Create a research study."""
    from oncohybrid.services import research as svc

    def go() -> dict[str, Any]:
        proto = svc.load_protocol_file(protocol) if protocol else None
        return svc.create_study(key, title or key, protocol=proto,
                                ethics_number=ethics_number, ethics_date=ethics_date,
                                ethics_file=ethics_file,
                                investigators=[_investigator(i) for i in investigator],
                                dags=dag)

    _run(go, as_json, lambda r: f"study {r['study']} created: {r['title']} "
         f"({len(r['investigators'])} investigator(s), {len(r['dags'])} group(s))")


@study_app.command("ls")
def ls(as_json: bool = JSON) -> None:
    """List the studies."""
    from oncohybrid.services import research as svc

    _run(lambda: {"studies": svc.list_studies()}, as_json,
         lambda r: "\n".join(f"{x['study']}\t{x['title']}" for x in r["studies"])
         or "no study")


@study_app.command("show")
def show(key: str = STUDY, as_json: bool = JSON) -> None:
    """A study's details."""
    from oncohybrid.services import research as svc

    _run(lambda: svc.study_info(key), as_json, lambda r: json.dumps(r, indent=2))


@study_app.command("member")
def member(key: str = STUDY, user: str = typer.Argument(...),
           role: str = typer.Argument(..., help="pi, investigator, data-manager, "
                                      "statistician, fellow"),
           dag: str = typer.Option(None, "--dag"), as_json: bool = JSON) -> None:
    """Add an investigator (or change their role/group)."""
    from oncohybrid.services import research as svc

    def go() -> dict[str, Any]:
        svc.add_member(key, user, role, dag)
        return {"study": key, "user": user, "role": role, "dag": dag}

    _run(go, as_json, lambda r: f"{user}: {role}" + (f" ({dag})" if dag else ""))


@study_app.command("clinical")
def clinical(key: str = STUDY, data: Path = typer.Argument(..., help="CSV with patient_id "
                                                           "and one column per fact."),
             as_json: bool = JSON) -> None:
    """Import clinical data (tumour type, treatment start, ECOG, …) for cohort queries."""
    from oncohybrid.services import research as svc

    _run(lambda: svc.import_clinical(key, data), as_json,
         lambda r: f"{r['patients']} patient(s): {', '.join(r['fields'])}")


@study_app.command("cohort")
def cohort(key: str = STUDY, name: str = typer.Argument(..., help="Cohort name."),
           include: list[str] = typer.Option([], "--include", help="'NAME: LOGIC' in "
                                             "REDCap syntax, e.g. \"FDG PET: "
                                             "[tracer(fdg)] = '1'\"; repeatable, in order."),
           exclude: list[str] = typer.Option([], "--exclude", help="'NAME: LOGIC'; "
                                             "repeatable."),
           dag: str = typer.Option(None, "--dag", help="Put the included patients' records "
                                   "in this data-access group."),
           figure: Path = typer.Option(None, "--figure", help="CONSORT flow diagram "
                                       "(.png, .pdf or .svg)."),
           as_json: bool = JSON) -> None:
    """Save a cohort: each patient's inclusion/exclusion reasons and the CONSORT flow."""
    from oncohybrid.research.cohort import parse_criterion
    from oncohybrid.services import research as svc

    def go() -> dict[str, Any]:
        crit = ([parse_criterion("include", c) for c in include]
                + [parse_criterion("exclude", c) for c in exclude])
        return svc.save_cohort(key, name, crit, dag=dag, figure=figure)

    def text(r: dict[str, Any]) -> str:
        f = r["flow"]
        lines = [f"assessed {f['assessed']}, excluded {f['excluded']}, included "
                 f"{f['included']}"]
        lines += [f"  excluded: {x['reason']} (n = {x['n']})" for x in f["excluded_by"]]
        if r["figure"]:
            lines.append(f"figure: {r['figure']}")
        return "\n".join(lines)

    _run(go, as_json, text)


@study_app.command("schedule")
def schedule(key: str = STUDY,
             today: str = typer.Option(None, "--today", help="Reference day YYYY-MM-DD "
                                       "(default: today)."),
             protocol: Path = typer.Option(None, "--protocol", help="Set the protocol "
                                           "first (YAML/JSON)."),
             as_json: bool = JSON) -> None:
    """Each record's protocol exams: done / due / overdue / missing / out of window."""
    from oncohybrid.errors import InputError
    from oncohybrid.services import research as svc

    def go() -> dict[str, Any]:
        if protocol:
            svc.set_protocol(key, svc.load_protocol_file(protocol))
        try:
            day = dt.date.fromisoformat(today) if today else None
        except ValueError:
            raise InputError(f"--today {today!r}: not a date YYYY-MM-DD") from None
        return svc.schedule(key, today=day)

    def text(r: dict[str, Any]) -> str:
        lines = []
        for rec in r["records"]:
            lines.append(f"{rec['record_id']} {rec['patient']}: " + ", ".join(
                f"{t['timepoint']} {t['status']}" + (f" ({t['exam_date']})"
                                                     if t["exam_date"] else "")
                for t in rec["timepoints"]))
        return "\n".join(lines) or "no record (save a cohort first)"

    _run(go, as_json, text)


@crf_app.command("import")
def crf_import(key: str = STUDY,
               file: Path = typer.Argument(..., help="REDCap data dictionary CSV, or CRF "
                                           "data in REDCap's flat CSV."),
               repeat: list[str] = typer.Option([], "--repeat", help="FORM=timepoint (one "
                                                "instance per imaging timepoint) or "
                                                "FORM=free; with a dictionary."),
               as_json: bool = JSON) -> None:
    """Import a data dictionary (detected by its header) or CRF data."""
    from oncohybrid.errors import InputError
    from oncohybrid.research.redcap import COLUMNS
    from oncohybrid.services import research as svc

    def go() -> dict[str, Any]:
        if not file.is_file():
            raise InputError(f"{file}: no such file")
        head = file.read_text(encoding="utf-8-sig", errors="replace").split("\n", 1)[0]
        if head.lstrip('"').startswith(COLUMNS[0]):
            rep: dict[str, str] = {}
            for spec in repeat:
                form, _, kind = spec.partition("=")
                rep[form] = kind or "timepoint"
            return svc.import_dictionary(key, file, repeating=rep)
        if repeat:
            raise InputError("--repeat goes with a data dictionary, not with data")
        return svc.import_records(key, file)

    _run(go, as_json, lambda r: json.dumps(r))


@crf_app.command("export")
def crf_export(key: str = STUDY, out: Path = typer.Option(..., "--out", help="CSV file."),
               dictionary: bool = typer.Option(False, "--dictionary", help="Write the "
                                               "data dictionary instead of the data."),
               as_json: bool = JSON) -> None:
    """Export the data dictionary or the CRF data (REDCap CSV)."""
    from oncohybrid.services import research as svc

    _run(lambda: svc.export_records(key, out, dictionary=dictionary), as_json,
         lambda r: f"written {r['out']}")


@crf_app.command("set")
def crf_set(key: str = STUDY, record: str = typer.Argument(..., help="Record ID."),
            form: str = typer.Argument(...),
            values: list[str] = typer.Argument(None, help="FIELD=VALUE …"),
            instance: int = typer.Option(1, "--instance"),
            complete: bool = typer.Option(False, "--complete", help="Mark the form complete "
                                          "(required fields checked)."),
            as_json: bool = JSON) -> None:
    """Enter CRF values (validated like the web form)."""
    from oncohybrid.errors import InputError
    from oncohybrid.services import research as svc

    def go() -> dict[str, Any]:
        vals: dict[str, Any] = {}
        for v in values or []:
            k, sep, val = v.partition("=")
            if not sep:
                raise InputError(f"{v!r}: write FIELD=VALUE")
            vals[k.strip()] = val  # a checkbox takes its codes comma-separated
        return svc.save_form(key, record, form, vals, instance=instance, complete=complete)

    _run(go, as_json, lambda r: f"record {r['record_id']} {r['form']} #{r['instance']}: "
         f"{r['changed']} value(s) changed, {r['status']}")


@crf_app.command("lock")
def crf_lock(key: str = STUDY, record: str = typer.Argument(...),
             form: str = typer.Argument(...), instance: int = typer.Option(1, "--instance"),
             user: str = typer.Option(..., "--user", help="The signer's web account."),
             password_stdin: bool = typer.Option(False, "--password-stdin",
                                                 help="Read the password from stdin."),
             as_json: bool = JSON) -> None:
    """Lock a complete form with an e-signature (the signer's password)."""
    from oncohybrid.services import research as svc

    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else typer.prompt("password", hide_input=True, err=True))
    _run(lambda: svc.lock_form(key, record, form, instance=instance, username=user,
                               password=password), as_json,
         lambda r: f"locked, signed by {r['signed_by']} ({r['signature_sha256'][:12]}…)")


@study_app.command("export")
def export(key: str = STUDY, out: Path = typer.Option(..., "--out", help="Folder (created)."),
           fmt: str = typer.Option("csv", "--format", help="csv or parquet."),
           deidentify: bool = typer.Option(False, "--deidentify", help="Pseudonyms, shifted "
                                           "dates and UIDs of the image key store; "
                                           "identifiers and free text removed."),
           user: str = typer.Option(None, "--user", help="Export as this web user (a "
                                    "researcher's export is always de-identified; a DAG "
                                    "member's holds only the group)."),
           push_redcap: str = typer.Option(None, "--push-redcap", help="URL of a REDCap API "
                                           "to push crf.csv to (token in REDCAP_TOKEN; "
                                           "needs PyCap)."),
           as_json: bool = JSON) -> None:
    """Export patients, timepoints, lesions, measurements, responses, CRF data and the
    data dictionary (streamed page by page)."""
    import os

    from oncohybrid.errors import InputError
    from oncohybrid.services import research as svc

    def go() -> dict[str, Any]:
        viewer = svc.CLI
        if user:
            from oncohybrid.services.users import list_users

            match = [u for u in list_users() if u["username"] == user]
            if not match:
                raise InputError(f"--user {user!r}: no such user")
            viewer = svc.Viewer(user, str(match[0]["role"]))
        res = svc.export_study(key, out, fmt=fmt, deidentify=deidentify, viewer=viewer)
        if push_redcap:
            token = os.environ.get("REDCAP_TOKEN", "")
            if not token:
                raise InputError("--push-redcap: set REDCAP_TOKEN")
            res["pushed"] = svc.push_redcap(out, push_redcap, token)
        return res

    _run(go, as_json, lambda r: f"{r['patients']} patient(s) exported to {r['out']} "
         f"({r['format']}{', de-identified' if r['deidentified'] else ''}): " +
         ", ".join(f"{k} {v}" for k, v in r["rows"].items()))
