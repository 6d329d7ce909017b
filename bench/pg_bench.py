"""bench/pg_bench.py: the store on PostgreSQL beside SQLite (issue 10 item 7), for bench/run.

In one run, on the same machine: a throwaway PostgreSQL cluster of its own
(scripts/pg-cluster start DIR --durable: fsync on, synchronous_commit on, a Unix
socket, as the `postgres` user when run as root), and SQLite files in the
benchmark's tmp folder.  On both backends, each in its own process
(bench/bench_pg.c, libcase_bench_pg):

  pg_insert    a plain one-row INSERT transaction (BEGIN; INSERT; COMMIT), and on
               PostgreSQL the one-statement autocommit INSERT too
  pg_durable   a durable fire of the chain workload (one transaction); on PostgreSQL
               also as a login mapped with case_store_grant (pg_durable_login)
  pg_writers   1, 2 and 4 writer processes, each on a case of its own
  pg_tick      1 and 2 processes ticking the same store at once

bench/run --only pg runs these alone.  The cluster is stopped and removed at the end.
"""
import json
import os
import subprocess
import sys

# SQLite as the store runs it by default (synchronous=NORMAL: a commit may be lost on a
# power failure, never half-written), SQLite with synchronous=FULL (durable at commit),
# PostgreSQL with synchronous_commit=on and fsync on (durable at commit).
BACKENDS = ("sqlite", "sqlite_full", "postgresql")
TAGS = {"sqlite": "SQLite NORMAL", "sqlite_full": "SQLite FULL", "postgresql": "PostgreSQL"}


def _json_lines(text):
    return [json.loads(l) for l in text.splitlines() if l.startswith("{")]


def _median(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    n = len(vals)
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2


def _merge(runs):
    """The median of every numeric field; other fields as in the first run."""
    out = {}
    for k, v in runs[0].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = _median([r.get(k) for r in runs])
        else:
            out[k] = v
    return out


def run(root, build_dir, tmp, quick, runs, loadavg):
    """Builds libcase_bench_pg, starts the cluster, runs everything; returns the
    results as {name: {"runs": [...], "median": {...}}}."""
    subprocess.run(["cmake", "--build", build_dir, "-j2", "--target", "libcase_bench_pg"],
                   check=True, stdout=subprocess.DEVNULL)
    prog = os.path.join(build_dir, "bench", "libcase_bench_pg")
    pgdir = "/tmp/libcase-bench-pg-%d" % os.getpid()
    p = subprocess.run([os.path.join(root, "scripts", "pg-cluster"), "start", pgdir, "--durable"],
                       text=True, capture_output=True)
    if p.returncode != 0:
        sys.exit("bench/run: the PostgreSQL cluster did not start: %s" % p.stderr.strip())
    uri = p.stdout.strip()
    try:
        return _run_all(prog, uri, tmp, quick, runs, loadavg)
    finally:
        subprocess.run([os.path.join(root, "scripts", "pg-cluster"), "stop", pgdir])


def _run_all(prog, uri, tmp, quick, runs, loadavg):
    # Sizes for a PostgreSQL fire of about 1-3 ms on a busy 2-core machine; at
    # most 3 rounds (each round runs every job once, both backends).
    n = 500 if quick else 2000
    secs = "2" if quick else "4"
    due = 300 if quick else 1000
    runs = min(runs, 3)
    jobs = []
    for b in BACKENDS:
        loc = (uri + "&schema=bench_pg") if b == "postgresql" else os.path.join(tmp, "bench-pg.db")
        env = dict(os.environ, LIBCASE_BENCH_SYNC="full" if b == "sqlite_full" else "normal")
        jobs.append(("pg_insert_" + b, ["insert", loc, str(n)], env))
        jobs.append(("pg_durable_" + b, ["durable", loc, str(n)], env))
        if b == "postgresql":
            jobs.append(("pg_durable_login", ["durable_login", loc, str(n)], env))
        for k in (1, 2, 4):
            jobs.append(("pg_writers%d_%s" % (k, b), ["writers", loc, str(k), secs], env))
        for k in (1, 2):
            jobs.append(("pg_tick%d_%s" % (k, b), ["tick", loc, str(k), str(due)], env))
    out = {}
    # Runs interleaved (each job once per round) so that a change of the load
    # on the machine hits both backends alike.
    for i in range(runs):
        for name, args, env in jobs:
            print("  %-20s run %d/%d: libcase_bench_pg %s" % (name, i + 1, runs,
                                                               " ".join(args)), flush=True)
            p = subprocess.run([prog] + args, text=True, capture_output=True, env=env)
            if p.returncode != 0:
                sys.stderr.write(p.stderr)
                sys.exit("bench/run: %s failed" % name)
            out.setdefault(name, []).extend(_json_lines(p.stdout))
    res = {}
    for name, rs in out.items():
        res[name] = {"runs": rs, "median": _merge(rs)}
    res["pg_load_after"] = {"runs": [], "median": {"load": loadavg()}}
    return res


def table(res, row, fmt):
    """The table's rows for these results (bench/run's print_table)."""
    b = res["benchmarks"]

    def med(name, field):
        x = b.get(name)
        return x["median"].get(field) if x else None

    for be in BACKENDS:
        tag = TAGS[be]
        f, i = med("pg_durable_" + be, "fires_per_s"), med("pg_insert_" + be, "insert_per_s")
        row("11 %s: durable fire (chain, one case)" % tag, f, "fires/s")
        row("11 %s: plain one-row INSERT txn" % tag, i, "txn/s")
        if be == "postgresql":
            row("11 %s: one-statement INSERT (autocommit)" % tag,
                med("pg_insert_" + be, "autocommit_per_s"), "txn/s")
        row("11 %s: ratio fire / INSERT txn" % tag, f / i if f and i else None, "")
        row("11 %s: fire latency p50 (us)" % tag, med("pg_durable_" + be, "fire_p50_us"), "us")
        if be == "postgresql":
            fl = med("pg_durable_login", "fires_per_s")
            row("11 %s: durable fire as a mapped login (grants, RLS)" % tag, fl, "fires/s")
            row("11 %s: ratio login fire / owner fire" % tag, fl / f if fl and f else None, "")
        for k in (1, 2, 4):
            row("11 %s: %d writer process(es), a case each" % (tag, k),
                med("pg_writers%d_%s" % (k, be), "fires_per_s"), "fires/s")
        for k in (1, 2):
            row("11 %s: tick with %d worker(s), %s due timers" % (
                tag, k, fmt(med("pg_tick%d_%s" % (k, be), "due"))),
                med("pg_tick%d_%s" % (k, be), "timers_per_s"), "timers/s")
