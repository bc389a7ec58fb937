"""`manage.py check --deploy` names what to fix, one warning each."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from realtime.checks import realtime_deploy_checks

SAFE = {
    "DEBUG": False,
    "SECRET_KEY": "x" * 64,
    "ALLOWED_HOSTS": ["paychain.example"],
    "CORS_ALLOW_ALL_ORIGINS": False,
}


@pytest.fixture
def safe(settings):
    for name, value in SAFE.items():
        setattr(settings, name, value)
    settings.REALTIME = {
        **settings.REALTIME,
        "BROADCAST_API_KEYS": ["k"],
        "ALLOW_ANONYMOUS": False,
    }
    return settings


def ids(settings) -> dict[str, str]:
    return {w.id: w.hint for w in realtime_deploy_checks()}


def test_a_safe_configuration_has_no_realtime_warnings(safe):
    assert ids(safe) == {}


@pytest.mark.parametrize(
    ("change", "warning", "variable"),
    [
        ({"DEBUG": True}, "realtime.W001", "DJANGO_DEBUG"),
        ({"SECRET_KEY": None}, "realtime.W002", "DJANGO_SECRET_KEY"),
        ({"REALTIME.BROADCAST_API_KEYS": []}, "realtime.W003", "BROADCAST_API_KEYS"),
        ({"REALTIME.ALLOW_ANONYMOUS": True}, "realtime.W004", "REALTIME_ALLOW_ANONYMOUS"),
        ({"ALLOWED_HOSTS": ["*"]}, "realtime.W005", "DJANGO_ALLOWED_HOSTS"),
        ({"CORS_ALLOW_ALL_ORIGINS": True}, "realtime.W006", "CORS_ALLOWED_ORIGINS"),
    ],
)
def test_each_unsafe_setting_is_its_own_warning_naming_the_variable(
    safe, change, warning, variable
):
    from paychain.settings import DEFAULT_SECRET_KEY

    for name, value in change.items():
        if name.startswith("REALTIME."):
            safe.REALTIME = {**safe.REALTIME, name.split(".", 1)[1]: value}
        else:
            setattr(safe, name, DEFAULT_SECRET_KEY if value is None else value)
    found = ids(safe)
    assert list(found) == [warning]
    assert variable in found[warning]


def test_check_deploy_reports_them(settings):
    settings.DEBUG = True
    with pytest.raises(SystemCheckError):
        call_command(
            "check", "--deploy", "--fail-level", "WARNING", stdout=StringIO(), stderr=StringIO()
        )
