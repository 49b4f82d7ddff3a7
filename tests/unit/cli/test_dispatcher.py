from __future__ import annotations

import subprocess
import sys

import pytest

from tests.heavy_libraries import heavy_libraries_loaded_by
from tgi_serverless.cli import COMMANDS, build_parser, load_command, main, named_command


def test_help_lists_every_command_with_a_one_line_description(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        help_line = load_command(name).HELP
        assert "\n" not in help_line
        assert name in out
        assert help_line[:40] in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_its_own_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert f"tgi-serverless {name}" in capsys.readouterr().out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err


def test_help_does_not_import_torch_or_transformers() -> None:
    code = "from tgi_serverless.cli import build_parser; build_parser()"
    assert heavy_libraries_loaded_by(code) == []


def test_the_parser_knows_the_architecture_flags() -> None:
    parser = build_parser()
    args = parser.parse_args(["up", "--port", "9000", "--workers", "2", "--api-key", "k"])
    assert (args.port, args.workers, args.api_key) == (9000, 2, "k")
    args = parser.parse_args(
        ["generate", "hi", "--router", "http://r", "--endpoint", "e", "--max-new-tokens", "5"]
    )
    assert (args.router, args.endpoint, args.max_new_tokens) == (["http://r"], "e", 5)
    args = parser.parse_args(["worker", "--port", "3001", "--backend-url", "http://b"])
    assert (args.port, args.backend_url) == (3001, "http://b")
    assert parser.parse_args(["router", "--port", "8081"]).port == 8081


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["worker", "--port", "3000"], "worker"),
        (["--log-level", "DEBUG", "backend", "--port", "1"], "backend"),
        (["--log-level=DEBUG", "up"], "up"),
        (["--log-level", "up"], None),  # "up" is the option's value here: argparse will say so
        (["--help"], None),
        (["wroker"], None),
        ([], None),
    ],
)
def test_the_command_a_command_line_names(argv: list[str], named: str | None) -> None:
    assert named_command(argv) == named


def test_a_worker_start_loads_the_worker_command_only() -> None:
    """A worker (started for each cold start) does not pay for the router's and the bench's
    imports: main() builds the parser of the command it is given only."""
    code = (
        "import sys; from tgi_serverless.cli import build_parser, named_command; "
        "build_parser(only=named_command(['worker', '--port', '1'])); "
        "print(sorted(m for m in ('router.cli.up', 'client.bench_command', 'pyworker.command') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "['pyworker.command']"
