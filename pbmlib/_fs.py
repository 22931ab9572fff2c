"""Writing to the file system without losing or escaping anything: one of each.

Every writer in pbmlib goes through these:

- :func:`write_bytes_atomic` / :func:`write_json_atomic`: a file is written under a
  temporary name beside its target (``.<name>.<8 chars>.tmp``) and renamed, so a reader
  never sees half a file under the final name; :func:`remove_stale_tmp` removes those a
  killed run left behind. :func:`write_new_file` creates a file that must not exist (never
  follows a link, never replaces).
- :func:`lock`: an exclusive lock on a folder (a lock file, ``flock``), refusing at once or
  waiting; released by the kernel when its process dies, so a killed run never leaves a
  stale lock.
- :func:`staged_dir`: a folder is built under a marked temporary name beside its target
  (``.<name>.incomplete-<random>.tmp``) and swapped into place only when complete;
  :func:`clean_stale` removes what a killed run left (call it holding the target's lock).
- :func:`inside`: a path built from a config is checked to stay inside its output folder
  (links resolved) before anything is written or removed there.

Written files get the user's normal permissions (``0o666`` minus the umask), not the
``0o600`` of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path

try:  # POSIX advisory locks; elsewhere an O_EXCL lock file naming its process
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["FolderLockedError", "lock", "lock_path", "staged_dir", "clean_stale", "inside", "remove",
           "write_bytes_atomic", "write_json_atomic", "write_new_file", "remove_stale_tmp", "default_file_mode",
           "pid_alive"]

# What tempfile.mkstemp(prefix=".<name>.", suffix=".tmp") creates: 8 random characters.
_TMP_PATTERN = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
#: Inside a staging folder: marks it as ours and unfinished (removed by the next run on the target).
STAGING_MARKER = ".pbm-incomplete"


class FolderLockedError(ValueError):
    """Another process holds the lock (its pid, host and start time are in the message)."""


# ----------------------------------------------------------------------------- files

def default_file_mode() -> int:
    """The mode a new file gets from ``open()``: ``0o666`` minus the process umask."""
    try:  # Linux >= 4.7 reports the umask without changing it (thread-safe)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename (atomic on one
    file system); the parent folder is created if missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, default_file_mode())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: str | os.PathLike, obj, *, exclusive: bool = False) -> None:
    """Write ``obj`` as indented JSON (:func:`pbmlib._io.to_json`), atomically.

    ``exclusive=True`` never replaces an existing file (``FileExistsError``): the name is
    claimed first, so the rename only replaces our own empty file.
    """
    from ._io import to_json

    data = to_json(obj).encode()  # an object that cannot be written fails before anything is touched
    if exclusive:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    write_bytes_atomic(path, data)


def write_new_file(path: str | os.PathLike, data: bytes) -> None:
    """Create ``path`` (which must not exist: never follows a link or replaces a file) and write ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def remove_stale_tmp(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files (``.<name>.<8 chars>.tmp``) a killed atomic write left in ``folder``.

    Only files matching that pattern directly in ``folder`` are removed (no links, no
    sub-folders). Call it while holding the folder's lock, so no live write is removed.
    """
    removed = []
    folder = Path(folder)
    if not folder.is_dir() or folder.is_symlink():
        return removed
    for entry in folder.iterdir():
        if _TMP_PATTERN.match(entry.name) and entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def remove(path: str | os.PathLike) -> None:
    """Remove a file, a link (never what it points to) or a folder tree (links in it unlinked), if there."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def inside(root: str | os.PathLike, *parts: str) -> Path:
    """``root/parts...``, refused unless every part is a plain name and the result stays inside
    ``root`` once links are resolved.

    The last part itself may be a link: it is then removed or replaced as a link, never
    followed. ``root`` must be absolute and resolved.

    Raises
    ------
    ValueError
        A part is empty, ``.``, ``..`` or holds a separator, or a link leads out of ``root``.
    """
    root = Path(root)
    for part in parts:
        if part in ("", ".", "..") or "/" in part or os.sep in part or "\0" in part:
            raise ValueError(f"{part!r} is not a plain folder name; only plain names inside {root} are written")
    path = root.joinpath(*parts)
    if not path.parent.resolve().is_relative_to(root):
        raise ValueError(f"{path.parent} leads outside {root} (a symbolic link); remove the link")
    return path


def pid_alive(pid) -> bool:
    """Whether process ``pid`` of this host exists (a lock naming a dead one is stale).

    Not a whole number > 0: False. A process that exists but belongs to another user: True.
    """
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ----------------------------------------------------------------------------- the lock

def lock_path(folder: str | os.PathLike) -> Path:
    """The lock file of ``folder``: ``.<name>.lock`` beside it (it survives the folder being replaced)."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock"


def _holder(path: Path) -> dict:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _busy(what: str, target: str, path: Path) -> FolderLockedError:
    holder = _holder(path)
    who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
    return FolderLockedError(f"{what} {target} is in use by another process ({who}; lock {path}); wait for it to "
                             f"finish or choose another {what}")


@contextlib.contextmanager
def lock(path: str | os.PathLike, *, what: str = "folder", target: str | os.PathLike | None = None,
         wait: bool = False, timeout: float | None = None):
    """Hold an exclusive lock on the lock file ``path`` for the ``with`` block.

    Parameters
    ----------
    path : path
        The lock file (created if needed, with its parent folder); for a folder use
        :func:`lock_path` (``.<name>.lock`` beside it).
    what : str
        What is locked, for the message ("dst", "sweep folder", ...).
    target : path, optional
        What is locked, for the message (default: ``path``).
    wait : bool, default=False
        Wait for the holder to finish instead of refusing at once.
    timeout : float, optional
        With ``wait``: give up after this many seconds (None waits for ever).

    Raises
    ------
    FolderLockedError
        Another process holds the lock (and ``wait`` is False, or ``timeout`` passed); the
        message names its pid, host and start time.

    Notes
    -----
    ``fcntl.flock`` is released by the kernel when the process dies, so a killed run
    never leaves a stale lock. The file names its holder (JSON: pid, host, start time) and
    is removed on release; a process that opened it just before must find it unchanged
    (same inode) once it holds the lock, or it tries again. Where ``fcntl`` is missing,
    the file is created exclusively and one naming a dead process of this host is taken
    over.
    """
    path = Path(path)
    target = str(target if target is not None else path)
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                     "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode()
    fd = _acquire(path, wait, deadline, what, target)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, me, 0)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        os.close(fd)  # closing releases the flock


def _acquire(path: Path, wait: bool, deadline, what: str, target: str) -> int:
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    while True:
        if fcntl is None:  # pragma: no cover - Windows
            try:
                return os.open(path, flags | os.O_EXCL, 0o666)
            except FileExistsError:
                holder = _holder(path)
                if holder.get("host") == socket.gethostname() and not pid_alive(holder.get("pid")):
                    path.unlink(missing_ok=True)
                    continue
        else:
            fd = os.open(path, flags, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            else:
                try:  # the previous holder may have removed the file between our open and flock
                    same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    return fd
                os.close(fd)
                continue
        if not wait or (deadline is not None and time.monotonic() > deadline):
            raise _busy(what, target, path)
        time.sleep(0.2)


# ----------------------------------------------------------------------------- staged folders

def _staging_name(target: Path, kind: str) -> Path:
    return target.parent / f".{target.name}.{kind}-{secrets.token_hex(6)}.tmp"


def clean_stale(target: str | os.PathLike) -> list[Path]:
    """Remove what a killed run left beside ``target``: ``.<name>.incomplete-*.tmp`` staging folders
    (marked as ours) and ``.<name>.replaced-*.tmp`` (an earlier output being replaced: put back
    when ``target`` itself is gone). Call it holding the target's :func:`lock`."""
    target = Path(target)
    removed = []
    parent = target.parent
    if not parent.is_dir():
        return removed
    prefix = f".{target.name}."
    for entry in sorted(parent.iterdir()):
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")) or entry.is_symlink() or not entry.is_dir():
            continue
        middle = name[len(prefix):-len(".tmp")]
        if middle.startswith("incomplete-") and (entry / STAGING_MARKER).is_file():
            shutil.rmtree(entry)
            removed.append(entry)
        elif middle.startswith("replaced-"):
            if not os.path.lexists(target):
                os.rename(entry, target)  # the swap was cut between its two renames: put the old output back
            else:
                shutil.rmtree(entry)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def staged_dir(target: str | os.PathLike, *, private: bool = False):
    """Build a folder beside ``target`` and swap it into place when the ``with`` block succeeds.

    Yields a fresh, marked folder ``.<name>.incomplete-<random>.tmp`` beside ``target``
    (same file system, so the final rename is atomic; mode 0700 with ``private``, else
    the umask's). On success the marker goes, an existing ``target`` is renamed aside
    (``.<name>.replaced-<random>.tmp``), the new folder renamed to ``target`` and the old
    one removed (links in it unlinked, never followed): ``target`` is always either the
    old complete folder or the new one. On an exception the staging folder is removed
    and ``target`` is untouched. Hold the target's :func:`lock` and decide beforehand
    whether ``target`` may be replaced: this replaces it whole.
    """
    target = Path(target)
    staging = _staging_name(target, "incomplete")
    os.mkdir(staging, 0o700 if private else 0o777)  # umask applies; a key folder is the owner's only
    try:
        write_new_file(staging / STAGING_MARKER, b"an unfinished pbm output; removed by the next run\n")
        yield staging
        (staging / STAGING_MARKER).unlink()
        _swap_in(staging, target)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise


def _swap_in(staging: Path, target: Path) -> None:
    if not os.path.lexists(target):
        os.rename(staging, target)
        return
    aside = _staging_name(target, "replaced")
    os.rename(target, aside)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside)
