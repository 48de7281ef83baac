"""Simulated devices: Vela for Arm Ethos-U, SCALE-Sim for systolic arrays and FPGA overlays.

Each simulator has a runner (subprocess) and a parser kept apart; results are cached by
(model hash, target, simulator version) in ``cache_root()/simulations``.
"""

from edgetune.simulate._cache import CACHE_ENV, cache_root
from edgetune.simulate._estimate import SimulatedEstimate, read_estimate

__all__ = ["CACHE_ENV", "SimulatedEstimate", "cache_root", "read_estimate"]
