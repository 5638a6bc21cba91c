"""Composition root of the function app: one ``df.DFApp``, the three blueprints it
registers, and the hourly history purge.

Read on in that order: ``orchestrators/`` (``ImageProcessing_Orchestrator`` and its
shard lanes), ``activities/`` (the work), ``http_api/`` (start, follow and act on a
batch). Each layer stays thin: validation, naming and status mapping live in the
Azure-free ``imagebatch`` package, storage I/O in ``storage/``, and what crosses a
Durable boundary is an ``imagebatch.messages`` type.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from activities import bp as activities_bp
from http_api import bp as http_bp
from imagebatch.retention import HistoryRetention
from orchestrators import bp as orchestrators_bp

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(orchestrators_bp)
app.register_functions(activities_bp)
app.register_functions(http_bp)

log = logging.getLogger(__name__)


@app.timer_trigger(schedule="0 7 * * * *", arg_name="timer", run_on_startup=False)
@app.durable_client_input(client_name="client")
async def purge_history(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Hourly: purge the orchestration histories (parents, shards, every
    generation) of runs that ended more than ``HISTORY_RETENTION_DAYS`` ago.

    Microsoft's guidance for task hubs: purge what is finished, or the history
    and instance tables only grow. Manifests and reports stay in storage; only
    the Durable bookkeeping goes. Only terminal instances are purged.
    """
    retention = HistoryRetention.from_env()
    if not retention.enabled:
        return
    result = await client.purge_instance_history_by(
        created_time_from=retention.oldest,
        created_time_to=retention.cutoff(datetime.now(UTC)),
        runtime_status=[
            df.OrchestrationRuntimeStatus.Completed,
            df.OrchestrationRuntimeStatus.Failed,
            df.OrchestrationRuntimeStatus.Terminated,
        ],
    )
    log.info("Purged the history of %d finished instance(s)", result.instances_deleted)
