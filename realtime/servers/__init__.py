"""The ASGI servers we run, each extended to tell the application about its
socket's write buffer (see `extension`)."""
