"""``defectscope export BUNDLE [--int8 --data DATASET]``: a gated INT8 graph, and which backend is fastest here."""

from __future__ import annotations

from pathlib import Path

import typer

from defectscope.commands._common import console, fail, user_errors


@user_errors
def export_cmd(
    bundle: Path = typer.Argument(..., help="Model bundle folder (rewritten in place, atomically)."),
    int8: bool = typer.Option(False, "--int8", help="Quantize to INT8 (calibrated and gated on --data's val images)."),
    data: Path | None = typer.Option(None, help="The dataset the bundle was trained on (its val split)."),
    split: str = typer.Option("val", help="The split to calibrate and gate on."),
    max_images: int = typer.Option(500, min=20, help="At most this many images of the split."),
    threads: int | None = typer.Option(None, min=1, help="Inference threads to time with [default: all cores]."),
    measure: bool = typer.Option(True, help="Time every backend here and record the fastest for --backend auto."),
) -> None:
    """Write an INT8 model into BUNDLE if it agrees with the float one (>= 99.5 % of verdicts, no caught
    defect passed), and time the backends on this machine so that ``--backend auto`` picks the fastest.

    Run it on the inspection PC (or one with the same processor): the timings are recorded for it.
    """
    from inspection.bundle import load_bundle
    from training.backend_timing import line_input, record_backends

    b = load_bundle(bundle)
    if int8:
        if data is None:
            fail("--int8 needs --data: the dataset the bundle was trained on, to calibrate and check it")
        from training.quantize import quantize_bundle

        b, gate = quantize_bundle(bundle, data, split=split, max_images=max_images, threads=threads)
        console.print(f"[green]INT8 written[/] ({b.int8_path}): {gate.summary()}", highlight=False)
    if measure:
        b, rec = record_backends(b, threads, line_input(b, str(data)) if data is not None else None)
        h, w = rec["input"]
        console.print(f"batch 1 at {w}x{h} on {rec['processor']}:", highlight=False)
        for name, ms in sorted(rec["ms"].items(), key=lambda kv: kv[1]):
            console.print(f"  {name:10s} {ms:8.2f} ms" + ("  <- auto" if name == rec["fastest"] else ""),
                          highlight=False)
        for name, why in rec["failed"].items():
            console.print(f"  {name:10s} not usable: {why}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("export")(export_cmd)
