#!/usr/bin/env python3
"""A simple peer for `tubewatch bench burst`: what a short script would do to track views.

For each video id: read views and title (the watch page with a regex, or the InnerTube player
endpoint with a `$fields` mask), fetch `default.jpg` and hash it with SHA-256, and store one views
record in SQLite. A thread pool overlaps the requests; one connection writes, committing every 500
records. Standard library only (Python 3.11+). Prints one JSON object: checks, seconds,
cpu_seconds, checks_per_second, checks_per_cpu_second, peak_rss_mib, bytes_per_record,
failed_checks.
"""

import argparse
import concurrent.futures
import gzip
import hashlib
import http.client
import json
import os
import re
import resource
import sqlite3
import sys
import threading
import time
import urllib.parse

PLAYER_RE = re.compile(rb"ytInitialPlayerResponse\s*=\s*")
VIEWS_RE = re.compile(rb'"viewCount":"(\d+)"')
TITLE_RE = re.compile(rb'"title":"((?:[^"\\]|\\.)*)"')
FIELDS = "playabilityStatus.status,videoDetails.videoId,videoDetails.title,videoDetails.viewCount"

local = threading.local()


def connection(host, port):
    # One keep-alive connection per thread, as a pool of requests.Session objects would keep.
    conn = getattr(local, "conn", None)
    if conn is None:
        conn = local.conn = http.client.HTTPConnection(host, port, timeout=30)
    return conn


def request(host, port, method, path, body=None, headers=None, use_gzip=True):
    headers = dict(headers or {})
    if use_gzip:
        headers["Accept-Encoding"] = "gzip"
    for attempt in range(2):
        conn = connection(host, port)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.getheader("Content-Encoding") == "gzip":
                data = gzip.decompress(data)
            return resp.status, data
        except (http.client.HTTPException, OSError):
            conn.close()
            local.conn = None
            if attempt == 1:
                raise
    raise RuntimeError("unreachable")


def views_from_watch(host, port, video_id, use_gzip):
    status, page = request(host, port, "GET", f"/watch?v={video_id}", headers={"Cookie": "SOCS=CAE="}, use_gzip=use_gzip)
    if status != 200:
        raise RuntimeError(f"watch page {status}")
    start = PLAYER_RE.search(page)
    if not start:
        raise RuntimeError("no player response")
    rest = page[start.end():]
    views = VIEWS_RE.search(rest)
    title = TITLE_RE.search(rest)
    if not views or not title:
        raise RuntimeError("no views or title")
    return int(views.group(1)), json.loads(b'"' + title.group(1) + b'"')


def views_from_player(host, port, video_id, use_gzip):
    body = json.dumps({"context": {"client": {"clientName": "WEB", "clientVersion": "2.20260603.05.00"}},
                       "videoId": video_id}).encode()
    path = "/youtubei/v1/player?prettyPrint=false&$fields=" + FIELDS
    status, data = request(host, port, "POST", path, body=body,
                           headers={"Content-Type": "application/json", "Cookie": "SOCS=CAE="}, use_gzip=use_gzip)
    if status != 200:
        raise RuntimeError(f"player {status}")
    details = json.loads(data)["videoDetails"]
    if details["videoId"] != video_id:
        raise RuntimeError("wrong video")
    return int(details["viewCount"]), details["title"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--ids", required=True, help="file with one video id per line")
    ap.add_argument("--db", required=True)
    ap.add_argument("--threads", type=int, default=64)
    ap.add_argument("--gzip", choices=["on", "off"], default="on")
    ap.add_argument("--endpoint", choices=["watch", "player"], default="watch")
    args = ap.parse_args()

    url = urllib.parse.urlparse(args.base)
    host, port = url.hostname, url.port or 80
    use_gzip = args.gzip == "on"
    ids = [line.strip() for line in open(args.ids) if line.strip()]
    read_views = views_from_player if args.endpoint == "player" else views_from_watch

    db = sqlite3.connect(args.db, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS views (video_id TEXT NOT NULL, slot INTEGER NOT NULL, "
               "measured_at INTEGER NOT NULL, views INTEGER NOT NULL, PRIMARY KEY (video_id, slot)) WITHOUT ROWID")
    db.commit()
    size_before = os.path.getsize(args.db)
    lock = threading.Lock()
    pending = [0]
    slot = int(time.time()) // 3600 * 3600

    def check(video_id):
        views, _title = read_views(host, port, video_id, use_gzip)
        _status, thumb = request(host, port, "GET", f"/vi/{video_id}/default.jpg", use_gzip=False)
        hashlib.sha256(thumb).hexdigest()
        with lock:
            db.execute("INSERT OR IGNORE INTO views VALUES (?, ?, ?, ?)", (video_id, slot, int(time.time() * 1000), views))
            pending[0] += 1
            if pending[0] >= 500:
                db.commit()
                pending[0] = 0

    started = time.monotonic()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.threads) as pool:
        for result in pool.map(lambda i: _safe(check, i), ids):
            failed += 0 if result else 1
    with lock:
        db.commit()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    seconds = time.monotonic() - started
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size_after = os.path.getsize(args.db)
    checks = len(ids)
    json.dump({
        "endpoint": args.endpoint,
        "gzip": use_gzip,
        "threads": args.threads,
        "checks": checks,
        "seconds": seconds,
        "checks_per_second": checks / max(seconds, 1e-3),
        "cpu_seconds": cpu,
        "checks_per_cpu_second": checks / max(cpu, 1e-3),
        "peak_rss_mib": peak_rss_mib(),
        "bytes_per_record": (size_after - size_before) / max(checks - failed, 1),
        "failed_checks": failed,
    }, sys.stdout)
    print()


def peak_rss_mib():
    # VmHWM belongs to this process's memory; ru_maxrss would carry the high-water mark of the
    # process that spawned this one (Linux keeps it across exec).
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _safe(fn, arg):
    try:
        fn(arg)
        return True
    except Exception as e:  # noqa: BLE001 - a failed check is counted, not fatal
        print(f"peer: {arg}: {e}", file=sys.stderr)
        return False


if __name__ == "__main__":
    main()
