"""S3 object events from S3-compatible stores (docs/events.md, "S3 object events"): notification endpoints put,
read and deleted through the server's API (botocore client of s3events/api.py) and `lambdad s3-notifications`, and
the records MinIO's webhook target sends (tests/data/s3events/) POSTed to ``/s3-events/<id>`` of a real server,
reaching the function asynchronously in Lambda's S3 event shape — filtered by event type and key prefix/suffix;
bad tokens, bad bodies and oversize bodies refused; endpoints kept over a restart.

No MinIO runs here, so the store's side is the bodies and headers MinIO's source shows it sending; an end-to-end
test with a ``minio`` binary on PATH runs only where there is one (marked, skipped otherwise)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from lambdad.s3events.client import make_client
from tests.server import ACCESS_KEY, SECRET_KEY, Server, create_python_function, wait_until

DATA = Path(__file__).parent / "data" / "s3events"
PRINTING = "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n"


def notifications(server: Server) -> Any:
    session = botocore.session.Session()
    session.set_credentials(ACCESS_KEY, SECRET_KEY)
    client = make_client(session, server.endpoint, "us-east-1")
    server._clients.append(client)
    return client


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    """A MinIO body from tests/data/s3events, with the record's object key (and the envelope's Key) changed."""
    body = json.loads((DATA / name).read_text())
    if "key" in changes:
        body["Records"][0]["s3"]["object"]["key"] = changes["key"]
    return body


def post(server: Server, path: str, body: bytes | dict[str, Any] | None, *, token: str | None = None,
         method: str = "POST", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=data if method != "HEAD" else None, headers=sent)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def announce(server: Server, path: str, length: int, token: str) -> int:
    """The status of a POST whose head announces ``length`` bytes of body and sends none of them: what a body
    over the limit is answered before it is read (sending it would race the server's close)."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\n").encode())
        answer = sock.recv(4096)
    return int(answer.split(b" ", 2)[1])


def records(server: Server, name: str) -> list[dict[str, Any]]:
    logs = server.client("logs")
    try:
        events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    except ClientError:
        return []
    return [json.loads(e["message"].split("RECORD ", 1)[1]) for e in events if "RECORD " in e["message"]]


@pytest.fixture
def endpoint(server: Server, lam: Any, fname: str) -> tuple[str, str]:
    """A printing function with a notification endpoint for created objects: (path, token)."""
    create_python_function(lam, fname, PRINTING)
    out = notifications(server).put_s3_notification_configuration(
        FunctionName=fname, Events=["s3:ObjectCreated:*"], ConfigurationId="thumbnails")
    return out["EndpointPath"], out["Token"]


def test_a_minio_record_reaches_the_function_as_lambdas_s3_event(server, fname, endpoint) -> None:
    path, token = endpoint
    status, body = post(server, path, fixture("minio-put.json"), token=token)
    assert status == 200, body
    assert json.loads(body)["Queued"] == 1
    assert wait_until(lambda: records(server, fname), timeout=30)
    (event,) = records(server, fname)
    (record,) = event["Records"]
    assert record == {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-12-05T21:14:03.512Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "minioadmin"},
        "requestParameters": {"sourceIPAddress": "172.17.0.1"},
        "responseElements": {"x-amz-request-id": "187E3A0C5D2F1B6A",
                             "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "thumbnails",
               "bucket": {"name": "photos", "ownerIdentity": {"principalId": "minioadmin"},
                          "arn": "arn:aws:s3:::photos"},
               # S3's encoding of the key: "/" kept, a space "+" (MinIO sent Go's QueryEscape: %2F)
               "object": {"key": "2026/holiday+snap.jpg", "size": 224662,
                          "eTag": "5fc7298143efe1276d39a3466d4e255f", "sequencer": "187E3A0C5D3B0F2E"}},
    }


