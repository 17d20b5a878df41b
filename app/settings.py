"""Settings: one dataclass, read once from the environment.

Nothing else in the app reads ``os.environ``; ``create_app(settings)`` receives this
object and hands the parts each seam needs. Every field is documented in README.md
(``tests/test_settings.py`` fails when one is not).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

DEFAULT_DATABASE_URL = "sqlite:///./var/crm.sqlite3"
DEFAULT_MAIL_URL = "file://./var/mail"
VAR_DIR = Path("var")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, raw: str, minimum: int = 0) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def _networks(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks, normalized ("10.0.0.1" -> "10.0.0.1/32")."""
    networks = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            networks.append(str(ipaddress.ip_network(part.strip(), strict=False)))
        except ValueError:
            raise SettingsError(
                f"{name} must list IP addresses or networks like 10.0.0.0/8, got {part.strip()!r}"
            ) from None
    return tuple(networks)


def _secret_key_from_var(var_dir: Path) -> str:
    """The embedded default keeps a generated key in ./var so sessions survive restarts."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Created 0600 so other local users cannot read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


@dataclass(frozen=True)
class Settings:
    """Every knob of the app. Field names are the environment variables, lower-cased."""

    secret_key: str
    database_url: str = DEFAULT_DATABASE_URL
    database_pool_size: int = 10
    redis_url: str | None = None
    jobs_queue: str = "crm"
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "crm"
    s3_region: str = "us-east-1"
    s3_secure: bool = True
    storage_dir: str = "./var/storage"
    mail_url: str = DEFAULT_MAIL_URL
    mail_from: str = "CRM <no-reply@localhost>"
    app_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    cache_enabled: bool = True
    # Addresses or networks (CIDR) of proxies whose X-Forwarded-For is believed.
    trusted_proxies: tuple[str, ...] = ()
    audit_archive_after_days: int = 90
    audit_retention_days: int = 2555  # about 7 years; 0 keeps archives forever
    import_max_bytes: int = 536_870_912  # 512 MB per uploaded file
    import_chunk_rows: int = 5000  # rows per import transaction
    export_ttl_hours: int = 24  # exported files are deleted this long after they finish
    api_rate_limit: int = 120  # API requests a minute per token
    registration_limit: int = 10  # registrations an hour per client address
    # GET /metrics answers only with `Authorization: Bearer <this>`; unset: /metrics is a 404.
    metrics_token: str | None = None

    # Derived views: the seams ask these instead of re-parsing URLs.
    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def uses_s3(self) -> bool:
        return bool(self.s3_endpoint)

    @property
    def sqlite_path(self) -> str:
        if self.uses_postgres:
            raise SettingsError("sqlite_path asked of a PostgreSQL DATABASE_URL")
        return self.database_url.removeprefix("sqlite:///") or "crm.sqlite3"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, var_dir: Path = VAR_DIR
    ) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value not in (None, "") else None

        database_url = get("DATABASE_URL") or DEFAULT_DATABASE_URL
        if not database_url.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise SettingsError(
                f"DATABASE_URL must start with sqlite:/// or postgresql://, got {database_url!r}"
            )
        mail_url = get("MAIL_URL") or DEFAULT_MAIL_URL
        if not mail_url.startswith(("file://", "smtp://", "smtps://")):
            raise SettingsError(
                f"MAIL_URL must start with file://, smtp:// or smtps://, got {mail_url!r}"
            )
        redis_url = get("REDIS_URL")
        secret_key = get("SECRET_KEY")
        if secret_key is None:
            if redis_url:
                # Several processes share sessions through Redis: a per-machine key would
                # silently sign them out on every other host.
                raise SettingsError("SECRET_KEY is required when REDIS_URL is set")
            secret_key = _secret_key_from_var(var_dir)
        if len(secret_key) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters long")
        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        s3_endpoint = get("S3_ENDPOINT")
        if s3_endpoint and not (get("S3_ACCESS_KEY") and get("S3_SECRET_KEY")):
            raise SettingsError("S3_ENDPOINT is set: S3_ACCESS_KEY and S3_SECRET_KEY are needed")
        port = _int("PORT", get("PORT") or "8000", minimum=1)
        archive_after = _int(
            "AUDIT_ARCHIVE_AFTER_DAYS", get("AUDIT_ARCHIVE_AFTER_DAYS") or "90", minimum=1
        )
        retention = _int("AUDIT_RETENTION_DAYS", get("AUDIT_RETENTION_DAYS") or "2555")
        if 0 < retention < archive_after:
            raise SettingsError(
                "AUDIT_RETENTION_DAYS must be 0 (keep forever) or at least "
                f"AUDIT_ARCHIVE_AFTER_DAYS ({archive_after}), got {retention}"
            )
        metrics_token = get("METRICS_TOKEN") or None
        if metrics_token is not None and len(metrics_token) < 16:
            raise SettingsError("METRICS_TOKEN must be at least 16 characters long")
        return cls(
            secret_key=secret_key,
            database_url=database_url,
            database_pool_size=_int(
                "DATABASE_POOL_SIZE", get("DATABASE_POOL_SIZE") or "10", minimum=1
            ),
            redis_url=redis_url,
            jobs_queue=get("JOBS_QUEUE") or "crm",
            s3_endpoint=s3_endpoint,
            s3_access_key=get("S3_ACCESS_KEY"),
            s3_secret_key=get("S3_SECRET_KEY"),
            s3_bucket=get("S3_BUCKET") or "crm",
            s3_region=get("S3_REGION") or "us-east-1",
            s3_secure=_flag("S3_SECURE", get("S3_SECURE") or "true"),
            storage_dir=get("STORAGE_DIR") or "./var/storage",
            mail_url=mail_url,
            mail_from=get("MAIL_FROM") or "CRM <no-reply@localhost>",
            app_url=(get("APP_URL") or f"http://127.0.0.1:{port}").rstrip("/"),
            host=get("HOST") or "127.0.0.1",
            port=port,
            log_level=log_level,
            cache_enabled=_flag("CACHE_ENABLED", get("CACHE_ENABLED") or "true"),
            trusted_proxies=_networks("TRUSTED_PROXIES", get("TRUSTED_PROXIES") or ""),
            audit_archive_after_days=archive_after,
            audit_retention_days=retention,
            import_max_bytes=_int(
                "IMPORT_MAX_BYTES", get("IMPORT_MAX_BYTES") or "536870912", minimum=1
            ),
            import_chunk_rows=_int(
                "IMPORT_CHUNK_ROWS", get("IMPORT_CHUNK_ROWS") or "5000", minimum=1
            ),
            export_ttl_hours=_int("EXPORT_TTL_HOURS", get("EXPORT_TTL_HOURS") or "24", minimum=1),
            api_rate_limit=_int("API_RATE_LIMIT", get("API_RATE_LIMIT") or "120", minimum=1),
            registration_limit=_int(
                "REGISTRATION_LIMIT", get("REGISTRATION_LIMIT") or "10", minimum=1
            ),
            metrics_token=metrics_token,
        )


def environment_names() -> list[str]:
    """The environment variables Settings reads, for the README check."""
    return [f.name.upper() for f in fields(Settings)]
