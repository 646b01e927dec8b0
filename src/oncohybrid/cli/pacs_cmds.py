"""``oncohybrid listen`` (Storage SCP) and ``oncohybrid pacs …`` (nodes, echo, find, pull, send).

Thin: parse options, call :mod:`oncohybrid.services.pacs`, print. ``--json`` prints
JSON only on stdout; messages go to stderr.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

import typer

pacs_app = typer.Typer(
    help="Query, retrieve from and send to PACS / DICOMweb nodes.", no_args_is_help=True
)
node_app = typer.Typer(help="Configure remote DICOM / DICOMweb nodes.", no_args_is_help=True)
pacs_app.add_typer(node_app, name="node")


def register(app: typer.Typer) -> None:
    app.command("listen")(listen)
    app.add_typer(pacs_app, name="pacs")


def _fail(exc: Exception) -> None:
    from oncohybrid.cli.main import fail

    fail(exc)  # type: ignore[arg-type]


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def listen(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0: all)."),
    port: int = typer.Option(11112, "--port", help="TCP port of the Storage SCP."),
    ae_title: str = typer.Option("ONCOHYBRID", "--ae-title", help="Our (called) AE title."),
    quiet_period_s: float = typer.Option(
        30.0, "--quiet-period", help="Seconds without a new instance before a study is complete."
    ),
    on_complete: list[str] = typer.Option(
        ["log"], "--on-complete", help="Hook to run for a complete study (repeatable)."
    ),
    shutdown_grace_s: float = typer.Option(
        10.0, "--shutdown-grace", help="Seconds open associations may finish after SIGTERM."
    ),
    receive_processes: int | None = typer.Option(
        None, "--receive-processes", min=0,
        help="Receiver processes (0: receive in this process). Default: "
        "$ONCOHYBRID_LISTEN_PROCESSES, else 2 on a machine with 2 or more CPUs.",
    ),
    request_timeout_s: float = typer.Option(
        5.0, "--request-timeout", min=0.1, max=300,
        help="Seconds a new connection may take to send its A-ASSOCIATE-RQ before it is "
        "closed (it holds no association slot meanwhile).",
    ),
    max_pending_per_host: int = typer.Option(
        32, "--max-pending-per-host", min=1,
        help="Connections one address may have waiting for their association request; "
        "beyond it the oldest is closed.",
    ),
    max_associations_per_host: int = typer.Option(
        16, "--max-associations-per-host", min=0,
        help="Associations one address may hold at once per receiver (0: no limit); "
        "beyond it A-ASSOCIATE-RJ 'local limit exceeded'.",
    ),
    any_called_ae: bool = typer.Option(
        False, "--any-called-ae",
        help="Accept associations whatever called AE title they name (default: ours only).",
    ),
    max_spooled: int = typer.Option(
        2000, "--max-spooled", min=0,
        help="Instances acknowledged but not yet indexed that the spool may hold; beyond "
        "it acknowledgements wait for indexing (20 s at most, then A700). 0: no bound.",
    ),
) -> None:
    """Receive DICOM instances (C-STORE) and ingest them until SIGTERM / Ctrl-C."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import pacs

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("oncohybrid")
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)
    logging.getLogger("pynetdicom").setLevel(logging.ERROR)
    stop = threading.Event()
    try:
        listener = pacs.make_listener(
            ae_title=ae_title,
            host=host,
            port=port,
            quiet_period_s=quiet_period_s,
            hook_names=on_complete,
            receive_processes=(
                pacs.default_receive_processes() if receive_processes is None
                else receive_processes
            ),
            association_request_timeout_s=request_timeout_s,
            max_pending_per_source=max_pending_per_host,
            max_associations_per_source=max_associations_per_host,
            check_called_ae=not any_called_ae,
            max_spooled=max_spooled,
        )
        listener.start()
    except OncohybridError as exc:
        _fail(exc)
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    allow = listener.allowed_callers
    _err(
        f"listening as {listener.ae_title} on {host}:{listener.port}; "
        + (f"allow-list of {len(allow)} AE title(s)" if allow else "any calling AE accepted")
    )
    while not stop.wait(0.5):
        pass
    _err("stopping: finishing open associations and indexing the spool …")
    listener.stop(grace_s=shutdown_grace_s)
    _err(f"stopped: {json.dumps(listener.stats.as_dict())}")


