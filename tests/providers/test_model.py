"""The model endpoint's client against a local stand-in that speaks OpenAI's chat-completions
shape: what it sends, what it keeps of an answer, and how each failure becomes ours."""

from __future__ import annotations

import pytest
from modelserver import ModelServer

from daemon.errors import PermanentDeliveryError, TransientDeliveryError
from daemon.providers.model import INQUIRY_SCHEMA, LEAD_SCHEMA, ChatModel


@pytest.fixture
def server():
    with ModelServer(key="sk-local") as s:
        yield s


def _model(server: ModelServer, **kw) -> ChatModel:
    return ChatModel(f"{server.base_url}/v1", "llama3.1:8b", api_key="sk-local", **kw)


def test_a_lead_is_asked_for_as_json_that_fits_the_schema_with_the_key(server):
    server.answer({"is_lead": True, "full_name": "Dana Whitfield", "email": "dana@example.com",
                   "phone": None, "intent": "buy"})
    got = _model(server).read_lead("Subject: hello\n\nDana Whitfield dana@example.com")
    assert got == {"is_lead": True, "full_name": "Dana Whitfield", "email": "dana@example.com", "intent": "buy"}
    (req,) = server.named("chat", 200)
    assert req.headers["Authorization"] == "Bearer sk-local"
    assert req.body["model"] == "llama3.1:8b" and req.body["temperature"] == 0
    fmt = req.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == LEAD_SCHEMA
    assert [m["role"] for m in req.body["messages"]] == ["system", "user"]


def test_keys_the_schema_does_not_name_and_values_of_the_wrong_type_are_left_out(server):
    server.answer({"intent": "lease", "urgency": "now", "pre_approved": "yes", "cash": False,
                   "timeline_days": 12.5, "investor": True, "credit_score": 700})
    got = _model(server).read_inquiry("We need a place soon", today="2026-12-02")
    assert got == {"urgency": "now", "cash": False, "investor": True}
    assert server.named("chat")[0].body["response_format"]["json_schema"]["schema"] == INQUIRY_SCHEMA
    assert "2026-12-02" in server.named("chat")[0].body["messages"][0]["content"]


def test_an_answer_that_is_not_json_is_a_permanent_error(server):
    server.answer_text("Sure! Here is the lead: Dana, dana@example.com")
    with pytest.raises(PermanentDeliveryError, match="chat completion with JSON"):
        _model(server).read_lead("text")


def test_a_wrong_key_is_a_permanent_error(server):
    model = ChatModel(f"{server.base_url}/v1", "m", api_key="wrong")
    with pytest.raises(PermanentDeliveryError, match="401"):
        model.read_lead("text")


def test_a_429_is_transient_with_its_retry_after_and_holds_the_gate(server):
    server.fail_next("chat", 429, retry_after=30, body={"error": {"message": "Rate limit reached"}})
    model = _model(server)
    with pytest.raises(TransientDeliveryError) as caught:
        model.read_lead("text")
    assert caught.value.retry_after is not None
    assert model.gate.held_for() > 25
    # held: the next read is refused here, without a request
    with pytest.raises(TransientDeliveryError, match="rate limit"):
        model.read_lead("text")
    assert len(server.named("chat")) == 1


def test_a_5xx_and_a_slow_answer_are_transient(server):
    server.fail_next("chat", 503)
    with pytest.raises(TransientDeliveryError, match="503"):
        _model(server).read_lead("text")
    server.fail_next("chat", 200, hang=1.5)
    with pytest.raises(TransientDeliveryError, match="no answer"):
        _model(server, timeout=0.3).read_lead("text")


def test_an_unreachable_endpoint_is_transient():
    with ModelServer() as gone:
        url = f"{gone.base_url}/v1"
    with pytest.raises(TransientDeliveryError, match="cannot connect"):
        ChatModel(url, "m", timeout=1.0).read_lead("text")


def test_a_call_that_is_not_free_at_once_is_not_made_and_nothing_waits(server):
    model = _model(server, rate=0.01)  # one call now, the next in about 100 s
    server.answer({"is_lead": False})
    model.read_lead("text")
    with pytest.raises(TransientDeliveryError, match="rate limit"):
        model.read_lead("text")
    assert len(server.named("chat")) == 1
