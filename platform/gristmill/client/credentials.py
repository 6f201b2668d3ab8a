"""The CLI's stored login: ``<config dir>/credentials.json``, created 0600."""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE = "credentials.json"


def config_dir() -> Path:
    """``GRISTMILL_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/gristmill``, else ``~/.config/gristmill``."""
    chosen = os.environ.get("GRISTMILL_CONFIG_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "gristmill"


def load() -> dict | None:
    path = config_dir() / FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("url") and data.get("token") else None


def save(url: str, token: str, user: str) -> Path:
    """Write the login owner-only (the folder 0700, the file 0600, whatever the umask)."""
    folder = config_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / FILE
    tmp = path.with_name(FILE + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"url": url, "token": token, "user": user}, handle)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def forget() -> bool:
    path = config_dir() / FILE
    if path.is_file():
        path.unlink()
        return True
    return False
