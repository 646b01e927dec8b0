"""Use-case: the fellowship programme (issue #13): calls, eligibility, applications,
selection, the fellow's year, the logbook derived from the platform, sign-off, final
report and certificate.

Pure rules live in :mod:`oncohybrid.fellowship`; this module reads and writes the
workspace (calls loaded with ``oncohybrid fellowship call load`` are kept under
``<home>/fellowship/calls/``, the rest in the database) and audits every change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError
from oncohybrid.fellowship import call as callmod
from oncohybrid.fellowship.applicant import Applicant, load_applicant, parse_applicant
from oncohybrid.fellowship.call import Call
from oncohybrid.fellowship.grant import Schedule, schedule
from oncohybrid.fellowship.rules import Eligibility, evaluate
from oncohybrid.services import audit

__all__ = ["get_call", "list_calls", "load_call_file", "eligibility", "eligibility_of_data",
           "grant_schedule"]


def _calls_dir(settings: Settings) -> Path:
    return settings.home / "fellowship" / "calls"


def get_call(settings: Settings | None, call_id: str | None = None) -> Call:
    """A call loaded into the workspace, else a bundled one (default: the ESOR 2021 call)."""
    settings = settings or get_settings()
    cid = call_id or callmod.DEFAULT_CALL
    path = _calls_dir(settings) / f"{cid}.yaml"
    if path.is_file():
        return callmod.load_call(path)
    if cid in callmod.bundled_ids():
        return callmod.bundled_call(cid)
    known = sorted({*callmod.bundled_ids(), *(p.stem for p in _calls_dir(settings).glob("*.yaml"))})
    raise InputError(f"--call: no call {cid!r} in the workspace or the package (known: "
                     f"{', '.join(known)})")


def list_calls(settings: Settings | None = None) -> list[Call]:
    settings = settings or get_settings()
    ids = {*callmod.bundled_ids(), *(p.stem for p in _calls_dir(settings).glob("*.yaml"))}
    return [get_call(settings, i) for i in sorted(ids)]


def load_call_file(settings: Settings | None, path: str | Path, *, actor: str = "cli") -> Call:
    """Validate a call file and keep it in the workspace under its id (replacing an earlier
    version of the same id); audited."""
    settings = settings or get_settings()
    call = callmod.load_call(path)
    folder = _calls_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{call.id}.yaml"
    replaced = target.exists()
    target.write_text(Path(path).read_text(encoding="utf-8"), encoding="utf-8")
    audit.record(settings, actor, "fellowship.call.load", f"call:{call.id}",
                 {"replaced": replaced, "rules": len(call.rules)})
    return call


def eligibility(settings: Settings | None, applicant_path: str | Path,
                call_id: str | None = None) -> Eligibility:
    """Judge an applicant file against a call (pure rules; nothing is stored)."""
    call = get_call(settings, call_id)
    return evaluate(call, load_applicant(applicant_path, call))


def eligibility_of_data(settings: Settings | None, data: dict[str, Any],
                        call_id: str | None = None) -> tuple[Applicant, Eligibility]:
    call = get_call(settings, call_id)
    a = parse_applicant(data, call)
    return a, evaluate(call, a)


def grant_schedule(settings: Settings | None, call_id: str | None = None) -> Schedule:
    return schedule(get_call(settings, call_id))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
