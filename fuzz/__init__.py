"""Coverage-guided fuzz targets (atheris) for the code that meets untrusted bytes.

One module per concern, each with `check(data: bytes) -> None`: it runs the code under test on
`data` and asserts its contract (only the documented exceptions escape, and the documented
properties hold). `python -m fuzz NAME` fuzzes one target (`fuzz.run`); the tests in
tests/unit/fuzz replay the seeds and every crash ever found (`fuzz/regressions/`), and fuzz each
target for a few seconds. docs/reliability.md says what is fuzzed and what was found.
"""
