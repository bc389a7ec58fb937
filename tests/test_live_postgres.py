"""The marketplace on its production database: PostgreSQL (and SQLite, the
embedded default, beside it), under the production command, two server
processes on one database as compose runs them."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from .live import PRODUCTION_COMMAND, LiveServer, on_both_databases

pytestmark = pytest.mark.live

PASSWORD = "a-long-passphrase-9"
PRODUCTION = {"command": PRODUCTION_COMMAND, "DJANGO_DEBUG": "false", "BROADCAST_API_KEYS": "svc"}


def sign_up(server: LiveServer, user_type: str) -> tuple[int, str]:
    """A new user on the live server; returns (id, access token)."""
    credentials = {"username": f"u{uuid.uuid4().hex[:10]}", "password": PASSWORD}
    created = server.post("/api/auth/register/", json={**credentials, "user_type": user_type})
    assert created.status_code == 201, created.text
    access = server.post("/api/auth/token/", json=credentials).json()["access"]
    return created.json()["id"], access


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


def post_job(server: LiveServer, access: str) -> int:
    created = server.post(
        "/api/jobs/",
        json={"title": "Race me", "job_type": "development", "pay_amount_usd": "100"},
        headers=bearer(access),
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def accept_at_once(
    servers: tuple[LiveServer, LiveServer], job_id: int, tokens: tuple[str, str]
) -> list[int]:
    """Both workers accept the job at the same moment, each through its own
    server process; returns their status codes in the workers' order."""
    async with httpx.AsyncClient(timeout=15) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"{server.url}/api/jobs/{job_id}/accept/", headers=bearer(token))
                for server, token in zip(servers, tokens, strict=True)
            )
        )
    return [response.status_code for response in responses]


@on_both_databases
async def test_two_workers_accepting_one_job_at_once_one_gets_200_the_other_409(daphne_factory):
    first, second = daphne_factory(**PRODUCTION), daphne_factory(**PRODUCTION)
    _, employer = sign_up(first, "employer")
    workers = (sign_up(first, "worker"), sign_up(second, "worker"))
    tokens = (workers[0][1], workers[1][1])
    for _ in range(5):
        job_id = post_job(first, employer)
        codes = await accept_at_once((first, second), job_id, tokens)
        assert sorted(codes) == [200, 409], codes
        winner_id, winner_token = workers[codes.index(200)]
        job = first.get(f"/api/jobs/{job_id}/", headers=bearer(winner_token)).json()
        assert (job["status"], job["worker"]) == ("accepted", winner_id)
