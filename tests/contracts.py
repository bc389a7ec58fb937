"""The API descriptions as contracts for the whole test suite.

* Every server message a test receives on a socket (the in-process
  WebsocketCommunicator, and tests/wsclient.py against live servers) is
  validated against the AsyncAPI document's payload schema of its message
  (realtime.asyncapi).
* Every response a test gets through DRF's APIClient, for an operation and
  status the OpenAPI document describes, is validated against that
  response's schema.

`_check_against_the_api_descriptions` (autouse, imported by conftest.py) does
both for every test; `check_server_message` and `check_api_response` are
also called directly.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import jsonschema
import pytest
from channels.testing import WebsocketCommunicator
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7, DRAFT202012
from rest_framework.test import APIClient

from realtime import asyncapi

ASYNCAPI_URI = "urn:paychain:asyncapi"
OPENAPI_URI = "urn:paychain:openapi"

# How many messages and responses were checked (tests/test_asyncapi.py reads it).
checked = {"messages": 0, "responses": 0}


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@functools.cache
def asyncapi_document() -> dict[str, Any]:
    return json.loads(json.dumps(asyncapi.document()))


@functools.cache
def _asyncapi_registry() -> Registry:
    resource = Resource.from_contents(asyncapi_document(), default_specification=DRAFT7)
    return Registry().with_resource(ASYNCAPI_URI, resource)


@functools.cache
def _message_validator(name: str) -> jsonschema.Draft7Validator:
    ref = f"{ASYNCAPI_URI}#/{_pointer('components', 'messages', name, 'payload')}"
    return jsonschema.Draft7Validator({"$ref": ref}, registry=_asyncapi_registry())


def check_server_message(message: Any) -> None:
    """Fail unless `message` is a server message the AsyncAPI document describes."""
    assert isinstance(message, dict), f"a server message is a JSON object: {message!r}"
    name = asyncapi.message_name_of(message)
    assert name in asyncapi_document()["components"]["messages"], (
        f"{name} is in no AsyncAPI message: {message!r}"
    )
    errors = sorted(_message_validator(name).iter_errors(message), key=str)
    assert not errors, f"{message!r} does not match AsyncAPI {name}: {errors[0].message}"
    checked["messages"] += 1


def check_server_text(text: str) -> None:
    check_server_message(json.loads(text))


@functools.cache
def openapi_document() -> dict[str, Any]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(schema))


@functools.cache
def _openapi_registry() -> Registry:
    resource = Resource.from_contents(openapi_document(), default_specification=DRAFT202012)
    return Registry().with_resource(OPENAPI_URI, resource)


@functools.cache
def _paths() -> list[tuple[re.Pattern[str], str]]:
    """(regex, template) of each documented path; a trailing slash optional,
    as the service endpoints answer with and without one. Literal paths first."""
    templates = sorted(openapi_document()["paths"], key=lambda t: ("{" in t, t))
    found = []
    for template in templates:
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template.rstrip("/")))
        found.append((re.compile(f"^{pattern}/?$"), template))
    return found


def documented_path(path: str) -> str | None:
    for pattern, template in _paths():
        if pattern.match(path):
            return template
    return None


@functools.cache
def _response_validator(
    template: str, method: str, status: str
) -> jsonschema.Draft202012Validator | None:
    operation = openapi_document()["paths"][template].get(method)
    if operation is None:
        return None
    content = operation["responses"].get(status, {}).get("content", {})
    if "application/json" not in content:
        return None
    ref = f"{OPENAPI_URI}#/" + _pointer(
        "paths", template, method, "responses", status, "content", "application/json", "schema"
    )
    # Formats asserted: drf-spectacular writes a blank-able email as
    # oneOf(email, maxLength 0), which only a checked format tells apart.
    return jsonschema.Draft202012Validator(
        {"$ref": ref},
        registry=_openapi_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def documented_statuses(path: str, method: str) -> set[int]:
    template = documented_path(path)
    assert template is not None, f"{path} is not in the OpenAPI document"
    operation = openapi_document()["paths"][template][method.lower()]
    return {int(code) for code in operation["responses"]}


def check_api_response(method: str, path: str, response: Any, *, strict: bool = False) -> None:
    """Validate a JSON response against the OpenAPI document. With `strict`,
    the operation and its status must be documented; without, what is not
    documented (the admin, a status nobody described) is let through."""
    template = documented_path(path)
    if template is None:
        assert not strict, f"{path} is not in the OpenAPI document"
        return
    validator = _response_validator(template, method.lower(), str(response.status_code))
    if validator is None:
        assert not strict, f"{method} {path} {response.status_code} is not documented as JSON"
        return
    if not response.get("Content-Type", "").startswith("application/json"):
        assert not strict, f"{method} {path} answered {response.get('Content-Type')}"
        return
    body = json.loads(response.content)
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, (
        f"{method} {path} {response.status_code}: {body!r} does not match the OpenAPI "
        f"document: {errors[0].message} at {list(errors[0].absolute_path)}"
    )
    checked["responses"] += 1


@pytest.fixture(autouse=True)
def _check_against_the_api_descriptions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket message and API response of every test, checked."""
    receive_output = WebsocketCommunicator.receive_output
    request = APIClient.request

    async def checked_receive_output(self: WebsocketCommunicator, timeout: float = 1) -> Any:
        output = await receive_output(self, timeout)
        if output.get("type") == "websocket.send" and output.get("text") is not None:
            check_server_text(output["text"])
        return output

    def checked_request(self: APIClient, **kwargs: Any) -> Any:
        response = request(self, **kwargs)
        check_api_response(kwargs["REQUEST_METHOD"], kwargs["PATH_INFO"], response)
        return response

    monkeypatch.setattr(WebsocketCommunicator, "receive_output", checked_receive_output)
    monkeypatch.setattr(APIClient, "request", checked_request)
