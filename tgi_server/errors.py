"""The backend's exceptions. Each carries the HTTP status and `error_type` it becomes at the edge.

BackendError
├── MalformedBodyError        400  bad_request             the body is not valid JSON
├── PayloadTooLargeError      413  payload_too_large       the body is over the size limit
├── UnsupportedMediaTypeError 415  unsupported_media_type  the body is not declared as JSON
├── InvalidBodyError          422  validation              the JSON does not fit the request type
├── ValidationError           422  validation              a parameter breaks one of TGI's rules
├── TemplateError             422  template_error          the chat template is missing or fails
├── ToolError                 422  tool_error              tools that cannot be honoured
├── OpenAIRequestError        422  (its own)               /v1/completions' own refusals
├── OverloadedError           429  overloaded              no free request slot
├── GenerationError           424  generation              the model failed while generating
└── UnhealthyError            503  healthcheck             the engine is not running

Messages follow TGI's wording, so clients that match on them keep working.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "BackendError",
    "GenerationError",
    "InvalidBodyError",
    "MalformedBodyError",
    "OpenAIRequestError",
    "OverloadedError",
    "PayloadTooLargeError",
    "TemplateError",
    "ToolError",
    "UnhealthyError",
    "UnsupportedMediaTypeError",
    "ValidationError",
]


class BackendError(Exception):
    """Base of every error the backend reports to a client."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict[str, str]:
        """TGI's error shape, `{"error": ..., "error_type": ...}`."""
        return {"error": self.message, "error_type": self.error_type}


class MalformedBodyError(BackendError):
    status = 400
    error_type = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Failed to parse the request body as JSON: {detail}")


class PayloadTooLargeError(BackendError):
    status = 413
    error_type = "payload_too_large"

    def __init__(self) -> None:
        super().__init__("Failed to buffer the request body: length limit exceeded")


class UnsupportedMediaTypeError(BackendError):
    status = 415
    error_type = "unsupported_media_type"

    def __init__(self) -> None:
        super().__init__("Expected request with `Content-Type: application/json`")


class InvalidBodyError(BackendError):
    status = 422
    error_type = "validation"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Failed to deserialize the JSON body into the target type: {detail}")


class ValidationError(BackendError):
    """A request parameter breaks one of TGI's validation rules (§3.2 of the API notes)."""

    status = 422
    error_type = "validation"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Input validation error: {detail}")
        self.detail = detail


class TemplateError(BackendError):
    status = 422
    error_type = "template_error"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Template error: {detail}")


class ToolError(BackendError):
    status = 422
    error_type = "tool_error"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Tool error: {detail}")


class OpenAIRequestError(BackendError):
    """A refusal of the OpenAI routes, whose `error_type` TGI spells per case."""

    status = 422

    def __init__(self, message: str, error_type: str) -> None:
        super().__init__(message)
        self.kind = error_type

    def body(self) -> dict[str, str]:
        return {"error": self.message, "error_type": self.kind}


class OverloadedError(BackendError):
    status = 429
    error_type = "overloaded"

    def __init__(self) -> None:
        super().__init__("Model is overloaded")


class GenerationError(BackendError):
    status = 424
    error_type = "generation"

    def __init__(self, detail: str) -> None:
        super().__init__(f"Request failed during generation: {detail}")
        self.detail = detail


class UnhealthyError(BackendError):
    status = 503
    error_type = "healthcheck"

    def __init__(self) -> None:
        super().__init__("unhealthy")
