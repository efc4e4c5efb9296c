"""Writes the input `bench/eval-compare.sh` feeds to two `junction eval` binaries: the sample
file, every ChartMogul, FQL and mapping-kit conformance vector turned into eval lines (their
mappings and triggers as subscriptions), and edge cases (errors of every kind, null and absent
members, repeated and reordered configurations, other spacing, escapes, numbers out of range,
nesting at the recursion limit, CRLF and a last line without a newline).

Usage: corpus.py REPOSITORY_ROOT OUTPUT_FILE"""
import json, sys, random
root = sys.argv[1]
out = open(sys.argv[2], 'w', newline='')
def w(line, end='\n'):
    out.write(line + end)
def dumps(v, **kw):
    return json.dumps(v, ensure_ascii=False, **kw)
WEBHOOK = "https://app.chartmogul.com/api/webhooks/abc?token=t"
defaults = [
    {"partnerAction": "sendContact", "name": "Send Contact", "enabled": True, "subscribe": "type = \"identify\"", "use_defaults": True},
    {"partnerAction": "sendCustomer", "name": "Send Customer", "enabled": True, "subscribe": "type = \"group\"", "use_defaults": True},
]
# 1. the sample file, twice (second time: cache hits)
for _ in range(2):
    for line in open(f'{root}/examples/eval.jsonl'):
        w(line.rstrip('\n'))
# 2. chartmogul vectors
cm = json.load(open(f'{root}/conformance/vectors/chartmogul.json'))
for i, v in enumerate(cm['vectors']):
    event = v.get('event', {"type": "identify", "userId": "u", "messageId": "m"})
    settings = dict(v.get('settings', {"chartmogul_webhook_url": WEBHOOK}))
    subs = settings.pop('subscriptions', None)
    status = v.get('http_response', {}).get('status', 200)
    if v['kind'] == 'perform':
        action = v.get('action') or v.get('partnerAction') or 'sendContact'
        sub = {"partnerAction": action, "subscribe": "type = \"%s\"" % event.get('type', 'identify'),
               "use_defaults": bool(v.get('use_default_mappings'))}
        if 'mapping' in v:
            sub['mapping'] = v['mapping']
        subs = [sub]
    if subs is None:
        subs = defaults
    if isinstance(subs, str):
        subs = json.loads(subs)
    for variant in range(3):
        line = {"id": f"cm-{i}-{variant}", "settings": settings, "subscriptions": subs, "event": event,
                "webhook_response": {"status": status}}
        if variant == 1:
            line['subscriptions'] = defaults
        if variant == 2:
            w(dumps(line, indent=None, separators=(',', ':')))
        else:
            w(dumps(line))
# 3. fql vectors as triggers
fql = json.load(open(f'{root}/conformance/vectors/fql.json'))
for i, v in enumerate(fql['vectors']):
    if 'fql' in v and 'event' in v:
        ev = dict(v['event']) if isinstance(v['event'], dict) else {"type": "identify"}
        ev.setdefault('type', 'identify'); ev.setdefault('userId', 'u1'); ev.setdefault('messageId', 'm1')
        ev.setdefault('traits', {"email": "a@b.co"})
        subs = [{"partnerAction": "sendContact", "subscribe": v['fql']}, defaults[1]]
        w(dumps({"id": f"fql-{i}", "settings": {"chartmogul_webhook_url": WEBHOOK}, "subscriptions": subs, "event": ev}))
    elif 'fql' in v:
        subs = [{"partnerAction": "sendContact", "subscribe": v['fql']}]
        w(dumps({"id": f"fqlp-{i}", "settings": {"chartmogul_webhook_url": WEBHOOK}, "subscriptions": subs, "event": {"type": "identify", "userId": "u"}}))
# 4. mapping-kit vectors: the mapping as a contact's custom_attributes and as the whole mapping
mk = json.load(open(f'{root}/conformance/vectors/mapping-kit.json'))
for i, v in enumerate(mk['vectors']):
    if 'mapping' not in v:
        continue
    inp = v.get('input') if isinstance(v.get('input'), dict) else {}
    ev = {"type": "identify", "userId": "u1", "messageId": "m1", "traits": {"email": "a@b.co"}}
    ev.update(inp)
    ev['type'] = 'identify'
    for j, sub in enumerate([
        {"partnerAction": "sendContact", "subscribe": "type = \"identify\"", "mapping": {"custom_attributes": v['mapping']}},
        {"partnerAction": "sendContact", "subscribe": "type = \"identify\"", "use_defaults": False, "mapping": v['mapping']},
    ]):
        w(dumps({"id": f"mk-{i}-{j}", "settings": {"chartmogul_webhook_url": WEBHOOK}, "subscriptions": [sub], "event": ev}))
