"""EventBridge (docs/events.md, "Rules and event buses"), end to end: a real server, boto3's ``events`` client and
the aws CLI. PutEvents routed by pattern to two functions and not to a third, an input transformer, a disabled
rule that does not fire, a target refused for want of permission (logged, counted, dead-lettered to SQS on a
moto_server), buses, rules and targets kept over a restart, AWS's error shapes, a Lambda destination naming a bus
of this server, and a user whose IAM policy allows only some EventBridge actions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.server import ACCESS_KEY, SECRET_KEY, Server, create_python_function, wait_until, logged
from tests.services import MOTO_ENV

ACCOUNT = "000000000000"
FN_ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"
RULE_ARN = f"arn:aws:events:us-east-1:{ACCOUNT}:rule"
PRINTING = "import json\ndef handler(event, context):\n    print('RECORD ' + json.dumps(event))\n"


@pytest.fixture(scope="module")
def server(moto, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("events"), env={
        **MOTO_ENV, "AWS_ENDPOINT_URL": moto, "LAMBDAD_ASYNC_RETRY_DELAYS": "0.3,0.3",
        "LAMBDAD_METRICS_FLUSH_SECONDS": "0.5"}).start()
    yield srv
    srv.stop()


@pytest.fixture
def events(server):
    return server.client("events")


def records(server, name: str) -> list[Any]:
    return [json.loads(text) for text in logged(server, name, "RECORD ")]


def printing_function(lam, name: str, rule: str | None = None, bus: str | None = None) -> str:
    """A function that prints what it gets; allowed to EventBridge for ``rule`` (of ``bus``) when given."""
    create_python_function(lam, name, PRINTING)
    if rule is not None:
        lam.add_permission(FunctionName=name, StatementId="events", Action="lambda:InvokeFunction",
                           Principal="events.amazonaws.com", SourceArn=rule_arn(rule, bus))
    return f"{FN_ARN}:{name}"


def rule_arn(rule: str, bus: str | None = None) -> str:
    return f"{RULE_ARN}/{bus}/{rule}" if bus else f"{RULE_ARN}/{rule}"


def test_put_events_routes_by_pattern_to_two_functions_and_not_a_third(server, lam, events, fname) -> None:
    bus = f"{fname[:40]}-bus"
    assert events.create_event_bus(Name=bus)["EventBusArn"] == f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/{bus}"
    patterns = {
        "big": {"source": ["shop.orders"], "detail": {"total": [{"numeric": [">", 100]}]}},
        "shop": {"source": [{"prefix": "shop."}], "detail-type": [{"equals-ignore-case": "order placed"}]},
        "other": {"source": ["shop.orders"], "detail": {"total": [{"numeric": ["<", 100]}]}},
    }
    for key, pattern in patterns.items():
        rule = f"{fname[:40]}-{key}"
        arn = events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(pattern))["RuleArn"]
        assert arn == rule_arn(rule, bus)
        target = printing_function(lam, f"{fname}-{key}", rule, bus)
        out = events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "fn", "Arn": target}])
        assert out["FailedEntryCount"] == 0 and out["FailedEntries"] == []
    sent = events.put_events(Entries=[{"Source": "shop.orders", "DetailType": "Order Placed", "EventBusName": bus,
                                       "Resources": ["arn:aws:shop:::order/1"],
                                       "Detail": json.dumps({"total": 150, "id": "o-1"})}])
    assert sent["FailedEntryCount"] == 0
    (entry,) = sent["Entries"]
    assert wait_until(lambda: records(server, f"{fname}-big") and records(server, f"{fname}-shop"), timeout=30)
    for key in ("big", "shop"):
        (got,) = records(server, f"{fname}-{key}")
        assert got["id"] == entry["EventId"]
        assert got["version"] == "0" and got["detail-type"] == "Order Placed" and got["source"] == "shop.orders"
        assert got["account"] == ACCOUNT and got["region"] == "us-east-1" and got["time"].endswith("Z")
        assert got["resources"] == ["arn:aws:shop:::order/1"] and got["detail"] == {"total": 150, "id": "o-1"}
    time.sleep(1.0)
    assert records(server, f"{fname}-other") == []
    # the default bus has none of these rules
    events.put_events(Entries=[{"Source": "shop.orders", "DetailType": "Order Placed", "Detail": '{"total": 500}'}])
    time.sleep(1.0)
    assert len(records(server, f"{fname}-big")) == 1


def test_input_transformer_input_path_and_input(server, lam, events, fname) -> None:
    rule = f"{fname[:50]}-r"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["ec2.like"]}))
    arns = {key: printing_function(lam, f"{fname}-{key}", rule) for key in ("tr", "path", "fixed")}
    out = events.put_targets(Rule=rule, Targets=[
        {"Id": "tr", "Arn": arns["tr"], "InputTransformer": {
            "InputPathsMap": {"instance": "$.detail.instance-id", "state": "$.detail.state"},
            "InputTemplate": '{"instance": <instance>, "text": "<instance> is in state <state>", '
                             '"rule": <aws.events.rule-name>}'}},
        {"Id": "path", "Arn": arns["path"], "InputPath": "$.detail"},
        {"Id": "fixed", "Arn": arns["fixed"], "Input": '{"fixed": true}'},
    ])
    assert out["FailedEntryCount"] == 0
    listed = events.list_targets_by_rule(Rule=rule)["Targets"]
    assert [t["Id"] for t in listed] == ["fixed", "path", "tr"]
    assert listed[2]["InputTransformer"]["InputPathsMap"]["state"] == "$.detail.state"
    assert events.list_rule_names_by_target(TargetArn=arns["tr"])["RuleNames"] == [rule]
    events.put_events(Entries=[{"Source": "ec2.like", "DetailType": "State change",
                                "Detail": json.dumps({"instance-id": "i-123", "state": "RUNNING"})}])
    assert wait_until(lambda: all(records(server, f"{fname}-{k}") for k in arns), timeout=30)
    assert records(server, f"{fname}-tr") == [{"instance": "i-123", "text": "i-123 is in state RUNNING",
                                                "rule": rule}]
    assert records(server, f"{fname}-path") == [{"instance-id": "i-123", "state": "RUNNING"}]
    assert records(server, f"{fname}-fixed") == [{"fixed": True}]


def test_a_disabled_rule_does_not_fire(server, lam, events, fname) -> None:
    off, on = f"{fname[:50]}-off", f"{fname[:50]}-on"
    for rule in (off, on):
        events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["toggle.test"]}),
                        State="DISABLED" if rule == off else "ENABLED")
        events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": printing_function(lam, f"{fname}-{rule[-3:]}",
                                                                                       rule)}])
    assert events.describe_rule(Name=off)["State"] == "DISABLED"
    events.put_events(Entries=[{"Source": "toggle.test", "DetailType": "t", "Detail": '{"n": 1}'}])
    assert wait_until(lambda: records(server, f"{fname}--on"), timeout=30)
    time.sleep(0.5)
    assert records(server, f"{fname}-off") == []
    events.enable_rule(Name=off)
    events.disable_rule(Name=on)
    events.put_events(Entries=[{"Source": "toggle.test", "DetailType": "t", "Detail": '{"n": 2}'}])
    assert wait_until(lambda: records(server, f"{fname}-off"), timeout=30)
    assert records(server, f"{fname}-off")[0]["detail"] == {"n": 2}
    time.sleep(0.5)
    assert [r["detail"]["n"] for r in records(server, f"{fname}--on")] == [1]


def test_a_target_without_permission_is_refused_logged_counted_and_dead_lettered(server, lam, events, aws,
                                                                                  fname) -> None:
    sqs = aws("sqs")
    queue = sqs.create_queue(QueueName=f"{fname[:60]}-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"{fname[:50]}-r"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["no.permission"]}))
    allowed_elsewhere = printing_function(lam, f"{fname}-x", "some-other-rule")  # a permission, for another rule
    bare = printing_function(lam, f"{fname}-bare")  # no permission at all
    events.put_targets(Rule=rule, Targets=[{"Id": "other", "Arn": allowed_elsewhere},
                                           {"Id": "bare", "Arn": bare, "DeadLetterConfig": {"Arn": queue_arn}}])
    sent = events.put_events(Entries=[{"Source": "no.permission", "DetailType": "t", "Detail": '{"k": "v"}'}])
    assert sent["FailedEntryCount"] == 0  # accepted: delivery fails later, as on AWS

    messages: list = []
    assert wait_until(lambda: messages.extend(sqs.receive_message(
        QueueUrl=queue, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages", [])) or messages, timeout=20)
    attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
    assert attributes["ERROR_CODE"] == "NO_PERMISSIONS" and attributes["RULE_ARN"] == rule_arn(rule)
    assert attributes["TARGET_ARN"] == bare
    assert json.loads(messages[0]["Body"])["id"] == sent["Entries"][0]["EventId"]
    logged = "".join(server.output)
    for target in ("other", "bare"):
        assert f"of rule {rule_arn(rule)} not delivered to target {target} (NO_PERMISSIONS)" in logged
    time.sleep(1.0)
    assert records(server, f"{fname}-x") == [] and records(server, f"{fname}-bare") == []

    cloudwatch = server.client("cloudwatch")

    def failed() -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Events", MetricName="FailedInvocations", Dimensions=[{"Name": "RuleName", "Value": rule}],
            StartTime=time.time() - 600, EndTime=time.time() + 60, Period=60, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    assert wait_until(lambda: failed() == 2, timeout=15)


def test_restart_keeps_buses_rules_and_targets(fresh_server, tmp_path) -> None:
    data = tmp_path / "data"
    srv = fresh_server(data_dir=data)
    events = srv.client("events")
    events.create_event_bus(Name="kept", Description="a bus")
    events.put_rule(Name="r1", EventBusName="kept", EventPattern='{"source": ["a"]}', Description="d",
                    State="DISABLED")
    events.put_rule(Name="r2", ScheduleExpression="rate(5 minutes)")
    events.put_targets(Rule="r1", EventBusName="kept", Targets=[
        {"Id": "t", "Arn": f"{FN_ARN}:f", "InputPath": "$.detail",
         "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600}}])
    default_made = events.describe_event_bus()["CreationTime"]
    srv.stop()
    srv = fresh_server(data_dir=data)
    events = srv.client("events")
    assert [b["Name"] for b in events.list_event_buses()["EventBuses"]] == ["default", "kept"]
    assert events.describe_event_bus(Name="default")["CreationTime"] == default_made
    assert events.describe_event_bus(Name="kept")["Description"] == "a bus"
    described = events.describe_rule(Name="r1", EventBusName="kept")
    assert (described["State"], described["Description"], described["EventPattern"]) == (
        "DISABLED", "d", '{"source": ["a"]}')
    assert events.describe_rule(Name="r2")["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = events.list_targets_by_rule(Rule="r1", EventBusName="kept")["Targets"]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 600}
    assert target["InputPath"] == "$.detail"


def test_error_shapes(server, events, fname) -> None:
    def error(call, *args, **kwargs) -> tuple[str, str, int]:
        with pytest.raises(Exception) as caught:
            call(*args, **kwargs)
        response = caught.value.response  # type: ignore[attr-defined]
        return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]

    assert error(events.describe_rule, Name="nope") == (
        "ResourceNotFoundException", "Rule nope does not exist on EventBus default.", 400)  # JSON 1.1: 400, as AWS
    assert error(events.put_rule, Name="r", EventBusName="no-bus", EventPattern='{"a": [1]}')[:2] == (
        "ResourceNotFoundException", "Event bus no-bus does not exist.")
    assert error(events.put_rule, Name="r", EventPattern='{"source": "x"}') == (
        "InvalidEventPatternException", 'Event pattern is not valid. Reason: "source" must be an object or an array',
        400)
    assert error(events.put_rule, Name="r")[:2] == (
        "ValidationException", "Parameter(s) EventPattern or ScheduleExpression must be specified.")
    assert error(events.put_rule, Name="r", ScheduleExpression="rate(1 minutes)")[:2] == (
        "ValidationException", "Parameter ScheduleExpression is not valid.")
    assert error(events.put_rule, Name="bad name!", EventPattern='{"a": [1]}')[0] == "ValidationException"
    bus = f"{fname[:40]}-b"
    events.create_event_bus(Name=bus)
    assert error(events.create_event_bus, Name=bus)[:2] == ("ResourceAlreadyExistsException",
                                                            f"Event bus {bus} already exists.")
    assert error(events.create_event_bus, Name="default")[0] == "ResourceAlreadyExistsException"
    assert error(events.delete_event_bus, Name="default")[0] == "ValidationException"
    assert error(events.put_rule, Name="s", EventBusName=bus, ScheduleExpression="rate(1 minute)")[:2] == (
        "ValidationException", "ScheduleExpression is supported only on the default event bus.")
    rule = f"{fname[:50]}-r"
    events.put_rule(Name=rule, EventPattern='{"source": ["x"]}')
    events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": f"{FN_ARN}:f"}])
    assert error(events.delete_rule, Name=rule)[:2] == ("ValidationException",
                                                        "Rule can't be deleted since it has targets.")
    assert error(events.put_targets, Rule=rule, Targets=[{"Id": "2", "Arn": f"{FN_ARN}:f", "Input": "{}",
                                                          "InputPath": "$"}])[0] == "ValidationException"
    assert error(events.put_targets, Rule="no-rule", Targets=[{"Id": "2", "Arn": f"{FN_ARN}:f"}])[0] == \
        "ResourceNotFoundException"
    assert error(events.put_targets, Rule=rule, Targets=[{"Id": str(i), "Arn": f"{FN_ARN}:f"} for i in range(2, 7)])[
        0] == "LimitExceededException"
    events.remove_targets(Rule=rule, Ids=["1"])
    events.delete_rule(Name=rule)
    events.delete_rule(Name=rule)  # a second time: nothing there, no error (as AWS)
    out = events.put_events(Entries=[
        {"Source": "a", "DetailType": "b", "Detail": "not json"},
        {"Source": "a", "Detail": "{}"},
        {"Source": "aws.ec2", "DetailType": "b", "Detail": "{}"},
        {"Source": "a", "DetailType": "b", "Detail": "{}", "EventBusName": "no-such-bus"},
        {"Source": "a", "DetailType": "b", "Detail": "{}"},
    ])
    assert out["FailedEntryCount"] == 4
    assert [e.get("ErrorCode") for e in out["Entries"]] == [
        "MalformedDetail", "InvalidArgument", "NotAuthorizedForSourceException", "ResourceNotFoundException", None]
    assert out["Entries"][1]["ErrorMessage"] == "Parameter DetailType is not valid. Reason: DetailType is a required " \
                                                "argument."
    assert "EventId" in out["Entries"][4]
    big = json.dumps({"x": "y" * 200_000})
    assert error(events.put_events, Entries=[{"Source": "a", "DetailType": "b", "Detail": big}] * 2)[:2] == (
        "ValidationException", "Total size of the entries in the request is over the limit.")
    assert error(events.list_archives) == (
        "NotImplemented", "The operation ListArchives is not supported by this lambdad server yet.", 501)
    assert events.test_event_pattern(EventPattern='{"source": [{"wildcard": "my.*"}]}', Event=json.dumps({
        "id": "1", "account": ACCOUNT, "source": "my.app", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail-type": "x", "detail": {}}))["Result"] is True
    assert error(events.test_event_pattern, EventPattern='{"a": [{"wildcard": "x**"}]}', Event="{}")[:2] == (
        "InvalidEventPatternException", "Event pattern is not valid. Reason: Consecutive wildcard characters at pos 2")


def test_list_rules_pages_and_prefix(events, fname) -> None:
    names = [f"{fname[:40]}-{i:02d}" for i in range(5)]
    for name in names:
        events.put_rule(Name=name, EventPattern='{"source": ["paging"]}')
    seen, token = [], None
    while True:
        page = events.list_rules(NamePrefix=fname[:40], Limit=2, **({"NextToken": token} if token else {}))
        assert len(page["Rules"]) <= 2
        seen += [r["Name"] for r in page["Rules"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == names


def test_a_destination_naming_a_bus_of_this_server_is_routed_here(server, lam, events, fname) -> None:
    rule = f"{fname[:50]}-r"
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["lambda"], "detail-type": ["Lambda Function Invocation Result - Success"],
        "detail": {"requestContext": {"functionArn": [{"prefix": f"{FN_ARN}:{fname}-src"}]}}}))
    events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": printing_function(lam, f"{fname}-sink", rule)}])
    create_python_function(lam, f"{fname}-src", "def handler(event, context):\n    return {'ok': event['n']}\n")
    lam.put_function_event_invoke_config(FunctionName=f"{fname}-src", DestinationConfig={
        "OnSuccess": {"Destination": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"}})
    lam.invoke(FunctionName=f"{fname}-src", InvocationType="Event", Payload=b'{"n": 5}')
    assert wait_until(lambda: records(server, f"{fname}-sink"), timeout=30)
    (got,) = records(server, f"{fname}-sink")
    assert got["source"] == "lambda" and got["detail"]["responsePayload"] == {"ok": 5}


def test_a_user_may_do_what_its_policy_allows(server, events, fname) -> None:
    iam = server.client("iam")
    user = f"{fname[:40]}-u"
    iam.create_user(UserName=user)
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["events:PutEvents", "events:DescribeRule"], "Resource": [
            f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default", f"{RULE_ARN}/{fname[:30]}*"]},
        {"Effect": "Deny", "Action": "events:PutEvents", "Resource": "*",
         "Condition": {"StringLike": {"events:source": "forbidden.*"}}}]}
    iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    client = boto3.client("events", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"],
                          config=Config(retries={"max_attempts": 0}))
    server._clients.append(client)
    events.put_rule(Name=f"{fname[:30]}-mine", EventPattern='{"source": ["x"]}')
    assert client.put_events(Entries=[{"Source": "a", "DetailType": "b", "Detail": "{}"}])["FailedEntryCount"] == 0
    assert client.describe_rule(Name=f"{fname[:30]}-mine")["Name"] == f"{fname[:30]}-mine"
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.put_rule(Name=f"{fname[:30]}-x", EventPattern='{"source": ["x"]}')
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "events:PutRule" in caught.value.response["Error"]["Message"]
    with pytest.raises(client.exceptions.ClientError) as caught:  # the condition key events:source
        client.put_events(Entries=[{"Source": "a", "DetailType": "b", "Detail": "{}"},
                                   {"Source": "forbidden.app", "DetailType": "b", "Detail": "{}"}])
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "explicit deny" in caught.value.response["Error"]["Message"]


def test_the_aws_cli_put_rule_put_targets_and_add_permission(server, fname, tmp_path) -> None:
    """The issue's flow with the aws CLI: a rule, a function target, the function's permission, an event."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.endpoint, "HOME": str(tmp_path)}
    env.pop("AWS_PROFILE", None)

    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    create_python_function(server.client(), fname, PRINTING)
    rule = f"{fname[:50]}-cli"
    arn = aws("events", "put-rule", "--name", rule, "--event-pattern", '{"source": ["cli.test"]}')["RuleArn"]
    assert arn == rule_arn(rule)
    out = aws("events", "put-targets", "--rule", rule, "--targets", f"Id=1,Arn={FN_ARN}:{fname}")
    assert out["FailedEntryCount"] == 0
    aws("lambda", "add-permission", "--function-name", fname, "--statement-id", "eb", "--action",
        "lambda:InvokeFunction", "--principal", "events.amazonaws.com", "--source-arn", arn)
    sent = aws("events", "put-events", "--entries", json.dumps([
        {"Source": "cli.test", "DetailType": "from the CLI", "Detail": '{"via": "cli"}'}]))
    assert sent["FailedEntryCount"] == 0
    assert wait_until(lambda: records(server, fname), timeout=30)
    assert records(server, fname)[0]["detail"] == {"via": "cli"}
    assert aws("events", "describe-rule", "--name", rule)["State"] == "ENABLED"


