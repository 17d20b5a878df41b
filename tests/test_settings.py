"""Settings are read once from the environment, validated, and all documented."""

import re
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, environment_names

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_settings() -> set[str]:
    # Rows of the settings table: | `NAME` | default | meaning |
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README.read_text(), flags=re.MULTILINE))


def test_every_setting_is_documented_in_the_readme():
    missing = set(environment_names()) - documented_settings()
    assert not missing, f"add these settings to the README table: {sorted(missing)}"


def test_the_readme_documents_no_setting_that_does_not_exist():
    unknown = documented_settings() - set(environment_names())
    assert not unknown, f"the README documents settings the app does not read: {sorted(unknown)}"


def test_the_readme_opens_with_the_two_commands():
    text = README.read_text()
    first_block = text.split("```")[1]
    assert "make run" in first_block
    assert "make test" in first_block


def test_embedded_defaults(tmp_path: Path):
    settings = Settings.from_env({}, var_dir=tmp_path)
    assert settings.database_url == "sqlite:///./var/crm.sqlite3"
    assert not settings.uses_postgres
    assert not settings.uses_redis
    assert not settings.uses_s3
    assert settings.mail_url == "file://./var/mail"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.storage_dir == "./var/storage"


def test_generated_secret_key_is_kept_and_reused(tmp_path: Path):
    first = Settings.from_env({}, var_dir=tmp_path).secret_key
    second = Settings.from_env({}, var_dir=tmp_path).secret_key
    assert first == second
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_secret_key_is_required_with_redis(tmp_path: Path):
    with pytest.raises(SettingsError, match="SECRET_KEY is required"):
        Settings.from_env({"REDIS_URL": "redis://127.0.0.1:6379/0"}, var_dir=tmp_path)
    assert not (tmp_path / "secret_key").exists()


def test_full_stack_values_are_read(tmp_path: Path):
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://crm@db:5432/crm",
            "REDIS_URL": "redis://cache:6379/1",
            "SECRET_KEY": "k" * 40,
            "S3_ENDPOINT": "minio:9000",
            "S3_ACCESS_KEY": "a",
            "S3_SECRET_KEY": "b",
            "S3_SECURE": "false",
            "PORT": "9001",
            "LOG_LEVEL": "debug",
        },
        var_dir=tmp_path,
    )
    assert settings.uses_postgres
    assert settings.uses_redis
    assert settings.uses_s3
    assert settings.s3_secure is False
    assert settings.port == 9001
    assert settings.app_url == "http://127.0.0.1:9001"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with"),
        ({"MAIL_URL": "http://x"}, "MAIL_URL must start with"),
        ({"PORT": "eighty"}, "PORT must be a whole number"),
        ({"S3_SECURE": "maybe"}, "S3_SECURE must be true or false"),
        ({"S3_ENDPOINT": "minio:9000"}, "S3_ACCESS_KEY and S3_SECRET_KEY are needed"),
        ({"SECRET_KEY": "short"}, "at least 32 characters"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be one of"),
    ],
)
def test_bad_values_are_refused_with_the_variable_named(tmp_path: Path, env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env, var_dir=tmp_path)
