"""Few-shot adaptation to another machine and drift calibration, on fake runtimes with known speeds."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgetune.errors import ConfigError
from edgetune.predict import GraphMeasurer, KernelPredictor, ProfileError, predictor_for
from edgetune.predict._adapt import adapt_profile, adapted_path, fit_correction
from edgetune.predict._calibrate import Calibration, calibrate
from edgetune.predict._machine import current_machine
from edgetune.predict._measure import KERNEL_CONFIG
from edgetune.predict._references import measure_references, reference_networks
from edgetune.targets import load_target
from tests.predict._fake import ExactFakePredictor, ScaledFakeNodeRunner, ScaledFakeRunner

MULTIPLES = {"conv": 1.6, "dwconv": 0.7, "fc": 1.25, "elementwise": 2.0, "movement": 1.5, "pool": 1.0, "call": 1.0}


def _measurer(runner: ScaledFakeRunner) -> GraphMeasurer:
    return GraphMeasurer(load_target("host-cpu"), "fake", 1, config=KERNEL_CONFIG, runner=runner, interleave=4)


def test_adaptation_recovers_per_kind_multiples() -> None:
    graphs = reference_networks()
    with _measurer(ScaledFakeRunner(MULTIPLES)) as m:
        records, stopped = measure_references(m.measure, graphs)
    assert not stopped and len(records) == len(graphs) <= 20
    fitted = fit_correction(ExactFakePredictor().predict_many(graphs), [r["latency_ms"] for r in records])
    for group in ("conv", "dwconv", "fc", "elementwise", "movement"):
        assert fitted.multipliers[group] == pytest.approx(MULTIPLES[group], rel=0.05), (group, fitted.multipliers)
    assert max(abs(e) for e in fitted.held_out_errors) < 0.03  # leave-one-out, references it was not fitted on
    assert max(abs(e) for e in fitted.before_errors) > 0.2  # uncorrected, the other machine's profile is far off


def test_uniformly_slower_machine_gives_one_common_factor() -> None:
    graphs = reference_networks(8)
    with _measurer(ScaledFakeRunner({}, uniform=1.3)) as m:
        records, _ = measure_references(m.measure, graphs)
    fitted = fit_correction(ExactFakePredictor().predict_many(graphs), [r["latency_ms"] for r in records])
    assert all(v == pytest.approx(1.3, rel=0.02) for g, v in fitted.multipliers.items() if g != "call"), fitted.multipliers


def _unseen_networks(count: int) -> list:
    from edgetune.predict._sampling import sample_network

    rng = np.random.default_rng(7)  # not the references' seed
    return [sample_network(rng, i) for i in range(count)]


def test_kernel_adaptation_corrects_each_kernel_by_its_group(fake_profile: Path, tmp_path: Path) -> None:
    """With a per-node profiler the correction is fitted kernel by kernel and carries over to networks
    the references are not: conv kernels 1.6x, depthwise 0.7x, elementwise 2x on the other machine."""
    folder = _other_machines_profile(fake_profile, tmp_path)
    unseen = _unseen_networks(12)
    with _measurer(ScaledFakeRunner(MULTIPLES)) as m:  # the truth on "this machine", end to end
        truth = [t.latency_ms for t in m.measure(unseen)[0]]
    before = [e.total_ms for e in KernelPredictor(folder).predict_many(unseen)]
    with _measurer(ScaledFakeNodeRunner(MULTIPLES)) as m:
        result = adapt_profile(load_target("host-cpu"), "fake", 3.0, tmp_path, measurer=m)
    summary = result.fitted.summary()
    assert summary["method"] == "kernel residual" and summary["kernels"] > 100 and summary["multipliers"] == {}
    assert summary["kernel_ratios"]["conv"] / summary["kernel_ratios"]["dwconv"] == pytest.approx(1.6 / 0.7, rel=0.15)
    saved = json.loads(result.path.read_text())
    assert saved["correction"]["residual"]["kind"] == "lightgbm" and "nodes" not in saved["references"]["networks"][0]
    assert all(len(r["passes_ms"]) >= 2 for r in saved["references"]["networks"])
    after = [e.total_ms for e in predictor_for("host-cpu", "fake", tmp_path).predict_many(unseen)]
    error_before = np.median(np.abs(np.array(before) / truth - 1))
    error_after = np.median(np.abs(np.array(after) / truth - 1))
    assert error_before > 0.2 and error_after < 0.5 * error_before, (error_before, error_after)


def _other_machines_profile(fake_profile: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "host-cpu" / "fake"
    shutil.copytree(fake_profile, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    meta["environment"]["cpu_model"] = meta["machine"]["cpu_model"] = "Some Other CPU 9000"
    (copy / "metadata.json").write_text(json.dumps(meta))
    references = json.loads((copy / "references.json").read_text())
    references["machine"]["cpu_model"] = "Some Other CPU 9000"  # timed there, with the profile
    (copy / "references.json").write_text(json.dumps(references))
    return copy


def test_missing_adapted_profile_names_the_adapt_command(fake_profile: Path, tmp_path: Path) -> None:
    _other_machines_profile(fake_profile, tmp_path)
    with pytest.warns(UserWarning, match="edgetune profile --target host-cpu --runtime fake --adapt"):
        predictor = predictor_for("host-cpu", "fake", tmp_path)
    assert isinstance(predictor, KernelPredictor) and predictor.machine is None


def test_adapted_profile_is_written_and_used_automatically(fake_profile: Path, tmp_path: Path) -> None:
    folder = _other_machines_profile(fake_profile, tmp_path)
    graph = reference_networks(5)[-1]
    before = KernelPredictor(folder).predict(graph).total_ms
    with _measurer(ScaledFakeRunner({}, uniform=2.0)) as m:
        result = adapt_profile(load_target("host-cpu"), "fake", 3.0, tmp_path, measurer=m, count=8)
    assert result.path == adapted_path(folder, current_machine()) and result.references == 8
    saved = json.loads(result.path.read_text())
    assert saved["source_machine"]["cpu_model"] == "Some Other CPU 9000" and saved["machine"] == current_machine()
    assert len(saved["references"]["networks"]) == 8 and "held_out" in saved["correction"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an adapted profile: no warning
        predictor = predictor_for("host-cpu", "fake", tmp_path)
    estimate = predictor.predict(graph)
    assert estimate.total_ms == pytest.approx(2.0 * before, rel=0.25)
    assert estimate.extra["machine_correction"]["source_machine"]["cpu_model"] == "Some Other CPU 9000"


def test_calibration_recovers_a_uniform_slowdown(fake_profile: Path, tmp_path: Path) -> None:
    folder = _other_machines_profile(fake_profile, tmp_path)
    with _measurer(ScaledFakeRunner({})) as m:
        adapt_profile(load_target("host-cpu"), "fake", 3.0, tmp_path, measurer=m, count=8)
    references = json.loads(adapted_path(folder, current_machine()).read_text())["references"]
    with _measurer(ScaledFakeRunner({}, uniform=1.25)) as m:
        slower = calibrate(references, load_target("host-cpu"), "fake", 1, measurer=m)
    assert slower.factor == pytest.approx(1.25, rel=0.01) and slower.significant and "slower" in slower.message()
    assert slower.steady and "moved" not in slower.message() and slower.uncertainty == slower.noise
    with _measurer(ScaledFakeRunner({})) as m:
        same = calibrate(references, load_target("host-cpu"), "fake", 1, measurer=m)
    assert same.factor == pytest.approx(1.0, abs=0.01) and not same.significant and "within the noise" in same.message()


def test_a_slow_window_while_calibrating_does_not_become_the_days_speed(fake_profile: Path, tmp_path: Path) -> None:
    """A neighbour's burst slows the first pass 40%; the later passes run at the stored speed. Each
    network's faster pass counts, as when the references were stored, and the message says the speed moved."""
    folder = _other_machines_profile(fake_profile, tmp_path)
    with _measurer(ScaledFakeRunner({})) as m:
        adapt_profile(load_target("host-cpu"), "fake", 3.0, tmp_path, measurer=m, count=8)
    references = json.loads(adapted_path(folder, current_machine()).read_text())["references"]
    runner = ScaledFakeRunner({}, uniform=1.4)
    with _measurer(runner) as m:
        measure = m.measure

        def burst_then_calm(graphs, nodes=False):  # type: ignore[no-untyped-def]
            found = measure(graphs, nodes=nodes)
            runner.uniform = 1.0
            return found

        m.measure = burst_then_calm  # type: ignore[method-assign]
        found = calibrate(references, load_target("host-cpu"), "fake", 1, measurer=m)
    assert found.factor == pytest.approx(1.0, abs=0.01) and not found.significant
    assert found.pass_factors == pytest.approx((1.4, 1.0, 1.0), rel=0.01) and not found.steady
    assert "moved while calibrating (passes read 1.40x, 1.00x, 1.00x)" in found.message()
    assert found.uncertainty == pytest.approx(0.4, abs=0.01) and "+-40% for today's speed" in found.message()
    assert Calibration.from_dict(found.to_dict()).pass_factors == pytest.approx(found.pass_factors, rel=1e-3)


