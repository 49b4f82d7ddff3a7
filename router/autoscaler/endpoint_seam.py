"""The seam between the endpoint resource and the autoscaler loop that scales it.

The endpoint in the store is the one source of truth for its parameters: `up` publishes its
flags there at start-up, the management API (`/api/v0/endpoints/{name}`) and
`PATCH /autoscaler/params` both change them there, and `follow_endpoint` makes the loop scale
by whatever the store holds from its next tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from router.autoscaler.loop import AutoscalerLoop
from router.autoscaler.params import EndpointParams
from router.autoscaler.policy import Policy
from router.endpoints.models import Endpoint, EndpointState
from router.endpoints.store import EndpointStore, Watcher

__all__ = ["follow_endpoint", "publish_params", "scaling_params"]

log = logging.getLogger(__name__)

PolicyFactory = Callable[[EndpointParams], Policy]


async def publish_params(
    store: EndpointStore,
    name: str,
    params: EndpointParams,
    *,
    model_id: str = "",
    allow_private_workers: bool = False,
) -> None:
    """Make `params` (and a template for `model_id`) endpoint `name`'s, and persist them;
    `allow_private_workers` for a provider whose workers run on this machine or network."""
    endpoint = store.endpoints.get(name)
    if endpoint is None:
        return
    template = endpoint.template.model_copy(update={"model_id": model_id, "backend": "embedded"})
    update = {
        "params": params,
        "template": template,
        "allow_private_workers": allow_private_workers or endpoint.allow_private_workers,
    }
    if any(getattr(endpoint, field) != value for field, value in update.items()):
        store.put_endpoint(endpoint.model_copy(update=update))
        await store.save()


def follow_endpoint(
    store: EndpointStore, loop: AutoscalerLoop, name: str, make_policy: PolicyFactory
) -> None:
    """Make the loop follow endpoint `name` of `store`: its state and parameters as they are
    now (a restart keeps a suspended or stopped endpoint so), then every change."""
    changed = _follower(loop, name, make_policy)
    store.watch(changed)
    changed(name, store.endpoints.get(name))


def _follower(loop: AutoscalerLoop, name: str, make_policy: PolicyFactory) -> Watcher:
    """A store watcher: when endpoint `name`'s parameters change, the loop decides with a fresh
    policy (its windows start empty) by the new ones from its next tick; while the endpoint is
    `suspended` the loop manages nothing (Vast's meaning: workers stay as they are)."""

    def changed(endpoint_name: str, endpoint: Endpoint | None) -> None:
        if endpoint_name != name or endpoint is None:
            return
        suspended = endpoint.endpoint_state is EndpointState.SUSPENDED
        if suspended != loop.suspended:
            loop.suspended = suspended
            log.info("autoscaler: endpoint %s is %s", name, endpoint.endpoint_state.value)
        params = scaling_params(endpoint)
        if params != loop.params:
            loop.reconfigure(make_policy(params))

    return changed


def scaling_params(endpoint: Endpoint) -> EndpointParams:
    """What the autoscaler scales by: the endpoint's parameters, or none at all for a stopped
    endpoint (its workers all go; a suspended one keeps them as they are and routes nothing)."""
    if endpoint.endpoint_state is not EndpointState.STOPPED:
        return endpoint.params
    nothing = {"min_workers": 0, "min_load": 0.0, "cold_workers": 0, "max_workers": 0}
    return endpoint.params.model_copy(update=nothing)
