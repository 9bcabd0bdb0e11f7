// Echoes the request: the method, the path and the JSON body it was sent.
exports.handler = async (event) => {
  const body = event.body ? JSON.parse(event.isBase64Encoded ? Buffer.from(event.body, "base64").toString() : event.body) : null;
  return {
    statusCode: 200,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ method: event.requestContext.http.method, path: event.rawPath, received: body }),
  };
};
