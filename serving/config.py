"""Service settings: environment (``DEFECTSCOPE_*``), an optional dotenv-style file, then overrides.

Read when ``load_settings`` is called, never at import time. Insecure setups are refused
unless auth is switched off on purpose (``DEFECTSCOPE_AUTH_DISABLED=1``, for local demos).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from inspection.errors import DefectscopeError

MIN_KEY_LENGTH = 16
# Placeholders copied from docs are the most common leaked "secret".
_PLACEHOLDER_KEYS = {"changethis", "changeme", "secret", "password", "station", "engineer"}
KEEP_CHOICES = ("fail", "review", "pass", "invalid")


class SettingsError(DefectscopeError):
    """The service settings are missing something or are unsafe."""


Keys = Annotated[list[SecretStr], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEFECTSCOPE_", extra="ignore", frozen=True)

    # model and runtime
    model: Path | None = Field(None, description="Model bundle folder to serve.")
    backend: str = Field("auto", description="onnx, torch or auto (ONNX Runtime when the bundle has it).")
    threads: int | None = Field(None, ge=1, description="Inference threads (default: all cores).")
    # network
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="Processes; each loads the model and batches on its own.")
    # micro-batching and load shedding
    max_batch_size: int = Field(8, ge=1, le=256)
    batch_wait_ms: float = Field(2.0, ge=0.0, le=1000.0, description="How long the first image waits for company.")
    max_queue: int = Field(32, ge=1, description="Images admitted at once; past it the answer is 503.")
    decode_threads: int = Field(2, ge=1, description="Threads decoding and preprocessing uploads.")
    retry_after_s: int = Field(1, ge=1, description="Retry-After seconds sent with a 503.")
    # input limits
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_batch_items: int = Field(32, ge=1)
    max_batch_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Whole /v1/inspect/batch body.")
    max_pixels: int = Field(64_000_000, ge=1)
    # verdict log
    verdict_db: Path | None = Field(Path("defectscope-verdicts.sqlite"),
                                    description="SQLite verdict log; empty switches it off.")
    keep_images_dir: Path | None = Field(None, description="Keep the images of these verdicts here for QA.")
    keep_images_for: Annotated[tuple[str, ...], NoDecode] = ("fail", "review", "invalid")
    # auth
    auth_disabled: bool = False
    station_keys: Keys = Field(default_factory=list, description="Comma-separated keys that may inspect.")
    engineer_keys: Keys = Field(default_factory=list, description="Comma-separated keys that may do everything.")
    # model registry and sample intake (issue 7)
    registry: Path | None = Field(None, description="Model registry folder; its champion for `line` is served.")
    line: str = Field("default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
                      description="Line or product whose champion this service runs.")
    registry_watch_s: float | None = Field(None, gt=0, description="Poll the registry this often and load a "
                                           "new champion by itself; unset: only POST /v1/model/reload.")
    samples_dir: Path | None = Field(None, description="Dataset folder new labelled samples go to; "
                                     "default: defectscope-samples next to the verdict log.")
    # line monitoring (issue 8): SPC alarms per station and model version
    alarm_db: Path | None = Field(None, description="SQLite alarm log; default: defectscope-alarms.sqlite next to "
                                  "the verdict log (none when the verdict log is off).")
    alarm_webhook: str | None = Field(None, pattern=r"^https?://\S+$",
                                      description="POST each alarm raise/clear as JSON to this URL.")
    alarm_webhook_timeout_s: float = Field(3.0, gt=0, le=60)
    spc_baseline: int = Field(500, ge=20, description="Parts per station whose fail rate sets the control limits.")
    spc_window: int = Field(50, ge=5, description="Parts per p-chart point.")
    spc_false_alarms_per_10k: float = Field(1.0, gt=0, le=1000, description="Fault-free alarms the limits allow "
                                            "per 10,000 parts.")
    # lifecycle
    stop_after_s: float | None = Field(None, gt=0, description="Stop by itself after this many seconds (CI).")

    @field_validator("verdict_db", "keep_images_dir", "model", "registry", "samples_dir", "alarm_db", "alarm_webhook",
                     mode="before")
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if isinstance(v, str) and not v.strip() else v  # DEFECTSCOPE_VERDICT_DB= switches the log off

    @field_validator("station_keys", "engineer_keys", mode="before")
    @classmethod
    def _split_keys(cls, v: Any) -> Any:
        return [k.strip() for k in v.split(",") if k.strip()] if isinstance(v, str) else v

    @field_validator("keep_images_for", mode="before")
    @classmethod
    def _split_keep(cls, v: Any) -> Any:
        items = [k.strip().lower() for k in v.split(",") if k.strip()] if isinstance(v, str) else list(v)
        bad = [k for k in items if k not in KEEP_CHOICES]
        if bad:
            raise ValueError(f"keep_images_for takes {', '.join(KEEP_CHOICES)}, not {bad}")
        return tuple(items)

    @model_validator(mode="after")
    def _refuse_insecure(self) -> Settings:
        if self.auth_disabled:
            return self
        keys = [k.get_secret_value() for k in (*self.station_keys, *self.engineer_keys)]
        if not keys:
            raise ValueError(
                "no API keys configured: set DEFECTSCOPE_STATION_KEYS and DEFECTSCOPE_ENGINEER_KEYS "
                "(comma-separated, at least 16 characters each), or set DEFECTSCOPE_AUTH_DISABLED=1 "
                "for a local demo"
            )
        for k in keys:
            if len(k) < MIN_KEY_LENGTH or k.lower() in _PLACEHOLDER_KEYS:
                raise ValueError(
                    f"an API key is too short or a placeholder: use at least {MIN_KEY_LENGTH} random "
                    "characters (python -c 'import secrets; print(secrets.token_urlsafe(24))')"
                )
        if len(set(keys)) != len(keys):
            raise ValueError("the same API key is listed twice (or as both station and engineer key)")
        return self


def load_settings(settings_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from non-None ``overrides`` (the CLI), else the environment, else ``settings_file``.

    ``settings_file`` holds dotenv lines ``DEFECTSCOPE_X=...``; the environment wins over it.

    Raises SettingsError with pydantic's reasons in one readable message.
    """
    if settings_file is not None and not Path(settings_file).is_file():
        raise SettingsError(f"settings file {settings_file} does not exist")
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(_env_file=settings_file, **given)  # type: ignore[call-arg]
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise SettingsError(f"invalid service settings: {reasons}") from None
