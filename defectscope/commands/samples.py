"""``defectscope samples add PATH... --label L``: labelled images into a sample dataset folder."""

from __future__ import annotations

from pathlib import Path

import typer

from defectscope.commands._common import console, err_console, fail, user_errors

samples_app = typer.Typer(help="New labelled samples for retraining.", no_args_is_help=True)


@samples_app.command("add")
@user_errors
def add_cmd(
    paths: list[Path] = typer.Argument(..., help="Image files or folders (searched recursively)."),
    label: str = typer.Option(..., "--label", "-l", help="Class of these images."),
    to: Path = typer.Option(..., "--to", help="Sample dataset folder (created on first use)."),
    new_class: bool = typer.Option(False, "--new-class", help="Create LABEL as a new defect class if needed."),
    registry: Path | None = typer.Option(None, "--registry", envvar="DEFECTSCOPE_REGISTRY",
                                         help="Count the champion's classes as known classes."),
    line: str = typer.Option("default", "--line", help="Line whose champion's classes are known."),
    split: str = typer.Option("train", help="train, val or test."),
    note: str | None = typer.Option(None, help="A note kept with every sample (e.g. the lot)."),
) -> None:
    """Decode-check, deduplicate (sha256) and store images atomically; a bad file is listed, not fatal."""
    from datasets.intake import IntakeResult, SampleIntake, SampleOrigin, image_files

    known: tuple[str, ...] = ()
    pass_classes: tuple[str, ...] = ("good",)
    if registry is not None:
        from inspection.bundle import load_bundle
        from registry import ModelRegistry

        card = load_bundle(ModelRegistry(registry).champion(line), verify=False).card
        known, pass_classes = card.classes, card.pass_classes
    files = image_files(paths)
    if not files:
        fail("no image files found in the given paths")
    intake = SampleIntake(to, known_classes=known, pass_classes=pass_classes)
    results = intake.add_files(files, label, new_class=new_class, split=split, origin=SampleOrigin(note=note))
    added = sum(isinstance(r, IntakeResult) and r.created for _, r in results)
    dupes = sum(isinstance(r, IntakeResult) and not r.created for _, r in results)
    errors = [(p, r) for p, r in results if isinstance(r, str)]
    for p, msg in errors:
        err_console.print(f"[red]skipped[/] {p}: {msg}", highlight=False)
    console.print(f"{added} added as {label!r} ({split}), {dupes} already there, {len(errors)} refused -> {to}",
                  highlight=False)
    if errors and not added and not dupes:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.add_typer(samples_app, name="samples")
