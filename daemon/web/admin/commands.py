"""``leadpipe admin hash-password``: the Argon2 hash to put in ``admin.users``."""

from __future__ import annotations

import argparse
import getpass
import sys

from daemon.errors import LeadpipeError
from daemon.terminal import Commands

MIN_LENGTH = 12


class PasswordError(LeadpipeError):
    """Raised when the password given to ``hash-password`` cannot be used."""


def add_commands(cmds: Commands) -> None:
    """Add ``leadpipe admin …``."""
    hp = cmds.group("admin", "the admin pages' users").command(
        "hash-password", cmd_hash_password,
        "print the Argon2 hash of a password for admin.users[].password_hash "
        "(asks twice on a terminal; else reads one line from stdin)")
    hp.add_argument("--user", default="NAME", help="the user name to show in the example")


def cmd_hash_password(args: argparse.Namespace) -> int:
    from daemon.web.admin.auth import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise PasswordError("the two passwords differ; nothing was hashed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"use a password of at least {MIN_LENGTH} characters")
    hashed = hash_password(password)
    print(hashed)
    print("\nin the configuration file:\n  admin:\n    users:\n"
          f"      - name: {args.user}\n        password_hash: '{hashed}'", file=sys.stderr)
    return 0
