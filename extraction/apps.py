from django.apps import AppConfig


class ExtractionConfig(AppConfig):
    name = "extraction"

    def ready(self):
        from extraction.decisions import register_handlers

        register_handlers()

        from extraction.panels import register_panels

        register_panels()
