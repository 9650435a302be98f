"""One module per outside system leadpipe talks to, each behind ``notifiers.base.Notifier``.

``NOTIFIERS`` maps the name used in the configuration to the class; ``notifier_class``
turns an unknown name into a ``ConfigError`` that lists the valid ones.
"""

from __future__ import annotations

from daemon.errors import ConfigError
from notifiers.base import Action, Notifier, Outcome
from notifiers.followupboss import FollowUpBoss
from notifiers.hubspot import HubSpot
from notifiers.slack import Slack
from notifiers.webhook import Webhook

NOTIFIERS: dict[str, type[Notifier]] = {
    Slack.name: Slack,
    FollowUpBoss.name: FollowUpBoss,
    HubSpot.name: HubSpot,
    Webhook.name: Webhook,
}


def notifier_class(name: str) -> type[Notifier]:
    """The class configured as ``name``; raises ``ConfigError`` listing the valid names."""
    try:
        return NOTIFIERS[name]
    except KeyError:
        valid = ", ".join(sorted(NOTIFIERS))
        raise ConfigError(f"notifiers: unknown type {name!r}; valid types: {valid}") from None


__all__ = ["NOTIFIERS", "Action", "FollowUpBoss", "HubSpot", "Notifier", "Outcome", "Slack", "Webhook",
           "notifier_class"]
