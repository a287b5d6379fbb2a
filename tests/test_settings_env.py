"""Settings come from the environment through typed helpers that fail loudly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_path, env_str

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("yes", True), ("OFF", False), ("false", False), ("", True)]
)
def test_env_bool(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env_bool("X_FLAG", default=True) is expected


def test_env_bool_refuses_nonsense(monkeypatch):
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        env_bool("X_FLAG", default=False)


@pytest.mark.parametrize(
    ("raw", "expected"), [("42", 42), ("2K", 2048), ("3m", 3 * 1024**2), ("1G", 1024**3)]
)
def test_env_int_with_sizes(monkeypatch, raw, expected):
    monkeypatch.setenv("X_SIZE", raw)
    assert env_int("X_SIZE", 0) == expected


@pytest.mark.parametrize(
    ("raw", "message"), [("12x", "is not an integer"), ("-5", "below its minimum")]
)
def test_env_int_refuses(monkeypatch, raw, message):
    monkeypatch.setenv("X_SIZE", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_int("X_SIZE", 0, minimum=0)


def test_env_float(monkeypatch):
    monkeypatch.setenv("X_RATIO", "0.5")
    assert env_float("X_RATIO", 1.0) == 0.5
    monkeypatch.setenv("X_RATIO", "half")
    with pytest.raises(ImproperlyConfigured, match="X_RATIO='half' is not a number"):
        env_float("X_RATIO", 1.0)


def test_env_list_path_and_required(monkeypatch):
    monkeypatch.setenv("X_LIST", " a.org, ,b.org ")
    assert env_list("X_LIST", []) == ["a.org", "b.org"]
    monkeypatch.setenv("X_PATH", "relative/dir")
    with pytest.raises(ImproperlyConfigured, match="absolute path"):
        env_path("X_PATH", Path("/tmp"))
    monkeypatch.delenv("X_REQUIRED", raising=False)
    with pytest.raises(ImproperlyConfigured, match="X_REQUIRED is required"):
        env_str("X_REQUIRED")


def _settings_in_fresh_process(env: dict[str, str], expr: str) -> subprocess.CompletedProcess:
    code = f"import django; django.setup(); from django.conf import settings; print({expr})"
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY")
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )


def test_secret_key_is_required_without_debug():
    result = _settings_in_fresh_process({"DEBUG": "false"}, "settings.SECRET_KEY")
    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is off" in result.stderr


def test_bad_database_url_fails_loudly():
    result = _settings_in_fresh_process({"DATABASE_URL": "nosuchdb://x"}, "1")
    assert result.returncode != 0
    assert "DATABASE_URL cannot be read" in result.stderr


def test_embedded_defaults(tmp_path):
    result = _settings_in_fresh_process(
        {"VAR_DIR": str(tmp_path)},
        "settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL, "
        "settings.MEDIA_ROOT, settings.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in']",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://",
        str(tmp_path / "media"),
        str(tmp_path / "broker" / "queue"),
    ]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # generated, private


def test_env_example_lists_every_variable_the_settings_read():
    import re

    read = set()
    for path in (ROOT / "config").glob("*.py"):
        read |= set(
            re.findall(r'env_(?:str|bool|int|float|list|path)\(\s*"([A-Z0-9_]+)"', path.read_text())
        )
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read, "no settings found"
    assert read - listed == set(), "add these to .env.example"
    assert listed - read == set(), "these in .env.example are read by nothing"


def test_check_deploy_is_clean_with_production_like_settings(tmp_path):
    env = {
        "DEBUG": "false",
        "SECRET_KEY": "x7!" * 20 + "production-like-secret-key-for-the-check",
        "ALLOWED_HOSTS": "gaze.example.org",
        "CSRF_TRUSTED_ORIGINS": "https://gaze.example.org",
        "VAR_DIR": str(tmp_path),
    }
    # The browser tests' DJANGO_ALLOW_ASYNC_UNSAFE is no part of a deployment.
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE")
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"STORAGE_BACKEND": "s3"}, "STORAGE_BACKEND=s3 needs S3_BUCKET"),
        ({"STORAGE_BACKEND": "nfs"}, "STORAGE_BACKEND='nfs' is neither filesystem nor s3"),
        (
            {"STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "S3_ENDPOINT_URL": "minio:9000"},
            "S3_ENDPOINT_URL='minio:9000' is not an http(s) URL",
        ),
        (
            {"STORAGE_BACKEND": "s3", "S3_BUCKET": "b", "S3_ACCESS_KEY_ID": "k"},
            "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together",
        ),
    ],
)
def test_a_bad_storage_configuration_fails_loudly(tmp_path, env, message):
    result = _settings_in_fresh_process({"VAR_DIR": str(tmp_path), **env}, "1")
    assert result.returncode != 0
    assert message in result.stderr


def test_storage_backend_s3_switches_the_default_storage_only(tmp_path):
    env = {
        "VAR_DIR": str(tmp_path),
        "STORAGE_BACKEND": "S3",
        "S3_BUCKET": "cxr-files",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9",  # never reached: building a storage connects not
        "S3_REGION": "eu-central-1",
        "S3_ACCESS_KEY_ID": "key",
        "S3_SECRET_ACCESS_KEY": "secret",
        "S3_PREFIX": "/media/",
    }
    expr = (
        "__import__('json').dumps([settings.STORAGES['default'], "
        "settings.STORAGES['staticfiles']['BACKEND'], type(__import__("
        "'django.core.files.storage', fromlist=['storages']).storages['default']).__name__])"
    )
    result = _settings_in_fresh_process(env, expr)
    assert result.returncode == 0, result.stderr
    default, static, built = json.loads(result.stdout)
    assert default["BACKEND"] == "storages.backends.s3.S3Storage" and built == "S3Storage"
    assert static == "django.contrib.staticfiles.storage.StaticFilesStorage"
    options = default["OPTIONS"]
    assert {k: options[k] for k in ("bucket_name", "endpoint_url", "region_name", "location")} == {
        "bucket_name": "cxr-files",
        "endpoint_url": "http://127.0.0.1:9",
        "region_name": "eu-central-1",
        "location": "media",
    }
    assert options["file_overwrite"] is True and options["addressing_style"] == "path"
    assert (options["access_key"], options["secret_key"]) == ("key", "secret")
