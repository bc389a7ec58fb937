"""What a server process does once, when it imports the ASGI application."""

import gc
import logging
import resource

from django.conf import settings

from .conf import realtime_settings


def tune_process() -> None:
    """Raise the open-file limit to its hard limit (one descriptor per socket)
    and tune the cyclic garbage collector for many long-lived sockets: freeze
    what start-up allocated (so that no collection walks it again) and collect
    generation 0 less often than Python's 700 allocations, not so rarely that
    one collection stalls the loop (REALTIME["GC_THRESHOLD"])."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
    threshold = realtime_settings.GC_THRESHOLD
    if threshold:
        gc.collect()
        gc.freeze()
        gc.set_threshold(*threshold)


def announce_start(logger: logging.Logger) -> None:
    """Log what the server runs on, and warn about an open /broadcast."""
    layer = str(settings.CHANNEL_LAYERS["default"]["BACKEND"]).rsplit(".", 1)[-1]
    logger.info("WebSocket server started (channel layer: %s, debug: %s)", layer, settings.DEBUG)
    if not realtime_settings.BROADCAST_API_KEYS:
        if settings.DEBUG:
            logger.warning(
                "BROADCAST_API_KEYS is not set: POST /broadcast is open to anyone "
                "while DJANGO_DEBUG is on. Set BROADCAST_API_KEYS before deploying."
            )
        else:
            logger.warning(
                "BROADCAST_API_KEYS is not set and DJANGO_DEBUG is off: "
                "POST /broadcast answers 503 until it is set."
            )
