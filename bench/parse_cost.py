"""Parse cost per email: leadpipe's ``parse_email`` against mail-parser alone.

Target (issue 9): the rule engine adds ≤ 25 % to mail-parser's own parse time, i.e.
``parse_email`` / ``mailparser.parse_from_bytes`` ≤ 1.25.

The emails are the fixture emails (fixtures/emails, the hostile ones left out) grown to
portal size (~30 KB) the way real portal emails are: the HTML part carries listing
cards, a photo strip, navigation, a tracking footer and inline styles around the lead.
An email with only a plain part gets an HTML alternative built from its text plus the
same markup (real portal emails are multipart/alternative). The two are timed
interleaved, email by email, in the same run, because these machines have stretches
where the CPU runs ~2× slower (see shared SOURCES.md).

    python bench/parse_cost.py [--rounds 30] [--size 30000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import email
import email.policy
import gc
import pstats
import statistics
import sys
import time
from email.message import EmailMessage
from html import escape
from pathlib import Path

import mailparser

from daemon.lead import DeadLetter, Ignored, Lead
from daemon.message import Message
from daemon.parsing import extract, find_rule, timeout_seconds
from daemon.pipeline import Engine, parse_email

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.25

_STREETS = ["Maple Ave", "Oak St", "Harbor Blvd", "Pine Ct", "Elm Dr", "Cedar Ln", "Bayview Rd", "Palm Way"]


def _card(i: int) -> str:
    street = _STREETS[i % len(_STREETS)]
    price = 285_000 + 17_500 * i
    return (
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="border:1px solid #e0e0e0;border-radius:8px;margin:0 0 16px 0;font-family:Arial,sans-serif">'
        f'<tr><td style="padding:0"><a href="https://www.example-portal.com/homedetails/{1000 + i}/?utm_source=email'
        f'&amp;utm_medium=lead&amp;utm_campaign=similar&amp;rtoken=ab{i:04d}cd" style="text-decoration:none">'
        f'<img src="https://photos.example-portal.com/fp/{i:04d}abcdef-cc_ft_768.jpg" width="568" height="320" '
        f'alt="{100 + i} {street}" style="display:block;width:100%;height:auto;border:0"></a></td></tr>'
        '<tr><td style="padding:12px 16px 4px 16px;font-size:20px;font-weight:bold;color:#2a2a33">'
        f'${price:,}</td></tr>'
        '<tr><td style="padding:0 16px 4px 16px;font-size:14px;color:#54545a">'
        f'{2 + i % 3} bds &middot; {1 + i % 3} ba &middot; {1100 + 85 * i:,} sqft &middot; House for sale</td></tr>'
        '<tr><td style="padding:0 16px 12px 16px;font-size:14px;color:#54545a">'
        f'{100 + i} {street}, Raleigh, NC 276{i % 10:02d}</td></tr>'
        '<tr><td style="padding:0 16px 16px 16px"><table role="presentation" cellpadding="0" cellspacing="0">'
        '<tr><td style="background:#006aff;border-radius:4px;padding:8px 16px">'
        f'<a href="https://www.example-portal.com/homedetails/{1000 + i}/?utm_source=email&amp;cta=view" '
        'style="color:#ffffff;font-size:14px;font-weight:bold;text-decoration:none">View listing</a>'
        '</td></tr></table></td></tr></table>\n'
    )


_HEAD_STYLE = (
    "<style type=\"text/css\">body{margin:0;padding:0;-webkit-text-size-adjust:100%}"
    "table,td{border-collapse:collapse;mso-table-lspace:0pt;mso-table-rspace:0pt}"
    "img{border:0;height:auto;line-height:100%;outline:none;text-decoration:none}"
    "@media only screen and (max-width:600px){.container{width:100%!important}.hide{display:none!important}}"
    "</style>"
)

_NAV = (
    '<table role="presentation" width="600" class="container" align="center" cellpadding="0" cellspacing="0">'
    '<tr><td style="padding:16px;background:#ffffff"><a href="https://www.example-portal.com/?utm_source=email">'
    '<img src="https://www.example-portal.com/static/logo.png" width="120" height="28" alt="Portal"></a></td>'
    '<td align="right" style="padding:16px;font-size:12px"><a href="https://premier.example-portal.com/inbox">'
    'Inbox</a> | <a href="https://premier.example-portal.com/contacts">Contacts</a> | '
    '<a href="https://premier.example-portal.com/settings">Settings</a></td></tr></table>\n'
)

_FOOTER = (
    '<table role="presentation" width="600" class="container" align="center" cellpadding="0" cellspacing="0" '
    'style="font-size:11px;color:#767676;font-family:Arial,sans-serif"><tr><td style="padding:24px 16px">'
    'You are receiving this email because you are a Premier Agent partner. '
    '<a href="https://www.example-portal.com/notifications/unsubscribe?token=9f8e7d6c5b4a" style="color:#767676">'
    'Unsubscribe</a> &middot; <a href="https://www.example-portal.com/privacy" style="color:#767676">Privacy</a>'
    '<br>Example Portal Group, 1301 Second Avenue, Floor 31, Seattle, WA 98101<br>'
    '&copy; 2006-2026 Example Portal. All rights reserved. Equal Housing Opportunity.'
    '<img src="https://email.example-portal.com/o/eJyNkMFu2zAMhp9G.gif" width="1" height="1" alt="" '
    'style="display:none"></td></tr></table>\n'
)


def padding(size: int) -> str:
    """Realistic portal markup of about ``size`` characters around a lead."""
    out = [_NAV, '<table role="presentation" width="600" class="container" align="center"><tr><td>'
           '<h2 style="font-family:Arial,sans-serif;font-size:18px">Similar homes nearby</h2>\n']
    i = 0
    while sum(map(len, out)) + len(_FOOTER) < size:
        out.append(_card(i))
        i += 1
    out.append("</td></tr></table>\n")
    out.append(_FOOTER)
    return "".join(out)


def grow(data: bytes, size: int) -> bytes:
    """``data`` with its HTML part (or a new HTML alternative) padded to ~``size`` bytes."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    pad_len = max(0, size - len(data))
    html_part = next((p for p in msg.walk() if p.get_content_type() == "text/html"), None)
    if html_part is not None:
        html = html_part.get_content()
        pad = padding(pad_len)
        lower = html.lower()
        at = lower.rfind("</body>")
        html = html[:at] + pad + html[at:] if at >= 0 else html + pad
        if "<head" not in lower:
            html = f"<html><head>{_HEAD_STYLE}</head><body>{html}</body></html>"
        html_part.set_content(html, subtype="html", charset="utf-8", cte="quoted-printable")
        return msg.as_bytes()
    plain_part = next((p for p in msg.walk() if p.get_content_type() == "text/plain"), None)
    if plain_part is None or msg.is_multipart():
        return data
    text = plain_part.get_content()
    body = "".join(f"<p style=\"margin:0 0 8px 0\">{escape(line)}</p>\n" if line.strip() else "<br>\n"
                   for line in text.splitlines())
    html = (f"<html><head>{_HEAD_STYLE}</head><body>{_NAV}<table width=\"600\" align=\"center\"><tr><td>"
            f"{body}</td></tr></table>{padding(pad_len)}</body></html>")
    msg.make_alternative()  # the plain text stays the first alternative
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return msg.as_bytes()