# ------------------------------------------------------------------------ nodes


@node_app.command("add")
def node_add(
    name: str = typer.Argument(..., help="Short name used in other commands."),
    ae: str | None = typer.Option(None, "--ae", help="Remote AE title (DIMSE)."),
    host: str | None = typer.Option(None, "--host", help="Remote host name or address (DIMSE)."),
    port: int | None = typer.Option(None, "--port", help="Remote DICOM port (DIMSE)."),
    url: str | None = typer.Option(None, "--url", help="DICOMweb base URL (QIDO/WADO/STOW)."),
    auth: str = typer.Option("none", "--auth", help="DICOMweb auth: none, basic or bearer."),
    user: str | None = typer.Option(None, "--user", help="User name for basic auth."),
    secret_env: str | None = typer.Option(
        None, "--secret-env", help="Environment variable holding the password/token."
    ),
    secret: str | None = typer.Option(
        None, "--secret", help="Password/token stored in the database (prefer --secret-env)."
    ),
    accept_store: bool = typer.Option(
        False, "--accept-store", help="Allow this AE (from this host) to send to our listener."
    ),
    retrieve: str = typer.Option("move", "--retrieve", help="Pull method: move or get."),
    description: str = typer.Option("", "--description", help="Free text for administrators."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a node of the same name."),
) -> None:
    """Add (or --replace) a node: --ae/--host/--port for DIMSE, or --url for DICOMweb."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import pacs

    try:
        node = pacs.PacsNode(
            name=name,
            ae_title=ae,
            host=host,
            port=port,
            url=url,
            auth=_choice(auth, ("none", "basic", "bearer"), "--auth"),
            username=user,
            secret=secret,
            secret_env=secret_env,
            accept_store=accept_store,
            retrieve=_choice(retrieve, ("move", "get"), "--retrieve"),
            description=description,
        )
        pacs.default_repository().add(node, replace=replace)
    except OncohybridError as exc:
        _fail(exc)
        return
    _err(f"node {node.name}: {node.address}" + (" (may send to us)" if accept_store else ""))


def _choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    from oncohybrid.errors import InputError

    if value not in allowed:
        raise InputError(f"{option} {value!r}: choose one of {', '.join(allowed)}")
    return value


@node_app.command("ls")
def node_ls(as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """List configured nodes (secrets are never shown)."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import pacs

    try:
        nodes = pacs.default_repository().list()
    except OncohybridError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps([n.public_dict() for n in nodes], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="PACS nodes")
    for col in ("Name", "Kind", "Address", "Auth", "Accept store", "Retrieve"):
        table.add_column(col)
    for n in nodes:
        table.add_row(
            n.name,
            "DICOMweb" if n.is_dicomweb else "DIMSE",
            n.address,
            n.auth.value,
            "yes" if n.accept_store else "",
            "wado" if n.is_dicomweb else n.retrieve.value,
        )
    Console(highlight=False).print(table)


@node_app.command("rm")
def node_rm(name: str = typer.Argument(..., help="Node to remove.")) -> None:
    """Remove a node."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import pacs

    try:
        pacs.default_repository().remove(name)
    except OncohybridError as exc:
        _fail(exc)
        return
    _err(f"node {name} removed")


# ------------------------------------------------------------------- operations


@pacs_app.command("echo")
def echo(
    name: str = typer.Argument(..., help="Node name."),
    ae_title: str = typer.Option("ONCOHYBRID", "--ae-title", help="Our calling AE title."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Check a node: C-ECHO (DIMSE) or a one-study QIDO-RS probe (DICOMweb)."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import pacs

    try:
        node = pacs.default_repository().get(name)
        seconds = pacs.echo(node, calling_ae=ae_title)
    except OncohybridError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps({"node": name, "ok": True, "round_trip_ms": seconds * 1000}))
    else:
        typer.echo(f"{name}: ok ({seconds * 1000:.0f} ms)")


@pacs_app.command("find")
def find(
    node_name: str = typer.Option(..., "--node", help="Node to query."),
    patient_id: str | None = typer.Option(None, "--patient-id", help="Patient ID (0010,0020)."),
    study_uid: str | None = typer.Option(None, "--study-uid", help="Study Instance UID."),
    accession: str | None = typer.Option(None, "--accession", help="Accession Number."),
    modality: str | None = typer.Option(None, "--modality", help="Modality in study, e.g. PT."),
    date: str | None = typer.Option(
        None, "--date", help="Study date or range: 2024-01-01..2024-06-30 (open ends allowed)."
    ),
    limit: int = typer.Option(100, "--limit", help="At most this many studies (1..1000)."),
    offset: int = typer.Option(0, "--offset", help="Skip this many matches first."),
    ae_title: str = typer.Option("ONCOHYBRID", "--ae-title", help="Our calling AE title."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Find studies on a node (C-FIND study root, or QIDO-RS)."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import pacs

    try:
        query = pacs.StudyQuery(
            patient_id=patient_id,
            study_instance_uid=study_uid,
            accession_number=accession,
            modality=modality.upper() if modality else None,
            study_date=pacs.parse_date_range(date) if date else None,
            limit=limit,
            offset=offset,
        )
        node = pacs.default_repository().get(node_name)
        results = pacs.find(node, query, calling_ae=ae_title)
    except OncohybridError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(results)} studies on {node_name} (offset {offset})")
    for col in ("Patient ID", "Date", "Modalities", "Description", "Series", "Inst.", "Study UID"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.patient_id or "",
            r.study_date or "",
            "/".join(r.modalities),
            r.description or "",
            "" if r.n_series is None else str(r.n_series),
            "" if r.n_instances is None else str(r.n_instances),
            r.study_instance_uid,
        )
    Console(highlight=False).print(table)


@pacs_app.command("pull")
def pull(
    study_uid: str = typer.Argument(..., help="Study Instance UID to retrieve."),
    node_name: str = typer.Option(..., "--node", help="Node to retrieve from."),
    method: str | None = typer.Option(
        None, "--method", help="move or get (DIMSE; default: the node's), wado (DICOMweb)."
    ),
    ae_title: str = typer.Option(
        "ONCOHYBRID", "--ae-title", help="Our AE title (C-MOVE destination known to the PACS)."
    ),
    listen_host: str = typer.Option("127.0.0.1", "--listen-host", help="Bind for C-MOVE."),
    listen_port: int = typer.Option(11112, "--listen-port", help="Our port for C-MOVE."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Retrieve a study (C-MOVE to us, C-GET, or WADO-RS) and ingest it."""
    from oncohybrid.errors import OncohybridError
    from oncohybrid.services import pacs

    try:
        node = pacs.default_repository().get(node_name)
        report = pacs.pull(
            node,
            study_uid,
            method=method,
            local_ae=ae_title,
            listen_host=listen_host,
            listen_port=listen_port,
        )
    except OncohybridError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    counts = ", ".join(f"{v} {k}" for k, v in sorted(report.outcomes.items())) or "nothing"
    typer.echo(f"{node_name} → {report.method}: {counts}" + (f" ({report.note})" if report.note
                                                              else ""))


@pacs_app.command("send")
def send(
    files: list[Path] = typer.Argument(..., help="DICOM files to send (SR, SEG, PDF …)."),
    node_name: str = typer.Option(..., "--node", help="Node to send to."),
    ae_title: str = typer.Option("ONCOHYBRID", "--ae-title", help="Our calling AE title."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Send DICOM objects to a node (C-STORE or STOW-RS)."""
    from oncohybrid.errors import OncohybridError, PacsError
    from oncohybrid.services import pacs

    try:
        node = pacs.default_repository().get(node_name)
        report = pacs.send(node, files, calling_ae=ae_title)
    except OncohybridError as exc:
        _fail(exc)
        return
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        typer.echo(f"{node_name}: sent {report.sent} of {len(files)}")
        for file, reason in report.failed:
            _err(f"  failed {file}: {reason}")
    if report.failed:
        _fail(PacsError(f"{len(report.failed)} of {len(files)} files were not accepted"))
