"""Media files in Trackio's layout: `<data dir>/media/<project>/<run>/<step>/<file>`. No Flask here.

Uploads arrive in two steps, as Trackio's client sends them: `/api/upload` stages the bytes
under an unguessable name (`stage`), then `bulk_upload_media` names the staged file and where it
belongs (`place`). Every path is built from checked name parts and checked again after symlinks
are resolved, so nothing is read or written outside the media folder.
"""

from __future__ import annotations

import errno
import mimetypes
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from . import storage

MEDIA_DIR = "media"
STAGING_DIR = ".uploads"
STAGED_NAME = re.compile(r"[0-9a-f]{32}(\.[A-Za-z0-9]{1,16})?")
STAGED_MAX_AGE_S = 3600.0
SWEEP_EVERY_S = 60.0
MAX_PART_BYTES = 255
MAX_PROJECT_FILES = 10_000
REFUSED_SUFFIXES = frozenset({".db", ".db-journal", ".db-wal", ".db-shm", ".sqlite", ".sqlite3"})
CHUNK = 1 << 20


class MediaError(ValueError):
    """An upload or media path that cannot be accepted; the message says why."""


def media_root(data_dir: Path) -> Path:
    return Path(data_dir) / MEDIA_DIR


def staging_root(data_dir: Path) -> Path:
    """Staged uploads live beside the media folder (same file system, never served)."""
    return Path(data_dir) / STAGING_DIR


def _suffix(filename: str) -> str:
    suffix = PurePosixPath(filename.replace("\\", "/")).suffix
    return suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,16}", suffix) else ""


