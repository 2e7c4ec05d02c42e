"""The core's exceptions; the HTTP layer maps each to a status code in one handler."""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: ``code`` is the API's error slug, ``status`` the HTTP status it maps to."""

    code = "error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    code = "invalid_input"
    status = 400


class NotFound(ServiceError):
    code = "not_found"
    status = 404


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"
    status = 413


class Unavailable(ServiceError):
    """A configured model could not be loaded or used."""

    code = "unavailable"
    status = 503


class Unauthorized(ServiceError):
    """No API key, or not one of the configured ones."""

    code = "unauthorized"
    status = 401
