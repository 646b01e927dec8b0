"""Research studies (issue #16): studies, cohorts, examination tracking, CRFs, export.

Use-cases around the pure package :mod:`oncohybrid.research` (REDCap logic and data
dictionaries, cohort criteria and CONSORT flow, protocol schedules) and the tables of
:mod:`oncohybrid.store.models_research`:

- a study has a title, a protocol (its examination schedule), an ethics approval
  (number, date, the approval file kept in the workspace with its SHA-256),
  investigators with study roles and data-access groups (DAGs);
- a cohort is a saved query over the patients' imaging and clinical facts; saving it
  records every patient's outcome with reasons and makes a study record (REDCap's
  "record") for each included patient, in the DAG given;
- each record's exams are matched to the protocol (done / due / overdue / missing /
  out of window) from the stored studies;
- CRF data are entered form by form against the data dictionary (validation, branching
  logic, calculated fields), imaging results flow into ``@IMAGING`` fields without typing,
  timepoint-repeating forms get one instance per imaging timepoint, a complete form can
  be locked with an e-signature (the signer's password re-entered), and every change is
  kept in the study's data log (``research_crf_audit``) and the platform's audit log
  (without values: no PHI there);
- :func:`export_study` writes the study's tables page by page (bounded memory), as CSV
  (REDCap-compatible CRF file) or Parquet, de-identified with the image key store
  (:func:`oncohybrid.services.deid.patient_key`: the same pseudonym, date shift and UIDs
  as the de-identified images).

Access: a :class:`Viewer` is who asks. ``cli`` (the local operator) and web administrators
see every study; other users see the studies they are members of, and a member in a DAG
sees only that group's records. Researchers (role without identity) see pseudonyms and
export de-identified only.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from oncohybrid import __version__
from oncohybrid.config import Settings, get_settings
from oncohybrid.errors import InputError
from oncohybrid.research import cohort as cohort_mod
from oncohybrid.research import redcap
from oncohybrid.research.schedule import (
    STATUSES,
    Exam,
    Protocol,
    match_exams,
    parse_protocol,
    status_counts,
)
from oncohybrid.services import audit
from oncohybrid.store.db import session_scope
from oncohybrid.store.models import Patient, Series, Study
from oncohybrid.store.models_record import AssessmentRecord, Lesion, Observation, Timepoint
from oncohybrid.store.models_research import (
    ResearchClinical,
    ResearchCohort,
    ResearchCohortPatient,
    ResearchCrfAudit,
    ResearchCrfForm,
    ResearchCrfValue,
    ResearchDag,
    ResearchExport,
    ResearchMember,
    ResearchRecord,
    ResearchStudy,
)

__all__ = ["Viewer", "CLI", "create_study", "list_studies", "study_info", "save_cohort",
           "cohort_patient_ids", "schedule", "import_dictionary", "import_records",
           "export_records", "save_form", "lock_form", "unlock_form", "export_study",
           "logbook_entries", "dashboard", "form_view", "import_clinical", "sync_imaging",
           "STUDY_ROLES", "worklist_badges"]

STUDY_ROLES = ("pi", "investigator", "data-manager", "statistician", "fellow")
#: Study roles that may enter CRF data / lock forms / define cohorts and dictionaries.
_ENTER = {"pi", "investigator", "data-manager", "fellow"}
_SIGN = {"pi", "investigator"}
_DESIGN = {"pi", "data-manager"}
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
#: Records per page of the export (each page: one query per table).
PAGE_SIZE = 500
EXPORT_TABLES = ("patients", "timepoints", "lesions", "measurements", "responses", "crf")


@dataclass(frozen=True)
class Viewer:
    """Who asks: a web user (name, platform role) or the local command line."""

    username: str
    role: str = "cli"  # cli | admin | physician | fellow | researcher | mentor

    @property
    def superuser(self) -> bool:
        return self.role in ("cli", "admin")

    @property
    def sees_identity(self) -> bool:
        return self.role != "researcher"


CLI = Viewer("cli", "cli")


@dataclass
class _Access:
    study: ResearchStudy
    member: ResearchMember | None
    dag_pk: int | None  # restrict to this group; None: all

    def can(self, what: set[str], viewer: Viewer) -> bool:
        return viewer.superuser or (self.member is not None and self.member.role in what)


def _study(s: Session, key: str) -> ResearchStudy:
    st = s.scalar(sa.select(ResearchStudy).where(ResearchStudy.key == key))
    if st is None and key.isdigit():
        st = s.get(ResearchStudy, int(key))
    if st is None:  # the exact title, when only one study has it
        found = s.scalars(sa.select(ResearchStudy).where(ResearchStudy.title == key)
                          .limit(2)).all()
        st = found[0] if len(found) == 1 else None
    if st is None:
        raise InputError(f"no research study {key!r}")
    return st


def _access(s: Session, key: str, viewer: Viewer) -> _Access:
    st = _study(s, key)
    if viewer.superuser:
        return _Access(st, None, None)
    m = s.scalar(sa.select(ResearchMember).where(ResearchMember.study_pk == st.id,
                                                 ResearchMember.username == viewer.username))
    if m is None:
        # Same message as an unknown study: a non-member learns nothing of it.
        raise InputError(f"no research study {key!r}")
    return _Access(st, m, m.dag_pk)


def _records_q(acc: _Access) -> sa.Select:
    q = sa.select(ResearchRecord).where(ResearchRecord.study_pk == acc.study.id)
    if acc.dag_pk is not None:
        q = q.where(ResearchRecord.dag_pk == acc.dag_pk)
    return q


def _parse_date(value: str | dt.date | None, what: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{what}: {value!r} is not a date YYYY-MM-DD") from None


def load_protocol_file(path: str | Path) -> dict[str, Any]:
    """A protocol from YAML or JSON, validated (returns its JSON form)."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML/JSON ({exc})") from None
    return parse_protocol(doc, str(p)).to_json()


def _research_dir(settings: Settings, key: str) -> Path:
    return settings.home / "research" / key


# --------------------------------------------------------------------------- studies


def create_study(key: str, title: str, *, protocol: Mapping[str, Any] | None = None,
                 ethics_number: str | None = None, ethics_date: str | dt.date | None = None,
                 ethics_file: str | Path | None = None,
                 investigators: Sequence[tuple[str, str, str | None]] = (),
                 dags: Sequence[str] = (), actor: str = "cli",
                 settings: Settings | None = None) -> dict[str, Any]:
    """Create a study; ``investigators`` are (username, study role, DAG name or None)."""
    settings = settings or get_settings()
    if not _KEY.match(key) and (not title or title == key):
        # A title given as the key ("Interim PET in lymphoma") gets a key made from it.
        title = key
        key = re.sub(r"[^A-Za-z0-9_.\-]+", "-", key).strip("-.")[:64]
    if not _KEY.match(key):
        raise InputError(f"study key {key!r}: use letters, digits, '_', '-', '.' (≤ 64)")
    title = (title or key).strip()
    proto = parse_protocol(protocol, "--protocol").to_json() if protocol else None
    edate = _parse_date(ethics_date, "--ethics-date")
    efile: Path | None = Path(ethics_file) if ethics_file else None
    if efile is not None and not efile.is_file():
        raise InputError(f"--ethics-file {efile}: no such file")
    for name in dags:
        if not _KEY.match(name):
            raise InputError(f"data-access group {name!r}: use letters, digits, '_', '-'")
    for user, role, dag in investigators:
        if role not in STUDY_ROLES:
            raise InputError(f"investigator {user!r}: study role {role!r} is not one of "
                             f"{', '.join(STUDY_ROLES)}")
        if dag is not None and dag not in dags:
            raise InputError(f"investigator {user!r}: data-access group {dag!r} is not "
                             f"declared (--dag)")
    with session_scope(settings) as s:
        if s.scalar(sa.select(ResearchStudy.id).where(ResearchStudy.key == key)) is not None:
            raise InputError(f"research study {key!r} exists already")
        st = ResearchStudy(key=key, title=title[:512], protocol=proto,
                           ethics_number=ethics_number, ethics_date=edate, repeating={},
                           created_by=actor)
        if efile is not None:
            dest = _research_dir(settings, key) / "ethics" / efile.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(efile, dest)
            st.ethics_file = str(dest.relative_to(settings.home))
            st.ethics_file_sha256 = hashlib.sha256(dest.read_bytes()).hexdigest()
        s.add(st)
        s.flush()
        dag_pk = {}
        for name in dict.fromkeys(dags):
            d = ResearchDag(study_pk=st.id, name=name)
            s.add(d)
            s.flush()
            dag_pk[name] = d.id
        for user, role, dag in investigators:
            s.add(ResearchMember(study_pk=st.id, username=user, role=role,
                                 dag_pk=dag_pk[dag] if dag else None))
        s.flush()
        out = _study_json(s, st)
    audit.record(settings, actor, "research.study.create", f"study:{key}",
                 {"investigators": len(investigators), "dags": len(dags)})
    return out


def add_member(key: str, username: str, role: str, dag: str | None = None, *,
               actor: str = "cli", settings: Settings | None = None) -> None:
    """Add (or change) an investigator of a study."""
    settings = settings or get_settings()
    if role not in STUDY_ROLES:
        raise InputError(f"study role {role!r} is not one of {', '.join(STUDY_ROLES)}")
    with session_scope(settings) as s:
        st = _study(s, key)
        dag_pk = _dag_pk(s, st, dag) if dag else None
        m = s.scalar(sa.select(ResearchMember).where(ResearchMember.study_pk == st.id,
                                                     ResearchMember.username == username))
        if m is None:
            s.add(ResearchMember(study_pk=st.id, username=username, role=role, dag_pk=dag_pk))
        else:
            m.role, m.dag_pk = role, dag_pk
    audit.record(settings, actor, "research.member", f"study:{key}",
                 {"user": username, "role": role})


def _dag_pk(s: Session, st: ResearchStudy, name: str) -> int:
    pk = s.scalar(sa.select(ResearchDag.id).where(ResearchDag.study_pk == st.id,
                                                  ResearchDag.name == name))
    if pk is None:
        raise InputError(f"study {st.key!r} has no data-access group {name!r}")
    return pk


