"""The workspace file store: DICOM instances under ``store/<Study>/<Series>/<SOP>.dcm``.

Files are written atomically — a temporary file in the destination folder, ``fsync``,
then :func:`os.replace` — so a reader or a crash never sees half a file at the final
name; a crash can only leave a hidden ``.*.tmp`` file, which :meth:`FileStore.sweep_temp`
removes (``oncohybrid db adopt``); a write in progress holds its temporary file under an
exclusive ``flock``, which the sweep respects. The folder entries themselves are
``fsync``-ed by :meth:`FileStore.sync_dirs` before the database rows that point at the
files are committed.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from oncohybrid.errors import StoreError

#: Characters allowed in a path component built from a UID. Conformant UIDs
#: (PS3.5 §9.1) only use digits and dots; the extra characters tolerate common
#: non-conformant UIDs without letting ``/`` or ``..`` escape the store.
_SAFE_UID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$")
TEMP_SUFFIX = ".tmp"


@functools.lru_cache(maxsize=4096)  # study and series UIDs repeat for every instance
def uid_component(uid: str) -> str:
    """A file-name-safe component for ``uid`` (the UID itself when it is safe)."""
    uid = uid.strip().rstrip("\x00")
    if _SAFE_UID.match(uid) and ".." not in uid:
        return uid
    # Untrusted header value: never use it as a path; a stable digest is unique enough.
    return "x" + hashlib.sha1(uid.encode("utf-8", "surrogateescape")).hexdigest()


class FileStore:
    """Content-addressed-by-UID storage of DICOM instances below ``root``."""

    def __init__(
        self, root: str | os.PathLike[str], conflicts_root: str | os.PathLike[str] | None = None
    ) -> None:
        self.root = Path(root)
        #: Instances that arrived under a stored SOP Instance UID with other content,
        #: kept for review (beside the store, so orphan adoption never indexes them).
        self.conflicts_root = (
            Path(conflicts_root) if conflicts_root is not None else self.root.parent / "conflicts"
        )

    def conflict_path(self, sop_uid: str, sha256: str) -> Path:
        """Where a conflicting copy is kept: ``conflicts/<SOPUID>/<sha256>.dcm``."""
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise StoreError(f"file store: {sha256!r} is not a SHA-256 hex digest")
        return self.conflicts_root / uid_component(sop_uid) / f"{sha256}.dcm"

    def path_for(self, study_uid: str, series_uid: str, sop_uid: str) -> Path:
        """Final path of an instance: ``<root>/<StudyUID>/<SeriesUID>/<SOPUID>.dcm``."""
        return Path(self.path_str_for(study_uid, series_uid, sop_uid))

    def path_str_for(self, study_uid: str, series_uid: str, sop_uid: str) -> str:
        """:meth:`path_for` as a string (``str(path_for(...))``), without pathlib.

        For the indexing of received instances, once per instance (#11): building the
        ``Path`` cost more than the rest of the store's part. The components never
        contain a separator and are never ``.`` or ``..``, and ``str(root)`` is
        normalised, so the joined string is the ``Path``'s own.
        """
        root = str(self.root)
        # Path(".") / "a" is "a"; "/" already ends with the separator
        prefix = "" if root == "." else root if root.endswith("/") else root + "/"
        return (
            f"{prefix}{uid_component(study_uid)}/{uid_component(series_uid)}/"
            f"{uid_component(sop_uid)}.dcm"
        )

    def write_atomic(self, dest: Path, write: Callable[[BinaryIO], None]) -> int:
        """Write ``dest`` through ``write(fileobj)`` atomically; return the size in bytes.

        The temporary file is held under an exclusive ``flock`` while it is written, so
        :meth:`sweep_temp` can tell a live write from one left by a dead process.
        """
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = self._locked_temp(dest)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
                size = fh.tell()
            os.replace(tmp, dest)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise StoreError(f"file store: cannot write {dest}: {exc.strerror}") from exc
            raise
        return size

    @staticmethod
    def _locked_temp(dest: Path) -> tuple[int, str]:
        """A new temporary file beside ``dest``, opened and ``flock``-ed exclusively."""
        for _ in range(100):
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=TEMP_SUFFIX)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # A sweep may have removed the file between mkstemp and flock: then
                # the name no longer leads to this descriptor; take another name.
                if os.stat(tmp).st_ino == os.fstat(fd).st_ino:
                    return fd, tmp
            except OSError:
                pass
            os.close(fd)
        raise StoreError(f"file store: cannot create a temporary file in {dest.parent}")

    def copy_atomic(self, src: BinaryIO, dest: Path) -> int:
        """Copy an open binary stream to ``dest`` atomically."""
        return self.write_atomic(dest, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))

    def link_atomic(self, src: str | Path, dest: str | Path) -> int:
        """Store the finished file ``src`` at ``dest`` as a hard link; return its size.

        For files that are complete and never rewritten (a Storage SCP's spool): one
        folder entry instead of a second copy of the data. A link is atomic, so
        ``dest`` is never half there. The contents are *not* ``fsync``-ed here: the
        caller syncs a whole batch at once with :meth:`sync_all` before it commits
        the rows (one ``fsync`` per file cost more CPU than the rest of indexing).
        Falls back to :meth:`copy_atomic` where links cannot be made (another file
        system, or one without hard links).
        """
        # The usual case first: the folder is there and the link can be made (its
        # mkdir cost ~10 us per file). Any failure goes the whole way below, as before.
        try:
            size = os.stat(src).st_size
            os.link(src, dest)
        except OSError:
            pass
        else:
            return size
        src, dest = Path(src), Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = os.stat(src).st_size
            os.link(src, dest)
        except FileExistsError:
            return dest.stat().st_size  # an earlier run's file: adopted like a copy's
        except OSError as exc:
            if not src.exists():
                raise StoreError(f"file store: cannot read {src}: {exc.strerror}") from exc
            with open(src, "rb") as fh:  # EXDEV, EPERM, ENOTSUP ...: no links here
                return self.copy_atomic(fh, dest)
        return size

    @staticmethod
    def sync_all() -> None:
        """Flush every file system's dirty data to disk (POSIX ``sync``).

        One call after linking a batch of files replaces one ``fsync`` per file (and per
        folder): on ext4, 1,000 ``fsync`` calls took 75 ms of CPU, one ``sync`` 0.4 ms.
        """
        os.sync()

    @staticmethod
    def sync_dirs(dirs: Iterable[str | Path]) -> None:
        """``fsync`` folders so that renamed entries survive a power loss (POSIX)."""
        for d in dirs:
            try:
                fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            except OSError:  # some file systems refuse fsync on folders; best effort
                pass
            finally:
                os.close(fd)

    def iter_instances(self) -> Iterator[Path]:
        """Every stored ``.dcm`` file (for orphan adoption and checks)."""
        if not self.root.is_dir():
            return
        for dirpath, _dirs, files in os.walk(self.root):
            for name in sorted(files):
                if name.endswith(".dcm") and not name.startswith("."):
                    yield Path(dirpath) / name

    def sweep_temp(self) -> int:
        """Remove the temporary files of writes that did not finish (a crash, a kill).

        A temporary file whose writer is alive is ``flock``-ed by it
        (:meth:`write_atomic`) and kept; every other ``.*.tmp`` file is removed, whatever
        its age. ``flock`` is per host: on a file store shared over NFS by several
        hosts, run this only while no other host writes. Returns the number removed.
        """
        removed = 0
        if not self.root.is_dir():
            return 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    removed += _remove_if_abandoned(os.path.join(dirpath, name))
        return removed


def _remove_if_abandoned(path: str) -> int:
    """Remove a temporary file nobody holds locked; 1 when removed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        with contextlib.suppress(OSError):  # e.g. a symlink named like a temp file
            if os.path.islink(path):
                os.unlink(path)
                return 1
        return 0
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return 0  # a live writer holds it
    try:
        os.unlink(path)  # while holding the lock: the writer's check sees it gone
        return 1
    except OSError:
        return 0
    finally:
        os.close(fd)
