"""Leads posted as JSON (daemon/intake/webhooks.py, daemon/reading/mappings.py): a real uvicorn on port 0,
a real database, the Service's own Worker and router.

When these fail, a website form's lead is lost or stored twice, anyone who finds the URL
can inject leads, or a provider retrying a post makes a second lead for one person.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.config import Settings
from daemon.errors import RuleError
from daemon.intake.webhooks import auth_problem, sign
from daemon.pipeline import Engine, parse_webhook, replay
from daemon.reading.mappings import (
    MISSING,
    WebhookMapping,
    load_mapping_file,
    load_mappings,
    parse_path,
    resolve,
)
from daemon.service import Service
from daemon.web.app import WebServer, make_app
from storage import dead_letters, inbound, leads

REPO = Path(__file__).resolve().parents[2]
TOKEN = "form-token-0123456789"
SECRET = "hmac-secret-abcdefghijkl"

FORM = """\
source: form
version: 2
auth: {type: token, header: X-Form-Token}
event_id: submission.id
fields:
  full_name: submission.contact.name
  email: submission.contact.email
  phone: [submission.contact.phone, submission.contact.mobile]
  message: {path: submission.message, filters: [collapse]}
  address: submission.listing.address
  price: submission.listing.price
  intent:
    path: submission.kind
    filters: [{map: {'buy': buy, 'sell': sell}}]
required: [full_name]
"""

SIGNED = """\
source: signed
version: 1
auth: {type: hmac, header: X-Signature, prefix: "sha256="}
fields:
  full_name: name
  phone: "field_data[name=phone_number].values[0]"
  email: "field_data[name=email].values[0]"
"""

STAMPED = """\
source: stamped
version: 1
auth: {type: hmac, header: Stamped-Signature, encoding: base64, timestamp: true, tolerance: 2m}
event_id: event
fields:
  full_name: lead.name
  email: lead.email
