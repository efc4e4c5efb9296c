"""Sends tracking calls to a Junction server with Segment's official Python library.

Reads {"host", "writeKey", "gzip", "calls": [...]} on stdin, where each call is
{"type": "identify" | "group" | "track", "userId", "traits"?, "groupId"?, "event"?,
"properties"?, "timestamp"?}. Prints one JSON line naming the library, then one per call with the
messageId and timestamp the library gave it, flushes, and exits 1 if the library reported any
delivery error. Run by crates/cli/tests/serve/clients.rs, with the interpreter scripts/test
installed.
"""

import json
import sys
from datetime import datetime

import segment.analytics as analytics

spec = json.load(sys.stdin)
errors = []

analytics.write_key = spec["writeKey"]
analytics.host = spec["host"]
analytics.gzip = spec.get("gzip", False)
analytics.on_error = lambda error, batch: errors.append(repr(error))
# A refused batch should fail the test quickly rather than be retried for minutes.
analytics.max_retries = 2
analytics.timeout = 15

print(json.dumps({"library": "analytics-python", "version": analytics.VERSION}), flush=True)

for call in spec["calls"]:
    timestamp = call.get("timestamp")
    if timestamp is not None:
        timestamp = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    if call["type"] == "identify":
        ok, msg = analytics.identify(call["userId"], call.get("traits"), timestamp=timestamp)
    elif call["type"] == "group":
        ok, msg = analytics.group(
            call["userId"], call["groupId"], call.get("traits"), timestamp=timestamp
        )
    elif call["type"] == "track":
        ok, msg = analytics.track(
            call["userId"], call["event"], call.get("properties"), timestamp=timestamp
        )
    else:
        sys.exit("unknown call type " + call["type"])
    if not ok:
        errors.append("not queued: " + msg["messageId"])
    print(json.dumps({"messageId": msg["messageId"], "timestamp": msg["timestamp"]}), flush=True)

analytics.shutdown()
if errors:
    print(json.dumps({"errors": errors}), file=sys.stderr)
    sys.exit(1)
