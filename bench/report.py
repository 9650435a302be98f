"""Regenerate bench/README.md: run every benchmark, capture what each prints, and write
the results beside the targets with the machine they ran on.

    python bench/report.py                 # ~10 minutes
    python bench/report.py --soak 50000    # + the soak on SQLite and PostgreSQL (~40 minutes more)
    python bench/report.py --quick         # smaller samples, for trying the script itself

Each benchmark runs as its own process (``python bench/<name>.py …``) so one's threads,
servers and memory do not disturb the next. The full output of each is kept in the
README; the summary table quotes the lines that carry the numbers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

PACKAGES = ["leadpipe", "mail-parser", "imapclient", "sqlalchemy", "psycopg", "beautifulsoup4", "lxml",
            "regex", "slack_sdk", "httpx", "pydantic", "nameparser", "usaddress", "phonenumbers"]


def runs(quick: bool, soak: int) -> list[tuple[str, list[str]]]:
    soaks = [("soak", ["--emails", str(soak), "--db", db, "--every", str(max(1, soak // 10))])
             for db in ("sqlite", "postgresql")] if soak else []
    if quick:
        return [
            ("imap_latency", ["--messages", "30", "--backlog", "200", "--rounds", "1"]),
            ("claim_latency", ["--leads", "30"]),
            ("parse_cost", ["--rounds", "5"]),
            ("crm_burst", ["--leads", "200", "--baseline", "100"]),
            ("geocode_burst", ["--leads", "300", "--rounds", "1"]),
            ("intent", []),
            *ACCURACY,
            *soaks,
        ]
    return [
        ("imap_latency", ["--messages", "100", "--backlog", "600", "--rounds", "3"]),
        ("claim_latency", ["--leads", "200"]),
        ("parse_cost", ["--rounds", "30"]),
        ("crm_burst", ["--leads", "1000"]),
        ("geocode_burst", ["--leads", "1000", "--rounds", "3"]),
        ("intent", []),
        *ACCURACY,
        *soaks,
    ]


#: the blind corpus: the set the reader may be tuned on, and the holdout nobody tuned against
ACCURACY = [("accuracy", ["--set", "leads+not_leads"]), ("accuracy", ["--set", "holdout"]),
            ("accuracy", ["--set", "holdout2"]), ("accuracy", ["--set", "holdout3"]),
            ("accuracy", ["--set", "holdout4"])]


def run(name: str, args: list[str]) -> tuple[str, float, int]:
    cmd = [sys.executable, str(BENCH / f"{name}.py"), *args]
    print("$", " ".join(["python", f"bench/{name}.py", *args]), flush=True)
    started = time.perf_counter()
    # a 50,000-email soak on PostgreSQL has taken 33 min on these machines
    limit = 3 * 3600 if name == "soak" else 1800
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=limit)
    took = time.perf_counter() - started
    out = proc.stdout.rstrip()
    if proc.returncode != 0:
        out += f"\n[exit status {proc.returncode}]\n" + "\n".join(proc.stderr.rstrip().splitlines()[-15:])
    print(out, flush=True)
    return out, took, proc.returncode


def _lines(text: str, pattern: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if re.search(pattern, line)]


def _starting(path: str, prefix: str) -> list[str]:
    """The lines of the file ``path`` that start with ``prefix``; none if it cannot be read."""
    try:
        return [line for line in Path(path).read_text().splitlines() if line.startswith(prefix)]
    except OSError:
        return []


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    models = _starting("/proc/cpuinfo", "model name")
    if models:
        cpu = models[0].split(":", 1)[1].strip()
    totals = [f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
              for line in _starting("/proc/meminfo", "MemTotal")]
    mem = totals[-1] if totals else "?"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    versions = []
    for pkg in PACKAGES:
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            continue
    os_name = platform.platform()
    names = [f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
             for line in _starting("/etc/os-release", "PRETTY_NAME=")]
    if names:
        os_name = names[-1]
    servers = []
    for cmd in (["dovecot", "--version"], ["postgres", "--version"]):
        try:
            servers.append(subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            continue
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem}",
        f"- OS: {os_name}; Python {platform.python_version()}",
        f"- servers: {', '.join(s for s in servers if s) or 'none found'}",
        f"- packages: {', '.join(versions)}",
        f"- load average at the start: {load} (other work on the machine can slow a run; "
        "every comparison below is a ratio measured in the same, interleaved run)",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="small samples (minutes → about one)")
    ap.add_argument("--soak", type=int, default=0, metavar="N",
                    help="also run bench/soak.py with N emails on SQLite and on PostgreSQL")
    ap.add_argument("--out", type=Path, default=BENCH / "README.md")
    args = ap.parse_args()

    started = dt.datetime.now(dt.UTC)
    head = machine()
    results: dict[str, tuple[str, float, int, list[str]]] = {}
    for name, opts in runs(args.quick, args.soak):
        out, took, code = run(name, opts)
        key = f"{name} {opts[opts.index('--db') + 1]}" if name == "soak" else (
            f"{name} {opts[opts.index('--set') + 1]}" if name == "accuracy" else name)
        results[key] = (out, took, code, opts)

    imap = results["imap_latency"][0]
    claim = results["claim_latency"][0]
    parse = results["parse_cost"][0]
    crm = results["crm_burst"][0]
    rows = [
        ("APPEND → lead committed (p50/p99)", "p99 < 1 s",
         "<br>".join(_lines(imap, r"^== |APPEND → lead row"))),
        ("email arrival → Slack claim message (p50/p99)", "p99 < 1 s",
         "<br>".join(_lines(claim, r"→ claim message|target p99"))),
        ("backlog throughput / (FETCH + mail-parser)", "≥ 0.70",
         "<br>".join(_lines(imap, r"^== |watcher/baseline"))),
        ("parse cost per 30 KB email / the revision before the reader", "≤ 2× and p99 < 10 ms",
         "<br>".join(_lines(parse, r"emails: parse_email|^target \(issue 14\)"))),
        ("1,000-lead CRM burst (rate-limited Follow Up Boss)", "no 429; paced near the limit",
         "<br>".join(_lines(crm, r"paced|429s|ratio paced"))),
    ]
    geo = results.get("geocode_burst")
    rows.append(("1,000-lead burst, geocoder 429 then silent: routing time / no geocoder; geocoded once "
                 "it returns", "ratio near 1.0; all geocoded; no second over the rate",
                 "<br>".join(_lines(geo[0], r"^routing time|^inline asks|^geocoded after")) if geo
                 else "not run"))
    intent = results.get("intent")
    rows.append(("inquiry reader, blind intent corpus (158 messages; development = odd files, held-out = even): "
                 "per label, reader / keywords", "beats the keywords on every label; intent ≥ 90 % (all 158)",
                 "<br>".join(_lines(intent[0], r"^== |reader/keywords|^target \(issue 18\)")) if intent
                 else "not run"))
    for corpus_set, what in (("leads+not_leads", "tuned-on set"), ("holdout", "first holdout, since partly tuned"),
                             ("holdout2", "second holdout, since partly tuned"),
                             ("holdout3", "third holdout, since partly tuned"),
                             ("holdout4", "fourth holdout, since partly tuned; first measured 56/57 found, "
                                          "name 96.5 %, email 98.2 %, phone 94.7 %")):
        acc = results.get(f"accuracy {corpus_set}")
        rows.append((f"reading accuracy, blind corpus ({what}): leads, found, name, email, phone, address, "
                     "message, non-leads, false leads, dead-lettered",
                     "names, emails, phones ≥ 97 %; 0 false leads; 0 non-leads dead-lettered",
                     "<br>".join(_lines(acc[0], r"^\s*leads found|^all |^target")) if acc else "not run"))
    for db in ("sqlite", "postgresql"):
        soak = results.get(f"soak {db}")
        rows.append((f"soak: daemon RSS over {args.soak or 50_000:,} emails, {db}",
                     "growth < 10 % after warm-up; < 250 MB",
                     "<br>".join(_lines(soak[0], r"emails in|RSS after")) if soak
                     else "not run this time: `python bench/report.py --soak 50000`"))
    finished = dt.datetime.now(dt.UTC)
    doc = [
        "# Benchmarks",
        "",
        f"Generated by `python bench/report.py{' --quick' if args.quick else ''}"
        f"{f' --soak {args.soak}' if args.soak else ''}` on "
        f"{started:%Y-%m-%d %H:%M} UTC (took {(finished - started).total_seconds() / 60:.1f} min). "
        "Do not edit by hand: rerun the command.",
        "",
        "## Machine",
        "",
        *head,
        "",
        "## Results against the targets (issue 9)",
        "",
        "| what | target | result |",
        "| --- | --- | --- |",
        *(f"| {what} | {target} | {result or 'see output below'} |" for what, target, result in rows),
        "",
        "## Full output",
        "",
    ]
    for key, (out, took, code, opts) in results.items():
        name = key.split()[0]
        doc += [
            f"### `python bench/{name}.py {' '.join(opts)}` ({took:.0f} s"
            f"{'' if code == 0 else f', exit status {code}'})",
            "",
            "```",
            out,
            "```",
            "",
        ]
    args.out.write_text("\n".join(doc))
    print(f"wrote {args.out}")
    return 0 if all(code == 0 for _, _, code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
