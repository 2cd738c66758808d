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
    src: Path = typer.Argument(..., help="Folder of class subfolders (SRC/<label>/*.jpg), a CSV of path,label[,split,"
                               "mask,...], or (with --annotations) the folder of annotated images."),
    out: Path = typer.Option(..., "--out", "-o", help="Dataset folder to create."),
    pass_class: list[str] = typer.Option(None, "--pass-class", help="Label that counts as pass (default: good)."),
    masks: Path | None = typer.Option(None, "--masks", help="Folder of defect masks mirroring the class folders "
                                      "(MASKS/<label>/<stem>.png); a masks/ folder beside them is found by itself."),
    meta: Path | None = typer.Option(None, "--meta", help="CSV whose extra columns (part, lot, ...) are added to "
                                     "the images it names (matched on path)."),
    annotations: Path | None = typer.Option(None, "--annotations", help="COCO JSON file, VOC XML folder or YOLO "
                                            "label folder for the images in SRC."),
    ann_format: str | None = typer.Option(None, "--format", help="coco, voc or yolo (default: told by the "
                                          "annotations: a .json file, a folder of .xml or of .txt)."),
    classes: Path | None = typer.Option(None, "--classes", help="YOLO class names: classes.txt or data.yaml."),
    good_label: str = typer.Option("good", "--good-label", help="Label of annotated images without annotations."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave out images whose mask or annotations are bad "
                                  "(listed) instead of importing nothing."),
    force: bool = typer.Option(False, "--force", help="Replace OUT if it exists."),
) -> None:
    """Copy images into the dataset layout with a manifest (masks and extra columns too); undecodable files are
    listed and left out, labelling problems listed and nothing imported."""
    from rich.markup import escape

    from datasets.importer import import_dataset

    result = import_dataset(src, out, pass_classes=pass_class or None, overwrite=force, masks=masks, meta=meta,
                            annotations=annotations, ann_format=ann_format, classes_file=classes,
                            good_label=good_label, skip_bad=skip_bad)
    for path, reason in result.skipped:
        err_console.print(f"[yellow]skipped[/] {escape(path)}: {escape(reason)}", highlight=False)
    ds = result.dataset
    counts = ", ".join(f"{k}={v}" for k, v in sorted(ds.class_counts().items()))
    columns = sorted({k for s in ds.samples for k in s.extra} - {"classes"})
    console.print(f"imported {len(ds.samples)} images into {ds.root} ({counts}), {result.masks} with a defect mask"
                  + (f", columns {', '.join(columns)}" if columns else "")
                  + f"; {len(result.skipped)} skipped. Next: defectscope dataset split {ds.root}"
                  + (f" --group-by {columns[0]}" if columns else ""), highlight=False)


@dataset_app.command("split")
@user_errors
def split_cmd(
    dataset: Path = typer.Argument(..., help="Dataset folder."),
    fractions: str = typer.Option("0.7,0.15,0.15", "--fractions", help="train,val,test shares of the images "
                                  "being assigned (those without a split)."),
    reassign: bool = typer.Option(False, "--reassign", help="Redo every assignment (moves images between splits)."),
    group_by: str = typer.Option("", "--group-by", help="Keep together every image with the same value of this "
                                 "manifest column (part, lot, camera...), or regex:PATTERN on the file name."),
    val_from_train: float = typer.Option(0.0, "--val-from-train", min=0, max=0.9, help="Move this share of the "
                                         "train split to val (test untouched); nothing else changes."),
    folds: int = typer.Option(0, "--folds", min=0, help="Assign K cross-validation folds (the fold column) "
                              "instead of splits; use them with 'train --fold I'."),
) -> None:
    """Assign train/val/test (or K folds), stratified by label and grouped; images that have a split keep it."""
    from datasets.folds import assign_folds
    from datasets.groups import remembered_group_by
    from datasets.layout import SPLITS, Dataset, DatasetInfo
    from datasets.split import assign_splits, carve_val, parse_fractions

    ds = Dataset.load(dataset)
    group = group_by or remembered_group_by(ds)
    before = {s.path: (s.split, s.fold) for s in ds.samples}
    if folds:
        samples = assign_folds(ds.samples, folds, group_by=group)
    elif val_from_train:
        samples = carve_val(ds.samples, val_from_train, group_by=group)
    else:
        samples = assign_splits(ds.samples, parse_fractions(fractions), reassign=reassign, group_by=group)
    extra = {**ds.info.extra, **({"group_by": group} if group else {})}
    ds = Dataset(ds.root, DatasetInfo(ds.info.classes, ds.info.pass_classes, extra), samples)
    ds.save()
    moved = sum(1 for s in ds.samples if before[s.path] != (s.split, s.fold))
    grouped = f", grouped by {group}" if group else ""
    if folds:
        per = ", ".join(f"fold {f}={sum(s.fold == str(f) for s in ds.samples)}" for f in range(folds))
        console.print(f"{moved} images assigned{grouped}; {per}. Next: defectscope train --data {ds.root} --fold 0",
                      highlight=False)
        return
    per = ", ".join(f"{sp}={len(ds.split(sp))}" for sp in SPLITS)
    console.print(f"{moved} images assigned{grouped}; {per}", highlight=False)


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
