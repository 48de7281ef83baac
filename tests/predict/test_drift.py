"""The machine's speed while profiling, from held-out residuals, and latencies brought to one speed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgetune.predict import FusionRules, GraphBuilder, split_kernels
from edgetune.predict._drift import at_median_speed, drift_trace

RULES = FusionRules(frozenset({("conv", "bn"), ("conv", "relu")}))


def _slowing(t: np.ndarray) -> np.ndarray:
    """A machine that runs 20% slower at the end of the profile than at its start."""
    return 1.0 + 0.2 * (t - t[0]) / (t[-1] - t[0])


def test_the_trace_recovers_a_slowdown_and_brings_latencies_to_the_median_speed() -> None:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 1500, 400)) + 1.8e9
    predicted = rng.uniform(0.05, 3.0, 400)
    measured = predicted * _slowing(t) * rng.uniform(0.97, 1.03, 400)
    trace = drift_trace(t, measured, predicted)
    assert trace is not None
    assert trace.at(t[-1]) / trace.at(t[0]) == pytest.approx(1.2, abs=0.04)
    assert trace.at(t[200]) == pytest.approx(1.0, abs=0.03)  # relative to the median speed
    chains = [{"time": float(w), "latency_ms": float(m), "kernel_ms": [float(m) / 2] * 2} for w, m in zip(t, measured)]
    chains.append({"latency_ms": 1.0, "kernel_ms": [0.5, 0.5]})  # measured before times were kept: as it is
    steady = at_median_speed(chains, trace, ["kernel_ms"])
    ratio = np.array([c["latency_ms"] for c in steady[:-1]]) / predicted
    assert abs(np.log(ratio[-50:].mean() / ratio[:50].mean())) < 0.03 and steady[-1] == chains[-1]
    assert steady[0]["kernel_ms"][0] == pytest.approx(steady[0]["latency_ms"] / 2)
    summary = trace.summary()
    assert summary["slowest"] / summary["fastest"] == pytest.approx(1.2, abs=0.05) and len(summary["trace"]) <= 12


def test_too_few_timed_networks_give_no_trace() -> None:
    assert drift_trace([1.0] * 50, [1.0] * 50, [1.0] * 50) is None
    assert drift_trace([float("nan")] * 200, [1.0] * 200, [1.0] * 200) is None  # no times kept


def test_a_profile_taken_while_the_machine_slowed_is_fitted_at_its_median_speed(tmp_path: Path) -> None:
    """fit_context sees the 20% slowdown in its held-out errors, records it, and fits the networks at
    one speed: its held-out check gets better than on the same networks fitted as measured."""
    from edgetune.predict import _context
    from edgetune.predict._graph import graph_to_dict

    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0, 1500, 400)) + 1.8e9
    chains = []
    for i, (when, speed) in enumerate(zip(t, _slowing(t))):
        b = GraphBuilder(f"net{i}", (1, 8, int(rng.choice([8, 16, 32])), 16))
        x = b.relu(b.bn(b.conv("input", int(rng.choice([8, 16, 32])), 3, 1)))
        for _ in range(int(rng.integers(1, 4))):
            x = b.pool(x, "maxpool", 3, 1)
        graph = b.build(x)
        ms = [speed * (1e-3 + k.head.macs * 1e-8 + k.head.out_elems * 1e-7) for k in split_kernels(graph, RULES)]
        chains.append({"graph": graph_to_dict(graph), "kernel_ms": ms, "latency_ms": sum(ms), "time": float(when)})
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fitted = _context.fit_context(tmp_path / "a", chains, RULES)
    as_measured = _context.fit_context(tmp_path / "b", [{k: v for k, v in c.items() if k != "time"} for c in chains], RULES)
    drift = fitted["drift"]
    assert as_measured["drift"] is None and drift["networks"] >= 100
    assert drift["slowest"] / drift["fastest"] == pytest.approx(1.2, abs=0.06)
    assert fitted["networks_check"]["rmspe"] < as_measured["networks_check"]["rmspe"]


def test_the_profile_summary_says_how_the_speed_moved() -> None:
    from edgetune.predict._profile import drift_summary

    meta = {"in_network": {"drift": {"networks": 1504, "slowest": 1.08, "fastest": 0.95, "end": 1.07}}}
    assert drift_summary(meta) == ("machine speed while profiling: from 93% to 105% of its median (traced over 1504 "
                                   "networks, 1.07x the median time at the end); latencies fitted at the median speed")
    assert drift_summary({"in_network": {"drift": None}}) is None and drift_summary({}) is None


def test_the_profile_summary_gives_its_held_out_networks() -> None:
    from edgetune.predict._profile import networks_summary

    meta = {"in_network": {"networks_check": {"networks": 1407, "within_10pct": 0.7235, "median_error": -0.021}}}
    assert networks_summary(meta) == ("check on 1407 profiled networks, each predicted by models fitted without it: "
                                      "72% within 10%, median error -2.1%")
    assert networks_summary({"in_network": {"networks_check": {"networks": 0}}}) is None and networks_summary({}) is None


def test_a_profile_counts_the_networks_it_timed_while_other_load_slowed_the_machine() -> None:
    from edgetune.predict._drift import DISTURBED_WARN, SELF_CHECK_OK, disturbed_share
    from edgetune.predict._profile import disturbed_summary

    quiet = [{"reference_ms": 0.1 * (1.0 + 0.04 * (i % 2))} for i in range(200)]  # within 5% of the median
    assert disturbed_share(quiet)["share"] == 0.0 and not disturbed_share(quiet)["warn"]
    busy = [{"reference_ms": 0.12 if i % 10 < 3 else 0.1} for i in range(200)]  # 30% timed 20% slow
    found = disturbed_share(busy)
    assert found["share"] == pytest.approx(0.3) and found["share"] > DISTURBED_WARN and found["warn"]
    assert disturbed_share(busy[:50]) is None and disturbed_share([{"latency_ms": 1.0}] * 200) is None
    # its own held-out networks decide: a profile that still fits them does not warn, one that does not, does
    fits = disturbed_share(busy, self_check=SELF_CHECK_OK)
    assert fits["share"] == found["share"] and not fits["warn"] and "still fit" in fits["note"]
    assert disturbed_share(busy, self_check=SELF_CHECK_OK - 0.3)["warn"]

    meta = {"target": "host-cpu", "runtime": "onnxruntime", "in_network": {"disturbed": found}}
    assert disturbed_summary(meta) == (
        "30% of 200 profiled networks were timed while other load slowed this machine (their reference graph over 5% "
        "above its median): a profile taken in a quieter hour predicts better; run `edgetune profile --target host-cpu "
        "--runtime onnxruntime --fresh` again when the machine is idle")
    calm = disturbed_summary({"in_network": {"disturbed": disturbed_share(quiet)}})
    assert calm is not None and calm.startswith("0% of 200") and "quieter hour" not in calm
    assert disturbed_summary({"in_network": {"disturbed": None}}) is None and disturbed_summary({}) is None



def _timings(ms: float, reference_ms: float, count: int) -> list:
    from edgetune.predict._measure import GraphTiming

    return [GraphTiming(f"g{i}", ms, ms, ms, 30, True, reference_ms, min_ms=ms) for i in range(count)]


class _BurstyMachine:
    """A group measure whose ``slow`` calls (counted from 0) run the whole group, reference graph included, 1.3x slower."""

    def __init__(self, slow: set[int], interrupt_at: int = -1) -> None:
        self.slow, self.interrupt_at, self.calls = slow, interrupt_at, 0

    def __call__(self, group: list) -> tuple[list, bool]:
        call, self.calls = self.calls, self.calls + 1
        if call == self.interrupt_at:
            return [], True
        factor = 1.3 if call in self.slow else 1.0
        return _timings(factor, 0.1 * factor, len(group)), False


def test_groups_timed_while_other_load_slowed_the_machine_are_timed_again_and_the_quick_attempt_kept() -> None:
    from edgetune.predict._drift import RETIMES, Retimer

    retimer = Retimer([0.1] * 9)
    machine = _BurstyMachine(slow={1, 4, 5, 6})  # group 1 slow once; group 3 (calls 4-6) slow on every try
    timings, stopped = retimer.measure(machine, list(range(12)), 3)
    assert not stopped and machine.calls == 4 + 1 + RETIMES  # four groups, one retry for group 1, all for group 3
    assert [t.latency_ms for t in timings] == [1.0] * 9 + [1.3] * 3  # group 1's quick attempt is kept
    assert (retimer.groups, retimer.still) == (2, 1) and retimer.counts()["still_slow"] == 1

    fresh = Retimer([0.1] * 8)  # too few groups timed to judge: nothing is timed again
    assert fresh.measure(_BurstyMachine(slow={0}), [0, 1, 2], 3)[0][0].latency_ms == 1.3 and fresh.groups == 0
    capped = Retimer([0.1] * 9, elapsed_s=lambda: 0.0)  # re-timing may not take any of the profile's time
    assert capped.measure(_BurstyMachine(slow={0}), [0, 1, 2], 3)[0][0].latency_ms == 1.3 and capped.groups == 0


def test_ctrl_c_while_timing_a_slow_group_again_keeps_the_attempt_already_timed() -> None:
    from edgetune.predict._drift import Retimer

    retimer = Retimer([0.1] * 9)
    timings, stopped = retimer.measure(_BurstyMachine(slow={0}, interrupt_at=1), list(range(6)), 3)
    assert stopped and [t.latency_ms for t in timings] == [1.3] * 3  # the second group was never started


def test_a_profile_times_its_slow_groups_of_networks_again_and_says_so(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake runtime whose every fifth group runs 30% slow: the profile times those groups again, keeps no slow
    group of networks, and its metadata and summary say how many it re-timed."""
    from edgetune.predict import GraphMeasurer, _drift, profile
    from edgetune.predict._measure import KERNEL_CONFIG
    from edgetune.predict._profile import disturbed_summary
    from edgetune.targets import load_target
    from tests.predict._fake import FakeNodeRunner, FakeSession, rounds_clock

    class Bursty(FakeNodeRunner):
        """Every fifth group (the reference graph closes each group) runs 1.3x slower, reference graph included."""

        group = 0

        def load(self, artifact: Path, threads: int) -> FakeSession:
            session = super().load(artifact, threads)
            session.latency_ms *= 1.3 if self.group % 5 == 4 else 1.0
            if artifact.stem == "reference":  # the group is complete
                self.group += 1
            return session

    monkeypatch.setattr(_drift, "_MIN_JUDGED", 2)  # a short profile: judge from its second group of networks on
    monkeypatch.setattr(_drift, "RETIME_SHARE", float("inf"))  # re-timing is never capped here
    target = load_target("host-cpu")
    # two rounds on any machine (CI's loaded one fitted too few groups in 0.3 min for one to run slow)
    with rounds_clock(2) as rounds, GraphMeasurer(target, "fake-nodes", 1, config=KERNEL_CONFIG, runner=Bursty(),
                                                  interleave=6) as measurer:
        meta = profile(target, "fake-nodes", 0.3, tmp_path, measurer=measurer).metadata
    retimed = meta["retimed"]
    assert len(rounds) == 2 and retimed["groups"] >= 1 and retimed["still_slow"] == 0
    chains = [json.loads(line) for line in (tmp_path / "host-cpu" / "fake-nodes" / "chains.jsonl").read_text().splitlines()]
    refs = np.array([c["reference_ms"] for c in chains])
    assert len(refs) >= 12 and np.all(refs <= np.median(refs) * 1.05)  # without re-timing a fifth would be 30% slow
    line = disturbed_summary({**meta, "in_network": {"disturbed": {"share": 0.0, "networks": 100, "over": 0.05, "warn": False}}})
    assert line is not None and line.startswith(f"{retimed['groups']} groups of networks timed while the machine ran slow "
                                                "were timed again")
