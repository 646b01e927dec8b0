"""Ingest orchestration: files, folders, archives and network datasets into the store.

The use-case behind ``oncohybrid ingest`` and the DICOM Storage SCP:

* **Headers only.** Each file is parsed with :func:`pydicom.dcmread` restricted to the
  attributes we index (``specific_tags``) with large values deferred (``defer_size``), so
  pixel data is never read; the (7FE0,0010) *Pixel Data* element header is still seen
  so truncation can be detected (its value must end inside the file).
* **Validation.** A file is skipped — and reported with its path and the reason — when
  it is not DICOM, is truncated, or lacks one of the attributes every composite
  instance must carry to be placed in the hierarchy (PS3.3 §C.12.1 SOP Common, §C.7.1.1
  Patient, §C.7.2.1 General Study, §C.7.3.1 General Series). A file without the 128-byte
  preamble and ``DICM`` prefix (PS3.10 §7.1) is accepted when it starts like a raw
  dataset (group 0002 or 0008) and has all required attributes: such files are stored
  as conformant Part 10 files, never referenced in place.
* **Idempotent.** An instance is a duplicate when its (0008,0018) *SOP Instance UID* is
  already stored; duplicates never rewrite the stored file.
* **Crash-consistent and streaming.** Files are handled in batches (500 per database
  transaction): each batch's files are written (atomically) and their folders synced
  before the transaction that inserts their rows commits. A crash leaves at most files
  without rows ("orphans"); the next ingest of the same instance adopts the file at its
  final path, and :meth:`Ingestor.adopt_orphans` indexes all of them. Only one batch of
  small header records is held in memory, never datasets.
"""

from __future__ import annotations

import copy
import errno
import os
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from oncohybrid.config import Settings, get_settings
from oncohybrid.dicom.validate import pixel_data_problem
from oncohybrid.errors import InputError
from oncohybrid.services.ingest.headers import (
    HeaderRecord,
    SkipFile,
    _text,
    _Values,
    read_header,
    record_from_dataset,
)
from oncohybrid.services.ingest.index import IndexWriter, _instance_row, _now
from oncohybrid.services.ingest.report import IngestOutcome, IngestReport, _progress_bar
from oncohybrid.services.ingest.sources import (
    _LAST,
    _digests,
    _is_zip,
    _same_file,
    _Source,
    _walk_files,
)
from oncohybrid.store.filestore import FileStore
from oncohybrid.store.models import UID_LEN
from oncohybrid.textsafe import printable

#: Files per database transaction.
BATCH_SIZE = 500


