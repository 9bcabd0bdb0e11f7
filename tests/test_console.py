"""The web console (lambdad/console/): its backend over plain HTTP (the session cookie's flags, CSRF, origin,
expiry, sign-out, authorization as the API's), and the pages in Debian's Chromium driven by Playwright.

The browser tests install Debian's Chromium when it is absent and they run as root with apt-get (tests/services.py
``ensure_chromium``); elsewhere they skip, saying why, as they do without the playwright package. With
CONSOLE_SCREENSHOTS=DIR they save the main pages' screenshots there (docs/console/*.png are made so).
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

import pytest

from tests.server import ACCESS_KEY, ROLE, SECRET_KEY, Server, create_python_function
from tests.services import ensure_chromium

CHROMIUM = "/usr/bin/chromium"
READ_ONLY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["lambda:Get*", "lambda:List*", "logs:*", "cloudwatch:GetMetricData"],
     "Resource": "*"}]}


class Console:
    """A client of the console's backend, as a browser on its page would be: a cookie jar, the CSRF token."""

    def __init__(self, server: Server) -> None:
        self.base = server.endpoint
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = ""

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
                csrf: bool = True) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        sent = {"Content-Type": "application/json", **(headers or {})}
        if csrf and method != "GET":
            sent["X-CSRF-Token"] = self.csrf
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=sent)
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, dict(response.headers), _json(response.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers), _json(exc.read())

    def signin(self, key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> dict[str, Any]:
        status, _, body = self.request("POST", "/console/api/signin", {"AccessKeyId": key, "SecretAccessKey": secret})
        assert status == 200, body
        self.csrf = body["CsrfToken"]
        return body

    def call(self, service: str, operation: str, params: dict[str, Any]) -> tuple[int, Any]:
        status, _, body = self.request("POST", f"/console/api/call/{service}/{operation}", params)
        return status, body

    def cookie(self) -> str:
        return next(c.value for c in self.jar if c.name == "lambdad_console")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _user(server: Server, name: str, policy: dict[str, Any] | None) -> dict[str, str]:
    iam = server.client("iam")
    iam.create_user(UserName=name)
    if policy is not None:
        iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=json.dumps(policy))
    return iam.create_access_key(UserName=name)["AccessKey"]


# -- the backend over HTTP ---------------------------------------------------------------------------------------

def test_signin_sets_a_strict_httponly_cookie_with_an_expiry_and_keeps_only_its_hash(server: Server) -> None:
    console = Console(server)
    status, headers, body = console.request(
        "POST", "/console/api/signin", {"AccessKeyId": ACCESS_KEY, "SecretAccessKey": SECRET_KEY})
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("lambdad_console=")
    for flag in ("HttpOnly", "SameSite=Strict", "Path=/console/", "Max-Age=43200"):
        assert flag in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    assert body["Root"] is True and body["Principal"] == "arn:aws:iam::000000000000:root"
    assert SECRET_KEY not in json.dumps(body) and "SecretAccessKey" not in body
    session_id = cookie.split(";")[0].split("=", 1)[1]
    with sqlite3.connect(server.data_dir / "lambdad.db") as db:
        ids = {row[0] for row in db.execute("SELECT id FROM console_sessions")}
    assert hashlib.sha256(session_id.encode()).hexdigest() in ids and session_id not in ids
    # behind a TLS proxy: Secure
    status, headers, _ = console.request("POST", "/console/api/signin", {"AccessKeyId": ACCESS_KEY,
                                                                         "SecretAccessKey": SECRET_KEY},
                                         headers={"X-Forwarded-Proto": "https"})
    assert status == 200 and "; Secure" in headers["Set-Cookie"]


def test_a_wrong_secret_or_an_unknown_key_is_refused_alike(server: Server) -> None:
    console = Console(server)
    for key, secret in ((ACCESS_KEY, "wrong"), ("LKIANOSUCHKEY0000000", SECRET_KEY), ("", "")):
        status, headers, body = console.request("POST", "/console/api/signin",
                                                {"AccessKeyId": key, "SecretAccessKey": secret})
        assert status == 403 and "Set-Cookie" not in headers
        assert body["Error"]["Code"] == "UnrecognizedClientException"
    status, _, body = console.request("GET", "/console/api/session")
    assert status == 401 and body["Error"]["Code"] == "NotSignedIn"


