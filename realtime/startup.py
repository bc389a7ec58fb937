import logging

from django.conf import settings

from .conf import realtime_settings


def announce_start(logger: logging.Logger) -> None:
    """Log what the server runs on, and warn about an open /broadcast."""
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
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
