"""A small read-only HTML status page: endpoints, and their workers with state, load and perf.

Rendered on the server from the same data as `GET /status`, every value escaped; no script,
no form, no secret. It refreshes itself every few seconds.
"""

from __future__ import annotations

from html import escape

from protocol.router_status import EndpointStatus, RouterStatus, WorkerStatus

__all__ = ["render_status_page"]

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.05rem; margin-top: 1.6rem; }
table { border-collapse: collapse; min-width: 40rem; }
th, td { text-align: left; padding: .25rem .8rem; border-bottom: 1px solid #dde1ea; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.state { font-weight: 600; } .muted { color: #6b7385; }
"""


def render_status_page(status: RouterStatus) -> str:
    sections = [_endpoint_section(endpoint) for endpoint in status.endpoints]
    body = "\n".join(sections) or '<p class="muted">No endpoints.</p>'
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="5">'
        "<title>tgi-serverless router</title>"
        f"<style>{STYLE}</style></head><body>\n"
        "<h1>tgi-serverless router</h1>\n"
        f'<p class="muted" id="summary">{len(status.endpoints)} endpoint(s), '
        f"{status.waiting} request(s) waiting for a worker</p>\n"
        f"{body}\n</body></html>\n"
    )


def _endpoint_section(endpoint: EndpointStatus) -> str:
    name = escape(endpoint.name)
    workers = endpoint.workers
    rows = "\n".join(_worker_row(worker) for worker in workers)
    table = (
        '<table class="workers"><thead><tr><th>worker</th><th>url</th><th>state</th>'
        "<th>in-flight load (tokens)</th><th>max perf (tokens/s)</th>"
        "<th>at start-up (tokens/s)</th>"
        "<th>expected wait (s)</th><th>last report (s ago)</th></tr></thead>"
        f"<tbody>\n{rows}\n</tbody></table>"
        if workers
        else '<p class="muted">No workers yet.</p>'
    )
    state = escape(endpoint.endpoint_state)
    return (
        f'<section class="endpoint" data-endpoint="{name}">'
        f'<h2>{name} <span class="muted">({state}; max_workers '
        f"{endpoint.max_workers})</span></h2>\n{table}</section>"
    )


def _worker_row(worker: WorkerStatus) -> str:
    cells = [
        f"<td>{escape(worker.id)}</td>",
        f"<td>{escape(worker.url)}</td>",
        f'<td class="state">{escape(worker.state)}</td>',
        f'<td class="num">{worker.expected_load:.0f}</td>',
        f'<td class="num">{worker.max_perf:.1f}</td>',
        f'<td class="num">{worker.startup_perf:.1f}</td>',
        f'<td class="num">{worker.expected_wait_s:.2f}</td>',
        f'<td class="num">{worker.last_report_age_s:.1f}</td>',
    ]
    return f'<tr data-worker="{escape(worker.id)}">{"".join(cells)}</tr>'
