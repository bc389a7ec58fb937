import asyncio
import logging

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.management.base import BaseCommand, CommandError, CommandParser

from realtime.outbox import Relay, prune

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Publish the outbox's pending events (server processes do it too, unless "
        "REALTIME_RELAY_IN_PROCESS=false). Runs until stopped; --once drains and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once",
            action="store_true",
            help="Publish what is pending now, prune, and exit (status 1 if the channel "
            "layer is down).",
        )

    def handle(self, *args: object, once: bool = False, **options: object) -> None:
        if isinstance(get_channel_layer(), InMemoryChannelLayer):
            logger.warning(
                "The channel layer is in memory: this process' publications reach only "
                "its own sockets. Set REDIS_URL to relay for the servers."
            )
        relay = Relay()
        if not once:
            try:
                asyncio.run(relay.run(asyncio.Event()))
            except KeyboardInterrupt:
                pass
            return
        # async_to_sync, not asyncio.run: called from async code (a test),
        # the drain runs in that event loop, beside its sockets.
        result = async_to_sync(relay.drain)()
        pruned, keys = prune()
        self.stdout.write(
            f"Published {result.published} outbox message(s); {result.failed} failed "
            f"attempt(s); pruned {pruned} published message(s) and {keys} idempotency key(s)."
        )
        if result.layer_down:
            raise CommandError(
                f"The channel layer is unavailable ({result.layer_error}); "
                "the remaining messages stay pending."
            )
