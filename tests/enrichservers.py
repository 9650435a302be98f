"""Local HTTP servers that speak a person enricher's API shape, on ``127.0.0.1`` port 0 in a
thread, built on ``crmservers.ApiServer`` (so ``fail_next`` scripts a 429 with
``Retry-After``, a 5xx or a slow answer (``hang=``), ``down`` answers 503, and every request
is recorded).

- ``PdlServer`` — People Data Labs' ``GET /v5/person/enrich?email=…``: the key in
  ``X-Api-Key`` (else ``401``); a person in ``people`` is a ``200 {"status": 200,
  "likelihood", "data": {…}}`` answer costing one of ``credits``; anyone else ``404`` (free,
  as PDL charges per match); with no credits left, ``402``. Errors are PDL's ``{"status",
  "error": {"type", "message"}}``. The record carries a name, emails and a phone too, as PDL's
  do, so a test can prove leadpipe never takes them.
- ``PersonServer`` — the generic shape (daemon/providers/person_http.py): ``GET /person?email=…``
  answering ``{"company", "title", "profiles": [{"network", "url"}], "likelihood"}``, 404
  for no match, ``Authorization: Bearer <key>`` checked when ``key`` is set.
"""

from __future__ import annotations

import re
from typing import Any

from crmservers import Answer, ApiServer, Request

#: the stand-in's people, by email: (company, title, linkedin, twitter, likelihood)
PEOPLE: dict[str, tuple[str, str, str, str | None, int]] = {
    "dana@example.com": ("Compass", "Broker Associate", "linkedin.com/in/dana-lee",
                         "twitter.com/danalee", 8),
    "sam@example.com": ("Acme Robotics", "VP Engineering", "linkedin.com/in/sam-rivera", None, 6),
}


def pdl_error(status: int, kind: str, message: str) -> dict[str, Any]:
    return {"status": status, "error": {"type": kind, "message": message}}


class PdlServer(ApiServer):
    """People Data Labs' Person Enrichment API (``base_url`` is the API's root)."""

    routes = (("GET", r"/v5/person/enrich", "enrich"),)

    def __init__(self, key: str = "pdl-test-key", credits: int = 1000) -> None:
        super().__init__()
        self.key = key
        self.credits = credits
        self.people = dict(PEOPLE)

    def authorized(self, headers: dict[str, str]) -> bool:
        return True  # PDL's own 401 shape, below

    def on_enrich(self, m: re.Match[str], req: Request) -> Answer:
        if req.headers.get("X-Api-Key") != self.key:
            return 401, pdl_error(401, "invalid_auth", "Invalid API Key"), {}
        email = req.query.get("email", "").lower()
        if not email:
            return 400, pdl_error(400, "invalid_request_error", "missing a required parameter"), {}
        found = self.people.get(email)
        if found is None:
            return 404, pdl_error(404, "not_found", "No records were found matching your request"), {}
        if self.credits <= 0:
            return 402, pdl_error(402, "payment_required",
                                  "You have hit your account maximum for person enrichment"), {}
        self.credits -= 1
        company, title, linkedin, twitter, likelihood = found
        return 200, {"status": 200, "likelihood": likelihood, "data": {
            "id": "qEnOZ5Oh0poWnQ1luFBfVw_0000", "full_name": "someone else entirely",
            "first_name": "someone", "last_name": "else", "work_email": "other@corp.example",
            "mobile_phone": "+15555550100", "personal_emails": ["other@mail.example"],
            "job_title": title.lower(), "job_company_name": company.lower(),
            "linkedin_url": linkedin, "twitter_url": twitter, "facebook_url": None,
            "github_url": None, "location_name": "miami, florida, united states",
            "profiles": [{"network": "linkedin", "id": None, "url": linkedin, "username": "x"},
                         {"network": "facebook", "id": None, "url": "facebook.com/dana.lee.1",
                          "username": "dana.lee.1"},
                         {"network": "angellist", "id": None, "url": "javascript:alert(1)",
                          "username": None}],
        }}, {}

    @property
    def calls(self) -> int:
        return len(self.named("enrich"))


class PersonServer(ApiServer):
    """The generic person enricher's shape; ``url`` is the endpoint to configure."""

    routes = (("GET", r"/person", "person"),)

    def __init__(self, key: str | None = None) -> None:
        super().__init__()
        self.key = key
        self.people = dict(PEOPLE)

    def authorized(self, headers: dict[str, str]) -> bool:
        return self.key is None or headers.get("Authorization") == f"Bearer {self.key}"

    def on_person(self, m: re.Match[str], req: Request) -> Answer:
        found = self.people.get(req.query.get("email", "").lower())
        if found is None:
            return 404, {"found": False}, {}
        company, title, linkedin, twitter, likelihood = found
        profiles = [{"network": "linkedin", "url": f"https://{linkedin}"}]
        if twitter:
            profiles.append({"network": "twitter", "url": f"https://{twitter}"})
        return 200, {"company": company, "title": title, "profiles": profiles,
                     "likelihood": likelihood, "extra": "ignored"}, {}

    @property
    def url(self) -> str:
        return f"{self.base_url}/person"

    @property
    def calls(self) -> int:
        return len(self.named("person"))
