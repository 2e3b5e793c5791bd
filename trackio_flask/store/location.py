"""Where the series store lives, one folder per project database, and its disk cap."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"


def default_root(data_dir: Path) -> Path | None:
    """`<data dir>/.trackio_flask/series` when that folder is writable, else the XDG cache
    (one folder per data dir); None when neither can be written (read-only everything)."""
    data_dir = Path(data_dir).resolve()
    xdg = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.blake2b(str(data_dir).encode(), digest_size=6).hexdigest()
    # Beside the data only when the data folder exists: a mistyped TRACKIO_DIR is not created.
    beside = [data_dir / ".trackio_flask" / "series"] if data_dir.is_dir() else []
    for candidate in (*beside, xdg / "trackio_flask" / "series" / tag):
        if writable(candidate):
            return candidate
    return None


def writable(folder: Path) -> bool:
    """Whether `folder` could be created (it is, lazily, at a project's first build) and
    files made in it: its nearest existing ancestor is a writable folder."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def project_dir(root: Path, project: str, db: Path) -> Path:
    """The folder of one database's store: its project name plus a hash of its full path."""
    tag = hashlib.blake2b(str(Path(db).resolve()).encode(), digest_size=6).hexdigest()
    return root / f"{project}-{tag}"


def folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass  # removed while we walked: another worker compacted
    return total


def enforce_cap(root: Path, cap_bytes: int, keep: Path) -> bool:
    """Delete least recently written project stores until the root fits `cap_bytes`; False
    when `keep` alone is over the cap (then it is deleted too, and the caller serves from memory)."""
    stores = []
    for child in root.iterdir() if root.is_dir() else ():
        manifest = child / MANIFEST
        try:
            used = manifest.stat().st_mtime
        except OSError:
            used = 0.0
        stores.append((used, child, folder_bytes(child)))
    total = sum(size for _, _, size in stores)
    for _used, child, size in sorted(stores, key=lambda item: item[0]):
        if total <= cap_bytes:
            break
        if child == keep:
            continue
        shutil.rmtree(child, ignore_errors=True)
        total -= size
        log.info("series store: deleted %s (%d MB) to stay under the cap", child.name, size >> 20)
    if total > cap_bytes:
        shutil.rmtree(keep, ignore_errors=True)
        log.warning("series store: %s alone exceeds the %d MB cap; that project is served from "
                    "memory (raise TRACKIO_FLASK_STORE_MB)", keep.name, cap_bytes >> 20)
        return False
    return True
