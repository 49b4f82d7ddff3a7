"""`tgi-serverless generate`: its flags, its help, and what it does before any network call."""

from __future__ import annotations

import argparse

import pytest

from client import generate_command
from client._async import DEFAULT_ROUTER_URL
from client.settings import command_router_urls


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tgi-serverless generate")
    generate_command.add_arguments(parser)
    return parser


def test_the_defaults_match_the_architecture() -> None:
    args = parser().parse_args(["Hello"])
    assert args.prompt == "Hello"
    assert args.router is None  # then $TGIS_ROUTER_URL, else the default
    assert command_router_urls(args.router, {}, DEFAULT_ROUTER_URL) == ("http://127.0.0.1:8080",)
    assert args.endpoint == "default"
    assert args.api_key is None
    assert args.max_new_tokens == 100
    assert args.stream is False
    assert args.temperature is None
    assert args.seed is None
    assert args.details is False


def test_every_flag_parses() -> None:
    argv = "Hi --router http://r:1 --endpoint e --api-key k --max-new-tokens 7 --stream "
    argv += "--temperature 0.5 --seed 0 --details --wait 3"
    args = parser().parse_args(argv.split())
    assert (args.router, args.endpoint, args.api_key) == (["http://r:1"], "e", "k")
    assert (args.max_new_tokens, args.stream, args.temperature) == (7, True, 0.5)
    assert (args.seed, args.details, args.wait) == (0, True, 3.0)


def test_several_routers_come_from_repeated_flags_comma_lists_or_the_environment() -> None:
    args = parser().parse_args(
        ["Hi", "--router", "http://a:1/", "--router", "http://b:2,http://c:3"]
    )
    urls = command_router_urls(args.router, {"TGIS_ROUTER_URL": "http://ignored:9"}, "http://d:4")
    assert urls == ("http://a:1", "http://b:2", "http://c:3")
    environ = {"TGIS_ROUTER_URL": "http://e:5, http://f:6"}
    assert command_router_urls(None, environ, "http://d:4") == ("http://e:5", "http://f:6")
    with pytest.raises(ValueError, match="must be an http"):
        command_router_urls(["http://a:1,ftp://b"], {}, "http://d:4")


def test_a_temperature_of_zero_asks_for_greedy_decoding() -> None:
    assert parser().parse_args(["Hi", "--temperature", "0"]).temperature == 0


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["Hi", "--max-new-tokens", "0"],
        ["Hi", "--max-new-tokens", "many"],
        ["Hi", "--temperature", "-0.5"],
        ["Hi", "--temperature", "inf"],
        ["Hi", "--seed", "-1"],
        ["Hi", "--wait", "-5"],
    ],
)
def test_usage_errors_exit_2_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        parser().parse_args(argv)
    assert caught.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_the_help_teaches_the_flow_the_key_and_examples() -> None:
    doc = generate_command.__doc__
    assert doc is not None
    for needed in ("/route/", "/generate_stream", "TGIS_API_KEY", "Examples:"):
        assert needed in doc
    assert "\n" not in generate_command.HELP


def test_without_an_api_key_it_says_what_to_change_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TGIS_API_KEY", raising=False)
    assert generate_command.run(parser().parse_args(["Hi"])) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "--api-key" in captured.err
    assert "TGIS_API_KEY" in captured.err