def test_scheduled_rules_fire_the_scheduled_event(server, lam, events, fname, tmp_path) -> None:
    """The issue's "done when", with the aws CLI: put-rule rate(1 minute) + put-targets + add-permission runs the
    function a minute later; beside it a cron rule of every minute fires at the minute, and a disabled one does
    not. (Slow: about a minute, the shortest period a rule has.)"""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": server.endpoint, "HOME": str(tmp_path)}
    env.pop("AWS_PROFILE", None)

    def aws(*args: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    rate = f"{fname[:50]}-rate"
    create_python_function(lam, f"{fname}-rate", PRINTING)
    made = time.time()
    arn = aws("events", "put-rule", "--name", rate, "--schedule-expression", "rate(1 minute)")["RuleArn"]
    aws("events", "put-targets", "--rule", rate, "--targets", f"Id=1,Arn={FN_ARN}:{fname}-rate")
    aws("lambda", "add-permission", "--function-name", f"{fname}-rate", "--statement-id", "eb", "--action",
        "lambda:InvokeFunction", "--principal", "events.amazonaws.com", "--source-arn", arn)
    assert aws("events", "describe-rule", "--name", rate)["ScheduleExpression"] == "rate(1 minute)"
    for key, state in (("cron", "ENABLED"), ("off", "DISABLED")):
        rule = f"{fname[:50]}-{key}"
        events.put_rule(Name=rule, ScheduleExpression="cron(* * * * ? *)", State=state)
        events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": printing_function(lam, f"{fname}-{key}", rule)}])

    assert wait_until(lambda: records(server, f"{fname}-cron"), timeout=70)
    (fired,) = records(server, f"{fname}-cron")[:1]
    assert fired["detail-type"] == "Scheduled Event" and fired["source"] == "aws.events"
    assert fired["detail"] == {} and fired["resources"] == [rule_arn(f"{fname[:50]}-cron")]
    assert fired["version"] == "0" and fired["account"] == ACCOUNT and fired["time"].endswith(":00Z")
    assert wait_until(lambda: records(server, f"{fname}-rate"), timeout=max(5.0, made + 75 - time.time()))
    assert time.time() - made >= 59  # a rate's first fire is one period after the rule is made
    (fired,) = records(server, f"{fname}-rate")
    assert fired["resources"] == [arn] and fired["detail-type"] == "Scheduled Event"
    assert records(server, f"{fname}-off") == []
    events.disable_rule(Name=f"{fname[:50]}-cron")
    aws("events", "disable-rule", "--name", rate)


def test_rules_made_on_one_node_route_events_put_on_another(cluster, fname) -> None:
    """A cluster: buses, rules and targets made through one node are seen by the other at once (``events`` change
    notices, and a read of the store for what a node does not know yet), so an event put there is routed; a rule
    disabled there is disabled here."""
    nodes = cluster(2).nodes
    lam, first, second = nodes[0].client(), nodes[0].client("events"), nodes[1].client("events")
    bus = f"{fname[:40]}-bus"
    rule = f"{fname[:50]}-r"
    first.create_event_bus(Name=bus)
    first.put_rule(Name=rule, EventBusName=bus, EventPattern='{"source": ["cluster.test"]}')
    printing_function(lam, fname, rule, bus)
    first.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "1", "Arn": f"{FN_ARN}:{fname}"}])

    # a rule the other node does not know yet is read from the store at once (a read after a write); later changes
    # (its targets) arrive with the change notice a moment later, as EventBridge's own changes take a moment
    assert second.describe_rule(Name=rule, EventBusName=bus)["EventPattern"] == '{"source": ["cluster.test"]}'
    assert wait_until(lambda: len(second.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]) == 1,
                      timeout=10)
    assert second.put_events(Entries=[{"Source": "cluster.test", "DetailType": "t", "Detail": '{"on": "second"}',
                                       "EventBusName": bus}])["FailedEntryCount"] == 0
    url = nodes[0].extra_env["LAMBDAD_DATABASE_URL"]

    def logged() -> list:
        out = subprocess.run([sys.executable, "-m", "lambdad", "logs", fname, "--database-url", url],
                             capture_output=True, text=True, timeout=30).stdout
        return [json.loads(line.split("RECORD ", 1)[1]) for line in out.splitlines() if "RECORD " in line]

    assert wait_until(logged, timeout=30)
    assert logged()[0]["detail"] == {"on": "second"}
    second.disable_rule(Name=rule, EventBusName=bus)
    assert wait_until(lambda: first.describe_rule(Name=rule, EventBusName=bus)["State"] == "DISABLED", timeout=10)