def test_records_are_filtered_by_event_type_and_key_prefix_and_suffix(server, lam, fname) -> None:
    create_python_function(lam, fname, PRINTING)
    api = notifications(server)
    out = api.put_s3_notification_configuration(
        FunctionName=fname, Events=["s3:ObjectCreated:Put", "s3:ObjectRemoved:*"],
        Filter={"Key": {"FilterRules": [{"Name": "prefix", "Value": "2026/"}, {"Name": "Suffix", "Value": ".jpg"}]}})
    path, token = out["EndpointPath"], out["Token"]
    assert out["Filter"] == {"Key": {"FilterRules": [{"Name": "Prefix", "Value": "2026/"},
                                                     {"Name": "Suffix", "Value": ".jpg"}]}}
    sent = [  # (body, queued?)
        (fixture("minio-put.json"), True),  # 2026/holiday snap.jpg
        (fixture("minio-put.json", key="2025%2Fholiday.jpg"), False),  # prefix
        (fixture("minio-put.json", key="2026%2Fnotes.txt"), False),  # suffix
        (fixture("minio-delete.json"), False),  # 2026/old.png: suffix
        (fixture("minio-delete.json", key="2026%2Fgone.jpg"), True),  # ObjectRemoved:* takes Delete
    ]
    copied = fixture("minio-put.json", key="2026%2Fcopy.jpg")
    copied["Records"][0]["eventName"] = "s3:ObjectCreated:Copy"  # not Put
    sent.append((copied, False))
    for body, queued in sent:
        status, answer = post(server, path, body, token=token)
        assert status == 200 and json.loads(answer)["Queued"] == int(queued), (body["Records"][0], answer)
    assert wait_until(lambda: len(records(server, fname)) >= 2, timeout=30)
    time.sleep(1.0)  # nothing else comes
    got = sorted((r["Records"][0]["eventName"], r["Records"][0]["s3"]["object"]["key"]) for r in records(server, fname))
    assert got == [("ObjectCreated:Put", "2026/holiday+snap.jpg"), ("ObjectRemoved:Delete", "2026/gone.jpg")]
    removed = next(r["Records"][0] for r in records(server, fname)
                   if r["Records"][0]["eventName"].startswith("ObjectRemoved"))
    assert "size" not in removed["s3"]["object"] and "eTag" not in removed["s3"]["object"]  # as S3 sends a removal


def test_several_records_in_one_body_invoke_the_function_once_each(server, fname, endpoint) -> None:
    """Ceph RGW and others may send {"Records": [...]} with several; S3 invokes once per record."""
    path, token = endpoint
    one = fixture("minio-put.json")["Records"][0]
    two = json.loads(json.dumps(one))
    two["s3"]["object"]["key"] = "second.jpg"
    two["eventName"] = "ObjectCreated:Post"  # without the "s3:" prefix, as S3 and Ceph write it
    status, answer = post(server, path, {"Records": [one, two]}, token=token)
    assert status == 200 and json.loads(answer) == {"Message": "OK", "Queued": 2, "Filtered": 0}
    assert wait_until(lambda: len(records(server, fname)) == 2, timeout=30)
    assert all(len(r["Records"]) == 1 for r in records(server, fname))


def test_bad_tokens_unknown_ids_and_bad_bodies_are_refused(server, fname, endpoint) -> None:
    path, token = endpoint
    body = fixture("minio-put.json")
    forbidden = (403, b'{"Message": "Forbidden"}')
    assert post(server, path, body, token=token + "x") == forbidden
    assert post(server, path, body, token=token[:-1]) == forbidden
    assert post(server, path, body) == forbidden  # no Authorization
    assert post(server, path, body, headers={"Authorization": token}) == forbidden  # not "Bearer <token>"
    assert post(server, "/s3-events/" + "a" * 32, body, token=token) == forbidden  # another id: the same answer
    assert post(server, "/s3-events/nope", body, token=token) == forbidden
    basic = "Basic " + base64.b64encode(f"lambdad:{token}".encode()).decode()  # credentials in a store's URL
    assert post(server, path, fixture("minio-delete.json"), headers={"Authorization": basic})[0] == 200
    wrong = "Basic " + base64.b64encode(f"{token}:x".encode()).decode()
    assert post(server, path, body, headers={"Authorization": wrong}) == forbidden
    assert post(server, path, body, headers={"Authorization": "Basic !!"}) == forbidden
    assert post(server, path, body, token=token, method="HEAD")[0] == 200  # MinIO's is-it-up check
    assert post(server, path, body, token=token, method="GET")[0] == 405
    assert post(server, path, b"{not json", token=token)[0] == 400
    assert post(server, path, {"Records": []}, token=token)[0] == 400
    assert post(server, path, {"Records": [{"eventName": "s3:ObjectCreated:Put"}]}, token=token)[0] == 400
    assert post(server, path, {"Records": [body["Records"][0]] * 101}, token=token)[0] == 400  # over the record limit
    assert announce(server, path, 256 * 1024 + 1, token) == 413  # over LAMBDAD_S3_EVENTS_MAX_BODY_KB (256)
    assert announce(server, path, 256 * 1024 + 1, "wrong") == 413  # refused by its size before anything is read
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-05T21:00:00.000Z",
                  "Bucket": "photos"}
    assert post(server, path, test_event, token=token)[0] == 200  # S3's test event: taken, nothing invoked
    time.sleep(1.0)
    assert records(server, fname) == []