def test_adaptation_and_calibration_errors(fake_profile: Path, tmp_path: Path) -> None:
    target = load_target("host-cpu")
    with pytest.raises(ProfileError, match="no host-cpu/fake profile to adapt"):
        adapt_profile(target, "fake", 3.0, tmp_path / "none")
    with pytest.raises(ConfigError, match="budget must be positive"):
        adapt_profile(target, "fake", 0, tmp_path)
    with pytest.raises(ConfigError, match="4 to 20"):
        reference_networks(25)
    with pytest.raises(ProfileError, match="at least 3"):
        fit_correction(ExactFakePredictor().predict_many(reference_networks(4)[:2]), [1.0, 1.0])
    with pytest.raises(ProfileError, match="fewer than 2 stored"):
        calibrate({"networks": []}, target, "fake", 1)
    root = _other_machines_profile(fake_profile, tmp_path).parent.parent
    with pytest.warns(UserWarning), pytest.raises(ProfileError, match="--adapt"):
        predictor_for("host-cpu", "fake", root, calibrate=True)
    with pytest.raises(ConfigError, match="calibrate must be"):
        predictor_for("host-cpu", "fake", root, calibrate="sometimes")
    (adapted_path(root / "host-cpu" / "fake", current_machine())).parent.mkdir(parents=True, exist_ok=True)
    adapted_path(root / "host-cpu" / "fake", current_machine()).write_text("{}")
    with pytest.raises(ProfileError, match="not an adapted profile"):
        predictor_for("host-cpu", "fake", root)


