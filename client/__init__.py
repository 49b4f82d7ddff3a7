"""The tgi-serverless client SDK: route a request through the router, then send it straight to
the worker it names.

    from client import Client

    with Client("http://127.0.0.1:8080", api_key="...") as client:
        print(client.generate("Hello", max_new_tokens=20).generated_text)
        for event in client.generate_stream("Hello"):
            print(event.token.text, end="", flush=True)

`AsyncClient` has the same methods as coroutines and async iterators. Every error is a
`TGISError`; see `client.errors` for the hierarchy. Several routers (a list, or one
comma-separated string): a route request goes on to the next router when one does not answer
or answers 5xx (`client.routers`).
"""

from client._async import AsyncClient, ClientOptions
from client._sync import Client
from client.chat import ChatCompletion
from client.errors import (
    AuthenticationError,
    ConnectionFailed,
    EndpointNotFound,
    IncompleteStream,
    NoCapacityError,
    OverloadedError,
    ProtocolError,
    RequestTimeout,
    ServerError,
    StreamError,
    TGISError,
    TicketRejected,
    ValidationError,
)
from client.generation import GenerateOptions
from client.retrying import RetryPolicy
from client.routing import PollPolicy, Ticket
from client.timeouts import Timeouts
from protocol.tgi import (
    Details,
    FinishReason,
    GenerateResponse,
    PrefillToken,
    StreamDetails,
    StreamResponse,
    Token,
)

__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "ChatCompletion",
    "Client",
    "ClientOptions",
    "ConnectionFailed",
    "Details",
    "EndpointNotFound",
    "FinishReason",
    "GenerateOptions",
    "GenerateResponse",
    "IncompleteStream",
    "NoCapacityError",
    "OverloadedError",
    "PollPolicy",
    "PrefillToken",
    "ProtocolError",
    "RequestTimeout",
    "RetryPolicy",
    "ServerError",
    "StreamDetails",
    "StreamError",
    "StreamResponse",
    "TGISError",
    "Ticket",
    "TicketRejected",
    "Timeouts",
    "Token",
    "ValidationError",
]