# 5. edge cases
ident = {"type": "identify", "userId": "user-42", "anonymousId": "anon-1", "messageId": "msg-1",
         "timestamp": "2024-03-01T12:00:00.000Z", "sentAt": "2024-03-01T12:00:01.000Z",
         "traits": {"email": "jane@example.com", "first_name": "Jane", "n": 1.5, "big": 12345678901234567890, "neg": -0.0, "e": 1e300,
                    "company": {"id": "acme-1", "name": "Acme"}}}
base = {"id": "edge", "settings": {"chartmogul_webhook_url": WEBHOOK}, "subscriptions": defaults, "event": ident}
edges = []
edges.append('')
edges.append('   ')
edges.append('{not json')
edges.append('[1,2]')
edges.append('3')
edges.append('null')
edges.append('{}')
edges.append(dumps({"id": "x", "settings": {}, "subscriptions": []}))
edges.append(dumps({**base, "id": "nullsubs", "subscriptions": None}))
edges.append(dumps({**base, "id": "nullsettings", "settings": None}))
b = dict(base); del b['settings']; b['id'] = 'nosettings'; edges.append(dumps(b))
b = dict(base); del b['subscriptions']; b['id'] = 'nosubs'; edges.append(dumps(b))
edges.append(dumps({**base, "id": "unknown-field", "extra": 1}))
edges.append(dumps({**base, "id": "unknown-dest", "destination": "nope"}))
edges.append(dumps({**base, "id": "null-dest", "destination": None}))
edges.append(dumps({**base, "id": "explicit-dest", "destination": "actions-chartmogul"}))
edges.append(dumps({**base, "id": "subs-object", "subscriptions": {"a": 1}}))
edges.append(dumps({**base, "id": "subs-bad-item", "subscriptions": [1, {"partnerAction": "nope", "subscribe": "type = \"identify\""}, {}]}))
edges.append(dumps({**base, "id": "settings-string", "settings": "x"}))
edges.append(dumps({**base, "id": "settings-array", "settings": [1]}))
edges.append(dumps({**base, "id": "status-float", "webhook_response": {"status": 200.0}}))
edges.append(dumps({**base, "id": "status-503", "webhook_response": {"status": 503, "body": {"a": 1}, "headers": {"x": "y"}}}))
edges.append(dumps({**base, "id": "status-599", "webhook_response": {"status": 599}}))
edges.append(dumps({**base, "id": "status-unknown-field", "webhook_response": {"status": 200, "x": 1}}))
edges.append(dumps({**base, "id": "status-big", "webhook_response": {"status": 70000}}))
edges.append(dumps({**base, "id": ["array", "id"]}))
edges.append(dumps({k: v for k, v in base.items() if k != 'id'}))
edges.append(dumps({**base, "id": "event-not-object", "event": [1]}))
edges.append(dumps({**base, "id": "event-null", "event": None}))
# duplicate top-level keys
s = dumps(base)
edges.append(s[:-1] + ', "id": "dup-id"}')
edges.append(s[:-1] + ', "settings": {"chartmogul_webhook_url": "mailto:x@y.z"}}')
# numbers out of range in settings and in event
edges.append(s[:-1].replace('"settings": {', '"settings": {"n": 1e400, ', 1) + '}')
edges.append(s[:-1].replace('"settings": {', '"settings": {"n": 1e400, ', 1) + '}')
edges.append(s.replace('"n": 1.5', '"n": 1e400'))
# same content, other spacing and unicode escapes
edges.append(dumps(base, indent=None, separators=(',', ':')))
edges.append(json.dumps({**base, "id": "ascii", "settings": {"chartmogul_webhook_url": WEBHOOK + "é"}}, ensure_ascii=True))
edges.append(json.dumps({**base, "id": "ascii", "settings": {"chartmogul_webhook_url": WEBHOOK + "é"}}, ensure_ascii=False))
# key order in a mapping changes the body's key order
m1 = {"type": "Send Contact", "email": {"@path": "$.traits.email"}, "user_id": {"@path": "$.userId"}, "message_id": "x", "timestamp": "2024-03-01T12:00:00Z", "sent_at": "2024-03-01T12:00:00Z"}
m2 = dict(reversed(list(m1.items())))
for m in [m1, m2, m1, m2]:
    edges.append(dumps({**base, "id": "order", "subscriptions": [{"partnerAction": "sendContact", "subscribe": "type = \"identify\"", "use_defaults": False, "mapping": m}]}))
