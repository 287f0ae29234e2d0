"""Shared helpers for Junction's end-to-end client scripts.

These scripts drive the real, unmodified Autobahn|Python client (asyncio
flavour) against a running router. Each script:

* takes ``URL REALM SERIALIZER`` on the command line, where URL is
  ``ws://host:port/path`` (WebSocket), ``rs://host:port`` (RawSocket over TCP)
  or ``unix:/path/to/socket`` (RawSocket over a Unix domain socket), and
  SERIALIZER is one of json, msgpack, cbor, flatbuffers;
* runs its scenario under a hard overall timeout;
* prints exactly one JSON object as its LAST stdout line (the result);
* exits 0 on success, non-zero (with a traceback on stderr) on failure.
"""

import argparse
import asyncio
import json
import sys
import traceback
import uuid
from urllib.parse import urlparse

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.serializer import (
    CBORSerializer,
    FlatBuffersSerializer,
    JsonSerializer,
    MsgPackSerializer,
)

SERIALIZERS = {
    "json": JsonSerializer,
    "msgpack": MsgPackSerializer,
    "cbor": CBORSerializer,
    "flatbuffers": FlatBuffersSerializer,
}

#: Seconds allowed for any single step (connect, join, one RPC, one event).
STEP_TIMEOUT = 10.0

#: A payload exercising what must survive every serializer and every
#: transcoding path: binary, unicode, nesting, large integers, floats,
#: booleans and null.
PAYLOAD_ARGS = [
    1,
    "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001F600",
    b"\x00\x01\xff",
    {"nested": {"deep": [1, 2, {"x": None, "y": [True, False]}]}},
    2**53,
    -(2**53),
    1.5,
    True,
    None,
    [],
    {},
]
PAYLOAD_KWARGS = {
    "bin": b"\x00\x01\xff",
    "unicode": "\u00fcn\u00ef\u00a9\u00f8d\u00e9",
    "big": 2**53,
    "neg": -42,
    "nested": {"a": {"b": {"c": [b"\xde\xad\xbe\xef", "x"]}}},
    "empty": "",
}


class Failure(Exception):
    """A scenario expectation that did not hold."""


def check(cond, what):
    """Raise :class:`Failure` with ``what`` unless ``cond`` holds."""
    if not cond:
        raise Failure(what)


def strict_equal(a, b):
    """Deep equality that also compares types (True != 1, b'x' != 'x').

    Tuples and lists are treated alike (serializers may give either).
    """
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, (bytes, bytearray)) and isinstance(b, (bytes, bytearray)):
        return bytes(a) == bytes(b)
    return type(a) is type(b) and a == b


def to_jsonable(v):
    """Make a value printable as JSON (bytes become ``{"bytes": hex}``)."""
    if isinstance(v, (bytes, bytearray)):
        return {"bytes": bytes(v).hex()}
    if isinstance(v, (list, tuple)):
        return [to_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_jsonable(x) for k, x in v.items()}
    return v


def unique(prefix):
    """A URI unique to this run, so parallel tests never interfere."""
    return f"{prefix}.{uuid.uuid4().hex}"


class Client(ApplicationSession):
    """An ApplicationSession exposing its lifecycle as futures."""

    def __init__(self, config):
        super().__init__(config)
        loop = asyncio.get_running_loop()
        self.joined = loop.create_future()
        self.left = loop.create_future()
        self.disconnected = loop.create_future()

    def onJoin(self, details):
        if not self.joined.done():
            self.joined.set_result(details)

    def onLeave(self, details):
        if not self.left.done():
            self.left.set_result(details)
        self.disconnect()

    def onDisconnect(self):
        if not self.disconnected.done():
            self.disconnected.set_result(True)


