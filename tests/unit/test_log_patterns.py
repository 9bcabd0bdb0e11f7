"""CloudWatch Logs filter patterns: every example of AWS's "Filter pattern syntax for metric filters, subscription
filters, filter log events, and Live Tail" page (and of its earlier version, "Filter and Pattern Syntax", marked
"older page"), as (pattern, message, expected match), and patterns CloudWatch refuses.

Speed (2-core dev machine when quiet, Python 3.11; one compile, then 100,000 matches of a Lambda log line or a
small JSON object; measured with timeit, not asserted here; about 4x these under a load average of 7):
    ERROR -DEBUG                                  ~0.6 us per match
    ?ERROR ?WARN                                  ~0.5 us
    %fail%                                        ~0.2 us (plain text: a substring test)
    %fail[a-z]*%                                  ~5.5 us (RE2; its wrapper encodes the text on each call)
    { $.level = "ERROR" && $.latency > 100 }      ~4.5 us (json.loads is most of it)
    [ts, rid, level=ERROR, message]               ~2.7 us
    [ts, rid, level=ERROR, ...]                   ~4.4 us
"""

from __future__ import annotations

import json
import time

import pytest

from lambdad.logs.patterns import InvalidFilterPattern, compile_pattern

# --- the page's sample events ------------------------------------------------------------------------------------

E400 = "[ERROR 400] BAD REQUEST"
E401 = "[ERROR 401] UNAUTHORIZED REQUEST"
E419 = "[ERROR 419] MISSING ARGUMENTS"
E420 = "[ERROR 420] INVALID ARGUMENTS"
E500 = "[ERROR 500] INTERNAL SERVER ERROR"
S200 = "[SUCCESS 200] AUTHORIZED REQUEST"
INFO_FAILED = "[INFO] REQUEST FAILED"
WARN_UNAUTHORIZED = "[WARN] UNAUTHORIZED REQUEST"
ERROR_400 = "[ERROR] 400 BAD REQUEST"

