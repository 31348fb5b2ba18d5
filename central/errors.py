"""The errors of the central API, in the reference's names (SPEC section 4): each is
answered ``{"id": "<name>", "message": "..."}`` with its status by
``ussdloop.http.error_middleware``. Components raise these (or subclasses that keep
the reference id, e.g. ``error_id = "NotFoundError"``) with a message saying what to fix.
"""

from __future__ import annotations

from ussdloop.http import HttpError


class ValidationError(HttpError):
    status = 400


class UnauthorizedError(HttpError):
    status = 401


class ForbiddenError(HttpError):
    status = 403


class NotFoundError(HttpError):
    status = 404


class AlreadyExistsError(HttpError):
    status = 409


class UnprocessableEntityError(HttpError):
    """A well-formed request the current state refuses (e.g. a fulfilment too late)."""

    status = 422


class ServiceUnavailableError(HttpError):
    """The service cannot take the request now (e.g. its forensic log is unavailable):
    nothing was done, try again later."""

    status = 503
