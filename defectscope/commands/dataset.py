"""``defectscope dataset ...``: synthesize, import, split, check and preview labelled datasets."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from defectscope.commands._common import console, err_console, fail, user_errors

dataset_app = typer.Typer(help="Labelled image datasets: synth, import, split, check, contact-sheet.",
                          no_args_is_help=True)


def parse_size(text: str) -> tuple[int, int]:
    """'1280x1024' (width x height, as cameras are specified) -> (h, w) = (1024, 1280)."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit():
        fail(f"cannot read size {text!r}: write WIDTHxHEIGHT, e.g. 1280x1024")
    return int(h), int(w)


def _parse_range(text: str) -> tuple[float, float]:
    lo, sep, hi = text.replace("..", ",").partition(",")
    try:
        return (float(lo), float(hi)) if sep else (float(lo), float(lo))
    except ValueError:
        fail(f"cannot read severity {text!r}: write LOW,HIGH (e.g. 0.5,1.0) or one value")


@dataset_app.command("synth")
@user_errors
def synth_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to create."),
    n: int = typer.Option(..., "--n", min=1, help="Number of images."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same bytes."),
    recipe: str = typer.Option("flange", help="Product recipe: flange (round machined part) or steel (strip surface)."),
    size: str = typer.Option("1280x1024", help="Frame size WIDTHxHEIGHT."),
    defect_fraction: float = typer.Option(0.5, min=0, max=1, help="Share of defective parts."),
    defects: str = typer.Option("", help="Comma-separated defect types (default: all of the recipe's)."),
    severity: str = typer.Option("0.5,1.0", help="Severity range LOW,HIGH in (0,1]; lower is subtler."),
    splits: str = typer.Option("0.7,0.15,0.15", help="train,val,test shares."),
    color: bool = typer.Option(False, "--color", help="Colour (BGR) frames instead of monochrome."),
    workers: int = typer.Option(0, min=0, help="Worker processes (0: one per CPU core)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Render a labelled dataset from the camera simulator (images, masks, manifest with splits)."""
    from datasets.split import parse_fractions
    from datasets.synth import synthesize

    start = time.perf_counter()
    ds = synthesize(out, n=n, recipe=recipe, seed=seed, size=parse_size(size), defect_fraction=defect_fraction,
                    defects=[d.strip() for d in defects.split(",") if d.strip()] or None,
                    severity=_parse_range(severity), splits=parse_fractions(splits), workers=workers or None,
                    progress=err_console.is_terminal, color=color, overwrite=force)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(ds.class_counts().items()))
    console.print(f"wrote {len(ds.samples)} images to {ds.root} in {time.perf_counter() - start:.1f} s ({counts})",
                  highlight=False)


@dataset_app.command("import")
@user_errors
def import_cmd(
    src: Path = typer.Argument(..., help="Folder of class subfolders (SRC/<label>/*.jpg) or a CSV of path,label."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to create."),
    pass_class: list[str] = typer.Option(None, "--pass-class", help="Label that counts as pass (default: good)."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Copy images into the dataset layout with a manifest; unreadable files are listed and left out."""
    from rich.markup import escape

    from datasets.importer import import_dataset

    result = import_dataset(src, out, pass_classes=pass_class or None, overwrite=force)
    for path, reason in result.skipped:
        err_console.print(f"[yellow]skipped[/] {escape(path)}: {escape(reason)}", highlight=False)
    ds = result.dataset
    counts = ", ".join(f"{k}={v}" for k, v in sorted(ds.class_counts().items()))
    console.print(f"imported {len(ds.samples)} images into {ds.root} ({counts}); "
                  f"{len(result.skipped)} skipped. Next: defectscope dataset split {ds.root}", highlight=False)


@dataset_app.command("split")
@user_errors
def split_cmd(
    dataset: Path = typer.Argument(..., help="Dataset folder."),
    fractions: str = typer.Option("0.7,0.15,0.15", "--fractions", help="train,val,test shares."),
    reassign: bool = typer.Option(False, "--reassign", help="Redo every assignment (moves images between splits)."),
) -> None:
    """Assign train/val/test, stratified by label; images that have a split keep it."""
    from datasets.layout import SPLITS, Dataset
    from datasets.split import assign_splits, parse_fractions

    ds = Dataset.load(dataset)
    before = {s.path: s.split for s in ds.samples}
    ds = ds.with_samples(assign_splits(ds.samples, parse_fractions(fractions), reassign=reassign))
    ds.save()
    moved = sum(1 for s in ds.samples if before[s.path] != s.split)
    per = ", ".join(f"{sp}={len(ds.split(sp))}" for sp in SPLITS)
    console.print(f"{moved} images assigned; {per}", highlight=False)


@dataset_app.command("check")
@user_errors
def check_cmd(
    dataset: Path = typer.Argument(..., help="Dataset folder."),
    imbalance: float = typer.Option(10.0, help="Warn when the largest class exceeds the smallest by this ratio."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Find unreadable images, duplicates (and leaks across splits), imbalance and sizes. Exit 1 on errors."""
    from rich.markup import escape
    from rich.table import Table

    from datasets.check import check_dataset
    from datasets.layout import SPLITS, Dataset

    report = check_dataset(Dataset.load(dataset), imbalance_ratio=imbalance)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
    else:
        table = Table(title=f"{report.root}: {report.samples} images")
        for col in ("class", *SPLITS, "unassigned", "total"):
            table.add_column(col, justify="left" if col == "class" else "right")
        for label, per in report.counts.items():
            table.add_row(label, *(str(per.get(sp, 0)) for sp in (*SPLITS, "")), str(sum(per.values())))
        console.print(table)
        sizes = ", ".join(f"{w}x{h} ({c})" for (w, h), c in report.sizes.most_common(5))
        console.print(f"image sizes: {sizes or 'none readable'}", highlight=False)
        for issue in report.issues:
            colour = "red" if issue.level == "error" else "yellow"
            console.print(f"[{colour}]{issue.level}[/] {escape(f'[{issue.code}]')} {escape(issue.message)}",
                          highlight=False)
            for p in issue.paths:
                console.print(f"    {escape(p)}", highlight=False)
        verdict = "[green]ok[/]" if report.ok else f"[red]{len(report.errors)} problem(s) to fix[/]"
        console.print(f"{verdict}, {len(report.warnings)} warning(s)")
    if not report.ok:
        raise typer.Exit(1)


@dataset_app.command("contact-sheet")
@user_errors
def contact_sheet_cmd(
    dataset: Path = typer.Argument(..., help="Dataset folder."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    per_class: int = typer.Option(8, min=1, help="Images per class (one row per class)."),
    thumb: int = typer.Option(160, min=16, help="Thumbnail width in pixels."),
    split: str = typer.Option("", help="Only this split (train, val or test)."),
    seed: int = typer.Option(0, help="Which examples to pick."),
    outline: bool = typer.Option(False, "--outline", help="Draw defect mask outlines in red."),
) -> None:
    """Write a PNG grid with a row of example images per class."""
    from datasets.contact_sheet import contact_sheet
    from datasets.layout import Dataset

    path = contact_sheet(Dataset.load(dataset), out, per_class=per_class, thumb=thumb, split=split or None,
                         seed=seed, outline=outline)
    console.print(f"wrote {path}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(dataset_app, name="dataset")
