"""The layout's import rules (README "Layout", ``.importlinter``): stages import downwards
only, the pure stages touch no database or outside world, the shared values import no
stage, ``storage/`` and ``notifiers/`` import only the shared values, and no module imports
itself round a cycle."""

from __future__ import annotations

import graphlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("daemon", "storage", "notifiers")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` over the packages in ``root`` (and not the installed ones)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; "
                               "sys.exit(c())", "--no-cache"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120)


def copy_of_the_tree(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_import_contracts_hold():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    # the reader reaching for routing: reading must stay pure
    ("daemon/reading/values.py", "from daemon.routing import assign", "Reading and qualifying are pure"),
    # the dispatcher calling back into the pipeline: a stage importing upwards
    ("daemon/delivery/pacing.py", "from daemon.pipeline import worker", "Stages import downwards only"),
    # storage knowing the configuration
    ("storage/leads.py", "from daemon import config", "storage and notifiers import only"),
    # a shared value importing a stage
    ("daemon/lead.py", "from daemon.qualifying import normalize", "The shared values and settings"),
])
def test_an_import_against_the_layout_breaks_its_contract(tmp_path, module, line, contract):
    root = copy_of_the_tree(tmp_path)
    target = root / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}  # noqa\n", encoding="utf-8")
    done = lint_imports(root)
    assert done.returncode != 0
    broken = done.stdout[done.stdout.index(contract):]
    assert broken.splitlines()[0].rstrip().endswith("BROKEN"), done.stdout
    assert module.removesuffix(".py").replace("/", ".") in done.stdout


def _cycle(packages: tuple[str, ...]) -> tuple[str, ...] | None:
    graph = grimp.build_graph(*packages, exclude_type_checking_imports=True)
    deps = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    try:
        graphlib.TopologicalSorter(deps).prepare()
    except graphlib.CycleError as exc:
        return tuple(exc.args[1])
    return None


def test_no_module_imports_itself_round_a_cycle():
    assert _cycle(PACKAGES) is None


def test_a_cycle_is_found(tmp_path, monkeypatch):
    root = copy_of_the_tree(tmp_path)
    # the routing decision importing the module that imports it
    decide = root / "daemon/routing/decide.py"
    decide.write_text(decide.read_text(encoding="utf-8") + "\nfrom daemon.routing import assign  # noqa\n",
                      encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    for name in [m for m in sys.modules if m.split(".")[0] in PACKAGES]:
        monkeypatch.delitem(sys.modules, name)
    cycle = _cycle(PACKAGES)
    assert cycle is not None and {"daemon.routing.decide", "daemon.routing.assign"} <= set(cycle)
