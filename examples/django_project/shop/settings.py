"""The smallest settings that serve the example: one app (orders), no database."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "only-for-the-example")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["orders.apps.OrdersConfig"]
ROOT_URLCONF = "shop.urls"
USE_TZ = True
