"""Manage a router's endpoints, worker groups and signing keys through its management API
(/api/v0).

An endpoint is what clients route to: a name, an API key, a state (active, suspended,
stopped), Vast's autoscaling parameters and a template for its workers. A worker group
belongs to an endpoint and says what runs its workers (template, search_params, gpu_ram).
Every command needs the router's admin key (--admin-key or $TGIS_ADMIN_KEY; `tgi-serverless
router` and `up` print it at start).

Signing keys: `keys list` shows the published ones; `keys rotate` publishes a new key that signs
after the router's key_lead_s; `keys revoke KID` stops publishing KID at once and for good
(workers drop it within their key poll interval, 60 s); if KID signs now, a new key takes its
place and signs at once.

Parameters (--set NAME=VALUE, repeatable): min_load, target_util, cold_mult, cold_workers,
max_workers, max_queue_time, target_queue_time, inactivity_timeout, and the autoscaler's
others (min_workers, tick_s, ...). A value out of range is refused with its valid range.

Examples:
  tgi-serverless endpoints list
  tgi-serverless endpoints create chat --set max_workers=4 --set target_util=0.8 \\
      --backend embedded --model-id HuggingFaceTB/SmolLM2-135M-Instruct
  tgi-serverless endpoints update chat --state suspended
  tgi-serverless endpoints delete chat
  TGIS_JOIN_TOKEN=$(tgi-serverless endpoints join-token chat) tgi-serverless worker ...
  tgi-serverless endpoints groups create chat-cpu --endpoint chat --set gpu_ram=0
  tgi-serverless endpoints keys revoke 56475aa75463474c
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from router.autoscaler.params import ParamsError, add_params_flag, parse_assignments
from router.settings import RouterSettings

HELP = "create, list, update and delete endpoints and worker groups; rotate and revoke keys"

DEFAULT_ROUTER = "http://127.0.0.1:8080"


class CommandError(Exception):
    """What to tell the user; the command exits 1."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--router", default=DEFAULT_ROUTER, help=f"router URL ({DEFAULT_ROUTER})")
    parser.add_argument("--admin-key", help="the router's admin key (default $TGIS_ADMIN_KEY)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="list endpoints")
    show = actions.add_parser("show", help="show one endpoint")
    show.add_argument("name")
    show.add_argument("--reveal-key", action="store_true", help="include its API key")
    for action in ("create", "update"):
        sub = actions.add_parser(action, help=f"{action} an endpoint")
        sub.add_argument("name")
        _add_endpoint_fields(sub)
    delete = actions.add_parser("delete", help="delete an endpoint and its worker groups")
    delete.add_argument("name")
    join = actions.add_parser(
        "join-token",
        help="print a one-time join token for a worker of the endpoint (its TGIS_JOIN_TOKEN)",
    )
    join.add_argument("name")
    join.add_argument("--worker-id", help="only the worker with this id may use it")
    join.add_argument("--ttl", type=float, help="seconds it stays valid (default: the router's)")
    groups = actions.add_parser("groups", help="worker groups: list, show, create, update, delete")
    group_actions = groups.add_subparsers(dest="group_action", metavar="ACTION", required=True)
    group_actions.add_parser("list", help="list worker groups")
    for action in ("show", "delete"):
        group_actions.add_parser(action, help=f"{action} a worker group").add_argument("name")
    for action in ("create", "update"):
        sub = group_actions.add_parser(action, help=f"{action} a worker group")
        sub.add_argument("name")
        sub.add_argument("--endpoint", help="the endpoint it serves")
        _add_template_fields(sub)
        add_params_flag(sub, help="a worker-group parameter; repeatable")
    keys = actions.add_parser("keys", help="signing keys: list, rotate, revoke")
    key_actions = keys.add_subparsers(dest="key_action", metavar="ACTION", required=True)
    key_actions.add_parser("list", help="the published keys")
    key_actions.add_parser("rotate", help="publish a new key; it signs after key_lead_s")
    revoke = key_actions.add_parser("revoke", help="stop publishing a key, at once and for good")
    revoke.add_argument("kid", help="the key's id, as `keys list` shows it")


def _add_endpoint_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", help="the endpoint's API key (create: generated if absent)")
    parser.add_argument("--state", choices=["active", "suspended", "stopped"])
    add_params_flag(parser)
    _add_template_fields(parser)


def _add_template_fields(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["embedded", "tgi"], help="the workers' backend")
    parser.add_argument("--model-id", help="MODEL_ID for the workers (hub id or path)")
    parser.add_argument(
        "--launch-arg",
        dest="launch_args",
        action="append",
        metavar="ARG",
        help="an argument for the backend's launcher (--launch-arg=--flag); repeatable",
    )


def run(args: argparse.Namespace) -> int:
    admin_key = args.admin_key or RouterSettings.one_from_environment("admin_key", os.environ)
    api = _Api(args.router.rstrip("/"), admin_key or "")
    try:
        if args.action == "join-token":
            print(_join_token(api, args))
        else:
            print(json.dumps(_dispatch(api, args), indent=2))
    except CommandError as exc:
        print(f"tgi-serverless endpoints: {exc}", file=sys.stderr)
        return 1
    return 0


def _dispatch(api: _Api, args: argparse.Namespace) -> Any:
    if args.action == "groups":
        return _dispatch_groups(api, args)
    if args.action == "keys":
        return _dispatch_keys(api, args)
    path = "/api/v0/endpoints/"
    if args.action == "list":
        return api.call("GET", path)
    if args.action == "show":
        query = "?reveal_key=true" if args.reveal_key else ""
        return api.call("GET", f"{path}{args.name}{query}")
    if args.action == "delete":
        return api.call("DELETE", f"{path}{args.name}")
    body = {**_parse_params(args.params), **_template(args)}
    if args.api_key:
        body["api_key"] = args.api_key
    if args.state:
        body["endpoint_state"] = args.state
    if args.action == "create":
        return api.call("POST", path, {"name": args.name, **body})
    return api.call("PATCH", f"{path}{args.name}", body)


def _join_token(api: _Api, args: argparse.Namespace) -> str:
    """The token alone, so that `TGIS_JOIN_TOKEN=$(...)` takes it."""
    body: dict[str, Any] = {}
    if args.worker_id:
        body["worker_id"] = args.worker_id
    if args.ttl is not None:
        body["ttl_s"] = args.ttl
    answer = api.call("POST", f"/api/v0/endpoints/{args.name}/join-tokens", body)
    return str(answer["join_token"])


def _dispatch_groups(api: _Api, args: argparse.Namespace) -> Any:
    path = "/api/v0/workergroups/"
    action = args.group_action
    if action == "list":
        return api.call("GET", path)
    if action == "show":
        return api.call("GET", f"{path}{args.name}")
    if action == "delete":
        return api.call("DELETE", f"{path}{args.name}")
    body = {**_parse_params(args.params), **_template(args)}
    if args.endpoint:
        body["endpoint"] = args.endpoint
    if action == "create":
        return api.call("POST", path, {"name": args.name, **body})
    return api.call("PATCH", f"{path}{args.name}", body)


def _dispatch_keys(api: _Api, args: argparse.Namespace) -> Any:
    if args.key_action == "list":
        return api.call("GET", "/keys")
    if args.key_action == "rotate":
        return api.call("POST", "/api/v0/keys/rotate")
    return api.call("DELETE", f"/api/v0/keys/{urllib.parse.quote(args.kid, safe='')}")


def _template(args: argparse.Namespace) -> dict[str, Any]:
    template: dict[str, Any] = {}
    if args.backend:
        template["backend"] = args.backend
    if args.model_id is not None:
        template["MODEL_ID"] = args.model_id
    if args.launch_args:
        template["launch_args"] = args.launch_args
    return {"template": template} if template else {}


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs; values are JSON where they parse (numbers), else text."""
    try:
        assignments = parse_assignments(pairs)
    except ParamsError as exc:
        raise CommandError(str(exc)) from None
    params: dict[str, Any] = {}
    for name, value in assignments.items():
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


class _Api:
    def __init__(self, base_url: str, admin_key: str) -> None:
        self._base_url = base_url
        self._admin_key = admin_key

    def call(self, method: str, path: str, body: Any = None) -> Any:
        if not self._admin_key:
            raise CommandError("no admin key: pass --admin-key or set TGIS_ADMIN_KEY")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self._base_url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self._admin_key}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise CommandError(f"{exc.code}: {_error_text(exc)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(f"cannot reach the router at {self._base_url}: {exc}") from None


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read())["error"])
    except (ValueError, KeyError, TypeError):
        return str(exc.reason)