def test_a_profile_taken_here_is_not_adapted_and_an_old_adaptation_of_it_is_ignored(fake_profile: Path,
                                                                                       tmp_path: Path) -> None:
    """Adapting replaces a fit on thousands of kernels by a correction from 20 networks timed in one hour: on the
    machine the profile was taken on that only loses accuracy, so it is refused with the two commands that apply."""
    shutil.copytree(fake_profile, tmp_path / "host-cpu" / "fake")
    with pytest.raises(ConfigError, match=r"taken on this machine .*predict --calibrate.*--fresh"):
        adapt_profile(load_target("host-cpu"), "fake", 3.0, tmp_path)
    assert not (tmp_path / "host-cpu" / "fake" / "adapted").exists()
    other = tmp_path / "other"  # an adaptation written before the refusal: adapted elsewhere, the profile put back here
    folder = _other_machines_profile(fake_profile, other)
    with _measurer(ScaledFakeRunner({}, uniform=2.0)) as m:
        adapt_profile(load_target("host-cpu"), "fake", 3.0, other, measurer=m, count=6)
    shutil.copy(fake_profile / "metadata.json", folder / "metadata.json")
    with pytest.warns(UserWarning, match="taken on this same machine; ignored"):
        predictor = predictor_for("host-cpu", "fake", other)
    assert predictor.machine is None  # type: ignore[attr-defined]