def _study_json(s: Session, st: ResearchStudy) -> dict[str, Any]:
    dags = {d.id: d.name for d in s.scalars(sa.select(ResearchDag)
                                            .where(ResearchDag.study_pk == st.id))}
    members = s.scalars(sa.select(ResearchMember).where(ResearchMember.study_pk == st.id)
                        .order_by(ResearchMember.id)).all()
    n_records = s.scalar(sa.select(sa.func.count(ResearchRecord.id))
                         .where(ResearchRecord.study_pk == st.id)) or 0
    cohorts = s.scalars(sa.select(ResearchCohort.name).where(ResearchCohort.study_pk == st.id)
                        .order_by(ResearchCohort.id)).all()
    return {
        "study": st.key, "title": st.title, "protocol": st.protocol,
        "ethics": {"number": st.ethics_number,
                   "date": st.ethics_date.isoformat() if st.ethics_date else None,
                   "file": Path(st.ethics_file).name if st.ethics_file else None,
                   "sha256": st.ethics_file_sha256},
        "investigators": [{"username": m.username, "role": m.role,
                           "dag": dags.get(m.dag_pk) if m.dag_pk else None} for m in members],
        "dags": sorted(dags.values()), "cohorts": list(cohorts), "records": int(n_records),
        "forms": redcap.from_json(st.dictionary).forms if st.dictionary else [],
        "repeating": st.repeating or {},
        "created_by": st.created_by, "created_at": st.created_at.isoformat(timespec="seconds"),
    }


def study_info(key: str, viewer: Viewer = CLI, settings: Settings | None = None
               ) -> dict[str, Any]:
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        out = _study_json(s, acc.study)
        out["my_role"] = acc.member.role if acc.member else viewer.role
        out["my_dag"] = (s.get(ResearchDag, acc.dag_pk).name if acc.dag_pk else None)
        return out


def list_studies(viewer: Viewer = CLI, settings: Settings | None = None) -> list[dict]:
    with session_scope(settings) as s:
        q = sa.select(ResearchStudy).order_by(ResearchStudy.key)
        if not viewer.superuser:
            q = q.join(ResearchMember, ResearchMember.study_pk == ResearchStudy.id).where(
                ResearchMember.username == viewer.username)
        return [{"study": st.key, "title": st.title} for st in s.scalars(q)]


def set_protocol(key: str, protocol: Mapping[str, Any], *, actor: str = "cli",
                 settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or get_settings()
    proto = parse_protocol(protocol, "protocol").to_json()
    with session_scope(settings) as s:
        _study(s, key).protocol = proto
    audit.record(settings, actor, "research.protocol", f"study:{key}",
                 {"timepoints": len(proto["timepoints"])})
    return proto


# --------------------------------------------------------------------------- facts


@lru_cache(maxsize=512)
def tracer_family(name: str | None, modality: str = "PT") -> str:
    """Tracer family of a stored (0018,0031) Radiopharmaceutical text (dicom.tracer)."""
    from pydicom import Dataset

    from oncohybrid.dicom.tracer import identify_tracer

    ds = Dataset()
    ds.Modality = modality
    if name:
        item = Dataset()
        item.Radiopharmaceutical = name
        ds.RadiopharmaceuticalInformationSequence = [item]
    return identify_tracer(ds).family


def _exams_by_patient(s: Session, pks: Sequence[int]) -> dict[int, list[Exam]]:
    out: dict[int, dict[int, dict[str, Any]]] = {pk: {} for pk in pks}
    rows = s.execute(sa.select(Study.patient_pk, Study.id, Study.study_date, Series.modality,
                               Series.radiopharmaceutical)
                     .join(Series, Series.study_pk == Study.id)
                     .where(Study.patient_pk.in_(pks)))
    for ppk, spk, date, modality, pharm in rows:
        if date is None:
            continue
        e = out[ppk].setdefault(spk, {"date": date, "mod": set(), "tr": set()})
        e["mod"].add(modality)
        if modality in ("PT", "NM"):
            e["tr"].add(tracer_family(pharm, modality))
    return {pk: sorted((Exam(spk, e["date"], frozenset(e["mod"]), frozenset(e["tr"]))
                        for spk, e in d.items()), key=lambda x: (x.date, x.key))
            for pk, d in out.items()}


def _latest_assessments(s: Session, pks: Sequence[int]) -> dict[int, dict[str, AssessmentRecord]]:
    out: dict[int, dict[str, AssessmentRecord]] = {pk: {} for pk in pks}
    for r in s.scalars(sa.select(AssessmentRecord).where(AssessmentRecord.patient_pk.in_(pks))
                       .order_by(AssessmentRecord.id)):
        out[r.patient_pk][r.criterion] = r
    return out


def _clinical(s: Session, study_pk: int, pks: Sequence[int]) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {pk: {} for pk in pks}
    for r in s.scalars(sa.select(ResearchClinical).where(ResearchClinical.study_pk == study_pk,
                                                         ResearchClinical.patient_pk.in_(pks))):
        out[r.patient_pk][r.field] = r.value
    return out


def _age(birth: dt.date | None, at: dt.date | None) -> int | None:
    if birth is None or at is None:
        return None
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))


