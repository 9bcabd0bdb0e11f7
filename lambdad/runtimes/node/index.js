// The lambdad Node.js runtime: the program that runs a function's JavaScript inside an execution environment.
//
// It serves nodejs18.x, nodejs20.x and nodejs22.x on whatever `node` the machine has, and speaks to the platform
// only through the Lambda Runtime API 2018-06-01 at http://$AWS_LAMBDA_RUNTIME_API, behaving like AWS's own Node
// runtime: the same handler lookup (CommonJS, ES modules by `.mjs` or `"type": "module"`, `.cjs`), the same
// context object, async and callback handlers with `callbackWaitsForEmptyEventLoop`, the same error shapes
// (`{"errorType", "errorMessage", "trace"}`) and init error types and messages, and console output prefixed
// `<ISO time>\t<request id>\t<LEVEL>\t` (or JSON with AWS_LAMBDA_LOG_FORMAT=JSON). Standard library only.
//
// The environment execs it as `node [heap flags] /var/runtime/index.js` (this directory is shown read-only at
// /var/runtime, which is also LAMBDA_RUNTIME_DIR); the handler comes from _HANDLER, the code from LAMBDA_TASK_ROOT.
// It is CommonJS and talks HTTP/1.1 over a plain `net` socket: Node's ES module loader and its `http` module
// would each add milliseconds to every cold start, and the Runtime API needs neither (user ES modules are
// loaded with import() as usual).
//
// A pre-started slot (lambdad/sandbox/prewarm.py) runs it before any function is assigned to it, with
// LAMBDAD_ASSIGNMENT_FD set and /var/task still empty: it loads what serves every function, imports warm.mjs (the
// ES module loader's first file costs ~4 ms), connects to the Runtime API when the slot's own network namespace
// fixes its address (LAMBDAD_RUNTIME_API), then blocks reading its assignment from that descriptor; once it arrives the code is mounted, and the runtime takes the
// environment's variables and working directory and goes on exactly as a runtime started for the function.
//
// Phases: (a slot: wait for the assignment;) patch the console; load the handler (a failure: log "Uncaught Exception", POST /runtime/init/error,
// exit 129); then loop: GET next, call the handler, POST response | error. The next GET is sent only once the
// invocation's answer has been posted. A callback handler's answer waits for an empty event loop (Node's
// 'beforeExit') unless context.callbackWaitsForEmptyEventLoop is false; a non-async handler that never calls
// back answers null once the loop is empty; an async handler whose promise never settles answers
// Runtime.NodeJsExit. An uncaught exception (unhandled rejection) during an invocation is posted as its error and
// the process exits 129 (128), as on AWS.
//
// Response streaming, as AWS's runtime: `awslambda.streamifyResponse(handler[, {highWaterMark}])` marks a handler
// `async (event, responseStream, context)`; its invocations answer with a chunked POST of their own
// (`Lambda-Runtime-Function-Response-Mode: streaming`, on a connection of its own, opened at the first write), each
// write going out as it is made, and a failure (a throw, a rejection, an uncaught exception, a stream not ended)
// sent as the `Lambda-Runtime-Function-Error-Type` / `-Error-Body` trailers (the body: the error's JSON, base64).
// `awslambda.HttpResponseStream.from(stream, metadata)` sets the content type
// application/vnd.awslambda.http-integration-response and writes the metadata's JSON and 8 null bytes before the
// first write (what function URLs read as the status, headers and cookies).

"use strict";

const fs = require("node:fs");
const net = require("node:net");
const path = require("node:path");
const { pathToFileURL } = require("node:url");
const util = require("node:util");

const API = "/2018-06-01/runtime";
const ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type";
const REQUEST_ID = Symbol.for("aws.lambda.runtime.requestId");
const HANDLER_STREAMING = Symbol.for("aws.lambda.runtime.handler.streaming");
const HANDLER_HIGHWATERMARK = Symbol.for("aws.lambda.runtime.handler.streaming.highWaterMark");
const STREAM_RESPONSE = "response";
const HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response";
const STREAM_CONTENT_TYPE = "application/octet-stream";
const NOOP = () => {};

// ----------------------------------------------------------------------------------------------------- errors

class RuntimeError extends Error {}