def corpus(size: int) -> list[tuple[str, bytes]]:
    emails = []
    for path in sorted((ROOT / "fixtures" / "emails").rglob("*.eml")):
        if path.parent.name.startswith("_"):
            continue
        emails.append((str(path.relative_to(ROOT / "fixtures" / "emails")), grow(path.read_bytes(), size)))
    return emails


def _kind(outcome: object) -> str:
    if isinstance(outcome, Lead):
        return f"lead {outcome.source} {outcome.full_name} {outcome.phone} {outcome.email}"
    if isinstance(outcome, Ignored):
        return f"ignored {outcome.reason}"
    assert isinstance(outcome, DeadLetter)
    return f"dead {outcome.reason.value}"


def rule_engine(data: bytes, engine: Engine) -> object:
    """The rule engine's part of ``parse_email`` for an email a rule matches directly: the
    message read (mail-parser's parse included), the rule found, its fields extracted
    (with the HTML turned into text or a tree where the rule reads it). Normalizing and
    scoring are left out."""
    msg = Message(data)
    timeout = timeout_seconds(engine.regex_timeout)
    rule = find_rule(msg, engine.rules, timeout)
    return extract(msg, rule, timeout, labels=engine.labels, region=engine.region) if rule else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--rounds", type=int, default=30, help="timed passes over the corpus")
    ap.add_argument("--size", type=int, default=30_000, help="bytes each email is grown to")
    ap.add_argument("--rules", type=Path, default=ROOT / "rules")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of parse_email instead")
    args = ap.parse_args()

    engine = Engine.load(args.rules)
    emails = corpus(args.size)
    sizes = [len(d) for _, d in emails]
    # The padding must not change what a fixture yields: the markup carries no lead.
    changed = [name for name, d in emails
               if _kind(parse_email(d, engine)) != _kind(parse_email((ROOT / "fixtures/emails" / name).read_bytes(),
                                                                     engine))]
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(max(1, args.rounds // 3)):
            for _, d in emails:
                parse_email(d, engine)
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
        return 0

    # The split below is measured on the emails a rule matches directly (forwards,
    # generic leads and dead letters take other paths through parse_email).
    direct = [d for _, d in emails if find_rule(Message(d), engine.rules) is not None]
    for _, d in emails:  # warm caches and imports
        mailparser.parse_from_bytes(d)
        parse_email(d, engine)
    mp: list[float] = []
    lp: list[float] = []
    ratios: list[float] = []
    split_mp: list[float] = []
    split_engine: list[float] = []
    split_whole: list[float] = []
    gc.disable()  # collections would land on whichever call happens to run then
    try:
        for _ in range(args.rounds):
            for _, d in emails:
                t0 = time.perf_counter()
                mailparser.parse_from_bytes(d)
                t1 = time.perf_counter()
                parse_email(d, engine)
                t2 = time.perf_counter()
                mp.append(t1 - t0)
                lp.append(t2 - t1)
                ratios.append((t2 - t1) / (t1 - t0))
            for d in direct:
                t0 = time.perf_counter()
                mailparser.parse_from_bytes(d)
                t1 = time.perf_counter()
                rule_engine(d, engine)
                t2 = time.perf_counter()
                parse_email(d, engine)
                t3 = time.perf_counter()
                split_mp.append(t1 - t0)
                split_engine.append(t2 - t1)
                split_whole.append(t3 - t2)
            gc.collect()
    finally:
        gc.enable()

    def ms(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=100)[int(q) - 1] * 1000 if q != 50 else statistics.median(xs) * 1000

    ratio = sum(lp) / sum(mp)
    print(f"{len(emails)} fixture emails grown to ~{args.size} bytes "
          f"(median {statistics.median(sizes):.0f} B, {min(sizes)}–{max(sizes)} B), {args.rounds} interleaved rounds")
    print(f"mail-parser alone:   p50 {ms(mp, 50):6.2f} ms  p90 {ms(mp, 90):6.2f} ms  mean {statistics.mean(mp) * 1000:6.2f} ms")
    print(f"leadpipe parse_email: p50 {ms(lp, 50):6.2f} ms  p90 {ms(lp, 90):6.2f} ms  mean {statistics.mean(lp) * 1000:6.2f} ms")
    print(f"ratio parse_email / mail-parser: {ratio:.2f}× (total time; per-email median {statistics.median(ratios):.2f}×); "
          f"engine adds {100 * (ratio - 1):+.0f} % (target ≤ +{100 * (TARGET - 1):.0f} %: "
          f"{'met' if ratio <= TARGET else 'NOT met'})")
    base = sum(split_mp)
    print(f"split over the {len(direct)} emails a rule matches directly: rule engine (read + match + extract) "
          f"{sum(split_engine) / base:.2f}×, whole parse_email {sum(split_whole) / base:.2f}× mail-parser; "
          f"normalizing + scoring ≈ {(sum(split_whole) - sum(split_engine)) / base:.2f}× of it")
    if changed:
        print(f"warning: padding changed the outcome of {len(changed)} fixture(s): {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
