"""`manage.py runserver`: daphne's development server (hot reload, static files
under DEBUG), serving with `RealtimeServer` so that sockets carry our transport
extension as they do in production. "realtime" comes before "daphne" in
INSTALLED_APPS for Django to pick this command over daphne's."""

from daphne.management.commands.runserver import Command as DaphneRunserverCommand

from realtime.servers.daphne_server import RealtimeServer


class Command(DaphneRunserverCommand):
    server_cls = RealtimeServer
