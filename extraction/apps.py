from django.apps import AppConfig


class ExtractionConfig(AppConfig):
    name = "extraction"

    def ready(self):
        from extraction.decisions import register_handlers

        register_handlers()