def test_a_profile_taken_here_calibrates_against_its_own_references(fake_profile: Path) -> None:
    from edgetune.predict._calibrate import stored_references

    references = stored_references(fake_profile, None, current_machine())
    assert references is not None and references["machine"] == current_machine()
    with _measurer(ScaledFakeRunner({}, uniform=0.8)) as m:
        faster = calibrate(references, load_target("host-cpu"), "fake", 1, measurer=m)
    # against what the profile predicts: the references' own level (speed_factor) times today's 0.8
    assert faster.factor == pytest.approx(0.8 * references["speed_factor"], rel=0.01) and faster.stored_speed != 1.0
    assert stored_references(fake_profile, None, {"cpu_model": "Some Other CPU 9000", "isa": []}) is None


def test_calibration_is_against_the_speed_the_profile_predicts(fake_profile: Path, tmp_path: Path) -> None:
    """References timed at the end of a profile, 10% slower than the profile predicts them: today's 25% over
    the references is 37.5% over the profile."""
    from edgetune.predict._calibrate import stored_references
    from edgetune.predict._references import REFERENCES_FILE, set_reference_speed

    folder = tmp_path / "profile"
    folder.mkdir()
    (folder / REFERENCES_FILE).write_text((fake_profile / REFERENCES_FILE).read_text())
    stored = [r["latency_ms"] for r in json.loads((folder / REFERENCES_FILE).read_text())["networks"]]
    set_reference_speed(folder, lambda graphs: [ms / 1.1 for ms in stored[:len(graphs)]])
    references = stored_references(folder, None, current_machine())
    assert references is not None and references["speed_factor"] == pytest.approx(1.1, abs=1e-4)
    with _measurer(ScaledFakeRunner({}, uniform=1.25)) as m:
        found = calibrate(references, load_target("host-cpu"), "fake", 1, measurer=m)
    assert found.factor == pytest.approx(1.375, rel=0.01) and "than the profile predicts" in found.message()
    assert Calibration.from_dict(found.to_dict()).stored_speed == pytest.approx(1.1, abs=1e-4)
    set_reference_speed(folder, lambda graphs: [0.0] * len(graphs))  # nothing to anchor on: as stored
    assert "speed_factor" not in json.loads((folder / REFERENCES_FILE).read_text())


def test_a_profile_anchors_its_references_on_its_own_predictions(fake_profile: Path) -> None:
    references = json.loads((fake_profile / "references.json").read_text())
    assert 0.5 < references["speed_factor"] < 2.0  # the fake runner times what the fake profile predicts, roughly


def test_a_stale_adapted_profile_is_ignored(fake_profile: Path, tmp_path: Path) -> None:
    folder = _other_machines_profile(fake_profile, tmp_path)
    with _measurer(ScaledFakeRunner({})) as m:
        result = adapt_profile(load_target("host-cpu"), "fake", 3.0, tmp_path, measurer=m, count=6)
    saved = json.loads(result.path.read_text())
    saved["source_created"] = "1999-01-01T00:00:00Z"  # the profile was re-taken since
    result.path.write_text(json.dumps(saved))
    with pytest.warns(UserWarning, match="corrects an earlier"):
        predictor = predictor_for("host-cpu", "fake", tmp_path)
    assert predictor.machine is None and folder.exists()  # type: ignore[attr-defined]