def _tp_metrics(s: Session, pks: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Per patient, per record timepoint: the imaging values @IMAGING fields take."""
    tps: dict[int, list[Timepoint]] = {pk: [] for pk in pks}
    for t in s.scalars(sa.select(Timepoint).where(Timepoint.patient_pk.in_(pks))
                       .order_by(Timepoint.patient_pk, Timepoint.scan_date)):
        tps[t.patient_pk].append(t)
    agg: dict[int, dict[str, Any]] = {}
    q = (sa.select(Observation.timepoint_pk, Observation.present, Observation.suv_max,
                   Observation.suv_peak, Observation.sul_peak, Observation.mtv_ml,
                   Observation.tlg_suv_ml, Observation.ld_mm)
         .join(Timepoint, Observation.timepoint_pk == Timepoint.id)
         .where(Timepoint.patient_pk.in_(pks), Observation.in_use.is_(True)))
    for tpk, present, smax, speak, lpeak, mtv, tlg, ld in s.execute(q):
        a = agg.setdefault(tpk, {"n": 0, "smax": [], "speak": [], "lpeak": [], "mtv": [],
                                 "tlg": [], "ld": []})
        if not present:
            continue
        a["n"] += 1
        for k, v in (("smax", smax), ("speak", speak), ("lpeak", lpeak), ("mtv", mtv),
                     ("tlg", tlg), ("ld", ld)):
            if v is not None:
                a[k].append(float(v))
    assessments = _latest_assessments(s, pks)
    out: dict[int, list[dict[str, Any]]] = {}
    for pk in pks:
        rows = []
        for t in tps[pk]:
            a = agg.get(t.id, {"n": 0, "smax": [], "speak": [], "lpeak": [], "mtv": [],
                               "tlg": [], "ld": []})
            row: dict[str, Any] = {
                "scan_date": t.scan_date.isoformat(), "days_since_baseline":
                t.days_since_baseline, "tp_label": t.label,
                "treatment_line": t.treatment_line or "", "n_lesions": a["n"],
                "suvmax_max": max(a["smax"]) if a["smax"] else "",
                "suvpeak_max": max(a["speak"]) if a["speak"] else "",
                "sulpeak_max": max(a["lpeak"]) if a["lpeak"] else "",
                "tmtv_ml": sum(a["mtv"]) if a["mtv"] else "",
                "tlg_total": sum(a["tlg"]) if a["tlg"] else "",
                "sum_ld_mm": sum(a["ld"]) if a["ld"] else ""}
            for crit, rec in assessments[pk].items():
                for tr in (rec.result_json or {}).get("timepoints", []):
                    if tr.get("date") == row["scan_date"]:
                        row[f"response:{crit}"] = tr.get("overall") or ""
            rows.append(row)
        out[pk] = rows
    return out


def _facts(s: Session, study: ResearchStudy, patients: Sequence[Patient]
           ) -> dict[int, dict[str, Any]]:
    pks = [p.id for p in patients]
    exams = _exams_by_patient(s, pks)
    clinical = _clinical(s, study.id, pks)
    assessments = _latest_assessments(s, pks)
    tpm = _tp_metrics(s, pks)
    crf: dict[int, dict[str, str]] = {pk: {} for pk in pks}
    for ppk, fld, val in s.execute(
            sa.select(ResearchRecord.patient_pk, ResearchCrfValue.field, ResearchCrfValue.value)
            .join(ResearchCrfValue, ResearchCrfValue.record_pk == ResearchRecord.id)
            .where(ResearchRecord.study_pk == study.id, ResearchRecord.patient_pk.in_(pks),
                   ResearchCrfValue.instance == 1)):
        crf[ppk][fld] = val
    out: dict[int, dict[str, Any]] = {}
    for p in patients:
        ex = exams[p.id]
        first = ex[0].date if ex else None
        f: dict[str, Any] = {**crf[p.id], **clinical[p.id]}
        f.update({
            "sex": (p.patient_sex or "").upper()[:1], "age": _age(p.patient_birth_date, first)
            if first else "",
            "n_exams": len(ex), "n_pet": sum("PT" in e.modalities for e in ex),
            "n_ct": sum("CT" in e.modalities for e in ex),
            "n_mr": sum("MR" in e.modalities for e in ex),
            "first_exam": first.isoformat() if first else "",
            "last_exam": ex[-1].date.isoformat() if ex else "",
            "n_timepoints": len(tpm[p.id]),
            "treatment_lines": len({t["treatment_line"] for t in tpm[p.id]
                                    if t["treatment_line"]}),
        })
        if f["age"] is None:
            f["age"] = ""
        f.update(cohort_mod.multi_fact("tracer", {t for e in ex for t in e.tracers}))
        f.update(cohort_mod.multi_fact("modality", {m for e in ex for m in e.modalities}))
        f.update(cohort_mod.multi_fact("assessed", assessments[p.id]))
        for crit, rec in assessments[p.id].items():
            key = re.sub(r"[^a-z0-9]+", "_", crit.lower())
            f[f"bor_{key}"] = rec.best_overall_response or ""
            tps = (rec.result_json or {}).get("timepoints") or []
            f[f"last_{key}"] = (tps[-1].get("overall") or "") if tps else ""
        if tpm[p.id]:
            f["tmtv_baseline_ml"] = tpm[p.id][0]["tmtv_ml"]
            f["suvmax_baseline"] = tpm[p.id][0]["suvmax_max"]
        out[p.id] = f
    return out


def import_clinical(key: str, path: str | Path, *, actor: str = "cli",
                    settings: Settings | None = None) -> dict[str, Any]:
    """Clinical data of a study from CSV: a ``patient_id`` column, one column per fact
    (tumour_type, ecog, stage, treatment_start …). Unknown patients are refused."""
    settings = settings or get_settings()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    with p.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip() for c in reader.fieldnames or []]
        if "patient_id" not in cols:
            raise InputError(f"{p}: the clinical data need a 'patient_id' column")
        for c in cols:
            if c != "patient_id" and not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", c):
                raise InputError(f"{p}: column {c!r}: use lower-case letters, digits, _")
        rows = list(reader)
    n = 0
    with session_scope(settings) as s:
        st = _study(s, key)
        for i, row in enumerate(rows, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            pid = row.pop("patient_id", "")
            ppk = s.scalar(sa.select(Patient.id).where(Patient.patient_id == pid))
            if ppk is None:
                raise InputError(f"{p} row {i}: no stored patient with Patient ID {pid!r}")
            for fld, val in row.items():
                r = s.scalar(sa.select(ResearchClinical).where(
                    ResearchClinical.study_pk == st.id, ResearchClinical.patient_pk == ppk,
                    ResearchClinical.field == fld))
                if r is None:
                    s.add(ResearchClinical(study_pk=st.id, patient_pk=ppk, field=fld, value=val))
                else:
                    r.value = val
            n += 1
    audit.record(settings, actor, "research.clinical.import", f"study:{key}", {"patients": n})
    return {"patients": n, "fields": [c for c in cols if c != "patient_id"]}


# --------------------------------------------------------------------------- cohorts


def save_cohort(key: str, name: str, criteria: Sequence[cohort_mod.Criterion], *,
                dag: str | None = None, figure: str | Path | None = None,
                viewer: Viewer = CLI, settings: Settings | None = None) -> dict[str, Any]:
    """Evaluate ``criteria`` over every stored patient, save the cohort (replacing one of
    the same name), make a record for each included patient (in ``dag``)."""
    settings = settings or get_settings()
    if not name.strip() or "/" in name:
        raise InputError(f"cohort name {name!r}: give a name without '/'")
    query = cohort_mod.CohortQuery(tuple(criteria))
    if not query.criteria:
        raise InputError("a cohort needs at least one --include or --exclude criterion")
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        if not acc.can(_DESIGN, viewer) or acc.dag_pk is not None:
            raise InputError(f"study {key!r}: only the PI or a data manager of all groups "
                             "defines cohorts")
        st = acc.study
        dag_pk = _dag_pk(s, st, dag) if dag else None
        patients = s.scalars(sa.select(Patient).order_by(Patient.patient_id, Patient.id)).all()
        facts: dict[int, dict[str, Any]] = {}
        for i in range(0, len(patients), PAGE_SIZE):
            facts.update(_facts(s, st, patients[i:i + PAGE_SIZE]))
        outcomes, flow = cohort_mod.evaluate_cohort(
            query, ((p.id, facts[p.id]) for p in patients))
        old = s.scalar(sa.select(ResearchCohort).where(ResearchCohort.study_pk == st.id,
                                                       ResearchCohort.name == name))
        if old is not None:
            s.delete(old)
            s.flush()
        c = ResearchCohort(study_pk=st.id, name=name, query=query.to_json(),
                           flow=flow.to_json(), created_by=viewer.username)
        s.add(c)
        s.flush()
        by_pk = {p.id: p for p in patients}
        existing = {r.patient_pk: r for r in s.scalars(
            sa.select(ResearchRecord).where(ResearchRecord.study_pk == st.id))}
        next_id = _next_record_number(s, st.id)
        out_patients = []
        for o in outcomes:
            s.add(ResearchCohortPatient(cohort_pk=c.id, patient_pk=o.key, included=o.included,
                                        reasons=o.reasons))
            rec = existing.get(o.key)
            if o.included and rec is None:
                rec = ResearchRecord(study_pk=st.id, record_id=str(next_id), patient_pk=o.key,
                                     dag_pk=dag_pk)
                next_id += 1
                s.add(rec)
                existing[o.key] = rec
            elif o.included and dag_pk is not None and rec is not None:
                rec.dag_pk = dag_pk
            out_patients.append({"patient": _patient_label(s, by_pk[o.key], viewer),
                                 "included": o.included, "reasons": o.reasons,
                                 "record_id": rec.record_id if o.included and rec else None})
        s.flush()
        cohort_pk = c.id
    sync_imaging(key, settings=settings)
    fig = None
    if figure:
        fig = str(cohort_mod.consort_figure(flow, figure, title=f"{key}: {name}"))
    audit.record(settings, viewer.username, "research.cohort.save", f"study:{key}",
                 {"cohort": name, "included": flow.included, "assessed": flow.assessed,
                  "cohort_pk": cohort_pk})
    return {"study": key, "cohort": name, "flow": flow.to_json(), "figure": fig,
            "criteria": query.to_json(), "patients": out_patients}


def _next_record_number(s: Session, study_pk: int) -> int:
    ids = s.scalars(sa.select(ResearchRecord.record_id)
                    .where(ResearchRecord.study_pk == study_pk)).all()
    nums = [int(x) for x in ids if x.isdigit()]
    return max(nums, default=0) + 1


def _patient_label(s: Session, p: Patient, viewer: Viewer) -> str:
    if viewer.sees_identity:
        return p.patient_id
    from oncohybrid.services.deid import patient_key

    return patient_key(s, p.patient_id, p.issuer_of_patient_id).pseudonym


def cohort_figure(key: str, name: str, out: str | Path, viewer: Viewer = CLI,
                  settings: Settings | None = None) -> Path:
    """Redraw a saved cohort's CONSORT figure (with the exam tracking counts)."""
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        c = s.scalar(sa.select(ResearchCohort).where(ResearchCohort.study_pk == acc.study.id,
                                                     ResearchCohort.name == name))
        if c is None:
            raise InputError(f"study {key!r} has no cohort {name!r}")
        fj = c.flow
    flow = cohort_mod.Flow(fj["assessed"], fj["included"], fj["excluded"],
                           {d["reason"]: d["n"] for d in fj["excluded_by"]},
                           {d["reason"]: d["n"] for d in fj["failing_by"]})
    tracking: dict[str, int] = {}
    try:
        sch = schedule(key, viewer=viewer, settings=settings)
        for tp, counts in sch["counts"].items():
            for stt, n in counts.items():
                if n:
                    tracking[f"{tp} {stt}"] = n
    except InputError:
        pass
    return cohort_mod.consort_figure(flow, out, title=f"{key}: {name}", tracking=tracking)


def cohort_patient_ids(settings: Settings | None, name: str) -> list[str]:
    """Patient IDs of a saved cohort's included patients (``STUDY/NAME`` or a cohort name
    that only one study uses); for ``oncohybrid batch --cohort``."""
    with session_scope(settings) as s:
        q = sa.select(ResearchCohort).join(ResearchStudy,
                                           ResearchStudy.id == ResearchCohort.study_pk)
        if "/" in name:
            skey, cname = name.split("/", 1)
            q = q.where(ResearchStudy.key == skey, ResearchCohort.name == cname)
        else:
            q = q.where(ResearchCohort.name == name)
        found = s.scalars(q).all()
        if not found:
            raise InputError(f"--cohort {name!r}: no saved research cohort of that name "
                             "(name it STUDY/COHORT; oncohybrid study cohort saves one)")
        if len(found) > 1:
            raise InputError(f"--cohort {name!r}: a cohort of that name exists in several "
                             "studies: name it STUDY/COHORT")
        ids = s.scalars(sa.select(Patient.patient_id)
                        .join(ResearchCohortPatient,
                              ResearchCohortPatient.patient_pk == Patient.id)
                        .where(ResearchCohortPatient.cohort_pk == found[0].id,
                               ResearchCohortPatient.included.is_(True))
                        .order_by(Patient.patient_id)).all()
        return list(dict.fromkeys(ids))


# --------------------------------------------------------------------------- schedule


def _protocol(st: ResearchStudy) -> Protocol:
    if not st.protocol:
        raise InputError(f"study {st.key!r} has no protocol (give --protocol FILE)")
    return parse_protocol(st.protocol)


def schedule(key: str, *, today: dt.date | None = None, viewer: Viewer = CLI,
             settings: Settings | None = None) -> dict[str, Any]:
    """Each record's protocol timepoints with their exam status, and the counts."""
    today = today or dt.date.today()
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        proto = _protocol(acc.study)
        rows = []
        all_st = []
        records = s.scalars(_records_q(acc).order_by(ResearchRecord.id)).all()
        for i in range(0, len(records), PAGE_SIZE):
            page = [r for r in records[i:i + PAGE_SIZE] if r.patient_pk is not None]
            pks = [r.patient_pk for r in page]
            exams = _exams_by_patient(s, pks)  # type: ignore[arg-type]
            clinical = _clinical(s, acc.study.id, pks)  # type: ignore[arg-type]
            for r in page:
                anchor = None
                if proto.anchor != "baseline":
                    raw = clinical[r.patient_pk].get(proto.anchor, "")  # type: ignore[index]
                    try:
                        anchor = dt.date.fromisoformat(raw) if raw else None
                    except ValueError:
                        anchor = None
                sts = match_exams(proto, exams[r.patient_pk], today, anchor)  # type: ignore[index]
                all_st.append(sts)
                p = s.get(Patient, r.patient_pk)
                shift = _shift_days(s, p, viewer)
                rows.append({"record_id": r.record_id, "patient_pk": r.patient_pk,
                             "patient": _patient_label(s, p, viewer),  # type: ignore[arg-type]
                             "timepoints": [_shift_status(x.to_json(), shift) for x in sts]})
        return {"study": acc.study.key, "today": _shift_iso(today.isoformat(),
                                                            0 if viewer.sees_identity else None),
                "protocol": proto.to_json(), "statuses": list(STATUSES),
                "records": rows, "counts": status_counts(all_st)}


def _shift_days(s: Session, p: Patient | None, viewer: Viewer) -> int | None:
    """0 for a viewer who sees identity; the key store's shift for a researcher."""
    if viewer.sees_identity or p is None:
        return 0
    from oncohybrid.services.deid import patient_key

    return patient_key(s, p.patient_id, p.issuer_of_patient_id).date_shift_days


def _shift_iso(value: Any, shift: int | None) -> Any:
    if not isinstance(value, str) or not shift:
        return value
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2})(.*)", value)
    if not m:
        return value
    try:
        d = dt.date.fromisoformat(m.group(1))
    except ValueError:
        return value
    return (d + dt.timedelta(days=shift)).isoformat() + m.group(2)


