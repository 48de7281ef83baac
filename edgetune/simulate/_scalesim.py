"""Systolic arrays and FPGA overlays: simulate a network's layers with SCALE-Sim and read its reports.

numpy 2: SCALE-Sim 3.0.0 fails under numpy 2.x (``TypeError: only 0-dimensional arrays can be
converted`` in its scratchpad model) while edgetune's environment needs numpy 2 (TensorFlow,
litert-torch, ml-dtypes). Rather than patch SCALE-Sim's internals, it runs unmodified in its own
small environment (``scalesim==3.0.0`` with ``numpy<2``, created by tools/setup.sh next to the
main one as ``<venv>-scalesim``, or ``$EDGETUNE_SCALESIM_PYTHON``) through one worker script,
``_scalesim_worker.py``, as a subprocess. That also contains its ``exit()`` calls and prints.

Each distinct layer shape is simulated once (SCALE-Sim simulates layers independently, so
repeats and depthwise channels are exact multiples) and the distinct layers are spread over
the CPU cores as parallel SCALE-Sim runs. For the same reason a layer's report row is cached by
its shape and the array (``simulate_layers``): a network re-simulates only the layers no earlier
network had.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

from edgetune.errors import MissingDependencyError, RunnerError
from edgetune.simulate._cache import cached_layers, layer_key
from edgetune.simulate._cycles import stall_free_cycles
from edgetune.simulate._topology import ArrayLayer

PYTHON_ENV = "EDGETUNE_SCALESIM_PYTHON"
WORKER = Path(__file__).with_name("_scalesim_worker.py")
TIMEOUT_S = 3600
PARSER_VERSION = 1  # part of the cache key: bump when the parsed result changes
LAYOUT_ROW = "1,1,1,1,1,1,0,1,2,3,4,5,0,1,2,3,0,1,2,3,"  # custom layouts are off; SCALE-Sim still reads one row per layer
_HEADER_TOPOLOGY = "Layer name,IFMAP Height,IFMAP Width,Filter Height,Filter Width,Channels,Num Filter,Strides,\n"
_HEADER_LAYOUT = ("Layer name,IFMAP Height Intraline Factor,IFMAP Width Intraline Factor,Filter Height Intraline Factor,"
                  "Filter Width Intraline Factor,Channel Intraline Factor,Num Filter Intraline Factor,"
                  "IFMAP Height Intraline Order,IFMAP Width Intraline Order,Channel Intraline Order,"
                  "IFMAP Height Interline Order,IFMAP Width Interline Order,Channel Interline Order,"
                  "Num Filter Intraline Order,Channel Intraline Order,Filter Height Intraline Order,"
                  "Filter Width Intraline Order,Num Filter Interline Order,Channel Interline Order,"
                  "Filter Height Interline Order,Filter Width Interline Order,\n")


@dataclass(frozen=True)
class ArrayConfig:
    """What SCALE-Sim simulates: array, dataflow, SRAM sizes, DRAM interface (None: it estimates the need)."""

    rows: int
    cols: int
    dataflow: str
    ifmap_kb: int
    filter_kb: int
    ofmap_kb: int
    dram_words_per_cycle: Optional[int] = None

    def config_text(self, run_name: str) -> str:
        bandwidth = "USER" if self.dram_words_per_cycle else "CALC"
        return f"""[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight: {self.rows}
ArrayWidth: {self.cols}
IfmapSramSzkB: {self.ifmap_kb}
FilterSramSzkB: {self.filter_kb}
OfmapSramSzkB: {self.ofmap_kb}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {self.dataflow}
Bandwidth: {self.dram_words_per_cycle or 10}
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: {bandwidth}
UseRamulatorTrace: False
"""


# SCALE-Sim's own example (configs/scale.cfg): used for targets that describe no array
EXAMPLE_ARRAY = ArrayConfig(32, 32, "ws", 64, 64, 64)


def scalesim_python() -> Path:
    """The interpreter of SCALE-Sim's environment: $EDGETUNE_SCALESIM_PYTHON, else ``<this venv>-scalesim``."""
    env = os.environ.get(PYTHON_ENV)
    if env:
        return Path(env)
    return Path(f"{sys.prefix}-scalesim") / "bin" / "python"


def _site_packages() -> list[Path]:
    python = scalesim_python()
    return sorted(python.parent.parent.glob("lib/python3*/site-packages"))


def scalesim_version() -> Optional[str]:
    """SCALE-Sim's version in its environment, read from its metadata (no subprocess); None if absent."""
    for site in _site_packages():
        if not (site / "scalesim" / "scale_sim.py").is_file():
            continue
        for dist in site.glob("scalesim-*.dist-info"):
            return dist.name[len("scalesim-"):-len(".dist-info")]
        return "unknown"
    return None


def scalesim_missing() -> Optional[str]:
    """Why SCALE-Sim cannot run here, or None when it can."""
    if scalesim_version() is None or not scalesim_python().is_file():
        return (f"SCALE-Sim is not installed in {scalesim_python().parent.parent} (its own numpy<2 environment); "
                "run tools/setup.sh, or set EDGETUNE_SCALESIM_PYTHON to an interpreter with scalesim==3.0.0 and numpy<2")
    return None


def require_scalesim() -> str:
    missing = scalesim_missing()
    if missing:
        raise MissingDependencyError(missing)
    return scalesim_version() or "unknown"


def _estimated_cycles(layer: ArrayLayer, array: ArrayConfig) -> int:
    """The layer's stall-free cycle count (``_cycles``), used only to balance parallel runs."""
    return stall_free_cycles(layer, array.rows, array.cols, array.dataflow)


def _chunks(layers: Sequence[ArrayLayer], array: ArrayConfig, jobs: int) -> list[list[int]]:
    """Layer indices split into ``jobs`` groups of similar simulated work (largest first, greedy)."""
    order = sorted(range(len(layers)), key=lambda i: -_estimated_cycles(layers[i], array))
    groups: list[list[int]] = [[] for _ in range(max(1, min(jobs, len(layers))))]
    loads = [0] * len(groups)
    for index in order:
        target = loads.index(min(loads))
        groups[target].append(index)
        loads[target] += _estimated_cycles(layers[index], array)
    return [sorted(g) for g in groups if g]


def run_scalesim(layers: Sequence[ArrayLayer], array: ArrayConfig, folder: Path,
                 jobs: Optional[int] = None) -> list[dict[str, float]]:
    """Simulate each of ``layers`` on ``array``; one report row per layer, in order."""
    require_scalesim()
    jobs = jobs or max(1, min(os.cpu_count() or 1, 4))
    groups = _chunks(layers, array, jobs)
    runs = []
    rows: dict[int, dict[str, float]] = {}
    try:
        # started inside the try: a group that fails to start ends the ones already running
        for number, group in enumerate(groups):
            run_dir = folder / f"run{number}"
            run_dir.mkdir(parents=True, exist_ok=True)
            files = _write_inputs([layers[i] for i in group], array, run_dir)
            log = open(run_dir / "scalesim.log", "w")
            try:
                process = subprocess.Popen([str(scalesim_python()), str(WORKER), *map(str, files), str(run_dir / "out")],
                                           stdout=log, stderr=subprocess.STDOUT, cwd=run_dir)
            except BaseException:
                log.close()
                raise
            runs.append((group, run_dir, process, log))
        for group, run_dir, process, log in runs:
            try:
                code = process.wait(timeout=TIMEOUT_S)
            finally:
                log.close()
            if code != 0:
                tail = (run_dir / "scalesim.log").read_text().strip().splitlines()[-3:]
                raise RunnerError(f"SCALE-Sim failed (exit {code}): {' | '.join(tail)[:400]}")
            for index, row in zip(group, parse_reports(run_dir / "out" / "edgetune")):
                rows[index] = row
    except subprocess.TimeoutExpired:
        raise RunnerError(f"SCALE-Sim did not finish within {TIMEOUT_S} s") from None
    finally:
        for _, _, process, log in runs:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()  # the groups after a failed one were never waited on
    if len(rows) != len(layers):
        raise RunnerError(f"SCALE-Sim reported {len(rows)} layers for {len(layers)} simulated")
    return [rows[i] for i in range(len(layers))]


def simulate_layers(layers: Sequence[ArrayLayer], array: ArrayConfig, folder: Path, version: str,
                    jobs: Optional[int] = None) -> tuple[list[dict[str, float]], int]:
    """Each of ``layers`` on ``array``, from the per-layer cache where an earlier run stored it, the rest
    simulated (``run_scalesim``); returns (one report row per layer, in order; how many came from the cache)."""
    keys = [layer_key("scalesim", version, {**asdict(layer), "parser": PARSER_VERSION}, asdict(array)) for layer in layers]
    return cached_layers("scalesim", keys, lambda missing: run_scalesim([layers[i] for i in missing], array, folder, jobs))


def _write_inputs(layers: Sequence[ArrayLayer], array: ArrayConfig, folder: Path) -> tuple[Path, Path, Path]:
    config, topology, layout = folder / "array.cfg", folder / "topology.csv", folder / "layout.csv"
    config.write_text(array.config_text("edgetune"))
    # names never contain "DP": SCALE-Sim would expand such a row per channel
    topology.write_text(_HEADER_TOPOLOGY + "".join(layer.row(f"L{i}") + "\n" for i, layer in enumerate(layers)))
    layout.write_text(_HEADER_LAYOUT + "".join(f"L{i},{LAYOUT_ROW}\n" for i in range(len(layers))))
    return config, topology, layout


def _read_report(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise RunnerError(f"SCALE-Sim wrote no {path.name} in {path.parent}")
    with open(path, newline="") as fh:
        return [{k.strip(): v.strip() for k, v in row.items() if k and k.strip()} for row in csv.DictReader(fh, skipinitialspace=True)]


def parse_reports(report_dir: Path) -> list[dict[str, float]]:
    """Per-layer cycles, utilisation and SRAM/DRAM accesses (words = bytes) from SCALE-Sim's reports."""
    compute = _read_report(report_dir / "COMPUTE_REPORT.csv")
    access = _read_report(report_dir / "DETAILED_ACCESS_REPORT.csv")
    if len(compute) != len(access):
        raise RunnerError(f"SCALE-Sim reports in {report_dir} disagree on the number of layers")
    rows = []
    for c, a in zip(compute, access):
        rows.append({
            "cycles": float(c["Total Cycles"]),
            "cycles_incl_prefetch": float(c["Total Cycles (incl. prefetch)"]),
            "stall_cycles": float(c["Stall Cycles"]),
            "overall_util_pct": float(c["Overall Util %"]),
            "mapping_efficiency_pct": float(c["Mapping Efficiency %"]),
            "compute_util_pct": float(c["Compute Util %"]),
            "sram_reads": float(a["SRAM IFMAP Reads"]) + float(a["SRAM Filter Reads"]),
            "sram_writes": float(a["SRAM OFMAP Writes"]),
            "dram_reads": float(a["DRAM IFMAP Reads"]) + float(a["DRAM Filter Reads"]),
            "dram_writes": float(a["DRAM OFMAP Writes"]),
        })
    return rows
