"""PACS use-cases: node configuration (in the database) and the network operations on nodes.

Node configuration sits behind :class:`NodeRepository` so the network code can be used
and tested with an in-memory repository; the database one (:class:`SqlNodeRepository`,
table ``pacs_node``) is the default. The operations (echo, find, pull, send, listen)
dispatch on the node kind to :mod:`oncohybrid.pacs.dimse` or :mod:`oncohybrid.pacs.web`
and hand received instances to ``Ingestor.ingest_dataset`` (the same path as folder
ingest).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError, PacsError
from oncohybrid.pacs.node import PacsNode
from oncohybrid.pacs.query import StudyQuery, parse_date_range

# The edge (cli/, web/) reaches the network library only through this module (#11:
# pacs/ is a protocol library below the services); these are its public types.
__all__ = [
    "InMemoryNodeRepository", "NodeRepository", "PacsNode", "PullReport", "SendReport",
    "SqlNodeRepository", "StudyQuery", "allowed_callers", "default_receive_processes",
    "default_repository", "echo", "find", "make_listener", "parse_date_range", "pull", "send",
]

log = logging.getLogger(__name__)


class NodeRepository(Protocol):
    def add(self, node: PacsNode, *, replace: bool = False) -> None: ...

    def get(self, name: str) -> PacsNode: ...

    def list(self) -> list[PacsNode]: ...

    def remove(self, name: str) -> None: ...


def _unknown(name: str, known: Iterable[str]) -> InputError:
    names = ", ".join(sorted(known)) or "none configured; add one with `oncohybrid pacs node add`"
    return InputError(f"no PACS node named {name!r} (known: {names})")


class InMemoryNodeRepository:
    """Nodes held in a dict (tests, embedding)."""

    def __init__(self, nodes: Iterable[PacsNode] = ()) -> None:
        self._nodes = {n.name: n for n in nodes}

    def add(self, node: PacsNode, *, replace: bool = False) -> None:
        if node.name in self._nodes and not replace:
            raise InputError(f"a PACS node named {node.name!r} exists (use --replace)")
        self._nodes[node.name] = node

    def get(self, name: str) -> PacsNode:
        if name not in self._nodes:
            raise _unknown(name, self._nodes)
        return self._nodes[name]

    def list(self) -> list[PacsNode]:
        return [self._nodes[k] for k in sorted(self._nodes)]

    def remove(self, name: str) -> None:
        if name not in self._nodes:
            raise _unknown(name, self._nodes)
        del self._nodes[name]


class SqlNodeRepository:
    """Nodes in the ``pacs_node`` table of the study database."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    @staticmethod
    def _to_node(rec: Any) -> PacsNode:
        return PacsNode(
            name=rec.name,
            ae_title=rec.ae_title,
            host=rec.host,
            port=rec.port,
            url=rec.url,
            auth=rec.auth,
            username=rec.username,
            secret=rec.secret,
            secret_env=rec.secret_env,
            accept_store=rec.accept_store,
            retrieve=rec.retrieve,
            description=rec.description or "",
        )

    def add(self, node: PacsNode, *, replace: bool = False) -> None:
        import sqlalchemy as sa

        from oncohybrid.store.db import session_scope
        from oncohybrid.store.models_pacs import PacsNodeRecord

        values = {
            "ae_title": node.ae_title,
            "host": node.host,
            "port": node.port,
            "url": node.url,
            "auth": node.auth.value,
            "username": node.username,
            "secret": node.secret,
            "secret_env": node.secret_env,
            "accept_store": node.accept_store,
            "retrieve": node.retrieve.value,
            "description": node.description,
        }
        with session_scope(self.settings) as s:
            rec = s.scalar(sa.select(PacsNodeRecord).where(PacsNodeRecord.name == node.name))
            if rec is not None and not replace:
                raise InputError(f"a PACS node named {node.name!r} exists (use --replace)")
            if rec is None:
                s.add(PacsNodeRecord(name=node.name, **values))
            else:
                for key, value in values.items():
                    setattr(rec, key, value)

    def _all(self) -> list[Any]:
        import sqlalchemy as sa

        from oncohybrid.store.db import session_scope
        from oncohybrid.store.models_pacs import PacsNodeRecord

        with session_scope(self.settings) as s:
            return list(s.scalars(sa.select(PacsNodeRecord).order_by(PacsNodeRecord.name)))

    def get(self, name: str) -> PacsNode:
        recs = self._all()
        for rec in recs:
            if rec.name == name:
                return self._to_node(rec)
        raise _unknown(name, (r.name for r in recs))

    def list(self) -> list[PacsNode]:
        return [self._to_node(r) for r in self._all()]

    def remove(self, name: str) -> None:
        import sqlalchemy as sa

        from oncohybrid.store.db import session_scope
        from oncohybrid.store.models_pacs import PacsNodeRecord

        with session_scope(self.settings) as s:
            gone = s.execute(sa.delete(PacsNodeRecord).where(PacsNodeRecord.name == name))
            if gone.rowcount == 0:
                known = [r for r in s.scalars(sa.select(PacsNodeRecord.name))]
                raise _unknown(name, known)