def test_corrupt_reference_file_is_reported(fake_profile: Path, tmp_path: Path) -> None:
    from edgetune.predict._calibrate import stored_references

    copy = tmp_path / "host-cpu" / "fake"
    shutil.copytree(fake_profile, copy)
    (copy / "references.json").write_text("{not json")
    with pytest.raises(ProfileError, match="references.json is corrupt"):
        stored_references(copy, None, current_machine())
    (copy / "references.json").write_text(json.dumps({"machine": current_machine()}))
    with pytest.raises(ProfileError, match="holds no reference networks"):
        stored_references(copy, None, current_machine())


def test_corrections_scale_each_group_and_identity_changes_nothing() -> None:
    from edgetune.predict import KernelEstimate, LatencyEstimate, MachineCorrection

    kernels = (KernelEstimate("conv+bn+relu", ("c",), 0.6, 100), KernelEstimate("add", ("a",), 0.41, 0))
    estimate = LatencyEstimate("n", 1.0, 0.8, 1.2, "kernel", kernels)  # the kernels add up to more: a negative call share
    assert MachineCorrection().apply(estimate).total_ms == pytest.approx(1.0)
    scaled = MachineCorrection({"conv": 2.0, "elementwise": 0.5}, drift=1.1).apply(estimate)
    assert scaled.total_ms == pytest.approx(1.1 * (2.0 * 0.6 + 0.5 * 0.41 - 0.01))
    assert [k.latency_ms for k in scaled.kernels] == pytest.approx([1.1 * 1.2, 1.1 * 0.205])
    assert scaled.low_ms / scaled.total_ms == pytest.approx(0.8)  # an exact correction keeps the model's interval


def test_an_adaptation_and_todays_calibration_widen_the_interval_by_their_own_errors() -> None:
    """The interval stands for every error in the number: the model's (+-20% here), the adaptation's held-out
    error (1.96 x its RMS relative error) and the calibration's noise, added in quadrature; uncalibrated, it
    says it is not today's speed."""
    from edgetune.predict import KernelEstimate, LatencyEstimate, MachineCorrection
    from edgetune.predict._adapt import correction_from
    from edgetune.predict._predictors import MODEL_INTERVAL

    kernels = (KernelEstimate("conv+bn+relu", ("c",), 0.9, 100),)
    estimate = LatencyEstimate("n", 1.0, 0.8, 1.2, "kernel", kernels, extra={"interval_covers": list(MODEL_INTERVAL)})
    adapted = correction_from({"correction": {"multipliers": {"conv": 2.0}, "held_out": {"rmspe": 0.1}}})
    assert adapted.spread == pytest.approx(0.196)
    found = adapted.apply(estimate)
    half = np.sqrt(0.2 ** 2 + 0.196 ** 2)
    assert found.total_ms == pytest.approx(1.9)
    assert (found.low_ms, found.high_ms) == pytest.approx((1.9 * (1 - half), 1.9 * (1 + half)))
    covers = found.extra["interval_covers"]
    assert any("adaptation: +-20%" in line for line in covers) and any(line.startswith("not for today's speed") for line in covers)
    today = adapted.with_drift(1.1, noise=0.05).apply(estimate)
    half = np.sqrt(0.2 ** 2 + 0.196 ** 2 + 0.05 ** 2)
    assert (today.low_ms, today.high_ms) == pytest.approx((2.09 * (1 - half), 2.09 * (1 + half)))
    covers = today.extra["interval_covers"]
    assert any("today's speed: +-5.0%" in line for line in covers) and not any(line.startswith("not ") for line in covers)
    moving = adapted.with_drift(1.1, noise=0.05, up=0.4).apply(estimate)  # the speed moved while calibrating: slower is likelier
    above = np.sqrt(0.2 ** 2 + 0.196 ** 2 + 0.4 ** 2)
    assert (moving.low_ms, moving.high_ms) == pytest.approx((today.low_ms, 2.09 * (1 + above)))
    assert any("-5.0% to +40.0%" in line for line in moving.extra["interval_covers"])
    assert MachineCorrection(drift=1.1).apply(estimate).low_ms == pytest.approx(1.1 * 0.8)  # nothing to add: as scaled


