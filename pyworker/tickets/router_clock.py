"""The router's time, as this worker reckons it: what a ticket's expiry is checked against.

The router writes a ticket's `exp` by its own clock. A worker whose clock is off by more than
the skew allowance (`TGIS_CLOCK_SKEW_S`) would otherwise refuse every ticket early (its clock
ahead: with a 30 s lead and 60 s tickets, each is refused 35 s into its life) or accept expired
ones (its clock behind). So the worker checks expiry against its own clock plus the offset of
the router's, measured on every answered status report from the answer's `Date` header
(RFC 9110: the router's clock, in whole seconds). The offset is taken at the middle of the
report's round trip, the router's second at its middle, so its error is at most half a second
plus half the round trip: well inside the allowance. Until a report is answered, the offset is
0 (the worker's own clock). A clock off by more than the allowance is logged once, and again
each time the offset moves by more than a second.

Pure logic: the local clock is injected, the header is parsed here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from email.utils import parsedate_to_datetime

__all__ = ["RouterClock"]

log = logging.getLogger(__name__)

LOGGED_CHANGE_S = 1.0
"""An offset beyond the allowance is logged again once it moved by more than this."""


class RouterClock:
    def __init__(self, local: Callable[[], float], *, skew_allowance_s: float) -> None:
        self.local = local
        self._allowance_s = skew_allowance_s
        self._offset_s = 0.0
        self._logged_offset_s: float | None = None

    @property
    def offset_s(self) -> float:
        """The router's clock minus this worker's, as last measured (0 before any)."""
        return self._offset_s

    def now(self) -> float:
        """The router's time now, unix seconds."""
        return self.local() + self._offset_s

    def observe(self, date_header: str | None, sent_at: float, received_at: float) -> None:
        """Take in the `Date` of a router's answer to a request sent at `sent_at` and answered
        at `received_at` (both by `local`); an absent or unreadable header changes nothing."""
        router_second = _unix_seconds(date_header)
        if router_second is None or received_at < sent_at:
            return
        self._offset_s = router_second + 0.5 - (sent_at + received_at) / 2
        self._log_if_off()

    def _log_if_off(self) -> None:
        if abs(self._offset_s) <= self._allowance_s:
            self._logged_offset_s = None
            return
        last = self._logged_offset_s
        if last is None or abs(self._offset_s - last) > LOGGED_CHANGE_S:
            self._logged_offset_s = self._offset_s
            log.warning(
                "this machine's clock is %+.1f s off the router's (more than the %g s allowed): "
                "tickets' expiry is checked by the router's clock; fix this machine's time (NTP)",
                -self._offset_s,
                self._allowance_s,
            )


def _unix_seconds(date_header: str | None) -> float | None:
    if not date_header:
        return None
    try:
        moment = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; one without a zone is not one
        return None
    return moment.timestamp()
