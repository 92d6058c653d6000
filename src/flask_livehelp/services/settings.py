"""Settings an admin changes in the panel, over the ``LIVEHELP_*`` defaults.

A setting may have one value for every language (``lang=""``) and values for
single languages; the most specific one wins, then the app's config.
"""

from __future__ import annotations

import threading
import time
import typing as t

import sqlalchemy as sa

from ..errors import Refused
from ..hub import STAFF_CHANNEL
from ..i18n import N_
from ..models import OperatorMixin
from . import audit
from . import Basics
from . import Service

#: The settings the panel may change, and the type each must have.
EDITABLE: dict[str, type | tuple[type, ...]] = {
    "WIDGET_TEXTS": dict,
    "WIDGET_COLOR": str,
    "WIDGET_POSITION": str,
    "WIDGET_ASK_NAME": str,
    "WIDGET_ASK_EMAIL": str,
    "OFFLINE_MAILBOX": (str, type(None)),
    "QUEUE_TIMEOUT_SECONDS": int,
    "IDLE_SECONDS": int,
    "INACTIVE_CLOSE_SECONDS": int,
    "REQUIRE_TAG": bool,
    "AUTO_ASSIGN": bool,
    "HISTORY_RETENTION_DAYS": (int, type(None)),
}
#: How long a process reuses what it read, so a busy widget costs no queries.
CACHE_SECONDS = 5.0
#: What the operator panel goes by, as the panel names it.
PANEL: dict[str, str] = {
    "IDLE_SECONDS": "idle_seconds",
    "REQUIRE_TAG": "require_tag",
    "QUEUE_TIMEOUT_SECONDS": "queue_timeout",
}


class SettingsService(Service):
    def __init__(self, *args: *Basics) -> None:
        super().__init__(*args)
        self._cache: dict[tuple[str, str], tuple[float, dict[str, object]]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, lang: str | None = None) -> t.Any:  # typed as config_value
        """The value of ``key`` for ``lang``: the panel's, else ``LIVEHELP_<key>``."""
        default = self.setting(key)
        values = self._values(key)
        if lang and lang in values:
            return values[lang]
        return values.get("", default)

    def _values(self, key: str) -> dict[str, object]:
        with self._lock:
            cached = self._cache.get((key, ""))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        model = self.models.setting
        rows = self.session.execute(
            sa.select(model.lang, model.value).where(model.key == key)
        ).all()
        values = {lang: value for lang, value in rows}
        with self._lock:
            self._cache[(key, "")] = (time.monotonic() + CACHE_SECONDS, values)
        return values

    def set(self, key: str, value: object, lang: str = "") -> None:
        """Change a setting; ``value=None`` on a language removes that language's."""
        if key not in EDITABLE:
            raise Refused("unknown-setting", N_("Unknown setting."))
        if value is not None and not isinstance(value, EDITABLE[key]):
            raise Refused("bad-setting", N_("This value does not fit the setting."))
        model = self.models.setting
        row = self.session.get(model, (key, lang))
        if value is None and lang:
            if row is not None:
                self.session.delete(row)
        elif row is None:
            self.session.add(model(key=key, lang=lang, value=value))
        else:
            row.value = value
        self.session.commit()
        self.forget()
        if key in PANEL:
            # Open panels go by the new value now, not at their next reload.
            self.hub.publish(
                STAFF_CHANNEL, {"type": "settings", "settings": self.for_panel()}
            )

    def change(
        self, values: dict[str, object], lang: str = "", *, by: OperatorMixin | None
    ) -> list[str]:
        """Store the settings of ``values`` that changed, and say so in the
        audit log as done by ``by``; returns the keys that changed."""
        changed = sorted(
            key for key, value in values.items() if self.get(key, lang) != value
        )
        for key in changed:
            self.set(key, values[key], lang)
        if changed:
            details: dict[str, object] = {"keys": changed}
            if lang:
                details["lang"] = lang
            self.session.add(
                audit.entry(self.models, by, "settings-changed", None, details)
            )
            self.session.commit()
        return changed

    def for_panel(self) -> dict[str, object]:
        """The settings the operator panel goes by, as it gets them."""
        values = {name: self.get(key) for key, name in PANEL.items()}
        values["require_tag"] = bool(values["require_tag"])
        return values

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()
