from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"

    def ready(self):
        from crm.decisions import register_handlers

        register_handlers()
