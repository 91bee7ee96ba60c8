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
import json
import os
import sys
import traceback

REQUESTS_FD = 3
ANSWERS_FD = 4
SHIM = os.path.abspath(__file__)
INPUT_ERRORS = (ValueError, TypeError)


def dumps(value):
    """Compact JSON; NaN and infinities are refused (they are not JSON)."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8: escape everything instead.
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode("ascii")


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


def call(function, request):
    """The answer line to one request."""
    rid = int(request["id"])
    try:
        result = function(request.get("context") or {}, request.get("payload"))
        if inspect.isawaitable(result):
            import asyncio  # only for async handlers: it takes a while to import

            result = asyncio.run(wait_for(result))
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
        request = json.loads(line)
        answer = call(function, request)
        end_output(marker, int(request["id"]))
        answers.write(answer)
        answers.flush()


if __name__ == "__main__":
    main()
    # Threads the handler left running do not keep a worker without requests alive.
    os._exit(0)
