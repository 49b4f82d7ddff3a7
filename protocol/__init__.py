"""Wire contracts shared by every package: tickets, keys, routes, status reports, TGI bodies, SSE,
errors.

No I/O lives here: these are models and pure functions that the router, the PyWorker, the
backend and the client all agree on (see the architecture document, §4).
"""

from protocol.errors import ErrorBody, ErrorType, ServiceError
from protocol.keys import KeySet, PublishedKey, SigningKey, key_id, load_public_key, public_key_pem
from protocol.route import (
    MAX_COST,
    RouteAnswer,
    RouteRequest,
    RouteWaiting,
    encode_route_answer,
    parse_route_answer,
)
from protocol.router_status import EndpointStatus, RouterStatus, WorkerStatus
from protocol.sse import (
    ServerSentEvent,
    SSEError,
    SSEParser,
    encode_data_event,
    encode_json_event,
)
from protocol.status import WorkerState, WorkerStatusReport
from protocol.tgi import (
    Details,
    FinishReason,
    GenerateParameters,
    GenerateRequest,
    GenerateResponse,
    Info,
    PrefillToken,
    StreamDetails,
    StreamResponse,
    Token,
)
from protocol.ticket_scheme import TicketScheme
from protocol.tickets import (
    SIGNATURE_FIELD,
    AuthData,
    Ticket,
    TicketFields,
    TicketSigner,
    canonical_bytes,
    decode_signature,
    sign_ticket,
    verify_ticket_signature,
)
from protocol.workload import (
    OPENAI_PATHS,
    WorkloadError,
    invocation_path,
    workload_for_path,
    workload_of,
)

__all__ = [
    "MAX_COST",
    "OPENAI_PATHS",
    "SIGNATURE_FIELD",
    "AuthData",
    "Details",
    "EndpointStatus",
    "ErrorBody",
    "ErrorType",
    "FinishReason",
    "GenerateParameters",
    "GenerateRequest",
    "GenerateResponse",
    "Info",
    "KeySet",
    "PrefillToken",
    "PublishedKey",
    "RouteAnswer",
    "RouteRequest",
    "RouteWaiting",
    "RouterStatus",
    "SSEError",
    "SSEParser",
    "ServerSentEvent",
    "ServiceError",
    "SigningKey",
    "StreamDetails",
    "StreamResponse",
    "Ticket",
    "TicketFields",
    "TicketScheme",
    "TicketSigner",
    "Token",
    "WorkerState",
    "WorkerStatus",
    "WorkerStatusReport",
    "WorkloadError",
    "canonical_bytes",
    "decode_signature",
    "encode_data_event",
    "encode_json_event",
    "encode_route_answer",
    "invocation_path",
    "key_id",
    "load_public_key",
    "parse_route_answer",
    "public_key_pem",
    "sign_ticket",
    "verify_ticket_signature",
    "workload_for_path",
    "workload_of",
]
