# ruff: noqa
# Ported to the v2 programming model from azure-functions-durable 1.7.0
# samples/simple_sub_orchestration (MIT License, see ../NOTICE). Function bodies unchanged;
# decorators replace function.json, and the v2 client parameter is already a
# DurableOrchestrationClient.
import logging

import azure.functions as func
import azure.durable_functions as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orchestrators/{functionName}", methods=["post", "get"])
@app.durable_client_input(client_name="starter")
async def DurableFunctionsHttpStart(req: func.HttpRequest, starter) -> func.HttpResponse:
    client = starter
    instance_id = await client.start_new(req.route_params["functionName"], None, None)

    logging.info(f"Started orchestration with ID = '{instance_id}'.")

    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def DurableOrchestrator(context: df.DurableOrchestrationContext):
    result = yield context.call_sub_orchestrator("DurableSubOrchestrator", "Seattle")
    return result


@app.orchestration_trigger(context_name="context")
def DurableSubOrchestrator(context: df.DurableOrchestrationContext):
    input_ = context.get_input()
    result1 = yield context.call_activity("Hello", input_)
    return result1


@app.activity_trigger(input_name="name")
def Hello(name: str) -> str:
    return f"Hello {name}!"
