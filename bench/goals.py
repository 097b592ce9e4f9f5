#!/usr/bin/env python3
"""The goal table from one bench/goals.sh run: reads OUT_DIR's files and
prints each goal with the ratio measured, its inputs and whether it is met.
   bench/goals.py OUT_DIR"""
import csv
import json
import re
import sys

out = sys.argv[1]
rows = json.load(open(f"{out}/bench.json"))


def ops(workload, engine, attrs=""):
    for r in rows:
        a = r["attrs"] if r["attrs"] not in ("none", "-") else ""
        if r["workload"] == workload and r["engine"] == engine and a == attrs and r["status"] == "ok":
            return r["ops_per_s"]
    return None


table = []


def goal(name, num, den, want, what):
    if num is None or den is None or den == 0:
        table.append((name, "n/a", f">= {want:.2f}x" if want else "-", "not measured", what))
        return
    ratio = num / den
    if want is None:  # a bound that explains a goal, not a goal of its own
        table.append((name, f"{ratio:.2f}x", "-", "reference", what))
        return
    table.append((name, f"{ratio:.2f}x", f">= {want:.2f}x", "met" if ratio >= want else "NOT met", what))


q1, q32, d32 = "cached_randread_qd1", "cached_randread_qd32", "direct_randread_qd32"
goal("AUTO, cached QD 1 vs sync pread", ops(q1, "aio2"), ops(q1, "sync"), 0.9, "aio2 / sync")
# A read that must not block is a preadv2(RWF_NOWAIT) (an iovec to import,
# which pread64 has not): sync_nowait / sync bounds every nonblocking-first
# path against plain pread, and aio2 / sync_nowait is aio2's own share.
goal("  sync_nowait (preadv2 RWF_NOWAIT) vs sync pread", ops(q1, "sync_nowait"), ops(q1, "sync"), None,
     "sync_nowait / sync: the kernel's part")
goal("  AUTO, cached QD 1 vs sync_nowait", ops(q1, "aio2"), ops(q1, "sync_nowait"), None,
     "aio2 / sync_nowait: aio2's part")
goal("AUTO, cached QD 1 vs liburing", ops(q1, "aio2"), ops(q1, "liburing"), 1.0, "aio2 / liburing (for reference)")
goal("AUTO, cached QD 32 vs liburing_tuned", ops(q32, "aio2"), ops(q32, "liburing_tuned"), 1.0, "aio2 / liburing_tuned")
goal("AUTO, cached QD 32 vs liburing", ops(q32, "aio2"), ops(q32, "liburing"), 1.05, "aio2 / liburing")
goal("AUTO, O_DIRECT QD 32 vs liburing_tuned", ops(d32, "aio2"), ops(d32, "liburing_tuned"), 1.0, "aio2 / liburing_tuned")
goal("AUTO timing+cache, cached QD 32 vs liburing_tuned", ops(q32, "aio2", "timing,cache"),
     ops(q32, "liburing_tuned"), 0.9, "aio2 [timing,cache] / liburing_tuned")
# The same with the file registered (aio2_register_fds): no fcntl per call,
# nor per request with attributes.
goal("  registered, cached QD 32 vs liburing_tuned", ops(q32, "aio2_registered"), ops(q32, "liburing_tuned"),
     None, "aio2_registered / liburing_tuned")
goal("  registered timing+cache, cached QD 32 vs liburing_tuned", ops(q32, "aio2_registered", "timing,cache"),
     ops(q32, "liburing_tuned"), None, "aio2_registered [timing,cache] / liburing_tuned")
goal("  registered timing+cache, cached QD 1 vs sync pread", ops(q1, "aio2_registered", "timing,cache"),
     ops(q1, "sync"), None, "aio2_registered [timing,cache] / sync")
goal("  registered O_DIRECT QD 32 vs liburing_tuned", ops(d32, "aio2_registered"), ops(d32, "liburing_tuned"),
     None, "aio2_registered / liburing_tuned")
for w, label in ((q1, "QD 1"), (q32, "QD 32")):
    goal(f"no io_uring, cached {label} vs liburing", ops(w, "aio2_no_uring"), ops(w, "liburing"), 0.9,
         "aio2_no_uring / liburing")
    goal(f"no io_uring, cached {label} vs libuv", ops(w, "aio2_no_uring"), ops(w, "libuv"), 2.0,
         "aio2_no_uring / libuv")
goal("pool, cached QD 32 vs glibc POSIX AIO", ops(q32, "aio2_pool"), ops(q32, "posix_aio"), 2.0,
     "aio2_pool / posix_aio")

