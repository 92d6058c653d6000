"""The one exception every layer uses to refuse a request with a reason."""

from __future__ import annotations


class Refused(Exception):
    """A request that breaks a rule, with a message for the person who made it.

    Services raise it; the sockets turn it into an ``error`` frame and the
    views into an HTTP error with the same translated message.
    """

    #: The HTTP status a view answers with.
    status = 400

    def __init__(
        self,
        code: str,
        message: str,
        ref: str | None = None,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        **variables: object,
    ) -> None:
        super().__init__(message % variables if variables else message)
        #: A short, stable name for clients, e.g. ``"taken"``.
        self.code = code
        #: A msgid, translated for whoever reads it.
        self.message = message
        self.variables = variables
        #: The client id or frame type the refusal answers.
        self.ref = ref
        if status is not None:
            self.status = status
        #: Seconds after which the same may succeed (a limit), if known.
        self.retry_after = retry_after


class NotAllowed(Refused):
    """The person may not do this (a 403, or an error frame on a socket)."""

    status = 403


class NotFound(Refused):
    status = 404