def stage(data_dir: Path, source: IO[bytes], filename: str, max_bytes: int) -> str:
    """Copy one uploaded file into the staging folder; return the path the client sends back."""
    folder = staging_root(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    _sweep_now_and_then(folder)
    target = folder / f"{secrets.token_hex(16)}{_suffix(filename)}"
    written = 0
    try:
        with open(target, "xb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise MediaError(f"an uploaded file is larger than {max_bytes // 2**20} MB")
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return str(target)


_last_sweep: dict[str, float] = {}


def _sweep_now_and_then(folder: Path) -> None:
    """Sweep expired files at most once per SWEEP_EVERY_S per folder: sweeping on every staged
    file made an upload of n files cost n² directory scans."""
    now = time.monotonic()
    if now - _last_sweep.get(str(folder), -SWEEP_EVERY_S) >= SWEEP_EVERY_S:
        _last_sweep[str(folder)] = now
        _remove_expired(folder)


def _remove_expired(folder: Path) -> None:
    """Drop staged files nobody claimed within STAGED_MAX_AGE_S (a client that died mid-run)."""
    cutoff = time.time() - STAGED_MAX_AGE_S
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:
            pass


def staged_file(data_dir: Path, uploaded_file: Any) -> Path:
    """The staged file an upload entry names, refusing anything `stage` did not create."""
    raw = uploaded_file.get("path") if isinstance(uploaded_file, dict) else None
    if not isinstance(raw, str) or not raw or "\x00" in raw:
        raise MediaError("Expected uploaded file metadata with a valid path.")
    path = Path(raw)
    folder = staging_root(data_dir)
    if not STAGED_NAME.fullmatch(path.name) or path.parent != folder:
        raise MediaError("Uploaded file was not created by this Trackio server.")
    if not path.is_file() or path.is_symlink():
        raise MediaError("Uploaded file is missing.")
    return path


def name_parts(text: str, what: str) -> list[str]:
    """Folder names of a run name or relative path, one per "/"-separated part.

    Parts that are empty or "." are refused (`a//b` and `./a/b` would share `a/b`'s folder and
    overwrite its files), and so are parts starting with "." (never served by `/file`), "..",
    NUL bytes and parts longer than a file name can be.
    """
    parts = text.split("/")
    for part in parts:
        if not part or part.startswith(".") or "\x00" in part \
                or len(part.encode()) > MAX_PART_BYTES:
            raise MediaError(f"{what} {text[:80]!r} cannot be used as a folder name (empty "
                             "parts, parts starting with '.' and overlong parts are refused)")
    return parts


def file_name(orig_name: Any, fallback: str) -> str:
    """The base name of a client-side file name (either separator), else `fallback`."""
    if not isinstance(orig_name, str) or not orig_name or "\x00" in orig_name:
        return fallback
    name = PurePosixPath(orig_name.replace("\\", "/")).name
    if name in ("", ".", "..") or len(name.encode()) > MAX_PART_BYTES:
        return fallback
    return name


def target_path(data_dir: Path, project: str, run: str | None, step: int | None,
                relative_path: str | None, name: str) -> Path:
    """Where an upload belongs: `<project>/<run>/<step>/<name>`, or `<project>/files/<rel>/<name>`
    for project files (trackio.save)."""
    storage.validate_project_name(project)
    if step is not None and run is None:
        raise MediaError("Uploading files at a specific step requires a run")
    parts = [project]
    if run:
        parts += name_parts(run, "run")
        if step is not None:
            parts.append(str(step))
    else:
        parts.append("files")
        if relative_path and relative_path != ".":  # trackio.save sends "." for top-level files
            parts += name_parts(relative_path, "relative_path")
    parts.append(name)
    root = media_root(data_dir)
    target = root.joinpath(*parts)
    _inside(root, target)
    return target


def _inside(root: Path, target: Path) -> None:
    """Refuse a target whose existing folders lead outside the media folder (a planted link)."""
    real_root = root.resolve()
    if not target.resolve().is_relative_to(real_root):
        raise MediaError("the media path leads outside the media folder")


def place(staged: Path, target: Path, data_dir: Path) -> None:
    """Move a staged file to its media path (replacing a copy from an earlier attempt)."""
    root = media_root(data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    _inside(root, target)
    if target.is_dir() and not target.is_symlink():
        raise MediaError(f"{target.relative_to(root)} is a folder, not a file")
    try:
        os.replace(staged, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        # The data dir spans two file systems: copy next to the target, then rename.
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        shutil.copyfile(staged, temporary)
        os.replace(temporary, target)
        staged.unlink(missing_ok=True)


def served_file(data_dir: Path, raw: str) -> Path | None:
    """The media file `GET /file?path=` may send: a regular file inside the media folder."""
    if not raw or "\x00" in raw:
        return None
    root = media_root(data_dir).resolve()
    path = Path(raw)
    if not path.is_absolute():
        path = root / path
    if path.suffix.lower() in REFUSED_SUFFIXES:
        return None
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(root) or not real.is_file():
        return None
    if any(part.startswith(".") for part in real.relative_to(root).parts):
        return None
    return real


def content_type(path: Path) -> str:
    kind, _ = mimetypes.guess_type(path.name)
    return kind or "application/octet-stream"


def project_files(data_dir: Path, project: str) -> list[dict[str, Any]]:
    """Files saved with trackio.save(): [{name, path, size}] sorted by path, like trackio."""
    folder = media_root(data_dir) / storage.validate_project_name(project) / "files"
    if not folder.is_dir() or folder.is_symlink():
        return []
    found = []
    for path in sorted(_files_below(folder)):
        try:
            size = path.stat().st_size
        except OSError:
            continue
        found.append({"name": str(path.relative_to(folder)), "path": str(path), "size": size})
    return found


def has_project_files(data_dir: Path, project: str) -> bool:
    folder = media_root(data_dir) / storage.validate_project_name(project) / "files"
    return folder.is_dir() and not folder.is_symlink() and next(_files_below(folder), None) \
        is not None


def _files_below(folder: Path) -> Iterator[Path]:
    """Regular files under `folder`, without following links, at most MAX_PROJECT_FILES."""
    count = 0
    for directory, subdirs, files in os.walk(folder):
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
        for name in files:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            yield path
            count += 1
            if count >= MAX_PROJECT_FILES:
                return


RENAMED_MEDIA = frozenset({"trackio.image", "trackio.video", "trackio.audio", "trackio.html",
                           "trackio.object3d"})


def rewrite_paths(value: Any, old_prefix: str, new_prefix: str,
                  moves: list[tuple[str, str]]) -> Any:
    """`value` with media `file_path`s under `old_prefix` moved to `new_prefix` (as trackio's
    rename does); each rewritten (old, new) pair is appended to `moves`."""
    if isinstance(value, dict):
        if value.get("_type") in RENAMED_MEDIA and isinstance(value.get("file_path"), str):
            path = value["file_path"].replace("\\", "/")
            if path.startswith(old_prefix):
                new_path = new_prefix + path[len(old_prefix):]
                moves.append((path, new_path))
                return {**value, "file_path": new_path}
            return value
        return {key: rewrite_paths(item, old_prefix, new_prefix, moves)
                for key, item in value.items()}
    if isinstance(value, list):
        return [rewrite_paths(item, old_prefix, new_prefix, moves) for item in value]
    return value


def move_files(data_dir: Path, moves: list[tuple[str, str]]) -> int:
    """Move media files (paths relative to the media folder) after a run rename; return how
    many moved. Missing sources are skipped; a move never leaves the media folder."""
    root = media_root(data_dir)
    moved = 0
    for old, new in moves:
        source, target = root / old, root / new
        try:
            _inside(root, source)
            _inside(root, target)
            if not source.is_file() or source.is_symlink():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            moved += 1
        except (OSError, MediaError):
            continue
    return moved
