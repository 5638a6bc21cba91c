"""The deployment templates (azure.yaml, infra/) agree with the code and with host.json.

No Bicep compiler runs here (.ci/run runs Checkov over infra/ for the Azure policies);
these tests read the templates as text and check what would break a deployment silently:
an app setting the code reads under another name, a missing data role, a key-based
setting, the Durable backend profile drifting from host.json.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from imagebatch.settings import AppSettings

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
FUNCTION_APP = INFRA / "app" / "function-app.bicep"
RBAC = INFRA / "app" / "rbac.bicep"
SETTINGS_SOURCES = [
    ROOT / "imagebatch" / "settings.py",
    ROOT / "storage" / "clients.py",
    ROOT / "imagebatch" / "retention.py",
]

ROLE_IDS = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Durable Task Data Contributor": "0ad04412-c4d5-4796-b79c-f76d14c8d402",
}


# --- reading the sources ---------------------------------------------------------------------


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _bicep_block(text: str, header: str) -> str:
    """The body of a top-level ``<header> = {`` / ``[`` block, up to its closing line."""
    match = re.search(rf"^{re.escape(header)}\s*=\s*([\[{{])\s*$", text, re.M)
    assert match, f"no '{header} = {{' block"
    closing = "}" if match.group(1) == "{" else "]"
    end = re.search(rf"^\{closing}", text[match.end() :], re.M)
    assert end, f"'{header}' block is not closed"
    return text[match.end() : match.end() + end.start()]


def _bicep_object(text: str, header: str) -> dict[str, str]:
    """``key: value`` lines of a flat Bicep object variable (raw value text)."""
    values = {}
    for line in _bicep_block(text, header).splitlines():
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        key, sep, value = line.partition(":")
        assert sep, f"unexpected line in {header}: {line!r}"
        values[key.strip().strip("'")] = value.strip()
    return values


def _literal(value: str) -> str | None:
    """The string of a Bicep single-quoted literal without interpolation, else None."""
    if len(value) >= 2 and value[0] == value[-1] == "'" and "${" not in value:
        return value[1:-1]
    return None


def _role_ids(text: str, variable: str) -> set[str]:
    return set(re.findall(r"id:\s*'([0-9a-f-]{36})'", _bicep_block(text, f"var {variable}")))


def _env_reads() -> tuple[dict[str, str | None], set[str]]:
    """Every app setting the code reads: ``{name: literal default or None}`` for fixed
    names, and the suffixes of per-connection names (``f"{name}__clientId"``)."""
    names: dict[str, str | None] = {}
    suffixes: set[str] = set()

    def key_of(node: ast.AST) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.setdefault(node.value, None)
        elif isinstance(node, ast.JoinedStr):
            tail = node.values[-1]
            if isinstance(tail, ast.Constant) and str(tail.value).startswith("__"):
                suffixes.add(str(tail.value))

    for path in SETTINGS_SOURCES:
        tree = ast.parse(_text(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "env"
                and node.args
            ):
                key_of(node.args[0])
                if (
                    len(node.args) > 1
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[1], ast.Constant)
                    and isinstance(node.args[1].value, str)
                ):
                    names[node.args[0].value] = node.args[1].value
            elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "env":
                key_of(node.slice)
            elif isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple):
                # for suffix in ("__blobServiceUri", "__serviceUri"): env.get(f"{name}{suffix}")
                suffixes.update(
                    e.value for e in node.iter.elts if isinstance(e, ast.Constant) and str(e.value).startswith("__")
                )
    return names, suffixes


@pytest.fixture(scope="module")
def function_app() -> str:
    return _text(FUNCTION_APP)


@pytest.fixture(scope="module")
def app_settings(function_app: str) -> dict[str, str]:
    return _bicep_object(function_app, "var appSettings")


@pytest.fixture(scope="module")
def host_settings(function_app: str) -> dict[str, str]:
    return _bicep_object(function_app, "var hostSettings")


@pytest.fixture(scope="module")
def dts_settings(function_app: str) -> dict[str, str]:
    return _bicep_object(function_app, "var durableTaskSchedulerSettings")


# --- app settings ----------------------------------------------------------------------------


def test_the_scan_finds_the_settings_the_code_reads():
    names, suffixes = _env_reads()
    # Guard the scanner itself: if these disappear, the code changed how it reads settings.
    assert {"IMAGES_STORAGE_CONNECTION", "IMAGE_BACKEND", "STORAGE_RETRY_TOTAL", "SHARD_SIZE"} <= set(names)
    assert {"__blobServiceUri", "__serviceUri", "__accountName", "__clientId"} <= suffixes


def test_every_setting_the_app_reads_is_set_with_its_name(app_settings):
    names, suffixes = _env_reads()
    missing = sorted(set(names) - set(app_settings))
    assert not missing, f"app settings read by the code but not set in {FUNCTION_APP.name}: {missing}"

    # The images connection: IMAGES_STORAGE_CONNECTION names a prefix whose identity-based
    # settings the storage code understands, and no exact-name (connection string) setting.
    connection = _literal(app_settings["IMAGES_STORAGE_CONNECTION"])
    assert connection and connection != "AzureWebJobsStorage"
    assert connection not in app_settings
    uri_settings = [f"{connection}{suffix}" for suffix in ("__blobServiceUri", "__serviceUri", "__accountName")]
    assert [s for s in uri_settings if s in app_settings] == [f"{connection}__blobServiceUri"]
    assert f"{connection}__clientId" in app_settings, "a user-assigned identity needs its client id"
    for setting in app_settings:
        if setting.startswith(f"{connection}__"):
            suffix = setting[len(connection) :]
            assert suffix in suffixes | {"__credential"}, f"{setting}: the storage code reads no such setting"


def test_template_values_are_the_code_defaults(app_settings):
    names, _ = _env_reads()
    literals = {k: _literal(v) for k, v in app_settings.items()}
    for name, default in names.items():
        # The images get their own account, so their connection is deliberately not the default.
        if default is not None and name in literals and name != "IMAGES_STORAGE_CONNECTION":
            assert literals[name] == default, f"{name}: template {literals[name]!r}, code default {default!r}"
    # Parsed the way the app parses them, the written-out values are exactly the defaults.
    env = {k: v for k, v in literals.items() if v is not None}
    assert AppSettings.from_env(env) == AppSettings(storage_connection="IMAGES")


def test_host_storage_and_telemetry_are_identity_based(host_settings):
    assert host_settings["AzureWebJobsStorage__accountName"] == "hostAccountName"
    assert _literal(host_settings["AzureWebJobsStorage__credential"]) == "managedidentity"
    assert host_settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert "Authorization=AAD" in host_settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert "DisableLocalAuth: true" in _text(INFRA / "app" / "monitoring.bicep")


def test_no_key_based_connection_anywhere_in_infra():
    for path in sorted(INFRA.rglob("*.bicep")):
        text = _text(path)
        # An exact-name AzureWebJobsStorage setting would win over the __accountName form.
        assert not re.search(r"^\s*'?AzureWebJobsStorage'?\s*:", text, re.M), path
        for marker in ("listKeys(", "AccountKey=", "SharedAccessSignature", "listAccountSas(", "UseDevelopmentStorage"):
            assert marker not in text, f"{path.name}: {marker}"
    storage = _text(INFRA / "app" / "storage.bicep")
    assert "allowSharedKeyAccess: false" in _bicep_block(storage, "var commonProperties")
    assert storage.count("properties: commonProperties") == 2  # host and photos accounts


def test_outputs_carry_no_secret():
    outputs = re.findall(r"^output\s+(\w+)\s+\w+\s*=\s*(.+)$", _text(INFRA / "main.bicep"), re.M)
    assert {"AZURE_FUNCTION_APP_NAME", "SERVICE_API_URI", "API_BASE_URL"} <= {name for name, _ in outputs}
    for name, value in outputs:
        assert not re.search(r"(?i)key|secret|password|connectionstring|sas", name + value), name


# --- roles -----------------------------------------------------------------------------------


def test_roles_cover_blob_queue_and_table_on_the_host_account():
    rbac = _text(RBAC)
    host = _role_ids(rbac, "hostStorageRoles")
    assert ROLE_IDS["Storage Blob Data Owner"] in host  # the Functions host; covers Durable's blob needs
    assert ROLE_IDS["Storage Queue Data Contributor"] in host
    assert ROLE_IDS["Storage Table Data Contributor"] in host
    assert _role_ids(rbac, "photosStorageRoles") == {ROLE_IDS["Storage Blob Data Contributor"]}
    assert _role_ids(rbac, "monitoringRoles") == {ROLE_IDS["Monitoring Metrics Publisher"]}

    # Each list is assigned on the resource it is named for.
    for variable, scope in (
        ("hostStorageRoles", "hostStorage"),
        ("photosStorageRoles", "photosStorage"),
        ("monitoringRoles", "applicationInsights"),
    ):
        loop = re.search(rf"= \[for role in {variable}: \{{(.*?)^\}}\]", rbac, re.S | re.M)
        assert loop and f"scope: {scope}\n" in loop.group(1), variable
    assert re.search(r"resource hostStorage '[^']+' existing = \{\s*name: hostAccountName", rbac)
    assert re.search(r"resource photosStorage '[^']+' existing = \{\s*name: photosAccountName", rbac)


def test_role_assignments_name_principals_by_object_id_and_type():
    for path in (RBAC, INFRA / "app" / "dts.bicep"):
        text = _text(path)
        assignments = text.count("Microsoft.Authorization/roleAssignments@")
        assert assignments and text.count("principalType: ") == assignments, path.name


# --- host.json and the Durable backend profiles ----------------------------------------------


def _timespan_seconds(value: str) -> float:
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_host_json_production_settings():
    host = json.loads(_text(ROOT / "host.json"))
    timeout = host["functionTimeout"]
    assert timeout == "-1" or _timespan_seconds(timeout) >= 30 * 60  # Flex Consumption's default
    durable = host["extensions"]["durableTask"]
    assert 0 < _timespan_seconds(durable["storageProvider"]["maxQueuePollingInterval"]) <= 10
    assert "type" not in durable["storageProvider"]  # the default profile stays Azure Storage
    assert (
        durable["hubName"],
        durable["maxConcurrentActivityFunctions"],
        durable["maxConcurrentOrchestratorFunctions"],
    ) == ("ImageBatchHub", 4, 8)


def test_dts_host_file_differs_only_in_the_backend(dts_settings):
    host = json.loads(_text(ROOT / "host.json"))
    dts = json.loads(_text(INFRA / "host.dts.json"))
    provider = dts["extensions"]["durableTask"].pop("storageProvider")
    hub = dts["extensions"]["durableTask"].pop("hubName")
    del host["extensions"]["durableTask"]["storageProvider"], host["extensions"]["durableTask"]["hubName"]
    assert dts == host

    assert provider == {"type": "azureManaged", "connectionStringName": "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"}
    assert hub == "%TASKHUB_NAME%" and "TASKHUB_NAME" in dts_settings
    connection = dts_settings[provider["connectionStringName"]]
    assert "Authentication=ManagedIdentity" in connection and "ClientID=${identityClientId}" in connection
    assert "Endpoint=${schedulerEndpoint}" in connection

    scheduler = _text(INFRA / "app" / "dts.bicep")
    assert f"'{ROLE_IDS['Durable Task Data Contributor']}'" in scheduler
    assert "Microsoft.DurableTask/schedulers/taskHubs@" in scheduler


def test_durable_backend_parameter_selects_module_and_settings(function_app):
    main = _text(INFRA / "main.bicep")
    allowed = re.search(
        r"@allowed\(\[\s*'AzureStorage'\s*'DurableTaskScheduler'\s*\]\)\s*param durableBackend string "
        r"= 'AzureStorage'",
        main,
    )
    assert allowed, "durableBackend: AzureStorage (default) | DurableTaskScheduler"
    assert "module scheduler 'app/dts.bicep' = if (durableBackend == 'DurableTaskScheduler')" in main
    assert "durableBackend == 'DurableTaskScheduler' ? durableTaskSchedulerSettings : {}" in function_app
    parameters = json.loads(_text(INFRA / "main.parameters.json"))["parameters"]
    assert parameters["durableBackend"]["value"] == "${DURABLE_BACKEND=AzureStorage}"


def test_always_ready_instance_for_the_durable_group(function_app):
    ready = _bicep_block(function_app, "var durableAlwaysReadyConfig")
    assert "name: 'durable'" in ready and "instanceCount: durableAlwaysReady" in ready
    assert "alwaysReady: durableAlwaysReady > 0 ? durableAlwaysReadyConfig : []" in function_app
    assert re.search(r"param durableAlwaysReady int = 1$", _text(INFRA / "main.bicep"), re.M)
    assert re.search(r"name: 'python'\s*version: '3.11'", function_app)


def test_azure_yaml_deploys_this_directory_with_the_host_file_hooks():
    config = yaml.safe_load(_text(ROOT / "azure.yaml"))
    service = config["services"]["api"]
    assert (service["project"], service["language"], service["host"]) == ("./", "python", "function")
    assert service["hooks"]["prepackage"]["run"] == "./infra/hooks/select-host-json.sh swap"
    assert service["hooks"]["postpackage"]["run"] == "./infra/hooks/select-host-json.sh restore"


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
@pytest.mark.parametrize("backend", ["AzureStorage", "DurableTaskScheduler"])
def test_hook_packages_the_selected_host_file_and_restores_it(tmp_path, backend):
    shutil.copy(ROOT / "host.json", tmp_path / "host.json")
    (tmp_path / "infra" / "hooks").mkdir(parents=True)
    shutil.copy(INFRA / "host.dts.json", tmp_path / "infra" / "host.dts.json")
    hook = shutil.copy(INFRA / "hooks" / "select-host-json.sh", tmp_path / "infra" / "hooks")
    original = _text(tmp_path / "host.json")
    env = {"PATH": "/usr/bin:/bin", "DURABLE_BACKEND": backend}

    def run(mode: str) -> None:
        subprocess.run(["sh", hook, mode], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=30)

    run("swap")
    packaged = json.loads(_text(tmp_path / "host.json"))["extensions"]["durableTask"]["storageProvider"]
    assert packaged.get("type") == ("azureManaged" if backend == "DurableTaskScheduler" else None)
    run("restore")
    assert _text(tmp_path / "host.json") == original
    # An interrupted run (no postpackage) is repaired by the next swap.
    run("swap")
    run("swap")
    run("restore")
    assert _text(tmp_path / "host.json") == original


# --- Checkov skips ---------------------------------------------------------------------------


def test_every_skipped_policy_has_a_reason():
    skips = []
    for path in sorted(INFRA.rglob("*.bicep")):
        for match in re.finditer(r"checkov:skip=([A-Z0-9_]+)(:?)(.*)", _text(path)):
            skips.append(match.group(1))
            assert match.group(2) == ":" and len(match.group(3).strip()) >= 20, f"{path.name}: {match.group(0)}"
    assert skips, "the skip list is expected in the templates"
