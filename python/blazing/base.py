"""``from blazing.base import BaseService``: the import path the contract names.

The class lives in :mod:`blazing.services`, with the per-process instances.
"""

from blazing.services import BaseService

__all__ = ["BaseService"]