"""


def lead_body(event: str = "sub_1", *, phone: str | None = "(305) 555-0142",
              name: str | None = "Ana Ruiz", **more: str) -> bytes:
    contact: dict[str, Any] = {"email": "ana.ruiz@example.com", **more}
    if phone is not None:
        contact["phone"] = phone
    if name is not None:
        contact["name"] = name
    return json.dumps({"submission": {
        "id": event, "contact": contact, "message": "Can I see it\n  Saturday?", "kind": "buying",
        "listing": {"address": "1487 Coral Way, Miami, FL 33145", "price": "$625,000"},
    }}).encode()


def make_rules(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    (rules / "webhooks").mkdir(parents=True)
    shutil.copy(REPO / "rules" / "scoring.yaml", rules / "scoring.yaml")
    for name, text in (("form", FORM), ("signed", SIGNED), ("stamped", STAMPED)):
        (rules / "webhooks" / f"{name}.yaml").write_text(text, encoding="utf-8")
    return rules


def make_service(database_url: str, tmp_path: Path, **overrides: Any) -> Service:
    settings = Settings(
        database_url=database_url, rules_dir=make_rules(tmp_path), inbox_dir=tmp_path / "inbox",
        agents=[{"name": "Ana Agent"}, {"name": "Bo Agent"}],
        webhooks={"sources": {"form": {"secret": TOKEN}, "signed": {"secret": SECRET},
                              "stamped": {"secret": SECRET}}, **overrides},
    )
    return Service(settings)


@pytest.fixture
def served(database_url: str, tmp_path: Path) -> Iterator[tuple[Service, WebServer]]:
    service = make_service(database_url, tmp_path)
    server = WebServer(make_app(service.router, None, routers=service.web_routers()), "127.0.0.1", 0).start()
    try:
        yield service, server
    finally:
        server.stop()
        service.db.dispose()


def post(server: WebServer, source: str, body: bytes, headers: dict[str, str] | None = None,
         ) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"{server.url}/webhooks/{source}", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def count_rows(service: Service) -> tuple[int, int, int]:
    with service.db.session() as s:
        emails = sum(inbound.count_by_status(s).values())
        lead_rows = len(leads.newest(s, limit=100))
        dead = len(dead_letters.listing(s, status=None))
    return emails, lead_rows, dead


# -- the endpoint, end to end ----------------------------------------------------------


def test_a_json_lead_posted_with_the_right_token_becomes_a_routed_lead(served):
    service, server = served
    status, body = post(server, "form", lead_body(), {"X-Form-Token": TOKEN})
    assert status == 200, body
    assert body["result"] == "lead" and body["duplicate"] is False
    with service.db.session() as s:
        stored = leads.get(s, body["lead_id"])
        raw = inbound.get_raw(s, body["inbound_id"])
    assert stored is not None and raw is not None
    lead = stored.lead
    assert (lead.source, lead.rule_version, lead.full_name, lead.phone, lead.email) == (
        "form", "2", "Ana Ruiz", "+13055550142", "ana.ruiz@example.com")
    assert (lead.property.address, lead.property.city, lead.property.price, lead.intent) == (
        "1487 Coral Way", "Miami", 625000, "buy")
    assert lead.message == "Can I see it Saturday?"
    assert lead.message_id == "sub_1"  # the provider's event id
    assert stored.status == "assigned" and stored.agent in ("Ana Agent", "Bo Agent")
    assert raw.origin.value == "webhook" and raw.data == lead_body()  # the raw body, stored first


def test_a_json_lead_signed_with_hmac_becomes_a_lead(served):
    _, server = served
    body = json.dumps({"name": "Bo Diaz", "field_data": [
        {"name": "email", "values": ["bo@example.com"]},
        {"name": "phone_number", "values": ["+1 919 555 0188"]}]}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    status, answer = post(server, "signed", body, {"X-Signature": signature})
    assert status == 200 and answer["result"] == "lead", answer

    stamped = json.dumps({"event": "evt_9", "lead": {"name": "Cy Long", "email": "cy@example.com"}}).encode()
    now = int(time.time())
    auth = load_mappings(served[0].settings.rules_dir).get("stamped")
    assert auth is not None
    header = sign(auth.auth, SECRET, stamped, timestamp=now)  # type: ignore[arg-type]
    assert header.startswith(f"t={now},v1=")
    status, answer = post(server, "stamped", stamped, {"Stamped-Signature": header})
    assert status == 200 and answer["result"] == "lead", answer


@pytest.mark.parametrize("source,headers", [
    ("form", {}),
    ("form", {"X-Form-Token": TOKEN + "x"}),
    ("signed", {"X-Signature": "sha256=" + "0" * 64}),
    ("signed", {"X-Signature": "not even hex"}),
    ("stamped", {"Stamped-Signature": "v1=abc"}),
], ids=["no token", "wrong token", "bad signature", "garbage signature", "no timestamp"])
def test_a_bad_token_or_signature_gets_401_and_stores_nothing(served, source, headers):
    service, server = served
    status, body = post(server, source, lead_body(), headers)
    assert status == 401 and body["error"]
    assert count_rows(service) == (0, 0, 0)


def test_a_stale_or_replayed_old_signature_is_refused(served):
    """A captured request re-sent later than the tolerance is refused, even correctly signed."""
    service, server = served
    mapping = service.engine.webhooks.get("stamped")
    assert mapping is not None
    body = json.dumps({"event": "e1", "lead": {"name": "A B", "email": "ab@example.com"}}).encode()
    old = int(time.time()) - 600
    status, answer = post(server, "stamped", body,
                          {"Stamped-Signature": sign(mapping.auth, SECRET, body, timestamp=old)})  # type: ignore[arg-type]
    assert (status, answer) == (401, {"error": "stale timestamp"})
    assert count_rows(service) == (0, 0, 0)


def test_a_payload_missing_required_fields_gets_422_and_a_dead_letter(served):
    service, server = served
    # the provider renamed `name` to `full_name`
    status, body = post(server, "form", lead_body("sub_2", name=None, full_name="Ana Ruiz"),
                        {"X-Form-Token": TOKEN})
    assert status == 422, body
    assert body["result"] == "dead_letter" and body["reason"] == "missing_required_field"
    assert "required field `full_name` not found" in body["detail"]
    assert "submission.contact.name" in body["detail"]  # says where it looked
    with service.db.session() as s:
        dead = dead_letters.get(s, body["dead_letter_id"])
    assert dead is not None and dead.status == "open" and dead.source_hint == "form"
    assert count_rows(service) == (1, 0, 1)

    # The mapping is fixed; the dead letter replays into a lead.
    path = service.settings.rules_dir / "webhooks" / "form.yaml"
    path.write_text(FORM.replace("full_name: submission.contact.name",
                                 "full_name: [submission.contact.name, submission.contact.full_name]"),
                    encoding="utf-8")
    fixed = Engine.load(service.settings.rules_dir)
    result = replay(service.db, fixed, body["dead_letter_id"], service.router)
    assert result is not None and result.lead_id is not None
    again = post(server, "form", lead_body("sub_2", name=None, full_name="Ana Ruiz"),
                 {"X-Form-Token": TOKEN})
    assert again[0] == 200 and again[1]["lead_id"] == result.lead_id  # the retry sees the lead


def test_a_body_that_is_not_json_is_a_dead_letter_with_a_reason(served):
    _, server = served
    status, body = post(server, "form", b"name=Ana&phone=305", {"X-Form-Token": TOKEN})
    assert status == 422 and body["reason"] == "unreadable_payload"
    assert "not JSON" in body["detail"]


def test_the_same_event_posted_twice_makes_one_lead(served):
    service, server = served
    first = post(server, "form", lead_body("sub_7"), {"X-Form-Token": TOKEN})
    # a provider's retry: the same event id, a body that differs (a delivery timestamp)
    retried = json.loads(lead_body("sub_7"))
    retried["delivered_at"] = "2026-11-21T10:00:00Z"
    second = post(server, "form", json.dumps(retried).encode(), {"X-Form-Token": TOKEN})
    assert first[0] == second[0] == 200
    assert second[1]["duplicate"] is True and first[1]["duplicate"] is False
    assert second[1]["lead_id"] == first[1]["lead_id"]
    # without an event id, the same body is the same event
    body = json.dumps({"name": "Bo Diaz", "field_data": [{"name": "email", "values": ["bo@example.com"]}]}).encode()
    sig = {"X-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}
    a, b = post(server, "signed", body, sig), post(server, "signed", body, sig)
    assert a[1]["lead_id"] == b[1]["lead_id"] and b[1]["duplicate"] is True
    assert count_rows(service) == (2, 2, 0)


def test_a_duplicate_of_a_dead_letter_gets_its_422_again(served):
    _, server = served
    body = lead_body("sub_9", name=None)
    first = post(server, "form", body, {"X-Form-Token": TOKEN})
    again = post(server, "form", body, {"X-Form-Token": TOKEN})
    assert first[0] == again[0] == 422
    assert again[1]["dead_letter_id"] == first[1]["dead_letter_id"] and again[1]["duplicate"] is True


def test_an_unknown_source_is_404_and_an_oversized_body_is_413(database_url: str, tmp_path: Path):
    service = make_service(database_url, tmp_path, max_body="2KB")
    server = WebServer(make_app(service.router, None, routers=service.web_routers()), "127.0.0.1", 0).start()
    try:
        assert post(server, "nosuch", b"{}", {"X-Form-Token": TOKEN})[0] == 404
        big = json.dumps({"submission": {"message": "x" * 3000}}).encode()
        status, body = post(server, "form", big, {"X-Form-Token": TOKEN})
        assert status == 413 and "2000 bytes" in body["error"]
        assert count_rows(service) == (0, 0, 0)
    finally:
        server.stop()
        service.db.dispose()


def test_a_source_without_a_configured_secret_refuses_everything(database_url: str, tmp_path: Path):
    settings = Settings(database_url=database_url, rules_dir=make_rules(tmp_path),
                        inbox_dir=tmp_path / "inbox")
    service = Service(settings)
    server = WebServer(make_app(service.router, None, routers=service.web_routers()), "127.0.0.1", 0).start()
    try:
        status, body = post(server, "form", lead_body(), {"X-Form-Token": ""})
        assert status == 401 and "no secret" in body["error"]
    finally:
        server.stop()
        service.db.dispose()


def test_the_shipped_mappings_do_not_warn_at_start_when_no_webhook_is_configured(
        database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """An installation that uses no webhook is not told at every start that the shipped
    ``website_form`` mapping has no secret; one that configures some hears of the others."""
    shipped = Service(Settings(database_url=database_url, rules_dir=REPO / "rules",
                               inbox_dir=tmp_path / "inbox"))
    some = Service(Settings(database_url=database_url, rules_dir=make_rules(tmp_path),
                            inbox_dir=tmp_path / "inbox", webhooks={"sources": {"form": {"secret": TOKEN}}}))
    try:
        with caplog.at_level(logging.INFO):
            assert any(m.source == "website_form" for m in shipped.engine.webhooks)
            shipped.web_routers()  # as the daemon's start does
            assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
            some.web_routers()
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert sorted(m.split(":")[0] for m in warned) == ["webhook signed", "webhook stamped"]
    finally:
        shipped.db.dispose()
        some.db.dispose()


def test_the_openapi_document_describes_the_webhook_endpoint(served):
    _, server = served
    with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=5) as resp:
        doc = json.loads(resp.read())
    op = doc["paths"]["/webhooks/{source}"]["post"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["source"]["schema"]["enum"] == ["form", "signed", "stamped"]
    assert {"X-Form-Token", "X-Signature", "Stamped-Signature"} <= set(params)
    assert op["requestBody"]["content"]["application/json"]["schema"]["type"] == "object"
    assert {"200", "202", "401", "404", "413", "422", "503"} <= set(op["responses"])
    result = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert result.endswith("/WebhookResult")


# -- mappings, without HTTP -------------------------------------------------------------


def test_json_paths_reach_nested_keys_indexes_and_selected_list_items():
    doc = {"a": {"b c": [1, {"d": "x"}]}, "fields": [{"name": "phone", "values": ["305"]}]}
    assert resolve(doc, parse_path("a['b c'][1].d")) == "x"
    assert resolve(doc, parse_path('$.a["b c"][-2]')) == 1
    assert resolve(doc, parse_path("fields[name=phone].values[0]")) == "305"
    assert resolve(doc, parse_path("fields[name='email'].values[0]")) is MISSING
    assert resolve(doc, parse_path("a.nope")) is MISSING and resolve(doc, parse_path("fields[5]")) is MISSING
    for bad in ("", "a..b", "a[", "a[x y]", "a]b"):
        with pytest.raises(ValueError):
            parse_path(bad)


def test_a_mapping_uses_the_email_rules_filters_and_normalization(tmp_path: Path):
    engine = Engine.load(make_rules(tmp_path))
    mapping = engine.webhooks.get("form")
    assert isinstance(mapping, WebhookMapping)
    body = json.dumps({"submission": {"contact": {"name": "  ANA   RUIZ ", "mobile": 3055550142},
                                      "kind": "want to SELL"}}).encode()
    lead = parse_webhook(body, mapping, engine)
    assert lead.full_name == "Ana Ruiz" and lead.phone == "+13055550142"  # type: ignore[union-attr]
    assert lead.intent == "sell"  # type: ignore[union-attr]


def test_a_mapping_file_with_a_problem_names_its_file_line_and_key(tmp_path: Path):
    folder = tmp_path / "rules" / "webhooks"
    folder.mkdir(parents=True)
    bad = folder / "acme.yaml"
    bad.write_text("source: acme\nversion: 1\nauth: {type: token}\nfields:\n  phone: 'a[b'\n",
                   encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_mapping_file(bad)
    assert info.value.line == 5 and "bad JSON path" in str(info.value)
    # a filter is reported against its own kind: the replacement's missing group, not
    # "Input should be 'trim', …" from the first member of the filter union
    bad.write_text("source: acme\nversion: 1\nauth: {type: token}\nfields:\n  phone: p\n"
                   "  intent:\n    path: kind\n    filters:\n      - replace: ['(buy)', '\\2']\n",
                   encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_mapping_file(bad)
    assert (info.value.line, info.value.key) == (9, "fields.intent.filters[0]"), str(info.value)
    assert "does not fit pattern '(buy)': invalid group reference" in info.value.message
    renamed = folder / "other.yaml"
    renamed.write_text("source: acme\nversion: 1\nauth: {type: token}\nfields: {phone: p}\n",
                       encoding="utf-8")
    with pytest.raises(RuleError, match="must be the file's name"):
        load_mapping_file(renamed)
    loaded = load_mappings(tmp_path / "rules")
    assert len(loaded) == 0 and len(loaded.errors) == 2 and loaded.refused("acme") is not None


def test_the_shipped_mapping_loads_and_its_schema_json_is_current():
    from daemon.reading.mappings import json_schema_text

    shipped = load_mappings(REPO / "rules")
    assert not shipped.errors and shipped.get("website_form") is not None
    schema = REPO / "rules" / "webhooks" / "schema.json"
    assert schema.read_text(encoding="utf-8") == json_schema_text(), (
        "rules/webhooks/schema.json is out of date; run: leadpipe rules schema")


def test_signatures_compare_in_constant_time_and_accept_uppercase_hex():
    mapping = load_mappings(REPO / "rules").get("website_form")
    assert mapping is not None
    body = b'{"id": 1}'
    good = sign(mapping.auth, SECRET, body)  # type: ignore[arg-type]
    headers = {"X-Form-Signature": good}
    assert auth_problem(mapping.auth, SECRET, headers, body, time.time()) is None
    upper = {"X-Form-Signature": "sha256=" + good.removeprefix("sha256=").upper()}
    assert auth_problem(mapping.auth, SECRET, upper, body, time.time()) is None
    assert auth_problem(mapping.auth, SECRET, headers, body + b" ", time.time()) == "bad signature"


# -- property-based: the endpoint from its own OpenAPI document -------------------------


def test_no_generated_request_to_the_webhook_endpoint_gets_a_500(database_url: str, tmp_path: Path):
    """schemathesis draws sources, auth headers and JSON bodies from /openapi.json; the
    token source's real token is sent too, so bodies reach the mapping and the database.
    Whatever arrives, the answer is one the document describes, and never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hsettings
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
    )

    service = make_service(database_url, tmp_path)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", make_app(service.router, None, routers=service.web_routers()))
        operation = schema["/webhooks/{source}"]["POST"]
        checks = [not_a_server_error, status_code_conformance, content_type_conformance,
                  response_schema_conformance]
        seen: set[int] = set()

        @given(case=operation.as_strategy())
        @hsettings(max_examples=60, deadline=None, database=None,
                   suppress_health_check=list(HealthCheck))
        def generated(case: Any) -> None:
            response = case.call(headers={**(case.headers or {}), "X-Form-Token": TOKEN})
            seen.add(response.status_code)
            case.validate_response(response, checks=checks)

        generated()
        assert 422 in seen and 401 in seen  # the bodies reached the mapping, and auth refused
    finally:
        service.db.dispose()
