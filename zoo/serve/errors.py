"""Errors a gateway client sees, each an OpenAI-shaped JSON body with an HTTP status."""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """An error answered to the client as ``{"error": {...}}`` with ``status``."""

    status = 500
    code = "internal_error"
    kind = "server_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def body(self) -> dict[str, Any]:
        return {
            "error": {"message": self.message, "type": self.kind, "code": self.code, "param": None}
        }


class ModelNotFound(GatewayError):
    status = 404
    code = "model_not_found"
    kind = "invalid_request_error"


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_request"
    kind = "invalid_request_error"


class TooLarge(GatewayError):
    status = 413
    code = "request_too_large"
    kind = "invalid_request_error"


class Unauthorized(GatewayError):
    status = 401
    code = "invalid_api_key"
    kind = "authentication_error"


class Forbidden(GatewayError):
    status = 403
    code = "model_not_allowed"
    kind = "permission_error"


class BrowserRefused(Forbidden):
    """A browser request the web UI refuses: a foreign Host or Origin, a missing CSRF token."""

    code = "browser_request_refused"


class TooBusy(GatewayError):
    status = 429
    code = "too_many_requests"
    kind = "rate_limit_error"


class DoesNotFit(GatewayError):
    status = 507
    code = "model_does_not_fit"
    kind = "server_error"


class LoadFailed(GatewayError):
    status = 503
    code = "model_load_failed"
    kind = "server_error"

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(f"{message}\n{log_tail}".strip() if log_tail else message)
        self.log_tail = log_tail


class NotDownloaded(GatewayError):
    status = 404
    code = "model_not_downloaded"
    kind = "invalid_request_error"


class WrongRoute(InvalidRequest):
    """A route that is not for the model's kind (chat for an embedding model, ...)."""

    code = "wrong_route"


class BadEngineAnswer(GatewayError):
    """A 200 from the engine that the gateway cannot pass on: a vector or score that is not
    one (a multi-vector model's lists, a null, NaN, broken base64). The engine's or the spec's
    fault, not the client's: a 502."""

    status = 502
    code = "bad_engine_answer"
    kind = "server_error"