def test_a_scheduled_rule_has_one_timer_while_enabled(inproc, fname) -> None:
    """The timers behind scheduled rules (schedules/timer.py, kind "rule"), seen in-process: put with the rule, a
    rate's first fire one period later, deleted when the rule is disabled or deleted, put again when enabled, left
    alone by a PutRule that changes nothing of the schedule, and mended at start when a crash lost one."""
    app = inproc.app
    events = inproc.client("events")
    name = f"{fname[:50]}-t"
    key = f"default/{name}"

    def timer():
        return inproc._run(app.timer.get("rule", key))

    made = time.time()
    events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)")
    first = timer()
    assert first is not None and first.expression == "rate(5 minutes)" and first.timezone == "UTC"
    assert 299 <= first.next_fire.timestamp() - made <= 302
    events.put_rule(Name=name, ScheduleExpression="rate(5 minutes)", Description="only the description")
    assert timer().next_fire == first.next_fire
    events.disable_rule(Name=name)
    assert timer() is None
    events.enable_rule(Name=name)
    assert timer() is not None
    events.put_rule(Name=name, ScheduleExpression="cron(0 12 * * ? *)")
    assert timer().expression == "cron(0 12 * * ? *)" and timer().next_fire.strftime("%H:%M") == "12:00"
    inproc._run(app.timer.delete("rule", key))  # as a crash between the rule's write and its timer's leaves it
    inproc._run(app.eventbridge.reconcile_timers())
    assert timer().expression == "cron(0 12 * * ? *)"
    inproc._run(app.timer.put("rule", "default/gone", "rate(1 minute)"))  # a timer whose rule is gone
    inproc._run(app.eventbridge.reconcile_timers())
    assert inproc._run(app.timer.get("rule", "default/gone")) is None
    events.delete_rule(Name=name)
    assert timer() is None


