// Lambda's sample test events (the shapes of the AWS documentation's examples for each service).
export const SAMPLES = {
  "hello-world": { key1: "value1", key2: "value2", key3: "value3" },
  "function-url / API Gateway HTTP API": {
    version: "2.0", routeKey: "$default", rawPath: "/my/path", rawQueryString: "parameter1=value1&parameter1=value2&parameter2=value",
    cookies: ["cookie1", "cookie2"],
    headers: { "content-type": "application/json", host: "<url-id>.lambda-url.us-east-1.on.aws", "user-agent": "agent" },
    queryStringParameters: { parameter1: "value1,value2", parameter2: "value" },
    requestContext: {
      accountId: "123456789012", apiId: "<urlid>", domainName: "<url-id>.lambda-url.us-west-2.on.aws", domainPrefix: "<url-id>",
      http: { method: "POST", path: "/my/path", protocol: "HTTP/1.1", sourceIp: "123.123.123.123", userAgent: "agent" },
      requestId: "id", routeKey: "$default", stage: "$default", time: "12/Mar/2020:19:03:58 +0000", timeEpoch: 1583348638390,
    },
    body: "{\"hello\": \"world\"}", pathParameters: null, isBase64Encoded: false, stageVariables: null,
  },
  "sqs-receive-message": {
    Records: [{
      messageId: "19dd0b57-b21e-4ac1-bd88-01bbb068cb78", receiptHandle: "MessageReceiptHandle", body: "Hello from SQS!",
      attributes: { ApproximateReceiveCount: "1", SentTimestamp: "1523232000000", SenderId: "123456789012", ApproximateFirstReceiveTimestamp: "1523232000001" },
      messageAttributes: {}, md5OfBody: "7b270e59b47ff90a553787216d55d91d", eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:123456789012:MyQueue", awsRegion: "us-east-1",
    }],
  },
  "s3-put": {
    Records: [{
      eventVersion: "2.0", eventSource: "aws:s3", awsRegion: "us-east-1", eventTime: "1970-01-01T00:00:00.000Z", eventName: "ObjectCreated:Put",
      userIdentity: { principalId: "EXAMPLE" }, requestParameters: { sourceIPAddress: "127.0.0.1" },
      responseElements: { "x-amz-request-id": "EXAMPLE123456789", "x-amz-id-2": "EXAMPLE123/5678abcdefghijklambdaisawesome/mnopqrstuvwxyzABCDEFGH" },
      s3: {
        s3SchemaVersion: "1.0", configurationId: "testConfigRule",
        bucket: { name: "example-bucket", ownerIdentity: { principalId: "EXAMPLE" }, arn: "arn:aws:s3:::example-bucket" },
        object: { key: "test/key", size: 1024, eTag: "0123456789abcdef0123456789abcdef", sequencer: "0A1B2C3D4E5F678901" },
      },
    }],
  },
  "eventbridge-scheduled-event": {
    version: "0", account: "123456789012", region: "us-east-1", detail: {}, "detail-type": "Scheduled Event", source: "aws.events",
    time: "1970-01-01T00:00:00Z", id: "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", resources: ["arn:aws:events:us-east-1:123456789012:rule/my-schedule"],
  },
  "dynamodb-update": {
    Records: [{
      eventID: "c4ca4238a0b923820dcc509a6f75849b", eventName: "INSERT", eventVersion: "1.1", eventSource: "aws:dynamodb", awsRegion: "us-east-1",
      dynamodb: {
        Keys: { Id: { N: "101" } }, NewImage: { Message: { S: "New item!" }, Id: { N: "101" } },
        ApproximateCreationDateTime: 1428537600, SequenceNumber: "4421584500000000017450439091", SizeBytes: 26, StreamViewType: "NEW_AND_OLD_IMAGES",
      },
      eventSourceARN: "arn:aws:dynamodb:us-east-1:123456789012:table/ExampleTableWithStream/stream/2015-06-27T00:48:05.899",
    }],
  },
};
