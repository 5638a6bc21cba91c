"""HTTP trigger behaviours the dev host must copy (routes, methods, bodies, keys)."""

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> str:
    return f"Hello {req.params.get('name', 'world')}"


@app.route(route="items/{id:int}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    body = {"id": int(req.route_params["id"]), "kind": "by-id"}
    return func.HttpResponse(
        json.dumps(body), status_code=201, mimetype="application/json", headers={"X-Item": req.route_params["id"]}
    )


@app.route(route="items/{name:alpha}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def item_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"name": req.route_params["name"], "kind": "by-name"}), mimetype="application/json"
    )


@app.route(route="items/new", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def item_new(req: func.HttpRequest) -> str:
    return "literal wins"


@app.route(route="echo", methods=["POST", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    info = {
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "header": req.headers.get("x-custom"),
        "body": req.get_body().decode(),
    }
    return func.HttpResponse(json.dumps(info), status_code=200, mimetype="application/json")


@app.route(route="raw", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def raw(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body()[::-1], mimetype="application/octet-stream", status_code=200)


@app.route(route="files/{*path}", auth_level=func.AuthLevel.ANONYMOUS)
def files(req: func.HttpRequest) -> str:
    return req.route_params.get("path", "")


@app.route(route="things/{kind}/{thingId?}", auth_level=func.AuthLevel.ANONYMOUS)
def things(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(dict(req.route_params)), mimetype="application/json")


@app.route(route="guid/{g:guid}", auth_level=func.AuthLevel.ANONYMOUS)
def by_guid(req: func.HttpRequest) -> str:
    return req.route_params["g"]


@app.route(route="code/{c:regex(^[a-z]{{3}}$)}", auth_level=func.AuthLevel.ANONYMOUS)
def by_code(req: func.HttpRequest) -> str:
    return req.route_params["c"]


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("kaboom")


@app.route(route="returns_dict", auth_level=func.AuthLevel.ANONYMOUS)
def returns_dict(req: func.HttpRequest):
    return {"not": "allowed"}


@app.route(route="ctx", auth_level=func.AuthLevel.ANONYMOUS)
async def ctx(req: func.HttpRequest, context: func.Context) -> str:
    return f"{context.function_name}:{context.invocation_id}"


@app.route(route="teapot", auth_level=func.AuthLevel.ANONYMOUS)
def teapot(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse("short and stout", status_code=418, headers={"Retry-After": "7"})
    resp.headers["Set-Cookie"] = "a=1"
    return resp


@app.route(route="secret")
def secret(req: func.HttpRequest) -> str:
    return "function level"


@app.route(route="admin_only", auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> str:
    return "admin level"