def test_state_changing_requests_need_the_csrf_token_and_the_consoles_origin(server: Server, fname: str) -> None:
    console = Console(server)
    console.signin()
    params = {"FunctionName": fname, "Runtime": "python3.12", "Role": ROLE}
    status, _, body = console.request("POST", "/console/api/create", params, csrf=False)
    assert status == 403 and body["Error"]["Code"] == "InvalidCsrfToken"
    status, _, body = console.request("POST", "/console/api/create", params, csrf=False,
                                      headers={"X-CSRF-Token": console.csrf[:-1] + "x"})
    assert status == 403 and body["Error"]["Code"] == "InvalidCsrfToken"
    status, _, body = console.request("POST", "/console/api/create", params,
                                      headers={"Origin": "http://evil.example"})
    assert status == 403 and body["Error"]["Code"] == "AccessDeniedException"
    status, _, body = console.request("POST", "/console/api/create", params, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _, body = console.request("POST", "/console/api/signin", {"AccessKeyId": ACCESS_KEY,
                                                                      "SecretAccessKey": SECRET_KEY},
                                      headers={"Origin": "http://evil.example"})
    assert status == 403  # no signing a victim in to an attacker's account
    with pytest.raises(Exception):
        server.client().get_function(FunctionName=fname)  # nothing was made
    status, _, body = console.request("POST", "/console/api/create", params,
                                      headers={"Origin": server.endpoint, "Sec-Fetch-Site": "same-origin"})
    assert status == 201, body
    assert body["Handler"] == "lambda_function.lambda_handler"


def test_calls_answer_as_the_api_does(server: Server, fname: str) -> None:
    lam = server.client()
    create_python_function(lam, fname, "def handler(e, c):\n    print('hi', e)\n    return {'got': e}\n")
    console = Console(server)
    console.signin()
    status, body = console.call("lambda", "UpdateFunctionConfiguration", {"FunctionName": fname, "MemorySize": 5})
    assert status == 400
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as api_error:
        server.client(parameter_validation=False).update_function_configuration(FunctionName=fname, MemorySize=5)
    assert body["Error"]["Code"] == api_error.value.response["Error"]["Code"] == "ValidationException"
    assert body["Error"]["Message"] == api_error.value.response["Error"]["Message"]
    status, body = console.call("lambda", "GetFunction", {"FunctionName": fname + "-none"})
    assert status == 404 and body["Error"]["Code"] == "ResourceNotFoundException"
    import base64
    status, body = console.call("lambda", "Invoke", {"FunctionName": fname, "LogType": "Tail",
                                                     "Payload": base64.b64encode(b'{"a": 1}').decode()})
    assert status == 200 and json.loads(body["Payload"]) == {"got": {"a": 1}}
    assert "hi {'a': 1}" in base64.b64decode(body["LogResult"]).decode()
    status, body = console.call("lambda", "NoSuchOperation", {})
    assert status == 400 and body["Error"]["Code"] == "UnknownOperationException"
    status, body = console.call("iam", "CreateUser", {"UserName": "x"})
    assert status == 400  # the console calls lambda, logs and monitoring only


def test_code_is_read_and_saved_through_the_api(server: Server, fname: str) -> None:
    lam = server.client()
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    console = Console(server)
    console.signin()
    status, _, code = console.request("GET", f"/console/api/code/{fname}")
    assert status == 200 and code["editable"]
    assert code["files"] == [{"path": "app.py", "size": 32, "text": "def handler(e, c):\n    return 1\n"}]
    status, _, body = console.request("POST", f"/console/api/code/{fname}", {
        "Changed": {"app.py": "def handler(e, c):\n    return 2\n"}, "RevisionId": code["RevisionId"]})
    assert status == 200, body
    assert json.loads(lam.invoke(FunctionName=fname)["Payload"].read()) == 2
    # a save based on a copy changed since is refused (the revision id)
    status, _, body = console.request("POST", f"/console/api/code/{fname}", {
        "Changed": {"app.py": "x"}, "RevisionId": code["RevisionId"]})
    assert status == 412 and body["Error"]["Code"] == "PreconditionFailedException"
    status, _, body = console.request("POST", f"/console/api/code/{fname}", {"Changed": {"../evil": "x"}})
    assert status == 400


def test_a_non_root_user_can_read_but_not_write(server: Server, fname: str) -> None:
    lam = server.client()
    create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")
    key = _user(server, f"{fname[:50]}-ro", READ_ONLY)
    console = Console(server)
    me = console.signin(key["AccessKeyId"], key["SecretAccessKey"])
    assert me["Root"] is False and me["Principal"].endswith(f":user/{fname[:50]}-ro")
    status, body = console.call("lambda", "GetFunction", {"FunctionName": fname})
    assert status == 200
    status, _, code = console.request("GET", f"/console/api/code/{fname}")
    assert status == 200
    status, _, body = console.request("POST", f"/console/api/code/{fname}", {"Changed": {"app.py": "x = 1\n"}})
    assert status == 403 and body["Error"]["Code"] == "AccessDeniedException"
    assert "lambda:UpdateFunctionCode" in body["Error"]["Message"]
    status, body = console.call("lambda", "DeleteFunction", {"FunctionName": fname})
    assert status == 403
    lam.get_function(FunctionName=fname)


def test_signout_ends_the_session_for_every_copy_of_its_cookie(server: Server) -> None:
    console = Console(server)
    console.signin()
    cookie = console.cookie()
    status, headers, _ = console.request("POST", "/console/api/signout", {})
    assert status == 200 and "Max-Age=0" in headers["Set-Cookie"]
    replay = urllib.request.Request(server.endpoint + "/console/api/session", headers={"Cookie": f"lambdad_console={cookie}"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(replay, timeout=10)
    assert e.value.code == 401
    e.value.close()


def test_a_deleted_key_ends_its_sessions(server: Server, fname: str) -> None:
    key = _user(server, f"{fname[:50]}-gone", READ_ONLY)
    console = Console(server)
    console.signin(key["AccessKeyId"], key["SecretAccessKey"])
    assert console.request("GET", "/console/api/session")[0] == 200
    server.client("iam").delete_access_key(UserName=f"{fname[:50]}-gone", AccessKeyId=key["AccessKeyId"])
    assert console.request("GET", "/console/api/session")[0] == 401


def test_a_session_expires(fresh_server) -> None:
    srv = fresh_server({"LAMBDAD_CONSOLE_SESSION_HOURS": str(1.5 / 3600)})
    console = Console(srv)
    console.signin()
    assert console.request("GET", "/console/api/session")[0] == 200
    time.sleep(2)
    status, _, body = console.request("GET", "/console/api/session")
    assert status == 401 and body["Error"]["Code"] == "NotSignedIn"


def test_test_events_are_the_callers_own(server: Server, fname: str) -> None:
    create_python_function(server.client(), fname, "def handler(e, c):\n    return 1\n")
    root, user = Console(server), Console(server)
    root.signin()
    key = _user(server, f"{fname[:50]}-ev", READ_ONLY)
    user.signin(key["AccessKeyId"], key["SecretAccessKey"])
    assert root.request("PUT", f"/console/api/events/{fname}/first", {"a": 1})[0] == 200
    assert root.request("PUT", f"/console/api/events/{fname}/bad%20name", {"a": 1})[0] == 400
    assert root.request("GET", f"/console/api/events/{fname}")[2] == {"Events": [{"Name": "first", "Body": '{"a": 1}'}]}
    assert user.request("GET", f"/console/api/events/{fname}")[2] == {"Events": []}
    assert root.request("GET", f"/console/api/events/{fname}-none")[0] == 404
    assert root.request("DELETE", f"/console/api/events/{fname}/first")[0] == 200
    assert root.request("GET", f"/console/api/events/{fname}")[2] == {"Events": []}


def test_the_page_and_its_assets_are_served_with_a_strict_policy(server: Server) -> None:
    import gzip

    assert f"console: {server.endpoint}/console/" in "".join(server.output)  # the banner says where

    with urllib.request.urlopen(server.endpoint + "/console/", timeout=10) as response:
        page = response.read().decode()
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"
    assert "/console/static/app.js" in page and "http" not in page.replace("http-equiv", "")
    for name in ("app.js", "app.css", "editor.js", "fn-code.js", "fn-test.js", "fn-config.js", "fn-monitor.js",
                 "fn-ship.js", "samples.js"):
        with urllib.request.urlopen(f"{server.endpoint}/console/static/{name}", timeout=10) as response:
            body = response.read()
            assert len(gzip.compress(body)) < 500 * 1024, name
            if name.endswith(".js"):
                assert response.headers["Content-Type"].startswith("text/javascript")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(server.endpoint + "/console/static/../front.py", timeout=10)
    assert e.value.code == 404
    e.value.close()


def test_a_large_body_is_read_only_for_a_signed_in_page(server: Server, fname: str) -> None:
    import base64
    from tests.server import make_zip

    package = make_zip({"app.py": "def handler(e, c):\n    return 7\n", "blob.bin": os.urandom(300_000)})
    params = {"FunctionName": fname, "Runtime": "python3.12", "Role": ROLE, "Handler": "app.handler",
              "Code": {"ZipFile": base64.b64encode(package).decode()}}
    anonymous = Console(server)
    status, _, body = anonymous.request("POST", "/console/api/create", params)
    assert status == 401 and body["Error"]["Code"] == "NotSignedIn"
    console = Console(server)
    console.signin()
    status, _, body = console.request("POST", "/console/api/create", params)
    assert status == 201, body
    assert json.loads(server.client().invoke(FunctionName=fname)["Payload"].read()) == 7
    status, _, code = console.request("GET", f"/console/api/code/{fname}")
    assert [f["path"] for f in code["files"] if "text" in f] == ["app.py"]  # the binary file is listed, not shown
    status, _, body = console.request("POST", f"/console/api/code/{fname}",
                                      {"Changed": {"app.py": "def handler(e, c):\n    return 8\n"}})
    assert status == 200, body
    assert json.loads(server.client().invoke(FunctionName=fname)["Payload"].read()) == 8
    assert body["CodeSize"] > 300_000  # the binary file was kept


def test_a_session_opened_on_one_node_is_good_on_another_and_ends_on_both(cluster) -> None:
    a, b = cluster(2).nodes
    console = Console(a)
    console.signin()
    cookie = console.cookie()
    on_b = Console(b)
    on_b.csrf = console.csrf
    on_b.opener.addheaders = [("Cookie", f"lambdad_console={cookie}")]
    status, body = on_b.call("lambda", "ListFunctions", {})
    assert status == 200, body
    assert console.request("POST", "/console/api/signout", {})[0] == 200
    status, body = on_b.call("lambda", "ListFunctions", {})
    assert status == 401


# -- the pages in Chromium ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = ensure_chromium()  # installed from Debian's packages where it may be (tests/services.py)
    if missing:
        pytest.skip(missing)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs the playwright package (pip install '.[test]')")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    made = context.new_page()
    made.set_default_timeout(30000)
    errors: list[str] = []
    made.on("pageerror", lambda exc: errors.append(str(exc)))
    made.goto(server.endpoint + "/console/")
    yield made
    context.close()
    assert not errors, errors


def _shot(page: Any, name: str, dark: bool = False) -> None:
    where = os.environ.get("CONSOLE_SCREENSHOTS")
    if where:
        page.screenshot(path=os.path.join(where, f"{name}.png"))
        if dark:
            page.emulate_media(color_scheme="dark")
            page.screenshot(path=os.path.join(where, f"{name}-dark.png"))
            page.emulate_media(color_scheme="light")


def _signin(page: Any, key: str = ACCESS_KEY, secret: str = SECRET_KEY) -> None:
    page.fill("input[name=AccessKeyId]", key)
    page.fill("input[name=SecretAccessKey]", secret)
    page.keyboard.press("Enter")
    page.wait_for_selector("#signout:visible")


def test_browser_write_test_read_logs_and_ship(page: Any, server: Server, fname: str) -> None:
    _shot(page, "signin")
    _signin(page)
    page.wait_for_selector("h1:has-text('Functions')")
    page.click("text=Create function >> nth=0")
    page.fill("input[name=FunctionName]", fname)
    page.click("button:has-text('Create function')")
    page.wait_for_selector(".cm-content")
    _shot(page, "code", dark=True)
    # edit: a line that prints, then save with the keyboard
    page.click(".cm-content")
    page.keyboard.press("Control+Home")
    page.keyboard.type("print('edited in the console')\n")
    page.keyboard.press("Control+s")
    page.wait_for_selector("text=Saved (")
    assert "edited in the console" in _code_of(server, fname)
    # test: the sample event runs; its result, figures and log show
    page.click("nav.tabs a:has-text('Test')")
    page.click("button.primary:has-text('Test')")
    page.wait_for_selector("h2:has-text('Succeeded')")
    assert "Hello from lambdad!" in page.inner_text("pre.result")
    assert "edited in the console" in page.inner_text("pre.log")
    for label in ("Duration", "Billed duration", "Max memory used"):
        assert page.is_visible(f".stats span:has-text('{label}')")
    _shot(page, "test")
    # a saved test event
    page.fill("input[aria-label='Event name']", "mine")
    page.click("button:has-text('Save event')")
    page.wait_for_selector("option[value='saved:mine']", state="attached")
    # configuration: the API's message at its field, then a good value saved
    page.click("nav.tabs a:has-text('Configuration')")
    page.fill("input[name=MemorySize]", "5")
    page.click("button:has-text('Save configuration')")
    page.wait_for_selector("#err-memorySize:has-text('greater than or equal to 128')")
    page.fill("input[name=MemorySize]", "256")
    page.click("button:has-text('Add variable')")
    page.fill("input[aria-label='Key'] >> nth=-1", "AWS_REGION")
    page.fill("input[aria-label='Value'] >> nth=-1", "x")
    page.click("button:has-text('Save configuration')")
    page.wait_for_selector("#err-environment:has-text('AWS_REGION')")  # a reserved key: the API's message
    page.fill("input[aria-label='Key'] >> nth=-1", "GREETING")
    page.fill("input[name=ReservedConcurrentExecutions]", "5")
    page.click("button:has-text('Save configuration')")
    page.wait_for_selector("#toast:has-text('Configuration saved')")
    saved = server.client().get_function(FunctionName=fname)
    assert saved["Configuration"]["MemorySize"] == 256
    assert saved["Configuration"]["Environment"]["Variables"] == {"GREETING": "x"}
    assert saved["Concurrency"]["ReservedConcurrentExecutions"] == 5
    # monitor: the invocation's graph point and its log lines
    page.click("nav.tabs a:has-text('Monitor')")
    page.wait_for_selector(".logs div:has-text('REPORT RequestId')")
    page.wait_for_selector(".chart[data-metric='Invocations'] circle", timeout=30000)
    lam = server.client()
    for _ in range(3):  # the graph follows new invocations while the page is open
        lam.invoke(FunctionName=fname, Payload=b"{}")
    page.wait_for_selector(".chart[data-metric='Invocations'] h3:has-text('(4 in range)')", timeout=30000)
    page.fill("input[aria-label='Filter pattern']", '"edited in the console"')
    page.wait_for_function("""() => {
        const lines = [...document.querySelectorAll('.logs div')];
        return lines.length >= 1 && lines.every((l) => l.textContent.includes('edited in the console'));
    }""")
    _shot(page, "monitor")
    # ship: publish a version, an alias to it, a function URL, opened
    page.click("nav.tabs a:has-text('Versions')")
    page.click("button:has-text('Publish new version')")
    page.wait_for_selector("td:text-is('1')")
    lam.update_function_configuration(FunctionName=fname, MemorySize=320)
    lam.get_waiter("function_updated_v2").wait(FunctionName=fname)
    page.click("button:has-text('Publish new version')")
    page.wait_for_selector("td:text-is('2')")
    # the aliases' form is drawn again once the page has read version 2: fill it after that, not before
    page.wait_for_selector("select[aria-label='New alias version'] option[value='2']", state="attached")
    page.fill("input[aria-label='New alias name']", "live")
    page.select_option("select[aria-label='New alias version']", "1")
    page.click("button:has-text('Create alias')")
    page.wait_for_selector("td:text-is('live')")
    page.select_option("select[aria-label='live second version']", "2")
    page.fill("input[aria-label='live weight of the second version (%)']", "25")
    page.click("tr:has(td:text-is('live')) button:has-text('Save')")
    page.wait_for_selector("#toast:has-text('Alias live saved')")
    alias = server.client().get_alias(FunctionName=fname, Name="live")
    assert alias["FunctionVersion"] == "1"
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.25}
    page.click("button:has-text('Create function URL')")
    link = page.wait_for_selector("#function-url")
    _shot(page, "ship")
    url = link.get_attribute("href")
    with page.context.expect_page() as opened:
        link.click()
    new = opened.value
    new.wait_for_load_state()
    assert "Hello from lambdad!" in new.content(), url
    # the list shows it; delete asks first
    page.click("a:has-text('Functions')")
    page.wait_for_selector(f"td a:text-is('{fname}')")
    page.wait_for_selector("td.num:text-is('6')")  # the counts of the last 24 hours have come
    _shot(page, "functions")
    page.fill("input[type=search]", fname)
    page.click(f"button[aria-label='Delete {fname}']")
    page.fill("dialog input", "delete")
    page.click("dialog button:has-text('Delete')")
    page.wait_for_selector(f"#toast:has-text('Deleted {fname}')")
    assert fname not in [f["FunctionName"] for f in server.client().list_functions()["Functions"]]


def _code_of(server: Server, name: str) -> str:
    import io
    import zipfile

    location = server.client().get_function(FunctionName=name)["Code"]["Location"]
    with urllib.request.urlopen(location, timeout=10) as response:
        with zipfile.ZipFile(io.BytesIO(response.read())) as zf:
            return zf.read("lambda_function.py").decode()


def test_browser_a_non_root_user_cannot_save_code(page: Any, server: Server, fname: str) -> None:
    create_python_function(server.client(), fname, "def handler(e, c):\n    return 1\n")
    key = _user(server, f"{fname[:50]}-ro", READ_ONLY)
    _signin(page, key["AccessKeyId"], key["SecretAccessKey"])
    page.goto(f"{server.endpoint}/console/#/fn/{fname}/code")
    page.wait_for_selector(".cm-content")
    page.click(".cm-content")
    page.keyboard.type("# change\n")
    page.click("button:has-text('Save')")
    shown = page.wait_for_selector("p.error:has-text('AccessDeniedException')")
    assert "lambda:UpdateFunctionCode" in shown.inner_text()
    assert "# change" not in _code_of_app(server, fname)


def _code_of_app(server: Server, name: str) -> str:
    import io
    import zipfile

    location = server.client().get_function(FunctionName=name)["Code"]["Location"]
    with urllib.request.urlopen(location, timeout=10) as response:
        with zipfile.ZipFile(io.BytesIO(response.read())) as zf:
            return zf.read("app.py").decode()


def test_browser_post_without_csrf_token_is_refused_and_sign_out(page: Any, server: Server) -> None:
    _signin(page)
    refused = page.evaluate("""async () => {
        const r = await fetch('/console/api/call/lambda/ListFunctions', {method: 'POST', body: '{}',
                                                                          headers: {'Content-Type': 'application/json'}});
        return [r.status, (await r.json()).Error.Code];
    }""")
    assert refused == [403, "InvalidCsrfToken"]
    page.click("#signout")
    page.wait_for_selector("#signin:visible")
    status = page.evaluate("async () => (await fetch('/console/api/session')).status")
    assert status == 401
    page.reload()
    page.wait_for_selector("#signin:visible")


def test_a_blank_node_function_runs(server: Server, fname: str) -> None:
    console = Console(server)
    console.signin()
    status, _, made = console.request("POST", "/console/api/create",
                                      {"FunctionName": fname, "Runtime": "nodejs20.x", "Role": ROLE})
    assert status == 201, made
    assert made["Handler"] == "index.handler"
    result = server.client().invoke(FunctionName=fname, Payload=b"{}")
    assert json.loads(result["Payload"].read()) == {"statusCode": 200, "body": '"Hello from lambdad!"'}
    status, _, code = console.request("GET", f"/console/api/code/{fname}")
    assert [f["path"] for f in code["files"]] == ["index.mjs"]
    status, _, body = console.request("POST", "/console/api/create",
                                      {"FunctionName": fname + "-c", "Runtime": "provided.al2023", "Role": ROLE})
    assert status == 400 and "upload a zip" in body["Error"]["Message"]


def test_browser_zip_upload_and_a_failing_run(page: Any, server: Server, fname: str, tmp_path) -> None:
    from tests.server import make_zip

    package = tmp_path / "fn.zip"
    package.write_bytes(make_zip({"app.py": "import time\n\ndef handler(e, c):\n    if e.get('sleep'):\n"
                                            "        time.sleep(5)\n    raise ValueError('no good')\n"}))
    _signin(page)
    page.click("text=Create function >> nth=0")
    page.fill("input[name=FunctionName]", fname)
    page.check("input[value=zip]")
    page.set_input_files("input[type=file]", str(package))
    page.fill("input[name=Handler]", "app.handler")
    page.click("button:has-text('Create function')")
    page.wait_for_selector(".files button:has-text('app.py')")
    page.click("nav.tabs a:has-text('Test')")
    page.click("button.primary:has-text('Test')")
    page.wait_for_selector("h2:has-text('Failed: ValueError')")
    assert page.is_visible("p.error:has-text('no good')")
    server.client().update_function_configuration(FunctionName=fname, Timeout=1)
    server.client().get_waiter("function_updated_v2").wait(FunctionName=fname)
    page.fill("textarea[aria-label='Event JSON']", '{"sleep": true}')
    page.click("button.primary:has-text('Test')")
    page.wait_for_selector("h2:has-text('Failed: Sandbox.Timedout')")
    assert page.is_visible("p.error:has-text('Task timed out after 1.00 seconds')")
    assert "Status: timeout" in page.inner_text("pre.log")


def test_browser_first_paint_is_fast_and_nothing_leaves_the_origin(browser: Any, server: Server) -> None:
    context = browser.new_context()
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server.endpoint + "/console/")
    page.wait_for_selector("#signin:visible")
    paint = page.evaluate("""() => {
        const entry = performance.getEntriesByName('first-contentful-paint')[0];
        return entry ? entry.startTime : null;
    }""")
    context.close()
    # the bar is 300 ms from localhost; a loaded CI machine gets some room
    assert paint is not None and paint < 1000, paint
    assert requested and all(url.startswith(server.endpoint) for url in requested), requested


def test_browser_triggers_list_a_schedule_and_disable_it(page: Any, server: Server, fname: str) -> None:
    lam = server.client()
    arn = create_python_function(lam, fname, "def handler(e, c):\n    return 1\n")["FunctionArn"]
    scheduler = server.client("scheduler")
    scheduler.create_schedule(Name=fname, ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"},
                              Description="nightly", Target={"Arn": arn, "RoleArn": ROLE, "Input": '{"n": 1}'})
    _signin(page)
    page.goto(f"{server.endpoint}/console/#/fn/{fname}/ship")
    row = page.wait_for_selector(f"tr:has(td:text-is('default/{fname}'))")
    assert "ENABLED" in row.inner_text()
    page.click(f"button[aria-label='Disable schedule {fname}']")
    page.wait_for_selector(f"button[aria-label='Enable schedule {fname}']")
    got = scheduler.get_schedule(Name=fname)
    assert got["State"] == "DISABLED"
    # the rest of the schedule is as it was
    assert got["ScheduleExpression"] == "rate(1 day)" and got["Description"] == "nightly"
    assert got["Target"]["Input"] == '{"n": 1}'
    page.click(f"button[aria-label='Enable schedule {fname}']")
    page.wait_for_selector(f"button[aria-label='Disable schedule {fname}']")
    assert scheduler.get_schedule(Name=fname)["State"] == "ENABLED"
    scheduler.delete_schedule(Name=fname)
