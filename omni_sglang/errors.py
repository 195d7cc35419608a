"""The one error hierarchy of omni-sglang.

Errors are plain data: each class carries the HTTP status and the OpenAI error
``type`` / ``code`` it maps to. They are turned into responses in exactly one place
(``omni_sglang.api.errors``), so no route builds an error body by hand.
"""

from __future__ import annotations


class OmniError(Exception):
    """Base class: a failure with a message meant for the client."""

    status_code: int = 500
    error_type: str = "internal_error"
    code: str | None = None

    def __init__(self, message: str, param: str | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code


class ClientError(OmniError):
    """The request was wrong; the client can fix it. Always a 4xx."""

    status_code = 400
    error_type = "invalid_request_error"


class InvalidRequestError(ClientError):
    code = "invalid_value"


class UnsupportedFieldError(ClientError):
    """A field we do not implement and cannot ignore without changing the meaning."""

    code = "unsupported_parameter"


class ContextLengthExceededError(ClientError):
    code = "context_length_exceeded"


class ModelNotFoundError(ClientError):
    status_code = 404
    code = "model_not_found"


class AuthenticationError(ClientError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class NotFoundError(ClientError):
    status_code = 404
    code = "not_found"


class PayloadTooLargeError(ClientError):
    status_code = 413
    code = "payload_too_large"


class ServiceUnavailableError(OmniError):
    """The server cannot take the request now (starting, draining, full)."""

    status_code = 503
    error_type = "service_unavailable"
    code = "service_unavailable"


class EngineDeadError(ServiceUnavailableError):
    """A process or thread the engine needs has died: nothing can be served any more, and
    the server exits non-zero so its supervisor (Kubernetes, systemd) restarts it."""

    code = "engine_dead"


class EngineError(OmniError):
    """The engine failed while serving a valid request: our fault, not the client's."""

    status_code = 500
    error_type = "internal_error"
    code = "engine_error"


class ConfigError(OmniError):
    """Start-up configuration is wrong; raised before the server listens."""


class StartupError(ConfigError):
    """The engine did not start (a port taken, memory short, a broken checkpoint): the
    server exits 2, like a configuration error, since restarting it as is cannot help."""


class PluginError(ConfigError):
    """A plugin could not be found, loaded, or has the wrong interface."""


class ClientClosedRequestError(ClientError):
    """The client went away before the answer was ready (nginx's 499); nobody reads it."""

    status_code = 499
    code = "client_closed_request"


class RequestTimeoutError(OmniError):
    """The request ran past the server's per-request time limit and was aborted."""

    status_code = 504
    error_type = "timeout"
    code = "request_timeout"