class Ingestor(IndexWriter):
    """Index DICOM instances into the study database and the workspace file store.

    One instance serves a whole CLI run or the lifetime of a Storage SCP;
    :meth:`ingest_dataset` may be called from several threads at once. The database
    side (rows, logs, key caches) is :class:`~.index.IndexWriter`.
    """

    def __init__(self, settings: Settings | None = None, *, in_place: bool = False) -> None:
        self.settings = settings or get_settings()
        super().__init__(self.settings)
        self.in_place = in_place
        self.store = FileStore(self.settings.store_dir)
        self._inflight: set[str] = set()  # SOP UIDs being stored by a network thread
        self._inflight_cv = threading.Condition()
        # Series whose first instance was read (fully) in the current file run.
        self._run_series: set[str] = set()

    # ------------------------------------------------------------------ public API

    def ingest_paths(self, paths: Iterable[str | Path], *, progress: bool = False) -> IngestReport:
        """Ingest files, folders (recursively) and ``.zip`` archives; stream, batch, report."""
        roots = [os.path.abspath(os.fspath(p)) for p in paths]
        for root in roots:
            if not os.path.exists(root):
                raise InputError(f"ingest: {printable(root)}: no such file or folder")
        return self._run(roots, source="files", in_place=self.in_place, progress=progress)

    def adopt_orphans(self, *, progress: bool = False) -> IngestReport:
        """Index files of the file store that have no database row (left by a crash).

        Temporary files of unfinished writes (``.*.tmp``; not those of a write in
        progress, see :meth:`FileStore.sweep_temp`) are removed before and after the
        run, also when the run fails.
        """
        self.store.sweep_temp()
        if not self.store.root.is_dir():
            return IngestReport()
        try:
            return self._run(
                [str(self.store.root)],
                source="adopt",
                in_place=True,
                progress=progress,
                rows_in_place=False,
            )
        finally:
            self.store.sweep_temp()

    def ingest_dataset(self, ds: Dataset, *, source: str = "network") -> IngestOutcome:
        """Store and index one dataset received over the network (thread-safe).

        ``ds`` may lack file meta: it is built from (0008,0016) *SOP Class UID*,
        (0008,0018) *SOP Instance UID* and the transfer syntax (PS3.10 §7.1).
        """
        meta = getattr(ds, "file_meta", None)
        ts = meta.get("TransferSyntaxUID") if meta is not None else None
        if ts is None:
            implicit = getattr(ds, "original_encoding", (None, None))[0]
            ts = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        try:
            rec = record_from_dataset(ds, transfer_syntax_uid=str(ts))
            try:
                problem = pixel_data_problem(ds)
            except Exception:  # malformed Image Pixel attributes: cannot be judged
                problem = None
            if problem:
                raise SkipFile(f"short pixel data: {problem}")
        except SkipFile as exc:
            sop = _text(_Values(ds).get(0x00080018), UID_LEN)
            self._log_network(source, skipped=(f"{source}:{sop or '?'}", exc.reason))
            return IngestOutcome("skipped", None, exc.reason, sop)
        sop = rec.sop_instance_uid
        with self._claim(sop):
            existing = self._existing_paths([sop])
            if sop in existing:
                self._log_network(source, duplicate=1)
                return IngestOutcome("duplicate", existing[sop], None, sop)
            dest = self.store.path_for(rec.study_instance_uid, rec.series_instance_uid, sop)
            if not dest.exists():  # else: an orphan of a crash, adopted as it is
                out = _with_file_meta(ds, rec, str(ts))
                size = self.store.write_atomic(
                    dest, lambda fh: dcmwrite(fh, out, enforce_file_format=True)
                )
                self.store.sync_dirs([dest.parent])
            else:
                size = dest.stat().st_size
            row = _instance_row(rec, str(dest), size, in_place=False)
            inserted = self._commit_batch([(rec, row)], log_pk=self._network_log(source))
        if sop not in inserted:
            return IngestOutcome("duplicate", str(dest), None, sop)
        return IngestOutcome("new", str(dest), None, sop)

    def ingest_files_batch(
        self,
        paths: Sequence[str | Path],
        *,
        source: str = "network",
        link: bool = False,
        records: Sequence[HeaderRecord | None] | None = None,
    ) -> list[IngestOutcome]:
        """Store and index Part 10 files (e.g. a Storage SCP's spool) as one batch.

        Thread-safe, like :meth:`ingest_dataset`, and with the same duplicate rules, but
        through the file-ingest path: headers only are read (:func:`read_header`), files
        are copied as they are (fsync-ed) - or, with ``link``, hard-linked into the store
        (:meth:`FileStore.link_atomic`; for finished files nobody rewrites) - their
        folders synced once, and all rows go in one transaction, logged in this
        Ingestor's network ingest log. Returns one outcome per path, in order; the
        source files are left in place.

        ``records`` (one per path, or None) are header records already read from the
        same bytes - the PACS listener's receivers build them while checking a received
        data set (``oncohybrid.pacs.header_values``, #11). A path with a record is
        opened and checked as any other, but its header is not parsed again unless its
        size differs from the record's.
        """
        outcomes: list[IngestOutcome | None] = [None] * len(paths)
        batch: list[tuple[_Source, HeaderRecord]] = []
        where: list[int] = []
        report = IngestReport()
        for i, p in enumerate(paths):
            path = os.fspath(p)
            src = _Source(path, path)
            given = records[i] if records is not None else None
            try:
                # no known series: another thread's batch may not have committed yet
                if given is not None and given.file_size == src.checked_size():
                    rec = given  # opened and checked as below, without a file object
                else:
                    with src.open() as fh:
                        rec = read_header(fh, src.size(fh))
            except OSError as exc:
                outcomes[i] = IngestOutcome("skipped", path, f"cannot read: {exc.strerror}")
            except SkipFile as exc:
                outcomes[i] = IngestOutcome("skipped", path, exc.reason)
            else:
                batch.append((src, rec))
                where.append(i)
                continue
            report.skipped.append((f"{source}:{os.path.basename(path)}", outcomes[i].reason))
        log_pk = self._network_log(source)
        sops = sorted({rec.sop_instance_uid for _src, rec in batch})
        with ExitStack() as claims:
            for sop in sops:  # a global order: two batches never wait on each other
                claims.enter_context(self._claim(sop))
            paths: dict[str, str] = {}
            inserted = self._flush(batch, report, log_pk, False, None, 0, link=link,
                                   paths=paths)
            # the stored paths: those _flush read or inserted under these claims; ask the
            # database only for the others (a row another process inserted meanwhile)
            unknown = [sop for sop in sops if sop not in paths]
            stored = paths | self._existing_paths(unknown) if unknown else paths
        conflicts = {c["path"]: c for c in report.conflicts}
        first: set[str] = set()
        for i, (src, rec) in zip(where, batch, strict=True):
            sop = rec.sop_instance_uid
            new = sop in inserted and sop not in first
            first.add(sop)
            conflict = None if new else conflicts.get(src.display)
            if conflict is not None:
                outcomes[i] = IngestOutcome(
                    "conflict",
                    conflict["kept_as"],
                    f"SOP Instance UID {sop} is stored with other content "
                    f"({conflict['stored_path']}); this copy is kept for review",
                    sop,
                    rec.study_instance_uid,
                )
                continue
            outcomes[i] = IngestOutcome(
                "new" if new else "duplicate",
                stored.get(sop),
                None,
                sop,
                rec.study_instance_uid,
            )
        return [o for o in outcomes if o is not None]

    def __enter__(self) -> Ingestor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ file runs

    def _run(
        self,
        roots: list[str],
        *,
        source: str,
        in_place: bool,
        progress: bool,
        rows_in_place: bool | None = None,
    ) -> IngestReport:
        started = _now()
        self._run_series = set()
        report = IngestReport()
        log_pk = self._open_log(source, in_place)
        report.ingest_id = log_pk
        bar = _progress_bar(roots) if progress else None
        batch: list[tuple[_Source, HeaderRecord]] = []
        skipped_written = 0
        status = "interrupted"
        try:
            with bar if bar is not None else nullcontext():
                for src in self._iter_sources(roots, report):
                    if src.zip_info is _LAST:
                        # End of an archive: store its members while it is still open.
                        if batch:
                            self._flush(
                                batch, report, log_pk, in_place, rows_in_place, skipped_written
                            )
                            skipped_written = len(report.skipped)
                            batch.clear()
                        if bar is not None:
                            bar.advance()
                        continue
                    try:
                        rec = self._read(src)
                    except SkipFile as exc:
                        report.skipped.append((src.display, exc.reason))
                    else:
                        batch.append((src, rec))
                    if bar is not None and src.zip_info is None:
                        bar.advance()
                    if len(batch) >= BATCH_SIZE:
                        self._flush(batch, report, log_pk, in_place, rows_in_place, skipped_written)
                        skipped_written = len(report.skipped)
                        batch.clear()
                if batch or len(report.skipped) != skipped_written:
                    self._flush(batch, report, log_pk, in_place, rows_in_place, skipped_written)
                    batch.clear()
            status = "completed"
        finally:
            report.elapsed_s = (_now() - started).total_seconds()
            self._close_log(log_pk, report, status)
        return report

    def _iter_sources(self, roots: list[str], report: IngestReport) -> Iterator[_Source]:
        for root in roots:
            for path, problem in _walk_files(root):
                if problem is not None:
                    report.skipped.append((path, problem))
                    continue
                if not _is_zip(path):
                    yield _Source(path, path)
                    continue
                try:
                    zf = zipfile.ZipFile(path)
                except (zipfile.BadZipFile, OSError) as exc:
                    report.skipped.append((path, f"unreadable .zip archive: {exc}"))
                    continue
                with zf:
                    members = [i for i in zf.infolist() if not i.is_dir()]
                    for info in members:
                        if info.filename.lower().endswith(".zip"):
                            report.skipped.append(
                                (f"{path}!{info.filename}", "nested .zip archive: extract it first")
                            )
                            continue
                        yield _Source(f"{path}!{info.filename}", None, zf, info)
                    yield _Source(path, None, zf, _LAST)  # marks the archive done (progress)

    def _read(self, src: _Source) -> HeaderRecord:
        try:
            with src.open() as fh:
                rec = read_header(fh, src.size(fh), self._run_series)
        except OSError as exc:
            raise SkipFile(f"cannot read: {exc.strerror or exc}") from None
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError) as exc:
            raise SkipFile(f"cannot read archive member: {exc}") from None
        if rec.full:
            self._run_series.add(rec.series_instance_uid)
        return rec

    def _flush(
        self,
        batch: list[tuple[_Source, HeaderRecord]],
        report: IngestReport,
        log_pk: int,
        in_place: bool,
        rows_in_place: bool | None,
        skipped_written: int,
        *,
        link: bool = False,
        paths: dict[str, str] | None = None,
    ) -> set[str]:
        """Store one batch: files first (synced), then one transaction for the rows.

        Returns the SOP Instance UIDs whose rows this batch inserted (the others were
        duplicates). ``paths``, when given, receives the stored file path of each SOP
        Instance UID that was already stored or whose row this batch inserted.
        """
        # One SOP Instance UID twice in the batch: the second is a duplicate of the first
        # (or a conflict with it); one already stored: of the stored file.
        unique: dict[str, tuple[_Source, HeaderRecord]] = {}
        repeats: list[tuple[_Source, HeaderRecord]] = []
        for src, rec in batch:
            if rec.sop_instance_uid in unique:
                repeats.append((src, rec))
            else:
                unique[rec.sop_instance_uid] = (src, rec)
        existing = self._existing_paths(list(unique))
        stored = {sop: _Source(path, path) for sop, path in existing.items()}
        again = [(src, rec, stored[sop]) for sop, (src, rec) in unique.items() if sop in stored]
        again += [
            (src, rec, stored.get(rec.sop_instance_uid) or unique[rec.sop_instance_uid][0])
            for src, rec in repeats
        ]
        conflicts = self._find_conflicts(again)
        n_dup = len(again) - len(conflicts)
        rows: list[tuple[HeaderRecord, dict[str, Any]]] = []
        dirs: set[str] = set()
        for sop, (src, rec) in unique.items():
            if sop in existing:
                continue
            if in_place and src.path is not None and rec.part10:
                row_in_place = True if rows_in_place is None else rows_in_place
                rows.append(
                    (rec, _instance_row(rec, src.path, rec.file_size, in_place=row_in_place))
                )
                continue
            # strings, not Paths: this runs once per instance (pathlib cost ~20 us, #11)
            dest = self.store.path_str_for(
                rec.study_instance_uid, rec.series_instance_uid, sop
            )
            orphan = _stat_if_exists(dest)
            if orphan is not None:  # an orphan left by an interrupted run: adopt it
                size = orphan.st_size
            elif link and src.path is not None and rec.part10:
                size = self.store.link_atomic(src.path, dest)
                dirs.add(os.path.dirname(dest))
            else:
                size = self._copy_into_store(src, rec, Path(dest))
                dirs.add(os.path.dirname(dest))
            rows.append((rec, _instance_row(rec, dest, size, in_place=False)))
        if link and dirs:
            self.store.sync_all()  # the linked files and their folders, in one call
        else:
            self.store.sync_dirs(dirs)
        new_skips = report.skipped[skipped_written:]
        inserted = self._commit_batch(rows, log_pk=log_pk, dup_extra=n_dup, new_skips=new_skips)
        if paths is not None:
            paths.update(existing)
            paths.update(
                (rec.sop_instance_uid, row["file_path"])
                for rec, row in rows
                if rec.sop_instance_uid in inserted
            )
        report.new += len(inserted)
        report.duplicate += n_dup + (len(rows) - len(inserted))
        if conflicts:
            self._record_conflicts(conflicts, log_pk)
            report.conflicts.extend(conflicts)
        return inserted

    def _find_conflicts(
        self, again: list[tuple[_Source, HeaderRecord, _Source]]
    ) -> list[dict[str, str]]:
        """Keep aside every instance whose data set differs from the stored one's.

        The data sets are compared after the File Meta Information (PS3.10 §7.1), so a
        copy re-sent with other meta (another implementation, a bare dataset) is a
        plain duplicate; the same file (in place, a hard link) is not read at all.
        Returns one report entry per conflict; its copy is stored (synced) under
        ``conflicts/`` before the entry is returned.
        """
        found: list[dict[str, str]] = []
        dirs: set[Path] = set()
        for src, rec, stored in again:
            try:
                if _same_file(src, stored):
                    continue
                with stored.open() as fh:
                    stored_whole, stored_data = _digests(fh)
                with src.open() as fh:
                    new_whole, new_data = _digests(fh)
            except (OSError, SkipFile, zipfile.BadZipFile):
                continue  # the stored file is gone or unreadable: nothing to compare
            if new_data == stored_data:
                continue
            kept = self.store.conflict_path(rec.sop_instance_uid, new_whole)
            if not kept.exists():
                with src.open() as fh:
                    self.store.copy_atomic(fh, kept)
                dirs.add(kept.parent)
            found.append(
                {
                    "path": src.display,
                    "sop_instance_uid": rec.sop_instance_uid,
                    "stored_path": stored.display,
                    "stored_sha256": stored_whole,
                    "new_sha256": new_whole,
                    "kept_as": str(kept),
                }
            )
        self.store.sync_dirs(dirs)
        return found

    def _copy_into_store(self, src: _Source, rec: HeaderRecord, dest: Path) -> int:
        if rec.part10:
            with src.open() as fh:
                return self.store.copy_atomic(fh, dest)
        # A bare dataset: store it as a conformant Part 10 file with file meta.
        with src.open() as fh:
            ds = pydicom.dcmread(fh, force=True)
        out = _with_file_meta(ds, rec, rec.transfer_syntax_uid or ImplicitVRLittleEndian)
        return self.store.write_atomic(dest, lambda f: dcmwrite(f, out, enforce_file_format=True))

    @contextmanager
    def _claim(self, sop: str) -> Iterator[None]:
        """Let one thread at a time store a given SOP Instance UID."""
        with self._inflight_cv:
            while sop in self._inflight:
                self._inflight_cv.wait()
            self._inflight.add(sop)
        try:
            yield
        finally:
            with self._inflight_cv:
                self._inflight.discard(sop)
                self._inflight_cv.notify_all()


#: errnos for which ``Path.exists()`` answers False instead of raising (pathlib's own list)
_NOT_THERE = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)


def _stat_if_exists(path: str) -> os.stat_result | None:
    """``os.stat(path)``, or None where ``Path(path).exists()`` would be False.

    The same answers as ``exists()`` then ``stat()`` with one system call: other errors
    (EACCES ...) raise as ``exists()`` raised them.
    """
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno in _NOT_THERE:
            return None
        raise
    except ValueError:  # an embedded NUL: exists() answers False
        return None


def _with_file_meta(ds: Dataset, rec: HeaderRecord, transfer_syntax_uid: str) -> Dataset:
    """A shallow copy of ``ds`` with File Meta Information (PS3.10 §7.1).

    The caller's dataset is not modified.
    """
    out = copy.copy(ds)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = rec.sop_class_uid
    meta.MediaStorageSOPInstanceUID = rec.sop_instance_uid
    meta.TransferSyntaxUID = transfer_syntax_uid
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out.file_meta = meta
    return out
