"""A deploy that works as written: the refusal to start without secrets, the
deployment checks, static files under the production servers, and the
Docker image and compose file as the README's production section tells them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .live import ROOT, TEST_SECRET_KEY, base_env, free_port

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": TEST_SECRET_KEY,
    "BROADCAST_API_KEYS": "svc",
}
LAUNCHER = [sys.executable, "-m", "paychain.serve", "--host", "127.0.0.1"]
MANAGE = [sys.executable, "manage.py"]


def run(command: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=ROOT,
        env=base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- Refusal to start -------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "missing"),
    [("launcher", "DJANGO_SECRET_KEY"), ("manage", "BROADCAST_API_KEYS")],
)
def test_with_debug_off_a_process_refuses_to_start_without_a_secret_naming_it(
    tmp_path, missing, command
):
    env = {name: value for name, value in PRODUCTION_ENV.items() if name != missing}
    argv = [*LAUNCHER, "--port", str(free_port())] if command == "launcher" else [*MANAGE, "check"]
    finished = run(argv, tmp_path, **env)
    assert finished.returncode != 0
    last_line = finished.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line
    assert missing in last_line
    assert "refusing to start" in last_line
    others = set(PRODUCTION_ENV) - {missing, "DJANGO_DEBUG"}
    assert not any(name in last_line for name in others)


def test_the_embedded_default_is_debug_on_and_sqlite_and_needs_no_secret():
    """What bin/serve runs when nothing is set."""
    code = (
        "from django.conf import settings; "
        "print(settings.DEBUG, settings.DATABASES['default']['ENGINE'], "
        "settings.DATABASES['default']['OPTIONS'])"
    )
    finished = subprocess.run(
        [*MANAGE, "shell", "--no-imports", "-c", code],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    debug, engine, options = finished.stdout.strip().split(" ", 2)
    assert (debug, engine) == ("True", "django.db.backends.sqlite3")
    # Writers queue for the lock rather than fail with "database is locked".
    assert "'transaction_mode': 'IMMEDIATE'" in options
    assert "journal_mode=WAL" in options


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    """What .ci/run runs: Django's deployment checks and ours, warnings fatal;
    with DEBUG off and both secrets set, nothing refuses to start."""
    finished = run(
        [*MANAGE, "check", "--deploy", "--fail-level", "WARNING"],
        tmp_path,
        **PRODUCTION_ENV,
        DJANGO_SECURE_HTTPS="true",
        DJANGO_ALLOWED_HOSTS="paychain.example.com",
        CORS_ALLOWED_ORIGINS="https://paychain.example.com",
        REALTIME_ALLOW_ANONYMOUS="false",
    )
    assert finished.returncode == 0, finished.stderr


# --- Static files under the production servers -----------------------------------


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static files, collected once as the README's production section says."""
    root = tmp_path_factory.mktemp("static")
    subprocess.run(
        [*MANAGE, "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=base_env(DJANGO_STATIC_ROOT=str(root)),
        check=True,
        timeout=120,
    )
    return root


@pytest.mark.live
def test_the_admin_is_styled_with_debug_off_after_collectstatic(server_factory, static_root):
    server = server_factory(**PRODUCTION_ENV, DJANGO_STATIC_ROOT=str(static_root))
    login = server.get("/admin/login/")
    assert login.status_code == 200
    assert "/static/admin/css/base.css" in login.text
    css = server.get("/static/admin/css/base.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.content == (static_root / "admin/css/base.css").read_bytes()
    gzipped = server.get("/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers.get("content-encoding") == "gzip"
    assert server.get("/static/admin/css/no-such-file.css").status_code == 404


# --- The Docker image and compose -----------------------------------------------


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


APP_SERVICES = ["migrate", "web", "expiry"]


def test_compose_runs_postgres_redis_two_server_processes_and_the_expiry_loop():
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "web", "expiry"} <= set(services)
    web = services["web"]["command"]
    assert web[:3] == ["python", "-m", "paychain.serve"]
    assert web[web.index("--workers") + 1] == "2"
    assert "refund_expired_jobs" in services["expiry"]["command"]
    assert "migrate" in " ".join(services["migrate"]["command"])
    for name in ["web", "expiry"]:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_compose_gives_every_app_service_the_env_file_debug_off_and_postgres():
    services = compose()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["env_file"] == ".env"
        environment = service["environment"]
        assert environment["DJANGO_DEBUG"] == "${DJANGO_DEBUG:-false}"
        assert "@postgres:5432/" in environment["DATABASE_URL"]
        assert "sqlite" not in str(service)
        assert "redis://redis:6379" in environment["REDIS_URL"]
        assert "volumes" not in service  # no shared SQLite file


def test_compose_seeds_demo_data_only_with_seed_demo_true():
    for name, service in compose()["services"].items():
        command = service.get("command", [])
        text = command if isinstance(command, str) else " ".join(command)
        if "seed_demo" in text:
            assert re.search(r'if \[ "\$\$SEED_DEMO" = "true" \]; then [^;]*seed_demo', text), name


def test_compose_checks_the_health_of_every_long_running_service():
    services = compose()["services"]
    tests = {
        name: " ".join(service["healthcheck"]["test"])
        for name, service in services.items()
        if "healthcheck" in service
    }
    assert "pg_isready" in tests["postgres"]
    assert "redis-cli ping" in tests["redis"]
    assert "http://127.0.0.1:8000/health" in tests["web"]
    assert "expiry" not in tests  # no port to ask
    assert "migrate" not in tests


def test_env_example_documents_every_variable_the_settings_read():
    settings_source = (ROOT / "paychain/settings.py").read_text()
    reader = r'(?:env_\w+|os\.environ\.get|os\.getenv)\(\s*"([A-Z][A-Z0-9_]+)"'
    read = set(re.findall(reader, settings_source))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert read, "no variable found in paychain/settings.py"
    assert sorted(read - documented) == []


def test_the_image_collects_static_files_and_runs_as_an_unprivileged_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1] not in {"root", "0"}
    collect = next(i for i, line in enumerate(lines) if "collectstatic" in line)
    assert collect < lines.index(f"USER {users[-1]}")
    assert "DJANGO_DEBUG=false" in dockerfile
    assert '"paychain.serve"' in lines[-1]


def test_the_readme_production_section_lists_every_step_and_the_server():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## In production", 1)[1].split("\n## ", 1)[0]
    steps = [
        "manage.py migrate",
        "manage.py collectstatic",
        "manage.py createsuperuser",
        "-m paychain.serve --host",
        "docker compose up",
    ]
    positions = [section.index(step) for step in steps]
    assert positions == sorted(positions)
    assert "uvicorn" in section
    for path in ["docker-compose.yml", "Dockerfile"]:
        assert "daphne" not in (ROOT / path).read_text().lower(), path
