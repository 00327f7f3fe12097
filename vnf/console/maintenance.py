"""`vnf fail`, `vnf repair`, `vnf switchover` and `vnf move`: faults injected for real and
planned maintenance, each printing what the control plane did (docs/redundancy.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from vnf.console.common import OUTPUT_TABLE_JSON, fail, progress
from vnf.console.common import client as lab_client

# --------------------------------------------------------------------------------- faults


def _fault_options(hold: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Options every `vnf fail` shape takes (and --hold for the ones that kill)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f = OUTPUT_TABLE_JSON(f)
        f = click.option(
            "--traffic-s",
            type=click.FloatRange(min=1.0, max=3600.0),
            default=None,
            help="Seconds of traffic with --traffic-pps (default 6); the fault is one third in.",
        )(f)
        f = click.option(
            "--traffic-sessions",
            type=click.IntRange(min=0),
            default=0,
            help="With --traffic-pps: use at most N sessions (0: every session up).",
        )(f)
        f = click.option(
            "--traffic-pps",
            type=click.IntRange(min=1, max=100_000),
            default=None,
            help="Run traffic at N packets/s per session and direction through the fault, "
            "and report the forwarding gap per flow and the loss.",
        )(f)
        f = click.option(
            "--wait",
            "wait_s",
            type=click.FloatRange(min=0.0, max=600.0),
            default=10.0,
            show_default=True,
            help="Seconds to wait for the takeover to be reported (0: do not wait).",
        )(f)
        if hold:
            f = click.option(
                "--hold", is_flag=True, help="Keep it down until `vnf repair` (no restart)."
            )(f)
        return click.pass_context(f)

    return decorate


@click.group("fail")
def fail_group() -> None:
    """Inject a fault for real: kill -9, SIGSTOP, or cut a management path.

    \b
      vnf fail cp-active [--hold]     kill -9 the active CP (restarted unless --hold)
      vnf fail cp-standby [--hold]    kill -9 the standby CP
      vnf fail dp NAME [--hold]       kill -9 a data-plane worker
      vnf fail node NAME [--hold]     kill -9 any node
      vnf fail freeze NODE            SIGSTOP a node (vnf repair freeze NODE: SIGCONT)
      vnf fail link NODE PEER         blackhole the management path between two nodes

    Then it waits for the control plane to report the takeover and prints detection and
    takeover times and the sessions kept; with --traffic-pps it runs traffic through the
    fault and prints the forwarding gap per flow and the loss. `vnf repair` undoes a fault.
    """


def _run_fail(
    ctx: click.Context,
    kind: str,
    target: str,
    peer: str,
    hold: bool,
    wait_s: float,
    traffic_pps: int | None,
    traffic_s: float | None,
    traffic_sessions: int,
    output: str,
    node_kind: str = "",
) -> None:
    from vnf.lab.adapters import faults

    if (traffic_s is not None or traffic_sessions) and traffic_pps is None:
        raise click.UsageError("--traffic-s and --traffic-sessions need --traffic-pps")
    with lab_client(ctx) as client:
        node = faults.resolve(client, target, node_kind)
        other = faults.resolve(client, peer) if peer else ""
        outcome = faults.fail(
            client,
            kind,
            node,
            other,
            hold,
            wait_s=wait_s,
            traffic_pps=traffic_pps or 0,
            traffic_s=traffic_s or 6.0,
            traffic_sessions=traffic_sessions,
            progress=progress if output == "table" else _quiet_progress,
        )
    if output == "json":
        import dataclasses
        import json

        click.echo(json.dumps(dataclasses.asdict(outcome), indent=2))
        return
    from vnf.console.format import fail_report

    click.echo(fail_report(outcome))


def _quiet_progress(_: str) -> None:
    return None


@fail_group.command("cp-active")
@_fault_options(hold=True)
def fail_cp_active(ctx: click.Context, hold: bool, **kw: Any) -> None:
    """Kill -9 the CP that reports itself active."""
    _run_fail(ctx, "kill", "cp-active", "", hold, **kw)


@fail_group.command("cp-standby")
@_fault_options(hold=True)
def fail_cp_standby(ctx: click.Context, hold: bool, **kw: Any) -> None:
    """Kill -9 the CP that reports itself standby."""
    _run_fail(ctx, "kill", "cp-standby", "", hold, **kw)


@fail_group.command("dp")
@click.argument("name")
@_fault_options(hold=True)
def fail_dp(ctx: click.Context, name: str, hold: bool, **kw: Any) -> None:
    """Kill -9 data-plane worker NAME."""
    _run_fail(ctx, "kill", name, "", hold, node_kind="dp", **kw)


@fail_group.command("node")
@click.argument("name")
@_fault_options(hold=True)
def fail_node(ctx: click.Context, name: str, hold: bool, **kw: Any) -> None:
    """Kill -9 node NAME (cp-active and cp-standby work here too)."""
    _run_fail(ctx, "kill", name, "", hold, **kw)


@fail_group.command("freeze")
@click.argument("node")
@_fault_options(hold=False)
def fail_freeze(ctx: click.Context, node: str, **kw: Any) -> None:
    """SIGSTOP NODE: it stays frozen (and is not restarted) until `vnf repair freeze NODE`."""
    _run_fail(ctx, "freeze", node, "", False, **kw)


@fail_group.command("link")
@click.argument("node")
@click.argument("peer")
@_fault_options(hold=False)
def fail_link(ctx: click.Context, node: str, peer: str, **kw: Any) -> None:
    """Cut the management path between NODE and PEER (blackhole routes, both ways)."""
    _run_fail(ctx, "link", node, peer, False, **kw)


@click.group("repair")
def repair_group() -> None:
    """Undo a fault from `vnf fail` (same shapes).

    \b
      vnf repair cp-active | cp-standby   let the held-down CP start again
      vnf repair dp NAME | node NAME      let a held-down node start again
      vnf repair freeze NODE              SIGCONT
      vnf repair link NODE PEER           remove the blackhole routes
    """


def _run_repair(ctx: click.Context, kind: str, target: str, peer: str, node_kind: str = "") -> None:
    from vnf.lab.adapters import faults

    with lab_client(ctx) as client:
        if target in faults.CP_ROLES and kind == "kill":
            node = faults.held_cp(client)
        else:
            node = faults.resolve(client, target, node_kind)
        other = faults.resolve(client, peer) if peer else ""
        result = faults.repair(client, kind, node, other)
    what = f"{result.node} <-> {result.peer}" if result.peer else result.node
    click.echo(f"repaired {kind} {what}: {result.detail}")


@repair_group.command("cp-active")
@click.pass_context
def repair_cp_active(ctx: click.Context) -> None:
    """Let the CP held down by `vnf fail cp-active --hold` start again."""
    _run_repair(ctx, "kill", "cp-active", "")


@repair_group.command("cp-standby")
@click.pass_context
def repair_cp_standby(ctx: click.Context) -> None:
    """Let the CP held down by `vnf fail cp-standby --hold` start again."""
    _run_repair(ctx, "kill", "cp-standby", "")


@repair_group.command("dp")
@click.argument("name")
@click.pass_context
def repair_dp(ctx: click.Context, name: str) -> None:
    """Let held-down data-plane worker NAME start again."""
    _run_repair(ctx, "kill", name, "", node_kind="dp")


@repair_group.command("node")
@click.argument("name")
@click.pass_context
def repair_node(ctx: click.Context, name: str) -> None:
    """Let held-down node NAME start again."""
    _run_repair(ctx, "kill", name, "")


@repair_group.command("freeze")
@click.argument("node")
@click.pass_context
def repair_freeze(ctx: click.Context, node: str) -> None:
    """SIGCONT a frozen NODE."""
    _run_repair(ctx, "freeze", node, "")


@repair_group.command("link")
@click.argument("node")
@click.argument("peer")
@click.pass_context
def repair_link(ctx: click.Context, node: str, peer: str) -> None:
    """Restore the management path between NODE and PEER."""
    _run_repair(ctx, "link", node, peer)


# --------------------------------------------------------------------------------- maintenance


@click.group("switchover")
def switchover_group() -> None:
    """Planned switchover (make-before-break)."""


@switchover_group.command("cp")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1, max=600.0),
    default=10.0,
    show_default=True,
    help="Seconds the CP may take.",
)
@OUTPUT_TABLE_JSON
@click.pass_context
def switchover_cp(ctx: click.Context, timeout_s: float, output: str) -> None:
    """Hand the active role to the standby CP, without losing a session."""
    from vnf.api import management_pb2

    with lab_client(ctx) as client:
        if len(client.nodes("cp")) < 2:
            fail(f"lab {client.lab} has a single control plane: nothing to switch over to")
        active = client.active_cp()
        reply = client.management().Switchover(
            management_pb2.SwitchoverRequest(timeout_s=timeout_s), timeout=timeout_s + 5
        )
    if output == "json":
        import json

        from google.protobuf.json_format import MessageToDict

        click.echo(json.dumps(MessageToDict(reply, preserving_proto_field_name=True), indent=2))
        return
    click.echo(
        f"switchover {reply.from_cp or active.name} -> {reply.to_cp}: epoch {reply.epoch}, "
        f"{reply.duration_ms:.1f} ms, {reply.sessions} sessions"
    )


@click.group("move")
def move_group() -> None:
    """Move subscriber groups between data-plane workers (make-before-break)."""


@move_group.command("group")
@click.argument("group_id", metavar="GROUP", type=click.IntRange(min=1))
@click.option("--to", "to_dp", required=True, help="The data-plane worker to serve it.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1, max=600.0),
    default=10.0,
    show_default=True,
    help="Seconds the move may take.",
)
@OUTPUT_TABLE_JSON
@click.pass_context
def move_group_cmd(
    ctx: click.Context, group_id: int, to_dp: str, timeout_s: float, output: str
) -> None:
    """Move GROUP's sessions to data-plane worker --to, without a redial."""
    from vnf.api import management_pb2
    from vnf.lab.adapters.faults import node_name

    with lab_client(ctx) as client:
        node_name(client, to_dp, "dp")
        reply = client.management().MoveGroup(
            management_pb2.MoveGroupRequest(group_id=group_id, to_dp=to_dp, timeout_s=timeout_s),
            timeout=timeout_s + 5,
        )
    if output == "json":
        import json

        from google.protobuf.json_format import MessageToDict

        click.echo(json.dumps(MessageToDict(reply, preserving_proto_field_name=True), indent=2))
        return
    click.echo(
        f"group {group_id}: {reply.from_dp or '-'} -> {reply.to_dp}, {reply.sessions} sessions, "
        f"{reply.duration_ms:.1f} ms"
    )