def _shift_status(d: dict[str, Any], shift: int | None) -> dict[str, Any]:
    if not shift:
        return d
    d = dict(d)
    for k in ("target", "exam_date"):
        d[k] = _shift_iso(d[k], shift)
    if d["window"]:
        d["window"] = [_shift_iso(x, shift) for x in d["window"]]
    d["notes"] = [re.sub(r"\d{4}-\d{2}-\d{2}", lambda m: _shift_iso(m.group(0), shift), n)
                  for n in d["notes"]]
    return d


def worklist_badges(settings: Settings, patient_pks: list[int],
                    viewer: Viewer | None = None) -> dict[int, list[str]]:
    """Exam badges for the worklist: "<study>: interim overdue" and the like (due,
    overdue, out of window; done and missing are not worth a badge). With a ``viewer``
    only the studies they belong to, and within a study only their data-access group's
    records, give badges (a study's existence is not shown to non-members)."""
    out: dict[int, list[str]] = {}
    if not patient_pks:
        return out
    today = dt.date.today()
    with session_scope(settings) as s:
        q = (sa.select(ResearchRecord.patient_pk, ResearchStudy)
             .join(ResearchStudy, ResearchStudy.id == ResearchRecord.study_pk)
             .where(ResearchRecord.patient_pk.in_(patient_pks)))
        if viewer is not None and not viewer.superuser:
            q = q.join(ResearchMember, sa.and_(
                ResearchMember.study_pk == ResearchStudy.id,
                ResearchMember.username == viewer.username,
                sa.or_(ResearchMember.dag_pk.is_(None),
                       ResearchMember.dag_pk == ResearchRecord.dag_pk)))
        recs = s.execute(q).all()
        if not recs:
            return out
        exams = _exams_by_patient(s, list({r[0] for r in recs}))
        for ppk, st in recs:
            if not st.protocol:
                continue
            proto = parse_protocol(st.protocol)
            anchor = None
            if proto.anchor != "baseline":
                raw = _clinical(s, st.id, [ppk])[ppk].get(proto.anchor, "")
                try:
                    anchor = dt.date.fromisoformat(raw) if raw else None
                except ValueError:
                    anchor = None
            for x in match_exams(proto, exams[ppk], today, anchor):
                if x.status in ("overdue", "out of window") or (
                        x.status == "due" and x.window and x.window[0] <= today):
                    out.setdefault(ppk, []).append(f"{st.key}: {x.name} {x.status}")
    return out


# --------------------------------------------------------------------------- CRFs


def _dictionary(st: ResearchStudy) -> redcap.DataDictionary:
    if not st.dictionary:
        raise InputError(f"study {st.key!r} has no data dictionary (oncohybrid study crf "
                         "import STUDY DICTIONARY.csv)")
    return redcap.from_json(st.dictionary)


def import_dictionary(key: str, path: str | Path, *, repeating: Mapping[str, str] | None = None,
                      actor: str = "cli", settings: Settings | None = None) -> dict[str, Any]:
    """Set the study's data dictionary from REDCap CSV; ``repeating``: form → ``timepoint``
    (one instance per imaging timepoint) or ``free``."""
    settings = settings or get_settings()
    dd = redcap.read_dictionary(path)
    rep = dict(repeating or {})
    for form, kind in rep.items():
        if form not in dd.forms:
            raise InputError(f"--repeat {form}: no such form in the dictionary "
                             f"({', '.join(dd.forms)})")
        if kind not in ("timepoint", "free"):
            raise InputError(f"--repeat {form}={kind}: use 'timepoint' or 'free'")
    for f in dd.fields:
        src = f.imaging_source
        if src and redcap.imaging_source_kind(src) == "tp" and rep.get(f.form) != "timepoint":
            raise InputError(f"field {f.name!r}: @IMAGING={src} is a per-timepoint value; "
                             f"make form {f.form!r} repeat per timepoint (--repeat "
                             f"{f.form}=timepoint)")
    with session_scope(settings) as s:
        st = _study(s, key)
        st.dictionary = redcap.to_json(dd)
        st.repeating = rep
    audit.record(settings, actor, "research.dictionary", f"study:{key}",
                 {"fields": len(dd.fields), "forms": len(dd.forms)})
    sync_imaging(key, settings=settings)
    return {"study": key, "fields": len(dd.fields), "forms": dd.forms, "repeating": rep}


def _form_row(s: Session, rec: ResearchRecord, form: str, instance: int,
              create: bool = True) -> ResearchCrfForm | None:
    row = s.scalar(sa.select(ResearchCrfForm).where(
        ResearchCrfForm.record_pk == rec.id, ResearchCrfForm.form == form,
        ResearchCrfForm.instance == instance))
    if row is None and create:
        row = ResearchCrfForm(record_pk=rec.id, form=form, instance=instance,
                              status="incomplete", locked=False)
        s.add(row)
        s.flush()
    return row


def _values(s: Session, rec_pk: int, form: str | None = None,
            instance: int | None = None) -> dict[str, str]:
    q = sa.select(ResearchCrfValue.field, ResearchCrfValue.value).where(
        ResearchCrfValue.record_pk == rec_pk)
    if form is not None:
        q = q.where(ResearchCrfValue.form == form, ResearchCrfValue.instance == instance)
    else:
        q = q.where(ResearchCrfValue.instance == 1)
    return dict(s.execute(q).all())  # type: ignore[arg-type]


def _write_values(s: Session, rec: ResearchRecord, form: str, instance: int,
                  values: Mapping[str, str], username: str, action: str) -> int:
    cur = {v.field: v for v in s.scalars(sa.select(ResearchCrfValue).where(
        ResearchCrfValue.record_pk == rec.id, ResearchCrfValue.form == form,
        ResearchCrfValue.instance == instance))}
    changed = 0
    for fld, val in values.items():
        old = cur.get(fld)
        if old is None and val == "":
            continue
        if old is not None and old.value == val:
            continue
        s.add(ResearchCrfAudit(record_pk=rec.id, form=form, instance=instance, field=fld,
                               old_value=old.value if old else None, new_value=val,
                               action=action, username=username))
        if old is None:
            s.add(ResearchCrfValue(record_pk=rec.id, form=form, instance=instance, field=fld,
                                   value=val))
        else:
            old.value = val
        changed += 1
    return changed


def _record(s: Session, acc: _Access, record_id: str) -> ResearchRecord:
    rec = s.scalar(_records_q(acc).where(ResearchRecord.record_id == record_id))
    if rec is None:
        raise InputError(f"study {acc.study.key!r} has no record {record_id!r}")
    return rec


def _instances(s: Session, st: ResearchStudy, rec: ResearchRecord, form: str
               ) -> list[tuple[int, dt.date | None]]:
    rows = s.execute(sa.select(ResearchCrfForm.instance, ResearchCrfForm.timepoint_date)
                     .where(ResearchCrfForm.record_pk == rec.id,
                            ResearchCrfForm.form == form)
                     .order_by(ResearchCrfForm.instance)).all()
    out = [(int(i), d) for i, d in rows]
    return out or [(1, None)]


def save_form(key: str, record_id: str, form: str, values: Mapping[str, Any], *,
              instance: int = 1, complete: bool = False, viewer: Viewer = CLI,
              settings: Settings | None = None, action: str = "entry") -> dict[str, Any]:
    """Validate and store one form instance (REDCap rules: see DataDictionary.check_form).

    Raises :class:`InputError` listing every invalid field; a form marked complete must
    have its required (visible) fields. A locked form is refused."""
    settings = settings or get_settings()
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        if not acc.can(_ENTER, viewer):
            raise InputError(f"study {key!r}: your study role does not enter data")
        dd = _dictionary(acc.study)
        rec = _record(s, acc, record_id)
        rep = (acc.study.repeating or {}).get(form)
        if instance < 1 or (not rep and instance != 1):
            raise InputError(f"form {form!r} is not repeating: instance must be 1")
        row = _form_row(s, rec, form, instance)
        assert row is not None
        if row.locked:
            raise InputError(f"record {record_id}, form {form!r} #{instance} is locked "
                             f"(signed by {row.locked_by}); unlock it first")
        stored = _values(s, rec.id, form, instance)
        context = {**_values(s, rec.id), **stored}
        values = _merge_submitted(dd, form, values, stored)
        if not viewer.sees_identity:
            # A researcher sees identifiers hidden and dates shifted: keep the stored
            # identifiers, shift typed dates back to the record's calendar.
            p = s.get(Patient, rec.patient_pk) if rec.patient_pk else None
            shift = _shift_days(s, p, viewer) or 0
            for f in dd.form_fields(form):
                if f.identifier:
                    values[f.name] = stored.get(f.name, "")
                elif f.is_date and values.get(f.name):
                    values[f.name] = _shift_iso(str(values[f.name]).strip(), -shift)
        check = dd.check_form(form, values, context)
        problems = list(check.errors.values())
        if complete and check.missing_required:
            problems += [f"{n}: required" for n in check.missing_required]
        if problems:
            raise InputError(f"record {record_id}, form {form!r}: " + "; ".join(problems))
        imaging = {f.name for f in dd.form_fields(form) if f.imaging_source}
        own = {k: v for k, v in check.values.items() if k not in imaging}
        changed = _write_values(s, rec, form, instance, own, viewer.username, action)
        new_status = "complete" if complete else "incomplete"
        if row.status != new_status:
            s.add(ResearchCrfAudit(record_pk=rec.id, form=form, instance=instance,
                                   field=f"{form}_complete", old_value=row.status,
                                   new_value=new_status, action="status",
                                   username=viewer.username))
            row.status = new_status
        row.updated_at = dt.datetime.now(dt.UTC)
        rec_pk = rec.id
    audit.record(settings, viewer.username, "research.crf.save", f"study:{key}",
                 {"record_pk": rec_pk, "form": form, "instance": instance,
                  "changed": changed, "complete": complete})
    return {"record_id": record_id, "form": form, "instance": instance, "changed": changed,
            "status": new_status, "hidden": check.hidden}


def _merge_submitted(dd: redcap.DataDictionary, form: str, submitted: Mapping[str, Any],
                     stored: Mapping[str, str]) -> dict[str, Any]:
    """Submitted values over the stored ones: a field not submitted at all keeps its value
    (REDCap's import rule "blank values are ignored" applies to absent columns only)."""
    out: dict[str, Any] = dict(submitted)
    for f in dd.form_fields(form):
        if not f.entered:
            continue
        given = f.name in submitted or any(k.startswith(f"{f.name}___") for k in submitted)
        if not given and f.name in stored:
            out[f.name] = stored[f.name]
    return out


