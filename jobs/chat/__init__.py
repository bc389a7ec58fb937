"""
Chat between a job's employer and its worker.

* `models`: the messages and each participant's read mark;
* `services`: sending, reading and listing, with the rules (who may, the
  limits), each change stored with its events through the outbox;
* `ratelimit`: the count of stored messages per user, across processes;
* `events`: what each change announces, and where;
* `indicators`: typing indicators (ephemeral, throttled, stopped by themselves);
* `frames`: the socket frames `chat_send`, `typing` and `chat_read`,
  registered with realtime.handlers by the app's ready();
* `api`, `serializers`: the REST endpoints.
"""
