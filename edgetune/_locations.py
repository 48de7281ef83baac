"""Where edgetune's own data lives: what ships with the package, and the user's data folder.

Built-in targets and the default profiles ship inside the package (``edgetune/_data/``, copied
there from the repository's top-level ``targets/`` and ``profiles/`` when a wheel is built: see
setup.py). A source checkout (an editable install) has no ``_data/`` and reads the repository's
folders instead.

Profiles are written to as well (``edgetune profile``, TVM tuning records), and an installed
package may be read-only, so they default to the user's data folder
(``$XDG_DATA_HOME/edgetune/profiles``, i.e. ``~/.local/share/edgetune/profiles``): a target's
folder is seeded from the shipped profiles the first time it is asked for. ``$EDGETUNE_PROFILES``
still wins (a folder with one subfolder per target; nothing is seeded there).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PROFILES_ENV = "EDGETUNE_PROFILES"
_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """``targets`` or ``profiles`` as shipped: inside the installed package, else the source checkout's."""
    packaged = _PACKAGE / "_data" / name
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def user_data_dir() -> Path:
    """$XDG_DATA_HOME/edgetune, else ~/.local/share/edgetune (where the results store lives too)."""
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "edgetune"


def profiles_root() -> Path:
    """$EDGETUNE_PROFILES, else the user's profiles folder."""
    env = os.environ.get(PROFILES_ENV)
    return Path(env) if env else user_data_dir() / "profiles"


def profiles_dir(target: str) -> Path:
    """``<profiles root>/<target>``; in the user's folder, seeded from the shipped profiles when it does not exist yet."""
    folder = profiles_root() / target
    shipped = shipped_dir("profiles") / target
    if not os.environ.get(PROFILES_ENV) and not folder.exists() and shipped.is_dir():
        _seed(shipped, folder)
    return folder


def _seed(source: Path, folder: Path) -> None:
    """Copy ``source`` to ``folder`` through a temporary sibling, so that two processes never see half a copy."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-seeding-", dir=folder.parent))
    try:
        shutil.copytree(source, staging / folder.name)
        try:
            os.rename(staging / folder.name, folder)
        except OSError:
            if not folder.is_dir():  # not another process's copy that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
