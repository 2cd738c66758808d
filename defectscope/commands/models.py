"""``defectscope models list|show|add|promote|rollback``: the model registry (champion per line)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from defectscope.commands._common import console, user_errors

models_app = typer.Typer(help="The model registry: versions with lineage, a champion per line, promote and "
                         "rollback.", no_args_is_help=True)
RegistryOpt = typer.Option(..., "--registry", "-r", envvar="DEFECTSCOPE_REGISTRY", help="Registry folder.")
LineOpt = typer.Option("default", "--line", help="Line or product.")


def _pct(x: object) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, int | float) else "-"


@models_app.command("list")
@user_errors
def list_cmd(registry: Path = RegistryOpt, as_json: bool = typer.Option(False, "--json", help="JSON output.")) -> None:
    """Every version, oldest first, with status per line and the golden-set figures."""
    from dataclasses import asdict

    from rich.table import Column, Table

    from registry import ModelRegistry

    infos = ModelRegistry(registry).list()
    if as_json:
        console.print_json(json.dumps([asdict(i) for i in infos]))
        return
    table = Table(Column("version", no_wrap=True), Column("parent", no_wrap=True), "classes",
                  Column("status", no_wrap=True), "golden escape", "golden false-reject", "note")
    for i in infos:
        status = ", ".join(f"{ln}: {'CHAMPION' if ln in i.champion_of else st}" for ln, st in i.status.items())
        table.add_row(i.version, i.parent_version or "-", str(len(i.classes)), status,
                      _pct(i.metrics.get("golden_escape_rate")), _pct(i.metrics.get("golden_false_reject_rate")),
                      i.note or "")
    console.print(table)


@models_app.command("show")
@user_errors
def show_cmd(version: str, registry: Path = RegistryOpt) -> None:
    """A version's registry entry, its promotion events and its card, as JSON."""
    from registry import ModelRegistry

    console.print_json(json.dumps(ModelRegistry(registry).show(version), default=str))


@models_app.command("add")
@user_errors
def add_cmd(bundle: Path = typer.Argument(..., help="Bundle folder to register (verified, then copied in)."),
            registry: Path = RegistryOpt, line: str = LineOpt,
            promote: bool = typer.Option(False, "--promote", help="Make it the line's champion."),
            note: str | None = typer.Option(None, help="A note kept with the version.")) -> None:
    """Register a bundle (e.g. the first champion: --promote)."""
    from registry import ModelRegistry

    reg = ModelRegistry(registry)
    version = reg.add(bundle, line=line, status="promoted" if promote else "candidate", note=note)
    console.print(f"registered {version}" + (f" as champion of line {line!r}" if promote else " as a candidate"),
                  highlight=False)


@models_app.command("promote")
@user_errors
def promote_cmd(version: str, registry: Path = RegistryOpt, line: str = LineOpt,
                reason: str = typer.Option("promoted by hand", help="Why (kept in the registry).")) -> None:
    """Make a version the champion of a line. Services pick it up on POST /v1/model/reload (or their watch)."""
    from registry import ModelRegistry

    ModelRegistry(registry).promote(version, line=line, reason=reason)
    console.print(f"{version} is now the champion of line {line!r}", highlight=False)


@models_app.command("rollback")
@user_errors
def rollback_cmd(registry: Path = RegistryOpt, line: str = LineOpt,
                 reason: str = typer.Option("rolled back by hand", help="Why (kept in the registry).")) -> None:
    """Put the previous champion of a line back."""
    from registry import ModelRegistry

    version = ModelRegistry(registry).rollback(line, reason=reason)
    console.print(f"line {line!r} is back on {version}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