def test_every_eventbridge_operation_is_documented(inproc) -> None:
    from pathlib import Path

    from lambdad.events.api import events_handlers

    text = (Path(__file__).resolve().parent.parent / "docs" / "compatibility.md").read_text()
    section = text.split("## EventBridge operations", 1)[1]
    for op in events_handlers(inproc.app.eventbridge, inproc.app.authorizer):
        assert f"| {op} |" in section, op


def test_a_loop_through_a_destination_and_a_rule_is_stopped(server, lam, events, fname) -> None:
    """A function whose success goes to a bus whose rule invokes it again: Lambda's recursive loop detection (the
    hops a chain of destinations carries) stops it after 16 events, and the log says so."""
    rule = f"{fname[:50]}-loop"
    events.put_rule(Name=rule, EventPattern=json.dumps({
        "source": ["lambda"], "detail": {"requestContext": {"functionArn": [{"prefix": f"{FN_ARN}:{fname}:"}]}}}))
    printing_function(lam, fname, rule)
    events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": f"{FN_ARN}:{fname}", "Input": '{"again": true}'}])
    lam.put_function_event_invoke_config(FunctionName=fname, DestinationConfig={
        "OnSuccess": {"Destination": f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"}})
    lam.invoke(FunctionName=fname, InvocationType="Event", Payload=b'{"first": true}')
    assert wait_until(lambda: "recursive loop detected" in "".join(server.output), timeout=60)
    time.sleep(1.5)
    runs = len(records(server, fname))
    assert 2 <= runs <= 16
    time.sleep(1.5)
    assert len(records(server, fname)) == runs
    events.remove_targets(Rule=rule, Ids=["1"])


def test_an_alias_target_is_allowed_by_the_alias_policy(server, lam, events, fname) -> None:
    """A qualified target is checked against that qualifier's policy, as Lambda keeps one per alias and version:
    the alias allows EventBridge, the unqualified function does not."""
    rule = f"{fname[:50]}-r"
    events.put_rule(Name=rule, EventPattern=json.dumps({"source": ["alias.test"]}))
    create_python_function(lam, fname, PRINTING, Publish=True)
    lam.create_alias(FunctionName=fname, Name="live", FunctionVersion="1")
    lam.add_permission(FunctionName=fname, Qualifier="live", StatementId="events", Action="lambda:InvokeFunction",
                       Principal="events.amazonaws.com", SourceArn=rule_arn(rule))
    events.put_targets(Rule=rule, Targets=[{"Id": "alias", "Arn": f"{FN_ARN}:{fname}:live"},
                                           {"Id": "plain", "Arn": f"{FN_ARN}:{fname}"}])
    events.put_events(Entries=[{"Source": "alias.test", "DetailType": "t", "Detail": '{"q": "live"}'}])
    assert wait_until(lambda: records(server, fname), timeout=30)
    time.sleep(1.0)
    assert [r["detail"] for r in records(server, fname)] == [{"q": "live"}]
    assert f"of rule {rule_arn(rule)} not delivered to target plain (NO_PERMISSIONS)" in "".join(server.output)


def test_an_event_for_a_dead_letter_queue_outlives_a_restart(moto, aws, fresh_server, tmp_path, fname) -> None:
    """The dead-letter queue does not exist when the delivery is refused, and the server stops: the event kept in
    the store reaches the queue once it exists and the server runs again."""
    env = {**MOTO_ENV, "AWS_ENDPOINT_URL": moto}
    data = tmp_path / "data"
    srv = fresh_server(env, data_dir=data)
    lam, events = srv.client(), srv.client("events")
    queue_name = f"{fname[:60]}-later"
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_name}"
    rule = f"{fname[:50]}-r"
    events.put_rule(Name=rule, EventPattern='{"source": ["dlq.later"]}')
    events.put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": printing_function(lam, fname),
                                            "DeadLetterConfig": {"Arn": queue_arn}}])
    sent = events.put_events(Entries=[{"Source": "dlq.later", "DetailType": "t", "Detail": "{}"}])
    assert wait_until(lambda: "could not send an event of rule" in "".join(srv.output), timeout=15)
    srv.stop()
    sqs = aws("sqs")
    queue = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    assert sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"] == \
        queue_arn  # moto's account
    fresh_server(env, data_dir=data)
    messages: list = []
    assert wait_until(lambda: messages.extend(sqs.receive_message(
        QueueUrl=queue, WaitTimeSeconds=1, MessageAttributeNames=["All"]).get("Messages", [])) or messages, timeout=30)
    assert json.loads(messages[0]["Body"])["id"] == sent["Entries"][0]["EventId"]
    assert messages[0]["MessageAttributes"]["ERROR_CODE"]["StringValue"] == "NO_PERMISSIONS"
