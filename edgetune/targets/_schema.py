"""The typed, frozen, validated description of a device (one YAML file each)."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1

Auto = Literal["auto"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CpuSpec(_Strict):
    """The CPU that runs kernels (or hosts an accelerator)."""

    model: str = "auto"
    arch: str = "auto"  # x86_64, aarch64, armv7, ...
    cores: Union[int, Auto] = "auto"
    features: Union[tuple[str, ...], Auto] = "auto"
    llvm_mcpu: str = "auto"
    llvm_mtriple: str = "auto"
    llvm_mattr: tuple[str, ...] = ()  # LLVM features (+neon, -avx512f): TVM's -mattr
    clock_mhz: Optional[float] = Field(default=None, gt=0)


class MemorySpec(_Strict):
    """Memory sizes; None where the device has no such memory."""

    ram_mb: Union[int, Auto, None] = None
    sram_kb: Optional[int] = Field(default=None, ge=0)
    flash_kb: Optional[int] = Field(default=None, ge=0)
    bandwidth_gbps: Optional[float] = Field(default=None, gt=0)


class GpuSpec(_Strict):
    """An NVIDIA-class GPU."""

    vendor: str = "nvidia"
    arch: str  # e.g. sm_87
    sms: Optional[int] = Field(default=None, gt=0)
    clock_mhz: Optional[float] = Field(default=None, gt=0)
    memory_mb: Optional[int] = Field(default=None, gt=0)


class EnergySpec(_Strict):
    """Energy per operation and per byte moved, for simulated energy estimates; ``source`` cites the figures."""

    mac_pj: float = Field(gt=0)
    sram_pj_per_byte: float = Field(gt=0)
    dram_pj_per_byte: float = Field(gt=0)
    source: str = Field(min_length=1)


class SystolicSpec(_Strict):
    """A systolic MAC array (SCALE-Sim's architecture presets); one byte per word (int8)."""

    array_rows: int = Field(gt=0, le=1024)
    array_cols: int = Field(gt=0, le=1024)
    dataflow: Literal["ws", "os", "is"] = "ws"
    ifmap_sram_kb: int = Field(gt=0)
    filter_sram_kb: int = Field(gt=0)
    ofmap_sram_kb: int = Field(gt=0)
    # None: SCALE-Sim reports the DRAM bandwidth the array needs (its CALC mode)
    dram_words_per_cycle: Optional[int] = Field(default=None, gt=0)
    energy: Optional[EnergySpec] = None


class NpuSpec(_Strict):
    """A neural processing unit (Ethos-U, systolic arrays, ...)."""

    family: str  # ethos-u, systolic
    accelerator_config: Optional[str] = None  # e.g. ethos-u55-128
    macs_per_cycle: Optional[int] = Field(default=None, gt=0)
    clock_mhz: Optional[float] = Field(default=None, gt=0)
    system_config: Optional[str] = None
    memory_mode: Optional[str] = None
    systolic: Optional[SystolicSpec] = None  # family: systolic


class OverlaySpec(_Strict):
    """The DSP-array overlay on an FPGA: sized from the part's budgets unless fixed here."""

    macs_per_dsp: int = Field(default=1, ge=1, le=4)  # int8 MACs one DSP slice does per cycle
    dsp_fraction: float = Field(default=0.9, gt=0, le=1)  # share of DSPs the array may take
    bram_fraction: float = Field(default=0.8, gt=0, le=1)  # share of BRAM for the three buffers
    dataflow: Literal["ws", "os", "is"] = "ws"
    array_rows: Optional[int] = Field(default=None, gt=0, le=1024)  # a fixed design, checked against the part
    array_cols: Optional[int] = Field(default=None, gt=0, le=1024)
    sram_kb: Optional[int] = Field(default=None, gt=0)  # total on-chip buffers of a fixed design
    energy: Optional[EnergySpec] = None


class FpgaSpec(_Strict):
    """An FPGA part hosting a DSP-array overlay."""

    part: str
    dsp_slices: int = Field(gt=0)
    bram_kb: int = Field(gt=0)
    luts: Optional[int] = Field(default=None, gt=0)
    clock_mhz: float = Field(gt=0)
    overlay: OverlaySpec = OverlaySpec()


class Target(_Strict):
    """A device edgetune can compile for, measure or simulate."""

    schema_version: Literal[1]
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    kind: Literal["cpu", "gpu", "npu", "fpga", "mcu"]
    description: str = ""
    transport: Literal["local", "rpc", "sim"] = "local"
    simulated: bool = False
    runtimes: tuple[str, ...] = ("onnxruntime",)
    precisions: tuple[Literal["fp32", "fp16", "int8"], ...] = ("fp32",)
    threads: Union[int, Auto] = "auto"
    rpc_key: Optional[str] = None
    cpu: CpuSpec = CpuSpec()
    memory: MemorySpec = MemorySpec()
    gpu: Optional[GpuSpec] = None
    npu: Optional[NpuSpec] = None
    fpga: Optional[FpgaSpec] = None
    source: str = Field(default="", exclude=True)  # the YAML file it came from

    @property
    def thread_count(self) -> int:
        """Threads to run with: the YAML's number, or the host's physical cores."""
        if isinstance(self.threads, int):
            return self.threads
        if isinstance(self.cpu.cores, int):
            return self.cpu.cores
        from edgetune.targets._host import detect_host

        return detect_host().cores_physical
