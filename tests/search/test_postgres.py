"""Two `edgetune search` workers share one study on a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[2]
WORKER = """
import sys
from pathlib import Path
from edgetune.search import SearchConfig, search
from tests.search.test_study import SPACE
from tests.search._fakes import MacsPredictor
config = SearchConfig(trials=int(sys.argv[3]), max_epochs=1, strategy="random", storage=sys.argv[1], study_name="two-workers",
                      seed=int(sys.argv[4]))
search("host-cpu", Path(sys.argv[2]), config, SPACE, predictor=MacsPredictor(), compile_winner=False, top_k=1)
"""


def test_two_workers_share_one_study(postgres_url: str, tmp_path: Path) -> None:
    import optuna

    from edgetune.search._study import sqlalchemy_url

    total = 6
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, postgres_url, str(tmp_path / f"w{i}"), str(total), str(i)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for w in workers:
        _out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="two-workers", storage=sqlalchemy_url(postgres_url))
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) == numbers[-1] + 1  # none lost, none duplicated
    assert total <= len(finished) <= total + 1  # the stop callback may let the other worker's running trial finish
    by_worker = Counter(t.user_attrs["worker"] for t in finished)
    assert len(by_worker) == 2 and sum(by_worker.values()) == len(finished)  # both worked, counts add up
