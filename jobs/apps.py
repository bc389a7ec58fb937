from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from realtime.permissions import register_channel_rule

        from . import signals  # noqa: F401  (connects the model to the publishing service)
        from .permissions import JOB_CHANNEL_PATTERN, is_job_participant

        register_channel_rule(JOB_CHANNEL_PATTERN, is_job_participant)
