"""`vnf cable …`: the cable modems of the vCCAP side, in the `show cable modem` layout
engineers know, and the per-modem actions (docs/cable.md)."""

from __future__ import annotations

import click

from vnf.console.common import OUTPUT, OUTPUT_TABLE_JSON
from vnf.console.common import client as lab_client

MODEM_COLUMNS = [
    ("mac", "MAC address"),
    ("cpe_ip", "CPE IP address"),
    ("interface", "I/F"),
    ("state", "MAC state"),
    ("sid", "prim SID"),
    ("service_class", "service class"),
    ("up", "up rate"),
    ("down", "down rate"),
    ("uptime", "uptime"),
    ("cpe", "num CPE"),
]


def _mac(value: str) -> bytes:
    from vnf.model.addresses import parse_mac

    try:
        return parse_mac(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a MAC address (aa:bb:cc:dd:ee:ff)") from None


def _rate(kbps: int) -> str:
    if not kbps:
        return "unlimited"
    return f"{kbps / 1000:g}M" if kbps >= 1000 else f"{kbps}k"


@click.group("cable")
def cable_group() -> None:
    """Cable modems (DOCSIS-like, the vCCAP side)."""


@cable_group.command("modems")
@click.option("--mac", default="", help="Only this modem.")
@click.option("--state", default="", help="Only modems in this state (online, init(r1), ...).")
@click.option("--all", "show_all", is_flag=True, help="Also provisioned modems never seen.")
@OUTPUT
@click.pass_context
def modems(ctx: click.Context, mac: str, state: str, show_all: bool, output: str) -> None:
    """Cable modems, like `show cable modem` (rates: the service class's maximum)."""
    from vnf.api import management_pb2
    from vnf.console.format import render, uptime
    from vnf.model.addresses import int_to_ip, mac_to_str

    query = management_pb2.ModemQuery(mac=_mac(mac) if mac else b"", state=state, all=show_all)
    raw = output != "table"
    rows = []
    with lab_client(ctx) as client:
        for page in client.management().ListModems(query, timeout=30):
            for m in page.modems:
                row: dict[str, object] = {
                    "mac": mac_to_str(m.mac),
                    "cpe_ip": str(int_to_ip(m.cpe_ipv4)) if m.cpe_ipv4 else "",
                    "interface": f"{m.dp}/g{m.group}" if m.dp else "",
                    "state": m.state,
                    "sid": m.sid or "",
                    "service_class": m.service_class,
                    "up": m.up_kbps if raw else _rate(m.up_kbps),
                    "down": m.down_kbps if raw else _rate(m.down_kbps),
                    "uptime": round(m.uptime_s, 3) if raw else uptime(m.uptime_s),
                    "cpe": 1 if m.cpe_ipv4 else 0,
                }
                if raw:
                    row.update(
                        dp=m.dp,
                        group=m.group,
                        cpe_mac=mac_to_str(m.cpe_mac) if m.cpe_mac else "",
                        up_bytes=m.up_bytes,
                        down_bytes=m.down_bytes,
                        reason=m.reason,
                        forwarding=m.forwarding,
                        session_key=m.session_key,
                    )
                elif not m.uptime_s:
                    row["uptime"] = ""
                rows.append(row)
    columns = MODEM_COLUMNS
    if raw:
        columns = [(k, k) for k in rows[0]] if rows else [(k, k) for k, _ in MODEM_COLUMNS]
    click.echo(render(rows, columns, output))
    if output == "table":
        online = sum(1 for r in rows if r["state"] == "online")
        click.echo(f"{len(rows)} modems, {online} online", err=True)


@cable_group.group("modem")
@click.argument("mac")
@click.pass_context
def modem(ctx: click.Context, mac: str) -> None:
    """One cable modem: MAC is aa:bb:cc:dd:ee:ff."""
    ctx.obj = {**(ctx.obj or {}), "modem": _mac(mac)}


@modem.group("service-class")
def service_class() -> None:
    """The modem's service class (its upstream/downstream rate profile)."""


@service_class.command("set")
@click.argument("name")
@OUTPUT_TABLE_JSON
@click.pass_context
def service_class_set(ctx: click.Context, name: str, output: str) -> None:
    """Change the service class at run time (a DSC when the modem is online: no re-registration)."""
    import json

    from vnf.api import management_pb2
    from vnf.model.addresses import mac_to_str

    mac = ctx.obj["modem"]
    with lab_client(ctx) as client:
        reply = client.management().SetModemServiceClass(
            management_pb2.ModemServiceClassRequest(mac=mac, service_class=name), timeout=10
        )
    text = mac_to_str(mac)
    if output == "json":
        click.echo(json.dumps({"mac": text, "service_class": name, "dsc": reply.online}))
    elif reply.online:
        click.echo(f"{text}: service class {name} (DSC sent; the new rate holds within 1 s)")
    else:
        click.echo(f"{text}: service class {name} (not online: applies at its registration)")


@modem.command("reset")
@click.pass_context
def reset(ctx: click.Context) -> None:
    """`clear cable modem reset`: the modem re-ranges and re-registers."""
    from vnf.api import management_pb2
    from vnf.model.addresses import mac_to_str

    mac = ctx.obj["modem"]
    with lab_client(ctx) as client:
        client.management().ResetModem(management_pb2.ModemRequest(mac=mac), timeout=10)
    click.echo(f"{mac_to_str(mac)}: reset (RNG-RSP abort sent; it re-registers by itself)")
