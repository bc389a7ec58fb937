"""The dashboard at `/` in a real headless Chromium (Debian's, driven by
Playwright) against the production server: sign in, live status, the feed
and the job list as employers, workers and staff use them, a server restart,
and a title full of markup."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import IN_CI
from .live import PRODUCTION_COMMAND, ROOT, LiveServer

pytestmark = pytest.mark.live

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PASSWORD = "a-long-passphrase-9"
CONNECTED = "🟢 Connected"
DISCONNECTED = "🔴 Disconnected"
# `PAYCHAIN_DASHBOARD_SCREENSHOT=docs/dashboard.png bin/test tests/test_dashboard_browser.py`
# refreshes the README's screenshot.
SCREENSHOT = os.environ.get("PAYCHAIN_DASHBOARD_SCREENSHOT", "")

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - requirements-dev.txt installs it
    sync_playwright = None


@dataclass
class Account:
    username: str
    user_type: str
    staff: bool = False
    id: int = 0


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Per test: Playwright's sync API runs an event loop in this thread until
    it stops, and the suite's teardown needs the thread free of one."""
    if sync_playwright is None or CHROMIUM is None:
        missing = "playwright" if sync_playwright is None else "Chromium"
        if IN_CI:
            pytest.fail(f"CI=true and {missing} is not installed (.ci/run installs both)")
        pytest.skip(f"{missing} is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        browser.close()


@pytest.fixture
def production(daphne_factory: Callable[..., LiveServer]) -> Callable[..., LiveServer]:
    """The production launcher (uvicorn), sharing one database and Redis
    namespace with every other server of the test; sign-in not throttled."""

    def start() -> LiveServer:
        return daphne_factory(command=PRODUCTION_COMMAND, THROTTLE_LOGIN_RATE="1000/min")

    return start


def create_accounts(server: LiveServer, *accounts: Account) -> None:
    """Users in the server's database (staff cannot register over the API)."""
    script = (
        "import json, sys\n"
        "from jobs.models import User\n"
        "for name, kind, staff in json.loads(sys.argv[1]):\n"
        "    user = User(username=name, user_type=kind, is_staff=staff)\n"
        f"    user.set_password({PASSWORD!r})\n"
        "    user.save()\n"
        "    print(user.pk)\n"
    )
    spec = json.dumps([[a.username, a.user_type, a.staff] for a in accounts])
    done = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{script}", spec],
        cwd=ROOT,
        env={**server.env, "DJANGO_SETTINGS_MODULE": "paychain.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    for account, pk in zip(accounts, done.stdout.split(), strict=True):
        account.id = int(pk)


def account(user_type: str, *, staff: bool = False) -> Account:
    return Account(f"{user_type[:3]}{uuid.uuid4().hex[:8]}", user_type, staff)


def token(server: LiveServer, who: Account) -> str:
    answer = server.post("/api/auth/token/", json={"username": who.username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["access"]


def post_job(server: LiveServer, employer: Account, title: str) -> dict:
    answer = server.post(
        "/api/jobs/",
        headers={"Authorization": f"Bearer {token(server, employer)}"},
        json={"title": title, "job_type": "development", "pay_amount_usd": "1250.00"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def open_dashboard(browser: Browser, server: LiveServer, who: Account) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server.url + "/")
    expect(page.locator("#status")).to_have_text(DISCONNECTED)
    page.fill("input[name=username]", who.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#status")).to_have_text(CONNECTED, timeout=10_000)
    expect(page.locator("#who")).to_contain_text(who.user_type)
    assert errors == []
    return page


def feed(page: Page):
    return page.locator("#feed li")


def row(page: Page, title: str):
    return page.locator("#job-list tr", has_text=title)


def test_signing_in_turns_the_status_green_and_a_posted_job_reaches_the_feed_within_2_s(
    browser, production
):
    server = production()
    employer, worker = account("employer"), account("worker")
    create_accounts(server, employer, worker)
    page = open_dashboard(browser, server, worker)
    assert page.locator("#staff-panel").is_hidden()
    assert page.locator("#post-job").is_hidden()

    post_job(server, employer, "Full Stack Developer")

    expect(feed(page).first).to_contain_text("💼", timeout=2000)
    expect(feed(page).first).to_contain_text("New job: Full Stack Developer", timeout=2000)
    expect(page.locator("#toasts")).to_contain_text("New job: Full Stack Developer")
    expect(page.locator("#job-list")).to_contain_text("Full Stack Developer")

    page.click("#sign-out")
    expect(page.locator("#status")).to_have_text(DISCONNECTED)
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#feed li")).to_have_count(0)


def test_an_employer_posts_and_completes_and_a_worker_accepts_each_told_in_their_words(
    browser, production
):
    server = production()
    employer, worker = account("employer"), account("worker")
    create_accounts(server, employer, worker)
    boss = open_dashboard(browser, server, employer)
    hand = open_dashboard(browser, server, worker)

    boss.fill("#post-job input[name=title]", "Logo design")
    boss.select_option("#post-job select[name=job_type]", "design")
    boss.fill("#post-job input[name=pay_amount_usd]", "300")
    boss.click("#post-job button[type=submit]")
    expect(feed(boss).first).to_contain_text("Your job “Logo design” was posted ($300)")
    expect(feed(hand).first).to_contain_text("New job: Logo design ($300)")

    row(hand, "Logo design").locator("button[data-action=accept]").click()
    expect(feed(boss).first).to_contain_text("🎉")
    expect(feed(boss).first).to_contain_text("Your job “Logo design” was accepted")
    expect(boss.locator("#toasts")).to_contain_text("Your job “Logo design” was accepted")
    expect(feed(hand).first).to_contain_text("You accepted “Logo design”")

    row(boss, "Logo design").locator("button[data-action=complete]").click()
    expect(feed(boss).first).to_contain_text("🎊")
    expect(feed(boss).first).to_contain_text("Your job “Logo design” was completed")
    expect(feed(hand).first).to_contain_text("💰")
    expect(feed(hand).first).to_contain_text("Payment released: you earned $300")
    expect(row(hand, "Logo design")).to_contain_text("completed")
    # One publication reaches `jobs` and the personal channel: shown once.
    expect(feed(boss).filter(has_text="was completed")).to_have_count(1)


def test_a_server_restart_goes_red_then_green_and_shows_what_was_published_meanwhile(
    browser, production
):
    server, other = production(), production()
    employer, worker = account("employer"), account("worker")
    create_accounts(server, employer, worker)
    page = open_dashboard(browser, server, worker)

    server.stop()
    expect(page.locator("#status")).to_have_text(DISCONNECTED, timeout=10_000)
    post_job(other, employer, "Posted while the server was down")
    server.start()

    expect(page.locator("#status")).to_have_text(CONNECTED, timeout=30_000)
    expect(feed(page).first).to_contain_text("New job: Posted while the server was down")
    expect(feed(page).filter(has_text="Posted while the server was down")).to_have_count(1)


def test_a_title_full_of_markup_shows_as_text_and_runs_nothing(browser, production):
    server = production()
    employer, worker = account("employer"), account("worker")
    create_accounts(server, employer, worker)
    page = open_dashboard(browser, server, worker)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    title = "<img src=x onerror=alert(1)>"

    post_job(server, employer, title)

    expect(feed(page).first).to_contain_text(f"New job: {title}")
    expect(page.locator("#job-list td.title span").first).to_have_text(title)
    expect(page.locator("#toasts")).to_contain_text(title)
    assert page.locator("#app img").count() == 0
    assert dialogs == []


def test_staff_see_connections_and_rates_and_can_broadcast(browser, production, tmp_path: Path):
    server = production()
    staff, worker = account("employer", staff=True), account("worker")
    create_accounts(server, staff, worker)
    page = open_dashboard(browser, server, staff)
    open_dashboard(browser, server, worker)
    panel = page.locator("#staff-panel")
    expect(panel).to_be_visible()

    expect(page.locator("#by-channel li[data-channel=jobs]")).to_contain_text(
        "jobs 2", timeout=10_000
    )
    assert int(page.locator("#connections-total").inner_text()) >= 2

    page.fill("#broadcast-form textarea[name=data]", '{"message": "Maintenance at <b>noon</b>"}')
    page.click("#broadcast-form button[type=submit]")
    expect(page.locator("#broadcasts")).to_contain_text("announcement → announcements")
    expect(feed(page).first).to_contain_text("📢")
    expect(feed(page).first).to_contain_text("announcement: Maintenance at <b>noon</b>")
    expect(page.locator("#chart-legend")).to_contain_text("announcement")
    expect(page.locator("#chart polyline")).to_have_count(1)

    for title in ("API integration", "Landing page copy"):
        page.fill("#post-job input[name=title]", title)
        page.fill("#post-job input[name=pay_amount_usd]", "800")
        page.click("#post-job button[type=submit]")
        expect(feed(page).first).to_contain_text(f"Your job “{title}” was posted")
    expect(page.locator("#chart-legend")).to_contain_text("job_created")
    posted = row(page, "API integration").get_attribute("data-job-id")
    accepted = server.post(
        f"/api/jobs/{posted}/accept/", headers={"Authorization": f"Bearer {token(server, worker)}"}
    )
    assert accepted.status_code == 200, accepted.text
    expect(feed(page).first).to_contain_text("🎉")
    expect(feed(page).first).to_contain_text("Your job “API integration” was accepted")
    page.wait_for_timeout(1500)  # one more tick of the chart, for the picture
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    if SCREENSHOT:
        shutil.copy(tmp_path / "dashboard.png", Path(ROOT, SCREENSHOT))
