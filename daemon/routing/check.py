"""``leadpipe routing check``: what is wrong with the flows beyond what stops the start.

A flow or team naming an unknown agent or team stops the start (``flows.load_plan``); these
are the mistakes that load but route leads where the owner did not mean:

- **an unreachable flow**: an earlier flow takes every lead it would (its every condition
  is as broad or broader), so it never routes a lead;
- **overlapping postal codes**: two flows whose postal-code lists share some codes but not
  all (neither area is inside the other, the usual sign of a code typed into the wrong
  list) and whose other conditions do not keep them apart, so the shared codes go to
  whichever comes first; an area inside another (``3313*`` before ``331*``) is the way to
  carve a narrower flow out of a wider one and is not reported;
- **a team nobody can work**: every agent of it inactive;
- **an offer with nowhere to post**: ``method: offer`` with neither a team ``channel`` nor
  ``slack.hot_leads_channel`` (it becomes round robin).

Each finding names ``file:line: key`` like a rule file's errors. Pure: reads the plan, the
settings and the configuration file's key lines.
"""

from __future__ import annotations

import fnmatch

from daemon import yamlfile
from daemon.config import Settings
from daemon.routing.flows import FlowSpec, Match, Plan


def _covers_code(a: str, b: str) -> bool:
    """Pattern ``a`` takes every code pattern ``b`` takes."""
    if a.endswith("*"):
        return b.removesuffix("*").startswith(a[:-1])
    return a == b


def _codes_cover(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    return all(any(_covers_code(x, y) for x in a) for y in b)


def _codes_meet(a: tuple[str, ...], b: tuple[str, ...]) -> list[str]:
    return sorted({y for y in b for x in a if _covers_code(x, y) or _covers_code(y, x)})


def _lower(v: tuple[str, ...]) -> set[str]:
    return {x.lower() for x in v}


def covers(a: Match, b: Match, *, price: bool = True) -> bool:
    """Every lead ``b`` takes, ``a`` takes too (so ``b`` after ``a`` is unreachable);
    ``price=False``: price ranges aside."""
    for key in ("tier", "intent", "city", "state", "language"):
        wanted_a, wanted_b = getattr(a, key), getattr(b, key)
        if wanted_a and (not wanted_b or not _lower(wanted_b) <= _lower(wanted_a)):
            return False
    if a.source and (not b.source or not all(
            any(fnmatch.fnmatchcase(g.lower(), h.lower()) for h in a.source) for g in b.source)):
        return False
    if a.postal_codes and (not b.postal_codes or not _codes_cover(a.postal_codes, b.postal_codes)):
        return False
    if price and a.price is not None:
        if b.price is None:
            return False
        lo_a, hi_a = a.price.min or 0.0, a.price.max or float("inf")
        lo_b, hi_b = b.price.min or 0.0, b.price.max or float("inf")
        if not (lo_a <= lo_b and hi_b <= hi_a):
            return False
    return not (a.time is not None and a.time != b.time)


def _bands_cover(earlier: list[Match], b: Match) -> bool:
    """The price bands of ``earlier`` flows (each covering ``b`` but for price) together
    cover ``b``'s band: two bands "under 500,000" and "from 500,000" leave nothing for a
    later flow of that area with a price condition. A flow without one is still reached by
    leads with no price."""
    if b.price is None:
        return False
    lo, hi = b.price.min or 0.0, b.price.max or float("inf")
    bands = sorted((m.price.min or 0.0, m.price.max or float("inf"))
                   for m in earlier if m.price is not None and covers(m, b, price=False))
    reach = lo
    for start, end in bands:
        if start > reach:
            break
        reach = max(reach, end)
    return reach >= hi


def may_meet(a: Match, b: Match) -> bool:
    """Some lead could match both, postal codes aside."""
    for key in ("tier", "intent", "city", "state", "language"):
        wanted_a, wanted_b = getattr(a, key), getattr(b, key)
        if wanted_a and wanted_b and not _lower(wanted_a) & _lower(wanted_b):
            return False
    if a.price is not None and b.price is not None:
        lo_a, hi_a = a.price.min or 0.0, a.price.max or float("inf")
        lo_b, hi_b = b.price.min or 0.0, b.price.max or float("inf")
        if hi_a <= lo_b or hi_b <= lo_a:
            return False
    return True


def findings(settings: Settings, plan: Plan) -> list[yamlfile.Problem]:
    """Every problem of ``plan`` that loads but misroutes, in file order."""
    doc = settings._origin[0] if settings._origin else yamlfile.YamlDocument(data={}, file="(configuration)")
    out: list[yamlfile.Problem] = []

    def at(path: tuple[str | int, ...], message: str) -> None:
        out.append(yamlfile.Problem(doc.file, doc.line_of(path), yamlfile.dotted(doc.as_written(path)), message))

    flows = plan.flows
    for j, later in enumerate(flows):
        here: tuple[str | int, ...] = ("routing", "flows", j)
        shadow = next((f for f in flows[:j] if covers(f.match, later.match)), None)
        key = (*here, "match") if (*here, "match") in doc.lines else (*here, "name")
        if shadow is not None:
            line = doc.line_of(("routing", "flows", flows.index(shadow)))
            at(key, f"flow {later.name} is unreachable: flow {shadow.name} (line {line}) comes first and "
               "takes every lead it would")
            continue
        priced = [f for f in flows[:j] if f.match.price is not None]
        if _bands_cover([f.match for f in priced], later.match):
            names = ", ".join(f.name for f in priced if covers(f.match, later.match, price=False))
            at(key, f"flow {later.name} is unreachable: the price bands of flows {names} come first "
               "and together take every lead it would")
            continue
        for i, earlier in enumerate(flows[:j]):
            a, b = earlier.match, later.match
            if not (a.postal_codes and b.postal_codes) or not may_meet(a, b):
                continue
            if _codes_cover(a.postal_codes, b.postal_codes) or _codes_cover(b.postal_codes, a.postal_codes):
                continue  # one area inside the other: a narrower flow carved out first, on purpose
            shared = _codes_meet(a.postal_codes, b.postal_codes)
            if shared:
                line = doc.line_of(("routing", "flows", i, "match", "postal_codes"))
                at((*here, "match", "postal_codes"),
                   f"postal codes {', '.join(shared)} overlap flow {earlier.name}'s (line {line}); "
                   f"leads there go to {earlier.name}")
        _method(settings, plan, later, here, at)
    for i, team in enumerate(plan.teams.values()):
        active = [a for a in settings.agents if a.name in team.agents and a.active]
        if not active:
            at(("teams", i, "agents"), f"team {team.name} has no active agent: its leads go to its fallback")
    return out


def _method(settings: Settings, plan: Plan, flow: FlowSpec, here: tuple[str | int, ...], at: object) -> None:
    team = plan.teams.get(flow.team or "")
    if flow.method == "offer" and not (team and team.channel) and not settings.slack.hot_leads_channel:
        at((*here, "method"), "method: offer with no team channel and no slack.hot_leads_channel: "  # type: ignore[operator]
           "its leads take round-robin turns instead")
    if flow.method == "pond" and not (settings.slack.bot_token and ((team and team.channel)
                                                                    or settings.slack.hot_leads_channel)):
        at((*here, "method"), "method: pond with no Slack bot token and channel to post it in: its "  # type: ignore[operator]
           "leads wait unassigned where no agent sees them (only the admin pages show them)")