function runtimeError(name) {
  const cls = class extends RuntimeError {};
  Object.defineProperty(cls, "name", { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}

const ImportModuleError = runtimeError("ImportModuleError");
const HandlerNotFound = runtimeError("HandlerNotFound");
const MalformedHandlerName = runtimeError("MalformedHandlerName");
const UserCodeSyntaxError = runtimeError("UserCodeSyntaxError");
const NodeJsExit = runtimeError("NodeJsExit");

class UnhandledPromiseRejection extends RuntimeError {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = "Runtime.UnhandledPromiseRejection";

const NODEJS_EXIT_MESSAGE =
  "The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly caused by a Promise " +
  "that was never settled. For more information, see https://nodejs.org/docs/latest/api/process.html#exit-codes";

function isErrorLike(obj) {
  return Boolean(obj && typeof obj.name === "string" && typeof obj.message === "string" &&
    typeof obj.stack === "string" && obj.name && obj.message && obj.stack);
}

/** The body of an error POSTed to the Runtime API, as AWS's Node runtime shapes it. */
function toRapidResponse(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return { errorType: error.name, errorMessage: error.message, trace: String(error.stack).split("\n") };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch {
    return {
      errorType: "handled",
      errorMessage: "callback called with Error argument, but there was a problem while retrieving one or more " +
        "of its message, name, and stack",
    };
  }
}

function intoError(err) {
  return err instanceof Error ? err : new Error(err);
}

/** An error as the log shows it: a tab, then JSON with errorType, errorMessage, code, the own properties, stack. */
function toFormatted(error) {
  try {
    return "\t" + JSON.stringify(error, (_key, value) => withEnumerableProperties(value));
  } catch {
    return "\t" + JSON.stringify(toRapidResponse(error));
  }
}

function withEnumerableProperties(value) {
  if (!(value instanceof Error)) {
    return value;
  }
  const out = Object.assign({ errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === "string") {
    out.stack = value.stack.split("\n");
  }
  return out;
}

// ----------------------------------------------------------------------------------------------------- logging

const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
let logError = NOOP; // (title, error): the "Invoke Error" / "Uncaught Exception" lines

function jsonReplacer(_key, value) {
  if (value instanceof Error) {
    return Object.assign({
      errorType: value?.constructor?.name ?? "UnknownError",
      errorMessage: value.message,
      stackTrace: typeof value.stack === "string" ? value.stack.split("\n") : value.stack,
    }, value);
  }
  return value;
}

function jsonLine(level, params) {
  const record = { timestamp: new Date().toISOString(), level, requestId: globalThis[REQUEST_ID] };
  if (params.length === 1) {
    record.message = params[0];
    try {
      return JSON.stringify(record, jsonReplacer);
    } catch {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...params);
  const error = params.find((p) => p instanceof Error);
  if (error !== undefined) {
    record.errorType = error?.constructor?.name ?? "UnknownError";
    record.errorMessage = error.message;
    record.stackTrace = typeof error.stack === "string" ? error.stack.split("\n") : [];
  }
  return JSON.stringify(record);
}

function patchConsole() {
  const json = (process.env.AWS_LAMBDA_LOG_FORMAT || "").toUpperCase() === "JSON";
  const threshold = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || "").toUpperCase()] ?? LEVELS.TRACE;
  // stdout is a pipe: Node writes to pipes synchronously on Linux, so a line is out before the next POST
  const write = json
    ? (level, params) => process.stdout.write(jsonLine(level, params) + "\n")
    : (level, params) => process.stdout.write(
      `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level}\t${util.format(...params)}\n`);
  const logger = (level) => (LEVELS[level] >= threshold ? (...params) => write(level, params) : NOOP);
  console.trace = logger("TRACE");
  console.debug = logger("DEBUG");
  console.info = logger("INFO");
  console.log = console.info;
  console.warn = logger("WARN");
  console.error = logger("ERROR");
  console.fatal = (...params) => write("FATAL", params);
  logError = json
    ? (_title, err) => console.error(intoError(err))
    : (title, err) => console.error(title, toFormatted(intoError(err)));
}

// ----------------------------------------------------------------------------------------------------- Runtime API

class RuntimeApiError extends Error {}

const READ_BUFFER = Buffer.allocUnsafe(65536); // every read of a RuntimeClient, copied out of it at once

/**
 * One keep-alive HTTP/1.1 connection to the Runtime API; requests go one at a time, in order. The socket is
 * unref'd between requests, so that an idle connection never keeps the event loop alive (a callback handler's
 * answer waits for the loop to empty).
 */
class RuntimeClient {
  constructor(address) {
    const colon = (address || "").lastIndexOf(":");
    if (colon <= 0) {
      throw new RuntimeApiError(`AWS_LAMBDA_RUNTIME_API must be host:port, not ${JSON.stringify(address)}`);
    }
    this.address = address;
    this.host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    this.port = Number(address.slice(colon + 1));
    this.socket = null;
    this.used = false; // the socket has carried a whole exchange already (a close may just be keep-alive ending)
    this.parts = []; // what has been received and not parsed yet (joined only when needed: bodies can be 6 MB)
    this.size = 0;
    this.pending = null; // {socket, resolve, reject, head, length, chunked, chunks, received}
    this.queue = Promise.resolve();
  }

  async next() {
    const response = await this.request("GET", `${API}/invocation/next`);
    if (response.status !== 200) {
      throw new RuntimeApiError(`GET invocation/next answered ${response.status}: ${response.body.toString().slice(0, 300)}`);
    }
    return response;
  }

  postResponse(id, body) {
    return this.request("POST", `${API}/invocation/${encodeURIComponent(id)}/response`, body);
  }

  postError(id, error) {
    return this.request("POST", `${API}/invocation/${encodeURIComponent(id)}/error`, JSON.stringify(error),
      errorHeaders(error));
  }

  postInitError(error) {
    return this.request("POST", `${API}/init/error`, JSON.stringify(error), errorHeaders(error));
  }

  /** Send one request after those before it; resolves {status, headers, body}. */
  request(method, urlPath, body, headers = {}) {
    const run = () => this._exchange(method, urlPath, body, headers, true);
    const result = this.queue.then(run, run);
    this.queue = result.catch(NOOP);
    return result;
  }

  _exchange(method, urlPath, body, headers, mayRetry) {
    return new Promise((resolve, reject) => {
      const reused = this.socket !== null && this.used;
      const socket = this.socket || this._connect();
      const data = body === undefined ? null : Buffer.from(body, "utf8");
      let head = `${method} ${urlPath} HTTP/1.1\r\nHost: ${this.address}\r\n`;
      for (const [name, value] of Object.entries(headers)) {
        head += `${name}: ${value}\r\n`;
      }
      if (data !== null) {
        head += `Content-Type: application/json\r\nContent-Length: ${data.length}\r\n`;
      }
      this.pending = {
        socket, resolve, head: null, length: -1, chunked: false, chunks: [], received: false,
        reject: (err) => {
          // a kept-alive connection the server had closed before answering: once more on a new one
          if (reused && mayRetry && !this.pending?.received) {
            this.pending = null;
            this._exchange(method, urlPath, body, headers, false).then(resolve, reject);
          } else {
            this.pending = null;
            reject(new RuntimeApiError(`${method} ${urlPath} to ${this.address} failed: ${err.message}`));
          }
        },
      };
      socket.ref();
      socket.write(data === null ? head + "\r\n" : Buffer.concat([Buffer.from(head + "\r\n", "latin1"), data]));
    });
  }

  _connect() {
    // onread: each read lands in one reused buffer and comes straight here, past the Readable stream's machinery
    // (its buffering, 'data' events and read-ahead): ~15 % of an invoke's CPU (docs/performance.md)
    const socket = net.connect({
      host: this.host, port: this.port, noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n, buffer) => this._received(Buffer.from(buffer.subarray(0, n))) },
    });
    this.socket = socket;
    this.used = false;
    this.buffer = Buffer.alloc(0);
    const closed = (err) => {
      if (this.socket === socket) {
        this.socket = null;
      }
      socket.destroy();
      const pending = this.pending;
      if (pending !== null && pending.socket === socket) {
        pending.reject(err || new Error("connection closed"));
      }
    };
    socket.on("error", closed);
    socket.on("close", () => closed(null));
    return socket;
  }

  _received(chunk) {
    if (this.pending !== null) {
      this.pending.received = true;
    }
    this.parts.push(chunk);
    this.size += chunk.length;
    this._parse();
  }

  get buffer() {
    if (this.parts.length !== 1) {
      this.parts = [Buffer.concat(this.parts, this.size)];
    }
    return this.parts[0];
  }

  set buffer(value) {
    this.parts = [value];
    this.size = value.length;
  }

  _parse() {
    const p = this.pending;
    if (p === null) {
      return;
    }
    if (p.head === null) {
      const end = this.buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        return;
      }
      const lines = this.buffer.toString("latin1", 0, end).split("\r\n");
      this.buffer = this.buffer.subarray(end + 4);
      const status = Number(lines[0].split(" ")[1]);
      const headers = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      p.head = { status, headers };
      p.chunked = (headers["transfer-encoding"] || "").toLowerCase().includes("chunked");
      p.length = "content-length" in headers ? Number(headers["content-length"]) : (p.chunked ? -1 : 0);
    }
    let body;
    if (p.chunked) {
      body = this._chunks(p);
      if (body === null) {
        return;
      }
    } else {
      if (this.size < p.length) {
        return;
      }
      body = Buffer.from(this.buffer.subarray(0, p.length));
      this.buffer = this.buffer.subarray(p.length);
    }
    this.pending = null;
    this.used = true;
    if ((p.head.headers.connection || "").toLowerCase() === "close") {
      this.socket.destroy();
      this.socket = null;
    } else {
      this.socket.unref();
    }
    p.resolve({ status: p.head.status, headers: p.head.headers, body });
  }

  _chunks(p) {
    for (;;) {
      const eol = this.buffer.indexOf("\r\n");
      if (eol < 0) {
        return null;
      }
      const size = parseInt(this.buffer.toString("latin1", 0, eol).split(";")[0], 16);
      if (size === 0) {
        const end = this.buffer.indexOf("\r\n\r\n", eol);  // trailers end with a blank line
        const stop = this.buffer.indexOf("\r\n", eol + 2) === eol + 2 ? eol + 4 : (end < 0 ? -1 : end + 4);
        if (stop < 0) {
          return null;
        }
        this.buffer = this.buffer.subarray(stop);
        return Buffer.concat(p.chunks);
      }
      if (this.buffer.length < eol + 2 + size + 2) {
        return null;
      }
      p.chunks.push(Buffer.from(this.buffer.subarray(eol + 2, eol + 2 + size)));
      this.buffer = this.buffer.subarray(eol + 2 + size + 2);
    }
  }
}

