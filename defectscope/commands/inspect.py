"""``defectscope inspect IMAGE... --model BUNDLE``: one verdict line per image."""

from __future__ import annotations

from pathlib import Path

import typer

from defectscope.commands._common import console, err_console, user_errors


@user_errors
def inspect_cmd(
    images: list[Path] = typer.Argument(..., help="Image files to inspect."),
    model: Path = typer.Option(..., "--model", "-m", help="Model bundle folder."),
    backend: str = typer.Option("auto", help="onnx, torch or auto (ONNX Runtime when the bundle has it)."),
    batch_size: int = typer.Option(8, min=1, help="Images per inference batch."),
) -> None:
    """Inspect image files and print pass / fail / review with label and scores.

    Unreadable files are reported one line each and skipped; the exit code is 1 if any was.
    """
    from inspection.errors import ImageDecodeError
    from inspection.inspector import Inspector

    inspector = Inspector.from_path(model, backend=backend, batch_size=batch_size)
    frames, errors = [], 0
    for path in images:
        try:
            data = path.read_bytes()
            frames.append(inspector.decode(data, source=str(path)))
        except (OSError, ImageDecodeError) as exc:
            errors += 1
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            err_console.print(f"[red]error[/]  {path}: {reason}", highlight=False)
    colours = {"pass": "green", "fail": "red", "review": "yellow"}
    for v in inspector.inspect(frames):
        c = colours[v.outcome.value]
        console.print(
            f"[{c}]{v.outcome.value:<6}[/] {v.source}  label={v.label} confidence={v.confidence:.3f} "
            f"defect_score={v.defect_score:.3f} model={v.model_name}@{v.model_version}",
            highlight=False,
        )
    if errors:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect_cmd)
