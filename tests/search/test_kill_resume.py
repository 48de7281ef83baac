"""A search killed with SIGKILL mid-study, then the same command: no finished trial is lost or re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKER = """
import sys
from pathlib import Path
from edgetune.search import SearchConfig, search
from tests.search.test_study import SPACE
from tests.search._fakes import MacsPredictor
search("host-cpu", Path(sys.argv[1]), SearchConfig(trials=int(sys.argv[2]), max_epochs=1, strategy="random"), SPACE,
       predictor=MacsPredictor(), compile_winner=False, top_k=1)
"""


def _finished(storage: str) -> dict[int, tuple[float, ...]]:
    import optuna

    try:
        study = optuna.load_study(study_name="plain-host-cpu-digits", storage=storage)
    except Exception:  # noqa: BLE001 - the worker has not created the study yet
        return {}
    return {t.number: tuple(t.values) for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}


def test_sigkill_then_same_command_resumes(tmp_path: Path) -> None:
    import optuna

    total, storage = 6, f"sqlite:///{tmp_path / 'study.db'}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(total)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(_finished(storage)) < 2 and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=60)
    before = _finished(storage)
    assert 2 <= len(before) < total, "the worker should die mid-study"
    proc = subprocess.run([sys.executable, "-c", WORKER, str(tmp_path), str(total)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = _finished(storage)
    assert len(after) == total
    assert all(after[n] == values for n, values in before.items())  # kept as they were, not re-run
    study = optuna.load_study(study_name="plain-host-cpu-digits", storage=storage)
    assert all(t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.FAIL)
               for t in study.trials)  # the trial killed in flight never counts as finished
