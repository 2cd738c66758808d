"""``defectscope serve --model BUNDLE``: the inspection service (FastAPI + uvicorn)."""

from __future__ import annotations

from pathlib import Path

import typer

from defectscope.commands._common import err_console, user_errors


@user_errors
def serve_cmd(
    model: Path | None = typer.Option(None, "--model", "-m", help="Model bundle folder (or DEFECTSCOPE_MODEL)."),
    host: str | None = typer.Option(None, help="Address to listen on [default: 127.0.0.1]."),
    port: int | None = typer.Option(None, help="Port [default: 8000]."),
    workers: int | None = typer.Option(None, min=1, help="Processes, each with its own model [default: 1]."),
    backend: str | None = typer.Option(None, help="auto, onnx, onnx-int8, openvino or torch [default: auto]."),
    threads: int | None = typer.Option(None, min=1, help="Inference threads [default: all cores]."),
    settings_file: Path | None = typer.Option(None, "--settings", help="dotenv file of DEFECTSCOPE_* settings."),
    verdict_db: Path | None = typer.Option(None, help="SQLite verdict log [default: defectscope-verdicts.sqlite]."),
    keep_images: Path | None = typer.Option(None, help="Keep images of fail/review verdicts in this folder."),
    max_batch_size: int | None = typer.Option(None, min=1, help="Images per micro-batch [default: 8]."),
    batch_wait_ms: float | None = typer.Option(None, min=0, help="Micro-batch wait window [default: 2]."),
    max_queue: int | None = typer.Option(None, min=1, help="Images in flight before 503 [default: 32]."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Turn API keys off (local demos only)."),
    stop_after: float | None = typer.Option(None, help="Stop by itself after this many seconds."),
    registry: Path | None = typer.Option(None, help="Model registry: serve the champion of --line (no --model)."),
    line: str | None = typer.Option(None, help="Line whose champion to serve [default: default]."),
    watch: float | None = typer.Option(None, min=0.1, help="Poll the registry every N s; load a new champion."),
    samples_dir: Path | None = typer.Option(None, help="Where POST /v1/samples stores labelled images."),
) -> None:
    """Serve verdicts over HTTP: POST an image to /v1/inspect, get pass / fail / review.

    Every setting can also come from the environment (DEFECTSCOPE_PORT, DEFECTSCOPE_STATION_KEYS,
    ...) or a --settings file; options given here win. API keys are required unless --no-auth.
    """
    import logging

    from serving.config import load_settings
    from serving.server import run_server
    from serving.service import load_predictor

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(
        settings_file, model=model, host=host, port=port, workers=workers, backend=backend, threads=threads,
        verdict_db=verdict_db,
        keep_images_dir=keep_images, max_batch_size=max_batch_size, batch_wait_ms=batch_wait_ms,
        max_queue=max_queue, auth_disabled=True if no_auth else None, stop_after_s=stop_after,
        registry=registry, line=line, registry_watch_s=watch, samples_dir=samples_dir,
    )
    if settings.auth_disabled:
        err_console.print("[bold yellow]WARNING: authentication is OFF - anyone who can reach "
                          f"{settings.host}:{settings.port} may use the API. For local demos only.[/]")
    predictor = None
    if settings.workers == 1:  # load here so a bad bundle is one clear line, before the port opens
        predictor = load_predictor(settings)
    elif settings.model is None and settings.registry is None:
        load_predictor(settings)  # raises the "no model given" error
    what = settings.model or f"the champion of line {settings.line!r} in {settings.registry}"
    err_console.print(f"serving {what} on http://{settings.host}:{settings.port}  "
                      f"(docs: /docs, metrics: /metrics)", highlight=False)
    try:
        run_server(settings, predictor)
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its graceful shutdown: that is a clean stop
        err_console.print("service stopped")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_cmd)