# Submitting threads on one context against a context each: the row per
# thread count gives ctx-each's ops/s, then each sharing's ratio to it
# (shared, shared-greedy, shared-1ring, shared-inst).
share, per_thread = {}, {}
in_block = False
for line in open(f"{out}/uring_share.txt"):
    if line.startswith("submitting threads on one context"):
        in_block = True
        continue
    m = re.match(r"\s+(\d+)\s+(\d+)\s+([\d.]+)x\s+([\d.]+)x\s+([\d.]+)x\s+([\d.]+)x", line) if in_block else None
    if m:
        share[int(m.group(1))] = float(m.group(3))
        per_thread[int(m.group(1))] = float(m.group(6))
for t in sorted(share):
    if t >= 2:
        goal(f"{t} threads sharing one context vs a context each", share[t], 1.0, 0.9,
             "uring_share_bench shared / ctx-each")
        goal(f"  the same, uring_instances = {t}", per_thread[t], 1.0, None,
             "uring_share_bench shared-inst / ctx-each")

# In flight: cost and bytes per request, 1 to 1 Mi.
pts = list(csv.DictReader(open(f"{out}/plots/inflight.csv")))
for col, label in (("auto", "AUTO"), ("pool", "POOL")):
    ns = [float(p[f"{col}_ns_per_req"]) for p in pts]
    heap = [float(p[f"{col}_heap_bytes_per_req"]) for p in pts]
    n_hi = [int(p["in_flight"]) for p in pts]
    # Over the whole curve, and from 64 in flight (below, one request's
    # round trip is not spread over others: that is latency, not cost).
    for lo in (1, 64):
        idx = [i for i in range(len(ns)) if n_hi[i] >= lo]
        worst = max(idx, key=lambda i: ns[i])
        best = min(idx, key=lambda i: ns[i])
        r = ns[worst] / ns[best]
        table.append((f"{label}: ns/request, worst over best, {lo} to {n_hi[-1]} in flight", f"{r:.2f}x",
                      "<= 1.50x", "met" if r <= 1.5 else "NOT met",
                      f"{ns[worst]:.0f} ns at {n_hi[worst]}, {ns[best]:.0f} ns at {n_hi[best]}"))
    big = [h for h, n in zip(heap, n_hi) if n >= 4096]  # below, the context's fixed cost dominates
    h = max(big) if big else float("nan")
    table.append((f"{label}: heap bytes/request, 4096 to {n_hi[-1]} in flight", f"{h:.0f} B", "<= 256 B",
                  "met" if h <= 256 else "NOT met", "allocator bytes in use, per request"))
    rss = max(float(p[f"{col}_rss_bytes_per_req"]) for p, n in zip(pts, n_hi) if n >= 4096)
    table.append((f"{label}: resident bytes/request, 4096 to {n_hi[-1]} in flight", f"{rss:.0f} B", "<= 256 B",
                  "met" if rss <= 256 else "NOT met", "resident set growth, per request"))

# The ring, 24-byte records.
ring = {}
for line in open(f"{out}/ring.txt"):
    m = re.match(r"(1P1C|2P2C)\s+24\s+(\S+)\s+([\d.]+)\s", line)
    if m:
        ring[(m.group(1), m.group(2))] = float(m.group(3))
goal("ring 2P2C 24 B vs moodycamel", ring.get(("2P2C", "aio2_mpmc")), ring.get(("2P2C", "moodycamel")), 1.0,
     "aio2_mpmc / moodycamel, Mrec/s")
goal("  the same, 16 records per push (each peer's bulk call)", ring.get(("2P2C", "aio2_mpmc_b16")),
     ring.get(("2P2C", "moodycamel_b16")), None, "aio2_mpmc_b16 / moodycamel_b16, Mrec/s")
goal("ring SPSC 24 B vs boost popping in bulk", ring.get(("1P1C", "aio2_spsc_copy")),
     ring.get(("1P1C", "boost_spsc")), 1.0, "aio2_spsc_copy / boost_spsc, Mrec/s")

w = [max(len(r[i]) for r in table) for i in range(4)]
print(f"{'goal':<{w[0]}}  {'measured':>{w[1]}}  {'want':>{w[2]}}  {'':<{w[3]}}  inputs")
for r in table:
    print(f"{r[0]:<{w[0]}}  {r[1]:>{w[1]}}  {r[2]:>{w[2]}}  {r[3]:<{w[3]}}  {r[4]}")
print(open(f"{out}/load.txt").read().strip())