def _signature(values: Mapping[str, str], username: str, at: dt.datetime, form: str,
               instance: int, record_id: str) -> str:
    doc = json.dumps({"record": record_id, "form": form, "instance": instance,
                      "values": dict(sorted(values.items())), "signer": username,
                      "at": at.isoformat()}, sort_keys=True)
    return hashlib.sha256(doc.encode()).hexdigest()


def lock_form(key: str, record_id: str, form: str, *, instance: int = 1, username: str,
              password: str, viewer: Viewer | None = None,
              settings: Settings | None = None) -> dict[str, Any]:
    """Lock a complete form with an e-signature: the signer's password is checked again
    (21 CFR Part 11 §11.200(a)(1): two components, name and password, at each signing)
    and the SHA-256 of the signed values, signer and time is kept."""
    from oncohybrid.services.users import Role, authenticate

    settings = settings or get_settings()
    user = authenticate(settings, username, password)
    if user is None:
        audit.record(settings, username, "research.crf.sign-failed", f"study:{key}",
                     {"form": form})
        raise InputError("e-signature refused: user name or password is wrong")
    viewer = viewer or Viewer(user.username, "admin" if user.role == Role.ADMIN else
                              str(user.role))
    if viewer.username != user.username and viewer.role != "cli":
        raise InputError("e-signature refused: sign with your own account")
    signer = Viewer(user.username, "admin" if user.role == Role.ADMIN else str(user.role))
    with session_scope(settings) as s:
        acc = _access(s, key, signer)
        if not acc.can(_SIGN, signer):
            raise InputError(f"study {key!r}: only the PI or an investigator signs forms")
        rec = _record(s, acc, record_id)
        row = _form_row(s, rec, form, instance, create=False)
        if row is None or row.status != "complete":
            raise InputError(f"record {record_id}, form {form!r} #{instance}: only a "
                             "complete form can be locked")
        if row.locked:
            raise InputError(f"record {record_id}, form {form!r} #{instance} is locked "
                             "already")
        now = dt.datetime.now(dt.UTC)
        vals = _values(s, rec.id, form, instance)
        row.locked, row.locked_by, row.locked_at = True, user.username, now
        row.signature_sha256 = _signature(vals, user.username, now, form, instance, record_id)
        s.add(ResearchCrfAudit(record_pk=rec.id, form=form, instance=instance, field=None,
                               old_value=None, new_value=row.signature_sha256, action="lock",
                               username=user.username))
        rec_pk, sig = rec.id, row.signature_sha256
    audit.record(settings, user.username, "research.crf.lock", f"study:{key}",
                 {"record_pk": rec_pk, "form": form, "instance": instance})
    return {"record_id": record_id, "form": form, "instance": instance, "locked": True,
            "signed_by": user.username, "signature_sha256": sig}


def unlock_form(key: str, record_id: str, form: str, *, instance: int = 1, reason: str,
                viewer: Viewer = CLI, settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    if not reason.strip():
        raise InputError("unlocking needs a reason")
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        if not (viewer.superuser or (acc.member and acc.member.role == "pi")):
            raise InputError(f"study {key!r}: only the PI unlocks forms")
        rec = _record(s, acc, record_id)
        row = _form_row(s, rec, form, instance, create=False)
        if row is None or not row.locked:
            raise InputError(f"record {record_id}, form {form!r} #{instance} is not locked")
        row.locked = False
        s.add(ResearchCrfAudit(record_pk=rec.id, form=form, instance=instance, field=None,
                               old_value=row.signature_sha256, new_value=reason[:500],
                               action="unlock", username=viewer.username))
        rec_pk = rec.id
    audit.record(settings, viewer.username, "research.crf.unlock", f"study:{key}",
                 {"record_pk": rec_pk, "form": form, "instance": instance})


def sync_imaging(key: str, *, settings: Settings | None = None) -> int:
    """Fill ``@IMAGING`` fields from the record, with one instance of each
    timepoint-repeating form per imaging timepoint; locked forms are left alone. Returns
    the number of values changed."""
    settings = settings or get_settings()
    changed = 0
    with session_scope(settings) as s:
        st = _study(s, key)
        if not st.dictionary:
            return 0
        dd = redcap.from_json(st.dictionary)
        rep = st.repeating or {}
        img_fields = [f for f in dd.fields if f.imaging_source]
        tp_forms = [f for f, k in rep.items() if k == "timepoint"]
        if not img_fields and not tp_forms:
            return 0
        records = s.scalars(sa.select(ResearchRecord).where(ResearchRecord.study_pk == st.id,
                                                            ResearchRecord.patient_pk.is_not(None))
                            .order_by(ResearchRecord.id)).all()
        for i in range(0, len(records), PAGE_SIZE):
            page = records[i:i + PAGE_SIZE]
            pks = [r.patient_pk for r in page]
            tpm = _tp_metrics(s, pks)  # type: ignore[arg-type]
            ass = _latest_assessments(s, pks)  # type: ignore[arg-type]
            for rec in page:
                tps = tpm[rec.patient_pk]  # type: ignore[index]
                patient_vals: dict[str, Any] = {
                    "n_timepoints": len(tps),
                    "baseline_date": tps[0]["scan_date"] if tps else ""}
                for crit, r in ass[rec.patient_pk].items():  # type: ignore[index]
                    patient_vals[f"bor:{crit}"] = r.best_overall_response or ""
                for form in dd.forms:
                    fields = [f for f in img_fields if f.form == form]
                    if rep.get(form) == "timepoint":
                        for k, tp in enumerate(tps, start=1):
                            row = _form_row(s, rec, form, k)
                            assert row is not None
                            row.timepoint_date = dt.date.fromisoformat(tp["scan_date"])
                            if row.locked:
                                continue
                            vals = {f.name: _fmt(tp.get(f.imaging_source or "", "")
                                                 if redcap.imaging_source_kind(
                                                     f.imaging_source or "") == "tp"
                                                 else patient_vals.get(f.imaging_source or "",
                                                                       ""))
                                    for f in fields}
                            changed += _write_values(s, rec, form, k, vals, "oncohybrid",
                                                     "imaging")
                    elif fields:
                        row = _form_row(s, rec, form, 1)
                        assert row is not None
                        if row.locked:
                            continue
                        vals = {f.name: _fmt(patient_vals.get(f.imaging_source or "", ""))
                                for f in fields}
                        changed += _write_values(s, rec, form, 1, vals, "oncohybrid",
                                                 "imaging")
    return changed


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.6g}"
    return "" if v is None else str(v)


def form_view(key: str, record_id: str, form: str, *, instance: int = 1,
              viewer: Viewer = CLI, settings: Settings | None = None) -> dict[str, Any]:
    """What the entry page shows: fields with values, choices, logic; lock state."""
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        dd = _dictionary(acc.study)
        rec = _record(s, acc, record_id)
        fields = dd.form_fields(form)
        if not fields:
            raise InputError(f"study {key!r} has no form {form!r}")
        row = _form_row(s, rec, form, instance, create=False)
        vals = _values(s, rec.id, form, instance)
        context = _values(s, rec.id)
        p = s.get(Patient, rec.patient_pk) if rec.patient_pk else None
        shift = _shift_days(s, p, viewer)
        out_fields = []
        for f in fields:
            v = vals.get(f.name, "")
            if f.is_date and shift:
                v = _shift_iso(v, shift)
            if not viewer.sees_identity and f.identifier:
                v = "(identifier hidden)" if v else ""
            out_fields.append({"name": f.name, "label": f.label, "type": f.type,
                               "section": f.section, "note": f.note,
                               "validation": f.validation, "min": f.vmin, "max": f.vmax,
                               "choices": f.choices, "branching": f.branching,
                               "required": f.required, "calc": f.choices_text
                               if f.type == "calc" else "", "imaging": f.imaging_source,
                               "identifier": f.identifier, "value": v,
                               "ticked": [x for x in v.split(",") if x]
                               if f.type == "checkbox" else []})
        return {"study": acc.study.key, "record_id": rec.record_id, "form": form,
                "instance": instance,
                "instances": [{"instance": i, "date": _shift_iso(d.isoformat(), shift)
                               if d else None} for i, d in _instances(s, acc.study, rec, form)],
                "repeating": (acc.study.repeating or {}).get(form),
                "patient": _patient_label(s, p, viewer) if p else None,
                "fields": out_fields,
                "context": {k: v for k, v in context.items() if k in
                            {r for f in fields for r in _refs(f)}},
                "status": row.status if row else "incomplete",
                "locked": bool(row and row.locked), "locked_by": row.locked_by if row else None,
                "locked_at": row.locked_at.isoformat(timespec="seconds")
                if row and row.locked_at else None,
                "can_enter": acc.can(_ENTER, viewer), "can_sign": acc.can(_SIGN, viewer)}


def _refs(f: redcap.Field) -> set[str]:
    from oncohybrid.research import logic

    out: set[str] = set()
    for t in (f.branching, f.choices_text if f.type == "calc" else ""):
        if t.strip():
            out |= logic.field_names(t)
    return out


def crf_history(key: str, record_id: str, *, viewer: Viewer = CLI,
                settings: Settings | None = None) -> list[dict[str, Any]]:
    """The data log of one record (newest first); researchers see no identifier values."""
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        dd = _dictionary(acc.study)
        rec = _record(s, acc, record_id)
        hide = {f.name for f in dd.fields if f.identifier or f.is_date}
        out = []
        for a in s.scalars(sa.select(ResearchCrfAudit).where(ResearchCrfAudit.record_pk == rec.id)
                           .order_by(ResearchCrfAudit.id.desc())):
            masked = not viewer.sees_identity and a.field in hide
            out.append({"at": a.at.isoformat(timespec="seconds"), "user": a.username,
                        "action": a.action, "form": a.form, "instance": a.instance,
                        "field": a.field, "old": None if masked else a.old_value,
                        "new": None if masked else a.new_value})
        return out


