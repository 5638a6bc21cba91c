# ruff: noqa
# Ported to the v2 programming model from azure-functions-durable 1.7.0
# samples/human_interaction (MIT License, see ../NOTICE).
# - E4_SMSPhoneVerification: orchestrator body unchanged (decorator instead of function.json).
# - HttpStart: same body; the v2 client parameter is already a DurableOrchestrationClient.
# - SendSMSChallenge: same code generation; the Twilio output binding is dropped (the
#   message is logged), since the dev host has no Twilio binding.
import json
import logging
import random
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

random.seed(10)


def is_valid_phone_number(phone_number: str):
    has_area_code = phone_number[0] == "+"
    is_positive_num = phone_number[1:].isdigit()
    return has_area_code and is_positive_num


@app.route(route="orchestrators/{functionName}", methods=["post", "get"])
@app.durable_client_input(client_name="starter")
async def HttpStart(req: func.HttpRequest, starter) -> func.HttpResponse:
    client = starter

    payload: str = json.loads(req.get_body().decode())
    instance_id = await client.start_new(req.route_params["functionName"], client_input=payload)

    logging.info(f"Started orchestration with ID = '{instance_id}'.")

    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def E4_SMSPhoneVerification(context: df.DurableOrchestrationContext):

    phone_number = context.get_input()

    if (not phone_number) or (not is_valid_phone_number(phone_number)):
        msg = (
            "Please provide a phone number beginning with an international dialing prefix"
            + "(+) followed by the country code, and then rest of the phone number. Example:"
            "'+1425XXXXXXX'"
        )
        raise Exception(msg)

    challenge_code = yield context.call_activity("SendSMSChallenge", phone_number)

    expiration = context.current_utc_datetime + timedelta(seconds=180)
    timeout_task = context.create_timer(expiration)

    authorized = False
    for _ in range(3):
        challenge_response_task = context.wait_for_external_event("SmsChallengeResponse")
        winner = yield context.task_any([challenge_response_task, timeout_task])

        if winner == challenge_response_task:
            # We got back a response! Compare it to the challenge code
            if challenge_response_task.result == challenge_code:
                authorized = True
                break
        else:
            # Timeout expired
            break

    if not timeout_task.is_completed:
        # All pending timers must be complete or canceled before the function exits.
        timeout_task.cancel()

    return authorized


@app.activity_trigger(input_name="phoneNumber")
def SendSMSChallenge(phoneNumber):
    code = random.randint(0, 10000)
    payload = {"body": f"Your verification code is {code}", "to": phoneNumber}

    logging.info("SMS (not sent by the dev host): %s", json.dumps(payload))
    code_str = str(code)
    return code_str
