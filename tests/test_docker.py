"""docker/ cannot be built here (no Docker engine), so its files are checked against the code:
every command names a module, attribute, queue or management command that exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
APP_SERVICES = {name: s for name, s in COMPOSE["services"].items() if "build" in s}


def _option(command: list[str], *names: str) -> str:
    for i, word in enumerate(command):
        if word in names:
            return command[i + 1]
    raise AssertionError(f"{names} missing from {command}")


def test_the_expected_services_exist():
    assert set(COMPOSE["services"]) == {
        "postgres",
        "redis",
        "migrate",
        "web",
        "worker-default",
        "worker-gpu",
        "beat",
    }
    assert set(APP_SERVICES) == {"migrate", "web", "worker-default", "worker-gpu", "beat"}


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_command_names_things_that_exist(name):
    command = APP_SERVICES[name]["command"]
    program = command[0]
    if program == "gunicorn":
        module, attr = command[1].split(":")
        assert callable(getattr(importlib.import_module(module), attr))
    elif program == "celery":
        app_module = _option(command, "-A", "--app")
        app = importlib.import_module(app_module).celery_app
        assert app.main == app_module
        if "beat" in command:
            # beat only sends: every task of its schedule must exist
            app.loader.import_default_modules()
            for entry in settings.CELERY_BEAT_SCHEDULE.values():
                assert entry["task"] in app.tasks, entry
            return
        assert "worker" in command
        configured = {q.name for q in settings.CELERY_TASK_QUEUES}
        queues = set(_option(command, "-Q", "--queues").split(","))
        assert queues and queues <= configured, queues - configured
    elif program == "python":
        assert command[1] == "manage.py" and (ROOT / "manage.py").is_file()
        assert command[2] in get_commands(), command[2]
    else:
        raise AssertionError(f"{name}: unknown program {program}")


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_environment_is_known(name):
    env = APP_SERVICES[name]["environment"]
    importlib.import_module(env["DJANGO_SETTINGS_MODULE"])
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    unknown = set(env) - listed - {"DJANGO_SETTINGS_MODULE"}
    assert not unknown, f"{name} sets variables no setting reads: {unknown}"
    assert env["DEBUG"] == "false"


def test_gpu_worker_reserves_a_gpu_and_takes_one_task_at_a_time():
    gpu = COMPOSE["services"]["worker-gpu"]
    command = gpu["command"]
    assert _option(command, "-Q", "--queues") == "gpu"
    assert _option(command, "--concurrency", "-c") == "1"
    assert _option(command, "--prefetch-multiplier") == "1"
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert gpu["build"]["args"]["TORCH_VARIANT"].startswith("cu")
    assert COMPOSE["services"]["worker-default"]["build"]["args"]["TORCH_VARIANT"] == "cpu"


def test_dockerfile_uses_its_build_argument_and_copies_what_exists():
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", DOCKERFILE, re.M)
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in DOCKERFILE
    pinned = re.search(r"^torch==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned and f'"torch=={pinned.group(1)}"' in DOCKERFILE
    for source in re.findall(r"^COPY (\S+) ", DOCKERFILE, re.M):
        assert (ROOT / source).exists(), source
    cmd = re.search(r'^CMD \["gunicorn", "([\w.]+):(\w+)"', DOCKERFILE, re.M)
    assert cmd and callable(getattr(importlib.import_module(cmd.group(1)), cmd.group(2)))


def test_migrate_runs_before_web_and_workers():
    for name in ("web", "worker-default", "worker-gpu"):
        depends = COMPOSE["services"][name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_a_gpu_worker_on_another_machine_shares_database_broker_and_store():
    other = yaml.safe_load((ROOT / "docker" / "compose.gpu-worker.yaml").read_text())
    [(name, worker)] = other["services"].items()
    command = worker["command"]
    assert command == COMPOSE["services"]["worker-gpu"]["command"]  # the same worker
    assert _option(command, "-Q", "--queues") == "gpu"
    env = worker["environment"]
    for required in ("SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "S3_BUCKET"):
        assert ":?" in env[required], required  # compose refuses to start without it
    assert env["STORAGE_BACKEND"] == "s3" and env["DEBUG"] == "false"
    listed = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert set(env) - listed - {"DJANGO_SETTINGS_MODULE"} == set()
    assert worker["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    importlib.import_module(env["DJANGO_SETTINGS_MODULE"])


def test_the_web_health_check_host_is_allowed_by_default():
    """The health check asks 127.0.0.1; with DEBUG off Django answers a host it does not allow
    with 400, and the container would be reported unhealthy."""
    web = COMPOSE["services"]["web"]
    check = " ".join(web["healthcheck"]["test"])
    assert "127.0.0.1" in check, check
    default = web["environment"]["ALLOWED_HOSTS"].split(":-", 1)[1].rstrip("}")
    assert "127.0.0.1" in default.split(","), default


def test_redis_evicts_only_keys_that_expire():
    """Under memory pressure Redis may drop cached API answers (they expire anyway), never the
    queue or the answers' table versions (no expiry): losing a version could serve a stale
    answer."""
    command = COMPOSE["services"]["redis"]["command"]
    assert _option(command, "--maxmemory-policy") == "volatile-lru"
    assert _option(command, "--appendonly") == "yes"
