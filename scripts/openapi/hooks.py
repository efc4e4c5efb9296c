"""schemathesis hooks for scripts/check-openapi.

A few request members are valid by rules no JSON Schema states, and the document says them in
words: a webhook URL the server's delivery policy accepts (a property of the server's settings),
source ids that exist, an FQL trigger, mapping-kit directives that fit the action's fields. A
generated value of the right type for one of them is replaced with one the server accepts, so
that a schema-valid request is a valid one and every other member is still checked as generated.
Values of the wrong type, or breaking a documented limit (what makes a request schema-invalid),
are left as they are: those requests must still be refused.
"""

import os
import re
import uuid

import schemathesis

SANDBOX_URL = os.environ["JUNCTION_CHECK_SANDBOX_URL"]
TRIGGER = 'type = "identify"'
TRIGGER_MAX_CHARS = 4096


def _settings(body):
    settings = body.get("settings")
    if isinstance(settings, dict) and isinstance(settings.get("chartmogul_webhook_url"), str):
        settings["chartmogul_webhook_url"] = SANDBOX_URL


def _sources(body):
    sources = body.get("sources")
    if isinstance(sources, list):
        body["sources"] = ["sample-app" if isinstance(item, str) else item for item in sources]


def _mapping(body):
    trigger = body.get("trigger")
    if isinstance(trigger, str) and len(trigger) <= TRIGGER_MAX_CHARS:
        body["trigger"] = TRIGGER
    if isinstance(body.get("mapping"), dict):
        body["mapping"] = {}


QUERY_MAX_CHARS = 8192
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")
QUERIES = {
    "audience": "event('Order Completed').count() >= 1",
    "trait": "event('Order Completed').count()",
}


def _definition(body):
    """A definition in the query language, of its kind; a fresh key (keys are never reused, and
    a deleted one stays taken); connections to a destination that exists, once each. Only
    members valid by the schema are replaced."""
    query = body.get("query")
    kind = body.get("kind")
    if isinstance(query, str) and len(query) <= QUERY_MAX_CHARS:
        body["query"] = QUERIES.get(kind if isinstance(kind, str) else "", QUERIES["audience"])
    key = body.get("key")
    if key is None or (isinstance(key, str) and KEY_PATTERN.match(key) and len(key) <= 64):
        # Absent or null: derived from the name, which may be empty; a fresh one instead.
        body["key"] = "check_" + uuid.uuid4().hex[:16]
    connections = body.get("connections")
    if (
        isinstance(connections, list)
        and 0 < len(connections) <= 20
        and all(_valid_connection(item) for item in connections)
    ):
        first = dict(connections[0], destination="chartmogul")
        body["connections"] = [first]


def _valid_connection(item):
    if not isinstance(item, dict) or set(item) - {"destination", "every_hours"}:
        return False
    destination = item.get("destination")
    hours = item.get("every_hours")
    hours_valid = hours is None or (
        isinstance(hours, (int, float)) and not isinstance(hours, bool)
        and float(hours).is_integer() and 1 <= hours <= 672
    )
    return isinstance(destination, str) and 1 <= len(destination) <= 64 and hours_valid


def _audience_patch(body):
    _definition(body)
    body.pop("key", None)


FIXES = {
    ("POST", "/api/v1/destinations"): (_settings, _sources),
    ("PATCH", "/api/v1/destinations/{id}"): (_settings,),
    ("POST", "/api/v1/destinations/{id}/mappings"): (_mapping,),
    ("PATCH", "/api/v1/destinations/{id}/mappings/{mapping_id}"): (_mapping,),
    ("POST", "/api/v1/audiences"): (_definition,),
    ("POST", "/api/v1/audiences/preview"): (_definition,),
    ("PATCH", "/api/v1/audiences/{key}"): (_audience_patch,),
}


@schemathesis.hook
def map_case(context, case):
    fixes = FIXES.get((case.method.upper(), case.path), ())
    if fixes and isinstance(case.body, dict):
        for fix in fixes:
            fix(case.body)
    return case
