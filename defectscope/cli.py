"""``defectscope``: one command, a thin subcommand per job.

Each module in ``defectscope.commands`` defines ``register(app)``; modules import their heavy
dependencies (torch, OpenCV, FastAPI) inside the command functions so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from defectscope import commands

app = typer.Typer(
    name="defectscope",
    help="Visual defect inspection for manufacturing lines.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """Visual defect inspection for manufacturing lines: simulate, train, inspect, serve."""


for _mod in sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_")):
    importlib.import_module(f"defectscope.commands.{_mod}").register(app)


def main() -> None:
    app()
