"""No input is a server error: every route of ``app.url_map``, called as every role, with
hostile query strings, path values, form fields and JSON bodies, never answers 5xx.

The hostile values are the ones that broke pages before: numbers no column can hold, Unicode
and full-width digits, NUL bytes, 10 KB strings, repeated keys, impossible dates, cursors of
garbage. Forms are taken from the pages themselves (with their CSRF token and hidden fields, so
a request gets past CSRF and form validation to the code behind them) and one or a few of their
fields are replaced. Each endpoint gets a handful of requests drawn with a fixed seed, so every
run sends the same requests and the count stays bounded (a few hundred per role).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import random
import zlib
from datetime import date
from html.parser import HTMLParser
from urllib.parse import quote, urlsplit

import pytest
from flask import url_for
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from advisors.credit_code import make_code
from models import ROLES, db
from tests import test_access_matrix as matrix
from tests.access_table import ACCESS, may
from tests.conftest import AuthActions, csrf_from

world = matrix.world  # the access matrix's records: every route argument names a real record
FUZZ_PASSWORD = "Fuzz-Horse-Battery-26"

ANON = "anonymous"
SEED = 20260415
MAX_REQUESTS_PER_ROLE = 800  # a guard on the budget below (a few per endpoint)
TRACE = os.environ.get("FUZZ_TRACE")  # set: print every request's status (to see the coverage)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode("ascii").rstrip("=")


HOSTILE = (
    "99999999999999999999",
    "-99999999999999999999",
    "2147483648",
    "-1",
    "0",
    "¹",
    "٣",
    "１２",
    "\x00",
    "1\x00",
    "x" * 10240,
    "9" * 10240,
    "2026-13-45",
    "9999-99-99",
    "0001-01-01",
    "9999-12-31",
    "２０２６-０１-０１",
    "2026-Q9",
    "1e309",
    "NaN",
    "-0.5",
    " ",
    "",
    "!!!",
    _b64("99999999999999999999:99999999999999999999"),
    _b64("9999-12-31T23:59:59+00:00|99999999999"),
    _b64("x|y"),
    "2026-03-01_99999999999",
    "%",
    "' OR '1'='1",
    "<script>x</script>",
    "\u202e\ufeff",
    "😀" * 50,
    "../../etc/passwd",
    "//evil.example",
)

# The values that broke pages before: each role sends two of them in every query name at once.
KEY_VALUES = ("99999999999999999999", "9" * 10240, "¹", "１２", "-1", "2026-13-45", "1\x00")

# Every query-string name the views read, and then some.
QUERY_NAMES = (
    "before",
    "after",
    "cursor",
    "limit",
    "offset",
    "page",
    "status",
    "township",
    "industry",
    "size",
    "need",
    "q",
    "from",
    "to",
    "date_from",
    "date_to",
    "period",
    "advisor",
    "institution",
    "bureau",
    "org",
    "role",
    "mode",
    "stage",
    "kind",
    "type",
    "user",
    "table",
    "action",
    "record",
    "actor",
    "id",
    "referral_id",
    "job",
    "lang",
    "next",
    "amount_min",
    "amount_max",
    "first_loan",
    "unsecured",
)

HOSTILE_JSON = (
    None,
    True,
    -1,
    0,
    10**30,
    -(10**30),
    1.5,
    1e308,
    "99999999999999999999",
    "¹",
    "１２",
    "\x00",
    "x" * 10240,
    "2026-13-45",
    "9999-12-31",
    "",
    [],
    {},
    [[[]]],
    {"a": {"b": [1, "x"]}},
    ["x", 1, None],
)

RAW_BODIES = (
    b"",
    b"{",
    b"\xff\xfe\x00",
    b"null",
    b"[]",
    b'"x"',
    b"1e999999",
    b"1" * 5000,
    b"[" * 50_000 + b"]" * 50_000,
    b'{"items": "x"}',
    b'{"items": [null, 1, "x", [], {}]}',
    b'{"items": [{"credit_code": NaN, "name": Infinity}]}',
)


# ------------------------------------------------------------------ forms on the pages
class _Forms(HTMLParser):
    """The forms of a page: (method, action, [(name, value)]) with the values a browser would
    send (hidden fields, textarea text, the selected option or else the first real one, checked
    boxes or else the first of each group, the first named submit button), so that a form sent
    back with one field spoiled passes everything else and reaches the code behind it."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[tuple[str, str, list]] = []
        self._fields: list | None = None
        self._unchecked: dict[str, str] = {}
        self._button = False
        self._select: list | None = None
        self._textarea: list | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._fields, self._unchecked, self._button = [], {}, False
            self.forms.append(
                ((a.get("method") or "get").lower(), a.get("action", ""), self._fields)
            )
            return
        if tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._select[1] is None and value:
                self._select[1] = value
            if "selected" in a:
                self._select[2] = value
            return
        if self._fields is None or not a.get("name"):
            return
        name = a["name"]
        kind = (a.get("type") or ("submit" if tag == "button" else "text")).lower()
        if tag in ("input", "button") and kind in ("submit", "image"):
            if not self._button:
                self._fields.append((name, a.get("value", "")))
                self._button = True
        elif tag != "input" or kind in ("button", "reset"):
            if tag == "select":
                self._select = [name, None, None]
            elif tag == "textarea":
                self._textarea = [name, ""]
        elif kind in ("checkbox", "radio") and "checked" not in a:
            self._unchecked.setdefault(name, a.get("value", "on"))
        else:
            self._fields.append((name, "\0file" if kind == "file" else a.get("value", "")))

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form" and self._fields is not None:
            present = {name for name, _v in self._fields}
            self._fields += [(n, v) for n, v in self._unchecked.items() if n not in present]
            self._fields = None
        elif tag == "select" and self._select is not None:
            name, first, chosen = self._select
            if self._fields is not None:
                self._fields.append((name, chosen if chosen is not None else first or ""))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            if self._fields is not None:
                self._fields.append(tuple(self._textarea))
            self._textarea = None


