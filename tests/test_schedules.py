"""EventBridge Scheduler (docs/events.md, "Schedules"), end to end on a real server with boto3's ``scheduler``
client and the aws CLI: an at() schedule fires once, on time, and deletes itself; a rate schedule fires at once
with its Input (context attributes filled in); a disabled schedule does not fire; groups; a target that cannot be
invoked goes to the dead-letter queue (SQS on moto_server); validation errors as Scheduler answers them;
authorization of IAM users; and schedules survive a restart, a fire missed while the server was down is made
once, late."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import time

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.server import ACCESS_KEY, SECRET_KEY, Server, _Recordings, create_python_function, wait_until
from tests.services import MOTO_ENV

ACCOUNT, REGION = "000000000000", "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function"
SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/scheduler-role"
_paths = itertools.count()


class Recorder:
    """A path on the test process's recording server that a function posts each event it gets to."""

    def __init__(self) -> None:
        shared = _Recordings.shared()
        path = f"/sched{os.getpid()}-{next(_paths)}/"
        self.events: list[dict] = shared.by_path.setdefault(path, [])
        self.url = f"http://127.0.0.1:{shared.port}{path}"

    def code(self) -> str:
        return f"""
import json, time, urllib.request
def handler(event, context):
    body = json.dumps({{"event": event, "at": time.time()}}).encode()
    urllib.request.urlopen(urllib.request.Request({self.url!r}, data=body, method="POST")).read()
"""


@pytest.fixture(scope="module")
def server(moto, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("schedules"), env={**MOTO_ENV, "AWS_ENDPOINT_URL": moto}).start()
    yield srv
    srv.stop()


@pytest.fixture
def scheduler(server):
    return server.client("scheduler")


def at_ahead(seconds: float) -> tuple[str, float]:
    """An at() expression ``seconds`` ahead (whole seconds, UTC) and its epoch time."""
    when = int(time.time() + seconds) + 1
    return f"at({dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S')})", when


def target(function: str, **extra) -> dict:
    return {"Arn": f"{FUNCTION_ARN}:{function}", "RoleArn": SCHEDULER_ROLE, **extra}


def code_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"], error["Error"]["Message"]


