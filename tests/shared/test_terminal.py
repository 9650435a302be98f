"""Text from an email reaches the reader's terminal with its control characters escaped.

When one of these fails, an email carrying ``ESC ] 0 ; … BEL`` or ``ESC [ 2 J`` retitles
or clears the on-call person's terminal through ``leadpipe dlq show``, ``dlq list``,
``leads list`` or the daemon's log, and a U+202E makes a name read backwards.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from clikit import cli, email_bytes, workdir

from daemon import logs
from daemon.terminal import UNSAFE, SafeConsole, json_text, printable

TITLE = "\x1b]0;owned\x07"  # OSC 0: set the terminal's title, ended by BEL
CLEAR = "\x1b[2J"  # CSI 2 J: clear the screen
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066")

# A Zillow email with no phone and no email: a dead letter, subject and body from the sender.
HOSTILE = email_bytes(
    "Zillow <leads@mail.zillow.com>", f"New Contact {TITLE}{CLEAR} 12 Quarry Lane \u202etxt.exe",
    f"Wilhelmina Quarrington says:\nCan I see it {TITLE}Saturday?{CLEAR}\x9b2J\u2066\n"
    "Respond within 10 minutes\n", 15)

NEWPORTAL_RULE = """\
source: newportal
version: 1
match:
  from: ["*@newportal.example"]
fields:
  full_name:
    - label: Guest
  phone:
    - label: Phone
  message:
    - label: Note
required: [full_name]
"""


def no_raw_controls(text: str) -> None:
    found = sorted({repr(c) for c in text if UNSAFE.match(c)})
    assert not found, f"raw control characters reached the terminal: {found}"


def test_escape_sequences_in_an_email_come_out_escaped_through_dlq_show_and_dlq_list(tmp_path: Path):
    d = workdir(tmp_path / "w")
    (d / "hostile.eml").write_bytes(HOSTILE)
    assert cli(d, "ingest", "hostile.eml").returncode == 0

    listed = cli(d, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    no_raw_controls(listed.stdout + listed.stderr)
    assert "\\x1b]0;owned\\x07\\x1b[2J 12 Quarry Lane \\u202etxt.exe" in listed.stdout

    shown = cli(d, "dlq", "show", "1")
    assert shown.returncode == 0, shown.stderr
    no_raw_controls(shown.stdout + shown.stderr)
    assert "subject:  New Contact \\x1b]0;owned\\x07\\x1b[2J 12 Quarry Lane \\u202etxt.exe" in shown.stdout
    assert "Can I see it \\x1b]0;owned\\x07Saturday?\\x1b[2J\\x9b2J\\u2066" in shown.stdout  # the email's text


def test_dlq_list_json_keeps_the_subject_exact_and_still_prints_no_raw_control_character(tmp_path: Path):
    d = workdir(tmp_path / "w")
    (d / "hostile.eml").write_bytes(HOSTILE)
    assert cli(d, "ingest", "hostile.eml").returncode == 0
    r = cli(d, "dlq", "list", "--json")
    no_raw_controls(r.stdout)  # json.dumps(ensure_ascii=False) left C1 and U+202E raw
    [row] = [json.loads(line) for line in r.stdout.splitlines()]
    assert row["subject"] == f"New Contact {TITLE}{CLEAR} 12 Quarry Lane \u202etxt.exe"


def test_a_leads_name_and_message_with_control_characters_print_escaped_in_leads_list_and_show(tmp_path: Path):
    d = workdir(tmp_path / "w")
    (d / "rules" / "newportal.yaml").write_text(NEWPORTAL_RULE, encoding="utf-8")
    (d / "lead.eml").write_bytes(email_bytes(
        "New Portal <leads@newportal.example>", f"Lead {CLEAR}",
        f"Guest: Bart Fenwick\u202e\nPhone: 305-555-0177\nNote: call me {TITLE}{CLEAR} now\n", 16))
    assert cli(d, "ingest", "lead.eml").returncode == 0
    for args in (("leads", "list"), ("leads", "show", "1"), ("leads", "show", "1", "--email")):
        r = cli(d, *args)
        assert r.returncode == 0, (args, r.stderr)
        no_raw_controls(r.stdout + r.stderr)
    shown = cli(d, "leads", "show", "1")
    assert "\\x1b]0;owned\\x07\\x1b[2J now" in shown.stdout
    exact = json.loads(cli(d, "leads", "show", "1", "--json").stdout)
    assert TITLE + CLEAR in exact["message"]


def test_binary_garbage_prints_no_control_bytes_through_parse_ingest_and_dlq_show(tmp_path: Path):
    d = workdir(tmp_path / "w")
    (d / "garbage.eml").write_bytes(bytes(range(256)) * 8)
    for args in (("parse", "garbage.eml"), ("ingest", "garbage.eml"), ("dlq", "show", "1"),
                 ("dlq", "list")):
        r = cli(d, *args)
        assert r.returncode == 0, (args, r.stderr)
        no_raw_controls(r.stdout + r.stderr)


def test_every_unsafe_character_is_escaped_in_text_tables_and_logs_and_exact_in_json():
    unsafe = "".join(map(chr, [*range(0x00, 0x09), *range(0x0b, 0x20), *range(0x7f, 0xa0),
                               *range(0x202a, 0x202f), *range(0x2066, 0x206a)]))
    text = f"a{unsafe}b\tc\nd é 日本"
    shown = printable(text)
    no_raw_controls(shown)
    assert shown.endswith("b\tc\nd é 日本")  # tabs, newlines and letters stay as they are
    assert "\\x1b" in shown and "\\x9b" in shown and "\\u202e" in shown
    assert json.loads(json_text({"k": text})) == {"k": text}
    no_raw_controls(json_text({"k": text}))

    from rich.table import Table

    buf = io.StringIO()
    console = SafeConsole(file=buf, width=300, soft_wrap=True, markup=False, color_system=None)
    t = Table(title=f"title {CLEAR}")
    t.add_column("cell")
    t.add_row(f"name {TITLE}")
    console.print(t)
    console.print(f"line {TITLE}")
    no_raw_controls(buf.getvalue())
    assert "name \\x1b]0;owned\\x07" in buf.getvalue() and "title \\x1b[2J" in buf.getvalue()

    stream = io.StringIO()
    logger = logging.getLogger("leadpipe.test_terminal")
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        logs.setup(logging.INFO, "text", stream=stream)
        logger.warning("dead letter: subject %s", f"x{TITLE}{CLEAR}")
        logs.setup(logging.INFO, "json", stream=stream)
        logger.warning("dead letter: subject %s", f"y\u202e{TITLE}")
    finally:
        for h in list(root.handlers):
            if h not in before[0]:
                root.removeHandler(h)
        root.setLevel(before[1])
    text_line, json_line = stream.getvalue().splitlines()
    no_raw_controls(stream.getvalue())
    assert text_line.endswith("dead letter: subject x\\x1b]0;owned\\x07\\x1b[2J")
    assert json.loads(json_line)["message"] == f"dead letter: subject y\u202e{TITLE}"
