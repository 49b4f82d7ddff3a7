"""The backend's exceptions, each an `error_type` of `protocol.errors`, which gives its HTTP
status; the error middleware (`httpedge.errors`) answers them as TGI's JSON body.

BackendError                  500  internal
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

Types and messages follow TGI's, so clients that match on them (huggingface_hub,
text-generation) keep working; `body()` is also the error event that ends a stream.
"""

from __future__ import annotations

from protocol.errors import ErrorType, ServiceError

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


class BackendError(ServiceError):
    """Base of every error the backend reports to a client."""


class MalformedBodyError(BackendError):
    error_type = ErrorType.BAD_REQUEST

    def __init__(self, detail: str) -> None:
        super().__init__(f"Failed to parse the request body as JSON: {detail}")


class PayloadTooLargeError(BackendError):
    error_type = ErrorType.PAYLOAD_TOO_LARGE

    def __init__(self) -> None:
        super().__init__("Failed to buffer the request body: length limit exceeded")


class UnsupportedMediaTypeError(BackendError):
    error_type = ErrorType.UNSUPPORTED_MEDIA_TYPE

    def __init__(self) -> None:
        super().__init__("Expected request with `Content-Type: application/json`")


class InvalidBodyError(BackendError):
    error_type = ErrorType.VALIDATION

    def __init__(self, detail: str) -> None:
        super().__init__(f"Failed to deserialize the JSON body into the target type: {detail}")


class ValidationError(BackendError):
    """A request parameter breaks one of TGI's validation rules (§3.2 of the API notes)."""

    error_type = ErrorType.VALIDATION

    def __init__(self, detail: str) -> None:
        super().__init__(f"Input validation error: {detail}")
        self.detail = detail


class TemplateError(BackendError):
    error_type = ErrorType.TEMPLATE_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(f"Template error: {detail}")


class ToolError(BackendError):
    error_type = ErrorType.TOOL_ERROR

    def __init__(self, detail: str) -> None:
        super().__init__(f"Tool error: {detail}")


class OpenAIRequestError(BackendError):
    """A refusal of the OpenAI routes, whose `error_type` TGI spells per case (422)."""

    def __init__(self, message: str, error_type: ErrorType) -> None:
        super().__init__(message)
        self.error_type = error_type


class OverloadedError(BackendError):
    error_type = ErrorType.OVERLOADED

    def __init__(self) -> None:
        super().__init__("Model is overloaded")


class GenerationError(BackendError):
    error_type = ErrorType.GENERATION

    def __init__(self, detail: str) -> None:
        super().__init__(f"Request failed during generation: {detail}")
        self.detail = detail


class UnhealthyError(BackendError):
    error_type = ErrorType.HEALTHCHECK

    def __init__(self) -> None:
        super().__init__("unhealthy")
