"""Every input a fuzz target was seeded with, and every input that ever broke one
(`fuzz/regressions/NAME`, one file each, named by libFuzzer or by what it found), replayed
through the target's contract check."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.run import TARGETS


def _inputs() -> list[tuple[str, Path]]:
    found = []
    for name, target in sorted(TARGETS.items()):
        for folder in (target.seeds(name), target.regressions(name)):
            if folder.is_dir():
                found += [(name, path) for path in sorted(folder.iterdir()) if path.is_file()]
    return found


INPUTS = _inputs()


@pytest.mark.parametrize(
    ("name", "path"),
    INPUTS,
    ids=[f"{name}/{path.parent.name}/{path.name}" for name, path in INPUTS],
)
def test_the_target_keeps_its_contract_on(name: str, path: Path) -> None:
    TARGETS[name].load()(path.read_bytes())


def test_every_target_has_seeds() -> None:
    seeded = {name for name, path in INPUTS if path.parent == TARGETS[name].seeds(name)}
    assert seeded == set(TARGETS)