def import_records(key: str, path: str | Path, *, viewer: Viewer = CLI,
                   settings: Settings | None = None) -> dict[str, Any]:
    """Import CRF data in REDCap's flat CSV (record_id, optional redcap_repeat_instrument /
    redcap_repeat_instance, field columns, checkbox columns ``f___code``, ``<form>_complete``
    0/1/2). Each form row is validated like web entry; records must exist (cohorts make
    them). All or nothing: one invalid cell refuses the file."""
    settings = settings or get_settings()
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    with p.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with session_scope(settings) as s:
        st = _study(s, key)
        dd = _dictionary(st)
    rid = dd.record_id_field
    if rows and rid not in rows[0] and "record_id" not in rows[0]:
        raise InputError(f"{p}: no {rid!r} column (REDCap flat CSV expected)")
    n = 0
    plan: list[tuple[str, str, int, dict[str, Any], bool]] = []
    for i, row in enumerate(rows, start=2):
        record = (row.get(rid) or row.get("record_id") or "").strip()
        if not record:
            raise InputError(f"{p} row {i}: empty record id")
        rep_form = (row.get("redcap_repeat_instrument") or "").strip()
        inst_raw = (row.get("redcap_repeat_instance") or "").strip()
        forms = [rep_form] if rep_form else [
            f for f in dd.forms if f not in (st.repeating or {})]
        for form in forms:
            if form not in dd.forms:
                raise InputError(f"{p} row {i}: unknown form {form!r}")
            vals: dict[str, Any] = {}
            for f in dd.form_fields(form):
                if not f.entered or f.name == rid:
                    continue
                if f.type == "checkbox":
                    cols = f.columns()
                    if any(c in row for c in cols):
                        vals[f.name] = [code for (code, _), c in zip(f.choices, cols,
                                                                    strict=True)
                                        if (row.get(c) or "").strip() == "1"]
                elif f.name in row:
                    vals[f.name] = row[f.name]
            if not vals and f"{form}_complete" not in row:
                continue
            done = (row.get(f"{form}_complete") or "").strip() == "2"
            plan.append((record, form, int(inst_raw) if inst_raw.isdigit() else 1, vals, done))
    for record, form, inst, vals, done in plan:
        try:
            save_form(key, record, form, vals, instance=inst, complete=done, viewer=viewer,
                      settings=settings, action="import")
        except InputError as exc:
            raise InputError(f"{p}: {exc}") from None
        n += 1
    audit.record(settings, viewer.username, "research.crf.import", f"study:{key}",
                 {"forms": n})
    return {"study": key, "forms_saved": n}


# --------------------------------------------------------------------------- export


class _Sink:
    """One output table, CSV or Parquet, written row by row / page by page."""

    def __init__(self, path: Path, columns: list[str], fmt: str,
                 types: Mapping[str, str] | None = None) -> None:
        self.columns, self.fmt, self.path, self.n = columns, fmt, path, 0
        self.types = dict(types or {})
        self._buf: list[dict[str, Any]] = []
        if fmt == "csv":
            self._fh = path.open("w", encoding="utf-8", newline="")
            self._w = csv.writer(self._fh, lineterminator="\n")
            self._w.writerow(columns)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pat = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
            self._schema = pa.schema([(c, pat.get(self.types.get(c, "str"), pa.string()))
                                      for c in columns])
            self._pw = pq.ParquetWriter(str(path), self._schema)

    def write(self, row: Mapping[str, Any]) -> None:
        self.n += 1
        if self.fmt == "csv":
            self._w.writerow([_csv_cell(row.get(c)) for c in self.columns])
        else:
            self._buf.append(row)

    def flush(self) -> None:
        if self.fmt != "csv" and self._buf:
            import pyarrow as pa

            cols = {c: [_typed(r.get(c), self.types.get(c, "str")) for r in self._buf]
                    for c in self.columns}
            self._pw.write_table(pa.table(cols, schema=self._schema))
            self._buf = []
        elif self.fmt == "csv":
            self._fh.flush()

    def close(self) -> None:
        self.flush()
        if self.fmt == "csv":
            self._fh.close()
        else:
            self._pw.close()


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


def _typed(v: Any, t: str) -> Any:
    if v is None or v == "":
        return None
    if t == "int":
        return int(v)
    if t == "float":
        return float(v)
    if t == "bool":
        return bool(v)
    return str(v)


_TABLE_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "timepoints": [("record_id", "str"), ("patient", "str"), ("tp_index", "int"),
                   ("label", "str"), ("scan_date", "str"), ("days_since_baseline", "int"),
                   ("treatment_line", "str"), ("treatment_event", "str"),
                   ("n_lesions", "int"), ("suvmax_max", "float"), ("tmtv_ml", "float"),
                   ("tlg_total", "float"), ("sum_ld_mm", "float")],
    "lesions": [("record_id", "str"), ("patient", "str"), ("lesion", "str"),
                ("tracking_uid", "str"), ("site", "str"), ("nodal", "bool"),
                ("roles", "str")],
    "measurements": [("record_id", "str"), ("patient", "str"), ("lesion", "str"),
                     ("scan_date", "str"), ("tp_label", "str"), ("source", "str"),
                     ("in_use", "bool"), ("present", "bool"), ("ld_mm", "float"),
                     ("sa_mm", "float"), ("ppd_mm2", "float"), ("volume_ml", "float"),
                     ("hu_mean", "float"), ("suv_max", "float"), ("suv_peak", "float"),
                     ("sul_peak", "float"), ("mtv_ml", "float"), ("tlg_suv_ml", "float"),
                     ("study_uid", "str")],
    "responses": [("record_id", "str"), ("patient", "str"), ("criterion", "str"),
                  ("scan_date", "str"), ("timepoint_response", "str"),
                  ("best_overall_response", "str"), ("run_uid", "str")],
}


#: What each exported imaging column holds (``variables.csv``, the export's codebook beside
#: the CRF's REDCap ``data_dictionary.csv``); ``clinical_<name>`` columns are the study's
#: imported clinical facts.
_VARIABLES: dict[str, str] = {
    "record_id": "study record number (REDCap record ID)",
    "redcap_data_access_group": "data-access group of the record",
    "patient": "Patient ID, or its pseudonym in a de-identified export",
    "pseudonym": "the patient's pseudonym (same as in the de-identified images)",
    "patient_id": "Patient ID (0010,0020)", "patient_name": "Patient's Name (0010,0010)",
    "birth_date": "Patient's Birth Date (0010,0030), YYYY-MM-DD",
    "sex": "Patient's Sex (0010,0040): M, F or O",
    "age_at_first_exam": "age in whole years at the first exam",
    "n_exams": "number of imaging studies", "first_exam": "date of the first study",
    "last_exam": "date of the last study", "tracers": "PET tracers seen, ';'-separated",
    "tp_index": "time point number, 0 = baseline", "label": "time point label",
    "tp_label": "time point label", "scan_date": "date of the time point's scan",
    "days_since_baseline": "days from the baseline scan",
    "treatment_line": "treatment line at the time point",
    "treatment_event": "treatment event recorded at the time point",
    "n_lesions": "lesions measured at the time point",
    "suvmax_max": "highest lesion SUVmax (g/ml, body weight)",
    "tmtv_ml": "total metabolic tumour volume (ml)", "tlg_total": "total lesion glycolysis (g)",
    "sum_ld_mm": "sum of target-lesion diameters (mm, RECIST 1.1)",
    "lesion": "lesion key in the longitudinal record (L1, L2, …)",
    "tracking_uid": "lesion Tracking UID (DICOM SR), mapped in a de-identified export",
    "site": "anatomical site", "nodal": "lymph node (true/false)",
    "roles": "role per criterion (target, non-target, …)",
    "source": "how the measurement was made (automatic, reader)",
    "in_use": "measurement used by the criteria", "present": "lesion visible at the time point",
    "ld_mm": "long-axis diameter (mm)", "sa_mm": "short-axis diameter (mm)",
    "ppd_mm2": "product of perpendicular diameters (mm²)", "volume_ml": "CT volume (ml)",
    "hu_mean": "mean CT density (HU)", "suv_max": "SUVmax (g/ml)",
    "suv_peak": "SUVpeak, 1 ml sphere (g/ml)", "sul_peak": "SULpeak, 1 ml sphere (g/ml)",
    "mtv_ml": "metabolic tumour volume (ml)", "tlg_suv_ml": "total lesion glycolysis (g)",
    "study_uid": "Study Instance UID, mapped in a de-identified export",
    "criterion": "response criterion (recist1.1, percist, lugano, …)",
    "timepoint_response": "response category at the time point (the engine's code)",
    "best_overall_response": "best overall response so far (the engine's code)",
    "run_uid": "UID of the assessment run",
}


