"""FhirSessionPool / FhirServer against a real loopback HTTP server (pytest-httpserver).

One pooled session per server base, the token of each hook request sent only with that
request's calls, explicit limits (size, time, pages), no redirects, no links outside the base,
and error reasons that never carry the token or the query string (it holds patient ids).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cds_service.config import FhirConfig, load_config
from cds_service.pipeline.fhir_client import FhirError, FhirServer, FhirSessionPool
from tests.support.fhir_server import HeldHandler, TricklingServer
from tests.support.live_server import free_port

TOKEN = "secret-token-Zq81"
PATIENT_ID = "secret-patient-4711"
FHIR_JSON = "application/fhir+json"


def fhir_config(**fhir: Any) -> FhirConfig:
    return load_config(None, overrides={"fhir": fhir} if fhir else None).fhir


@pytest.fixture
def pool() -> Iterator[FhirSessionPool]:
    sessions = FhirSessionPool(fhir_config())
    yield sessions
    sessions.close()


@pytest.fixture
def make_pool() -> Iterator[Callable[..., FhirSessionPool]]:
    made: list[FhirSessionPool] = []

    def factory(**fhir: Any) -> FhirSessionPool:
        sessions = FhirSessionPool(fhir_config(**fhir))
        made.append(sessions)
        return sessions

    yield factory
    for sessions in made:
        sessions.close()


def base(server: HTTPServer) -> str:
    return server.url_for("/fhir")


def bundle(*ids: str, next_url: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Condition", "id": i}} for i in ids],
    }
    if next_url:
        body["link"] = [{"relation": "self", "url": "ignored"},
                        {"relation": "next", "url": next_url}]
    return body


def serve(server: HTTPServer, path: str, body: Any, status: int = 200,
          query_string: str | None = None) -> None:
    server.expect_request(path, query_string=query_string).respond_with_json(
        body, status=status, content_type=FHIR_JSON)






# --- sessions and tokens ----------------------------------------------------------------------


def test_same_base_url_reuses_one_session(pool):
    first = pool.connect("http://fhir.example.org/fhir", "token-a")
    second = pool.connect("http://fhir.example.org/fhir/", "token-b")
    other = pool.connect("http://other.example.org/fhir", "token-a")

    assert first.session is second.session
    assert first.session is pool.session_for("http://fhir.example.org/fhir")
    assert other.session is not first.session
    assert first.base_url == second.base_url == "http://fhir.example.org/fhir"


def test_session_does_not_carry_any_token(pool):
    server = pool.connect("http://fhir.example.org/fhir", TOKEN)

    assert "Authorization" not in server.session.headers
    assert server.session.headers["Accept"] == FHIR_JSON
    assert server.session.trust_env is False


def test_each_server_sends_only_its_own_token(pool, httpserver):
    serve(httpserver, "/fhir/Patient/p1", {"resourceType": "Patient", "id": "p1"})
    alice = pool.connect(base(httpserver), "token-alice")
    bob = pool.connect(base(httpserver), "token-bob")
    anonymous = pool.connect(base(httpserver), None)
    assert alice.session is bob.session is anonymous.session

    for server in (alice, bob, anonymous, alice):
        assert server.read("Patient/p1") == {"resourceType": "Patient", "id": "p1"}

    headers = [req.headers for req, _ in httpserver.log]
    assert [h.get("Authorization") for h in headers] == [
        "Bearer token-alice", "Bearer token-bob", None, "Bearer token-alice"]
    assert "Authorization" not in headers[2]
    assert {h.get("Accept") for h in headers} == {FHIR_JSON}


def test_empty_token_sends_no_authorization_header(pool, httpserver):
    serve(httpserver, "/fhir/Patient/p1", {"resourceType": "Patient", "id": "p1"})

    pool.connect(base(httpserver), "").read("Patient/p1")

    assert "Authorization" not in httpserver.log[0][0].headers


def test_cookies_set_for_one_hook_request_are_not_sent_with_another(pool, httpserver):
    httpserver.expect_request("/fhir/Patient/p1").respond_with_response(Response(
        json.dumps({"resourceType": "Patient", "id": "p1"}), content_type=FHIR_JSON,
        headers={"Set-Cookie": "JSESSIONID=alice-session; Path=/"}))

    pool.connect(base(httpserver), "token-alice").read("Patient/p1")
    pool.connect(base(httpserver), None).read("Patient/p1")

    assert [req.headers.get("Cookie") for req, _ in httpserver.log] == [None, None]


def test_close_forgets_sessions(make_pool):
    sessions = make_pool()
    first = sessions.session_for("http://fhir.example.org/fhir")
    sessions.close()

    assert sessions.session_for("http://fhir.example.org/fhir") is not first


# --- read -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_read_returns_none_when_the_resource_does_not_exist(pool, httpserver, status):
    serve(httpserver, "/fhir/Patient/gone",
          {"resourceType": "OperationOutcome", "issue": [{"severity": "error",
                                                           "code": "not-found"}]},
          status=status)

    assert pool.connect(base(httpserver), TOKEN).read("Patient/gone") is None
    assert [req.path for req, _ in httpserver.log] == ["/fhir/Patient/gone"]


@pytest.mark.parametrize("status", [400, 401, 403, 500, 503])
def test_read_raises_for_other_error_statuses(pool, httpserver, status):
    serve(httpserver, "/fhir/Patient/p1", {"resourceType": "OperationOutcome"}, status=status)

    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), TOKEN).read("Patient/p1")

    assert caught.value.status == status


@pytest.mark.parametrize(
    "body", [{"resourceType": "OperationOutcome", "issue": []}, {"id": "p1"}, ["Patient"]],
    ids=["operation-outcome", "no-resource-type", "json-list"])
def test_read_raises_when_the_answer_is_not_a_resource(pool, httpserver, body):
    serve(httpserver, "/fhir/Patient/p1", body)

    with pytest.raises(FhirError):
        pool.connect(base(httpserver), TOKEN).read("Patient/p1")


# --- search and paging ------------------------------------------------------------------------


def test_search_returns_every_page_following_next_links(pool, httpserver):
    serve(httpserver, "/fhir/Condition",
          bundle("c1", next_url=base(httpserver) + "?_getpages=x&page=2"))
    serve(httpserver, "/fhir", bundle("c2"), query_string="_getpages=x&page=2")

    pages = pool.connect(base(httpserver), TOKEN).search(f"Condition?patient={PATIENT_ID}")

    assert [p["entry"][0]["resource"]["id"] for p in pages] == ["c1", "c2"]
    assert [(req.path, req.query_string.decode()) for req, _ in httpserver.log] == [
        ("/fhir/Condition", f"patient={PATIENT_ID}"), ("/fhir", "_getpages=x&page=2")]
    assert {req.headers.get("Authorization") for req, _ in httpserver.log} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "body",
    [{"resourceType": "Condition", "id": "c1"}, {"resourceType": "OperationOutcome"},
     [{"resourceType": "Bundle"}], "Bundle"],
    ids=["resource", "operation-outcome", "json-list", "json-string"])
def test_search_raises_when_the_answer_is_not_a_bundle(pool, httpserver, body):
    serve(httpserver, "/fhir/Condition", body)

    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), TOKEN).search("Condition?patient=p1")

    assert "Bundle" in caught.value.reason


@pytest.mark.parametrize("status", [404, 410, 401, 500])
def test_search_raises_on_error_status(pool, httpserver, status):
    serve(httpserver, "/fhir/Condition", {"resourceType": "OperationOutcome"}, status=status)

    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), TOKEN).search("Condition?patient=p1")

    assert caught.value.status == status


def test_follow_stops_at_max_pages_in_total(make_pool, httpserver):
    server = make_pool(max_pages=3).connect(base(httpserver), TOKEN)
    for number in (2, 3, 4):
        serve(httpserver, "/fhir", bundle(f"c{number}", next_url=base(httpserver) +
                                          f"?page={number + 1}"), query_string=f"page={number}")
    first = bundle("c1", next_url=base(httpserver) + "?page=2")

    with pytest.raises(FhirError) as caught:
        server.follow(first)

    assert "3 pages" in caught.value.reason
    assert [req.query_string.decode() for req, _ in httpserver.log] == ["page=2", "page=3"]


def test_follow_stops_at_a_repeated_next_link(pool, httpserver):
    loop = base(httpserver) + "?page=2"
    serve(httpserver, "/fhir", bundle("c2", next_url=loop), query_string="page=2")

    pages = pool.connect(base(httpserver), TOKEN).follow(bundle("c1", next_url=loop))

    assert len(pages) == 1
    assert len(httpserver.log) == 1


@pytest.mark.parametrize(
    "link",
    [
        "http://127.0.0.2:{port}/fhir?page=2",  # another host
        "http://localhost:{other}/fhir?page=2",  # another port
        "https://localhost:{port}/fhir?page=2",  # another scheme
        "http://localhost:{port}/fhir-other?page=2",  # a sibling path sharing the prefix
        "http://localhost:{port}/?page=2",  # above the base
        "http://localhost:{port}@127.0.0.2:{port}/fhir?page=2",  # userinfo trick
        "Condition?page=2",  # relative
    ],
)
def test_next_link_outside_the_base_is_refused_without_a_request(pool, httpserver, link):
    url = link.format(port=httpserver.port, other=free_port())
    httpserver.expect_request("/fhir-other").respond_with_json(bundle())
    httpserver.expect_request("/").respond_with_json(bundle())

    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), TOKEN).follow(bundle("c1", next_url=url))

    assert "outside" in caught.value.reason
    assert httpserver.log == []


@pytest.mark.parametrize(
    "path", ["/fhir/../secret/x", "/fhir/./../secret/x", "/fhir/a/../../secret/x",
             "/fhir/../fhir-secret/x"])
def test_next_link_leaving_the_base_by_dot_segments_is_refused(pool, httpserver, path):
    serve(httpserver, "/secret/x", bundle("leaked"))
    serve(httpserver, "/fhir-secret/x", bundle("leaked"))
    link = httpserver.url_for(path)

    with pytest.raises(FhirError):
        pool.connect(base(httpserver), TOKEN).follow(bundle("c1", next_url=link))

    assert httpserver.log == []


# --- redirects, size, time, transport ---------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_not_followed(pool, httpserver, status):
    httpserver.expect_request("/fhir/Patient/p1").respond_with_data(
        "", status=status, headers={"Location": httpserver.url_for("/fhir/Patient/moved")})
    serve(httpserver, "/fhir/Patient/moved", {"resourceType": "Patient", "id": "moved"})

    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), TOKEN).read("Patient/p1")

    assert caught.value.status == status
    assert [req.path for req, _ in httpserver.log] == ["/fhir/Patient/p1"]


def test_response_larger_than_max_response_bytes_raises(make_pool, httpserver):
    big = json.dumps(bundle(*(f"condition-{i:05d}" for i in range(200))))
    httpserver.expect_request("/fhir/Condition").respond_with_data(big, content_type=FHIR_JSON)
    size = len(big)
    assert size > 2000

    with pytest.raises(FhirError) as caught:
        make_pool(max_response_bytes=2000).connect(base(httpserver), TOKEN).search("Condition")
    assert "larger than 2000 bytes" in caught.value.reason

    pages = make_pool(max_response_bytes=size).connect(base(httpserver), TOKEN).search(
        "Condition")
    assert len(pages[0]["entry"]) == 200


def test_streamed_response_without_content_length_is_limited_too(make_pool, httpserver):
    def endless(_: Request) -> Response:
        chunks = (b'{"resourceType":"Bundle","entry":[' + b" " * 1000 for _ in range(50))
        return Response(chunks, content_type=FHIR_JSON)

    httpserver.expect_request("/fhir/Condition").respond_with_handler(endless)

    with pytest.raises(FhirError) as caught:
        make_pool(max_response_bytes=10_000).connect(base(httpserver), TOKEN).search("Condition")
    assert "larger than" in caught.value.reason


def test_slow_server_raises_after_the_read_timeout(make_pool, httpserver):
    slow = HeldHandler(httpserver, bundle())
    httpserver.expect_request("/fhir/Condition").respond_with_handler(slow)
    server = make_pool(read_timeout_seconds=0.3).connect(base(httpserver), TOKEN)
    try:
        with pytest.raises(FhirError) as caught:
            server.search("Condition")
    finally:
        slow.finish()
    assert "in time" in caught.value.reason


def test_non_json_answer_raises(pool, httpserver):
    httpserver.expect_request("/fhir/Patient/p1").respond_with_data(
        "<html>login</html>", content_type="text/html")

    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), TOKEN).read("Patient/p1")
    assert caught.value.status == 200


def test_unreachable_server_raises(pool):
    with pytest.raises(FhirError) as caught:
        pool.connect(f"http://127.0.0.1:{free_port()}/fhir", TOKEN).read("Patient/p1")
    assert "could not be reached" in caught.value.reason


# --- error text -------------------------------------------------------------------------------


def _provoke(name: str, httpserver: HTTPServer, make_pool: Callable[..., FhirSessionPool],
             slow: HeldHandler) -> None:
    query = f"Condition?patient={PATIENT_ID}&_token={TOKEN}"
    server: FhirServer = make_pool(read_timeout_seconds=0.3, max_response_bytes=500,
                                   max_pages=2).connect(base(httpserver), TOKEN)
    here = base(httpserver)
    page = f"?patient={PATIENT_ID}&access_token={TOKEN}"
    if name == "401":
        serve(httpserver, "/fhir/Condition", {"resourceType": "OperationOutcome"}, status=401)
        server.search(query)
    elif name == "500-read":
        serve(httpserver, f"/fhir/Patient/{PATIENT_ID}", {}, status=500)
        server.read(f"Patient/{PATIENT_ID}")
    elif name == "not-json":
        httpserver.expect_request("/fhir/Condition").respond_with_data(
            f"token {TOKEN} patient {PATIENT_ID}", content_type="text/plain")
        server.search(query)
    elif name == "not-bundle":
        serve(httpserver, "/fhir/Condition", {"resourceType": "Patient", "id": PATIENT_ID})
        server.search(query)
    elif name == "redirect":
        httpserver.expect_request("/fhir/Condition").respond_with_data(
            "", status=302, headers={"Location": f"http://127.0.0.2:1/x{page}"})
        server.search(query)
    elif name == "too-large":
        serve(httpserver, "/fhir/Condition", bundle(*[PATIENT_ID] * 50))
        server.search(query)
    elif name == "timeout":
        httpserver.expect_request("/fhir/Condition").respond_with_handler(slow)
        server.search(query)
    elif name == "unreachable":
        make_pool().connect(f"http://127.0.0.1:{free_port()}/fhir", TOKEN).search(query)
    elif name == "outside-base":
        server.follow(bundle("c1", next_url=f"http://127.0.0.2:1/fhir{page}"))
    elif name == "too-many-pages":
        serve(httpserver, "/fhir", bundle("c2", next_url=f"{here}?p=3&patient={PATIENT_ID}"))
        server.follow(bundle("c1", next_url=f"{here}{page}"))
    elif name == "bad-next-page":
        serve(httpserver, "/fhir", {}, status=403)
        server.follow(bundle("c1", next_url=f"{here}{page}"))
    else:  # pragma: no cover
        raise AssertionError(name)


@pytest.mark.parametrize(
    "name",
    ["401", "500-read", "not-json", "not-bundle", "redirect", "too-large", "timeout",
     "unreachable", "outside-base", "too-many-pages", "bad-next-page"],
)
def test_error_reason_never_contains_the_token_or_the_query(make_pool, httpserver, name):
    slow = HeldHandler(httpserver, bundle())
    try:
        with pytest.raises(FhirError) as caught:
            _provoke(name, httpserver, make_pool, slow)
    finally:
        slow.finish()

    error = caught.value
    for text in (error.reason, str(error), repr(error)):
        assert TOKEN not in text
        assert PATIENT_ID not in text
        assert "patient=" not in text
        assert "?" not in text


# --- budgets per request, across keys and pages --------------------------------------------------


def paging(server: HTTPServer, pages: int, ids_per_page: int, padding: int = 0) -> None:
    """A search of `pages` pages, each with `ids_per_page` Conditions (and `padding` bytes of
    text in each), linked by next."""
    for page in range(pages):
        next_url = server.url_for(f"/fhir/Condition/page{page + 1}") if page + 1 < pages else None
        body = bundle(*(f"c{page}-{i}" for i in range(ids_per_page)), next_url=next_url)
        if padding:
            body["entry"][0]["resource"]["note"] = [{"text": "x" * padding}]
        path = "/fhir/Condition" if page == 0 else f"/fhir/Condition/page{page}"
        serve(server, path, body)


def test_pages_past_the_requests_byte_budget_make_the_key_unobtainable(make_pool, httpserver):
    paging(httpserver, pages=8, ids_per_page=1, padding=300_000)
    server = make_pool(max_request_bytes=1_000_000).connect(base(httpserver), None)
    with pytest.raises(FhirError) as caught:
        server.search("Condition")
    assert caught.value.code == "too_large" and "budget" in caught.value.reason
    assert server.bytes_read > 1_000_000
    assert len(httpserver.log) < 8  # stopped at the budget, not after every page


def test_resources_past_the_requests_budget_make_the_key_unobtainable(make_pool, httpserver):
    paging(httpserver, pages=5, ids_per_page=30)
    sessions = make_pool(max_request_resources=50)
    with pytest.raises(FhirError) as caught:
        sessions.connect(base(httpserver), None).search("Condition")
    assert caught.value.code == "too_large" and "resource budget" in caught.value.reason
    assert len(httpserver.log) == 2  # 30, then 60 > 50


def test_the_budget_is_the_requests_not_one_keys(make_pool, httpserver):
    serve(httpserver, "/fhir/Condition", bundle(*(f"c{i}" for i in range(30))))
    serve(httpserver, "/fhir/MedicationRequest", bundle(*(f"m{i}" for i in range(30))))
    server = make_pool(max_request_resources=50).connect(base(httpserver), None)
    server.search("Condition")  # 30: within the budget
    with pytest.raises(FhirError):
        server.search("MedicationRequest")  # 60 for the request
    fresh = make_pool(max_request_resources=50).connect(base(httpserver), None)
    assert len(fresh.search("MedicationRequest")[0]["entry"]) == 30  # the next request: anew


def test_an_answer_nested_past_the_parsers_depth_is_not_json_not_a_500(pool, httpserver):
    deep = "[" * 100_000 + "]" * 100_000
    httpserver.expect_request("/fhir/Condition").respond_with_data(
        deep, content_type=FHIR_JSON)
    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), None).search("Condition")
    assert caught.value.code == "not_json"


@pytest.mark.parametrize("answer", [
    '{"resourceType": "Bundle", "total": NaN}',
    '{"resourceType": "Bundle", "total": Infinity}',
    '{"resourceType": "Bundle", "id": "\\ud800"}',  # a lone surrogate: not Unicode text
])
def test_an_answer_that_is_not_strict_json_is_not_json(pool, httpserver, answer):
    """Read as strictly as a request body: a value no JSON parser should accept never reaches
    a rule (the call then fails closed)."""
    httpserver.expect_request("/fhir/Condition").respond_with_data(answer, content_type=FHIR_JSON)
    with pytest.raises(FhirError) as caught:
        pool.connect(base(httpserver), None).search("Condition")
    assert caught.value.code == "not_json"


def test_an_answer_after_a_utf8_byte_order_mark_is_read(pool, httpserver):
    answer = b'\xef\xbb\xbf{"resourceType": "Bundle", "type": "searchset", "entry": []}'
    httpserver.expect_request("/fhir/Condition").respond_with_data(answer, content_type=FHIR_JSON)
    bundle = pool.connect(base(httpserver), None).search("Condition")[0]
    assert bundle["resourceType"] == "Bundle"


def test_a_server_trickling_its_answer_is_cut_at_the_requests_deadline(make_pool, httpserver):
    """requests' timeouts bound each read, not the response: a server that sends a byte every
    50 ms would never time out. The body reader stops at the request's deadline instead."""
    release = threading.Event()

    def trickle(_: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b'{"resourceType": "Bundle", "type": "searchset", "entry": ['
            for _ in range(200):  # 10 s at most, unless released
                if release.wait(0.05):
                    break
                yield b" "
            yield b"]}"

        return Response(body(), content_type=FHIR_JSON, direct_passthrough=True)

    httpserver.expect_request("/fhir/Condition").respond_with_handler(trickle)
    deadline = time.monotonic() + 0.5
    server = make_pool().connect(base(httpserver), None, deadline)
    try:
        with pytest.raises(FhirError) as caught:
            server.search("Condition")
    finally:
        release.set()
    assert caught.value.code == "budget_spent"
    assert "still arriving" in caught.value.reason


def test_a_declared_length_body_trickling_in_is_cut_at_the_requests_deadline(make_pool):
    """With a Content-Length, a plain read waits for the whole body (here it would wait until
    the server gives up after 5 s and then fail as unreachable); the reader looks at the
    deadline after every receive instead."""
    trickling = TricklingServer(every_s=0.05, give_up_s=5.0)
    try:
        server = make_pool().connect(trickling.base, None, time.monotonic() + 0.5)
        with pytest.raises(FhirError) as caught:
            server.search("Condition")
    finally:
        trickling.close()
    assert caught.value.code == "budget_spent"
    assert "still arriving" in caught.value.reason


# --- a server that keeps failing is left alone for a while ----------------------------------------


def test_the_breaker_opens_after_faults_in_a_row_and_tries_again_after_the_cool_down():
    from cds_service.pipeline.fhir_client import CircuitBreaker

    now = [100.0]
    breaker = CircuitBreaker(failures=2, cooldown_seconds=30, clock=lambda: now[0])
    breaker.record("timeout")
    assert breaker.allow()
    breaker.record("ok")  # a usable answer in between: not in a row
    breaker.record("unreachable")
    assert breaker.allow()
    breaker.record("budget_spent")
    assert not breaker.allow()  # two in a row: open
    now[0] += 29
    assert not breaker.allow()
    now[0] += 2
    assert breaker.allow()  # cooled down: one call is tried
    breaker.record("timeout")
    assert not breaker.allow()  # and one more fault opens it again
    now[0] += 31
    breaker.record("http_error")  # the server answered (wrongly): not a slow or absent server
    breaker.record("timeout")
    assert breaker.allow()


def test_a_slow_server_is_not_called_while_its_breaker_is_open(make_pool, httpserver):
    slow = HeldHandler(httpserver, bundle())
    httpserver.expect_request("/fhir/Condition").respond_with_handler(slow)
    serve(httpserver, "/healthy/Condition", bundle("c1"))
    sessions = make_pool(read_timeout_seconds=0.2, breaker_failures=2,
                         breaker_cooldown_seconds=60)
    try:
        for _ in range(2):
            with pytest.raises(FhirError) as caught:
                sessions.connect(base(httpserver), TOKEN).search("Condition")
            assert caught.value.code == "timeout"
        with pytest.raises(FhirError) as caught:
            sessions.connect(base(httpserver), TOKEN).search("Condition")
        assert caught.value.code == "circuit_open"
    finally:
        slow.finish()
    slow_calls = [r for r, _ in httpserver.log if r.path == "/fhir/Condition"]
    assert len(slow_calls) == 2  # the third call never reached the slow server
    # another server (another base) keeps its own breaker: it is called as usual
    healthy = sessions.connect(httpserver.url_for("/healthy"), TOKEN)
    assert healthy.search("Condition")[0]["entry"][0]["resource"]["id"] == "c1"
    with pytest.raises(FhirError) as caught:  # the slow one is still left alone
        sessions.connect(base(httpserver), TOKEN).search("Condition")
    assert caught.value.code == "circuit_open"
