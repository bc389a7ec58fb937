"""Throttles of sign-in and registration (DRF throttling).

`POST /api/auth/token/` is throttled per client address and per username,
`POST /api/auth/register/` per client address. The rates are DRF's
`DEFAULT_THROTTLE_RATES` scopes `login` and `register` (THROTTLE_LOGIN_RATE,
THROTTLE_REGISTER_RATE). A request over a rate gets DRF's `Throttled`: 429
with `Retry-After`.

The counts live in Django's default cache: Redis when REDIS_URL is set, shared
by every process; otherwise each process counts on its own. When that Redis
does not answer, the throttles let requests through (and log it) rather than
refuse every sign-in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import redis
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from .usernames import username_key

logger = logging.getLogger(__name__)


class ScopedThrottle(SimpleRateThrottle):
    """A SimpleRateThrottle whose rate is read when it is made (so that a
    change of settings applies), keyed by `ident(request)`."""

    scope: str

    def get_rate(self) -> str | None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        return None if rate is None else str(rate)

    def ident(self, request: Request) -> str | None:
        raise NotImplementedError

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        ident = self.ident(request)
        if ident is None:
            return None
        return f"throttle:{self.scope}:{type(self).__name__}:{ident}"

    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except redis.RedisError as exc:
            logger.warning("Throttle %s not applied: the cache is away (%s)", self.scope, exc)
            return True


class AddressThrottle(ScopedThrottle):
    """Per client address: the connection's peer (REST_FRAMEWORK NUM_PROXIES
    is 0, so a client-sent X-Forwarded-For is ignored)."""

    def ident(self, request: Request) -> str | None:
        return self.get_ident(request)


class LoginAddressThrottle(AddressThrottle):
    scope = "login"


class RegisterAddressThrottle(AddressThrottle):
    scope = "register"


class LoginUsernameThrottle(ScopedThrottle):
    """Per username, whatever address the attempts come from. The name is
    counted by its key (jobs.usernames), so `Alice`, `ALICE` and `ａｌｉｃｅ`
    share one count; a request without a string username is left to the
    address throttle (and refused by the serializer)."""

    scope = "login"

    def ident(self, request: Request) -> str | None:
        data = request.data
        username = data.get("username") if isinstance(data, Mapping) else None
        if not isinstance(username, str):
            return None
        key = username_key(username).encode("utf-8", "surrogatepass")
        return hashlib.sha256(key).hexdigest()
