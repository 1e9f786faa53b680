#!/usr/bin/env python3
"""report.py MEASURES_DIR WORK_DIR OUT_DIR — the benchmark's table and results.json.

Reads the per-phase measurements tests/bench/run.sh wrote in MEASURES_DIR (one JSON
file each), describes the machine (WORK_DIR: where the data and the cluster lived, for
the disk), computes rates, ratios and the targets of issue 5, prints one table and
writes the same figures to OUT_DIR/results.json and OUT_DIR/results.txt. Figures are
what was measured: nothing is rounded up, nothing estimated except the one line marked
"projected".

A run whose HTTP load got an error or a non-2xx answer is invalid (like a NACKed
record in the latency run): report.py refuses it and writes nothing. An HTTP load the
API could not keep up with (requests still unanswered at the end) is a result, not an
error: marked SATURATED, its percentiles are lower bounds and the target is not met."""
import json
import os
import subprocess
import sys
import time

CITY_YEAR_EVENTS = 2_500_000

# (key, target, test) — issue 5
TARGETS = [
    ("civibus_vs_copy", "civibus >= 70% of the COPY ceiling", lambda r: r["ratio_civibus_copy"] >= 0.70),
    ("civibus_vs_naive", "civibus >= 25x the naive connector", lambda r: r["ratio_civibus_naive"] >= 25),
    ("city_year", "2.5M events (a city's year) in <= 75 s", lambda r: r["city_year_seconds"] <= 75),
    ("ack_p99", "send-to-ACK p99 < 50 ms at 1,000 events/s", lambda r: r["ack_p99_ms"] < 50),
    ("hub_rss", "hub peak RSS < 64 MB", lambda r: r["hub_rss_kb"] < 64 * 1024),
    ("timeline_p99", "agent timeline p99 < 5 ms at 1,000 requests/s", lambda r: r["timeline_p99_ms"] < 5),
    ("linkage_precision", "identity linkage precision >= 99.9 %, no citizen mixing people whose given names "
     "or birth dates differ", lambda r: r["linkage"]["precision"] >= 0.999
     and r["linkage"]["citizens_mixing_different_people"] == 0),
    ("linkage_recall", "identity linkage recall >= 90 %", lambda r: r["linkage"]["recall"] >= 0.90),
]


def load_http(mdir, name):
    """One HTTP load's figures; exits (invalid run) on any error or non-2xx answer."""
    h = load(mdir, "http_" + name)
    cpu = os.path.join(mdir, "http_%s_cpu.json" % name)
    if os.path.exists(cpu) and h["answered"]:
        c = load(mdir, "http_%s_cpu" % name)
        secs = c.pop("seconds", None)
        h["cpu_ms_per_request"] = {k: round(v * 1e3 / h["answered"], 3) for k, v in c.items()}
        if secs:                        # CPU seconds per wall-clock second: cores kept busy
            h["busy_cores"] = {k: round(v / secs, 2) for k, v in c.items()}
    if h["errors"] or h["non2xx"] or h["ok"] + h["unanswered"] != h["requests"]:
        sys.exit("report.py: invalid run: HTTP %s: %d errors, %d non-2xx answers of %d requests (status %s)"
                 % (name, h["errors"], h["non2xx"], h["requests"], json.dumps(h["status"])))
    return h


