#!/usr/bin/env python3
"""report.py MEASURES_DIR WORK_DIR OUT_DIR — the benchmark's table and results.json.

Reads the per-phase measurements tests/bench/run.sh wrote in MEASURES_DIR (one JSON
file each), describes the machine (WORK_DIR: where the data and the cluster lived, for
the disk), computes rates, ratios and the targets of issue 5, prints one table and
writes the same figures to OUT_DIR/results.json and OUT_DIR/results.txt. Figures are
what was measured: nothing is rounded up, nothing estimated except the one line marked
"projected"."""
import json
import os
import subprocess
import sys
import time

NA = "n/a (API not built yet)"
CITY_YEAR_EVENTS = 2_500_000

# (key, target, test) — issue 5
TARGETS = [
    ("civibus_vs_copy", "civibus >= 70% of the COPY ceiling", lambda r: r["ratio_civibus_copy"] >= 0.70),
    ("civibus_vs_naive", "civibus >= 25x the naive connector", lambda r: r["ratio_civibus_naive"] >= 25),
    ("city_year", "2.5M events (a city's year) in <= 75 s", lambda r: r["city_year_seconds"] <= 75),
    ("ack_p99", "send-to-ACK p99 < 50 ms at 1,000 events/s", lambda r: r["ack_p99_ms"] < 50),
    ("hub_rss", "hub peak RSS < 64 MB", lambda r: r["hub_rss_kb"] < 64 * 1024),
]


