"""Configuration errors point at the place to fix: the file, the line and the key as
written, or the environment variable the value came from (daemon/config/).

When one of these fails, the person starting leadpipe is sent to the wrong line (the
section, the file's first line), to a key that is not in the file (``secrt`` for
``secrt_file``), or to the file for a value that came from the environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from clikit import cli, workdir

from daemon.config import load_settings
from daemon.delivery.dispatch import build_notifiers
from daemon.errors import ConfigError

# line numbers matter below: each case names the line it expects
GOOD = """\
database_url: sqlite:///leadpipe.db
rules_dir: rules
default_region: US
log_level: INFO
poll_interval: 2s
web:
  host: 127.0.0.1
  port: 8080
routing:
  repeat_window: 30d
  offer_hot_leads: true
delivery:
  max_attempts: 8
  backoff_base: 2s
slack:
  base_url: https://slack.com/api/
  claim_timeout: 5m
  alerts_channel: C0ALERTS
"""


def write(tmp_path: Path, text: str, name: str = "good.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return str(caught.value)


def test_a_bad_value_from_the_environment_names_the_variable_not_a_line_of_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("LEADPIPE_SLACK__CLAIM_TIMEOUT", "soon")
    message = config_error(path)
    assert "environment variable LEADPIPE_SLACK__CLAIM_TIMEOUT: slack.claim_timeout: not a duration: 'soon'" \
        in message
    assert "good.yaml:17" not in message  # where the file has the value the environment overrides


def test_a_bad_secret_file_named_in_the_environment_names_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LEADPIPE_SLACK__BOT_TOKEN_FILE", str(tmp_path / "missing"))
    message = config_error(write(tmp_path, GOOD))
    assert "environment variable LEADPIPE_SLACK__BOT_TOKEN_FILE: slack.bot_token_file: cannot read" in message


def test_a_duplicate_slack_user_id_names_the_line_of_the_duplicate_agent(tmp_path: Path):
    path = write(tmp_path, GOOD + "agents:\n"  # line 19
                 "  - name: Ana Ruiz\n    slack_user_id: U01ANA\n"  # lines 20-21
                 "  - name: Ben Okafor\n    slack_user_id: U01ANA\n")  # lines 22-23
    message = config_error(path)
    assert "good.yaml:23: agents[1].slack_user_id: Ana Ruiz has slack_user_id 'U01ANA' already" in message


def test_a_duplicate_admin_user_names_the_line_of_the_second_one(tmp_path: Path):
    hashed = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
    path = write(tmp_path, GOOD + f"admin:\n  users:\n    - {{name: ana, password_hash: '{hashed}'}}\n"
                 f"    - {{name: ana, password_hash: '{hashed}'}}\n")
    assert "good.yaml:22: admin.users[1].name: two users have the name 'ana'" in config_error(path)


def test_a_missing_secret_file_names_its_keys_line_not_its_sections(tmp_path: Path):
    path = write(tmp_path, GOOD + "  bot_token_file: /run/secrets/no-such-file\n")  # line 19
    message = config_error(path)
    assert "good.yaml:19: slack.bot_token_file: cannot read /run/secrets/no-such-file" in message
    assert "good.yaml:15" not in message  # `slack:`
    path = write(tmp_path, "rules_dir: rules\ndatabase_url_file: /run/secrets/no-db-url\n", "db.yaml")
    assert "db.yaml:2: database_url_file: cannot read /run/secrets/no-db-url" in config_error(path)


def test_an_unknown_key_says_which_known_key_was_meant(tmp_path: Path):
    message = config_error(write(tmp_path, GOOD + "poll_intervl: 5s\n"))
    assert "good.yaml:19: poll_intervl: unknown key; did you mean `poll_interval`?" in message
    message = config_error(write(tmp_path, GOOD + "  claim_timout: 2m\n"))
    assert "good.yaml:19: slack.claim_timout: unknown key; did you mean `claim_timeout`?" in message
    message = config_error(write(tmp_path, GOOD + "  bot_tokn_file: /x\n"))
    assert "slack.bot_tokn_file: unknown key; did you mean `bot_token_file`?" in message
    message = config_error(write(tmp_path, GOOD + "mailboxes:\n  - {name: m, host: h, username: u, "
                                 "password: p, pol_interval: 5s}\n"))
    assert "good.yaml:20: mailboxes[0].pol_interval: unknown key; did you mean `poll_interval`?" in message
    message = config_error(write(tmp_path, GOOD + "webhooks:\n  sources:\n    website_form:\n"
                                 "      secrt_file: /x\n"))
    assert "good.yaml:22: webhooks.sources.website_form.secrt_file: unknown key; did you mean `secret_file`?" \
        in message
    message = config_error(write(tmp_path, GOOD + "databse_url_file: /x\n"))
    assert "did you mean `database_url_file`?" in message
    message = config_error(write(tmp_path, GOOD + "zzzz: 1\n"))
    assert "good.yaml:19: zzzz: unknown key" in message and "did you mean" not in message


NOTIFIERS = """\
notifiers:
  - type: followupboss
    api_key: k-123
  - type: webhook
    url: https://hooks.example/leads
    secrt_file: {secret}
