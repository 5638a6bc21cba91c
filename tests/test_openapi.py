"""Keep openapi.yaml honest.

Its request schemas are generated from the declaration the server validates
with (imagebatch/batch_request/rules.py), so the first test only checks that the
committed file is the generated one. The others check what generation cannot:
the hand-written parts (paths, responses, examples, response schemas) against
the code, and the documented name patterns against the naming rules the server
applies before them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from imagebatch import batch_request as br
from imagebatch import naming
from tests.test_naming import (
    INVALID_BLOBS,
    INVALID_CONTAINERS,
    INVALID_IDS,
    INVALID_PREFIXES,
    VALID_BLOBS,
    VALID_CONTAINERS,
    VALID_IDS,
    VALID_PREFIXES,
)

yaml = pytest.importorskip("yaml")

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return spec["components"]["schemas"][name]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_document_basics(spec: dict[str, Any]) -> None:
    assert spec["openapi"] == "3.0.3"
    assert set(spec["paths"]) == {
        "/api/batches",
        "/api/batches/{id}",
        "/api/batches/{id}/cancel",
        "/api/batches/{id}/pause",
        "/api/batches/{id}/resume",
        "/api/batches/{id}/approve",
        "/api/batches/{id}/reject",
    }
    assert set(spec["paths"]["/api/batches/{id}"]) == {"get", "patch"}
    for ref in refs(spec):
        section = ref.split("/")[2]
        assert ref.startswith("#/components/") and section in ("schemas", "parameters", "responses"), ref
        assert ref.rsplit("/", 1)[1] in spec["components"][section], ref
    schemes = spec["components"]["securitySchemes"]
    assert (schemes["functionKeyQuery"]["in"], schemes["functionKeyQuery"]["name"]) == ("query", "code")
    assert (schemes["functionKeyHeader"]["in"], schemes["functionKeyHeader"]["name"]) == (
        "header",
        "x-functions-key",
    )


def test_committed_spec_is_generated() -> None:
    """The request schemas come from the declaration the server validates with
    (imagebatch/batch_request/rules.py); the rest from scripts/openapi.base.yaml."""
    from scripts.openapi import FIX_COMMAND, render

    assert SPEC_PATH.read_text(encoding="utf-8") == render(), (
        f"openapi.yaml is not what its sources generate; run `{FIX_COMMAND}` and commit the result"
    )


def test_error_codes_are_documented(spec: dict[str, Any]) -> None:
    errors = schema(spec, "Error")["properties"]["error"]["enum"]
    assert set(br.ERROR_CODES.values()) <= set(errors)
    assert str(br.MAX_BODY_BYTES) in spec["paths"]["/api/batches"]["post"]["responses"]["413"]["description"]


def test_live_controls_match_the_app(spec: dict[str, Any]) -> None:
    assert br.parse_control_update(b'{"max_concurrency": 25}', "application/json") == 25
    with pytest.raises(br.RequestValidationError) as info:
        br.parse_control_update(b'{"max_concurrency": 1001, "x": 1}', "application/json")
    assert {e.field for e in info.value.errors} == {"max_concurrency", "x"}
    from imagebatch.batch_api import batch_state

    states = set(schema(spec, "BatchStatus")["properties"]["batchStatus"]["enum"])
    assert batch_state("Completed", "done", {"status": "deadline_exceeded"}) in states
    assert {batch_state("Running", stage, None) for stage in ("paused", "deadline_exceeded", "cancelling")} <= states


def test_review_decisions_match_the_app(spec: dict[str, Any]) -> None:
    assert br.parse_review_decision(b"", None) is None
    assert br.parse_review_decision(b'{"reason": "ok"}', "application/json") == "ok"
    assert br.parse_review_decision(b'{"reason": null}', "application/json") is None
    with pytest.raises(br.RequestValidationError) as info:
        br.parse_review_decision(b'{"reason": 1, "x": 2}', "application/json")
    assert {e.field for e in info.value.errors} == {"reason", "x"}
    from imagebatch.batch_api import batch_state

    states = set(schema(spec, "BatchStatus")["properties"]["batchStatus"]["enum"])
    assert batch_state("Running", "awaiting_approval", None) == "AwaitingApproval" in states
    assert batch_state("Completed", "done", {"status": "rejected"}) == "Rejected" in states


# --- regex patterns agree with the naming rules (where a regex can express them) ------------


def schema_accepts(node: dict[str, Any], value: str) -> bool:
    """``fullmatch`` so Python's ``$`` (which also matches before a final newline)
    behaves like ECMA-262's."""
    if len(value) > node.get("maxLength", 10**9) or len(value) < node.get("minLength", 0):
        return False
    return re.fullmatch(node["pattern"], value) is not None


