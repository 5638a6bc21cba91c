"""A fan-out whose activities take a while, for kill -9 / restart tests."""

import json
import os
import time

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["functionName"], client_input=json.loads(body or "null"))
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    count = context.get_input() or 8
    results = yield context.task_all([context.call_activity("slow_square", i) for i in range(count)])
    return results


@app.activity_trigger(input_name="n")
def slow_square(n: int) -> int:
    time.sleep(float(os.environ.get("SLOW_SQUARE_SECONDS", "0.4")))
    return n * n