def load(mdir, name):
    with open(os.path.join(mdir, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def fdatasync_ms(workdir, seconds=1.0):
    """Mean time of an 8 KiB write + fdatasync in workdir: the disk's commit cost
    (PostgreSQL flushes its WAL the same way at each COMMIT, the spool at each batch)."""
    path = os.path.join(workdir, "fdatasync.probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block, n, t0 = b"\0" * 8192, 0, time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            os.pwrite(fd, block, (n % 16) * 8192)
            os.fdatasync(fd)
            n += 1
    finally:
        os.close(fd)
        os.unlink(path)
    return round((time.monotonic() - t0) * 1000 / n, 3)


def commit():
    """The code measured: BENCH_COMMIT, else git describe (read-only), else unknown."""
    if os.environ.get("BENCH_COMMIT"):
        return os.environ["BENCH_COMMIT"]
    here = os.path.dirname(os.path.abspath(__file__))
    return run(["git", "-C", here, "describe", "--always", "--dirty"]) or "unknown"


def machine(workdir):
    cpu = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    source, fstype = (run(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", workdir]).split() + ["?", "?"])[:2]
    dev = os.path.basename(source)
    rot = run(["cat", "/sys/block/%s/queue/rotational" % dev.rstrip("0123456789")]) or "?"
    virt = run(["systemd-detect-virt"]) or "?"
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1048576, 1),
            "disk": "%s (%s, rotational=%s)" % (source, fstype, rot), "virtualization": virt,
            "fdatasync_8k_ms": fdatasync_ms(workdir),
            "kernel": os.uname().release}


def num(x, digits=0):
    return ("{:,.%df}" % digits).format(x)


def build(mdir, workdir):
    gen, civ, lat, cp, nv = (load(mdir, n) for n in ("gen", "civibus", "latency", "copy", "naive"))
    r = {
        "scale": load(mdir, "run")["scale"],
        "events": civ["events"],
        "requests": civ["requests"],
        "citizens": civ["citizens"],
        "flagged_events": civ["flagged"],
        "sources": gen["sources"],
        "civibus_eps": civ["events"] / civ["seconds"],
        "civibus_seconds": civ["seconds"],
        "civibus_adapters": civ["adapters"],
        "civibus_cpu_seconds": civ["cpu_seconds"],
        "copy_eps": cp["events"] / cp["seconds"],
        "copy_seconds": cp["seconds"],
        "copy_rows": cp["rows"],
        "copy_table_seconds": cp["tables"],
        "copy_cpu_seconds": cp["cpu_seconds"],
        "naive_eps": nv["eps"],
        "naive_events": nv["events"],
        "naive_seconds": nv["seconds"],
        "ack_p50_ms": lat["p50_ms"],
        "ack_p99_ms": lat["p99_ms"],
        "latency": lat,
        "timeline_p99_ms": None,
        "status_p99_ms": None,
        "hub_rss_kb": load(mdir, "hub_rss")["hub_rss_kb"],
        "api_rss_kb": None,
        "adapter_rss_kb": civ["adapter_rss_kb"],
        "database_bytes": civ["database_bytes"],
        "spool_bytes": civ["spool_bytes"],
        "pg_settings": load(mdir, "pg_settings"),
        "hub_settings": load(mdir, "hub_settings"),
        "machine": machine(workdir),
        "run_seconds": load(mdir, "run")["seconds"],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit(),
    }
    cpu = civ["cpu_seconds"]
    r["cpu_us_per_event"] = {
        "civibus": {k: round(cpu[k] * 1e6 / r["events"], 1) for k in ("hub", "postgresql", "adapters")},
        "copy": {"postgresql": round(cp["cpu_seconds"]["postgresql"] * 1e6 / r["events"], 1)},
    }
    r["ratio_civibus_copy"] = r["civibus_eps"] / r["copy_eps"]
    r["ratio_civibus_naive"] = r["civibus_eps"] / r["naive_eps"]
    r["city_year_seconds"] = CITY_YEAR_EVENTS / r["civibus_eps"]
    r["targets"] = {key: {"target": label, "met": bool(test(r))} for key, label, test in TARGETS}
    return r


def table(r):
    m, pg, hub, lat = r["machine"], r["pg_settings"], r["hub_settings"], r["latency"]
    met = {k: ("met" if v["met"] else "NOT MET") for k, v in r["targets"].items()}
    rows = [
        ("COPY ceiling (%d tables, same indexes)" % len(r["copy_table_seconds"]), num(r["copy_eps"]) + " ev/s",
         "%s events, %s rows in all, in %.1f s" % (num(r["events"]), num(r["copy_rows"]), r["copy_seconds"])),
        ("naive: 1 transaction per event", num(r["naive_eps"]) + " ev/s",
         "%s events in %.1f s" % (num(r["naive_events"]), r["naive_seconds"])),
        ("civibus: %d adapters -> hub -> ACK" % r["civibus_adapters"], num(r["civibus_eps"]) + " ev/s",
         "%s events, first send to last ACK, %.1f s" % (num(r["events"]), r["civibus_seconds"])),
        ("civibus / ceiling", "%.0f %%" % (100 * r["ratio_civibus_copy"]),
         "target >= 70 %%: %s" % met["civibus_vs_copy"]),
        ("civibus / naive", "%.1f x" % r["ratio_civibus_naive"],
         "target >= 25 x: %s" % met["civibus_vs_naive"]),
        ("a city's year (2.5M events), %s" % ("measured" if r["events"] == CITY_YEAR_EVENTS else "projected"),
         "%.0f s" % r["city_year_seconds"],
         "target <= 75 s: %s" % met["city_year"]),
        ("send-to-ACK p50 at 1,000 ev/s", "%.1f ms" % r["ack_p50_ms"],
         "%s records, p90 %.1f, p99.9 %.1f, max %.1f ms" % (num(lat["count"]), lat["p90_ms"],
                                                           lat["p999_ms"], lat["max_ms"])),
        ("send-to-ACK p99 at 1,000 ev/s", "%.1f ms" % r["ack_p99_ms"],
         "target < 50 ms: %s; worst second's p99 %.0f ms, worst spool fdatasync %.0f ms"
         % (met["ack_p99"], lat["worst_second_p99_ms"], lat["flush_max_ms"])),
        ("timeline p99 (HTTP)", NA, ""),
        ("status p99 (HTTP)", NA, ""),
        ("hub peak RSS (VmHWM)", num(r["hub_rss_kb"]) + " kB", "target < 64 MB: %s" % met["hub_rss"]),
        ("adapter peak RSS (VmHWM, largest)", num(r["adapter_rss_kb"]) + " kB", ""),
        ("API peak RSS", NA, ""),
    ]
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    src = ", ".join("%s %s" % (k, num(v["events"])) for k, v in r["sources"].items())
    out = [
        "civibus ingest benchmark (make bench), %s, code %s" % (r["date"], r["commit"]),
        "data: scale %s: %s events (%s), %s requests, %s citizens, %s flagged transitions"
        % (r["scale"], num(r["events"]), src, num(r["requests"]), num(r["citizens"]),
           num(r["flagged_events"])),
        "machine: %d x %s, %.1f GiB RAM, disk %s (8 KiB write + fdatasync: %.2f ms), %s, Linux %s"
        % (m["nproc"], m["cpu"], m["memory_gib"], m["disk"], m["fdatasync_8k_ms"], m["virtualization"],
           m["kernel"]),
        "postgresql: " + " ".join("%s=%s" % kv for kv in pg.items()),
        "hub: " + " ".join("%s=%s" % kv for kv in hub.items()),
        "",
    ]
    out += ["%-*s  %*s  %s" % (w0, a, w1, b, c) for a, b, c in rows]
    cpu, per = r["civibus_cpu_seconds"], r["cpu_us_per_event"]
    out += ["", "CPU per event (independent of other load): civibus %.0f us (hub %.0f, PostgreSQL %.0f, "
            "adapters %.0f); COPY %.0f us (PostgreSQL)"
            % (sum(per["civibus"].values()), per["civibus"]["hub"], per["civibus"]["postgresql"],
               per["civibus"]["adapters"], per["copy"]["postgresql"]),
            "machine during the civibus run: busy %.1f of %.1f core-seconds (other processes included)"
            % (cpu["machine_busy"], cpu["machine_available"]),
            "storage after the civibus run: database %s MB (%.0f bytes/event), adapter spools %s MB"
            % (num(r["database_bytes"] / 1e6), r["database_bytes"] / r["events"],
               num(r["spool_bytes"] / 1e6))]
    out += ["run time: %.0f s" % r["run_seconds"]]
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: report.py MEASURES_DIR WORK_DIR OUT_DIR")
    mdir, workdir, outdir = sys.argv[1:]
    r = build(mdir, workdir)
    text = table(r)
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(r, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(outdir, "results.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
