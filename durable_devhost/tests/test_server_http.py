"""HTTP triggers served the way the Functions host serves them (no Durable parts)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import aiohttp
import pytest

from durable_devhost.functions import FunctionIndex
from durable_devhost.server import create_app, start_site

APP = Path(__file__).parent / "apps" / "http_basics" / "function_app.py"


@pytest.fixture(scope="module")
def index() -> FunctionIndex:
    return FunctionIndex.load(str(APP))


async def _serve(index, **kwargs):
    app = create_app(index, None, None, base_url="http://127.0.0.1:0", **kwargs)
    return await start_site(app, "127.0.0.1", 0)


@pytest.fixture
async def host(index):
    site = await _serve(index)
    async with aiohttp.ClientSession() as session:
        yield site.url, session
    await site.stop()


async def test_default_route_is_function_name_and_query(host):
    url, s = host
    async with s.get(f"{url}/api/hello", params={"name": "Ada"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert await r.text() == "Hello Ada"
    async with s.post(f"{url}/api/HELLO") as r:  # any method, literal case-insensitive
        assert r.status == 200


async def test_route_constraints_pick_the_function(host):
    url, s = host
    async with s.get(f"{url}/api/items/42") as r:
        assert r.status == 201
        assert r.headers["X-Item"] == "42"
        assert r.headers["Content-Type"] == "application/json"
        assert await r.json() == {"id": 42, "kind": "by-id"}
    async with s.get(f"{url}/api/items/abc") as r:
        assert (await r.json())["kind"] == "by-name"
    async with s.get(f"{url}/api/items/new") as r:
        assert await r.text() == "literal wins"
    async with s.get(f"{url}/api/items/a1") as r:  # neither int nor alpha
        assert r.status == 404
    async with s.get(f"{url}/api/items/99999999999") as r:  # outside int32
        assert r.status == 404


async def test_methods_restrict_the_route(host):
    url, s = host
    async with s.delete(f"{url}/api/items/1") as r:
        assert r.status == 404
    async with s.get(f"{url}/api/echo") as r:
        assert r.status == 404


async def test_request_body_headers_query_reach_the_function(host):
    url, s = host
    async with s.put(f"{url}/api/echo?a=1&b=2&b=3", data=b'{"x": 1}', headers={"X-Custom": "yes"}) as r:
        info = await r.json()
    assert info["method"] == "PUT"
    assert info["params"] == {"a": "1", "b": "2,3"}
    assert info["header"] == "yes"
    assert info["body"] == '{"x": 1}'
    assert info["url"].startswith(url + "/api/echo")


async def test_binary_body_round_trip(host):
    url, s = host
    payload = bytes(range(256))
    async with s.post(f"{url}/api/raw", data=payload) as r:
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert await r.read() == payload[::-1]


async def test_catch_all_optional_guid_and_regex(host):
    url, s = host
    async with s.get(f"{url}/api/files/a/b%20c.txt") as r:
        assert await r.text() == "a/b c.txt"
    async with s.get(f"{url}/API/Hello") as r:  # prefix and literals are case-insensitive
        assert r.status == 200
    async with s.get(f"{url}/api/things/a%2Fb") as r:  # an encoded "/" stays inside the value
        assert await r.json() == {"kind": "a/b"}
    async with s.get(f"{url}/api/things/box") as r:
        assert await r.json() == {"kind": "box"}
    async with s.get(f"{url}/api/things/box/7") as r:
        assert await r.json() == {"kind": "box", "thingId": "7"}
    g = str(uuid.uuid4())
    async with s.get(f"{url}/api/guid/{g}") as r:
        assert await r.text() == g
    async with s.get(f"{url}/api/guid/not-a-guid") as r:
        assert r.status == 404
    async with s.get(f"{url}/api/code/abc") as r:
        assert await r.text() == "abc"
    async with s.get(f"{url}/api/code/abcd") as r:
        assert r.status == 404


async def test_status_headers_and_cookies_out(host):
    url, s = host
    async with s.get(f"{url}/api/teapot") as r:
        assert r.status == 418
        assert r.headers["Retry-After"] == "7"
        assert r.headers["Set-Cookie"].startswith("a=1")
        assert await r.text() == "short and stout"


async def test_exception_is_500_with_empty_body_and_logged(host, caplog):
    url, s = host
    async with s.get(f"{url}/api/boom") as r:
        assert r.status == 500
        assert await r.read() == b""
    assert any(
        "kaboom" in (rec.exc_text or "") or (rec.exc_info and "kaboom" in str(rec.exc_info[1]))
        for rec in caplog.records
    )


async def test_non_http_return_value_fails_like_the_worker(host):
    url, s = host
    async with s.get(f"{url}/api/returns_dict") as r:
        assert r.status == 500
        assert await r.read() == b""


async def test_context_parameter_gets_invocation_id(host):
    url, s = host
    async with s.get(f"{url}/api/ctx") as r:
        name, inv = (await r.text()).split(":", 1)
    assert name == "ctx"
    uuid.UUID(inv)


async def test_unknown_routes_404(host):
    url, s = host
    for path in ("/api/", "/api", "/api/nope", "/nothing"):
        async with s.get(url + path) as r:
            assert r.status == 404, path


async def test_route_prefix(index):
    site = await _serve(index, route_prefix="v1")
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{site.url}/v1/hello") as r:
                assert r.status == 200
            async with s.get(f"{site.url}/api/hello") as r:
                assert r.status == 404
    finally:
        await site.stop()


async def test_empty_route_prefix_does_not_shadow_the_durable_api(index):
    site = await _serve(index, route_prefix="")
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{site.url}/hello") as r:
                assert await r.text() == "Hello world"
            async with s.get(f"{site.url}/admin/host/status") as r:
                assert r.status == 200
                assert (await r.json())["state"] == "Running"
    finally:
        await site.stop()


# -- keys ----------------------------------------------------------------------------------


async def test_keys_off_by_default_like_func_start(host):
    url, s = host
    for path in ("secret", "admin_only"):
        async with s.get(f"{url}/api/{path}") as r:
            assert r.status == 200


@pytest.fixture
async def keyed(index):
    site = await _serve(index, keys={"function": ["fkey"], "master": "mkey"})
    async with aiohttp.ClientSession() as session:
        yield site.url, session
    await site.stop()


async def test_function_level_needs_a_key(keyed):
    url, s = keyed
    async with s.get(f"{url}/api/secret") as r:
        assert r.status == 401
        assert await r.read() == b""
    async with s.get(f"{url}/api/secret?code=wrong") as r:
        assert r.status == 401
    async with s.get(f"{url}/api/secret?code=fkey") as r:
        assert await r.text() == "function level"
    async with s.get(f"{url}/api/secret", headers={"x-functions-key": "fkey"}) as r:
        assert r.status == 200
    async with s.get(f"{url}/api/secret?code=mkey") as r:
        assert r.status == 200


async def test_the_header_key_takes_precedence_over_code(keyed):
    """As in the Functions host: the header is read first, the query only without one."""
    url, s = keyed
    async with s.get(f"{url}/api/secret?code=wrong", headers={"x-functions-key": "fkey"}) as r:
        assert r.status == 200
    async with s.get(f"{url}/api/secret?code=fkey", headers={"x-functions-key": "wrong"}) as r:
        assert r.status == 401


async def test_admin_level_needs_the_master_key(keyed):
    url, s = keyed
    async with s.get(f"{url}/api/admin_only?code=fkey") as r:
        assert r.status == 401
    async with s.get(f"{url}/api/admin_only?code=mkey") as r:
        assert await r.text() == "admin level"
    async with s.get(f"{url}/admin/host/status") as r:
        assert r.status == 401


async def test_anonymous_stays_open_with_keys(keyed):
    url, s = keyed
    async with s.get(f"{url}/api/hello") as r:
        assert r.status == 200


async def test_webhook_root_needs_system_key_but_rpc_root_does_not(keyed, index):
    url, s = keyed
    async with s.get(f"{url}/runtime/webhooks/durabletask/instances/x") as r:
        assert r.status == 401
    # /durabletask/ is the loopback-only RPC root; with no engine the handler itself 500s,
    # which proves the key check let it through.
    async with s.get(f"{url}/durabletask/instances/x") as r:
        assert r.status != 401
        json.loads(await r.text() or "null")


# -- app loading (host.json / local.settings.json / app objects) -------------------------------


async def test_devhost_reads_host_json_and_local_settings(tmp_path):
    from durable_devhost.testing import DevHost

    (tmp_path / "host.json").write_text(
        json.dumps(
            {"version": "2.0", "extensions": {"http": {"routePrefix": "custom"}, "durableTask": {"hubName": "MyHub"}}}
        )
    )
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"DEVHOST_TEST_GREETING": "bonjour"}})
    )
    (tmp_path / "function_app.py").write_text(
        "import os\n"
        "import azure.functions as func\n"
        "GREETING = os.environ['DEVHOST_TEST_GREETING']  # read at import time\n"
        "app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)\n"
        "@app.route(route='greet')\n"
        "def greet(req: func.HttpRequest) -> str:\n"
        "    return GREETING\n"
    )
    async with DevHost(tmp_path) as host, aiohttp.ClientSession() as s:
        assert host.api_url("greet") == f"{host.url}/custom/greet"
        async with s.get(host.api_url("greet")) as r:
            assert await r.text() == "bonjour"
        assert json.loads(host.client_binding())["taskHubName"] == "MyHub"


async def test_devhost_accepts_an_app_object():
    import azure.durable_functions as df
    import azure.functions as func

    from durable_devhost.testing import DevHost

    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.orchestration_trigger(context_name="context")
    def double(context):
        return context.get_input() * 2

    @app.route(route="ping")
    def ping(req: func.HttpRequest) -> str:
        return "pong"

    async with DevHost(app) as host, aiohttp.ClientSession() as s:
        async with s.get(host.api_url("ping")) as r:
            assert await r.text() == "pong"
        iid = await host.start_orchestration("double", 21)
        assert (await host.wait(iid))["output"] == 42


# -- route templates (unit) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("orchestrators/{functionName}/{instanceId?}", "/orchestrators/f", {"functionName": "f"}),
        ("orchestrators/{functionName}/{instanceId?}", "/Orchestrators/f/i", {"functionName": "f", "instanceId": "i"}),
        ("orchestrators/{functionName}/{instanceId?}", "/orchestrators", None),
        ("o/{id:int?}", "/o", {}),
        ("o/{id:int?}", "/o/3", {"id": "3"}),
        ("o/{id:int?}", "/o/x", None),
        ("d/{v=5}", "/d", {"v": "5"}),
        ("d/{v:int=5}", "/d/7", {"v": "7"}),
        ("{a}.{b}", "/x.y", {"a": "x", "b": "y"}),
        ("n/{x:minlength(2):maxlength(3)}", "/n/ab", {"x": "ab"}),
        ("n/{x:minlength(2):maxlength(3)}", "/n/abcd", None),
        ("r/{x:range(1,9)}", "/r/10", None),
        ("b/{flag:bool}", "/b/True", {"flag": "True"}),
        ("l/{n:long}", "/l/99999999999", {"n": "99999999999"}),
        ("dt/{when:datetime}", "/dt/2024-01-02", {"when": "2024-01-02"}),
        ("enc/{name}", "/enc/a%2Fb", {"name": "a/b"}),
    ],
)
def test_route_template_matching(template, path, expected):
    from durable_devhost.route_templates import RouteTemplate

    assert RouteTemplate(template).match(path) == expected


def test_route_precedence_literal_before_constrained_before_plain():
    from durable_devhost.route_templates import RouteTemplate

    ordered = sorted(["items/{x}", "items/{id:int}", "items/new", "{*all}"], key=lambda t: RouteTemplate(t).precedence)
    assert ordered == ["items/new", "items/{id:int}", "items/{x}", "{*all}"]
