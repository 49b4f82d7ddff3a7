"""Ticket checks: the verifier (the numbered checks), the replay window, and the router's keys,
fetched and refreshed."""