// ----------------------------------------------------------------------------------------- response streaming

class InvalidStreamingOperation extends Error {}
InvalidStreamingOperation.prototype.name = "Runtime.InvalidStreamingOperation";

/**
 * The `responseStream` a streaming handler writes to: a Writable whose data goes to the Runtime API as the chunks
 * of one POST, sent on a connection of its own once the first byte (or the end) comes. `done` resolves once the
 * Runtime API has answered that POST.
 */
class ResponseStream extends require("node:stream").Writable {
  constructor(address, id, highWaterMark) {
    super(highWaterMark ? { highWaterMark } : {});
    this._address = address;
    this._id = id;
    this._contentType = STREAM_CONTENT_TYPE;
    this._socket = null;
    this._failed = false;
    this._onBeforeFirstWrite = null; // set by HttpResponseStream.from: writes the metadata prelude
    this._answered = null;
  }

  setContentType(contentType) {
    if (this._socket !== null) {
      throw new InvalidStreamingOperation("Cannot set content-type, too late.");
    }
    this._contentType = String(contentType);
  }

  write(chunk, encoding, callback) {
    if (typeof chunk !== "string" && !Buffer.isBuffer(chunk) && !(chunk instanceof Uint8Array)) {
      chunk = JSON.stringify(chunk);
    }
    return super.write(chunk, encoding, callback);
  }

