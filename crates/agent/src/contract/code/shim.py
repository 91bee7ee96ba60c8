"""faasbox's shim for Python functions built from code (the agent's `code` contract).

The agent runs it as `python3 -u shim.py DIR HANDLER MARKER` in DIR, as the function's user.
Requests arrive on file descriptor 3 and answers leave on 4, one JSON object per line; stdout
and stderr stay the handler's own (they are the call's log lines).

1. It imports the handler's module from DIR and checks the handler takes (context, payload),
   then answers {"ready": true}, or {"ready": false, "error": "..."} and exits.
2. Per request {"id", "context", "payload"} it calls handler(context, payload) (a coroutine is
   run to its end) and answers {"id", "ok": true, "output": <result>} or
   {"id", "ok": false, "code": "InputError"|"FunctionError", "message": "..."}.
   Before the answer it flushes stdout and stderr and writes MARKER<id> on each, so the agent
   knows all output of that call has arrived.
"""

import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback

try:
    import json
except ImportError:  # Debian's python3-minimal has no json: the shim brings its own
    json = None

REQUESTS_FD = 3
ANSWERS_FD = 4
SHIM = os.path.abspath(__file__)
INPUT_ERRORS = (ValueError, TypeError)


def dumps(value):
    """Compact JSON as UTF-8; NaN and infinities are refused (they are not JSON)."""
    if json is None:
        return mini_dumps(value).encode("utf-8")
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8: escape everything instead.
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


def loads(data):
    if json is None:
        return mini_loads(data.decode("utf-8"))
    return json.loads(data)


# A small JSON reader and writer for interpreters without the json module. They take and give
# what json.loads and json.dumps(..., allow_nan=False) do.

NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
WHITESPACE = re.compile(r"[ \t\n\r]*")
STRING_RUN = re.compile(r'[^"\\\x00-\x1f]*')
ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f\ud800-\udfff]')
ESCAPED = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def mini_loads(text):
    value, at = read_value(text, WHITESPACE.match(text, 0).end())
    at = WHITESPACE.match(text, at).end()
    if at != len(text):
        raise ValueError("extra data at character %d" % at)
    return value


def read_value(text, at):
    if at >= len(text):
        raise ValueError("a value is missing at the end")
    char = text[at]
    if char == '"':
        return read_string(text, at + 1)
    if char == "{":
        result = {}
        at = WHITESPACE.match(text, at + 1).end()
        if text.startswith("}", at):
            return result, at + 1
        while True:
            if not text.startswith('"', at):
                raise ValueError("a key is missing at character %d" % at)
            key, at = read_string(text, at + 1)
            at = WHITESPACE.match(text, at).end()
            if not text.startswith(":", at):
                raise ValueError("':' is missing at character %d" % at)
            value, at = read_value(text, WHITESPACE.match(text, at + 1).end())
            result[key] = value
            at = WHITESPACE.match(text, at).end()
            if text.startswith("}", at):
                return result, at + 1
            if not text.startswith(",", at):
                raise ValueError("',' or '}' is missing at character %d" % at)
            at = WHITESPACE.match(text, at + 1).end()
    if char == "[":
        result = []
        at = WHITESPACE.match(text, at + 1).end()
        if text.startswith("]", at):
            return result, at + 1
        while True:
            value, at = read_value(text, at)
            result.append(value)
            at = WHITESPACE.match(text, at).end()
            if text.startswith("]", at):
                return result, at + 1
            if not text.startswith(",", at):
                raise ValueError("',' or ']' is missing at character %d" % at)
            at = WHITESPACE.match(text, at + 1).end()
    for word, value in (("true", True), ("false", False), ("null", None)):
        if text.startswith(word, at):
            return value, at + len(word)
    number = NUMBER.match(text, at)
    if number is None or number.end() == at:
        raise ValueError("no JSON value at character %d" % at)
    if number.group(1) is None and number.group(2) is None:
        return int(number.group(0)), number.end()
    return float(number.group(0)), number.end()


def read_string(text, at):
    parts = []
    while True:
        run = STRING_RUN.match(text, at)
        parts.append(run.group(0))
        at = run.end()
        if at >= len(text):
            raise ValueError("a string does not end")
        char = text[at]
        if char == '"':
            return "".join(parts), at + 1
        if char != "\\":
            raise ValueError("a control character in a string at character %d" % at)
        kind = text[at + 1 : at + 2]
        if kind in ESCAPES:
            parts.append(ESCAPES[kind])
            at += 2
        elif kind == "u":
            code = int(text[at + 2 : at + 6], 16)
            at += 6
            if 0xD800 <= code < 0xDC00 and text.startswith("\\u", at):
                low = int(text[at + 2 : at + 6], 16)
                if 0xDC00 <= low < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    at += 6
            parts.append(chr(code))
        else:
            raise ValueError("a bad escape at character %d" % at)


def escape(match):
    char = match.group(0)
    return ESCAPED.get(char) or "\\u%04x" % ord(char)