def test_machines_match_on_model_and_recorded_isa_features() -> None:
    from edgetune.predict._machine import machine_slug, same_machine

    xeon = {"cpu_model": "Intel(R) Xeon(R) Processor", "isa": ["avx2", "avx512f"]}
    assert same_machine(xeon, {"cpu_model": xeon["cpu_model"], "isa": []})  # a profile from before features were recorded
    assert not same_machine(xeon, {"cpu_model": xeon["cpu_model"], "isa": ["avx2"]})  # same name, another host
    assert not same_machine(xeon, {"cpu_model": "AMD EPYC 7B13", "isa": ["avx2", "avx512f"]})
    slug = machine_slug(xeon)
    assert slug.startswith("intel-r-xeon-r-processor-") and slug != machine_slug({**xeon, "isa": ["avx2"]})


def test_auto_calibration_retimes_once_where_references_exist(fake_profile: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from edgetune.predict import _calibrate as calibrate_module

    calls: list[dict] = []

    def recorded(references, target, runtime, threads, **kw):  # type: ignore[no-untyped-def]
        calls.append(references)
        return Calibration(factor=1.2, noise=0.03, networks=len(references["networks"]), seconds=0.1, ratios=(1.2, 1.2))

    monkeypatch.setattr(calibrate_module, "calibrate", recorded)
    root = fake_profile.parent.parent  # taken here: its own references are this machine's
    graph = reference_networks(5)[-1]
    plain = predictor_for("host-cpu", "fake", root).predict(graph).total_ms
    assert calls == []  # calibrate=False (predict without --calibrate) re-times nothing
    predictor = predictor_for("host-cpu", "fake", root, calibrate="auto")
    assert len(calls) == 1 and predictor.calibration.factor == 1.2  # type: ignore[attr-defined]
    assert predictor.predict(graph).total_ms == pytest.approx(1.2 * plain, rel=1e-6)
    # a profile of another CPU without an adapted one: nothing of this machine to re-time, so "auto" skips it
    other = tmp_path / "other"
    _other_machines_profile(fake_profile, other)
    with pytest.warns(UserWarning, match="--adapt"):
        skipped = predictor_for("host-cpu", "fake", other, calibrate="auto")
    assert len(calls) == 1 and getattr(skipped, "calibration", None) is None


def test_residual_rows_of_new_shapes_join_the_shared_table_as_computed_alone() -> None:
    """The residual's rows are kept in one growing table by kernel shape: rows of a later call with new
    shapes (the table grows past its first room), and of an earlier one again, are what each kernel gives alone."""
    from edgetune.predict._adapt import GROUPS
    from edgetune.predict._fusion import split_kernels
    from edgetune.predict._hardware import GENERIC_HARDWARE
    from edgetune.predict._residual import _TABLES, _static_row, residual_rows
    from edgetune.predict._sampling import sample_network
    from tests.predict._fake import FAKE_RULES

    groups = ("test-table", *GROUPS)  # a table of this test's own
    _TABLES.pop((GENERIC_HARDWARE, groups), None)
    rng = np.random.default_rng(11)
    batches = [[k for i in range(n) for k in split_kernels(sample_network(rng, i), FAKE_RULES)] for n in (1, 12)]
    for kernels in (*batches, batches[0]):
        predicted = np.linspace(0.01, 1.0, len(kernels))
        rows = residual_rows(kernels, predicted, GENERIC_HARDWARE, groups)
        alone = np.array([[*_static_row(k, GENERIC_HARDWARE, groups), np.log2(p)] for k, p in zip(kernels, predicted)])
        assert rows.shape == alone.shape and np.array_equal(rows, alone)
    assert len(_TABLES[(GENERIC_HARDWARE, groups)].index) > 64  # grown past its first room
