"""``python manage.py blazing_worker --type async|blocking``: a worker process for the
project's Blazing app, with Django set up first (models and settings work in steps).

It is ``python -m blazing.worker --app orders.tasks:flow``: SIGTERM drains it.
"""

from django.core.management.base import BaseCommand, CommandError

from blazing.worker.__main__ import main as worker_main


class Command(BaseCommand):
    help = "Run a Blazing worker for orders.tasks.flow (needs BLAZING_REDIS_URL)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--type", choices=("async", "blocking"), required=True,
                            help="async: workflows and async steps; blocking: def steps")
        parser.add_argument("--concurrency", type=int, default=None,
                            help="operations at once (default: async 64, blocking 4)")

    def handle(self, *args, **options) -> None:
        argv = ["--app", "orders.tasks:flow", "--type", options["type"]]
        if options["concurrency"] is not None:
            argv += ["--concurrency", str(options["concurrency"])]
        code = worker_main(argv)
        if code:
            raise CommandError(f"the worker exited with code {code}", returncode=code)