"""


def test_a_notifiers_bad_key_names_file_line_and_the_key_as_written(tmp_path: Path):
    (tmp_path / "secret").write_text("s3cret-value\n", encoding="utf-8")
    path = write(tmp_path, GOOD + NOTIFIERS.format(secret=tmp_path / "secret"))
    with pytest.raises(ConfigError) as caught:
        build_notifiers(load_settings(path))  # as `leadpipe run` does at start
    message = str(caught.value)
    assert "good.yaml:24: notifiers[1].secrt_file: unknown key" in message, message
    assert "did you mean `secret_file`?" in message
    assert "s3cret-value" not in message
    doctor = cli(tmp_path, "doctor", "--config", str(path))
    assert "FAIL  " + message in doctor.stdout, doctor.stdout


def test_a_notifiers_missing_value_unknown_type_and_duplicate_name_name_their_lines(tmp_path: Path):
    cases = {
        "notifiers:\n  - type: followupboss\n    base_url: https://fub.example\n":
            "good.yaml:20: notifiers[0].api_key: is required (or `api_key_file`)",
        "notifiers:\n  - type: followupboss\n    api_key: k\n  - type: salesforce\n":
            "good.yaml:22: notifiers[1].type: unknown type 'salesforce'",
        "notifiers:\n  - {type: webhook, url: 'https://a.example', secret: s1234567}\n"
        "  - {type: webhook, url: 'https://b.example', secret: s1234567}\n":
            "good.yaml:21: notifiers[1].type: two notifiers are named 'webhook'",
        "notifiers:\n  - type: followupboss\n    api_key: k\n    timeout: soon\n":
            "good.yaml:22: notifiers[0].timeout: not a duration: 'soon'",
    }
    for text, expected in cases.items():
        settings = load_settings(write(tmp_path, GOOD + text))
        with pytest.raises(ConfigError) as caught:
            build_notifiers(settings)
        assert expected in str(caught.value), (expected, str(caught.value))


def test_a_notifiers_missing_secret_file_names_its_keys_line(tmp_path: Path):
    message = config_error(write(tmp_path, GOOD + "notifiers:\n  - type: webhook\n    url: https://x.example\n"
                                 "    secret_file: /run/secrets/none\n"))
    assert "good.yaml:22: notifiers[0].secret_file: cannot read /run/secrets/none" in message


def test_error_messages_written_to_a_file_or_pipe_are_not_hard_wrapped(tmp_path: Path):
    d = workdir(tmp_path / "w")
    long_path = "/run/secrets/" + "a-rather-long-folder-name/" * 4 + "bot_token"
    write(d, GOOD + f"  bot_token_file: {long_path}\n", "leadpipe.yaml")
    r = cli(d, "run", "--once")  # stderr is a pipe
    assert r.returncode == 1
    expected = f"leadpipe.yaml:19: slack.bot_token_file: cannot read {long_path}: No such file or directory"
    assert len(expected) > 120
    assert expected in r.stderr.splitlines()[1], r.stderr


def test_doctor_names_the_configuration_file_it_loaded_from_the_working_folder(tmp_path: Path):
    d = workdir(tmp_path / "w")
    write(d, "database_url: sqlite:///leadpipe.db\nrules_dir: rules\n", "leadpipe.yaml")
    r = cli(d, "doctor")
    assert f"configuration: {(d / 'leadpipe.yaml').resolve()}" in r.stdout, r.stdout
    assert "configuration: defaults" not in r.stdout
    (d / "leadpipe.yaml").unlink()
    assert "configuration: defaults" in cli(d, "doctor").stdout