def default_repository(settings: Settings | None = None) -> NodeRepository:
    return SqlNodeRepository(settings)


# ---------------------------------------------------------------------- operations


def echo(node: PacsNode, *, calling_ae: str = "ONCOHYBRID") -> float:
    """C-ECHO for a DIMSE node, a one-study QIDO-RS probe for a DICOMweb node (seconds)."""
    if node.is_dicomweb:
        from oncohybrid.pacs import web

        return web.probe(node)
    from oncohybrid.pacs import dimse

    return dimse.echo(node, calling_ae=calling_ae)


def find(node: PacsNode, query: Any, *, calling_ae: str = "ONCOHYBRID") -> list[Any]:
    """Study-level search: C-FIND (DIMSE) or QIDO-RS (DICOMweb)."""
    if node.is_dicomweb:
        from oncohybrid.pacs import web

        return web.search_studies(node, query)
    from oncohybrid.pacs import dimse

    return dimse.find_studies(node, query, calling_ae=calling_ae)


@dataclass
class PullReport:
    """What a pull brought in; ``outcomes`` counts ingest outcomes (new/duplicate/skipped)."""

    node: str
    study_instance_uid: str
    method: str
    remote_completed: int | None = None
    remote_failed: int | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "study_instance_uid": self.study_instance_uid,
            "method": self.method,
            "remote_completed": self.remote_completed,
            "remote_failed": self.remote_failed,
            "outcomes": dict(self.outcomes),
            "note": self.note,
        }


def _make_ingestor(settings: Settings | None) -> Any:
    from oncohybrid.services.ingest import Ingestor

    return Ingestor(settings)


def pull(
    node: PacsNode,
    study_uid: str,
    *,
    settings: Settings | None = None,
    ingestor: Any = None,
    method: str | None = None,
    local_ae: str = "ONCOHYBRID",
    listen_host: str = "127.0.0.1",
    listen_port: int = 11112,
    timeout_s: float = 300.0,
) -> PullReport:
    """Retrieve one study into the platform and ingest it.

    ``method`` is ``wado`` for DICOMweb nodes, ``move`` or ``get`` for DIMSE nodes
    (default: the node's configured method). For C-MOVE a temporary Storage SCP is
    started on ``listen_host:listen_port`` as ``local_ae``; if that port is taken, a
    running ``oncohybrid listen`` is assumed to receive (and ingest) the study.
    """
    settings = settings or get_settings()
    own_ingestor = ingestor is None
    ingestor = ingestor if ingestor is not None else _make_ingestor(settings)

    def _ingest(ds: Any) -> str:
        return str(ingestor.ingest_dataset(ds, source="network").status)

    try:
        if node.is_dicomweb:
            if method not in (None, "wado"):
                raise InputError(f"node {node.name!r} is DICOMweb: --method must be wado")
            from oncohybrid.pacs import web

            outcomes = web.retrieve_study(node, study_uid, _ingest)
            if not outcomes:
                raise PacsError(f"node {node.name!r}: WADO-RS returned no instance of the study")
            return PullReport(node.name, study_uid, "wado", outcomes=outcomes)
        from oncohybrid.pacs import dimse

        method = method or node.retrieve.value
        if method == "get":
            res = dimse.get_study(node, study_uid, _ingest, calling_ae=local_ae)
            return PullReport(
                node.name, study_uid, "get", res.completed, res.failed, outcomes=res.outcomes
            )
        if method != "move":
            raise InputError(f"--method {method!r}: use move or get for a DIMSE node")
        return _pull_move(
            node, study_uid, settings, ingestor, local_ae, listen_host, listen_port, timeout_s
        )
    finally:
        if own_ingestor:
            ingestor.close()


