"""The wire protocol between a workstation and a board served by `edgetune farm serve`.

Names of the global functions the board registers (called over TVM's RPC), the special ``repeat``
values of ``edgetune.measure``, the runtimes it runs, and the fingerprint key under which a board's
environment travels. Both sides import this module; neither imports the other.
"""

from __future__ import annotations

BOARD_ENVIRONMENT = "edgetune.board_environment"
RUNTIME_VERSIONS = "edgetune.runtime_versions"
MEASURE = "edgetune.measure"
OUTPUT = "edgetune.output"
LOAD_ONLY = -1  # MEASURE's repeat that (re)loads and binds without running
UNLOAD = -2  # MEASURE's repeat that frees the artifact
BOARD_RUNTIMES = ("onnxruntime", "litert")  # run through MEASURE; TVM artifacts go through the Relax VM
BOARD_ENVIRONMENT_KEY = "board_environment"  # where a board's environment rides in a result's library versions