  _open() {
    const colon = this._address.lastIndexOf(":");
    const socket = net.connect({ host: this._address.slice(0, colon).replace(/^\[(.*)\]$/, "$1"),
      port: Number(this._address.slice(colon + 1)), noDelay: true });
    this._socket = socket;
    const type = this._contentType.replace(/[^\x20-\x7e]/g, "?");
    socket.write(`POST ${API}/invocation/${encodeURIComponent(this._id)}/response HTTP/1.1\r\n` +
      `Host: ${this._address}\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n` +
      `Transfer-Encoding: chunked\r\nContent-Type: ${type}\r\nConnection: close\r\n` +
      `Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n`);
    this._answered = new Promise((resolve) => {
      const parts = [];
      socket.on("data", (data) => parts.push(data));
      socket.on("error", NOOP);
      socket.on("close", () => {
        const text = Buffer.concat(parts).toString("latin1");
        resolve(Number(text.split(" ")[1]) || 0);
      });
    });
    const before = this._onBeforeFirstWrite;
    this._onBeforeFirstWrite = null;
    if (typeof before === "function") {
      before((data) => this._chunk(typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data)));
    }
  }

  _chunk(data, callback) {
    if (data.length === 0) {
      if (callback) {
        callback();
      }
      return;
    }
    this._socket.write(Buffer.concat([Buffer.from(data.length.toString(16) + "\r\n", "latin1"), data,
      Buffer.from("\r\n", "latin1")]), callback);
  }

  _write(chunk, encoding, callback) {
    if (this._socket === null) {
      this._open();
    }
    this._chunk(typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk, () => callback());
  }

  _final(callback) {
    this._finish("").then(() => callback(), callback);
  }

  /** End the POST with `trailers` (text, each line ending in CRLF); resolves once it was answered. */
  _finish(trailers) {
    if (this._socket === null) {
      this._open();
    }
    this._socket.write(`0\r\n${trailers}\r\n`);
    return this._answered;
  }

  /** The invocation failed: end the stream with the error in its trailers (once). */
  fail(err) {
    if (this._failed || this.writableEnded) { // ended: its last chunk went out already
      return this._answered || Promise.resolve();
    }
    this._failed = true;
    const error = toRapidResponse(err);
    const type = String(error.errorType ?? "Unhandled").replace(/[^\x20-\x7e]/g, "?");
    const body = Buffer.from(JSON.stringify(error), "utf8").toString("base64");
    const finished = this._finish(`Lambda-Runtime-Function-Error-Type: ${type}\r\n` +
      `Lambda-Runtime-Function-Error-Body: ${body}\r\n`);
    this.destroy();
    return finished;
  }
}

