"""The app config imports the Blazing app once Django is set up, so the web server, the
shell and ``manage.py blazing_worker`` all have the same steps and workflows."""

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from orders import tasks  # registers the steps and workflows

        self.flow = tasks.flow  # django.apps.apps.get_app_config("orders").flow
