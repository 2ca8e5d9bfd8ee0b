#!/usr/bin/env python3
"""Sends real frames to running slblur functions and writes the results CSV of client/SCHEMA.md.

Used by `samples/report/make-dataset` to make the small committed dataset of the report tests
and the notebook: closed-loop cells (users x think time, each user one keep-alive connection,
the think sleep before every request as the original client did) and open-loop cells (Poisson
arrivals at a rate, latency counted from the scheduled time). A target may list several replica
URLs; user i talks to replica i mod n, as a per-connection load balancer would spread them.
Only the standard library is used.
"""

import argparse
import csv
import http.client
import random
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from pathlib import Path

HEADER = ("run_id,users,think_s,user_id,frame,iteration,started_at,rtt_ms,total_ms,ml_ms,faces,"
          "status,bytes_sent,bytes_received,cold,ok,error,target,instance,queue_ms,worker,"
          "intended_at,rate_per_s,smooth,hints,masked,masked_area").split(",")


def stamp(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{int(t * 1000) % 1000:03d}Z"


def server_timing(value):
    """`queue;dur=0.01, ml;dur=150.2` -> {"queue": 0.01, "ml": 150.2}"""
    out = {}
    for entry in value.split(","):
        parts = [p.strip() for p in entry.split(";")]
        for p in parts[1:]:
            if p.startswith("dur="):
                try:
                    out[parts[0]] = float(p[4:])
                except ValueError:
                    pass
    return out


class Connection:
    """One user's keep-alive connection to one replica."""

    def __init__(self, url, timeout):
        self.url = urllib.parse.urlsplit(url)
        self.timeout = timeout
        self.conn = None

    def post(self, body):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=self.timeout)
        try:
            self.conn.request("POST", self.url.path or "/", body, {"Content-Type": "image/jpeg"})
            response = self.conn.getresponse()
            return response, response.read()
        except Exception:
            self.conn.close()
            self.conn = None
            raise


def send(conn, body, row, start):
    try:
        response, data = conn.post(body)
    except TimeoutError:
        row["error"] = f"timeout after {conn.timeout:g}s"
    except OSError as e:
        row["error"] = f"connect error: {e.strerror or e}"
    except http.client.HTTPException as e:
        row["error"] = f"request error: {e!r}"
    else:
        timing = server_timing(response.getheader("Server-Timing", ""))
        row.update(
            status=response.status,
            bytes_received=len(data),
            total_ms=timing.get("total", ""),
            ml_ms=timing.get("ml", ""),
            queue_ms=timing.get("queue", ""),
            faces=response.getheader("X-Face-Count", ""),
            masked=response.getheader("X-Slblur-Masked", ""),
            cold=response.getheader("X-Slblur-Cold", ""),
            instance=response.getheader("X-Slblur-Instance", ""),
        )
        if response.status == 200 and data[:2] == b"\xff\xd8":
            row["ok"] = "true"
        else:
            row["error"] = f"HTTP {response.status} {response.reason}"
    row["rtt_ms"] = round((time.time() - start) * 1000, 3)


def new_row(run_id, target, users, think, user_id, frame, body):
    return dict(run_id=run_id, users=users, think_s=think, user_id=user_id, frame=frame,
                iteration=0, started_at="", rtt_ms="", total_ms="", ml_ms="", faces="",
                status="", bytes_sent=len(body), bytes_received=0, cold="", ok="false",
                error="", target=target, instance="", queue_ms="", worker=0, intended_at="",
                rate_per_s="", smooth=0, hints=0, masked="", masked_area="")


def closed_cell(args, writer, lock, target, urls, users, think):
    def user(user_id):
        conn = Connection(urls[user_id % len(urls)], args.timeout)
        for frame, body in enumerate(args.frames):
            time.sleep(think)
            row = new_row(args.run_id, target, users, think, user_id, frame, body)
            start = time.time()
            row["started_at"] = stamp(start)
            send(conn, body, row, start)
            with lock:
                writer.writerow(row)

    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def open_cell(args, writer, lock, target, urls, rate, rng):
    def request(i, intended, body):
        conn = Connection(urls[i % len(urls)], args.timeout)
        row = new_row(args.run_id, target, 0, 0, i, i % len(args.frames), body)
        row["rate_per_s"] = rate
        row["intended_at"] = stamp(intended)
        row["started_at"] = stamp(time.time())
        send(conn, body, row, intended)
        with lock:
            writer.writerow(row)

    threads = []
    intended = time.time()
    for i in range(args.rate_requests):
        intended += rng.expovariate(rate)
        time.sleep(max(0.0, intended - time.time()))
        body = args.frames[i % len(args.frames)]
        t = threading.Thread(target=request, args=(i, intended, body))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames-dir", type=Path, required=True, help="JPEG frames, sent in name order")
    p.add_argument("--target", action="append", required=True, metavar="NAME=URL[,URL...]")
    p.add_argument("--users", default="1,2,4")
    p.add_argument("--think", default="0,1,5")
    p.add_argument("--rates", default="", help="open-loop rates per second, e.g. 2,5")
    p.add_argument("--rate-requests", type=int, default=12)
    p.add_argument("--timeout", type=float, default=25.0)
    p.add_argument("--seed", type=int, default=7, help="seed of the Poisson arrivals")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    args.frames = [f.read_bytes() for f in sorted(args.frames_dir.glob("*.jpg"))]
    if not args.frames:
        sys.exit(f"error: no *.jpg frames in {args.frames_dir}")
    args.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-sample"
    rng = random.Random(args.seed)
    lock = threading.Lock()
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, HEADER, lineterminator="\n")
        writer.writeheader()
        for spec in args.target:
            name, _, urls = spec.partition("=")
            urls = urls.split(",")
            for users in map(int, args.users.split(",")):
                for think in map(float, args.think.split(",")):
                    print(f"{name}: {users} users, think {think:g} s", file=sys.stderr)
                    closed_cell(args, writer, lock, name, urls, users, think)
                    f.flush()
            for rate in [float(r) for r in args.rates.split(",") if r]:
                print(f"{name}: {rate:g} requests/s", file=sys.stderr)
                open_cell(args, writer, lock, name, urls, rate, rng)
                f.flush()


if __name__ == "__main__":
    main()