def expressible(value: object) -> bool:
    """Drop cases a pattern cannot express: non-strings, lone surrogates, segment counts."""
    if not isinstance(value, str) or value.count("/") >= naming.MAX_PATH_SEGMENTS:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def cases(valid: list[Any], invalid: list[tuple[Any, str]]) -> list[str]:
    return [v for v in valid + [i[0] for i in invalid] if expressible(v)]


@pytest.mark.parametrize("name", cases(VALID_CONTAINERS, INVALID_CONTAINERS))
def test_container_pattern(spec: dict[str, Any], name: str) -> None:
    assert schema_accepts(schema(spec, "ContainerName"), name) is (naming.container_name_error(name) is None)


@pytest.mark.parametrize("name", cases(VALID_BLOBS, INVALID_BLOBS))
def test_blob_pattern(spec: dict[str, Any], name: str) -> None:
    assert schema_accepts(schema(spec, "BlobName"), name) is (naming.blob_name_error(name) is None)


@pytest.mark.parametrize("prefix", cases(VALID_PREFIXES, INVALID_PREFIXES))
def test_prefix_patterns(spec: dict[str, Any], prefix: str) -> None:
    source = schema(spec, "Source")["properties"]["prefix"]
    output = schema(spec, "Output")["properties"]["prefix"]
    valid = naming.prefix_error(prefix) is None
    assert schema_accepts(source, prefix) is valid
    assert schema_accepts(output, prefix) is (valid and (prefix == "" or prefix.endswith("/")))


@pytest.mark.parametrize("batch_id", cases(VALID_IDS, INVALID_IDS))
def test_batch_id_pattern(spec: dict[str, Any], batch_id: str) -> None:
    assert schema_accepts(schema(spec, "BatchId"), batch_id) is (naming.instance_id_error(batch_id) is None)


# --- examples ---------------------------------------------------------------------------------


def test_request_examples_are_accepted(spec: dict[str, Any]) -> None:
    examples = spec["paths"]["/api/batches"]["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert examples
    for example in examples.values():
        br.parse_batch_request(json.dumps(example["value"]).encode(), "application/json")


def test_error_examples_match_the_code(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/api/batches"]["post"]["responses"]
    conflict = br.RequestValidationError.conflict("my-batch-001").to_json()
    assert responses["409"]["content"]["application/json"]["example"] == conflict
    with pytest.raises(br.RequestValidationError) as info:
        br.parse_batch_request(
            json.dumps(
                {
                    "source": {"container": "photos", "prefix": ""},
                    "output": {"container": "out"},
                    "renditions": [{"name": "a", "width": 100}, {"name": "b", "width": 9000}],
                }
            ).encode()
        )
    assert responses["400"]["content"]["application/json"]["example"] == info.value.to_json()


def test_accepted_and_status_fields_match_the_app(spec: dict[str, Any]) -> None:
    from imagebatch.batch_api import accepted_body
    from imagebatch.batch_status import EMPTY_PROGRESS, friendly_status

    accepted = accepted_body("http://h/api/batches", "b1", "20261201T113400Z-1a2b3c")
    assert set(schema(spec, "Accepted")["required"]) == set(accepted)
    status = schema(spec, "BatchStatus")
    assert set(status["properties"]["progress"]["required"]) == set(EMPTY_PROGRESS) - {"completed"}
    body = friendly_status(
        instance_id="b1",
        runtime_status="Running",
        custom_status=None,
        output=None,
        created_time=None,
        last_updated_time=None,
        links={"statusQueryGetUri": "u", "cancelPostUri": "c"},
        earlier_runs=[],
    )
    assert set(status["required"]) <= set(body) and set(body) <= set(status["properties"])