JSON_EVENT = json.dumps({
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "cluster.name": "c",
})
OLD_JSON_EVENT = json.dumps({  # older page: the same with "ThisFlag": true
    "eventType": "UpdateTrail",
    "sourceIPAddress": "111.111.111.111",
    "arrayKey": ["value", "another value"],
    "objectList": [{"name": "a", "id": 1}, {"name": "b", "id": 2}],
    "SomeObject": None,
    "ThisFlag": True,
})
COMPOUND_EVENT = json.dumps({
    "user": {"id": 1, "email": "John.Stiles@example.com"},
    "users": [{"id": 2, "email": "John.Doe@example.com"}, {"id": 3, "email": "Jane.Doe@example.com"}],
    "actions": ["GET", "PUT", "DELETE"],
    "coordinates": [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
})

SPACED = '127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'
SPACED_500 = '127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 500 1534'
SPACED_410_GIF = '127.0.0.1 Prod frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 410 1534'

GET_67 = "INFO 09/25/2014 12:00:00 GET /service/resource/67 1200"
POST_PART = "INFO 09/25/2014 12:00:01 POST /service/resource/67/part/111 1310"
WARNING_LINE = "WARNING 09/25/2014 12:00:02 Invalid user request"
ERROR_LINE = "ERROR 09/25/2014 12:00:02 Failed to process request"

APACHE_200 = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534'
APACHE_500 = '127.0.0.1 - frank [10/Oct/2000:13:35:22 -0700] "GET /apache_pb.gif HTTP/1.0" 500 5324'
APACHE_200_B = '127.0.0.1 - frank [10/Oct/2000:13:50:35 -0700] "GET /apache_pb.gif HTTP/1.0" 200 4355'
APACHE_404_HTML = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 1534'
APACHE_404_HTML_SMALL = '127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 900'

EWM, EM, WM = "ERROR WARN message", "ERROR message", "WARN message"  # older page, OR pattern matching


def _cases(pattern: str, matching: list[str], other: list[str]) -> list[tuple[str, str, bool]]:
    return [(pattern, m, True) for m in matching] + [(pattern, m, False) for m in other]


CASES: list[tuple[str, str, bool]] = [
    # --- regex (the page's "Usage of supported operators") -------------------------------------------------------
    *_cases("%AUTHORIZED%", [E401, S200], [E400]),
    *_cases("%^[hc]at%", ["hat trick", "cat"], ["that", "chat"]),
    *_cases("%[hc]at$%", ["that hat", "a cat"], ["hat trick"]),
    *_cases("%colou?r%", ["color", "colour"], ["colr"]),
    *_cases("%[abc]%", ["a", "b", "c"], ["d"]),
    *_cases("%[a-z]%", ["q"], ["Q1"]),
    *_cases("%[abcx-z]%", ["a", "b", "c", "x", "y", "z"], ["d", "w"]),
    *_cases("%a{3,5}%", ["aaa", "aaaa", "aaaaa"], ["aa", "a a a"]),
    *_cases("%^a{3,5}$%", ["aaa", "aaaaa"], ["aaaaaa"]),
    *_cases("%^a{3, 5}$%", ["aaa", "aaaaa"], ["aaaaaa", "a{3, 5}"]),  # the page writes the bounds "{m, n}"
    *_cases("%^a{,2}b%", ["b", "aab"], ["aaab"]),
    *_cases("%^a{2,}b%", ["aab", "aaaab"], ["ab"]),
    *_cases("%gra|ey%", ["gray", "grey"], ["gay"]),
    *_cases("%^starting|^initializing|^shutting down%", ["starting ...", "initializing ...", "shutting down"],
            ["skipping initializing ..."]),
    *_cases("%abcc|ab[^c]$%", ["abcc ...", "aba"], ["aac ..."]),  # the page writes it without the closing %
    *_cases(r"%\[.\]%", ["[a]", "[b]", "[7]", "[@]", "[]]", "[ ]"], ["[]", "ab"]),
    *_cases(r"%10\.10\.0\.1%", ["10.10.0.1"], ["10010,051"]),
    *_cases("%10.10.0.1%", ["10.10.0.1", "10010,051"], ["10.10.0.2"]),
    *_cases("%ab*c%", ["ac", "abc", "abbbc"], ["ab"]),
    *_cases("%ab[0-9]*%", ["ab", "ab0", "ab129"], ["a b"]),
    *_cases("%ab+c%", ["abc", "abbc", "abbbc"], ["ac"]),
    *_cases("%.at%", ["hat", "cat", "bat", "4at", "#at", " at"], ["at"]),
    *_cases(r"%\d%", ["a1"], ["abc"]),
    *_cases("%[0-9]%", ["a1"], ["abc"]),
    *_cases(r"%\D%", ["1a"], ["123"]),
    *_cases("%[^0-9]%", ["1a"], ["123"]),
    *_cases(r"%\s%", ["a b", "a\tb", "a\nb"], ["ab"]),
    *_cases(r"%\S%", [" a "], ["   "]),
    *_cases(r"%\w%", ["_"], ["-+", "é"]),
    *_cases("%[a-zA-Z_0-9]%", ["_"], ["-+"]),
    *_cases(r"%\W%", ["a-b"], ["ab_9"]),
    *_cases(r"%\x3A%", ["a:b"], ["ab"]),
    *_cases(r"%\x28%", ["f(x)"], ["fx"]),
    *_cases("%REQUEST$%", [E400 + "\n", E400], [E400 + " \n", E400 + "\n\n"]),  # a Lambda line's final newline
    *_cases("%^a.c%", ["abc"], ["a\nc", "\nabc"]),
    # --- unstructured terms ----------------------------------------------------------------------------------------
    *_cases("ERROR", [E400, E401, E419, E420, "Exiting with ERRORCODE: -1", "[ERROR] A fatal exception has occurred"],
            ["[INFO 200] SUCCESSFUL REQUEST", "error: lower case"]),
    *_cases("ERROR ARGUMENTS", [E419, E420], [E400, E401]),
    *_cases("?ERROR ?ARGUMENTS", [E400, E401, E419, E420], [S200, INFO_FAILED]),
    # "?" terms beside a plain term are ignored: this is "REQUEST"
    *_cases("?ERROR ?ARGUMENTS REQUEST", [INFO_FAILED, WARN_UNAUTHORIZED, ERROR_400, S200], [E419, E420]),
    *_cases('"INTERNAL SERVER ERROR"', [E500], ["[ERROR 500] INTERNAL ERROR", "internal server error"]),
    *_cases("ERROR -ARGUMENTS", [E400, E401], [E419, E420]),
    *_cases('" "', [E400, "", "x", S200], []),
    *_cases("", [E400, ""], []),
    *_cases("   ", [E400, ""], []),
    # older page
    *_cases('"ERROR" -"Exiting"', ["[ERROR] A fatal exception has occurred"], ["Exiting with ERRORCODE: -1"]),
    *_cases("ERROR Exception", ["[ERROR] Caught IllegalArgumentException", "[ERROR] Unhandled Exception"],
            ["[ERROR] Unhandled"]),
    *_cases('"Failed to process the request"', ["[WARN] Failed to process the request",
                                                 "[ERROR] Unable to continue: Failed to process the request"],
            ["Failed to process request"]),
    *_cases("Failed to process the request", ["[WARN] Failed to process the request"], ["[WARN] Failed"]),
    *_cases("?ERROR ?WARN", [EWM, EM, WM], ["INFO message"]),
    *_cases("ERROR WARN", [EWM], [EM, WM]),
    *_cases("ERROR -WARN", [EM], [EWM, WM]),
    *_cases("-ERROR", [WM], [EWM, EM]),
    *_cases('?"ERROR 500" ?"ERROR 400"', [E500, E400], [E401]),
    *_cases(r'"say \"hi\""', ['they say "hi"'], ["they say hi"]),
    # --- JSON: strings and regex ------------------------------------------------------------------------------------
    *_cases('{ $.eventType = "UpdateTrail" }', [JSON_EVENT], ['{"eventType": "CreateTrail"}', "UpdateTrail"]),
    *_cases("{ $.sourceIPAddress != 123.123.* }", [JSON_EVENT],
            ['{"sourceIPAddress": "123.123.1.1"}', '{"other": 1}']),
    *_cases('{ $.arrayKey[0] = "value" }', [JSON_EVENT], ['{"arrayKey": "value"}', '{"arrayKey": ["x", "value"]}']),
    *_cases("{ $.eventType = %Trail% }", [JSON_EVENT], ['{"eventType": "Train"}']),
    *_cases("{ $.arrayKey[*] = %val.{2}% }", [JSON_EVENT], ['{"arrayKey": ["va", "another"]}']),
    *_cases(r"{ $.* = %111\.111\.111\.1[0-9]{1,2}% }", [JSON_EVENT], ['{"ip": "111.111.111.2"}']),
    *_cases("{ $.['cluster.name'] = \"c\" }", [JSON_EVENT], ['{"cluster": {"name": "c"}}']),
    *_cases("{ $.SomeObject IS NULL }", [JSON_EVENT], ['{"SomeObject": 0}', '{"Other": null}']),
    *_cases("{ $.SomeOtherObject NOT EXISTS }", [JSON_EVENT], ['{"SomeOtherObject": null}', "SomeOtherObject"]),
    # older page
    *_cases("{ $.objectList[1].id = 2 }", [OLD_JSON_EVENT], ['{"objectList": {"id": 2}}', '{"objectList": [{}]}']),
    *_cases("{ $.ThisFlag IS TRUE }", [OLD_JSON_EVENT], ['{"ThisFlag": "true"}', '{"ThisFlag": false}']),
    *_cases("{ $.ThisFlag IS FALSE }", ['{"ThisFlag": false}'], [OLD_JSON_EVENT, '{"ThisFlag": 0}']),
    *_cases("{$.foo = bar}", ['{"foo": "bar"}'], ['{"foo": "baz"}']),
    *_cases("{$.foo = baz }", ['{"foo": "baz"}'], ['{"foo": "bar"}']),
    *_cases("{$.foo = bar || $.foo = baz }", ['{"foo": "bar"}', '{"foo": "baz"}'], ['{"foo": "qux"}']),
    *_cases("{ $.users = 1 }", [], ['{"users": [1, 2, 3]}']),
    *_cases("{ $.users != 1 }", ['{"users": 2}'], ['{"users": [1, 2, 3]}', '{"users": {"a": 1}}']),
    *_cases("{ $.name = *Event }", ['{"name": "PutEvent"}', '{"name": "GetEvent"}'], ['{"name": "EventId"}']),
    *_cases("{ $.name = Event* }", ['{"name": "EventId"}', '{"name": "EventName"}'], ['{"name": "PutEvent"}']),
    *_cases("{ $.latency = * }", ['{"latency": 12}', '{"latency": "x"}'], ['{"other": 1}', '{"latency": null}']),
    # --- JSON: numbers ----------------------------------------------------------------------------------------------
    *_cases("{ $.bandwidth > 75 }", ['{"bandwidth": 76}', '{"bandwidth": 75.5}'], ['{"bandwidth": 75}']),
    *_cases("{ $.latency < 50 }", ['{"latency": 49}'], ['{"latency": 50}', '{"latency": "fast"}']),
    *_cases("{ $.refreshRate >= 60 }", ['{"refreshRate": 60}'], ['{"refreshRate": 59.9}']),
    *_cases("{ $.responseTime <= 5 }", ['{"responseTime": 5}'], ['{"responseTime": 6}']),
    *_cases("{ $.errorCode = 400}", ['{"errorCode": 400}', '{"errorCode": "400"}'], ['{"errorCode": 401}']),
    *_cases("{ $.errorCode != 500 }", ['{"errorCode": 400}'], ['{"errorCode": 500}', '{"other": 1}']),
    *_cases("{ $.number[0] = 1e+3 }", ['{"number": [1000]}', '{"number": [1e3]}'], ['{"number": [100]}']),
    *_cases("{ $.number[0] != 1e-3 }", ['{"number": [1]}'], ['{"number": [0.001]}']),
    # older page
    *_cases("{ $.latency >= 500 }", ['{"latency": 500}'], ['{"latency": 499}']),
    *_cases("{ $.numbers[0] < 10e3 }", ['{"numbers": [9999]}'], ['{"numbers": [10000]}']),
    *_cases("{ $.numbers[0] < 10e-3 }", ['{"numbers": [0.009]}'], ['{"numbers": [0.01]}']),
    *_cases("{ $.processes[4].averageRuntime <= 55.5 }", ['{"processes": [0, 1, 2, 3, {"averageRuntime": 55.5}]}'],
            ['{"processes": [{"averageRuntime": 1}]}']),
    *_cases("{ $.latency > +1000 }", ['{"latency": 1001}'], ['{"latency": 1000}']),
    *_cases("{ $.level = 4* }", ['{"level": 404}', '{"level": "4xx"}'], ['{"level": 500}']),
    # --- JSON: compound expressions -----------------------------------------------------------------------------
    *_cases('{ ($.user.id = 1) && ($.users[0].email = "John.Doe@example.com") }', [COMPOUND_EVENT], []),
    *_cases('{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch" && '
            '$.actions[2] = "nonmatch" }', [COMPOUND_EVENT], []),
    *_cases('{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = "nonmatch") && '
            '$.actions[2] = "nonmatch" }', [], [COMPOUND_EVENT]),
    *_cases('{ ($.user.id = 2 && $.users[0].email = "nonmatch") || $.actions[2] = "GET" }', [], [COMPOUND_EVENT]),
    # older page (unquoted values)
    *_cases('{ $.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch && $.actions[2] = nomatch }',
            [COMPOUND_EVENT], []),
    *_cases('{ ($.user.email = "John.Stiles@example.com" || $.coordinates[0][1] = nonmatch) && '
            '$.actions[2] = nomatch }', [], [COMPOUND_EVENT]),
    *_cases("{ $.coordinates[2][0] = 7 }", [COMPOUND_EVENT], []),
    *_cases("{ $.detail-type = \"Scheduled Event\" }", ['{"detail-type": "Scheduled Event"}'], ['{"detail": 1}']),
    # a message that is not JSON never matches a JSON pattern
    *_cases("{ $.x NOT EXISTS }", ['{"y": 1}'], ["plain text", "", "{not json", "42"]),
    # --- space-delimited ----------------------------------------------------------------------------------------
    *_cases(r"[ip=%127\.0\.0\.[1-9]%, user, username, timestamp, request =*.html*, status_code = 4*, bytes]",
            [SPACED], [SPACED_500, SPACED_410_GIF, SPACED.replace("127.0.0.1", "10.0.0.1")]),
    *_cases("[..., request =*.html*, status_code = 4*, bytes]", [SPACED], [SPACED_500, SPACED_410_GIF]),
    *_cases("[ip, user, username, timestamp, request =*.html*, status_code = 404 || status_code = 410, bytes]",
            [SPACED], [SPACED_500, SPACED_410_GIF]),
    *_cases("[ip, user, username, timestamp, request, status_code = 404 || status_code = 410, bytes]",
            [SPACED, SPACED_410_GIF], [SPACED_500]),
    *_cases("[w1=ERROR, w2]", [ERROR_LINE, EM], [GET_67, POST_PART, WARNING_LINE, WM, "ERROR"]),
    *_cases("[w1=ERROR]", ["ERROR", "ERROR\n"], [EM, ERROR_LINE]),  # hence the page's "blank w2 indicator"
    *_cases("[a, b]", ["1 2", '1 "2 3"', "1 2 3 4"], ["1"]),
    *_cases('[a, b="2 3"]', ['1 "2 3"', "1 2 3"], ['1 "2 3" 4']),
    *_cases("[w1=ERROR || w1=WARNING, w2]", [ERROR_LINE, WARNING_LINE], [GET_67, POST_PART]),
    *_cases("[w1!=ERROR && w1!=WARNING, w2]", [GET_67, POST_PART], [ERROR_LINE, WARNING_LINE]),
    *_cases("[logLevel, date, time, method, url=%/service/resource/[0-9]+$%, response_time]", [GET_67],
            [POST_PART, WARNING_LINE, ERROR_LINE]),
    *_cases("[logLevel, date, time, method, url=%/service/resource/[0-9]+/part/[0-9]+$%, response_time]",
            [POST_PART], [GET_67, WARNING_LINE, ERROR_LINE]),
    # older page
    *_cases("[w1=ERROR || w1=WARN, w2]", [EM, WM], []),
    *_cases("[w1!=ERROR&&w1!=WARN, w2]", ["INFO message"], [EWM, EM, WM]),
    *_cases("[ip, user, username, timestamp, request, status_code, bytes]", [APACHE_200, APACHE_500], ["a b c"]),
    *_cases("[..., status_code, bytes]", [APACHE_200, "a b"], ["a"]),
    *_cases("[ip, user, ..., status_code, bytes]", [APACHE_200, "a b c d"], ["a b c"]),
    *_cases("[ip, user, ...]", [APACHE_200, "a b"], ["a"]),
    *_cases("[ip, user, username, timestamp, request, status_code, bytes > 1000]",
            [APACHE_200, APACHE_500, APACHE_200_B], [APACHE_404_HTML_SMALL]),
    *_cases("[ip, user, username, timestamp, request, status_code = 200, bytes]", [APACHE_200, APACHE_200_B],
            [APACHE_500]),
    *_cases("[ip, user, username, timestamp, request, status_code = 4*, bytes]", [APACHE_404_HTML],
            [APACHE_200, APACHE_500, APACHE_200_B]),
    *_cases("[ip, user, username, timestamp, request = *html*, status_code = 4*, bytes]", [APACHE_404_HTML],
            [APACHE_200, APACHE_500]),
    *_cases("[ip, user, username, timestamp, request, status_code = 4* && status_code != 403, bytes]",
            [APACHE_404_HTML], [APACHE_404_HTML.replace(" 404 ", " 403 ")]),
    *_cases("[ip, user, username, timestamp, request, status_code = 403 || status_code = 404, bytes]",
            [APACHE_404_HTML], [APACHE_200]),
    *_cases("[..., request=*.html*, status_code=4*,]", [APACHE_404_HTML], [APACHE_200]),
    # quoted and bracketed fields are one field each, tabs separate fields (Lambda's own lines)
    *_cases('[a, b="x y", c=z]', ['1 "x y" [z]'], ['1 x y [z]']),
    *_cases("[a, , c]", ["1 2 3"], ["1 2"]),
    *_cases("[time, request_id, level = ERROR, message]",
            ["2026-12-05T19:00:00.000Z\t6f1c2a1e\tERROR\tpayment failed: card declined\n"],
            ["2026-12-05T19:00:00.000Z\t6f1c2a1e\tINFO\tpayment failed: card declined\n"]),
]


@pytest.mark.parametrize(("pattern", "message", "expected"), CASES)
def test_documented_examples(pattern: str, message: str, expected: bool) -> None:
    assert compile_pattern(pattern)(message) is expected


INVALID: list[tuple[str, str]] = [
    ('{ $.level = "ERROR"', "If a filter pattern starts with '{' it must end with '}'"),
    ("[ip, user", "If a filter pattern starts with '[' it must end with ']'"),
    ("email@domain.com", "Invalid character(s) in term 'email@domain.com'"),
    ("ERROR:", "Invalid character(s) in term 'ERROR:'"),
    ("PlayerSpawned (reason", "Invalid character(s) in term '(reason'"),
    ('""', "Invalid character(s) in term '\"\"'"),
    ('"unterminated', "Invalid character(s) in term '\"unterminated'"),
    ("ERROR %x%", "Invalid character(s) in term '%x%'"),
    ("%something!%", "Invalid character(s) in term '%something!%'"),
    ("%(abc)%", "Invalid character(s) in term '%(abc)%'"),
    ("%café%", "Invalid character(s) in term '%café%'"),
    (r"%\bword%", "Invalid character(s) in term"),
    ("%[a-%", "Invalid regex"),
    ("%%", "Invalid regex"),
    ("%a{1001}%", "Invalid regex '%a{1001}%': invalid repetition size"),
    ("%a**%", "Invalid regex"),
    ("{ }", "Empty JSON filter pattern"),
    ("{ $.x }", "Unexpected end of pattern"),
    ("{ $.x = }", "Unexpected end of pattern"),
    ("{ $ = 1 }", "A selector must name a property"),
    ("{ ($.x = 1 }", "Unexpected end of pattern"),
    ("{ $.x = 1 $.y = 2 }", "Unexpected '$.y'"),
    ("{ $.x > abc }", "Operator '>' needs a number"),
    ("{ $.x < %a% }", "Operator '<' cannot take a regex"),
    ("{ $.x IS MAYBE }", "Unsupported 'IS MAYBE'"),
    ("{ $.SomeObject IS NOT NULL }", "Unsupported 'IS NOT'"),
    ("{ $.SomeObject EXISTS }", "Unexpected 'EXISTS'"),
    ('{ $."sc-status" = 5* }', "Invalid character(s) in term '$.'"),
    ("{ $.a[*].b.* = 1 }", "Too many wildcard selectors"),
    ("{ $.a[*] = 1 || $.b[*] = 1 || $.c.* = 1 || $.d[*] = 1 }", "Too many wildcard selectors"),
    ("{ $.a = %x% || $.b = %y% || $.c = %z% }", "at most 2 regular expressions"),
    ("{ $.a = 1 } junk }", "Invalid character(s) in term '}'"),
    ("[]", "Empty space-delimited filter pattern"),
    ("[ ]", "Empty space-delimited filter pattern"),
    ("[ip user]", "Unexpected 'user'"),
    ("[ip, user, username, timestamp, request, status_code = 4* && bytes > 1000]",
     "must name that field: bytes, status_code"),
    ("[a = %x%, b = %y%, c = %z%]", "at most 2 regular expressions"),
    ("[a = , b]", "Unexpected ','"),
    ("[a > b, c]", "Operator '>' needs a number"),
]


@pytest.mark.parametrize(("pattern", "detail"), INVALID)
def test_invalid_patterns(pattern: str, detail: str) -> None:
    with pytest.raises(InvalidFilterPattern) as caught:
        compile_pattern(pattern)
    message = str(caught.value)
    assert message.startswith("Invalid filter pattern: ") and detail in message, message
    assert isinstance(caught.value, ValueError)


def test_a_regex_takes_linear_time() -> None:
    """RE2, not a backtracking engine: Python's re takes seconds on this with 400 characters."""
    match = compile_pattern("%a*a*a*a*a*a*b%")
    started = time.monotonic()
    assert not match("a" * 200_000)
    assert time.monotonic() - started < 2


def test_a_refused_regex_leaves_the_servers_stderr_alone(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidFilterPattern):
        compile_pattern("%a{1001}%")  # Python's re takes it, RE2 refuses it (and would log it unless told not to)
    assert capfd.readouterr().err == ""


def test_a_compiled_pattern_is_reused() -> None:
    match = compile_pattern('{ $.level = "ERROR" && $.latency > 100 }')
    events = [json.dumps({"level": level, "latency": n}) for n in range(0, 300, 50) for level in ("ERROR", "INFO")]
    assert [json.loads(e)["latency"] for e in events if match(e)] == [150, 200, 250]


def test_the_store_is_given_only_the_substrings_every_match_contains() -> None:
    from lambdad.logs.patterns import required_substrings

    assert required_substrings("ERROR -Exiting ?WARN") == ("ERROR",)
    assert required_substrings('"took 100%" user_1') == ("took 100%", "user_1")
    assert required_substrings("?ERROR ?WARN") == ()  # any of them: nothing every match contains
    assert required_substrings('{ $.level = "ERROR" }') == ()
    assert required_substrings("[ip, user, status = 404]") == ()
    assert required_substrings("%ERR.R%") == ()
    assert required_substrings("   ") == ()