def _write_variables(path: Path, tables: dict[str, list[tuple[str, str]]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["table", "column", "type", "description"])
        for table, cols in tables.items():
            for col, typ in cols:
                desc = (_VARIABLES.get(col) or
                        (f"clinical fact {col[9:]!r} of the study's clinical data"
                         if col.startswith("clinical_") else ""))
                w.writerow([table, col, typ, desc])


def export_study(key: str, out: str | Path, *, fmt: str = "csv", deidentify: bool = False,
                 viewer: Viewer = CLI, settings: Settings | None = None,
                 page_size: int = PAGE_SIZE) -> dict[str, Any]:
    """Export the study (see module doc). A researcher's export is always de-identified.

    Files: ``patients``, ``timepoints``, ``lesions``, ``measurements``, ``responses``,
    ``crf`` (REDCap flat layout) as ``.csv`` or ``.parquet``, ``data_dictionary.csv``
    (REDCap, the CRF fields), ``variables.csv`` (the imaging tables' codebook),
    ``manifest.json``. Records are read ``page_size`` at a time, each page's
    rows written and dropped before the next is read, so memory does not grow with the
    number of patients.
    """
    settings = settings or get_settings()
    if fmt not in ("csv", "parquet"):
        raise InputError(f"--format {fmt!r}: use csv or parquet")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("--format parquet needs pyarrow (pip install pyarrow)") from None
    if not viewer.sees_identity:
        deidentify = True
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a folder")
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        st = acc.study
        dd = redcap.from_json(st.dictionary) if st.dictionary else None
    sync_imaging(key, settings=settings)
    out.mkdir(parents=True, exist_ok=True)
    ext = "csv" if fmt == "csv" else "parquet"
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        st = acc.study
        dags = {d.id: d.name for d in s.scalars(sa.select(ResearchDag)
                                                .where(ResearchDag.study_pk == st.id))}
        clinical_fields = sorted(s.scalars(sa.select(ResearchClinical.field).distinct()
                                           .where(ResearchClinical.study_pk == st.id)).all())
        date_fields = set()
        drop_fields: set[str] = set()
        if dd is not None:
            date_fields = {f.name for f in dd.fields if f.is_date}
            if deidentify:
                drop_fields = {f.name for f in dd.fields
                               if f.identifier or f.free_text} - {dd.record_id_field}
        pcols = [("record_id", "str"), ("redcap_data_access_group", "str")]
        pcols += ([("pseudonym", "str")] if deidentify else
                  [("patient_id", "str"), ("patient_name", "str"), ("birth_date", "str")])
        pcols += [("sex", "str"), ("age_at_first_exam", "int"), ("n_exams", "int"),
                  ("first_exam", "str"), ("last_exam", "str"), ("tracers", "str")]
        pcols += [(f"clinical_{c}", "str") for c in clinical_fields]
        sinks: dict[str, _Sink] = {
            "patients": _Sink(out / f"patients.{ext}", [c for c, _ in pcols], fmt,
                              dict(pcols))}
        for t, cols in _TABLE_COLUMNS.items():
            sinks[t] = _Sink(out / f"{t}.{ext}", [c for c, _ in cols], fmt, dict(cols))
        _write_variables(out / "variables.csv", {"patients": pcols, **_TABLE_COLUMNS})
        crf_cols: list[str] = []
        if dd is not None:
            crf_cols = [dd.record_id_field, "redcap_repeat_instrument",
                        "redcap_repeat_instance", "redcap_data_access_group"]
            for form in dd.forms:
                crf_cols += [c for f in dd.form_fields(form) if f.name != dd.record_id_field
                             and f.name not in drop_fields for c in f.columns()]
                crf_cols.append(f"{form}_complete")
        sinks["crf"] = _Sink(out / f"crf.{ext}", crf_cols or ["record_id"], fmt)
        record_pks = s.scalars(_records_q(acc).with_only_columns(ResearchRecord.id)
                               .order_by(ResearchRecord.id)).all()
        study_pk, rep_forms = st.id, set(st.repeating or {})
    n_patients = 0
    try:
        for i in range(0, len(record_pks), page_size):
            with session_scope(settings) as s:
                page = s.scalars(sa.select(ResearchRecord).where(
                    ResearchRecord.id.in_(record_pks[i:i + page_size]))
                    .order_by(ResearchRecord.id)).all()
                n_patients += _export_page(s, study_pk, page, sinks, dd, dags, clinical_fields,
                                           deidentify, date_fields, drop_fields, rep_forms)
            for sink in sinks.values():
                sink.flush()
    finally:
        for sink in sinks.values():
            sink.close()
    if dd is not None:
        kept = redcap.DataDictionary(tuple(f for f in dd.fields if f.name not in drop_fields))
        (out / "data_dictionary.csv").write_text(redcap.dictionary_text(kept), encoding="utf-8")
    counts = {t: sk.n for t, sk in sinks.items()}
    pushed = None
    manifest = {"study": key, "format": fmt, "deidentified": deidentify,
                "patients": n_patients, "rows": counts,
                "files": sorted(p.name for p in out.iterdir() if p.is_file()) + ["manifest.json"],
                "software_version": __version__,
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "deidentification": ("patient IDs replaced by the image key store's pseudonyms, "
                                     "dates shifted by its per-patient whole-day shift, UIDs "
                                     "replaced by its UID map, names, birth dates, identifier "
                                     "and free-text CRF fields removed") if deidentify else None}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    with session_scope(settings) as s:
        s.add(ResearchExport(study_pk=study_pk, username=viewer.username, format=fmt,
                             deidentified=deidentify, n_patients=n_patients))
    audit.record(settings, viewer.username, "research.export", f"study:{key}",
                 {"format": fmt, "deidentified": deidentify, "patients": n_patients})
    return {"study": key, "out": str(out), "format": fmt, "deidentified": deidentify,
            "patients": n_patients, "rows": counts, "files": manifest["files"],
            "pushed": pushed}


def _identity(u: Any) -> Any:
    return u


class _PageKeys:
    """The de-identification keys of one export page, read in a few queries: each
    patient's key-store row (created, as services.deid does, on first use) and every UID
    the page shows mapped through the key store's UID table (new ones added in one flush),
    so the tables carry the same pseudonyms, date shifts and UIDs as the images."""

    def __init__(self, s: Session, patients: Sequence[Patient],
                 uids: Mapping[int, set[str]]) -> None:
        import secrets

        from oncohybrid.services.deid import SHIFT_MAX_DAYS, SHIFT_MIN_DAYS, new_uid
        from oncohybrid.services.deid import _new_pseudonym as new_pseudonym
        from oncohybrid.store.models_deid import DeidPatient, DeidUid

        found: dict[tuple[str, str], DeidPatient] = {}
        ids = [p.patient_id for p in patients]
        for i in range(0, len(ids), 900):
            for k in s.scalars(sa.select(DeidPatient).where(
                    DeidPatient.patient_id.in_(ids[i:i + 900]))):
                found[(k.patient_id, k.issuer_of_patient_id)] = k
        self.key: dict[int, DeidPatient] = {}
        for p in patients:
            k = found.get((p.patient_id, p.issuer_of_patient_id))
            if k is None:
                shift = -(SHIFT_MIN_DAYS + secrets.randbelow(SHIFT_MAX_DAYS - SHIFT_MIN_DAYS + 1))
                k = DeidPatient(patient_id=p.patient_id,
                                issuer_of_patient_id=p.issuer_of_patient_id,
                                pseudonym=new_pseudonym(), date_shift_days=shift)
                s.add(k)
                found[(p.patient_id, p.issuer_of_patient_id)] = k
            self.key[p.id] = k
        s.flush()
        clean = {pk: {u.strip().rstrip("\x00") for u in us if u} for pk, us in uids.items()}
        every = sorted(set().union(*clean.values())) if clean else []
        self.map: dict[str, str] = {}
        for i in range(0, len(every), 900):
            self.map.update(s.execute(sa.select(DeidUid.original_uid, DeidUid.replacement_uid)
                                      .where(DeidUid.original_uid.in_(every[i:i + 900]))).all())
        for pk, us in clean.items():
            if pk not in self.key:
                continue
            for u in sorted(us):
                if u not in self.map:
                    self.map[u] = new_uid()
                    s.add(DeidUid(original_uid=u, replacement_uid=self.map[u],
                                  deid_patient_pk=self.key[pk].id))
        s.flush()

    def uid(self, u: str) -> str:
        return self.map[u.strip().rstrip("\x00")]


def _export_page(s: Session, study_pk: int, page: Sequence[ResearchRecord],
                 sinks: Mapping[str, _Sink], dd: redcap.DataDictionary | None,
                 dags: Mapping[int, str], clinical_fields: Sequence[str], deid: bool,
                 date_fields: set[str], drop_fields: set[str], rep_forms: set[str]) -> int:
    pks = [r.patient_pk for r in page if r.patient_pk is not None]
    patients = {p.id: p for p in s.scalars(sa.select(Patient).where(Patient.id.in_(pks)))}
    exams = _exams_by_patient(s, pks)
    clinical = _clinical(s, study_pk, pks)
    tpm = _tp_metrics(s, pks)
    tps: dict[int, list[Timepoint]] = {pk: [] for pk in pks}
    for t in s.scalars(sa.select(Timepoint).where(Timepoint.patient_pk.in_(pks))
                       .order_by(Timepoint.patient_pk, Timepoint.scan_date)):
        tps[t.patient_pk].append(t)
    tp_by_pk = {t.id: t for ts in tps.values() for t in ts}
    lesions: dict[int, list[Lesion]] = {pk: [] for pk in pks}
    for les in s.scalars(sa.select(Lesion).where(Lesion.patient_pk.in_(pks))
                         .order_by(Lesion.id)):
        lesions[les.patient_pk].append(les)
    les_by_pk = {les.id: les for ls in lesions.values() for les in ls}
    roles: dict[int, list[str]] = {}
    from oncohybrid.store.models_record import LesionRole

    for lr in s.scalars(sa.select(LesionRole).where(LesionRole.lesion_pk.in_(les_by_pk))):
        roles.setdefault(lr.lesion_pk, []).append(f"{lr.criterion}={lr.role}")
    assessments = _latest_assessments(s, pks)
    crf_rows: dict[int, dict[tuple[str, int], dict[str, str]]] = {r.id: {} for r in page}
    for v in s.scalars(sa.select(ResearchCrfValue).where(
            ResearchCrfValue.record_pk.in_([r.id for r in page]))):
        crf_rows[v.record_pk].setdefault((v.form, v.instance), {})[v.field] = v.value
    status: dict[tuple[int, str, int], str] = {}
    for f in s.scalars(sa.select(ResearchCrfForm).where(
            ResearchCrfForm.record_pk.in_([r.id for r in page]))):
        status[(f.record_pk, f.form, f.instance)] = f.status
        crf_rows[f.record_pk].setdefault((f.form, f.instance), {})
    obs_of: dict[int, list[Observation]] = {pk: [] for pk in pks}
    if les_by_pk:
        for o in s.scalars(sa.select(Observation).where(Observation.lesion_pk.in_(les_by_pk))
                           .order_by(Observation.lesion_pk, Observation.timepoint_pk,
                                     Observation.id)):
            obs_of[les_by_pk[o.lesion_pk].patient_pk].append(o)
    keys = None
    if deid:
        uids: dict[int, set[str]] = {pk: set() for pk in pks}
        for pk in pks:
            uids[pk].update(les.tracking_uid for les in lesions[pk])
            uids[pk].update(o.study_instance_uid for o in obs_of[pk] if o.study_instance_uid)
            uids[pk].update(r.run_uid for r in assessments[pk].values())
        keys = _PageKeys(s, [patients[pk] for pk in pks if pk in patients], uids)
    n = 0
    for rec in page:
        p = patients.get(rec.patient_pk) if rec.patient_pk else None
        if p is None:
            continue
        n += 1
        shift = 0
        uid: Any = _identity
        label = p.patient_id
        if keys is not None:
            key = keys.key[p.id]
            shift, label = key.date_shift_days, key.pseudonym
            uid = keys.uid

        def d(v: Any, _shift: int = shift) -> Any:
            return _shift_iso(v.isoformat() if isinstance(v, dt.date) else v, _shift)

        ex = exams[p.id]
        first = ex[0].date if ex else None
        prow: dict[str, Any] = {
            "record_id": rec.record_id, "redcap_data_access_group": dags.get(rec.dag_pk or -1, ""),
            "sex": p.patient_sex or "", "age_at_first_exam": _age(p.patient_birth_date, first),
            "n_exams": len(ex), "first_exam": d(first) if first else "",
            "last_exam": d(ex[-1].date) if ex else "",
            "tracers": ";".join(sorted({t for e in ex for t in e.tracers}))}
        if deid:
            prow["pseudonym"] = label
        else:
            prow.update({"patient_id": p.patient_id, "patient_name": p.patient_name or "",
                         "birth_date": p.patient_birth_date.isoformat()
                         if p.patient_birth_date else ""})
        for c in clinical_fields:
            prow[f"clinical_{c}"] = d(clinical[p.id].get(c, ""))
        sinks["patients"].write(prow)
        for t, m in zip(tps[p.id], tpm[p.id], strict=True):
            sinks["timepoints"].write({
                "record_id": rec.record_id, "patient": label, "tp_index": t.tp_index,
                "label": t.label, "scan_date": d(t.scan_date),
                "days_since_baseline": t.days_since_baseline,
                "treatment_line": t.treatment_line or "", "treatment_event": t.treatment_event
                or "", "n_lesions": m["n_lesions"], "suvmax_max": m["suvmax_max"],
                "tmtv_ml": m["tmtv_ml"], "tlg_total": m["tlg_total"],
                "sum_ld_mm": m["sum_ld_mm"]})
        for les in lesions[p.id]:
            sinks["lesions"].write({
                "record_id": rec.record_id, "patient": label, "lesion": les.key,
                "tracking_uid": uid(les.tracking_uid), "site": les.site, "nodal": les.nodal,
                "roles": ";".join(sorted(roles.get(les.id, [])))})
        for o in obs_of[p.id]:
            t = tp_by_pk.get(o.timepoint_pk)
            sinks["measurements"].write({
                "record_id": rec.record_id, "patient": label,
                "lesion": les_by_pk[o.lesion_pk].key,
                "scan_date": d(t.scan_date) if t else "", "tp_label": t.label if t else "",
                "source": o.source, "in_use": o.in_use, "present": o.present,
                "ld_mm": o.ld_mm, "sa_mm": o.sa_mm, "ppd_mm2": o.ppd_mm2,
                "volume_ml": o.volume_ml, "hu_mean": o.hu_mean, "suv_max": o.suv_max,
                "suv_peak": o.suv_peak, "sul_peak": o.sul_peak, "mtv_ml": o.mtv_ml,
                "tlg_suv_ml": o.tlg_suv_ml,
                "study_uid": uid(o.study_instance_uid) if o.study_instance_uid else ""})
        for crit, r in assessments[p.id].items():
            for tr in (r.result_json or {}).get("timepoints", []) or [{}]:
                sinks["responses"].write({
                    "record_id": rec.record_id, "patient": label, "criterion": crit,
                    "scan_date": d(tr.get("date", "")),
                    "timepoint_response": tr.get("overall") or "",
                    "best_overall_response": r.best_overall_response or "",
                    "run_uid": uid(r.run_uid) if deid else r.run_uid})
        if dd is not None:
            with_rows = crf_rows[rec.id]
            base: dict[str, Any] = {dd.record_id_field: rec.record_id,
                                    "redcap_data_access_group": dags.get(rec.dag_pk or -1, "")}
            nonrep = dict(base)
            for (form, inst), vals in sorted(with_rows.items()):
                flat = dd.flat_values({k: (d(v) if k in date_fields else v)
                                       for k, v in vals.items() if k not in drop_fields})
                complete = {"complete": "2", "incomplete": "0"}.get(
                    status.get((rec.id, form, inst), "incomplete"), "0")
                flat[f"{form}_complete"] = complete
                if form in rep_forms:
                    sinks["crf"].write({**base, "redcap_repeat_instrument": form,
                                        "redcap_repeat_instance": inst, **flat})
                else:
                    nonrep.update(flat)
            sinks["crf"].write(nonrep)
    return n


def export_records(key: str, out: str | Path, *, viewer: Viewer = CLI,
                   settings: Settings | None = None, dictionary: bool = False
                   ) -> dict[str, Any]:
    """``crf export``: the REDCap data dictionary (``dictionary=True``) or the CRF data in
    REDCap's flat CSV, identified (for a viewer who sees identity)."""
    settings = settings or get_settings()
    out = Path(out)
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        dd = _dictionary(acc.study)
    if dictionary:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(redcap.dictionary_text(dd), encoding="utf-8")
        return {"study": key, "out": str(out), "fields": len(dd.fields)}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        res = export_study(key, tmp, viewer=viewer, settings=settings,
                           deidentify=not viewer.sees_identity)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(tmp) / "crf.csv", out)
    return {"study": key, "out": str(out), "rows": res["rows"]["crf"]}


