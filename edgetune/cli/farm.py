"""`edgetune farm tracker|serve|status`: boards behind a TVM RPC tracker."""

from __future__ import annotations

from typing import Any, Callable, Optional

import click

from edgetune.cli._render import out, print_json
from edgetune.errors import ConfigError
from edgetune.farm import (
    DEFAULT_SERVER_PORT,
    DEFAULT_TRACKER_PORT,
    RPC_TRACKER_ENV,
    TrackerAddress,
    exposure_notice,
    farm_status,
    resolve_tracker,
    start_server,
    start_tracker,
    stop_sessions,
    wait_until_stopped,
)

_TRUST = ("An RPC server runs whatever code it is sent; tracker keys are labels, not secrets. "
          "Both bind 127.0.0.1 unless --host names another address.")


def _tracker_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--tracker", "tracker", default=None, metavar="HOST:PORT",
                        help=f"RPC tracker address (default ${RPC_TRACKER_ENV}).")(f)


def _require_tracker(value: Optional[str]) -> TrackerAddress:
    tracker = resolve_tracker(value)
    if tracker is None:
        raise ConfigError(f"no RPC tracker given: pass --tracker HOST:PORT or set ${RPC_TRACKER_ENV}")
    return tracker


@click.group("farm", help=f"Device farm over a TVM RPC tracker. {_TRUST}")
def command() -> None:
    """Device farm over a TVM RPC tracker."""


@command.command("tracker")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=int, default=DEFAULT_TRACKER_PORT, show_default=True, help="TCP port to listen on.")
def tracker_command(host: str, port: int) -> None:
    """Run a TVM RPC tracker in the foreground (Ctrl-C stops it); boards register with it."""
    notice = exposure_notice(host, port, "RPC tracker")
    if notice:
        click.echo(notice, err=True)
    running = start_tracker(host, port, silent=False)
    click.echo(f"RPC tracker listening on {running.address} (Ctrl-C stops it)", err=True)
    try:
        wait_until_stopped(lambda: running.alive)
    except KeyboardInterrupt:
        running.stop()
        click.echo("RPC tracker stopped", err=True)


@command.command("serve")
@_tracker_option
@click.option("--key", required=True, help="Board type the tracker files this board under (e.g. rpi4); not a secret.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; a board reached from a workstation needs its LAN address or 0.0.0.0.")
@click.option("--port", type=int, default=DEFAULT_SERVER_PORT, show_default=True, help="First TCP port to try.")
@click.option("--port-end", type=int, default=None, help="Ports tried: [port, port-end) [port+100].")
def serve_command(tracker: Optional[str], key: str, host: str, port: int, port_end: Optional[int]) -> None:
    """Run a TVM RPC server on this board, registered with the tracker under KEY (Ctrl-C stops it)."""
    address = _require_tracker(tracker)
    notice = exposure_notice(host, port, "RPC server")
    if notice:
        click.echo(notice, err=True)
    running = start_server(address, key, host, port, port_end, silent=False)
    click.echo(f"RPC server on {host}:{running.port}, registered with {address} under key '{key}' (Ctrl-C stops it)",
               err=True)
    try:
        wait_until_stopped(lambda: running.alive)
    except KeyboardInterrupt:
        stop_sessions()
        click.echo("RPC server stopped", err=True)


@command.command("status")
@_tracker_option
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables.")
def status_command(tracker: Optional[str], as_json: bool) -> None:
    """Queues and free boards per key at the tracker."""
    status = farm_status(_require_tracker(tracker))
    if as_json:
        print_json(status.to_dict())
        return
    from rich.table import Table

    table = Table(title=f"RPC tracker {status.tracker}")
    for column in ("key", "boards", "free", "pending requests"):
        table.add_column(column, justify="left" if column == "key" else "right")
    for key in status.keys:
        table.add_row(key.key, str(key.boards), str(key.free), str(key.pending))
    out.print(table)
    for board_key, address in status.boards:
        out.print(f"  {board_key}: {address}")
    if not status.keys:
        out.print("no board registered yet: run `edgetune farm serve --tracker "
                  f"{status.tracker} --key KEY` on a board")
