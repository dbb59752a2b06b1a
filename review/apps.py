from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"

    def ready(self):
        from jobs.hooks import on_job_failed
        from review.services import job_failed_item_open

        on_job_failed(job_failed_item_open)
