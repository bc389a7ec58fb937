"""The dashboard page at `/` and the `GET /api/auth/me/` it signs in with
(the page itself runs in tests/test_dashboard_browser.py)."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

from jobs.dashboard import CLIENT_MODULE

from .factories import make_employer, make_superuser
from .test_jobs_api import client_for

pytestmark = pytest.mark.django_db


def test_the_dashboard_is_served_at_the_root_with_no_inline_script(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts == ['<script type="module" src="/static/jobs/dashboard/main.js">']
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert 'data-client-module="/static/paychain-realtime/index.js"' in page


def test_the_javascript_client_is_served_from_its_package_source():
    found = finders.find(CLIENT_MODULE)
    assert found is not None
    assert found.replace("\\", "/").endswith("clients/js/src/index.js")
    assert finders.find("jobs/dashboard/main.js") is not None


def test_me_tells_the_signed_in_user_their_id_type_and_staff_flag():
    employer = make_employer()
    assert client_for(employer).get("/api/auth/me/").json() == {
        "id": employer.pk,
        "username": employer.username,
        "user_type": "employer",
        "is_staff": False,
    }
    assert client_for(make_superuser()).get("/api/auth/me/").json()["is_staff"] is True


def test_me_needs_a_token():
    assert APIClient().get("/api/auth/me/").status_code == 401
