"""The XOAUTH2 token: the one in the settings, or what ``oauth2_token_command`` prints."""

from __future__ import annotations

import subprocess

from daemon.config import MailboxSettings
from daemon.errors import MailboxError


def oauth2_token(settings: MailboxSettings) -> str:
    if settings.oauth2_token:
        return settings.oauth2_token
    command = settings.oauth2_token_command or ""
    try:
        done = subprocess.run(
            command,
            shell=True,  # the command line comes from the operator's own configuration
            capture_output=True,
            text=True,
            timeout=settings.timeout.total_seconds(),
        )
    except subprocess.TimeoutExpired as exc:
        raise MailboxError(
            f"mailbox {settings.name}: oauth2_token_command did not finish within "
            f"{settings.timeout.total_seconds():g}s"
        ) from exc
    except OSError as exc:
        raise MailboxError(
            f"mailbox {settings.name}: cannot run oauth2_token_command: {exc.strerror}"
        ) from exc
    token = done.stdout.strip()
    if done.returncode != 0 or not token:
        err = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise MailboxError(
            f"mailbox {settings.name}: oauth2_token_command exited with status "
            f"{done.returncode} and gave no token: {err}"
        )
    return token
