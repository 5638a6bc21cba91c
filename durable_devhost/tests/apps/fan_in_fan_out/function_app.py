# ruff: noqa
# Copied from azure-functions-durable 1.7.0 samples-v2/fan_in_fan_out/function_app.py (MIT License, see ../NOTICE).
# Changed: E2_CopyFileToBlob is stubbed (no blob upload, no azure-storage-blob import).
from typing import List

import os
from os.path import dirname

import json
import pathlib
import logging


import azure.functions as func
import azure.durable_functions as df

myApp = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@myApp.route(route="orchestrators/{functionName}")
@myApp.durable_client_input(client_name="client")
async def HttpStart(req: func.HttpRequest, client):
    payload: str = json.loads(req.get_body().decode())  # Load JSON post request data
    instance_id = await client.start_new(req.route_params["functionName"], client_input=payload)

    logging.info(f"Started orchestration with ID = '{instance_id}'.")

    return client.create_check_status_response(req, instance_id)


@myApp.orchestration_trigger(context_name="context")
def E2_BackupSiteContent(context: df.DurableOrchestrationContext):
    root_directory: str = context.get_input()

    if not root_directory:
        raise Exception("A directory path is required as input")

    files = yield context.call_activity("E2_GetFileList", root_directory)
    tasks = []
    for file in files:
        tasks.append(context.call_activity("E2_CopyFileToBlob", file))

    results = yield context.task_all(tasks)
    total_bytes = sum(results)
    return total_bytes


connect_str = os.getenv("AzureWebJobsStorage")


@myApp.activity_trigger(input_name="rootDirectory")
def E2_GetFileList(rootDirectory):
    all_file_paths = []
    # We walk the file system
    for path, _, files in os.walk(rootDirectory):
        # We copy the code for activities and orchestrators
        if "E2_" in path:
            # For each file, we add their full-path to the list
            for name in files:
                if name == "__init__.py" or name == "function.json":
                    file_path = os.path.join(path, name)
                    all_file_paths.append(file_path)

    return all_file_paths


@myApp.activity_trigger(input_name="filePath")
def E2_CopyFileToBlob(filePath):
    # Dev-host stub: the sample uploads the file to the "backups" blob container; here it
    # only counts the bytes, which is what the activity returns.
    byte_count = os.path.getsize(filePath)
    return byte_count
