// faasbox's shim for Node.js functions built from code (the agent's `code` contract).
//
// The agent runs it as `node shim.js DIR HANDLER MARKER` in DIR, as the function's user.
// Requests arrive on file descriptor 3 and answers leave on 4, one JSON object per line; stdout
// and stderr stay the handler's own (they are the call's log lines).
//
// 1. It requires the handler's module from DIR (an ES module that node cannot require is
//    imported) and checks the handler is a function of at most two parameters (JavaScript
//    counts parameters before the first default or rest parameter, so fewer than two is
//    allowed), then answers {"ready": true}, or {"ready": false, "error": "..."} and exits.
// 2. Per request {"id", "context", "payload"} it calls handler(context, payload) (a Promise is
//    awaited) and answers {"id", "ok": true, "output": <result>} or {"id", "ok": false,
//    "code": "InputError"|"FunctionError", "message": "..."}. Before the answer it writes
//    MARKER<id> on stdout and stderr (both are synchronous for pipes on Linux), so the agent
//    knows all output of that call has arrived. Requests are handled one after the other.
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const readline = require('readline');

const REQUESTS_FD = 3;
const ANSWERS_FD = 4;
const SHIM = __filename;
const [directory, handler, marker] = process.argv.slice(2);

function writeAll(fd, text) {
  const buffer = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(fd, buffer, offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}

function className(value) {
  if (value instanceof Error) return value.name;
  if (value !== null && typeof value === 'object' && value.constructor) return value.constructor.name;
  return typeof value;
}

// '<Class>: <message>' and the stack trace below it, without the shim's and node's own frames.
function describe(err, prefix = '') {
  const message = err instanceof Error ? err.message : String(err);
  const head = className(err) + (message ? ': ' + message : '');
  const stack = err instanceof Error ? String(err.stack || '') : '';
  const frames = stack
    .split('\n')
    .filter((line) => /^\s+at /.test(line) && !line.includes(SHIM) && !line.includes('node:internal'));
  return prefix + head + (frames.length ? '\n' + frames.join('\n') : '');
}

// A require error as node prints it: a syntax error's stack starts with the file, line and source.
function describeLoad(err) {
  if (!(err instanceof Error) || !err.stack) return describe(err);
  return String(err.stack)
    .split('\n')
    .filter((line) => !line.includes(SHIM) && !line.includes('node:internal'))
    .join('\n')
    .trim();
}

function findable(name) {
  try {
    require.resolve(path.join(directory, name));
    return true;
  } catch (err) {
    return false;
  }
}

// [module, function or null]: `module` (its export) or `module.function`; a dotted name that
// is a module itself (`hello.js`, `lib.v2`) is that module's export.
function resolveHandler(name) {
  const dot = name.lastIndexOf('.');
  if (dot < 0 || findable(name)) return [name, null];
  return [name.slice(0, dot), name.slice(dot + 1)];
}

// An ES module's namespace (from import(), or from require() where node allows it) stands for
// its default export, unless the handler names one of its exports.
function fromNamespace(namespace, fnName) {
  if (!namespace || namespace[Symbol.toStringTag] !== 'Module') return namespace;
  if (fnName === null) return namespace.default !== undefined ? namespace.default : namespace;
  if (namespace[fnName] === undefined && namespace.default) return namespace.default;
  return namespace;
}

async function load() {
  const [module, fnName] = resolveHandler(handler);
  let exported;
  try {
    exported = require(path.join(directory, module));
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && !findable(module)) {
      return { error: `Error: Cannot find module '${module}' in ${directory} (handler '${handler}')` };
    }
    if (!err || err.code !== 'ERR_REQUIRE_ESM') return { error: describeLoad(err) };
    // An ES module (`"type": "module"`) that this node cannot require: imported instead.
    try {
      const url = require('url').pathToFileURL(require.resolve(path.join(directory, module)));
      exported = await import(url.href);
    } catch (importErr) {
      return { error: describeLoad(importErr) };
    }
  }
  exported = fromNamespace(exported, fnName);
  let fn;
  let name;
  if (fnName === null) {
    if (typeof exported === 'function') {
      fn = exported;
      name = module;
    } else if (exported !== null && exported !== undefined && typeof exported.handle === 'function') {
      fn = exported.handle;
      name = `${module}.handle`;
    } else {
      return {
        error: `module '${module}' exports no function: set module.exports = (context, payload) => …, or name one as ${module}.<function>`,
      };
    }
  } else {
    name = `${module}.${fnName}`;
    fn = exported === null || exported === undefined ? undefined : exported[fnName];
    if (fn === undefined) return { error: `module '${module}' has no function '${fnName}'` };
    if (typeof fn !== 'function') return { error: `${name} is not a function (it is a ${typeof fn})` };
  }
  if (fn.length > 2) {
    return { error: `handler ${name} takes ${fn.length} arguments; it must take (context, payload)` };
  }
  return { fn };
}

function errorAnswer(id, code, message) {
  return JSON.stringify({ id, ok: false, code, message });
}

function okAnswer(id, result) {
  let text;
  if (result === undefined) {
    text = 'null';
  } else {
    try {
      text = JSON.stringify(result);
    } catch (err) {
      return errorAnswer(id, 'FunctionError', describe(err, "the handler's result is not JSON: "));
    }
    if (text === undefined) {
      return errorAnswer(id, 'FunctionError', `TypeError: the handler's result (a ${typeof result}) is not JSON`);
    }
  }
  return `{"id":${id},"ok":true,"output":${text}}`;
}

function endOutput(id) {
  const line = `${marker}${id}\n`;
  process.stdout.write(line);
  process.stderr.write(line);
}

async function handle(fn, line) {
  const request = JSON.parse(line);
  const id = Number(request.id);
  let answer;
  try {
    const result = await fn(request.context || {}, request.payload);
    answer = okAnswer(id, result);
  } catch (err) {
    answer = errorAnswer(id, err instanceof TypeError ? 'InputError' : 'FunctionError', describe(err));
  }
  endOutput(id);
  writeAll(ANSWERS_FD, answer + '\n');
}

async function main() {
  const loaded = await load();
  if (loaded.error !== undefined) {
    writeAll(ANSWERS_FD, JSON.stringify({ ready: false, error: loaded.error }) + '\n');
    process.exit(0);
  }
  writeAll(ANSWERS_FD, '{"ready":true}\n');
  const requests = new net.Socket({ fd: REQUESTS_FD, readable: true, writable: false });
  const lines = readline.createInterface({ input: requests, crlfDelay: Infinity });
  let turn = Promise.resolve();
  lines.on('line', (line) => {
    turn = turn.then(() => handle(loaded.fn, line));
  });
  lines.on('close', () => {
    turn.then(() => process.exit(0));
  });
}

main();