def test_a_sigv4_signed_request_of_a_principal_that_may_invoke_is_taken(server, fname, endpoint) -> None:
    path, _ = endpoint
    data = json.dumps(fixture("minio-put.json")).encode()
    url = f"{server.endpoint}{path}"
    request = AWSRequest(method="POST", url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(request)
    assert post(server, path, data, headers=dict(request.headers.items()))[0] == 200
    wrong = AWSRequest(method="POST", url=url, data=data, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, "not-the-secret"), "lambda", "us-east-1").add_auth(wrong)
    assert post(server, path, data, headers=dict(wrong.headers.items()))[0] == 403
    assert wait_until(lambda: records(server, fname), timeout=30)


def test_the_api_validates_keeps_the_id_and_token_and_makes_new_tokens(server, lam, fname) -> None:
    api = notifications(server)
    with pytest.raises(ClientError) as caught:
        api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    create_python_function(lam, fname, PRINTING)
    for events, rules, wanted in [
        (["ObjectCreated:*"], [], "s3:Type:Detail"),
        (["s3:ObjectCreated:Put*"], [], "not supported"),
        (["s3:ObjectCreated:*"], [{"Name": "prefix", "Value": "a"}, {"Name": "Prefix", "Value": "b"}],
         "more than one prefix"),
        (["s3:ObjectCreated:*"], [{"Name": "middle", "Value": "a"}], "prefix or suffix"),
    ]:
        with pytest.raises(ClientError) as caught:
            api.put_s3_notification_configuration(FunctionName=fname, Events=events,
                                                  Filter={"Key": {"FilterRules": rules}})
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert wanted in caught.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as caught:
        api.get_s3_notification_configuration(FunctionName=fname)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"

    first = api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
    assert first["FunctionArn"] == f"arn:aws:lambda:us-east-1:000000000000:function:{fname}"
    again = api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectRemoved:*"])
    assert again["EndpointPath"] == first["EndpointPath"] and "Token" not in again  # the same endpoint, token kept
    got = api.get_s3_notification_configuration(FunctionName=fname)
    assert got["Events"] == ["s3:ObjectRemoved:*"] and "Token" not in got
    path = first["EndpointPath"]
    delete = fixture("minio-delete.json")
    assert post(server, path, delete, token=first["Token"])[0] == 200
    renewed = api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectRemoved:*"],
                                                    NewToken=True)
    assert renewed["Token"] != first["Token"]
    assert post(server, path, delete, token=first["Token"])[0] == 403
    assert post(server, path, delete, token=renewed["Token"])[0] == 200
    mine = "my-own-token-of-minio-0123456789"
    assert "Token" not in api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectRemoved:*"],
                                                                Token=mine)
    assert post(server, path, delete, token=mine)[0] == 200
    listed = api.list_s3_notification_configurations(FunctionName=fname)["NotificationConfigurations"]
    assert [c["EndpointPath"] for c in listed] == [path]
    api.delete_s3_notification_configuration(FunctionName=fname)
    assert post(server, path, delete, token=mine)[0] == 403
    with pytest.raises(ClientError) as caught:
        api.delete_s3_notification_configuration(FunctionName=fname)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_an_alias_has_its_own_endpoint_and_deleting_the_function_deletes_them(server, lam, fname) -> None:
    create_python_function(lam, fname, PRINTING)
    version = lam.publish_version(FunctionName=fname)["Version"]
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion=version)
    api = notifications(server)
    live = api.put_s3_notification_configuration(FunctionName=fname, Qualifier="live", Events=["s3:ObjectCreated:*"])
    latest = api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
    assert live["FunctionArn"].endswith(f"{fname}:live") and live["EndpointPath"] != latest["EndpointPath"]
    assert post(server, live["EndpointPath"], fixture("minio-put.json"), token=live["Token"])[0] == 200
    assert wait_until(lambda: records(server, fname), timeout=30)
    lam.delete_function(FunctionName=fname)
    assert api.list_s3_notification_configurations(FunctionName=fname)["NotificationConfigurations"] == []
    assert post(server, live["EndpointPath"], fixture("minio-put.json"), token=live["Token"])[0] == 403


