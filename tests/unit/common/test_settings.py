"""ServiceSettings: only declared names, exactly as spelled; families; flags over environment."""

from __future__ import annotations

import argparse

import pydantic
import pytest
from pydantic import AliasChoices, Field

from common.settings import ServiceSettings


class Toy(ServiceSettings):
    port: int = Field(default=1, validation_alias="TOY_PORT")
    token: str = Field(default="", validation_alias=AliasChoices("TOY_TOKEN", "OLD_TOY_TOKEN"))
    ports: dict[str, str] = Field(default_factory=dict, validation_alias="TOY_PORT_<PORT>")
    window: int = 8


def test_each_field_reads_its_declared_name_exactly() -> None:
    assert Toy.from_environment({"TOY_PORT": "5"}).port == 5
    assert Toy.from_environment({"toy_port": "5", "Toy_Port": "5", "PORT": "5"}).port == 1


def test_a_field_without_a_name_is_never_read() -> None:
    environ = {"window": "9", "WINDOW": "9", "TOY_WINDOW": "9"}
    assert Toy.from_environment(environ).window == 8


def test_the_first_declared_name_that_is_set_wins() -> None:
    assert Toy.from_environment({"OLD_TOY_TOKEN": "old"}).token == "old"
    assert Toy.from_environment({"OLD_TOY_TOKEN": "old", "TOY_TOKEN": "new"}).token == "new"


def test_a_family_gathers_every_member_by_suffix() -> None:
    environ = {"TOY_PORT_22": "40022", "TOY_PORT_3000": "41234", "TOY_PORT_": "x"}
    assert Toy.from_environment(environ).ports == {"22": "40022", "3000": "41234"}


def test_flags_win_and_a_none_flag_was_not_given() -> None:
    environ = {"TOY_PORT": "5", "TOY_TOKEN": "t"}
    settings = Toy.from_environment(environ, port=7, token=None)
    assert (settings.port, settings.token) == (7, "t")


def test_command_line_flags_count_by_field_name_and_extra_wins() -> None:
    args = argparse.Namespace(port=7, token=None, window=3, handler=print, log_level="INFO")
    settings = Toy.from_command_line(args, {"TOY_TOKEN": "t"}, window=4)
    assert (settings.port, settings.token, settings.window) == (7, "t", 4)


def test_the_names_read_are_listed_in_field_order() -> None:
    assert Toy.environment_names() == ["TOY_PORT", "TOY_TOKEN", "OLD_TOY_TOKEN", "TOY_PORT_<PORT>"]


def test_unknown_fields_are_refused_and_settings_are_frozen() -> None:
    with pytest.raises(pydantic.ValidationError):
        Toy.from_environment({}, colour="blue")
    with pytest.raises(pydantic.ValidationError):
        Toy().port = 2  # type: ignore[misc]


def test_one_setting_is_read_alone_without_validating_the_others() -> None:
    environ = {"OLD_TOY_TOKEN": "old", "TOY_PORT": "not a port", "toy_token": "no"}
    assert Toy.one_from_environment("token", environ) == "old"
    assert Toy.one_from_environment("token", {"toy_token": "no"}) is None
    with pytest.raises(pydantic.ValidationError):
        Toy.from_environment(environ)