/** awslambda.HttpResponseStream: a response for an HTTP integration (function URLs): metadata, 8 null bytes, body. */
class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
    const metadata = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadata);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}

/** The `awslambda` global that AWS's Node runtimes give every function. */
function installAwsLambdaGlobal() {
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === "number") {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark, 10);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

/** Run one invocation of a streaming handler; resolves once its stream's POST has been answered. */
async function invokeStreaming(client, handler, next) {
  const headers = next.headers;
  const id = headers["lambda-runtime-aws-request-id"];
  enterInvocation(headers, id);
  const stream = new ResponseStream(client.address, id, handler[HANDLER_HIGHWATERMARK]);
  stream.on("error", NOOP); // a write after a failure: the failure was reported already
  const fail = (err) => {
    logError("Invoke Error", err);
    return stream.fail(err);
  };
  errorCallbacks.uncaughtException = (error) => fail(error).finally(() => process.exit(129));
  errorCallbacks.unhandledRejection = (error) => fail(error).finally(() => process.exit(128));
  let waitsForEmptyEventLoop = true;
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waitsForEmptyEventLoop;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waitsForEmptyEventLoop = value;
    },
    ...environmentData(headers, id),
  };
  let settled = false;
  const unsettled = new Promise((resolve) => {
    beforeExit = () => { // the loop ran dry while the handler's promise was still pending
      beforeExit = NOOP;
      if (!settled) {
        resolve(fail(new NodeJsExit(NODEJS_EXIT_MESSAGE)));
      }
    };
  });
  try {
    context.clientContext = parseJsonHeader(headers["lambda-runtime-client-context"], "ClientContext");
    context.identity = parseJsonHeader(headers["lambda-runtime-cognito-identity"], "CognitoIdentity");
    const result = handler(JSON.parse(next.body.toString("utf8")), stream, context);
    if (!isPromise(result)) {
      settled = true;
      beforeExit = NOOP;
      await fail("Streaming does not support non-async handlers.");
      return;
    }
    const value = await Promise.race([result, unsettled.then(() => { throw null; })]);
    settled = true;
    beforeExit = NOOP;
    if (value !== undefined) {
      console.warn("Streaming handlers ignore return values.");
    }
    if (!stream.writableEnded) {
      await fail("Response stream is not finished.");
      return;
    }
    if (!stream.writableFinished) {
      await new Promise((resolve) => stream.once("finish", resolve).once("close", resolve));
    }
  } catch (err) {
    settled = true;
    beforeExit = NOOP;
    if (err !== null) { // null: the loop ran dry, reported above
      await fail(err);
    } else {
      await unsettled;
    }
  }
}

