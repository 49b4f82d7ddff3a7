"""Every service reads only the environment variables it declares, and documents each of them.

For each settings class: the names it reads (from its fields' `validation_alias`) equal the
`environment` column of the Settings table in its docs file; every declared name changes its
setting; no other spelling does (a bare field name, a lower-case name, a `TGIS_` name it does
not declare). Across the tree: every settings class is one of these, and only the command
modules touch `os.environ`.
"""

from __future__ import annotations

import ast
import enum
import re
import types
from pathlib import Path
from typing import Literal, Union, get_args, get_origin

import pytest
from pydantic import FilePath
from pydantic.fields import FieldInfo

from client.settings import ClientSettings
from common.settings import ServiceSettings, declared_names
from pyworker.settings import WorkerSettings
from router.settings import RouterSettings
from tgi_server.settings import BackendSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "protocol",
    "common",
    "httpedge",
    "router",
    "pyworker",
    "tgi_server",
    "client",
    "tgi_serverless",
)

DOCUMENTED_IN: dict[type[ServiceSettings], str] = {
    RouterSettings: "docs/router.md",
    WorkerSettings: "docs/pyworker.md",
    BackendSettings: "docs/backend.md",
    ClientSettings: "docs/bench.md",
}
SETTINGS = list(DOCUMENTED_IN)

ENVIRONMENT_NAME = re.compile(r"`([A-Z][A-Z0-9_]*(?:<[A-Z0-9_]+>)?)`")
FAMILY_MEMBER = "3000"
NEEDS = {
    "TGIS_WORKER_TOKEN": {"TGIS_ALLOW_ANONYMOUS_WORKERS": "true"},
    "TGIS_STATE_URL": {"TGIS_STATE_SECRET": "s" * 32},
}
"""What a variable is valid only with (the router's shared worker token: anonymous workers;
shared state: its secret)."""


def documented_names(doc: str) -> list[str]:
    """The names in the `environment` column of the first table under `## Settings`."""
    section = doc.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    assert len(rows) > 2, "no table under ## Settings"
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    column = header.index("environment")
    names: list[str] = []
    for row in rows[2:]:
        cells = row.strip("|").split("|")
        names.extend(ENVIRONMENT_NAME.findall(cells[column]))
    return names


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda cls: cls.__name__)
def test_the_docs_table_lists_exactly_what_the_settings_read(
    settings: type[ServiceSettings],
) -> None:
    doc_path = DOCUMENTED_IN[settings]
    documented = documented_names((ROOT / doc_path).read_text(encoding="utf-8"))
    read = settings.environment_names()
    assert read, f"{settings.__name__} reads no variable"
    assert len(documented) == len(set(documented)), f"{doc_path} lists a name twice"
    assert sorted(set(read) - set(documented)) == [], f"read but not documented in {doc_path}"
    assert sorted(set(documented) - set(read)) == [], f"documented in {doc_path} but not read"


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda cls: cls.__name__)
def test_our_own_names_start_with_tgis_and_all_are_upper_case(
    settings: type[ServiceSettings],
) -> None:
    for name in settings.environment_names():
        assert name == name.upper(), name
    ours = {name for name in settings.environment_names() if "TGIS" in name}
    assert all(name.startswith("TGIS_") for name in ours), ours


def declared_cases() -> list[tuple[type[ServiceSettings], str, str]]:
    return [
        (settings, field_name, name)
        for settings in SETTINGS
        for field_name, field in settings.model_fields.items()
        for name in declared_names(field)
    ]


@pytest.mark.parametrize(
    ("settings", "field_name", "name"),
    declared_cases(),
    ids=lambda value: value.__name__ if isinstance(value, type) else value,
)
def test_each_declared_name_changes_its_setting(
    settings: type[ServiceSettings], field_name: str, name: str
) -> None:
    default = getattr(settings.from_environment({}), field_name)
    variable, value = example_assignment(name, settings.model_fields[field_name], default)
    environ = {variable: value, **NEEDS.get(variable, {})}
    changed = getattr(settings.from_environment(environ), field_name)
    assert changed != default, f"{variable}={value} left {field_name} at {default!r}"


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda cls: cls.__name__)
def test_no_undeclared_spelling_changes_anything(settings: type[ServiceSettings]) -> None:
    declared = set(settings.environment_names())
    environ = {name: "7" for name in undeclared_spellings(settings) if name not in declared}
    assert settings.from_environment(environ) == settings.from_environment({})