def _pull_move(
    node: PacsNode,
    study_uid: str,
    settings: Settings,
    ingestor: Any,
    local_ae: str,
    listen_host: str,
    listen_port: int,
    timeout_s: float,
) -> PullReport:
    from oncohybrid.pacs import dimse
    from oncohybrid.pacs.scp import StorageListener

    listener = StorageListener(
        ingestor,
        spool_dir=settings.home / "spool" / f"pull-{listen_port}",
        ae_title=local_ae,
        host=listen_host,
        port=listen_port,
        allowed_callers=allowed_callers(settings),
        quiet_period_s=60,
        close_ingestor=False,
    )
    try:
        listener.start()
    except PacsError:
        res = dimse.move_study(node, study_uid, destination_ae=local_ae, calling_ae=local_ae)
        return PullReport(
            node.name, study_uid, "move", res.completed, res.failed,
            note=f"port {listen_port} is in use: the running listener received the instances",
        )
    try:
        res = dimse.move_study(node, study_uid, destination_ae=local_ae, calling_ae=local_ae)
        if not listener.flush(timeout_s):
            raise PacsError(f"pull: indexing did not finish within {timeout_s:.0f} s")
    finally:
        listener.stop(grace_s=5)
    stats = listener.stats.as_dict()
    outcomes = {
        k: v
        for k, v in (
            ("new", stats["indexed_new"]),
            ("duplicate", stats["indexed_duplicate"]),
            ("conflict", stats["indexed_conflict"]),
            ("skipped", stats["indexed_skipped"] + stats["index_failed"]),
        )
        if v
    }
    return PullReport(node.name, study_uid, "move", res.completed, res.failed, outcomes=outcomes)


@dataclass
class SendReport:
    node: str
    sent: int
    failed: list[tuple[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "sent": self.sent,
            "failed": [{"file": f, "reason": r} for f, r in self.failed],
        }


def send(
    node: PacsNode, files: Sequence[Path | str], *, calling_ae: str = "ONCOHYBRID"
) -> SendReport:
    """Send DICOM files (our SR/SEG/PDF objects) by C-STORE or STOW-RS."""
    from oncohybrid.pacs import dimse

    if not files:
        raise InputError("pacs send: no files given")
    items = dimse.read_for_sending(Path(f) for f in files)
    if node.is_dicomweb:
        from oncohybrid.pacs import web

        web.store(node, [ds for _p, ds in items])
        return SendReport(node.name, len(items), [])
    res = dimse.store_files(node, items, calling_ae=calling_ae)
    return SendReport(node.name, res.sent, res.failed)


def allowed_callers(
    settings: Settings | None = None, repo: NodeRepository | None = None
) -> list[Any]:
    """The listener allow-list: DIMSE nodes configured with ``accept_store``."""
    from oncohybrid.pacs.scp import AllowedCaller

    repo = repo or default_repository(settings)
    return [
        AllowedCaller(n.ae_title or "", n.host or "")
        for n in repo.list()
        if n.accept_store and not n.is_dicomweb
    ]


def default_receive_processes() -> int:
    """Receiver processes ``oncohybrid listen`` starts by default (see docs/pacs.md)."""
    from oncohybrid.pacs.scp import default_receive_processes as default

    return default()


def make_listener(
    *,
    settings: Settings | None = None,
    ae_title: str = "ONCOHYBRID",
    host: str = "127.0.0.1",
    port: int = 11112,
    quiet_period_s: float = 30.0,
    hook_names: Sequence[str] = ("log",),
    ingestor: Any = None,
    repo: NodeRepository | None = None,
    receive_processes: int | None = None,
    association_request_timeout_s: float = 5.0,
    max_pending_per_source: int = 32,
    max_associations_per_source: int = 16,
    check_called_ae: bool = True,
    max_spooled: int | None = None,
) -> Any:
    """A configured (not yet started) Storage SCP writing into the workspace.

    ``receive_processes`` > 0 hands associations to that many receiver processes (faster on
    several cores; see docs/pacs.md); None or 0 receives in this process. The connection
    limits (request timeout, per-address limits, called AE title check) are those of
    :class:`oncohybrid.pacs.scp.StorageListener`; ``max_spooled`` bounds the instances
    acknowledged but not yet indexed (None: the listener's default, 0: unbounded).
    """
    from oncohybrid.pacs.hooks import resolve_study_hooks
    from oncohybrid.pacs.scp import StorageListener

    settings = settings or get_settings()
    hooks = resolve_study_hooks(hook_names)
    return StorageListener(
        ingestor if ingestor is not None else _make_ingestor(settings),
        spool_dir=settings.home / "spool" / f"listen-{port}",
        ae_title=ae_title,
        host=host,
        port=port,
        allowed_callers=allowed_callers(settings, repo),
        quiet_period_s=quiet_period_s,
        hooks=hooks,
        receive_processes=receive_processes,
        association_request_timeout_s=association_request_timeout_s,
        max_pending_per_source=max_pending_per_source,
        max_associations_per_source=max_associations_per_source,
        check_called_ae=check_called_ae,
        **({} if max_spooled is None else {"max_spooled": max_spooled}),
    )
