"""Areas of the web application that live in their own modules.

The reading room (worklist, patient, viewer, lesions, administration, batches) is built in
:mod:`oncohybrid.web.app`. Each further area (fellowship programme, teaching file, tumour
boards, research studies, breast imaging, nuclear medicine, scanner QC) is one module
``oncohybrid.web.<area>`` with ``register(app, ctx)``: it adds its routes, its navigation
links and, for roles that see no clinical page, the role's home page. Its templates live
in ``web/templates/<area>/`` and extend ``base.html``. A module that does not exist yet is
skipped, so an area can land without touching the others.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from oncohybrid.config import Settings
from oncohybrid.deid.engine import TEXT_DATES
from oncohybrid.services.users import Role, SessionInfo

__all__ = ["AREA_MODULES", "NavLink", "WebContext", "register_areas"]

#: The area modules, in the order of their navigation links.
AREA_MODULES = [
    "oncohybrid.web.boards",  # tumour boards (issue #15)
    "oncohybrid.web.teaching",  # teaching file and self-assessment (issue #14)
    "oncohybrid.web.research",  # research studies, cohorts, CRFs, dashboard (issue #16)
    "oncohybrid.web.breast",  # BI-RADS reporting and audit (issue #21)
    "oncohybrid.web.nuclear",  # SPECT, dosimetry, PSMA/SSTR (issue #20)
    "oncohybrid.web.qc",  # scanner registry, phantom QC, EARL (issue #20)
    "oncohybrid.web.fellowship",  # fellowship programme (issue #13)
    "oncohybrid.web.biomarkers",  # AI segmentation and radiomics jobs (issue #18)
    "oncohybrid.web.viewer_advanced",  # MR diffusion, CEUS cine, DECT iodine viewer (#19)
]


@dataclass(frozen=True)
class NavLink:
    """A link of the top bar, shown to the listed roles only."""

    label: str
    href: str
    roles: frozenset[Role]


@dataclass
class WebContext:
    """What an area module gets from the application.

    ``page(request, template, session, status=200, **context)`` renders a template with
    the signed-in user, the CSRF token and the navigation; ``client(request)`` is the
    caller's address for the audit log.
    """

    settings: Settings
    templates: Jinja2Templates
    page: Callable[..., HTMLResponse]
    client: Callable[[Request], str | None]
    nav: list[NavLink] = field(default_factory=list)
    #: Where ``/`` sends a role that opens no clinical page (e.g. applicants).
    homes: dict[Role, str] = field(default_factory=dict)
    #: Buttons of the patient page: (label, href with ``{pk}``, roles), e.g. "Add to a
    #: tumour board" -> ``/boards/add?patient={pk}``.
    patient_actions: list[tuple[str, str, frozenset[Role]]] = field(default_factory=list)
    #: Warnings shown on the patient page (e.g. "SUV not harmonised: scanner QC failed"):
    #: functions of (settings, patient_pk) returning plain sentences, or of (settings,
    #: patient_pk, session) where what is shown depends on who looks.
    patient_notes: list[Callable[..., list[str]]] = field(default_factory=list)

    #: Badges of worklist rows (e.g. "follow-up CT due 2027-01-05", "interim PET overdue"):
    #: functions of (settings, patient pks of the page) returning {pk: [short text, …]},
    #: or of (settings, pks, session) where what is shown depends on who looks.
    worklist_badges: list[Callable[..., dict[int, list[str]]]] = field(default_factory=list)

    def badges_for(self, patient_pks: list[int],
                   sess: SessionInfo | None = None) -> dict[int, list[str]]:
        out: dict[int, list[str]] = {}
        for fn in self.worklist_badges:
            for pk, texts in _call(fn, self.settings, patient_pks, sess).items():
                out.setdefault(pk, []).extend(_for_viewer(t, sess) for t in texts)
        return out

    def add_nav(self, label: str, href: str, *roles: Role) -> None:
        self.nav.append(NavLink(label, href, frozenset(roles)))

    def add_patient_action(self, label: str, href: str, *roles: Role) -> None:
        self.patient_actions.append((label, href, frozenset(roles)))

    def actions_for(self, sess: SessionInfo, patient_pk: int) -> list[tuple[str, str]]:
        return [(label, href.format(pk=patient_pk))
                for label, href, roles in self.patient_actions if sess.user.role in roles]

    def notes_for(self, patient_pk: int, sess: SessionInfo | None = None) -> list[str]:
        return [_for_viewer(note, sess) for fn in self.patient_notes
                for note in _call(fn, self.settings, patient_pk, sess)]

    def nav_for(self, sess: SessionInfo | None) -> list[NavLink]:
        if sess is None:
            return []
        return [link for link in self.nav if sess.user.role in link.roles]


def _for_viewer(text: str, sess: SessionInfo | None) -> str:
    """An area's badge or note as the viewer may see it: researchers see pseudonymised
    pages without calendar dates (web/privacy.py), whatever the area wrote."""
    if sess is not None and sess.user.role.sees_identity:
        return text
    return TEXT_DATES.sub("[date withheld]", text)


def _call(fn: Callable[..., Any], settings: Settings, what: Any,
          sess: SessionInfo | None) -> Any:
    """``fn(settings, what)``, or ``fn(settings, what, sess)`` for providers that take the
    viewer's session (a third positional parameter)."""
    if _takes_session(fn):
        return fn(settings, what, sess)
    return fn(settings, what)


@functools.cache
def _takes_session(fn: Callable[..., Any]) -> bool:
    """Whether a provider has a third positional parameter (looked up once per provider,
    not on every page)."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # builtins without a signature
        return False
    return len(params) >= 3


def register_areas(app: FastAPI, ctx: WebContext, modules: list[str] | None = None) -> list[str]:
    """Import each area module and call its ``register(app, ctx)``; the names registered."""
    done: list[str] = []
    for name in AREA_MODULES if modules is None else modules:
        try:
            mod: Any = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # the area has not landed
            if exc.name != name:
                raise
            continue
        mod.register(app, ctx)
        done.append(name)
    return done