@pytest.mark.parametrize(
    ("settings", "variable", "value"),
    [
        (WorkerSettings, "REPLAY_WINDOW", "7"),
        (WorkerSettings, "ENDPOINT", "x"),
        (WorkerSettings, "PORT", "1"),
        (WorkerSettings, "worker_port", "1"),
        (WorkerSettings, "public_url", "http://elsewhere"),
        (RouterSettings, "ENDPOINT", "x"),
        (RouterSettings, "PORT", "1"),
        (RouterSettings, "tgis_port", "1"),
        (RouterSettings, "tgis_router_port", "1"),
        (RouterSettings, "NO_WORKER_REPLY", "retry"),
        (RouterSettings, "TICKET_SETTLE_S", "5"),
        (BackendSettings, "port", "1"),
        (BackendSettings, "model_id", "org/model"),
        (BackendSettings, "HOSTNAME", "3f9a2c1b7d4e"),
        (BackendSettings, "tgis_backend_host", "0.0.0.0"),
        (ClientSettings, "API_KEY", "k"),
        (ClientSettings, "tgis_api_key", "k"),
    ],
)
def test_a_bare_undeclared_name_changes_nothing(
    settings: type[ServiceSettings], variable: str, value: str
) -> None:
    assert settings.from_environment({variable: value}) == settings.from_environment({})


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda cls: cls.__name__)
def test_settings_built_directly_read_no_environment(
    settings: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in settings.environment_names():
        field_name, field = field_of(settings, name)
        default = getattr(settings(), field_name)
        variable, value = example_assignment(name, field, default)
        monkeypatch.setenv(variable, value)
    assert settings() == settings.from_environment({})


def test_every_settings_class_in_the_tree_is_checked_here() -> None:
    found = {
        node.name
        for path in sources()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name != "ServiceSettings" and is_settings(node)
    }
    assert found == {settings.__name__ for settings in SETTINGS}


def test_no_package_uses_pydantic_settings() -> None:
    users = [
        str(path.relative_to(ROOT))
        for path in sources()
        if "pydantic_settings" in imported_modules(path)
    ]
    assert users == []


def test_only_command_modules_read_the_environment() -> None:
    readers = sorted(str(path.relative_to(ROOT)) for path in sources() if reads_environment(path))
    commands = [reader for reader in readers if is_command_module(reader)]
    assert readers == commands
    assert "pyworker/command.py" in readers


FORMATTED_EXAMPLES = {
    "TGIS_METRICS_ADDRESS": "127.0.0.1:9400",
    "TGIS_ROUTER_FINGERPRINT": "ab" * 32,
    "TGIS_STATE_URL": "redis://127.0.0.1:6379/0",
}
"""Values for the variables a generic value cannot spell (a format of their own)."""


def example_assignment(name: str, field: FieldInfo, default: object) -> tuple[str, str]:
    """A variable for `name` (a family's member, for a family) and a valid value for `field`
    other than `default`, as the environment would spell it."""
    prefix, family, _ = name.partition("<")
    if family:
        return prefix + FAMILY_MEMBER, "41234"
    if name in FORMATTED_EXAMPLES:
        return name, FORMATTED_EXAMPLES[name]
    return name, another_value(field, default)


def another_value(field: FieldInfo, default: object) -> str:
    kinds = field_types(field)
    choices = [value for kind in kinds for value in choices_of(kind)]
    if choices:
        return next(str(choice) for choice in choices if choice != default)
    if isinstance(default, bool):
        return "false" if default else "true"
    if isinstance(default, int | float):
        at_most = [getattr(rule, "le", None) for rule in field.metadata]
        if any(bound is not None and default + 1 > bound for bound in at_most):
            return str(default / 2)  # the default is the most it may be
        return str(default + 1)
    if int in kinds:
        return "100000"  # above every token limit's default, below none of their bounds
    if float in kinds:
        return "1.5"
    if FilePath in kinds:
        return __file__  # a file that exists, as the setting requires
    if Path in kinds:
        return "/tmp/tgis-changed"
    return "changed"


def field_types(field: FieldInfo) -> list[object]:
    annotation = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        return [kind for kind in get_args(annotation) if kind is not type(None)]
    return [annotation]


def choices_of(kind: object) -> list[object]:
    if get_origin(kind) is Literal:
        return list(get_args(kind))
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [member.value for member in kind]
    return []


def field_of(settings: type[ServiceSettings], name: str) -> tuple[str, FieldInfo]:
    for field_name, field in settings.model_fields.items():
        if name in declared_names(field):
            return field_name, field
    raise AssertionError(f"{settings.__name__} declares no {name}")


def undeclared_spellings(settings: type[ServiceSettings]) -> set[str]:
    """What case-insensitive or prefix-based settings would have read: each field's own name in
    upper and lower case, with and without `TGIS_`, and each declared name in lower case."""
    spellings: set[str] = set()
    for field_name, field in settings.model_fields.items():
        for base in (field_name, f"tgis_{field_name}"):
            spellings.update({base, base.upper()})
        spellings.update(name.lower() for name in declared_names(field))
    return spellings


def sources() -> list[Path]:
    paths = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(paths) > 100, "the packages' sources were not found"
    return paths


def is_settings(node: ast.ClassDef) -> bool:
    names = {base.id for base in node.bases if isinstance(base, ast.Name)}
    names |= {base.attr for base in node.bases if isinstance(base, ast.Attribute)}
    return bool(names & {"ServiceSettings", "BaseSettings"})


def imported_modules(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.split(".")[0])
    return modules


ENVIRONMENT_ACCESS = {"environ", "environb", "getenv"}


def reads_environment(path: Path) -> bool:
    """Whether the module touches `os.environ` or `os.getenv`, or imports either from os."""
    return any(reads_os_environment(node) for node in ast.walk(ast.parse(path.read_text("utf-8"))))


def reads_os_environment(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_ACCESS:
        return isinstance(node.value, ast.Name) and node.value.id == "os"
    if isinstance(node, ast.ImportFrom) and node.module == "os":
        return bool({alias.name for alias in node.names} & ENVIRONMENT_ACCESS)
    return False


def is_command_module(relative: str) -> bool:
    return (
        relative.startswith("router/cli/")
        or relative in ("pyworker/command.py", "tgi_server/command.py")
        or (relative.startswith("client/") and relative.endswith("_command.py"))
    )