def load_curve(mdir):
    """The adapter-count curve (BENCH_CURVE=1), or None."""
    if not os.path.exists(os.path.join(mdir, "curve.json")):
        return None
    return {n: dict(p, eps=p["events"] / p["seconds"]) for n, p in load(mdir, "curve").items()}


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
    tl, st, curve = load_http(mdir, "timeline"), load_http(mdir, "status"), load_curve(mdir)
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
        "timeline_p50_ms": tl["p50_ms"],
        "timeline_p99_ms": tl["p99_ms"],
        "timeline_rps": tl["achieved_rps"],
        "status_p50_ms": st["p50_ms"],
        "status_p99_ms": st["p99_ms"],
        "status_rps": st["achieved_rps"],
        "http": {"timeline": tl, "status": st, "api": load(mdir, "api_rss")},
        "hub_rss_kb": load(mdir, "hub_rss")["hub_rss_kb"],
        "api_rss_kb": load(mdir, "api_rss")["api_rss_kb"],
        "curve_adapters": {n: p["eps"] for n, p in curve.items()} if curve else None,
        "curve": curve,
        "linkage": load(mdir, "linkage"),
        "mail": load(mdir, "mail") if os.path.exists(os.path.join(mdir, "mail.json")) else None,
        "pages": load(mdir, "pages") if os.path.exists(os.path.join(mdir, "pages.json")) else None,
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
    for p in (curve or {}).values():
        p["cpu_us_per_event"] = {k: round(p["cpu_seconds"][k] * 1e6 / p["events"], 1)
                                 for k in ("hub", "postgresql", "adapters")}
    # What the CPU per event allows, whatever the design's parallelism: every core
    # busy with civibus, or PostgreSQL's part on the one core its single writer uses.
    total_us = sum(r["cpu_us_per_event"]["civibus"].values())
    pg_us = r["cpu_us_per_event"]["civibus"]["postgresql"]
    r["cpu_bound_eps"] = {"all_cores": round(r["machine"]["nproc"] * 1e6 / total_us),
                          "one_postgresql_core": round(1e6 / pg_us)}
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
    ]
    for name, label in (("timeline", "agent timeline"), ("status", "citizen status")):
        h = r["http"][name]
        if h["saturated"]:
            rows.append(("%s (HTTP) SATURATED" % label, "%s unanswered" % num(h["unanswered"]),
                         "of %s requests at the end of the run: the percentiles below are lower bounds"
                         % num(h["requests"])))
        rows += [
            ("%s p50 (HTTP) at %s req/s" % (label, num(h["rate"])), "%.2f ms" % h["p50_ms"],
             "%s requests, %s req/s achieved, %d connections, p90 %.2f, p99.9 %.2f, max %.1f ms%s"
             % (num(h["requests"]), num(h["achieved_rps"]), h["connections"], h["p90_ms"], h["p999_ms"],
                h["max_ms"], ("; CPU per request: API %.2f ms, PostgreSQL %.2f ms"
                % (h["cpu_ms_per_request"]["api"], h["cpu_ms_per_request"]["postgresql"])
                if "cpu_ms_per_request" in h else "")
                + ("; cores busy: API %.2f, PostgreSQL %.2f of %d"
                   % (h["busy_cores"]["api"], h["busy_cores"]["postgresql"], r["machine"]["nproc"])
                   if "busy_cores" in h else ""))),
            ("%s p99 (HTTP) at %s req/s" % (label, num(h["rate"])), "%.2f ms" % h["p99_ms"],
             ("target < 5 ms: %s" % met["timeline_p99"] if name == "timeline"
              else "no error, every answer 2xx")
             # a sender late by as much as the worst latencies: the machine stalled, not the API
             + ("; the load generator sent up to %.1f ms late" % h["send_late_max_ms"]
                if h.get("send_late_max_ms", 0) >= 1 else "")),
        ]
    rows += [
        ("hub peak RSS (VmHWM)", num(r["hub_rss_kb"]) + " kB", "target < 64 MB: %s" % met["hub_rss"]),
        ("adapter peak RSS (VmHWM, largest)", num(r["adapter_rss_kb"]) + " kB", ""),
        ("API peak RSS (VmHWM)", num(r["api_rss_kb"]) + " kB",
         "%d workers, after both HTTP runs" % r["http"]["api"]["threads"]),
    ]
    lk = r["linkage"]
    rows += [
        ("identity linkage: %s people, %s records" % (num(lk["people"]), num(lk["records"])),
         "%.2f %%" % (100 * lk["precision"]),
         "precision; %d citizens mix people, %d whose given names or birth dates differ: %s"
         % (lk["citizens_mixing_people"], lk["citizens_mixing_different_people"], met["linkage_precision"])),
        ("identity linkage recall", "%.1f %%" % (100 * lk["recall"]),
         "%.1f %% once the open proposals are accepted; %d people split: %s"
         % (100 * lk["recall_with_proposals"], lk["people_split"], met["linkage_recall"])),
    ]
    pg_ = r["pages"]
    if pg_:
        rows += [
            ("console: citizen page drawn, p50", "%.0f ms" % pg_["timeline_p50_ms"],
             "in chromium, fragment changed to timeline drawn, %d citizens (%d requests drawn); p99 %.0f ms, max %.0f ms"
             % (pg_["citizens"], pg_["requests_drawn"], pg_["timeline_p99_ms"], pg_["timeline_max_ms"])),
            ("dashboard: loaded and drawn, p50", "%d ms" % pg_["dashboard_p50_ms"],
             "navigation to its table drawn, %d loads, max %d ms" % (pg_["dashboard_loads"], pg_["dashboard_max_ms"])),
        ]
    ml = r["mail"]
    if ml:
        rows += [
            ("mail intake: IMAP -> committed request", "%s mails/s" % num(ml["intake_per_second"]),
             "%s mails from the city's Dovecot mailbox through the imap adapter and the hub in %.1f s"
             % (num(ml["mails"]), ml["intake_seconds"])),
            ("notifier: acknowledgement -> SMTP 250", "%s mails/s" % num(ml["notify_per_second"]),
             "%s acknowledgements accepted by Postfix in %.1f s, %d not sent"
             % (num(ml["mails"]), ml["notify_seconds"], ml["notify_not_sent"])),
        ]
    for n, p in sorted((r["curve"] or {}).items(), key=lambda kv: int(kv[0])):
        per = p["cpu_us_per_event"]
        rows.append(("curve: %s adapter%s (dechets, %s events)" % (n, "" if n == "1" else "s", num(p["events"])),
                     num(p["eps"]) + " ev/s",
                     "%.1f s; CPU us/event hub %.0f, PostgreSQL %.0f, adapters %.0f; machine busy %.0f of %.0f core-s"
                     % (p["seconds"], per["hub"], per["postgresql"], per["adapters"],
                        p["cpu_seconds"]["machine_busy"], p["cpu_seconds"]["machine_available"])))
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    src = ", ".join("%s %s" % (k, num(v["events"])) for k, v in r["sources"].items())
    out = [
        "civibus benchmark (make bench), %s, code %s" % (r["date"], r["commit"]),
        "data: scale %s: %s events (%s), %s requests, %s citizens, %s flagged transitions"
        % (r["scale"], num(r["events"]), src, num(r["requests"]), num(r["citizens"]),
           num(r["flagged_events"])),
        "machine: %d x %s, %.1f GiB RAM, disk %s (8 KiB write + fdatasync: %.2f ms), %s, Linux %s"
        % (m["nproc"], m["cpu"], m["memory_gib"], m["disk"], m["fdatasync_8k_ms"], m["virtualization"],
           m["kernel"]),
        "postgresql: " + " ".join("%s=%s" % kv for kv in pg.items()),
        "hub: " + " ".join("%s=%s" % kv for kv in hub.items()),
    ]
    pw = r["http"]["api"].get("prewarm")
    if pw:
        out.append("http: after pg_prewarm of the database (%s MB read through shared_buffers in %.1f s; "
                   "last, the %d relations the API reads: %s MB)"
                   % (num(pw["pages"] * 8 // 1024), pw["seconds"], len(pw.get("last", [])),
                      num(pw.get("last_pages", 0) * 8 // 1024)))
    tp = r["http"]["api"].get("timeline_page")
    if tp:
        out.append("http: the timeline answers its first page (%d requests): %s citizens have more "
                   "(most requests of one: %s)" % (tp["limit"], num(tp["citizens_over"]), num(tp["max_requests"])))
    if r["http"]["api"].get("extra_sql"):
        out.append("NOTE: BENCH_HTTP_SQL ran before the HTTP stage (not the schema as shipped): "
                   + r["http"]["api"]["extra_sql"])
    out += [
        "",
    ]
    out += ["%-*s  %*s  %s" % (w0, a, w1, b, c) for a, b, c in rows]
    cpu, per = r["civibus_cpu_seconds"], r["cpu_us_per_event"]
    out += ["", "CPU per event (less sensitive to other load than rates): civibus %.0f us (hub %.0f, PostgreSQL %.0f, "
            "adapters %.0f); COPY %.0f us (PostgreSQL)"
            % (sum(per["civibus"].values()), per["civibus"]["hub"], per["civibus"]["postgresql"],
               per["civibus"]["adapters"], per["copy"]["postgresql"]),
            "what that CPU allows: %s ev/s with all %d cores busy (%.0f %% of COPY); "
            "%s ev/s with PostgreSQL's part on one core (its single writer)"
            % (num(r["cpu_bound_eps"]["all_cores"]), r["machine"]["nproc"],
               100.0 * r["cpu_bound_eps"]["all_cores"] / r["copy_eps"],
               num(r["cpu_bound_eps"]["one_postgresql_core"])),
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
