"""Who is who in one email: the sender (a portal, a form, a relay), the recipient (the
brokerage's own inbox) and so, by elimination, the prospect.

The reader asks here whether an address is the sender's own, a no-reply or relay address,
or the recipient's; and what words make up the sender's brand (``Zumper`` in ``Ann Lee via
Zumper`` is no part of a person's name). ``source_of`` names a sender no rule knows by its
domain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.reading.message import Message

#: Domains where people have their own mailboxes: an address there is a person's, never a
#: portal's, whoever sends from it. ``example.*`` are the documentation domains.
FREEMAIL = frozenset("""
gmail.com googlemail.com yahoo.com ymail.com rocketmail.com hotmail.com outlook.com live.com msn.com
aol.com icloud.com me.com mac.com comcast.net verizon.net att.net sbcglobal.net bellsouth.net cox.net
charter.net earthlink.net protonmail.com proton.me pm.me gmx.com gmx.net mail.com yandex.com zoho.com
fastmail.com hey.com example.com example.net example.org
""".split())  # noqa: SIM905 (a word list reads best as words)
_SECOND_LEVEL = frozenset(("co", "com", "org", "net", "gov", "ac", "edu"))
_ROBOT = re.compile(
    r"^(?:no-?reply|do-?not-?reply|donotreply|notifications?|notify|alerts?|mailer|bounces?|postmaster"
    r"|mailer-daemon|system|auto|automated|info|hello|support|help|admin|leads?|team|news|newsletter"
    r"|updates?|marketing|service|contact|inquiries|noreply|website|web|forms?|webforms?|wordpress|wix"
    r"|squarespace|idx|crm|office|listings|sales|rentals|leasing|frontdesk|reception|bookings|enquiries)\b",
    re.IGNORECASE)
# relay addresses carry a token: reply-8f3a9c@…, 4f9e0c1a2b@convo.…, lead.123456@…
_RELAY = re.compile(r"(?:^|[._+-])(?:reply|relay|convo|msg|message|lead|leads|r|rt|in)[._+-]|[0-9a-f]{8,}|\d{6,}"
                    r"|^(?=[a-z0-9]{8,}$)(?=(?:[a-z]*\d){2})",
                    re.IGNORECASE)
_VIA = re.compile(r"\s+(?:via|through|from|on behalf of|by)\s+.+$|\s*[\[(][^\[\]()]{0,200}[\])]\s*$", re.IGNORECASE)


def registrable(domain: str) -> str:
    """The registrable part of ``domain``: ``mail.nestfinder.example`` → ``nestfinder.example``,
    ``leads.homes.co.uk`` → ``homes.co.uk``."""
    labels = [x for x in domain.lower().strip(".").split(".") if x]
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def domain_of(address: str | None) -> str:
    return (address or "").rpartition("@")[2].lower()


def source_of(address: str | None) -> str | None:
    """The source name of a sender no rule knows: its registrable domain, or ``None``."""
    domain = registrable(domain_of(address))
    return domain if "." in domain else None


@dataclass(frozen=True)
class Parties:
    """The sender and recipients of one email, for telling the prospect's contacts apart."""

    sender: str = ""
    sender_domain: str = ""
    recipients: frozenset[str] = frozenset()
    recipient_domains: frozenset[str] = frozenset()
    #: lower-case words of the sender's name and domain (``zumper``, ``rentzilla``)
    brand: frozenset[str] = frozenset()
    #: the email comes from the prospect's own mailbox (a form that sends as the visitor)
    from_is_prospect: bool = False
    #: the From display name of a person writing (an agent, a vendor): their signature is theirs
    signer: str | None = None

    @classmethod
    def of(cls, msg: Message, *around: Message) -> Parties:
        """The parties of ``msg``; the emails ``around`` it (a forward's outer email) add
        their sender and recipients to the recipients: the brokerage's own people."""
        sender = msg.from_address or ""
        sender_domain = registrable(domain_of(sender))
        recipients = {a.lower() for a in _recipients(msg)}
        for outer in around:
            recipients |= {a.lower() for a in _recipients(outer)}
            if outer.from_address:
                recipients.add(outer.from_address.lower())
        recipient_domains = {registrable(domain_of(a)) for a in recipients} - FREEMAIL - {""}
        from_is_prospect = (sender_domain in FREEMAIL and not _ROBOT.match(sender.partition("@")[0])
                            and sender not in recipients)
        brand = set()
        if not from_is_prospect:
            brand |= {w for w in re.split(r"[^a-z0-9]+", sender_domain.rsplit(".", 1)[0]) if len(w) > 2}
            display = msg.from_name or ""
            via = re.search(r"\b(?:via|through|by)\s+(.+)$", display, re.IGNORECASE)
            if via:
                brand |= _words(via.group(1))
            elif not _RELAY.search(sender.partition("@")[0]) and not _personal(display):
                # "Nestfinder Leads" is the brand; "Ana Pereira" (a relay's, or a person's
                # mailbox at the portal) is someone's name, never a brand
                brand |= _words(display)
        display = (msg.from_name or "").strip(" \"'")
        signer = display if _personal(display) and not from_is_prospect else None
        return cls(sender, sender_domain, frozenset(recipients), frozenset(recipient_domains),
                   frozenset(brand), from_is_prospect, signer)

    @property
    def colleague(self) -> bool:
        """The sender is a person at the brokerage itself (the recipient's own domain)."""
        return bool(self.sender_domain) and self.sender_domain in self.recipient_domains and not (
            _ROBOT.match(self.sender.partition("@")[0]))

    def is_sender(self, address: str) -> bool:
        """Whether ``address`` is the sender's own or at the sender's domain."""
        address = address.lower()
        if address == self.sender:
            return True
        return bool(self.sender_domain) and self.sender_domain not in FREEMAIL and (
            registrable(domain_of(address)) == self.sender_domain)

    def is_relay(self, address: str) -> bool:
        """A relay address of the sender's (``reply-8f3a9c@…``): it stands for the prospect,
        so its display name is theirs, but it is nobody's mailbox."""
        local = address.partition("@")[0]
        return bool(local) and self.is_sender(address) and bool(_RELAY.search(local)) and not (
            _ROBOT.fullmatch(local))

    def is_robot(self, address: str) -> bool:
        """A no-reply or role address (``noreply@``, ``leads@``): the portal's own."""
        return bool(_ROBOT.match(address.partition("@")[0]))

    def is_theirs(self, name: str, key: str) -> bool:
        """Whether the normalized contact ``key`` is the sender's or the recipients'."""
        if name != "email":
            return False
        domain = registrable(domain_of(key))
        if self.is_sender(key) or key in self.recipients or domain in self.recipient_domains:
            return True
        # a role address (info@, office@) is a prospect's too, unless it is the portal's
        return bool(_ROBOT.match(key.partition("@")[0])) and domain == self.sender_domain

    def strip_brand(self, display: str) -> str:
        """A display name without what relays add: ``Ann Lee via Zumper`` → ``Ann Lee``."""
        text = _VIA.sub("", display or "").strip(" \"'")
        words = text.split()
        while words and words[-1].casefold().strip(".,()[]") in self.brand:
            words.pop()
        return " ".join(words)


def _recipients(msg: Message) -> list[str]:
    out: list[str] = []
    # not Cc: a prospect copied in is no part of the brokerage
    for header in ("To", "Delivered-To", "X-Original-To"):
        for _, addr in msg.addresses(header):
            if addr:
                out.append(addr)
    return out


_PERSONAL = re.compile(r"^[A-ZÀ-Þ][\w'’.-]+(?:\s+[A-ZÀ-Þ][\w'’.-]+){1,2}$")
_BUSINESS = frozenset("""leads lead team notifications notification alerts alert rentals rental realty homes
properties property apartments listings listing support service services inquiries info group inc llc mail
messages message system portal network agent agents premier connect online website web form forms app""".split())  # noqa: SIM905 (a word list reads best as words)


def _personal(display: str) -> bool:
    """A display name that reads as a person's: two or three capitalised words, none a
    business's word."""
    text = display.strip(" \"'")
    return bool(_PERSONAL.match(text)) and not any(w.casefold() in _BUSINESS for w in text.split())


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^\w]+", text.casefold()) if len(w) > 2}
