from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from realtime.permissions import register_channel_rule

        from . import signals  # noqa: F401  (connects the model to the publishing service)
        from .chat import frames as chat_frames
        from .permissions import JOB_CHANNEL_PATTERN, is_job_participant

        register_channel_rule(JOB_CHANNEL_PATTERN, is_job_participant)
        chat_frames.register()  # chat_send, typing, chat_read on the socket