async def open_session(url, realm, serializer):
    """Connect to ``url`` and send HELLO for ``realm``.

    Returns the :class:`Client` once it either joined or was aborted; check
    ``session.joined.done()`` / ``session.left`` to see which.
    """
    loop = asyncio.get_running_loop()
    ser_class = SERIALIZERS.get(serializer)
    if ser_class is None:
        raise Failure(f"unknown serializer {serializer!r}")
    session = Client(types.ComponentConfig(realm=realm))

    if url.startswith("ws://"):
        p = urlparse(url)
        factory = WampWebSocketClientFactory(
            lambda: session, url=url, serializers=[ser_class()]
        )
        connect = loop.create_connection(factory, p.hostname, p.port)
    elif url.startswith("rs://"):
        p = urlparse(url)
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser_class())
        connect = loop.create_connection(factory, p.hostname, p.port)
    elif url.startswith("unix:"):
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser_class())
        connect = loop.create_unix_connection(factory, url[len("unix:"):])
    else:
        raise Failure(f"unsupported URL {url!r} (want ws://, rs:// or unix:)")

    transport, protocol = await asyncio.wait_for(connect, STEP_TIMEOUT)
    # A connection that drops before the WAMP session is attached (say, the
    # router process dies right after the kernel accepted it) never reaches
    # the session's onDisconnect: watch the protocol itself, so that shows as
    # "connection lost" at once rather than a wait of STEP_TIMEOUT.
    lost = loop.create_future()
    original_lost = protocol.connection_lost

    def connection_lost(exc):
        if not lost.done():
            lost.set_result(exc)
        original_lost(exc)

    protocol.connection_lost = connection_lost
    if transport.is_closing() and not lost.done():
        lost.set_result(None)
    done, _ = await asyncio.wait(
        [session.joined, session.left, session.disconnected, lost],
        timeout=STEP_TIMEOUT,
        return_when=asyncio.FIRST_COMPLETED,
    )
    check(done, f"no WELCOME/ABORT from {url} within {STEP_TIMEOUT}s")
    return session


async def connect(url, realm, serializer):
    """Connect and join; fail unless the session was welcomed."""
    session = await open_session(url, realm, serializer)
    if not session.joined.done():
        reason = session.left.result().reason if session.left.done() else "connection lost"
        raise Failure(f"join {realm!r} on {url} ({serializer}) failed: {reason}")
    return session


async def close(*sessions):
    """Leave every joined session and wait (bounded) for the disconnects."""
    for s in sessions:
        if s.is_attached():
            s.leave()
    waits = [s.disconnected for s in sessions if not s.disconnected.done()]
    if waits:
        await asyncio.wait(waits, timeout=STEP_TIMEOUT)


async def expect_error(coro, what):
    """Await ``coro`` and return the URI of the ApplicationError it raised.

    Returns ``"<no error>"`` when it succeeded, so the caller can report it.
    """
    try:
        await asyncio.wait_for(coro, STEP_TIMEOUT)
    except ApplicationError as e:
        return e.error
    except asyncio.TimeoutError:
        raise Failure(f"{what}: no answer within {STEP_TIMEOUT}s")
    return "<no error>"


def base_parser(description):
    """An argument parser with the positional URL, REALM and SERIALIZER."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("url", help="ws://host:port/path, rs://host:port or unix:/path")
    p.add_argument("realm")
    p.add_argument("serializer", choices=sorted(SERIALIZERS))
    p.add_argument("--timeout", type=float, default=45.0, help="overall timeout (s)")
    return p


def run(scenario, args):
    """Run ``scenario(args)`` under the overall timeout; print and exit."""

    async def main():
        return await asyncio.wait_for(scenario(args), args.timeout)

    try:
        result = asyncio.run(main())
    except asyncio.TimeoutError:
        traceback.print_exc()
        print(f"FAILED: scenario timed out after {args.timeout}s", file=sys.stderr)
        print(json.dumps({"ok": False, "error": "timeout"}))
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - report anything, then fail
        traceback.print_exc()
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
    result = dict(result or {})
    result.setdefault("ok", True)
    sys.stdout.flush()
    print(json.dumps(to_jsonable(result)))
    sys.exit(0)