def push_redcap(export_dir: str | Path, url: str, token: str) -> dict[str, Any]:
    """Push an export's ``crf.csv`` to a REDCap project through PyCap (optional; only when
    PyCap is installed). Nothing here runs in the tests: it needs a REDCap server."""
    try:
        from redcap import Project  # type: ignore[import-not-found]
    except ImportError:
        raise InputError("--push-redcap needs PyCap (pip install PyCap)") from None
    text = (Path(export_dir) / "crf.csv").read_text(encoding="utf-8")
    project = Project(url, token)
    res = project.import_records(to_import=text, import_format="csv")  # pragma: no cover
    return {"pushed": res}  # pragma: no cover


# --------------------------------------------------------------------------- dashboard


def dashboard(key: str, *, today: dt.date | None = None, viewer: Viewer = CLI,
              settings: Settings | None = None) -> dict[str, Any]:
    """The study page: study, cohorts with flow, exam tracking, CRF completion."""
    info = study_info(key, viewer, settings)
    try:
        sch = schedule(key, today=today, viewer=viewer, settings=settings)
    except InputError:
        sch = None
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        cohorts = [{"name": c.name, "flow": c.flow, "criteria": c.query}
                   for c in s.scalars(sa.select(ResearchCohort)
                                      .where(ResearchCohort.study_pk == acc.study.id)
                                      .order_by(ResearchCohort.id))]
        dd = redcap.from_json(acc.study.dictionary) if acc.study.dictionary else None
        recs = s.scalars(_records_q(acc).order_by(ResearchRecord.id)).all()
        forms_state: dict[int, dict[str, list[ResearchCrfForm]]] = {}
        for f in s.scalars(sa.select(ResearchCrfForm).where(
                ResearchCrfForm.record_pk.in_([r.id for r in recs]))):
            forms_state.setdefault(f.record_pk, {}).setdefault(f.form, []).append(f)
        completion = []
        for r in recs:
            p = s.get(Patient, r.patient_pk) if r.patient_pk else None
            row = {"record_id": r.record_id, "patient": _patient_label(s, p, viewer)
                   if p else "", "forms": {}}
            for form in (dd.forms if dd else []):
                fs = forms_state.get(r.id, {}).get(form, [])
                row["forms"][form] = {
                    "instances": len(fs) or 1,
                    "complete": sum(f.status == "complete" for f in fs),
                    "locked": sum(f.locked for f in fs)}
            completion.append(row)
        exports = [{"at": e.at.isoformat(timespec="seconds"), "user": e.username,
                    "format": e.format, "deidentified": e.deidentified,
                    "patients": e.n_patients}
                   for e in s.scalars(sa.select(ResearchExport)
                                      .where(ResearchExport.study_pk == acc.study.id)
                                      .order_by(ResearchExport.id.desc()).limit(20))]
    return {"study": info, "cohorts": cohorts, "schedule": sch,
            "forms": dd.forms if dd else [], "completion": completion, "exports": exports}


# --------------------------------------------------------------------------- logbook


def logbook_entries(settings: Settings | None, username: str, start: dt.date,
                    end: dt.date) -> list[dict[str, Any]]:
    """Research milestones of ``username`` between ``start`` and ``end`` (inclusive), for
    the fellowship logbook (issue #13): studies created, investigator roles, cohorts
    defined, CRF forms signed, exports. Titles name studies, never patients."""
    lo = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    out: list[dict[str, Any]] = []

    def add(at: dt.datetime, category: str, title: str, detail: str) -> None:
        at = at if at.tzinfo else at.replace(tzinfo=dt.UTC)
        if lo <= at < hi:
            out.append({"date": at.date().isoformat(), "source": "research",
                        "category": category, "title": title, "detail": detail,
                        "score": None})

    with session_scope(settings) as s:
        titles = dict(s.execute(sa.select(ResearchStudy.id, ResearchStudy.title)).all())
        for st in s.scalars(sa.select(ResearchStudy).where(ResearchStudy.created_by == username)):
            add(st.created_at, "research-milestone", f"Study created: {st.title}",
                f"ethics approval {st.ethics_number or 'not recorded'}")
        for m in s.scalars(sa.select(ResearchMember).where(ResearchMember.username == username)):
            add(m.added_at, "research-milestone", f"Investigator ({m.role}): "
                f"{titles.get(m.study_pk, '')}", "joined the study team")
        for c in s.scalars(sa.select(ResearchCohort).where(ResearchCohort.created_by == username)):
            add(c.created_at, "research-milestone", f"Cohort defined: {c.name} "
                f"({titles.get(c.study_pk, '')})",
                f"{c.flow.get('included', 0)} of {c.flow.get('assessed', 0)} patients included")
        signed = s.execute(sa.select(ResearchCrfAudit.at, ResearchRecord.study_pk,
                                     ResearchCrfAudit.form)
                           .join(ResearchRecord, ResearchRecord.id == ResearchCrfAudit.record_pk)
                           .where(ResearchCrfAudit.username == username,
                                  ResearchCrfAudit.action == "lock")).all()
        by_day: dict[tuple[dt.date, int], int] = {}
        first_at: dict[tuple[dt.date, int], dt.datetime] = {}
        for at, spk, _form in signed:
            k = (at.date(), spk)
            by_day[k] = by_day.get(k, 0) + 1
            first_at.setdefault(k, at)
        for k, n in by_day.items():
            add(first_at[k], "research-crf-signed", f"CRF forms signed: {titles.get(k[1], '')}",
                f"{n} form(s) locked with e-signature")
        for e in s.scalars(sa.select(ResearchExport).where(ResearchExport.username == username)):
            add(e.at, "research-export", f"Data exported: {titles.get(e.study_pk, '')}",
                f"{e.n_patients} patients, {e.format}"
                f"{', de-identified' if e.deidentified else ''}")
    return sorted(out, key=lambda x: (x["date"], x["category"], x["title"]))


def iter_record_ids(key: str, viewer: Viewer = CLI,
                    settings: Settings | None = None) -> Iterator[str]:
    with session_scope(settings) as s:
        acc = _access(s, key, viewer)
        yield from s.scalars(_records_q(acc).with_only_columns(ResearchRecord.record_id)
                             .order_by(ResearchRecord.id)).all()

