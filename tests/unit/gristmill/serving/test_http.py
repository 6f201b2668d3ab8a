"""What every serving process answers alike (gristmill.serving.http through the request guard):
body limits (413), one error shape with user values cut, an OpenAPI document that lists every
status, one log line per refused request; and numbers a JSON body may carry."""

import asyncio
import json
import logging
import math

import httpx
import pytest

from gristmill.errors import EntityNotFound, InvalidName, InvalidRequest, NoAccess, ProjectNotFound
from gristmill.serving.guard import Access, RequestGuard
from gristmill.serving.http import ClientErrorsInOneLine, error_body, true_openapi
from gristmill.serving.schema import NUMBER_LIMIT, check_numbers, model_for

HUGE = "x" * 20_000_000


class _Open(Access):
    """Lets every caller in as the bento's service principal (no metadata database)."""

    def remembered(self, token, project):
        return self.service_principal()


def _answer(status, body, kind=b"application/json"):
    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]})
        await send({"type": "http.response.body", "body": body})
    return app


def _call(app, path="/predict_entity", **kwargs):
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.post(path, headers={"authorization": "Bearer t"}, **kwargs)
    return asyncio.run(go())


def _guard(app):
    return RequestGuard(app, project="shop", access=_Open("shop"))


def test_bodies_past_the_limit_get_413_whether_declared_or_chunked(monkeypatch):
    monkeypatch.setenv("GRISTMILL_SERVING_MAX_BODY_KB", "1")
    monkeypatch.setenv("GRISTMILL_SERVING_MAX_LIST_BODY_KB", "4")
    app = _guard(_answer(200, b"[]"))
    small, big = json.dumps({"id": "a" * 900}).encode(), json.dumps({"id": "a" * 3000}).encode()

    def chunked(body):
        async def parts():
            for i in range(0, len(body), 256):
                yield body[i:i + 256]
        return parts()

    assert _call(app, content=small).status_code == 200
    refused = _call(app, content=big)
    assert refused.status_code == 413 and "1 KB" in refused.json()["error"]
    assert _call(app, content=chunked(big)).status_code == 413  # no content-length: counted
    assert _call(app, content=chunked(small)).status_code == 200  # and replayed whole
    assert _call(app, "/predict_entities", content=big).status_code == 200  # list endpoints take more
    assert _call(app, "/predict_entities", content=big * 2).status_code == 413


def test_the_default_limit_refuses_a_20_mb_body_at_once():
    app = _guard(_answer(200, b"[]"))
    body = json.dumps({"customer_id": HUGE}).encode()
    for path in ("/predict_entity", "/predict_entities", "/predict", "/predict_batched", "/model"):
        assert _call(app, path, content=body).status_code == 413


@pytest.mark.parametrize("status,body,error", [
    (404, json.dumps([{"error": "unknown id: " + "y" * 5000}]).encode(), "unknown id: "),  # BentoML's list
    (422, json.dumps({"error": "give at least one id"}).encode(), "give at least one id"),
    (405, b"Method Not Allowed", "Method Not Allowed"),
    (500, b"", "A fault of the service"),
])
def test_every_error_answer_is_one_object_with_user_values_cut(status, body, error):
    reply = _call(_guard(_answer(status, body, b"text/plain" if status == 405 else b"application/json")))
    assert reply.status_code == status
    data = reply.json()
    assert set(data) == {"error"} and data["error"].startswith(error) and len(data["error"]) < 500


def test_a_schema_failure_keeps_its_detail_list_with_keys_cut():
    body = json.dumps({"error": "1 validation error for Input",
                       "detail": [{"type": "extra_forbidden", "loc": ["rows", 0, HUGE], "msg": "Extra inputs",
                                   "url": "https://errors.pydantic.dev"}]}).encode()
    data = _call(_guard(_answer(400, body))).json()
    assert data["error"] == "1 validation error for Input"
    [item] = data["detail"]
    assert item["loc"][:2] == ["rows", 0] and len(item["loc"][2]) < 100 and "20,000,000" in item["loc"][2]
    assert set(item) == {"loc", "msg", "type"}


def test_messages_echo_at_most_a_short_prefix_of_a_user_value():
    for error in (EntityNotFound("customer", [HUGE]), EntityNotFound("customer", [HUGE] * 7),
                  ProjectNotFound(HUGE, ["shop"]), InvalidName("project", HUGE, "letters only"), NoAccess(HUGE)):
        assert len(str(error)) < 700, type(error).__name__  # five ids at most, each cut
        assert "characters)" in str(error)
    assert "'c42'" in str(EntityNotFound("customer", ["c42"]))  # short values as they were


