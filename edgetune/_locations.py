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

A seeded runtime profile remembers which shipped profile it is a copy of (``.seeded-from.json``).
When a newer edgetune ships another one and the user never profiled over the copy, the copy is
replaced, and the old one kept beside it (``.<runtime>-replaced-<its creation time>``): a user
does not go on predicting from a profile edgetune itself has since re-taken.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

PROFILES_ENV = "EDGETUNE_PROFILES"
SEED_MARK = ".seeded-from.json"
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
    if os.environ.get(PROFILES_ENV) or not shipped.is_dir():
        return folder
    if not folder.exists():
        _seed(shipped, folder)
        return folder
    for runtime in sorted(p for p in shipped.iterdir() if (p / "metadata.json").is_file()):
        _refresh(runtime, folder / runtime.name)
    return folder


def _created(folder: Path) -> str:
    """A profile's creation time as its metadata records it ("" when it cannot be read)."""
    try:
        return str(json.loads((folder / "metadata.json").read_text()).get("created", ""))
    except (OSError, ValueError, AttributeError):
        return ""


def _refresh(shipped: Path, mine: Path) -> None:
    """Seed a runtime shipped since the target was seeded; replace a seeded copy the user never changed
    by a newer shipped profile (the old one is moved aside, not deleted)."""
    if not mine.exists():
        _seed(shipped, mine)
        return
    try:
        seeded = str(json.loads((mine / SEED_MARK).read_text())["created"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # the user's own profile, or a copy seeded before copies were marked: theirs to keep
    new = _created(shipped)
    if not new or new == seeded or _created(mine) != seeded:
        return  # up to date, or profiled over since it was seeded
    aside = mine.parent / f".{mine.name}-replaced-{seeded.replace(':', '')}"
    try:
        os.rename(mine, aside)
    except OSError:
        return  # another process replaced it first, or the folder is busy: keep using it
    _seed(shipped, mine)


def _seed(source: Path, folder: Path) -> None:
    """Copy ``source`` to ``folder`` through a temporary sibling, so that two processes never see half a copy.
    Every runtime profile copied is marked with the shipped profile it came from (``SEED_MARK``)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-seeding-", dir=folder.parent))
    try:
        shutil.copytree(source, staging / folder.name)
        profiles = [staging / folder.name] if (source / "metadata.json").is_file() else \
            [p for p in (staging / folder.name).iterdir() if (p / "metadata.json").is_file()]
        for copied in profiles:
            (copied / SEED_MARK).write_text(json.dumps({"created": _created(copied)}))
        try:
            os.rename(staging / folder.name, folder)
        except OSError:
            if not folder.is_dir():  # not another process's copy that won the race
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
