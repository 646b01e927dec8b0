"""Where ingest finds its files: folder walks, ``.zip`` members, safe opening, digests.

Only regular files are opened (``O_NONBLOCK`` and ``fstat`` on the open descriptor: a
named pipe cannot block a run); symbolic links are followed only to regular files inside
the input tree. :func:`_digests` hashes a file and its data set (after the File Meta
Information, PS3.10 §7.1) for conflict detection.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from oncohybrid.services.ingest.headers import SkipFile


@dataclass(slots=True)
class _Source:
    display: str  # what reports show: a path, or 'archive.zip!member'
    path: str | None  # a real file on disk, or None for an archive member
    zip_file: zipfile.ZipFile | None = None
    zip_info: zipfile.ZipInfo | None = None
    st_size: int = -1  # from the fstat of the last open (saves a second one)

    def open(self) -> BinaryIO:
        """Open the member or file; raise :class:`SkipFile` for anything but a regular file.

        The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the open
        descriptor: a named pipe put in place of a file after the folder was listed
        cannot block the run (opening a FIFO for reading otherwise waits for a writer).
        """
        if self.zip_file is not None and self.zip_info is not None:
            return self.zip_file.open(self.zip_info)  # type: ignore[return-value]
        assert self.path is not None
        fd = self._open_regular()
        try:
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def checked_size(self) -> int:
        """The size :meth:`open` then :meth:`size` give, with the same checks and errors
        (``O_NONBLOCK`` open, ``fstat`` on it, :class:`SkipFile` for anything but a regular
        file), but no file object: for a file whose header is already known (#11)."""
        assert self.path is not None and self.zip_file is None
        os.close(self._open_regular())
        return self.st_size

    def _open_regular(self) -> int:
        """``O_NONBLOCK`` descriptor of the file, checked by ``fstat`` to be a regular
        file (:class:`SkipFile` otherwise, descriptor closed); sets :attr:`st_size`."""
        assert self.path is not None
        fd = os.open(self.path, _OPEN_FLAGS)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise SkipFile(_not_regular(st.st_mode))
        except BaseException:
            os.close(fd)
            raise
        self.st_size = st.st_size
        return fd

    def size(self, fh: BinaryIO) -> int:
        if self.zip_info is not None:
            return self.zip_info.file_size
        if self.st_size >= 0:
            return self.st_size
        return os.fstat(fh.fileno()).st_size


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a folder"),
)


def _not_regular(mode: int) -> str:
    """The skip reason for a directory entry that is not a regular file."""
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return f"not a regular file: {kind}; only regular files are read"


def _is_zip(path: str) -> bool:
    return path.lower().endswith(".zip")


def _walk_files(root: str) -> Iterator[tuple[str, str | None]]:
    """``(path, None)`` for each regular file below ``root``; ``(path, reason)`` for the rest.

    Sorted, a folder's files before its sub-folders (as :func:`os.walk`). Named pipes,
    sockets and devices are reported, never opened (a FIFO blocks a reader forever).
    Symbolic links are followed only to a regular file inside ``root``'s tree; links to
    folders (loops, duplicate trees) and links leading outside the tree are reported.
    ``root`` itself, named by the user, may be a link.
    """
    try:
        st = os.stat(root)
    except OSError as exc:
        yield root, f"cannot read: {exc.strerror}"
        return
    if stat.S_ISREG(st.st_mode):
        yield root, None
        return
    if not stat.S_ISDIR(st.st_mode):
        yield root, _not_regular(st.st_mode)
        return
    real_root = os.path.realpath(root)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            yield folder, f"cannot list folder: {exc.strerror}"
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_file(follow_symlinks=False):
                    yield entry.path, None
                elif entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_symlink():
                    yield entry.path, _symlink_problem(entry.path, real_root)
                else:
                    yield entry.path, _not_regular(entry.stat(follow_symlinks=False).st_mode)
            except OSError as exc:
                yield entry.path, f"cannot read: {exc.strerror}"
        stack.extend(reversed(subdirs))


def _symlink_problem(path: str, real_root: str) -> str | None:
    """None when the link at ``path`` leads to a regular file inside ``real_root``."""
    target = os.path.realpath(path)
    if os.path.commonpath([target, real_root]) != real_root:
        return f"symbolic link to {target}, outside the input folder: not followed"
    try:
        mode = os.stat(target).st_mode
    except OSError:
        return f"broken symbolic link (to {target})"
    if stat.S_ISDIR(mode):
        return "symbolic link to a folder: not followed (link the files, or name the folder)"
    if not stat.S_ISREG(mode):
        return f"symbolic link to {_not_regular(mode)}"
    return None


def count_files(paths: Iterable[str | Path]) -> int:
    """Number of regular files below ``paths`` (archives count as one), for progress bars."""
    return sum(1 for p in paths for _, problem in _walk_files(os.fspath(p)) if problem is None)


def _same_file(a: _Source, b: _Source) -> bool:
    """Whether two sources are one file on disk (an in-place row, a hard link)."""
    if a.path is None or b.path is None or a.zip_info is not None or b.zip_info is not None:
        return False
    try:
        return os.path.samefile(a.path, b.path)
    except OSError:
        return False


def _digests(fh: BinaryIO) -> tuple[str, str]:
    """SHA-256 of the whole file and of its data set (what follows the file meta).

    The File Meta Information group ends where its (0002,0000) *File Meta Information
    Group Length* says (PS3.10 §7.1); a bare dataset is all data set.
    """
    whole = hashlib.sha256()
    data = hashlib.sha256()
    head = fh.read(144)
    whole.update(head)
    skip = 0  # bytes of file meta still to leave out of the data set digest
    if head[128:132] == b"DICM" and head[132:136] == b"\x02\x00\x00\x00" and len(head) == 144:
        skip = int.from_bytes(head[140:144], "little")
    else:
        data.update(head)
    while chunk := fh.read(1 << 20):
        whole.update(chunk)
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        data.update(chunk[skip:])
        skip = 0
    return whole.hexdigest(), data.hexdigest()


#: Marks the end of an archive's members in a source stream (progress, batch flush).
_LAST = zipfile.ZipInfo("__end_of_archive__")
