from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from apps.core import respcache

        # Every connection of every process notes its writes for the API's answer cache.
        connection_created.connect(respcache.install, dispatch_uid="core.respcache.install")