def test_an_at_schedule_fires_once_on_time_and_deletes_itself(server, lam, scheduler, fname) -> None:
    recorder = Recorder()
    create_python_function(lam, fname, recorder.code())
    expression, when = at_ahead(3)
    arn = scheduler.create_schedule(Name=fname, ScheduleExpression=expression, FlexibleTimeWindow={"Mode": "OFF"},
                                    Target=target(fname, Input='{"n": 1}'),
                                    ActionAfterCompletion="DELETE")["ScheduleArn"]
    assert arn == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{fname}"
    got = scheduler.get_schedule(Name=fname)
    assert got["ScheduleExpression"] == expression and got["State"] == "ENABLED"
    assert got["ScheduleExpressionTimezone"] == "UTC" and got["ActionAfterCompletion"] == "DELETE"
    assert got["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    assert wait_until(lambda: recorder.events, timeout=when - time.time() + 15)
    assert recorder.events[0]["event"] == {"n": 1}
    # fired within a second of its time (plus the function's cold start)
    assert 0 <= recorder.events[0]["at"] - when < 3.0
    assert wait_until(lambda: code_of(lambda: scheduler.get_schedule(Name=fname))[0] == "ResourceNotFoundException")
    time.sleep(2)
    assert len(recorder.events) == 1


def test_a_rate_schedule_fires_at_once_with_its_input(server, lam, scheduler, fname) -> None:
    recorder = Recorder()
    create_python_function(lam, fname, recorder.code())
    scheduler.create_schedule_group(Name=f"{fname}-g")
    payload = '{"schedule": "<aws.scheduler.schedule-arn>", "at": "<aws.scheduler.scheduled-time>", "x": [1, 2]}'
    scheduler.create_schedule(Name=fname, GroupName=f"{fname}-g", ScheduleExpression="rate(1 minute)",
                              ScheduleExpressionTimezone="Europe/Paris", FlexibleTimeWindow={"Mode": "OFF"},
                              Target=target(fname, Input=payload))
    assert wait_until(lambda: recorder.events, timeout=15)
    event = recorder.events[0]["event"]
    assert event["schedule"] == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{fname}-g/{fname}"
    assert event["x"] == [1, 2] and event["at"].endswith("Z")
    listed = scheduler.list_schedules(GroupName=f"{fname}-g")["Schedules"]
    assert [(s["Name"], s["GroupName"], s["State"], s["Target"]["Arn"]) for s in listed] == [
        (fname, f"{fname}-g", "ENABLED", f"{FUNCTION_ARN}:{fname}")]
    # deleting the group deletes its schedules
    scheduler.delete_schedule_group(Name=f"{fname}-g")
    assert code_of(lambda: scheduler.get_schedule(Name=fname, GroupName=f"{fname}-g"))[:2] == (
        "ResourceNotFoundException", 404)


def test_a_disabled_schedule_does_not_fire_until_enabled(server, lam, scheduler, fname) -> None:
    recorder = Recorder()
    create_python_function(lam, fname, recorder.code())
    common = dict(Name=fname, ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow={"Mode": "OFF"},
                  Target=target(fname, Input='{"k": "v"}'))
    scheduler.create_schedule(State="DISABLED", **common)
    time.sleep(3)
    assert recorder.events == []
    assert scheduler.list_schedules(State="DISABLED", NamePrefix=fname)["Schedules"][0]["Name"] == fname
    scheduler.update_schedule(State="ENABLED", **common)  # a rate made earlier keeps its step from its creation
    scheduler.update_schedule(State="DISABLED", **common)
    time.sleep(2)
    assert recorder.events == []
    scheduler.delete_schedule(Name=fname)


def test_the_aws_cli(server, lam, fname) -> None:
    recorder = Recorder()
    create_python_function(lam, fname, recorder.code())
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": REGION}
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_PROFILE", None)
    due = int(time.time()) + 5  # at() a few seconds ahead: a cron(* * * * ? *) would wait up to a minute
    expression = f"at({dt.datetime.fromtimestamp(due, dt.timezone.utc):%Y-%m-%dT%H:%M:%S})"
    out = subprocess.run(
        ["aws", "--endpoint-url", server.endpoint, "scheduler", "create-schedule", "--name", fname,
         "--schedule-expression", expression, "--flexible-time-window", '{"Mode": "OFF"}',
         "--target", json.dumps(target(fname, Input='{"from": "cli"}'))],
        capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["ScheduleArn"].endswith(f":schedule/default/{fname}")
    shown = subprocess.run(["aws", "--endpoint-url", server.endpoint, "scheduler", "get-schedule", "--name", fname],
                           capture_output=True, text=True, env=env, timeout=60)
    assert json.loads(shown.stdout)["ScheduleExpression"] == expression
    assert wait_until(lambda: recorder.events, timeout=30)
    assert recorder.events[0]["event"] == {"from": "cli"}
    assert due <= float(recorder.events[0]["at"]) < due + 3  # within a second or two of its time


def test_a_target_that_cannot_be_invoked_goes_to_the_dead_letter_queue(server, lam, scheduler, aws, fname) -> None:
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=f"{fname}-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    scheduler.create_schedule(
        Name=fname, ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
        Target=target(f"{fname}-missing", Input='{"lost": true}', RetryPolicy={"MaximumRetryAttempts": 1},
                      DeadLetterConfig={"Arn": queue_arn}))
    messages: list = []

    def received() -> bool:
        messages.extend(sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                                            WaitTimeSeconds=1).get("Messages", []))
        return bool(messages)

    assert wait_until(received, timeout=20)
    (message,) = messages
    assert json.loads(message["Body"]) == {"lost": True}
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "ResourceNotFoundException"
    assert attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
    assert attributes["RETRY_ATTEMPTS"] == "1"
    assert attributes["SCHEDULE_ARN"].endswith(f":schedule/default/{fname}")
    assert attributes["TARGET_ARN"] == f"{FUNCTION_ARN}:{fname}-missing"
    scheduler.delete_schedule(Name=fname)
    # an Input that is not JSON, which Lambda refuses: no retry left, so at once to the queue
    create_python_function(lam, fname, "def handler(event, context):\n    return 1\n")
    scheduler.create_schedule(
        Name=f"{fname}-text", ScheduleExpression="rate(1 hour)", FlexibleTimeWindow={"Mode": "OFF"},
        Target=target(fname, Input="not json", RetryPolicy={"MaximumRetryAttempts": 0},
                      DeadLetterConfig={"Arn": queue_arn}))
    messages.clear()
    assert wait_until(received, timeout=20)
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert messages[0]["Body"] == "not json"
    assert (attributes["ERROR_CODE"], attributes["RETRY_ATTEMPTS"]) == ("InvalidRequestContentException", "0")
    scheduler.delete_schedule(Name=f"{fname}-text")


