"""The verdict as a reader sees it: a plain-text table (pure; `soak.run` prints it, and the JSON
document beside it)."""

from __future__ import annotations

from soak.verdict import Check, ProcessSample, SoakVerdict

__all__ = ["progress_line", "verdict_table"]

_HEADER = ("check", "subject", "value", "limit", "result", "figures")


def verdict_table(verdict: SoakVerdict) -> str:
    """One row per check, columns aligned, then the verdict's own line."""
    rows = [_HEADER, *(_row(check) for check in verdict.checks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER) - 1)]
    lines = [
        "  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]
    failed = [check for check in verdict.checks if not check.passed]
    outcome = "PASS" if verdict.passed else f"FAIL ({len(failed)} of {len(verdict.checks)} checks)"
    lines.append(
        f"soak verdict: {outcome}; {verdict.requests} requests in {verdict.seconds:g} s at "
        f"{verdict.rate_rps:.2f} req/s (capacity {verdict.capacity_rps:.2f} req/s)"
    )
    early, late = verdict.machine_load
    if early is not None and late is not None:
        lines.append(f"machine load average {early:.1f} early, {late:.1f} late (latency windows)")
    return "\n".join(lines)


def _row(check: Check) -> tuple[str, str, str, str, str, str]:
    value, limit = _figures(check)
    result = "pass" if check.passed else "FAIL"
    return (check.check, check.subject, value, limit, result, check.detail)


def _figures(check: Check) -> tuple[str, str]:
    """The value and the limit as the check reads them: a count, a share, a change in fds."""
    if check.check == "requests lost":
        return _or_dash(check.value, "{:.0f}"), f"<= {check.limit:.0f}"
    if check.check == "file descriptors":
        return _or_dash(check.value, "{:+g}"), f"<= +{check.limit:g}"
    return _or_dash(check.value, "{:+.1%}"), f"< {check.limit:.0%}"


def _or_dash(value: float | None, form: str) -> str:
    return "-" if value is None else form.format(value)


def progress_line(planned_s: float, latest: dict[str, ProcessSample]) -> str:
    """The processes' last samples, one line: "soak 120/600 s  router [12] 95.1 MiB 23 fds ...",
    its time that of the newest sample."""
    elapsed_s = max((sample.t for sample in latest.values()), default=0.0)
    parts = [
        f"{name} {sample.rss_bytes / 2**20:.1f} MiB {sample.fds} fds"
        for name, sample in latest.items()
    ]
    return f"soak {elapsed_s:.0f}/{planned_s:.0f} s  " + "  |  ".join(parts)
