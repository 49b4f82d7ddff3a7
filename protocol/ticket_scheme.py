"""Which tickets a router signs and its workers verify: the one definition of the schemes."""

from __future__ import annotations

from enum import StrEnum

from protocol.vast_tickets import VastVariant

__all__ = ["TicketScheme"]


class TicketScheme(StrEnum):
    ED25519 = "ed25519"  # native: kid + Ed25519 over canonical JSON of every field
    VAST = "vast"  # Vast PyWorker v2: RSA over {cost, endpoint, reqnum, url}
    VAST_URL = "vast-url"  # vastai SDK 1.1: RSA over {url} only

    @property
    def uses_rsa(self) -> bool:
        return self is not TicketScheme.ED25519

    @property
    def signs_request_fields(self) -> bool:
        """Whether a ticket's `cost`, `endpoint` and `reqnum` are signed (`vast-url` signs only
        its `url`: whoever holds one ticket may write any of them)."""
        return self is not TicketScheme.VAST_URL

    @property
    def keys_path(self) -> str:
        """Where the router publishes this scheme's keys."""
        return "/pubkey/" if self.uses_rsa else "/keys"

    @property
    def vast_variant(self) -> VastVariant:
        """The message an RSA scheme signs (ValueError for the native scheme)."""
        if self is TicketScheme.VAST:
            return VastVariant.LEGACY
        if self is TicketScheme.VAST_URL:
            return VastVariant.URL
        raise ValueError("the native Ed25519 scheme is not one of Vast's")