# duplicate keys inside settings / mapping
edges.append(s.replace('"settings": {', '"settings": {"chartmogul_webhook_url": "mailto:a@b.c", ', 1))
edges.append(s.replace('"settings": {', '"settings": {"chartmogul_webhook_url": "mailto:a@b.c", ', 1))
# deep nesting around the recursion limit, in event and in subscriptions
for depth in [120, 125, 126, 127, 128, 130]:
    deep = '[' * depth + ']' * depth
    edges.append(s[:-1] + ', "webhook_response": {"status": 200, "body": %s}}' % deep)
    edges.append(s.replace('"use_defaults": true}]', '"use_defaults": true, "mapping": {"custom_attributes": %s}}]' % deep, 1))
    edges.append(s.replace('"use_defaults": true}]', '"use_defaults": true, "mapping": {"custom_attributes": %s}}]' % deep, 1))
# disabled, invalid trigger, etc. (from tests/eval.rs)
for sub in [{"enabled": False}, {"subscribe": "type = "}, {"subscribe": ""}, {"subscribe": 3}, {"mapping": {"email": {"@oops": 1}}},
            {"mapping": {"email": "not-an-email"}}, {"mapping": {"user_id": None, "anonymous_id": None}},
            {"mapping": {"custom_attributes": {"@merge": {"objects": [{"a": 1}]}}}}, {"mapping": "string"}, {"mapping": None}]:
    full = {"partnerAction": "sendContact", "subscribe": "type = \"identify\""}
    full.update(sub)
    for _ in range(2):
        edges.append(dumps({**base, "id": "sub", "subscriptions": [full]}))
for settings in [{"chartmogul_webhook_url": "not a url"}, {"chartmogul_webhook_url": "mailto:ops@example.com"}, {}, {"chartmogul_webhook_url": 5}]:
    for _ in range(2):
        edges.append(dumps({**base, "id": "settings", "settings": settings}))
# a configuration written as the line before wrote it (`junction eval` reads such a line without
# it): compact and spaced; beside a repeated member, another destination, an id with brackets and
# quotes, the same members nested in the event, after the event, last, with no event, an unknown
# member, invalid JSON after it
compact = lambda v: json.dumps(v, ensure_ascii=False, separators=(',', ':'))
conf = {"settings": base["settings"], "subscriptions": defaults}
for d in [compact, dumps]:
    line = d(base)
    sep = ',' if d is compact else ', '
    col = ':' if d is compact else ': '
    edges.append(line)
    edges.append(d({**base, "id": "elided"}))
    edges.append(d({**base, "id": 'a "{[\\'}))
    edges.append(line[:-1] + sep + '"settings"' + col + d(base["settings"]) + '}')
    edges.append(line[:-1] + sep + '"subscriptions"' + col + '[]}')
    edges.append(d({**base, "id": "same-destination", "destination": "actions-chartmogul"}))
    edges.append(d({**base, "id": "other-destination", "destination": "nope"}))
    edges.append(d({"id": "nested", "event": {**ident, "traits": {**ident["traits"], **conf}}, **conf}))
    edges.append(d({"event": ident, "id": "after-event", **conf}))
    edges.append(d({"id": "first", **conf, "event": ident}))
    edges.append(d({"id": "no-event", **conf}))
    edges.append(d({"id": "unknown", **conf, "event": ident, "extra": 1}))
    edges.append(d({**conf}))
    edges.append(d({**conf, "event": [1]}))
    edges.append(line[:-1] + sep + '}')
    edges.append(d({**base, "id": "elided-again"}))
for line in edges:
    w(line)
# CRLF and a final line without newline
w(dumps({**base, "id": "crlf"}), end='\r\n')
w(dumps({**base, "id": "crlf2"}) + '\r', end='\r\n')
w(dumps({**base, "id": "last-cr"}), end='\r')
