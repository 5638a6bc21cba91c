"""``watch``: follow a batch with a live progress bar until it ends.

It polls the friendly ``GET /api/batches/{id}``, whose progress comes from
the orchestrator's custom status, so a watcher costs one small read per
interval and never touches the instance history. The bar goes to stderr, the
final summary to stdout, so ``imagebatch watch ID > result.txt`` keeps only
the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from batchcli.api import ApiClient

TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})


class RateColumn(ProgressColumn):
    """Images per second over rich's sliding window (finished work only)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:5.1f} img/s" if speed else "    ? img/s", style="progress.data.speed")


def _counts(progress: dict[str, Any]) -> str:
    return (
        f"[green]{progress.get('done', 0)} done[/] · {progress.get('skipped', 0)} skipped · "
        f"[red]{progress.get('failed', 0)} failed[/] · {progress.get('in_flight', 0)} in flight"
    )


def watch(
    client: ApiClient,
    batch_id: str,
    *,
    interval: float = 1.0,
    console: Console | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the batch reaches a terminal status; return its last status."""
    console = console or Console(stderr=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    status = client.get_batch(batch_id)  # before the bar: a 404 or a dead URL stays one clean line
    announced = False
    with Progress(*columns, console=console, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(batch_id, total=None, counts="")
        while True:
            if status.get("batchStatus") == "AwaitingApproval" and not announced:
                # Once per wait: where the proof sheet is and how to decide.
                for line in review_lines(status):
                    bar.console.print(line, highlight=False, markup=False)
                announced = True
            elif status.get("batchStatus") != "AwaitingApproval":
                announced = False
            progress = status.get("progress") or {}
            completed = progress.get("completed")
            if completed is None:
                completed = sum(int(progress.get(k, 0)) for k in ("done", "skipped", "failed"))
            runtime = status.get("runtimeStatus", "Unknown")
            state = status.get("batchStatus")
            # Paused (and awaiting approval) say so in the bar: no progress is expected.
            stage = {"Paused": "paused", "AwaitingApproval": "awaiting_approval"}.get(
                state or "", status.get("stage") or runtime
            )
            bar.update(
                task,
                total=progress.get("total") or None,
                completed=completed,
                description=f"{batch_id} [dim]{stage}[/]",
                counts=_counts(progress),
            )
            if runtime in TERMINAL:
                return status
            sleep(interval)
            status = client.get_batch(batch_id)


def review_lines(status: dict[str, Any]) -> list[str]:
    """What a person needs while a batch awaits approval: the proof sheet and the commands."""
    review = status.get("review") or {}
    batch_id = status.get("id")
    where = review.get("proof_url") or review.get("proof") or review.get("proof_error") or "not written"
    lines = [f"{batch_id}: awaiting approval of {review.get('sample', '?')} sample image(s); proof sheet: {where}"]
    lines.append(
        f"  decide by {review.get('timeout_at', '?')} (then: {review.get('on_timeout', 'reject')}): "
        f"imagebatch approve {batch_id} | imagebatch reject {batch_id} --reason ..."
    )
    return lines


def outcome_lines(status: dict[str, Any]) -> list[str]:
    """The plain-text result printed when a batch ends."""
    progress = status.get("progress") or {}
    summary = status.get("summary") or {}
    lines = [
        f"{status.get('id')}: {status.get('batchStatus') or status.get('runtimeStatus')} - "
        f"{progress.get('done', 0)} processed, {progress.get('skipped', 0)} skipped, "
        f"{progress.get('failed', 0)} failed"
        + (f", {progress['not_started']} not started" if progress.get("not_started") else "")
        + f" of {progress.get('total', 0)}"
    ]
    if status.get("error"):
        lines.append(f"error: {status['error']}")
    review = status.get("review") or {}
    if review.get("decision"):
        lines.append(
            f"review: {review['decision']} by {review.get('by')}"
            + (f" ({review['reason']})" if review.get("reason") else "")
        )
    lines += [f"warning: {warning}" for warning in summary.get("warnings") or []]
    if status.get("manifest_error"):
        lines.append(f"manifest: {status['manifest_error']} (re-submit the batch to write it)")
    manifest = status.get("manifest")
    if manifest:
        lines.append(f"manifest: {manifest}")
        # A Failed batch has no summary, but its report is still beside the manifest.
        lines.append(f"report: {summary.get('report') or manifest.rsplit('/', 1)[0] + '/index.html'}")
    return lines


def exit_code(status: dict[str, Any]) -> int:
    """0 only for a batch that ran to its end and succeeded (a cancelled one is 1)."""
    if status.get("runtimeStatus") != "Completed":
        return 1
    return 0 if status.get("batchStatus") in (None, "Succeeded") else 1
