"""The dashboard's chat panel in a real headless Chromium (as in
test_dashboard_browser.py), two browser contexts against the production
server: a job's employer and its worker chat, with unread badges and a toast
for the absent side, "… is typing", ✓ sent and ✓✓ read, and a job whose
title and description are full of markup."""

from __future__ import annotations

from .live import LiveServer
from .test_dashboard_browser import (  # noqa: F401 - browser and production are fixtures
    Account,
    account,
    browser,
    create_accounts,
    open_dashboard,
    production,
    row,
    token,
)

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the fixture skips or fails first
    pass

import pytest

pytestmark = pytest.mark.live

TITLE = "<img src=x onerror=alert('title')> & <b>bold</b>"
DESCRIPTION = "<script>alert('description')</script>"
FIRST = "Hi! <img src=x onerror=alert('chat')> is in the attachment"
REPLY = "Thanks, <i>reading</i> it now"


def accepted_job(server: LiveServer, employer: Account, worker: Account) -> int:
    """A job posted by `employer` and accepted by `worker`, over the API."""
    posted = server.post(
        "/api/jobs/",
        headers={"Authorization": f"Bearer {token(server, employer)}"},
        json={
            "title": TITLE,
            "description": DESCRIPTION,
            "job_type": "development",
            "pay_amount_usd": "300.00",
        },
    )
    assert posted.status_code == 201, posted.text
    job_id = posted.json()["id"]
    accepted = server.post(
        f"/api/jobs/{job_id}/accept/",
        headers={"Authorization": f"Bearer {token(server, worker)}"},
    )
    assert accepted.status_code == 200, accepted.text
    return job_id


def chat_button(page: Page):
    return row(page, TITLE).locator("button[data-action=chat]")


def messages(page: Page, side: str):
    return page.locator(f"#chat-messages li.message.{side}")


def test_employer_and_worker_chat_with_typing_unread_badges_and_read_receipts(
    browser,  # noqa: F811
    production,  # noqa: F811
):
    server = production()
    employer, worker = account("employer"), account("worker")
    create_accounts(server, employer, worker)
    job_id = accepted_job(server, employer, worker)
    boss = open_dashboard(browser, server, employer)
    hand = open_dashboard(browser, server, worker)
    dialogs: list[str] = []
    for page in (boss, hand):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # The worker opens the job's chat and writes; the employer is not in it.
    chat_button(hand).click()
    expect(hand.locator("#chat-title")).to_contain_text(TITLE)
    expect(hand.locator("#chat-title")).to_contain_text(employer.username)
    expect(hand.locator("#chat-description")).to_have_text(DESCRIPTION)
    hand.locator("#chat-form textarea").fill(FIRST)
    hand.locator("#chat-form textarea").press("Enter")
    expect(messages(hand, "mine")).to_have_count(1)
    expect(messages(hand, "mine").locator(".body")).to_have_text(FIRST)
    expect(messages(hand, "mine").locator(".ticks")).to_have_text("✓")
    expect(hand.locator("#chat-form textarea")).to_have_value("")

    # The employer hears of it: a toast and unread badges (chat_notification).
    toast = boss.locator("#toasts .toast", has_text=FIRST)
    expect(toast.locator(".icon")).to_have_text("💬")
    expect(toast).to_contain_text(f"{worker.username} on “{TITLE}”: {FIRST}")
    expect(chat_button(boss).locator(".unread")).to_have_text("1")
    expect(boss.locator("#chat-total")).to_have_text("1")
    conversation = boss.locator(f"#chat-list button[data-job-id='{job_id}']")
    expect(conversation.locator(".unread")).to_have_text("1")

    # Opening the chat reads it: the badges go, the worker's ✓ becomes ✓✓.
    conversation.click()
    expect(messages(boss, "theirs").locator(".body")).to_have_text(FIRST)
    expect(chat_button(boss).locator(".unread")).to_have_count(0)
    expect(boss.locator("#chat-total")).to_be_hidden()
    expect(messages(hand, "mine").locator(".ticks")).to_have_text("✓✓")
    expect(messages(hand, "mine").locator(".ticks")).to_have_attribute("data-state", "read")

    # The employer types: the worker sees it, then the message, and the
    # worker's open panel reads it at once.
    expect(hand.locator("#chat-typing")).to_have_text("")
    boss.locator("#chat-form textarea").press_sequentially(REPLY[:10])
    expect(hand.locator("#chat-typing")).to_have_text(f"{employer.username} is typing…")
    boss.locator("#chat-form textarea").press_sequentially(REPLY[10:])
    boss.locator("#chat-form button[type=submit]").click()
    expect(messages(hand, "theirs").locator(".body")).to_have_text(REPLY)
    expect(hand.locator("#chat-typing")).to_have_text("")
    expect(messages(boss, "mine").locator(".ticks")).to_have_text("✓✓")
    expect(boss.locator("#chat-messages li.message")).to_have_count(2)
    expect(hand.locator("#chat-messages li.message")).to_have_count(2)
    expect(chat_button(hand).locator(".unread")).to_have_count(0)

    # Markup anywhere stayed text and ran nothing.
    for page in (boss, hand):
        expect(row(page, TITLE).locator("td.title span").first).to_have_text(TITLE)
        assert page.locator("#app img, #app script, #app b, #app i").count() == 0
    assert dialogs == []


def test_completing_a_job_toasts_the_payment_to_both_and_tells_the_worker_once(
    browser,  # noqa: F811
    production,  # noqa: F811
):
    server = production()
    employer, worker = account("employer"), account("worker")
    create_accounts(server, employer, worker)
    accepted_job(server, employer, worker)
    boss = open_dashboard(browser, server, employer)
    hand = open_dashboard(browser, server, worker)
    expect(row(hand, TITLE)).to_contain_text("accepted")

    row(boss, TITLE).locator("button[data-action=complete]").click()

    # payment_released: the employer's 💰 toast comes from it alone.
    paid = boss.locator("#toasts .toast", has_text="Payment confirmed")
    expect(paid.locator(".icon")).to_have_text("💰")
    expect(paid).to_contain_text(
        f"Payment confirmed: $300 for “{TITLE}” was released to the worker"
    )
    # ... and the feed keeps the one line of job_completed.
    expect(boss.locator("#feed li", has_text="was completed")).to_have_count(1)
    expect(boss.locator("#feed li", has_text="Payment confirmed")).to_have_count(0)
    # The worker gets job_completed and payment_released: one notice.
    told = hand.locator("#toasts .toast", has_text="Payment released")
    expect(told.locator(".icon")).to_have_text("💰")
    expect(told).to_contain_text(f"Payment released: you earned $300 for “{TITLE}”")
    expect(hand.locator("#feed li", has_text="Payment released")).to_have_count(1)
    expect(row(hand, TITLE)).to_contain_text("completed")
    expect(hand.locator("#toasts .toast", has_text="Payment released")).to_have_count(1)
