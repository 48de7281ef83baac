"""Device farm: boards behind a TVM RPC tracker (start a tracker, serve a board, query, request).

The engine is TVM's RPC tracker and server; this package starts them, reports their state, and
hands out a board per measurement with one-line errors when the tracker or a key is missing.
"""

from edgetune.farm._serve import (
    RunningServer,
    RunningTracker,
    start_server,
    start_tracker,
    stop_sessions,
    wait_until_stopped,
)
from edgetune.runners._tracker import (  # the workstation's side of the farm lives with the runners that use it
    Board,
    FarmStatus,
    KeyStatus,
    TrackerConnection,
    farm_status,
    request_board,
    require_key,
)
from edgetune.runners._tracker_address import (
    DEFAULT_SERVER_PORT,
    DEFAULT_TRACKER_PORT,
    HOW_TO_CONFIGURE,
    RPC_TRACKER_ENV,
    TrackerAddress,
    exposure_notice,
    is_loopback,
    resolve_tracker,
)

__all__ = [
    "Board",
    "DEFAULT_SERVER_PORT",
    "DEFAULT_TRACKER_PORT",
    "FarmStatus",
    "HOW_TO_CONFIGURE",
    "KeyStatus",
    "RPC_TRACKER_ENV",
    "RunningServer",
    "RunningTracker",
    "TrackerAddress",
    "TrackerConnection",
    "exposure_notice",
    "farm_status",
    "is_loopback",
    "request_board",
    "require_key",
    "resolve_tracker",
    "start_server",
    "start_tracker",
    "stop_sessions",
    "wait_until_stopped",
]