def test_a_user_needs_the_lambdad_actions(server, lam, fname) -> None:
    create_python_function(lam, fname, PRINTING)
    iam = server.client("iam")
    user = f"s3n-{fname}"[:64]
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = botocore.session.Session()
    session.set_credentials(key["AccessKeyId"], key["SecretAccessKey"])
    api = make_client(session, server.endpoint, "us-east-1")
    try:
        with pytest.raises(ClientError) as caught:
            api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "lambdad:PutS3NotificationConfiguration" in caught.value.response["Error"]["Message"]
        arn = f"arn:aws:lambda:us-east-1:000000000000:function:{fname}"
        iam.put_user_policy(UserName=user, PolicyName="s3n", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "lambdad:*", "Resource": arn}]}))
        assert wait_until(lambda: _may_put(api, fname), timeout=10)
    finally:
        api.close()


def _may_put(api: Any, fname: str) -> bool:
    try:
        api.put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
    except ClientError:
        return False
    return True


def test_the_cli_puts_gets_lists_and_deletes(server, lam, fname) -> None:
    create_python_function(lam, fname, PRINTING)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "lambdad", "s3-notifications", *args, "--endpoint-url",
                               server.endpoint], capture_output=True, text=True, env=env, timeout=60)

    put = cli("put", fname, "--events", "s3:ObjectCreated:*", "--events", "s3:ObjectRemoved:Delete",
              "--prefix", "2026/")
    assert put.returncode == 0, put.stderr
    out = json.loads(put.stdout)
    assert out["Endpoint"] == f"{server.endpoint}{out['EndpointPath']}" and out["Token"]
    assert "shown this once" in put.stderr
    assert post(server, urlsplit(out["Endpoint"]).path, fixture("minio-put.json"), token=out["Token"])[0] == 200
    got = json.loads(cli("get", fname).stdout)
    assert got["Events"] == ["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"] and "Token" not in got
    assert any(c["NotificationId"] == out["NotificationId"]
               for c in json.loads(cli("list").stdout)["NotificationConfigurations"])
    assert cli("delete", fname).returncode == 0
    missing = cli("get", fname)
    assert missing.returncode == 1 and "ResourceNotFoundException" in missing.stderr


