"""The base of the history service: its settings, and the database's dialect."""

from __future__ import annotations

import sqlalchemy as sa

from .. import Basics
from .. import Service
from ..settings import SettingsService


class HistoryBase(Service):
    """What every part of the history service works with."""

    def __init__(self, *args: *Basics, settings: SettingsService) -> None:
        super().__init__(*args)
        self.settings = settings

    def _dialect(self) -> str:
        bind = self.session.get_bind(mapper=sa.inspect(self.models.conversation))
        return bind.dialect.name
