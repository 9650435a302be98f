"""Lead flows in the running daemon (daemon/service.py): the plan built at start, reloaded
with the agents when the file changes, the deadline job run with the claim timeouts.

When these fail, a broken flow starts the daemon anyway, an edited team is ignored until a
restart, or no deadline is ever acted on by the daemon.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from daemon.config import load_settings
from daemon.errors import ConfigError
from daemon.service import Service
from storage import routing as store
from storage.models import LeadRow

REPO = Path(__file__).resolve().parents[2]
EMAIL = REPO / "fixtures" / "emails" / "zillow" / "current_layout_multipart.eml"  # ZIP 33145


def config(tmp_path: Path, database_url: str, **routing: object) -> Path:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    path = tmp_path / "leadpipe.yaml"
    path.write_text(yaml.safe_dump({
        "database_url": database_url, "rules_dir": str(REPO / "rules"), "inbox_dir": str(tmp_path / "inbox"),
        "agents": [{"name": "Ana"}, {"name": "Ben"}, {"name": "Cho"}],
        "teams": [{"name": "miami", "agents": ["Ben", "Cho"]}],
        "routing": {"flows": [{"name": "miami", "match": {"postal_codes": ["331*"]}, "team": "miami",
                               "deadline": "1s"}], **routing},
    }), encoding="utf-8")
    return path


def test_the_daemon_routes_by_flow_and_moves_an_unaccepted_lead_at_its_deadline(database_url: str,
                                                                                 tmp_path: Path):
    path = config(tmp_path, database_url)
    svc = Service(load_settings(path), config_path=path)
    try:
        shutil.copy(EMAIL, tmp_path / "inbox" / "1.eml")
        (result,) = svc.run_once()
        with svc.db.session() as s:
            row = s.get(LeadRow, result.lead_id)
            assert (row.flow, row.team, row.agent) == ("miami", "miami", "Ben")
        time.sleep(1.2)
        svc.run_once()
        with svc.db.session() as s:
            assert s.get(LeadRow, result.lead_id).agent == "Cho"
            assert [e.kind for e in store.history(s, result.lead_id)] == ["assigned", "missed", "reassigned"]
    finally:
        svc.db.dispose()


def test_an_edited_team_is_in_force_without_a_restart(database_url: str, tmp_path: Path):
    path = config(tmp_path, database_url)
    svc = Service(load_settings(path), config_path=path)
    try:
        data = yaml.safe_load(path.read_text())
        data["teams"][0]["agents"] = ["Ana"]
        time.sleep(0.01)
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        assert svc.reload_agents()
        assert svc.router.plan.teams["miami"].agents == ("Ana",)
        data["teams"][0]["agents"] = ["Zed"]
        time.sleep(0.01)
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        assert not svc.reload_agents()  # does not load: the plan in force is kept, and alerted
        assert svc.router.plan.teams["miami"].agents == ("Ana",)
    finally:
        svc.db.dispose()


def test_a_flow_naming_an_unknown_team_stops_the_start(database_url: str, tmp_path: Path):
    path = config(tmp_path, database_url)
    data = yaml.safe_load(path.read_text())
    data["routing"]["flows"][0]["team"] = "miam"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"leadpipe.yaml:\d+: routing.flows\[0\].team: unknown team 'miam'"):
        Service(load_settings(path))