@pytest.mark.skipif(shutil.which("aws") is None, reason="needs the aws CLI")
def test_the_aws_cli_drives_the_api_with_the_model_lambdad_writes(server, lam, fname, tmp_path) -> None:
    create_python_function(lam, fname, PRINTING)
    made = subprocess.run([sys.executable, "-m", "lambdad", "s3-notifications", "model", str(tmp_path / "models")],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    env = {**os.environ, "AWS_DATA_PATH": str(tmp_path / "models"), "AWS_ACCESS_KEY_ID": ACCESS_KEY,
           "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_PROFILE", None)
    put = subprocess.run(["aws", "lambdad-s3-notifications", "put-s3-notification-configuration", "--endpoint-url", server.endpoint,
                          "--function-name", fname, "--events", "s3:ObjectCreated:*", "--filter",
                          json.dumps({"Key": {"FilterRules": [{"Name": "suffix", "Value": ".jpg"}]}})],
                         capture_output=True, text=True, env=env, timeout=60)
    assert put.returncode == 0, put.stderr
    out = json.loads(put.stdout)
    assert post(server, out["EndpointPath"], fixture("minio-put.json"), token=out["Token"])[0] == 200
    assert wait_until(lambda: records(server, fname), timeout=30)
    bad = subprocess.run(["aws", "lambdad-s3-notifications", "put-s3-notification-configuration", "--endpoint-url", server.endpoint,
                          "--function-name", fname, "--events", "ObjectCreated"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode != 0 and "InvalidParameterValueException" in bad.stderr


def test_a_restart_keeps_the_endpoints(fresh_server, tmp_path, fname) -> None:
    env = {"LAMBDAD_ASYNC_RETRY_DELAYS": "0.5,0.5", "LAMBDAD_S3_EVENTS_MAX_BODY_KB": "2048",
           "LAMBDAD_S3_EVENTS_MAX_RECORDS": "2"}
    srv = fresh_server(env)
    create_python_function(srv.client(), fname, PRINTING)
    out = notifications(srv).put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"],
                                                               Filter={"Key": {"FilterRules": [
                                                                   {"Name": "suffix", "Value": ".jpg"}]}})
    srv.stop()
    again = fresh_server(env, data_dir=srv.data_dir)
    got = notifications(again).get_s3_notification_configuration(FunctionName=fname)
    assert got["EndpointPath"] == out["EndpointPath"] and got["Filter"] == out["Filter"]
    status, answer = post(again, out["EndpointPath"], fixture("minio-put.json"), token=out["Token"])
    assert status == 200 and json.loads(answer)["Queued"] == 1
    assert wait_until(lambda: records(again, fname), timeout=30)
    # the settings: two records at most, bodies up to 2 MiB, but no event over an Event invocation's 1 MB
    one = fixture("minio-put.json")["Records"][0]
    assert post(again, out["EndpointPath"], {"Records": [one] * 3}, token=out["Token"])[0] == 400
    huge = fixture("minio-put.json", key="a" * 1_200_000 + ".jpg")
    status, answer = post(again, out["EndpointPath"], huge, token=out["Token"])
    assert status == 400 and b"limit of an asynchronous invocation" in answer


@pytest.mark.skipif(shutil.which("minio") is None or shutil.which("mc") is None,
                    reason="needs the minio server and mc client on PATH (not installable here)")
def test_a_real_minio_triggers_the_function(server, lam, fname, tmp_path) -> None:  # pragma: no cover
    """End to end with a real MinIO: an object put with mc reaches the function."""
    import socket

    create_python_function(lam, fname, PRINTING)
    out = notifications(server).put_s3_notification_configuration(FunctionName=fname, Events=["s3:ObjectCreated:*"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MINIO_ROOT_USER": "minioadmin", "MINIO_ROOT_PASSWORD": "minioadmin",
           "MINIO_NOTIFY_WEBHOOK_ENABLE_LAMBDAD": "on",
           "MINIO_NOTIFY_WEBHOOK_ENDPOINT_LAMBDAD": f"{server.endpoint}{out['EndpointPath']}",
           "MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN_LAMBDAD": out["Token"],
           "MINIO_NOTIFY_WEBHOOK_QUEUE_DIR_LAMBDAD": str(tmp_path / "queue")}
    minio = subprocess.Popen(["minio", "server", str(tmp_path / "data"), "--address", f"127.0.0.1:{port}"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mc = {**os.environ, "MC_HOST_local": f"http://minioadmin:minioadmin@127.0.0.1:{port}"}
        assert wait_until(lambda: subprocess.run(["mc", "mb", "-p", "local/photos"], env=mc).returncode == 0, 30)
        subprocess.run(["mc", "event", "add", "local/photos", "arn:minio:sqs::LAMBDAD:webhook", "--event", "put"],
                       env=mc, check=True)
        (tmp_path / "a b.jpg").write_bytes(b"jpeg")
        subprocess.run(["mc", "cp", str(tmp_path / "a b.jpg"), "local/photos/2026/a b.jpg"], env=mc, check=True)
        assert wait_until(lambda: records(server, fname), timeout=30)
        assert records(server, fname)[0]["Records"][0]["s3"]["object"]["key"] == "2026/a+b.jpg"
    finally:
        minio.terminate()
        minio.wait(10)


def test_an_endpoint_put_on_one_node_is_served_by_another(cluster, fname) -> None:
    """Cluster mode: the endpoint is in the shared database; a store may POST to any node."""
    nodes = cluster(2, {"LAMBDAD_ASYNC_RETRY_DELAYS": "0.5,0.5"}).nodes
    create_python_function(nodes[0].client(), fname, PRINTING)
    out = notifications(nodes[0]).put_s3_notification_configuration(FunctionName=fname,
                                                                    Events=["s3:ObjectCreated:*"])
    status, answer = post(nodes[1], out["EndpointPath"], fixture("minio-put.json"), token=out["Token"])
    assert status == 200 and json.loads(answer)["Queued"] == 1, answer
    assert wait_until(lambda: records(nodes[0], fname), timeout=30)
    notifications(nodes[1]).delete_s3_notification_configuration(FunctionName=fname)
    assert post(nodes[0], out["EndpointPath"], fixture("minio-put.json"), token=out["Token"])[0] == 403
