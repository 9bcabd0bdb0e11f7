"""The AWS managed policies that Lambda users attach, with AWS's documents for the services lambdad serves.

Each document is AWS's current default version (the AWS Managed Policy Reference), keeping the statements and
actions of the services lambdad serves or will serve on its endpoint (Lambda, IAM, STS, CloudWatch Logs and
metrics, EventBridge and its Scheduler, SQS, SNS, Kinesis, DynamoDB streams, X-Ray) and leaving out those of
services it does not (CloudFormation, EC2, KMS, Step Functions, tagging): they could never match a request here.
ReadOnlyAccess, which lists hundreds of services, is reduced the same way. Their ARNs, names, paths and version
ids are AWS's; they cannot be changed, deleted or given versions (as on AWS).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MANAGED_POLICIES", "ManagedPolicy"]

ManagedPolicy = dict[str, Any]


def _policy(name: str, path: str, version: str, created: str, updated: str, description: str,
            statements: list[dict[str, Any]]) -> ManagedPolicy:
    return {"PolicyName": name, "Path": path, "Arn": f"arn:aws:iam::aws:policy{path}{name}",
            "DefaultVersionId": version, "CreateDate": created, "UpdateDate": updated, "Description": description,
            "Document": {"Version": "2012-10-17", "Statement": statements}}


_LAMBDA_LOGS = "arn:aws:logs:*:*:log-group:/aws/lambda/*"

MANAGED_POLICIES: dict[str, ManagedPolicy] = {p["Arn"]: p for p in [
    _policy("AdministratorAccess", "/", "v1", "2015-02-06T18:39:46Z", "2015-02-06T18:39:46Z",
            "Provides full access to AWS services and resources.",
            [{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
    _policy("ReadOnlyAccess", "/", "v1", "2015-02-06T18:39:48Z", "2015-02-06T18:39:48Z",
            "Provides read-only access to AWS services and resources.",
            [{"Effect": "Allow", "Resource": "*", "Action": [
                "cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
                "dynamodb:Describe*", "dynamodb:Get*", "dynamodb:List*",
                "events:Describe*", "events:List*", "events:Test*",
                "iam:Generate*", "iam:Get*", "iam:List*", "iam:Simulate*",
                "kinesis:Describe*", "kinesis:Get*", "kinesis:List*",
                "lambda:Get*", "lambda:List*",
                "logs:Describe*", "logs:FilterLogEvents", "logs:Get*", "logs:ListTagsForResource",
                "logs:ListTagsLogGroup", "logs:StartQuery", "logs:StopQuery", "logs:TestMetricFilter",
                "scheduler:Get*", "scheduler:List*",
                "sns:Check*", "sns:Get*", "sns:List*",
                "sqs:Get*", "sqs:List*", "sqs:Receive*",
                "sts:GetCallerIdentity", "sts:GetSessionToken",
                "xray:BatchGet*", "xray:Get*"]}]),
    _policy("AWSLambda_ReadOnlyAccess", "/", "v3", "2020-11-17T21:10:00Z", "2025-03-17T21:07:00Z",
            "Grants read-only access to AWS Lambda service, AWS Lambda console features, and other related AWS "
            "services.",
            [{"Effect": "Allow", "Resource": "*", "Action": [
                "cloudwatch:GetMetricData", "cloudwatch:ListMetrics",
                "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:ListRoles",
                "logs:DescribeLogGroups", "lambda:Get*", "lambda:List*",
                "xray:GetTraceSummaries", "xray:BatchGetTraces"]},
             {"Effect": "Allow", "Resource": _LAMBDA_LOGS, "Action": [
                 "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartQuery",
                 "logs:StopQuery", "logs:DescribeQueries", "logs:GetLogGroupFields", "logs:GetLogRecord",
                 "logs:GetQueryResults", "logs:StartLiveTail", "logs:StopLiveTail"]}]),
    _policy("AWSLambda_FullAccess", "/", "v2", "2020-11-17T21:14:00Z", "2025-03-17T21:37:00Z",
            "Grants full access to AWS Lambda service, AWS Lambda console features, and other related AWS "
            "services.",
            [{"Effect": "Allow", "Resource": "*", "Action": [
                "cloudwatch:ListMetrics", "cloudwatch:GetMetricData",
                "iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy",
                "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:ListRoles",
                "lambda:*", "logs:DescribeLogGroups",
                "xray:GetTraceSummaries", "xray:BatchGetTraces"]},
             {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*",
              "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}},
             {"Effect": "Allow", "Resource": _LAMBDA_LOGS, "Action": [
                 "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents", "logs:StartLiveTail",
                 "logs:StopLiveTail"]}]),
    _policy("AWSLambdaBasicExecutionRole", "/service-role/", "v1", "2015-04-09T15:03:43Z", "2015-04-09T15:03:43Z",
            "Provides write permissions to CloudWatch Logs.",
            [{"Effect": "Allow", "Resource": "*",
              "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}]),
    _policy("AWSLambdaRole", "/service-role/", "v1", "2015-02-06T18:41:14Z", "2015-02-06T18:41:14Z",
            "Default policy for AWS Lambda service role.",
            [{"Effect": "Allow", "Action": ["lambda:InvokeFunction"], "Resource": ["*"]}]),
]}
