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


class NpuSpec(_Strict):
    """A neural processing unit (Ethos-U, systolic arrays, ...)."""

    family: str  # ethos-u, systolic
    accelerator_config: Optional[str] = None  # e.g. ethos-u55-128
    macs_per_cycle: Optional[int] = Field(default=None, gt=0)
    clock_mhz: Optional[float] = Field(default=None, gt=0)
    system_config: Optional[str] = None
    memory_mode: Optional[str] = None


class FpgaSpec(_Strict):
    """An FPGA part hosting a DSP-array overlay."""

    part: str
    dsp_slices: int = Field(gt=0)
    bram_kb: int = Field(gt=0)
    luts: Optional[int] = Field(default=None, gt=0)
    clock_mhz: float = Field(gt=0)


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
