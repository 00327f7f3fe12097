"""What every `vnf` command module shares: the one-line failure, progress lines, the lab
client of the current context, and the --output option."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

import click

OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
)

OUTPUT_TABLE_JSON = click.option(
    "--output", "-o", type=click.Choice(["table", "json"]), default="table", show_default=True
)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"vnf: {' '.join(message.splitlines())}", err=True)
    sys.exit(code)


def progress(line: str) -> None:
    click.echo(f"  {line}")


def lab_name(ctx: click.Context) -> str:
    from vnf.lab.adapters.lifecycle import find_lab
    from vnf.lab.adapters.state import StateStore

    return find_lab(StateStore(), ctx.obj.get("lab"))


def client(ctx: click.Context) -> Any:
    from vnf.lab.adapters.clients import LabClient
    from vnf.lab.adapters.state import StateStore

    return LabClient(StateStore(), lab_name(ctx))
