from django.apps import AppConfig


class DealsConfig(AppConfig):
    name = "deals"

    def ready(self):
        from deals.decisions import register_handlers

        register_handlers()

        from deals.panels import register_panels

        register_panels()
