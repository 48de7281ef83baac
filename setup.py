"""Build hook: the repository's top-level targets/ and profiles/ ship in the wheel as edgetune/_data/.

Everything else is in pyproject.toml. An editable install reads them from the checkout instead
(edgetune/_locations.py).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("targets", "profiles")


class BuildPyWithData(build_py):
    """build_py, plus targets/ and profiles/ copied into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            source = ROOT / name
            if source.is_dir():
                dest = Path(self.build_lib) / "edgetune" / "_data" / name
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


setup(cmdclass={"build_py": BuildPyWithData})