function errorHeaders(error) {
  // a header is latin-1 on the wire: never let a value break out of it
  const type = String(error.errorType ?? "Unhandled").replace(/[^\x20-\x7e]/g, "?");
  return { [ERROR_TYPE_HEADER]: type };
}

function fatal(err) {
  process.stderr.write(`lambdad runtime: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
}

// ----------------------------------------------------------------------------------------------------- handler

function hasTypeModule(folder) {
  // the nearest package.json decides; a node_modules folder or the root ends the search
  for (let dir = folder; ; dir = path.resolve(dir, "..")) {
    if (dir.endsWith("/node_modules")) {
      return false;
    }
    const pj = path.join(dir, "package.json");
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, "utf8"))?.type === "module";
      } catch (err) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    if (dir === "/") {
      return false;
    }
  }
}

function importFile(file) {
  return import(pathToFileURL(file).href);
}

async function loadModule(appRoot, moduleRoot, moduleName) {
  const base = path.resolve(appRoot, moduleRoot, moduleName);
  if (fs.existsSync(base)) {
    return require(base);
  }
  const typeModule = hasTypeModule(path.dirname(base));
  if (!typeModule && fs.existsSync(`${base}.js`)) {
    return require(`${base}.js`);
  }
  if (typeModule && fs.existsSync(`${base}.js`)) {
    return importFile(`${base}.js`);
  }
  if (fs.existsSync(`${base}.mjs`)) {
    return importFile(`${base}.mjs`);
  }
  if (fs.existsSync(`${base}.cjs`)) {
    return require(`${base}.cjs`);
  }
  // a package name (e.g. in node_modules), resolved from the code root and the handler's directory
  return require(require.resolve(moduleName, { paths: [appRoot, moduleRoot] }));
}

/** The handler function `_HANDLER` names ("dir/file.export.nested"), or a Runtime.* error. */
async function loadHandler(appRoot, fullHandler) {
  if (fullHandler.includes("..")) {
    throw new MalformedHandlerName(`'${fullHandler}' is not a valid handler name. Use absolute paths when ` +
      "specifying root directories in handler names.");
  }
  const handlerString = path.basename(fullHandler);
  const moduleRoot = fullHandler.substring(0, fullHandler.indexOf(handlerString));
  const match = handlerString.match(/^([^.]*)\.(.*)$/);
  if (!match) {
    throw new MalformedHandlerName("Bad handler");
  }
  const [, moduleName, handlerPath] = match;
  let app;
  try {
    app = await loadModule(appRoot, moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) {
      throw new UserCodeSyntaxError(err);
    }
    if (err && err.code === "MODULE_NOT_FOUND") {
      throw new ImportModuleError(err);
    }
    throw err;
  }
  const handler = handlerPath.split(".").reduce((obj, key) => obj && obj[key], app);
  if (!handler) {
    throw new HandlerNotFound(`${fullHandler} is undefined or not exported`);
  }
  if (typeof handler !== "function") {
    throw new HandlerNotFound(`${fullHandler} is not a function`);
  }
  return handler;
}

// ----------------------------------------------------------------------------------------------------- invoke

let beforeExit = NOOP; // what to do when the event loop runs dry during an invocation
const errorCallbacks = {
  uncaughtException: NOOP,
  unhandledRejection: NOOP,
};

function parseJsonHeader(value, name) {
  if (value === undefined) {
    return undefined;
  }
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

function isPromise(value) {
  return Boolean(value && typeof value.then === "function");
}

/** The invocation's request id and trace id, where the console and the SDK read them. */
function enterInvocation(headers, id) {
  globalThis[REQUEST_ID] = id;
  if (headers["lambda-runtime-trace-id"]) {
    process.env._X_AMZN_TRACE_ID = headers["lambda-runtime-trace-id"];
  } else {
    delete process.env._X_AMZN_TRACE_ID;
  }
}

/** The context's fields that describe the function and the invocation. */
function environmentData(headers, id) {
  const deadline = Number(headers["lambda-runtime-deadline-ms"]);
  const env = process.env;
  return {
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: undefined,
    identity: undefined,
    invokedFunctionArn: headers["lambda-runtime-invoked-function-arn"],
    awsRequestId: id,
    getRemainingTimeInMillis: () => deadline - Date.now(),
  };
}

/** Run one invocation; resolves once its response or error has been posted. */
function invokeOnce(client, handler, isAsync, next) {
  return new Promise((resolve) => {
    const headers = next.headers;
    const id = headers["lambda-runtime-aws-request-id"];
    enterInvocation(headers, id);
    // on a connection of their own: the kept-alive one may be waiting in GET next by the time they fire
    errorCallbacks.uncaughtException = (error) => new RuntimeClient(client.address)
      .postError(id, toRapidResponse(error)).finally(() => process.exit(129));
    errorCallbacks.unhandledRejection = (error) => new RuntimeClient(client.address)
      .postError(id, toRapidResponse(error)).finally(() => process.exit(128));

    let answered = false;
    const posted = (request) => request.then(() => resolve(), fatal);
    const postError = (err) => {
      if (answered) {
        return;
      }
      answered = true;
      logError("Invoke Error", err);
      posted(client.postError(id, toRapidResponse(err)));
    };
    const complete = (result) => {
      if (answered) {
        console.error("Invocation has already been reported as done. Cannot call complete more than once per invocation.");
        return;
      }
      let body;
      try {
        body = JSON.stringify(result === undefined ? null : result);
      } catch {
        postError(new Error("Unable to stringify response body"));
        return;
      }
      answered = true;
      posted(client.postResponse(id, body));
    };

    let waitsForEmptyEventLoop = true;
    const callback = (err, result) => {
      beforeExit = NOOP;
      if (err !== undefined && err !== null) {
        postError(err);
      } else if (!waitsForEmptyEventLoop) {
        complete(result);
      } else {
        beforeExit = () => setImmediate(() => complete(result));
      }
    };
    const done = (err, result) => {
      beforeExit = NOOP;
      if (err !== undefined && err !== null) {
        postError(err);
      } else {
        complete(result);
      }
    };
    let finished = false; // callback, succeed, fail, done: only the first call of any of them counts
    const first = (fn) => (...args) => {
      if (!finished) {
        finished = true;
        fn(...args);
      }
    };
    const context = {
      get callbackWaitsForEmptyEventLoop() {
        return waitsForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitsForEmptyEventLoop = value;
      },
      succeed: first((result) => done(null, result)),
      fail: first((err) => done(err === undefined || err === null ? "handled" : err, null)),
      done: first(done),
      ...environmentData(headers, id),
    };
    const handlerCallback = first(callback);
    // Nothing left to run and no answer yet: a plain handler that never called back answers null; an async one
    // left a promise unsettled.
    beforeExit = () => {
      beforeExit = NOOP;
      finished = true;
      if (answered) {
        return;
      }
      if (isAsync) {
        postError(new NodeJsExit(NODEJS_EXIT_MESSAGE));
      } else {
        answered = true;
        posted(client.postResponse(id, "null"));
      }
    };
    try {
      context.clientContext = parseJsonHeader(headers["lambda-runtime-client-context"], "ClientContext");
      context.identity = parseJsonHeader(headers["lambda-runtime-cognito-identity"], "CognitoIdentity");
      const event = JSON.parse(next.body.toString("utf8"));
      const result = handler(event, context, handlerCallback);
      if (isPromise(result)) {
        result.then(context.succeed, context.fail).catch(context.fail);
      }
    } catch (err) {
      handlerCallback(err);
    }
  });
}

// ----------------------------------------------------------------------------------------------------- main

/**
 * In a pre-started slot: warm the ES module loader on a file (a handler's import() takes the same path), connect to
 * the Runtime API when its address is fixed (LAMBDAD_RUNTIME_API: the slot's own network namespace), then block
 * until the assignment (JSON {"env"}, then EOF) arrives; take its variables, in place of the few this node was
 * started with, and enter the code now mounted at /var/task. Returns the client connected ahead, or null.
 */
async function awaitAssignment(fd) {
  await importFile(path.join(__dirname, "warm.mjs"));
  const client = await connectAhead(process.env.LAMBDAD_RUNTIME_API);
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(fd, buffer, 0, buffer.length, null);
    } catch (err) {
      if (err.code === "EINTR" || err.code === "EAGAIN") {
        continue;
      }
      throw err;
    }
    if (n === 0) {
      break;
    }
    chunks.push(Buffer.from(buffer.subarray(0, n)));
  }
  fs.closeSync(fd);
  const { env } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  for (const name of Object.keys(process.env)) {
    delete process.env[name];
  }
  Object.assign(process.env, env);
  process.chdir(env.LAMBDA_TASK_ROOT || "/var/task");
  return client;
}

/**
 * A Runtime API connection made before the assignment: the kernel completes it into the listener's backlog, where
 * it waits until the environment serves the listener; the first GET /next then goes out at once (a first
 * net.connect costs ~3 ms of Node's lazy loading, and the handshake an event-loop turn). Null without an address,
 * or when the connection failed (the first request then connects as usual).
 */
async function connectAhead(address) {
  if (!address) {
    return null;
  }
  const client = new RuntimeClient(address);
  const socket = client._connect();
  const connected = await new Promise((resolve) => {
    socket.once("connect", () => resolve(true));
    socket.once("error", () => resolve(false));
  });
  if (!connected) {
    return null;
  }
  socket.unref();
  return client;
}

/** The descriptor a slot's assignment arrives on: fd 3, a pipe, only in a slot (elsewhere fd 3 is not open). */
function assignmentFd() {
  if (process.env.LAMBDAD_ASSIGNMENT_FD !== "3") {
    return -1;
  }
  try {
    return fs.fstatSync(3).isFIFO() ? 3 : -1;
  } catch {
    return -1;
  }
}

async function main() {
  const slot = assignmentFd();
  let client = slot >= 0 ? await awaitAssignment(slot) : null;
  patchConsole();
  installAwsLambdaGlobal();
  if (client !== null && client.address !== process.env.AWS_LAMBDA_RUNTIME_API) {
    client.socket?.destroy(); // connected ahead to an address that is not this environment's
    client = null;
  }
  try {
    client ??= new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API);
  } catch (err) {
    fatal(err);
  }
  const initFailed = (code) => (error) => client.postInitError(toRapidResponse(error)).finally(() => process.exit(code));
  errorCallbacks.uncaughtException = initFailed(129);
  errorCallbacks.unhandledRejection = initFailed(128);
  process.on("uncaughtException", (error) => {
    logError("Uncaught Exception", error);
    errorCallbacks.uncaughtException(error);
  });
  process.on("unhandledRejection", (reason, promise) => {
    const error = new UnhandledPromiseRejection(reason, promise);
    logError("Unhandled Promise Rejection", error);
    errorCallbacks.unhandledRejection(error);
  });
  process.on("beforeExit", () => beforeExit());

  let handler;
  try {
    handler = await loadHandler(process.env.LAMBDA_TASK_ROOT || "/var/task", process.env._HANDLER || "");
  } catch (error) {
    logError("Uncaught Exception", error);
    initFailed(129)(error);
    return;
  }
  const isAsync = handler.constructor?.name === "AsyncFunction";
  const streaming = handler[HANDLER_STREAMING] === STREAM_RESPONSE;
  for (;;) {
    let next;
    try {
      next = await client.next();
    } catch (err) {
      fatal(err);
      return;
    }
    if (streaming) {
      await invokeStreaming(client, handler, next);
    } else {
      await invokeOnce(client, handler, isAsync, next);
    }
  }
}

main();
