"""Deliveries that are dead or being retried, by notifier, with a retry button."""

from __future__ import annotations

from collections import defaultdict

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from daemon.web.admin.site import PREFIX, Admin, Posted
from storage import outbox
from storage.outbox import Delivery


def routes(admin: Admin) -> APIRouter:
    r = APIRouter()
    form_post = Depends(admin.posted)  # a signed-in session and a good CSRF token

    @r.get("/deliveries")
    def delivery_list(request: Request, retried: int | None = None) -> Response:
        session = admin.viewer(request)
        with admin.db.session() as s:
            rows = outbox.listing(s, status=("dead", *outbox.WAITING), limit=1000)
            counts = outbox.count_by_status(s)
        shown = [d for d in rows if d.status == "dead" or d.attempts > 0]
        by_notifier: dict[str, list[Delivery]] = defaultdict(list)
        for d in shown:
            by_notifier[d.notifier].append(d)
        return admin.page("deliveries.html", session, nav="deliveries",
                          groups=sorted(by_notifier.items()), counts=counts, retried=retried,
                          queued=sum(1 for d in rows if d.status != "dead" and d.attempts == 0))

    @r.post("/deliveries/retry")
    def retry(posted: Posted = form_post) -> Response:
        notifier = posted.first("notifier")
        now = admin.clock()
        with admin.db.session() as s:
            if notifier:
                ids = [d.id for d in outbox.listing(s, status="dead", notifier=notifier, limit=None)]
                what = f"all dead of {notifier}"
            else:
                ids = posted.ints("id")
                what = "selected"
            # the same function `leadpipe deliveries retry` uses: due now, attempts counted anew
            n = outbox.retry(s, ids, at=now) if ids else 0
        if n:
            admin.wake()
        admin.audit(posted.user, "retry", ip=posted.ip,
                    target=",".join(f"delivery:{i}" for i in ids)[:2000] or None,
                    detail=f"{what}: {n} due again now")
        return admin.redirect(f"{PREFIX}/deliveries?retried={n}")

    return r
