"""
ASGI entry point, in the order of Channels' own sample project: build the
Django application first (it sets Django up), then import the socket routes,
then wrap them.
"""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paychain.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from realtime.auth import TokenAuthMiddleware  # noqa: E402
from realtime.client import keep_server_send  # noqa: E402
from realtime.lifespan import with_lifespan  # noqa: E402
from realtime.origins import OriginCheck  # noqa: E402
from realtime.outbox import with_relay  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.service_app import service_endpoint  # noqa: E402
from realtime.startup import announce_start, tune_process  # noqa: E402
from realtime.views import BroadcastApi  # noqa: E402

# with_relay: the first scope starts this process' outbox relay (daphne has no lifespan).
# with_lifespan: uvicorn's shutdown stops the node and closes its Redis clients.
application = with_lifespan(
    with_relay(
        ProtocolTypeRouter(
            {
                # POST /broadcast straight from the event loop; the rest through Django.
                "http": URLRouter(
                    [
                        # Channels routes ASGI applications with Django's re_path;
                        # django-stubs only knows views there.
                        re_path(
                            r"^broadcast/?$",
                            service_endpoint(BroadcastApi.as_view()),  # type: ignore[arg-type]
                        ),
                        re_path(r"", django_asgi_app),  # type: ignore[arg-type]
                    ]
                ),
                "websocket": keep_server_send(
                    OriginCheck(
                        AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns)))
                    )
                ),
            }
        )
    )
)

announce_start(logging.getLogger("paychain.asgi"))
tune_process()