def mini_dumps(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return '"' + NEEDS_ESCAPE.sub(escape, value) + '"'
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("Out of range float values are not JSON compliant")
        return float.__repr__(value)
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(key, str):
                pass
            elif key is None or isinstance(key, (bool, int, float)):
                key = mini_dumps(key).strip('"')
            else:
                raise TypeError("keys must be str, int, float, bool or None, not %s" % type(key).__name__)
            items.append(mini_dumps(key) + ":" + mini_dumps(item))
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(mini_dumps(item) for item in value) + "]"
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


def trace(exc):
    """The exception's stack, without the shim's and the import machinery's frames."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename != SHIM and not frame.filename.startswith("<frozen ")
    ]
    if not frames:
        return ""
    return "Traceback (most recent call last):\n" + "".join(traceback.format_list(frames))


def describe(exc, prefix=""):
    """'<Class>: <message>' and the stack trace below it."""
    text = str(exc)
    head = type(exc).__name__ + (": " + text if text else "")
    stack = trace(exc)
    return (prefix + head + ("\n" + stack if stack else "")).rstrip()


def findable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except Exception:
        return False


def resolve(handler):
    """(module, function) of HANDLER: `module` (function `handle`) or `module.function`; a
    dotted name that is a module itself (`pkg.mod`) is that module's `handle`."""
    if "." not in handler or findable(handler):
        return handler, "handle"
    return tuple(handler.rsplit(".", 1))


def load(directory, handler):
    """The handler function, or (None, why not)."""
    module_name, function_name = resolve(handler)
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        return None, "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return None, "ModuleNotFoundError: No module named '%s' in %s (handler '%s')" % (
                module_name,
                directory,
                handler,
            )
        return None, describe(exc, "importing module '%s' failed: " % module_name)
    except BaseException as exc:
        return None, describe(exc, "importing module '%s' failed: " % module_name)
    function = getattr(module, function_name, None)
    if function is None:
        return None, "module '%s' has no function '%s'" % (module_name, function_name)
    name = "%s.%s" % (module_name, function_name)
    if not callable(function):
        return None, "%s is not a function (it is a %s)" % (name, type(function).__name__)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function, None  # a builtin without a signature: it cannot be checked
    try:
        signature.bind(None, None)
    except TypeError:
        positional = [
            p
            for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        count = len(positional)
        if count == 2:
            return None, "handler %s%s cannot be called as %s(context, payload)" % (name, signature, name)
        return None, "handler %s takes %d argument%s; it must take (context, payload)" % (
            name,
            count,
            "" if count == 1 else "s",
        )
    return function, None


async def wait_for(awaitable):
    return await awaitable


def run_to_end(awaitable):
    """The result of an async handler, run by asyncio (imported only now: it takes a while)."""
    try:
        import asyncio
    except ImportError:
        # python3-minimal has no asyncio: a coroutine that awaits no event loop still runs.
        steps = awaitable.__await__()
        try:
            steps.send(None)
        except StopIteration as done:
            return done.value
        steps.close()
        raise RuntimeError("the async handler waits for an event loop, and this python has no asyncio")
    return asyncio.run(wait_for(awaitable))


def call(function, request):
    """The answer line to one request."""
    rid = int(request["id"])
    try:
        result = function(request.get("context") or {}, request.get("payload"))
        if inspect.isawaitable(result):
            result = run_to_end(result)
    except INPUT_ERRORS as exc:
        return error(rid, "InputError", describe(exc))
    except BaseException as exc:
        return error(rid, "FunctionError", describe(exc))
    try:
        output = dumps(result)
    except BaseException as exc:
        return error(rid, "FunctionError", describe(exc, "the handler's result is not JSON: "))
    return b'{"id":%d,"ok":true,"output":' % rid + output + b"}\n"


def error(rid, code, message):
    return dumps({"id": rid, "ok": False, "code": code, "message": message}) + b"\n"


def end_output(marker, rid):
    """Flushes stdout and stderr and marks the end of this call's output on both."""
    line = ("%s%d\n" % (marker, rid)).encode("utf-8")
    for stream, fd in ((sys.stdout, 1), (sys.stderr, 2), (sys.__stdout__, 1), (sys.__stderr__, 2)):
        try:
            stream.flush()
        except Exception:
            pass
    for fd in (1, 2):
        try:
            os.write(fd, line)
        except OSError:
            pass


def main():
    directory, handler, marker = sys.argv[1:4]
    for fd in (REQUESTS_FD, ANSWERS_FD):
        os.set_inheritable(fd, False)
    requests = os.fdopen(REQUESTS_FD, "rb")
    answers = os.fdopen(ANSWERS_FD, "wb")
    # The handler's directory replaces the shim's own as the first place to import from.
    sys.path[0] = directory
    sys.argv = [handler]
    function, problem = load(directory, handler)
    if problem is not None:
        answers.write(dumps({"ready": False, "error": problem}) + b"\n")
        answers.flush()
        return
    answers.write(b'{"ready":true}\n')
    answers.flush()
    while True:
        line = requests.readline()
        if not line:
            return
        try:
            request = loads(line)
        except BaseException as exc:  # e.g. a payload nested too deeply for this interpreter
            rid = int(re.match(rb'\{"id":([0-9]+)', line).group(1))
            end_output(marker, rid)
            answers.write(error(rid, "InputError", describe(exc, "the payload cannot be read: ")))
            answers.flush()
            continue
        answer = call(function, request)
        end_output(marker, int(request["id"]))
        answers.write(answer)
        answers.flush()


if __name__ == "__main__":
    main()
    # Threads the handler left running do not keep a worker without requests alive.
    os._exit(0)
