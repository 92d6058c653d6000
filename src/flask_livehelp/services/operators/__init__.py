"""Operator accounts and departments: creating, changing, signing in.

One module per job: :mod:`.accounts` (creating, changing, deactivating),
:mod:`.passwords` (passwords and sessions), :mod:`.signing_in` (the panel's
sign-in and the host's staff), :mod:`.departments`.
"""

from __future__ import annotations

from .accounts import Accounts
from .departments import Departments
from .passwords import Passwords
from .signing_in import SigningIn


class OperatorService(SigningIn, Accounts, Departments, Passwords):
    """Everything about operator accounts and departments."""


__all__ = ["OperatorService"]
