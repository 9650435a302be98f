"""Dead letters: grouped by source and reason, one dead letter's page, and replays."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from daemon.lead import DeadLetter, Lead, StoredDeadLetter
from daemon.pipeline import Replayed, replay
from daemon.web.admin.site import Admin, Posted, email_of, found
from storage import dead_letters

#: the group of dead letters no rule recognised (no source)
NO_SOURCE = ""


@dataclass(frozen=True)
class Group:
    """The dead letters of one source and reason."""

    source: str
    reason: str
    items: list[StoredDeadLetter]


def routes(admin: Admin) -> APIRouter:
    r = APIRouter()
    form_post = Depends(admin.posted)  # a signed-in session and a good CSRF token

    @r.get("/dead-letters")
    def dead_list(request: Request, status: str = "open") -> Response:
        session = admin.viewer(request)
        status = status if status in ("open", "resolved", "ignored", "all") else "open"
        with admin.db.session() as s:
            rows = dead_letters.listing(s, status=None if status == "all" else status, limit=1000)
        return admin.page("dead_letters.html", session, nav="dead", groups=group(rows),
                          status=status, count=len(rows))

    @r.get("/dead-letters/{dead_letter_id}")
    def dead_page(request: Request, dead_letter_id: int) -> Response:
        session = admin.viewer(request)
        with admin.db.session() as s:
            row = found(dead_letters.get(s, dead_letter_id), f"dead letter #{dead_letter_id}")
            email = email_of(s, row.inbound_email_id)
        return admin.page("dead_letter.html", session, nav="dead", row=row, dl=row.dead_letter,
                          email=email)

    @r.post("/dead-letters/replay")
    def replay_some(posted: Posted = form_post) -> Response:
        return _replay(admin, posted)

    return r


def _replay(admin: Admin, posted: Posted) -> Response:
    """Replay the chosen dead letters: one source's, all open ones, or those ticked."""
    source = posted.first("source")
    with admin.db.session() as s:
        if source is not None:
            rows = dead_letters.listing(s, status="open", limit=None)
            chosen = [x.id for x in rows if (x.source_hint or NO_SOURCE) == source]
            what = f"all open of source {source or '(none)'}"
        elif posted.first("all"):
            chosen = [x.id for x in dead_letters.listing(s, status="open", limit=None)]
            what = "all open"
        else:
            ids = posted.ints("id")
            chosen = [x.id for x in dead_letters.listing(s, status=None, ids=ids, limit=None)]
            what = "selected"
    engine = admin.engine()
    results = [res for dl_id in sorted(chosen)
               if (res := replay(admin.db, engine, dl_id, admin.routing)) is not None]
    if any(isinstance(x.outcome, Lead) and not x.already_resolved for x in results):
        admin.wake()  # the new leads' deliveries are in the outbox
    summary = summarize(results)
    admin.audit(posted.user, "replay", ip=posted.ip,
                target=",".join(f"dead_letter:{i}" for i in sorted(chosen))[:2000] or None,
                detail=f"{what}: {summary}")
    return admin.page("replayed.html", posted.session, nav="dead", results=results,
                      summary=summary, what=what)


def group(rows: list[StoredDeadLetter]) -> list[Group]:
    """By source (no source last), then by reason; newest first within a group."""
    groups: dict[tuple[str, str], list[StoredDeadLetter]] = defaultdict(list)
    for row in rows:
        groups[(row.source_hint or NO_SOURCE, row.dead_letter.reason.value)].append(row)
    order = sorted(groups, key=lambda k: (k[0] == NO_SOURCE, k[0], k[1]))
    return [Group(src, reason, groups[(src, reason)]) for src, reason in order]


def summarize(results: list[Replayed]) -> str:
    """The same sentence as ``leadpipe dlq replay``."""
    resolved = sum(1 for x in results if isinstance(x.outcome, Lead))
    still = sum(1 for x in results if isinstance(x.outcome, DeadLetter))
    return f"replayed {len(results)}: {resolved} now leads, {still} still dead letters"