def test_the_openapi_document_lists_every_status_in_its_real_shape():
    doc = {"paths": {"/predict": {"post": {"responses": {"200": {}, "400": {"$ref": "x"}}}},
                     "/metrics": {"get": {"responses": {"200": {}}}}, "/readyz": {"get": {"responses": {"200": {}}}}},
           "components": {"schemas": {"InvalidArgument": {}, "NotFound": {}}}}
    out = true_openapi(doc)
    predict = out["paths"]["/predict"]["post"]
    assert set(predict["responses"]) == {"200", "400", "401", "403", "404", "413", "415", "422", "500"}
    assert predict["responses"]["400"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
    assert out["components"]["schemas"]["Error"]["properties"]["detail"]["type"] == "array"
    assert "InvalidArgument" not in out["components"]["schemas"]
    assert predict["security"] == [{"bearer": []}]
    assert "text/plain" in out["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert set(out["paths"]["/readyz"]["get"]["responses"]) == {"200"}  # probes are open
    assert error_body(404, b'[{"error": "x"}]') == b'{"error": "x"}'


def _record(exc):
    try:
        raise exc
    except Exception:
        import sys

        return logging.LogRecord("bentoml._internal.server.http_app", logging.ERROR, __file__, 1,
                                 "Exception on %s [%s]", ("/predict_entity", "POST"), sys.exc_info())


def test_a_refused_request_is_one_log_line_a_fault_keeps_its_traceback():
    from bentoml.exceptions import NotFound
    from pydantic import BaseModel, ValidationError

    class M(BaseModel):
        x: int

    try:
        M(x="no")
    except ValidationError as exc:
        invalid = exc
    formatter = logging.Formatter("%(levelname)s %(message)s")
    for exc, status in [(NotFound("unknown customer id: " + "'" + HUGE + "'"), 404), (invalid, 400)]:
        record = _record(exc)
        assert ClientErrorsInOneLine().filter(record)
        line = formatter.format(record)
        assert "\n" not in line and line.startswith(f"INFO {status} /predict_entity: ") and len(line) < 400
    fault = _record(RuntimeError("boom"))
    ClientErrorsInOneLine().filter(fault)
    assert "Traceback" in formatter.format(fault)


@pytest.mark.parametrize("value", [1e308, -1e308, math.inf, -math.inf, "1e400", 10**400, -(10**400), 3.5e38])
def test_numbers_no_trainer_can_score_are_a_4xx_naming_the_field(value):
    model = model_for(["amount", "plan"], ["amount"], {"plan": ["a", "b"]}, "Row")
    with pytest.raises(Exception) as typed:  # the bento's typed schema: pydantic's 400
        model.model_validate({"amount": value})
    assert "amount" in str(typed.value)
    with pytest.raises(InvalidRequest, match="rows\\[0\\]: feature 'amount' must be a finite number"):
        check_numbers(["amount"], {"amount": value}, "rows[0]")  # the gateway's plain rows


@pytest.mark.parametrize("value", [NUMBER_LIMIT, -NUMBER_LIMIT, 0, 7, 1e38, None, math.nan])
def test_numbers_in_range_and_nan_are_scored(value):
    model = model_for(["amount"], ["amount"], {}, "Row")
    row = model.model_validate({"amount": value}).model_dump(by_alias=True)
    assert row["amount"] is None if value is None or value != value else math.isfinite(row["amount"])
    check_numbers(["amount"], {"amount": value})


@pytest.mark.parametrize("value", [True, False, "12.5", [1], {"a": 1}])
def test_a_number_field_takes_json_numbers_only_as_its_schema_says(value):
    model = model_for(["amount"], ["amount"], {}, "Row")
    with pytest.raises(Exception, match="amount"):
        model.model_validate({"amount": value})


@pytest.mark.parametrize("name", ["shop", "a", "a_b", "a1_2", "shop_", "a" * 63, "", "_a", "1a", "a__b", "Shop",
                                  "a" * 64, "a-b", "bad name!", "é"])
def test_the_gateway_project_pattern_is_the_project_name_rule(name):
    """The OpenAPI pattern of the gateway's project field says exactly what check_project_name accepts."""
    import re

    from gristmill.errors import GristmillError
    from gristmill.serving import bento
    from gristmill.workspace import check_project_name

    pattern = re.search(r'max_length=63, pattern=r"([^"]+)"', bento.GATEWAY_SERVICE).group(1)
    try:
        valid = check_project_name(name) == name
    except GristmillError:
        valid = False
    assert bool(re.fullmatch(pattern, name)) and len(name) <= 63 or not valid
    assert valid == (bool(re.fullmatch(pattern, name)) and len(name) <= 63)


def test_generated_services_bound_their_lists(workspace):
    from gristmill.serving.bento import MAX_ITEMS, write_bento

    service = (write_bento(workspace, "shop", "customer", "customer_id", 3000) / "service.py").read_text()
    assert service.count(f"max_length={MAX_ITEMS}") == 3 and service.count("min_length=1") == 2
    compile(service, "service.py", "exec")