def test_validation_errors(server, scheduler, fname) -> None:
    raw = server.client("scheduler", parameter_validation=False)  # what the server says, not botocore
    ok = dict(Name=fname, ScheduleExpression="rate(5 minutes)", FlexibleTimeWindow={"Mode": "OFF"},
              Target=target(fname))
    cases = [
        ({"ScheduleExpression": "cron(* * * * * *)"}, "exactly one of day-of-month and day-of-week must be ?"),
        ({"ScheduleExpression": "rate(5 weeks)"}, "rate(5 weeks)"),
        ({"ScheduleExpression": "at(2027-02-30T00:00:00)"}, "at(2027-02-30T00:00:00)"),
        ({"ScheduleExpressionTimezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE"}}, "MaximumWindowInMinutes"),
        ({"FlexibleTimeWindow": {"Mode": "SOMETIMES"}}, "Member must satisfy enum value set: [OFF, FLEXIBLE]"),
        ({"StartDate": dt.datetime(2030, 1, 2), "EndDate": dt.datetime(2030, 1, 1)}, "EndDate"),
        ({"Target": {"Arn": "arn:aws:sqs:us-east-1:000000000000:q", "RoleArn": SCHEDULER_ROLE}}, "Lambda"),
        ({"Target": {"Arn": f"{FUNCTION_ARN}:{fname}"}}, "Value null at 'target.roleArn'"),
        ({"Target": {"Arn": f"{FUNCTION_ARN}:{fname}", "RoleArn": "not-a-role"}},
         "Member must satisfy regular expression pattern"),
        ({"Target": {**target(fname), "RetryPolicy": {"MaximumRetryAttempts": 186}}},
         "Member must have value less than or equal to 185"),
        ({"Name": "bad/name!"}, "pattern"),
    ]
    for change, words in cases:
        code, status, message = code_of(lambda: raw.create_schedule(**{**ok, **change}))
        assert (code, status) == ("ValidationException", 400), (change, message)
        assert words in message, (change, message)
    scheduler.create_schedule(**ok)
    assert code_of(lambda: scheduler.create_schedule(**ok))[:2] == ("ConflictException", 409)
    assert code_of(lambda: scheduler.create_schedule(**{**ok, "GroupName": "nope"}))[:2] == (
        "ResourceNotFoundException", 404)
    assert code_of(lambda: scheduler.update_schedule(**{**ok, "Name": f"{fname}-x"}))[:2] == (
        "ResourceNotFoundException", 404)
    assert code_of(lambda: scheduler.delete_schedule(Name=f"{fname}-x"))[:2] == ("ResourceNotFoundException", 404)
    assert code_of(lambda: scheduler.delete_schedule_group(Name="default"))[:2] == ("ValidationException", 400)
    scheduler.create_schedule_group(Name=f"{fname}-g")
    assert code_of(lambda: scheduler.create_schedule_group(Name=f"{fname}-g"))[:2] == ("ConflictException", 409)
    group = scheduler.get_schedule_group(Name=f"{fname}-g")
    assert group["State"] == "ACTIVE" and group["Arn"].endswith(f":schedule-group/{fname}-g")
    names = [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"]]
    assert "default" in names and f"{fname}-g" in names
    code, status, message = code_of(lambda: scheduler.list_tags_for_resource(ResourceArn=group["Arn"]))
    assert (code, status) == ("NotImplemented", 501) and "ListTagsForResource" in message
    scheduler.delete_schedule(Name=fname)


def test_iam_users_need_scheduler_actions(server, scheduler, fname) -> None:
    iam = server.client("iam")
    iam.create_user(UserName=fname)
    key = iam.create_access_key(UserName=fname)["AccessKey"]
    user = server.client("scheduler", access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    code, status, message = code_of(lambda: user.list_schedules())
    assert (code, status) == ("AccessDeniedException", 403) and "scheduler:ListSchedules" in message
    iam.put_user_policy(UserName=fname, PolicyName="p", PolicyDocument=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "scheduler:*",
         "Resource": [f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{fname}*", "*"]}]}))
    assert wait_until(lambda: "Schedules" in user.list_schedules(), timeout=5)
    code, _, message = code_of(lambda: user.create_schedule(
        Name=fname, ScheduleExpression="rate(1 day)", FlexibleTimeWindow={"Mode": "OFF"}, Target=target(fname)))
    assert code == "AccessDeniedException" and "iam:PassRole" in message
    iam.put_user_policy(UserName=fname, PolicyName="pass", PolicyDocument=json.dumps({"Statement": [
        {"Effect": "Allow", "Action": "iam:PassRole", "Resource": SCHEDULER_ROLE,
         "Condition": {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}}]}))
    user.create_schedule(Name=fname, ScheduleExpression="rate(1 day)", StartDate=dt.datetime(2030, 1, 1),
                         FlexibleTimeWindow={"Mode": "OFF"}, Target=target(fname))
    user.delete_schedule(Name=fname)


def test_schedules_survive_a_restart_and_a_missed_fire_is_made_once(fresh_server, tmp_path, fname) -> None:
    recorder = Recorder()
    srv = fresh_server(data_dir=tmp_path / "data")
    lam, scheduler = srv.client(), srv.client("scheduler")
    create_python_function(lam, fname, recorder.code())
    missed, missed_at = at_ahead(2)  # due while the server is down
    later, later_at = at_ahead(12)  # due after it is back
    for name, expression in ((f"{fname}-missed", missed), (f"{fname}-later", later)):
        scheduler.create_schedule(Name=name, ScheduleExpression=expression, FlexibleTimeWindow={"Mode": "OFF"},
                                  Target=target(fname, Input=json.dumps({"name": name})))
    scheduler.create_schedule(Name=f"{fname}-flex", ScheduleExpression="cron(0 3 * * ? *)",
                              ScheduleExpressionTimezone="America/New_York", State="DISABLED",
                              FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
                              Target=target(fname))
    srv.stop()
    time.sleep(max(0.0, missed_at - time.time() + 2))
    srv = fresh_server(data_dir=tmp_path / "data")
    scheduler = srv.client("scheduler")
    assert wait_until(lambda: len(recorder.events) >= 1, timeout=10)
    assert recorder.events[0]["event"] == {"name": f"{fname}-missed"}  # late, once
    assert wait_until(lambda: f"scheduler default/{fname}-missed: the occurrence of" in "".join(srv.output))
    assert wait_until(lambda: len(recorder.events) >= 2, timeout=later_at - time.time() + 10)
    assert recorder.events[1]["event"] == {"name": f"{fname}-later"}
    assert 0 <= recorder.events[1]["at"] - later_at < 3.0
    flex = scheduler.get_schedule(Name=f"{fname}-flex")
    assert flex["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert flex["ScheduleExpressionTimezone"] == "America/New_York" and flex["State"] == "DISABLED"
    names = {s["Name"] for s in scheduler.list_schedules()["Schedules"]}
    assert {f"{fname}-missed", f"{fname}-later", f"{fname}-flex"} <= names
    time.sleep(2)
    assert len(recorder.events) == 2


def test_a_cluster_fires_each_occurrence_once_and_another_node_takes_over(cluster, fname) -> None:
    """Two nodes: schedules made on either fire once (by the holder of the lease ``timers``); when the holder is
    killed, the other node takes the lease and fires what comes due (within the lease's TTL)."""
    import re
    import signal
    import sys

    from tests.services import NATS

    nodes = cluster(2).nodes
    recorder = Recorder()
    create_python_function(nodes[0].client(), fname, recorder.code())
    first, first_at = at_ahead(3)
    nodes[1].client("scheduler").create_schedule(Name=f"{fname}-1", ScheduleExpression=first,
                                                 FlexibleTimeWindow={"Mode": "OFF"},
                                                 Target=target(fname, Input='{"n": 1}'))
    assert wait_until(lambda: recorder.events, timeout=first_at - time.time() + 10)
    time.sleep(2)
    assert [e["event"] for e in recorder.events] == [{"n": 1}]
    name = nodes[0].extra_env["LAMBDAD_CLUSTER_NAME"]
    out = subprocess.run([sys.executable, "-m", "lambdad", "cluster", "status", "--nats-url", NATS,
                          "--cluster-name", name], capture_output=True, text=True, timeout=30).stdout
    holder = re.search(r"lease timers: held by (\S+)", out)
    assert holder is not None, out
    endpoints = {line.split("\t")[0]: line.split("\t")[1] for line in out.splitlines() if "\t" in line}
    victim = next(n for n in nodes if n.endpoint == endpoints[holder.group(1)])
    survivor = next(n for n in nodes if n is not victim)
    second, second_at = at_ahead(2)
    survivor.client("scheduler").create_schedule(Name=f"{fname}-2", ScheduleExpression=second,
                                                 FlexibleTimeWindow={"Mode": "OFF"},
                                                 Target=target(fname, Input='{"n": 2}'))
    victim.stop(signal.SIGKILL)
    assert wait_until(lambda: len(recorder.events) >= 2, timeout=second_at - time.time() + 20)
    time.sleep(2)
    assert [e["event"] for e in recorder.events] == [{"n": 1}, {"n": 2}]