def _forms(html: str) -> list[tuple[str, str, list]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def _declared_field_names() -> list[str]:
    """Every field name a FlaskForm of the app declares (for posts whose form no page shows)."""
    from flask_wtf import FlaskForm
    from wtforms.fields.core import UnboundField

    names, stack = set(), [FlaskForm]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        names.update(k for k in dir(cls) if isinstance(getattr(cls, k, None), UnboundField))
    names.discard("csrf_token")
    return sorted(names)


# ------------------------------------------------------------------ the run
def _endpoints(app):
    rules = [
        r
        for r in app.url_map.iter_rules()
        if r.endpoint != "static" and not r.endpoint.endswith(".static")
    ]
    return sorted(rules, key=lambda r: (r.rule, r.endpoint))


def _allowed(app, endpoint: str, role: str) -> bool:
    """Whether ``role`` may use ``endpoint`` by the hand-kept access table (not the gate's own
    rules: the access matrix checks the gate against the same table)."""
    assert endpoint in ACCESS, f"{endpoint}: add it to tests/access_table.py"
    return may(endpoint, role)


@pytest.fixture
def fuzz_world(world):
    """The matrix world with its assessment period compiled and an adjustment in it, so the
    assessment pages and their forms exist too."""
    from advisors.audit import acting_as
    from advisors.errors import DomainError
    from advisors.services import assessments

    office, period = world["users"]["finance_office"], world["args"]["period"]
    try:
        with acting_as(office):
            assessments.compile_period(period, office)
            db.session.commit()
            assessments.add_adjustment(office, period, world["users"]["advisor"].id, "1", "x")
            db.session.commit()
    except DomainError:  # e.g. a period not over yet on the day the test runs
        db.session.rollback()
    return world


def _seeds(world) -> dict[str, dict[str, str]]:
    """Values for the empty required fields of the forms that create something, so that a form
    with one field spoiled is otherwise valid and reaches the service and the database."""
    code = [make_code("9", "1", "330100", f"{90_000_000 + i:08d}") for i in range(2)]
    return {
        "firms.new": {"credit_code": code[0], "name": "模糊测试企业有限公司", "employees": "5"},
        "intake.new": {"credit_code": code[1], "name": "模糊测试二有限公司", "amount_wan": "50"},
        "policies.new": {"code": "fuzz_tool", "name": "模糊测试工具"},
        "admin.org_new": {"code": "FZ1", "name": "模糊测试机构"},
        "admin.user_new": {
            "username": "fuzz_user",
            "display_name": "模糊",
            "password": FUZZ_PASSWORD,
            "confirm": FUZZ_PASSWORD,
        },
        "admin.user_password": {"new_password": FUZZ_PASSWORD, "confirm": FUZZ_PASSWORD},
        "townships.create": {"code": "FZ01", "name": "模糊镇"},
        "visits.edit_application": {"details-institution": "K1"},
        "visits.new": {"summary": "走访", "guidance_topic": "融资", "guidance_advice": "建议"},
        "visits.edit": {"reason": "更正", "information_note": "信息"},
        "referrals.reject": {"reason": "不符合条件"},
    }


# Pages whose forms no route without a query string shows.
EXTRA_PAGES = ("/visits/new?referral_id={referral_id}",)


def _api_bodies(world) -> dict[str, dict]:
    """Well-formed bodies of the API's posts, to be spoiled one field at a time."""
    today = date.today().isoformat()
    advisor = world["users"]["advisor"].username
    return {
        "api.submit_referrals": {
            "items": [
                {
                    "credit_code": "91330100MA2B0000X1",
                    "name": "模糊测试企业有限公司",
                    "industry": "retail",
                    "township": "矩阵镇",
                    "employees": 5,
                    "revenue_wan": "100",
                    "assets_wan": "100",
                    "contact_name": "张三",
                    "contact_phone": "13800000000",
                    "needs": ["financing", "policy"],
                    "amount_wan": "50",
                    "purpose": "周转",
                    "note": "",
                }
            ]
        },
        "api.assign_referral": {"advisor": advisor, "note": "", "version": 1},
        "api.log_visit": {
            "referral_id": world["args"]["referral_id"],
            "visited_on": today,
            "mode": "onsite",
            "roles": ["policy", "guidance", "financing", "information"],
            "summary": "走访",
            "policies": ["matrix_tool"],
            "policy_note": "",
            "guidance_topic": "融资",
            "guidance_advice": "建议",
            "financing": {
                "stage": "applied",
                "amount_wan": "10",
                "institution": "K1",
                "first_loan": True,
                "unsecured": False,
                "application_id": world["args"]["application_id"],
                "term_months": 12,
            },
            "information": {"note": "x", "risk_signal": True, "risk_type": "fraud"},
            "next_visit_on": today,
        },
        "api.compile_assessment": {"period": "2026-10"},
        "api.publish_assessment": {"version": 1, "doc_number": "1"},
        "api.adjust_assessment": {"advisor": advisor, "points": "1", "reason": "x"},
        "api.withdraw_adjustment": {"reason": "x"},
    }


def _leaves(body) -> list[tuple]:
    """The paths (tuples of keys and indexes) of every value in a JSON body."""
    paths, stack = [], [((), body)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict | list):
            continue
        for k in node.keys() if isinstance(node, dict) else range(len(node)):
            paths.append((*path, k))
            stack.append(((*path, k), node[k]))
    return sorted(paths, key=str)


def _with(body, path: tuple, value):
    """A deep copy of ``body`` with the value at ``path`` replaced."""
    body = json.loads(json.dumps(body))
    target = body
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    return body


def _at(body, path: tuple):
    for k in path:
        body = body[k]
    return body


def _spoil(rng: random.Random, body, times: int):
    """A copy of ``body`` with ``times`` values (anywhere in it) made hostile."""
    for _ in range(times):
        paths = _leaves(body)
        if not paths:
            return rng.choice(HOSTILE_JSON)
        body = _with(body, rng.choice(paths), rng.choice(HOSTILE_JSON))
    return body


class _Run:
    """One role's run: sign in, GET every page (keeping the forms they show), call the API,
    then POST every form. ``problems`` lists each answer >= 500 with the logged exception."""

    def __init__(self, app, world, role):
        self.app, self.world, self.role = app, world, role
        self.rng = random.Random(f"{SEED}:{role}")
        self.web = app.test_client()
        self.problems: list[str] = []
        self.sent = 0
        self.errors: list[str] = []
        self.post_forms: dict[str, dict[tuple, list]] = {}  # endpoint -> (page, action) -> fields
        self.field_names = _declared_field_names()
        self.seeds = _seeds(world)
        self.adapter = app.url_map.bind("localhost")
        self.csrf = ""
        self.turn = 3 * (*ROLES, ANON).index(role)  # where the key values start, per role

    # -- plumbing
    def send(self, client, method, url, label, **kw):
        self.sent += 1
        del self.errors[:]
        try:
            response = client.open(url, method=method, **kw)
        except Exception as exc:  # an exception escaping the app is a finding too
            self.problems.append(f"{self.role} {method} {url[:150]} [{label}]: raised {exc!r:.200}")
            return None
        if TRACE:
            print(self.role, response.status_code, method, url[:100], label[:80])
        if response.status_code >= 500:
            why = self.errors[-1] if self.errors else ""
            self.problems.append(
                f"{self.role} {method} {url[:150]} [{label}]: {response.status_code} {why}"
            )
        return response

    def url(self, rule, **override) -> str:
        args = dict(self.world["args"])
        args["token_id"] = self.world["own_token_id"].get(self.role) or 999_999
        values = {name: args[name] for name in rule.arguments}
        if rule.endpoint == "main.set_language":
            values["code"] = "en"
        values.update(override)
        with self.app.test_request_context():
            return url_for(rule.endpoint, **values)

    def query_sets(self, own=()) -> list[list[tuple[str, str]]]:
        """Every query name at once: twice with one value for all (two of KEY_VALUES, another
        pair for each role) and once with a different value for each name (and one repeated)."""
        ri = (*ROLES, ANON).index(self.role)
        names = QUERY_NAMES + tuple(n for n in own if n not in QUERY_NAMES)
        sets = []
        for j in range(2):
            value = KEY_VALUES[(2 * ri + j) % len(KEY_VALUES)]
            sets.append([(name, value) for name in names])
        shift = 11 * ri
        mixed = [(n, HOSTILE[(i + shift) % len(HOSTILE)]) for i, n in enumerate(names)]
        mixed.append((self.rng.choice(names), self.rng.choice(HOSTILE)))
        return [*sets, mixed]

    def hostile_query(self, names) -> list[tuple[str, str]]:
        pairs = [(name, self.rng.choice(HOSTILE)) for name in names]
        if pairs and self.rng.random() < 0.5:  # a repeated key: ?x=1&x=2
            pairs.append((pairs[0][0], self.rng.choice(HOSTILE)))
        return pairs

    def harvest(self, page_url: str, html: str, only: str | None = None) -> None:
        """Keep the page's post forms (at most two per endpoint); ``only``: refresh that
        endpoint's form from this page (a new version number after a save)."""
        for method, action, fields in _forms(html):
            if method != "post":
                continue
            target = urlsplit(action or page_url).path
            try:
                endpoint, _args = self.adapter.match(target, method="POST")
            except HTTPException:
                continue
            if only is not None and endpoint != only:
                continue
            known = self.post_forms.setdefault(endpoint, {})
            key = (page_url, action or page_url)
            if key in known or len(known) < 2:
                seeds = self.seeds.get(endpoint, {})
                known[key] = [(n, v if v.strip() else seeds.get(n, v)) for n, v in fields]

    # -- phases
    def sign_in(self):
        if self.role != ANON:
            assert (
                AuthActions(self.web).login(self.world["users"][self.role].username).status_code
                == 302
            )
            with self.web.session_transaction() as s:
                s["lang"] = "en"
        self.csrf = csrf_from(self.web.get("/login" if self.role == ANON else "/").get_data(True))
        for page in EXTRA_PAGES:
            url = page.format(**self.world["args"])
            response = self.send(self.web, "GET", url, "extra page")
            if response is not None and response.mimetype == "text/html":
                self.harvest(url, response.get_data(as_text=True))

    def get_pages(self, rules):
        for rule in rules:
            if "GET" not in rule.methods or rule.rule.startswith("/api/"):
                continue
            allowed = _allowed(self.app, rule.endpoint, self.role)
            url = self.url(rule)
            if not allowed:  # the gate answers before any value is read: one call is enough
                self.send(
                    self.web, "GET", url, "refused", query_string=self.hostile_query(QUERY_NAMES)
                )
                continue
            page = self.send(self.web, "GET", url, "plain")
            own = []
            if page is not None and page.mimetype == "text/html":
                html = page.get_data(as_text=True)
                self.harvest(url, html)
                for method, _action, fields in _forms(html):
                    if method == "get":
                        own += [name for name, _v in fields]
            own = sorted(set(own))
            # every name at once, then the page's own filter fields one or two at a time
            for query in self.query_sets(own):
                self.send(self.web, "GET", url, "query", query_string=query)
            for _ in range(2 if own else 0):
                names = self.rng.sample(own, min(2, len(own)))
                self.send(self.web, "GET", url, "own", query_string=self.hostile_query(names))
            self.path_values(rule, self.web, "GET")

    def path_values(self, rule, client, method, headers=None, data=None, ids=True):
        """Hostile values in the path: any string argument, and (``ids``) an id no record can
        have (the route converter refuses it, whatever the method)."""
        for name in sorted(rule.arguments):
            is_int = type(rule._converters[name]).__name__ == "BoundedInt"
            if is_int and not ids:
                continue
            values = ["99999999999999999999", "١٢"] if is_int else self.rng.sample(HOSTILE, 2)
            for value in values:
                if value == "":
                    continue
                marker = 987654321 if is_int else "PLACEHOLDER"
                url = self.url(rule, **{name: marker})
                url = url.replace(str(marker), quote(value, safe=""))
                self.send(client, method, url, f"path {name}", headers=headers or {}, data=data)

    def api(self, rules):
        token = self.world["tokens"].get(self.role)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        bodies = _api_bodies(self.world)
        for rule in rules:
            if not rule.rule.startswith("/api/"):
                continue
            client = self.app.test_client()
            allowed = _allowed(self.app, rule.endpoint, self.role) and self.role != ANON
            url = self.url(rule)
            if "GET" in rule.methods:
                queries = self.query_sets()
                for query in queries[1:3] if allowed else queries[:1]:
                    self.send(client, "GET", url, "api query", headers=headers, query_string=query)
                if allowed:
                    self.path_values(rule, client, "GET", headers)
                continue
            base = bodies.get(rule.endpoint, {"id": 1, "name": "x"})
            variants = [_spoil(self.rng, base, 1), _spoil(self.rng, base, 3)]
            if allowed:
                variants += [_spoil(self.rng, base, 1), self.rng.choice(HOSTILE_JSON)]
            for body in variants:
                self.send(client, "POST", url, "api json", headers=headers, json=body)
            if allowed:
                for raw in self.rng.sample(RAW_BODIES, 2):
                    self.send(
                        client,
                        "POST",
                        url,
                        f"api raw {raw[:12]!r}",
                        headers={**headers, "Content-Type": "application/json"},
                        data=raw,
                    )
                self.path_values(rule, client, "POST", headers, ids=False)
            if allowed and self.role == self.sweeper(rule.endpoint):
                # each text value of the body in turn: a NUL byte, then the next key value
                texts = [p for p in _leaves(base) if isinstance(_at(base, p), str)]
                for path in texts[:16]:
                    body = _with(base, path, "x\x00y")
                    self.send(client, "POST", url, f"api nul {path}", headers=headers, json=body)
                for path in _leaves(base)[:16]:
                    self.turn += 1
                    body = _with(base, path, KEY_VALUES[self.turn % len(KEY_VALUES)])
                    self.send(client, "POST", url, f"api key {path}", headers=headers, json=body)

    def posts(self, rules):
        for rule in rules:
            if "POST" not in rule.methods or rule.rule.startswith("/api/"):
                continue
            if rule.endpoint == "auth.logout":
                continue  # it would end the session the rest of the run uses
            allowed = _allowed(self.app, rule.endpoint, self.role)
            if not self.post_forms.get(rule.endpoint):  # no page shows it: the app's field names
                names = self.rng.sample(self.field_names, min(6, len(self.field_names)))
                fields = [(n, "1") for n in names] + [("ids", "1"), ("version", "1")]
                self.post_forms[rule.endpoint] = {(None, self.url(rule)): fields}
            if allowed:
                # the form as the page gives it with one field spoiled (the key values in turn),
                # then three fields at random
                for k in range(2):
                    self.post_form(rule.endpoint, k, lambda f: self.spoil(f, 1, key=True))
                self.post_form(rule.endpoint, 0, lambda f: self.spoil(f, 3))
                if self.role == self.sweeper(rule.endpoint):
                    self.sweep(rule.endpoint)
            self.post_form(rule.endpoint, -1, lambda f: self.spoil(f, 1), token=False)
            if allowed:
                self.path_values(rule, self.web, "POST", data={"csrf_token": self.csrf}, ids=False)

    def sweeper(self, endpoint: str) -> str:
        """The one role that sweeps an endpoint's form field by field (one of those allowed,
        the same every run)."""
        allowed = [r for r in (*ROLES, ANON) if _allowed(self.app, endpoint, r)]
        return allowed[zlib.crc32(endpoint.encode()) % len(allowed)]

    def sweep(self, endpoint: str) -> None:
        """A NUL byte (PostgreSQL refuses it in text) in each field of the form in turn, the
        rest of the form valid. (The key values go round the fields in :meth:`posts`.)"""
        (_page, _action), fields = next(iter(self.post_forms[endpoint].items()))
        names = sorted({n for n, v in fields if n != "csrf_token" and v != "\0file"})
        for name in names[:10]:
            self.post_form(endpoint, 0, lambda f, n=name: self.spoil(f, 0, {n: "1\x00"}))

    def post_form(self, endpoint: str, k: int, make, token: bool = True, again=True) -> None:
        """Send the endpoint's ``k``-th known form, made hostile by ``make``. After a save of a
        versioned record the form is taken again from its page (the version has moved on);
        after a 409 (another post changed the record since the page was read) too, and sent
        once more."""
        forms = list(self.post_forms[endpoint].items())
        (page, action), fields = forms[k % len(forms)]
        data = make(fields)
        if token:
            data.setlist("csrf_token", [self.csrf])
        else:
            data.poplist("csrf_token")
        label = f"form {sorted(set(data.keys()))[:8]}" if token else "form, no token"
        response = self.send(
            self.web, "POST", action, label, data=data, content_type="multipart/form-data"
        )
        if not token or not page or response is None:
            return
        versioned = any(name.endswith("version") for name, _v in fields)
        if (response.status_code < 400 and versioned) or response.status_code == 409:
            fresh = self.send(self.web, "GET", page, "form page again")
            if fresh is not None and fresh.mimetype == "text/html":
                self.harvest(page, fresh.get_data(as_text=True), only=endpoint)
            if response.status_code == 409 and again:
                self.post_form(endpoint, k, make, again=False)

    def spoil(self, fields, times: int, key: bool = False, values=None) -> MultiDict:
        """The form's fields with ``times`` of them made hostile: with ``key`` the next of
        KEY_VALUES in the next field (in turn, so each value meets each field), else at
        random, sometimes twice in the same field; ``values`` sets given fields."""
        data = MultiDict()
        for name, value in fields:
            if value == "\0file":
                data.add(name, (io.BytesIO(b"PK\x03\x04 not really a workbook"), "x.xlsx"))
            else:
                data.add(name, value)
        for name, value in (values or {}).items():
            data.setlist(name, [value])
        names = sorted({n for n, _v in fields if n != "csrf_token"}) or ["x"]
        if key:
            self.turn += 1
            name = names[(self.turn // len(KEY_VALUES) + self.turn) % len(names)]
            data.setlist(name, [KEY_VALUES[self.turn % len(KEY_VALUES)]])
            return data
        for name in self.rng.sample(names, min(times, len(names))):
            values = [self.rng.choice(HOSTILE)]
            if self.rng.random() < 0.3:
                values.append(self.rng.choice(HOSTILE))  # the field twice
            data.setlist(name, values)
        return data


class _Capture(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record):
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else ""
            self.sink.append(f"{type(exc).__name__}: {str(exc)[:120]} at {where}")
        else:
            self.sink.append(record.getMessage()[:200])


@pytest.mark.parametrize("role", (*ROLES, ANON))
def test_no_input_is_a_server_error(app, fuzz_world, role):
    run = _Run(app, fuzz_world, role)
    handler = _Capture(run.errors)
    app.logger.addHandler(handler)
    try:
        run.sign_in()
        rules = _endpoints(app)
        run.get_pages(rules)
        run.api(rules)
        run.posts(rules)
    finally:
        app.logger.removeHandler(handler)
    assert run.sent <= MAX_REQUESTS_PER_ROLE, run.sent
    assert not run.problems, f"{len(run.problems)} server errors:\n" + "\n".join(run.problems)


def test_the_inputs_that_broke_pages_before(app, client, make, login):
    login(make.user("admin"))
    for url in (
        "/notifications/?before=99999999999999999999",
        "/referrals/?status=&township=¹",
        "/referrals/?status=&township=" + "9" * 5000,
        "/firms/?township=١٢&after=１２",
        "/audit/?before=" + "9" * 5000,
        "/jobs/?before=¹&limit=" + "9" * 5000,
        "/admin/users?org=٣&after=99999999999999999999",
    ):
        assert client.get(url).status_code < 500, url
    for url in ("/firms/99999999999999999999", "/firms/2147483648", "/firms/١٢", "/firms/0"):
        assert client.get(url).status_code == 404, url


def test_request_value_parsers():
    from advisors.params import MAX_ID, parse_date, parse_day, parse_id, parse_int, parse_limit

    assert parse_id("42") == 42 and parse_id(" 42 ") == 42 and parse_id(7) == 7
    assert parse_id(str(MAX_ID)) == MAX_ID and parse_id("0000000001") == 1
    for bad in (
        None,
        "",
        "0",
        "-1",
        "+1",
        "1e3",
        "1.0",
        "¹",
        "٣",
        "１２",
        "1\x00",
        True,
        0,
        str(MAX_ID + 1),
        "9" * 10240,
        MAX_ID + 1,
        [],
        "1_000",
    ):
        assert parse_id(bad) is None, repr(bad)[:30]
    assert parse_int("-5", -10, 10) == -5 and parse_int("-5", 0, 10) is None
    assert parse_int("11", 0, 10) is None and parse_int("10", 0, 10) == 10
    assert parse_limit(None) == 50 and parse_limit("500") == 200 and parse_limit("7") == 7
    for bad in ("0", "-1", "abc", "¹", "1" * 7, "9" * 10240):
        assert parse_limit(bad) == 50, bad[:20]
    assert parse_date("2026-02-28") == date(2026, 2, 28)
    for bad in (
        "2026-13-45",
        "9999-99-99",
        "0001-01-01",
        "9999-12-31",
        "２０２６-０１-０１",
        "20260101",
        "2026-W01-1",
        "",
        None,
        20260101,
    ):
        assert parse_date(bad) is None, bad
    assert parse_day("", "From") == (None, None)
    assert parse_day("2026-02-30", "From")[1] == "From is not a real date."
