"""Connectors: long-lived connection pools for services, one set per worker process.

    from blazing.connectors import SQLConnector, HTTPConnector, SSHConnector
    from blazing.connectors import SQLAlchemyConnector, RESTConnector  # aliases

    app = Blazing(connectors={
        "db": SQLConnector("postgresql+asyncpg://app@db/app", pool_size=5),
        "api": {"target_class_name": "RESTConnector", "auth": {"base_url": "...",
                "token": os.environ["API_TOKEN"]}, "throttling": {"limit": 10, "window": 1}},
    })

Services receive them (``self.connectors["db"]``); steps reach them through
``services["Name"]``. Their libraries (SQLAlchemy, httpx, asyncssh) are imported at
first use: ``pip install 'blazing[connectors]'`` (or ``[sql]``, ``[http]``,
``[ssh]``). See docs/connectors.md.
"""

from blazing.connectors.base import Connector
from blazing.connectors.config import CLASSES, from_spec
from blazing.connectors.http import HTTPConnector, RESTConnector
from blazing.connectors.registry import Connectors
from blazing.connectors.scheduler import Cron, Period, SchedulerConnector
from blazing.connectors.sql import SQLAlchemyConnector, SQLConnector
from blazing.connectors.ssh import SSHConnector
from blazing.connectors.throttle import Throttle
from blazing.errors import ConnectorConfigError, ConnectorError, ConnectorUnavailable

__all__ = [
    "CLASSES",
    "Connector",
    "ConnectorConfigError",
    "ConnectorError",
    "ConnectorUnavailable",
    "Connectors",
    "Cron",
    "HTTPConnector",
    "Period",
    "RESTConnector",
    "SQLAlchemyConnector",
    "SQLConnector",
    "SchedulerConnector",
    "SSHConnector",
    "Throttle",
    "from_spec",
]
