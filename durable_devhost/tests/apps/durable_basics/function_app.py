"""Small Durable app driving every DurableOrchestrationClient method from HTTP functions."""

import json
from datetime import datetime, timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _json(value, status=200):
    return func.HttpResponse(json.dumps(value, default=str), status_code=status, mimetype="application/json")


@app.route(route="orchestrators/{functionName}/{instanceId?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["functionName"], req.route_params.get("instanceId"), payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="startwait/{functionName}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start_wait(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_body()
    instance_id = await client.start_new(req.route_params["functionName"], client_input=json.loads(body or "null"))
    return await client.wait_for_completion_or_create_check_status_response(
        req,
        instance_id,
        timeout_in_milliseconds=int(req.params.get("timeout", "10000")),
        retry_interval_in_milliseconds=50,
    )


@app.route(route="client/{op}/{instanceId?}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def client_op(req: func.HttpRequest, client, context) -> func.HttpResponse:
    """One DurableOrchestrationClient call per request, result as JSON."""
    op = req.route_params["op"]
    iid = req.route_params.get("instanceId")
    args = req.get_json() if req.get_body() else {}
    try:
        if op == "get_status":
            s = await client.get_status(iid, **args)
            if not s:  # 404: a falsy status (to_json() would fail on it)
                return _json({"truthy": False})
            out = {"truthy": bool(s), **s.to_json(), "historyEvents": getattr(s, "historyEvents", None)}
            return _json(out)
        if op == "get_status_all":
            return _json(sorted(s.instance_id for s in await client.get_status_all()))
        if op == "get_status_by":
            statuses = [df.OrchestrationRuntimeStatus(x) for x in args.get("runtime_status", [])] or None
            found = await client.get_status_by(
                created_time_from=datetime.fromisoformat(args["from"]) if "from" in args else None,
                created_time_to=datetime.fromisoformat(args["to"]) if "to" in args else None,
                runtime_status=statuses,
                instance_id_prefix=args.get("prefix"),
            )
            return _json(sorted(s.instance_id for s in found))
        if op == "raise_event":
            await client.raise_event(iid, args["name"], args.get("data"))
            return _json({"ok": True})
        if op in ("terminate", "suspend", "resume"):
            await getattr(client, op)(iid, args.get("reason", op))
            return _json({"ok": True})
        if op == "purge_instance_history":
            r = await client.purge_instance_history(iid)
            return _json({"deleted": r.instances_deleted})
        if op == "purge_instance_history_by":
            statuses = [df.OrchestrationRuntimeStatus(x) for x in args.get("runtime_status", [])] or None
            r = await client.purge_instance_history_by(
                created_time_from=datetime.fromisoformat(args["from"]), runtime_status=statuses
            )
            return _json({"deleted": r.instances_deleted})
        if op == "invocation":
            return _json({"invocation_id": context.invocation_id})
    except Exception as e:  # surface the SDK's exception text to the test
        return _json({"error": str(e)}, status=409)
    return _json({"error": f"unknown op {op}"}, status=400)


@app.orchestration_trigger(context_name="context")
def hello_sequence(context: df.DurableOrchestrationContext):
    # A raw JSON *array* input cannot reach here: the SDK only re-serialises dict inputs, so
    # get_input() fails on a list token (same on Azure). Raw callers send {"cities": [...]}.
    value = context.get_input()
    cities = value["cities"] if isinstance(value, dict) else value or ["Tokyo", "Seattle", "London"]
    results = []
    for city in cities:
        results.append((yield context.call_activity("say_hello", city)))
    return results


@app.orchestration_trigger(context_name="context")
def echo_input(context: df.DurableOrchestrationContext):
    value = context.get_input()
    return {"value": value, "type": type(value).__name__}


@app.orchestration_trigger(context_name="context")
def wait_event(context: df.DurableOrchestrationContext):
    context.set_custom_status("waiting")
    value = yield context.wait_for_external_event("Approval")
    return {"value": value, "type": type(value).__name__}


@app.orchestration_trigger(context_name="context")
def long_timer(context: df.DurableOrchestrationContext):
    context.set_custom_status({"stage": "sleeping"})
    yield context.create_timer(context.current_utc_datetime + timedelta(days=1))
    return "woke"


@app.orchestration_trigger(context_name="context")
def fails(context: df.DurableOrchestrationContext):
    raise ValueError("nope")


@app.activity_trigger(input_name="city")
def say_hello(city: str) -> str:
    return f"Hello {city}!"
