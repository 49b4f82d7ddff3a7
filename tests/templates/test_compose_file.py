"""templates/compose.yaml against the Compose Specification's JSON schema, and what it promises:
keys only where they are needed, Prometheus scraping every service that has metrics, Grafana
provisioned with the dashboard and the datasource it names. (tests/e2e/test_compose_stack.py runs
its services.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.templates.compose import TEMPLATES, MissingVariable, interpolate, load

SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
KEYS = {
    "TGIS_API_KEY": "compose-api-key",
    "TGIS_ADMIN_KEY": "compose-admin-key",
    "GRAFANA_ADMIN_PASSWORD": "compose-grafana",
}
WORKERS = ("worker-1", "worker-2")
DASHBOARD = TEMPLATES / "grafana" / "dashboards" / "tgi-serverless.json"


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = json.loads(SCHEMA.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    return [error.message for error in validator.iter_errors(document)]


def test_the_compose_file_follows_the_compose_specification() -> None:
    assert schema_errors(load(KEYS)) == []


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    """The check can fail: a field the specification does not know is an error."""
    document = load(KEYS)
    document["services"]["router"]["helthcheck"] = document["services"]["router"]["healthcheck"]
    assert any("helthcheck" in error for error in schema_errors(document))


@pytest.mark.parametrize("missing", sorted(KEYS))
def test_no_key_has_a_default_compose_refuses_to_start_without_it(missing: str) -> None:
    with pytest.raises(MissingVariable, match=missing):
        load({name: value for name, value in KEYS.items() if name != missing})


def test_only_the_router_and_the_token_minting_service_hold_the_admin_key() -> None:
    services = load(KEYS)["services"]
    holders = {
        name
        for name, spec in services.items()
        if KEYS["TGIS_ADMIN_KEY"] in json.dumps(spec.get("environment", {}))
    }
    assert holders == {"router", "join-tokens"}
    for worker in WORKERS:
        assert not set(services[worker].get("environment", {})) & {
            "TGIS_API_KEY",
            "TGIS_ADMIN_KEY",
            "TGIS_WORKER_TOKEN",
            "TGIS_JOIN_TOKEN",
        }, "a worker reads its own join token from the volume, and holds no other secret"


def test_each_worker_joins_with_the_token_minted_for_its_id() -> None:
    services = load(KEYS)["services"]
    minting = " ".join(services["join-tokens"]["entrypoint"])
    for worker in WORKERS:
        spec = services[worker]
        assert spec["environment"]["CONTAINER_ID"] == worker
        assert worker in minting.split("for worker in ")[1].split(";")[0]
        assert "join-tokens:/var/lib/tgi-serverless/join-tokens:ro" in spec["volumes"]
        assert spec["depends_on"]["join-tokens"]["condition"] == "service_completed_successfully"


def test_prometheus_scrapes_the_routers_metrics_site_and_every_worker() -> None:
    services = load(KEYS)["services"]
    config = yaml.safe_load((TEMPLATES / "prometheus" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    metrics_port = services["router"]["environment"]["TGIS_METRICS_ADDRESS"].rsplit(":", 1)[1]
    expected = {f"router:{metrics_port}"} | {
        f"{worker}:{services[worker]['environment']['WORKER_PORT']}" for worker in WORKERS
    }
    assert targets == expected


def test_grafana_is_provisioned_with_the_dashboard_and_the_datasource_it_names() -> None:
    provisioning = TEMPLATES / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yaml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "tgi-serverless.yaml").read_text())
    grafana = load(KEYS)["services"]["grafana"]
    assert (
        f"./grafana/dashboards:{providers['providers'][0]['options']['path']}:ro"
        in (grafana["volumes"])
    )
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]


def test_the_dashboard_has_the_panels_an_operator_needs() -> None:
    titles = {panel["title"] for panel in json.loads(DASHBOARD.read_text())["panels"]}
    assert titles == {
        "Routes/s by outcome",
        "Route latency",
        "Workers by state",
        "Desired vs actual workers",
        "Queue time at the workers",
        "Tokens/s",
        "Time to first token",
        "Ticket rejections/s by reason",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$$HOME and $${X}", "$HOME and ${X}"),
        ("${SET} $SET", "yes yes"),
        ("${UNSET:-fallback} ${EMPTY:-fallback} [${EMPTY-unused}]", "fallback fallback []"),
        ("${UNSET}", ""),
    ],
)
def test_variables_are_interpolated_as_compose_does(text: str, expected: str) -> None:
    assert interpolate(text, {"SET": "yes", "EMPTY": ""}) == expected
