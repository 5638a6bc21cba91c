# ruff: noqa
# Ported to the v2 programming model from azure-functions-durable 1.7.0 samples/monitor
# (MIT License, see ../NOTICE).
# - E3_Monitor: orchestrator body unchanged (decorator instead of function.json).
# - HttpStart: same body; the v2 client parameter is already a DurableOrchestrationClient.
# - E3_TooManyOpenIssues: the GitHub call is replaced by a local table (no network in tests):
#   repos listed in OPEN_ISSUES report that many open issues, anything else has none.
# - E3_SendAlert: the Twilio output binding is dropped (the message is logged).
import json
import logging
from datetime import timedelta
from typing import Dict

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

OPEN_ISSUES = {"octo/busy": 12, "octo/quiet": 0}


@app.route(route="orchestrators/{functionName}", methods=["post", "get"])
@app.durable_client_input(client_name="starter")
async def HttpStart(req: func.HttpRequest, starter) -> func.HttpResponse:
    client = starter
    payload = json.loads(req.get_body().decode())
    instance_id = await client.start_new(req.route_params["functionName"], client_input=payload)

    logging.info(f"Started orchestration with ID = '{instance_id}'.")

    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def E3_Monitor(context: df.DurableOrchestrationContext):

    monitoring_request: Dict[str, str] = context.get_input()
    repo_url: str = monitoring_request["repo"]
    phone: str = monitoring_request["phone"]

    # Expiration of the repo monitoring
    expiry_time = context.current_utc_datetime + timedelta(minutes=5)
    while context.current_utc_datetime < expiry_time:
        # Count the number of issues in the repo (the GitHub API caps at 30 issues per page)
        too_many_issues = yield context.call_activity("E3_TooManyOpenIssues", repo_url)

        # If we detect too many issues, we text the provided phone number
        if too_many_issues:
            # Extract URLs of GitHub issues, and return them
            yield context.call_activity("E3_SendAlert", phone)
            break
        else:
            # Reporting the number of statuses found
            status = f"The repository does not have too many issues, for now ..."
            context.set_custom_status(status)

            # Schedule a new "wake up" signal
            next_check = context.current_utc_datetime + timedelta(minutes=1)
            yield context.create_timer(next_check)

    return "Monitor completed!"


@app.activity_trigger(input_name="repoID")
def E3_TooManyOpenIssues(repoID: str) -> str:
    [user, repo] = repoID.split("/")
    issues = OPEN_ISSUES.get(f"{user}/{repo}", 0)
    too_many_issues: bool = issues >= 3
    return too_many_issues


@app.activity_trigger(input_name="phoneNumber")
def E3_SendAlert(phoneNumber: str):
    payload = {"body": f"Hey! You may want to check on your repo, there are too many open issues", "to": phoneNumber}

    logging.info("SMS (not sent by the dev host): %s", json.dumps(payload))
    return "Message sent!"
