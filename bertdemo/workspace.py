"""The workspace: the one folder where runs (and labeling projects) live, and the rules for touching it.

- ``Workspace.child(name)`` is the path guard: only a direct child of the workspace, never ``..``, an absolute path
  elsewhere or a symlink that leads out.
- ``Workspace.staging(name)`` writes a folder that appears complete or not at all: everything goes into a hidden
  ``.tmp-*`` folder, renamed in one step. While it is written, a lock file beside it is held with ``flock``; the
  kernel drops that lock when the writer dies, even by ``kill -9``.
- ``Workspace.sweep()`` (run at start-up) removes what crashed writers and interrupted deletes left behind. It never
  touches a folder whose writer still holds its lock, so a CLI save running beside the app is safe.
- ``Workspace.download_dir()`` hands out folders for files users download (zips, batch predictions). Gradio copies
  a returned file into its own cache, so ours are pruned after ``DOWNLOAD_TTL_S``.

Not in here: what a run folder holds (``bertdemo.runs``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; the sweep then goes by age alone
    fcntl = None

WORKSPACE_ENV = "BERTDEMO_WORKSPACE"
RUN_FILE = "run.json"  # written last into a run folder: its presence marks a complete run
STAGING_PREFIX = ".tmp-"
DELETING_PREFIX = ".del-"
LOCK_SUFFIX = ".lock"
ORPHAN_LOCK_AGE_S = 60  # a lock file without its folder is only swept this long after it was made
UNLOCKED_STALE_AGE_S = 24 * 3600  # without flock (Windows), staging folders older than this are stale
DOWNLOAD_TTL_S = 15 * 60  # download files are kept this long (gradio has copied them by then)
DOWNLOADS_DIR = "bertdemo-downloads"  # under the system temp folder, which gradio serves files from


def default_root() -> Path:
    """``$BERTDEMO_WORKSPACE`` if set, else ``./workspace``."""
    return Path(os.environ.get(WORKSPACE_ENV) or "workspace")


class Workspace:
    def __init__(self, root: str | Path | None = None):
        # absolute: the folders it lists (iterdir) must name themselves the same way from any working directory,
        # or child() would read a listed relative path as relative to the root and refuse it
        self.root = (Path(root) if root is not None else default_root()).absolute()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def child(self, value: str | Path | None, *, what: str = "run") -> Path:
        """The folder ``value`` names (a name, or a path), if it is a direct child of the workspace; else a
        ``ValueError`` that reveals nothing about the server's folders."""
        if value is None or not str(value).strip():
            raise ValueError(f"Choose a {what} from the list first.")
        given = Path(str(value).strip())
        candidate = given if given.is_absolute() else self.root / given
        try:
            resolved = candidate.resolve()
            inside = resolved.parent == self.root.resolve() and not resolved.name.startswith(".")
        except (OSError, RuntimeError):  # a symlink loop, an unreadable folder
            inside = False
        if not inside:
            raise ValueError(f"{given.name or given} is not a {what} in this app's workspace. Pick one from the list.")
        return resolved

    @contextlib.contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        """Yield an empty hidden folder to write into; on success it becomes ``root/name`` in one rename.

        On any error (or a closed generator) the folder is removed and nothing named ``name`` appears.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / name
        if final.exists():
            raise ValueError(f"{name} already exists in the workspace; choose another name.")
        token = f"{STAGING_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
        lock = _hold_lock(self.root / (token + LOCK_SUFFIX))
        tmp = self.root / token
        try:
            tmp.mkdir()
            yield tmp
            fsync_tree(tmp)  # the data must be on disk before the rename makes the folder visible
            os.replace(tmp, final)
            fsync_dir(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            lock.release()

    def sweep(self) -> list[str]:
        """Remove staging folders whose writer is gone, half-deleted folders and orphan lock files; return
        their names."""
        if not self.root.is_dir():
            return []
        removed = []
        for child in sorted(self.root.iterdir()):
            name = child.name
            if name.startswith(STAGING_PREFIX) and name.endswith(LOCK_SUFFIX):
                folder = child.with_name(name[: -len(LOCK_SUFFIX)])
                if not folder.exists() and _age_s(child) > ORPHAN_LOCK_AGE_S and not _writer_alive(child):
                    child.unlink(missing_ok=True)
                    removed.append(name)
            elif name.startswith(STAGING_PREFIX) and child.is_dir():
                lock = child.with_name(name + LOCK_SUFFIX)
                if _writer_alive(lock) or (fcntl is None and _age_s(child) < UNLOCKED_STALE_AGE_S):
                    continue
                shutil.rmtree(child, ignore_errors=True)
                lock.unlink(missing_ok=True)
                removed.append(name)
            elif name.startswith(DELETING_PREFIX) and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
                removed.append(name)
        return removed

    def remove(self, folder: Path) -> None:
        """Delete a folder of the workspace so that a half-deleted one never looks whole: rename, then remove."""
        folder = self.child(folder)
        trash = folder.with_name(f"{DELETING_PREFIX}{folder.name}-{uuid.uuid4().hex[:6]}")
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def download_dir(self) -> Path:
        """A fresh folder for one download; downloads older than ``DOWNLOAD_TTL_S`` are pruned first."""
        base = downloads_root()
        base.mkdir(parents=True, exist_ok=True)
        prune_downloads()
        return Path(tempfile.mkdtemp(prefix="dl-", dir=base))


def downloads_root() -> Path:
    return Path(tempfile.gettempdir()) / DOWNLOADS_DIR


def prune_downloads(max_age_s: float = DOWNLOAD_TTL_S) -> int:
    """Remove download folders older than ``max_age_s``; return how many."""
    base = downloads_root()
    if not base.is_dir():
        return 0
    removed = 0
    for folder in base.iterdir():
        if _age_s(folder) > max_age_s:
            shutil.rmtree(folder, ignore_errors=True) if folder.is_dir() else folder.unlink(missing_ok=True)
            removed += 1
    return removed


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` to disk, deepest first."""
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        else:
            fsync_dir(path)
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms (Windows) cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Lock:
    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        self.path.unlink(missing_ok=True)  # unlink first: a sweeper that opens it now finds nothing to delete
        os.close(self.fd)


def _hold_lock(path: Path) -> _Lock:
    """Create ``path`` and hold an exclusive flock on it until ``release`` (or until this process dies)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, str(os.getpid()).encode())  # for a person looking at the folder; liveness is the flock
    return _Lock(path, fd)


class _HeldLock:
    """A lock file that stays where it is (other processes try it); only the flock comes and goes."""

    def __init__(self, fd: int):
        self.fd = fd

    def release(self) -> None:
        os.close(self.fd)


def try_lock(path: Path) -> _HeldLock | None:
    """Hold an exclusive flock on ``path`` (created if missing) until ``release`` or until this process dies;
    None when another process (or another holder in this one) has it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
    return _HeldLock(fd)


def _writer_alive(lock: Path) -> bool:
    """True while some process holds the flock on ``lock``."""
    if fcntl is None:
        return lock.exists()
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this call may have taken
    return False


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def within(path: str | Path, roots) -> bool:
    """Whether ``path``, links resolved, is one of ``roots`` or inside one (False for a path that cannot be
    resolved: a symlink loop, an unreadable folder)."""
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError):
        return False
    return any(resolved.is_relative_to(Path(root).resolve()) for root in roots)


def as_workspace(value: Workspace | str | Path | None) -> Workspace:
    """A ``Workspace`` from one, a folder, or None (the default)."""
    return value if isinstance(value, Workspace) else Workspace(value)
