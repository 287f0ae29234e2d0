"""Authentication and TLS helpers for Junction's end-to-end client scripts.

Builds on :mod:`wampclient`: an Autobahn ``ApplicationSession`` that sends
HELLO with chosen ``authmethods``/``authid``/``authextra`` and answers
CHALLENGEs with Autobahn's own authenticators
(``autobahn.wamp.auth.create_authenticator``: ticket, wampcra, cryptosign,
scram), over plain or TLS transports:

* ``ws://host:port/path`` / ``wss://host:port/path`` (WebSocket, TLS);
* ``rs://host:port`` / ``rss://host:port`` (RawSocket, TLS).

An attempt's outcome is reported as a plain dict (see :func:`attempt`), so
scenarios can assert on refusals as well as on joins.
"""

import asyncio
import json
import ssl
from urllib.parse import urlparse

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.auth import create_authenticator

from wampclient import SERIALIZERS, STEP_TIMEOUT, Client, Failure, check, unique

#: Methods answered without a CHALLENGE (no Autobahn authenticator needed).
NO_CHALLENGE = ("anonymous", "tls")


class AuthClient(Client):
    """A :class:`wampclient.Client` that authenticates with Autobahn's
    authenticators and records what happened during the opening handshake."""

    def __init__(self, config, authmethods, authid, authextra, authenticators):
        super().__init__(config)
        self._authmethods = authmethods
        self._authid = authid
        self._hello_authextra = authextra
        self._authenticators = authenticators
        #: Methods of the CHALLENGEs received, in order.
        self.challenges = []
        #: Why Autobahn refused the WELCOME (e.g. bad SCRAM server signature).
        self.welcome_denied = None
        #: The ``session`` named inside a WAMP-CRA challenge string.
        self.challenge_session = None

    def onConnect(self):
        self.join(
            self.config.realm,
            authmethods=self._authmethods,
            authid=self._authid,
            authextra=self._hello_authextra or None,
        )

    def onChallenge(self, challenge):
        self.challenges.append(challenge.method)
        if challenge.method == "wampcra":
            try:
                self.challenge_session = json.loads(challenge.extra["challenge"]).get("session")
            except (KeyError, ValueError, AttributeError):
                self.challenge_session = "unparsable"
        a = self._authenticators.get(challenge.method)
        if a is None:
            raise RuntimeError(f"unexpected CHALLENGE for {challenge.method!r}")
        return a.on_challenge(self, challenge)

    def onWelcome(self, msg):
        a = self._authenticators.get(msg.authmethod)
        res = a.on_welcome(self, msg.authextra) if a is not None else None
        if res is not None:
            self.welcome_denied = res
            if not self.left.done():
                self.left.set_result(types.CloseDetails("client.denied_welcome", res))
        return res


def make_authenticators(methods, authid=None, ticket=None, secret=None, privkey=None,
                        password=None, channel_binding=None):
    """Autobahn authenticators for the offered ``methods`` and the merged
    HELLO ``authextra`` (as Autobahn's ``Session.add_authenticator`` does)."""
    auths = {}
    for m in methods:
        kw = {}
        if authid is not None:
            kw["authid"] = authid
        if m == "ticket":
            auths[m] = create_authenticator("ticket", ticket=ticket or "", **kw)
        elif m == "wampcra":
            auths[m] = create_authenticator("wampcra", secret=secret or "", **kw)
        elif m == "cryptosign":
            if channel_binding:
                kw["authextra"] = {"channel_binding": channel_binding}
            auths[m] = create_authenticator("cryptosign", privkey=privkey, **kw)
        elif m == "scram":
            auths[m] = create_authenticator("scram", password=password or "", **kw)
        elif m not in NO_CHALLENGE:
            raise Failure(f"no authenticator for {m!r}")
    authextra = {}
    for a in auths.values():
        authextra.update(a.authextra)
    return auths, authextra


def client_ssl_context(ca=None, cert=None, key=None):
    """A client TLS context trusting ``ca`` (PEM file), optionally presenting
    the client certificate ``cert`` with ``key``."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


async def open_auth_session(url, realm, serializer, methods, authid=None, ssl_ctx=None,
                            server_hostname=None, **creds):
    """Connect to ``url``, send HELLO offering ``methods`` and wait until the
    session joined, was aborted, or the connection was lost.

    Returns ``(session, lost)``: ``session`` is ``None`` when no WAMP session
    was ever attached (e.g. TLS or transport handshake failed); ``lost`` is a
    future resolved with the exception (or ``None``) when the connection
    closed.
    """
    loop = asyncio.get_running_loop()
    ser_class = SERIALIZERS.get(serializer)
    if ser_class is None:
        raise Failure(f"unknown serializer {serializer!r}")
    auths, authextra = make_authenticators(methods, authid=authid, **creds)
    session = AuthClient(types.ComponentConfig(realm=realm), methods, authid, authextra, auths)
    p = urlparse(url)
    secure = p.scheme in ("wss", "rss")
    if p.scheme in ("ws", "wss"):
        factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[ser_class()])
    elif p.scheme in ("rs", "rss"):
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser_class())
    else:
        raise Failure(f"unsupported URL {url!r} (want ws://, wss://, rs:// or rss://)")
    if secure and ssl_ctx is None:
        raise Failure(f"{url}: a TLS URL needs a TLS context")

    lost = loop.create_future()

    def protocol():
        proto = factory()
        orig = proto.connection_lost

        def connection_lost(exc):
            if not lost.done():
                lost.set_result(exc)
            return orig(exc)

        proto.connection_lost = connection_lost
        return proto

    kw = {}
    if secure:
        kw["ssl"] = ssl_ctx
        kw["server_hostname"] = server_hostname or p.hostname
    await asyncio.wait_for(loop.create_connection(protocol, p.hostname, p.port, **kw), STEP_TIMEOUT)
    done, _ = await asyncio.wait(
        [session.joined, session.left, session.disconnected, lost],
        timeout=STEP_TIMEOUT,
        return_when=asyncio.FIRST_COMPLETED,
    )
    check(done, f"no WELCOME/ABORT/close from {url} within {STEP_TIMEOUT}s")
    return session, lost


async def attempt(url, realm, serializer, methods, roundtrip=True, **kw):
    """One authentication attempt; returns what the client observed.

    Keys: ``joined`` (bool); when joined ``authid``, ``authrole``,
    ``authmethod``, ``authprovider``, ``realm``, ``session`` and (with
    ``roundtrip``) ``rpc`` (the result of calling a procedure the session
    registered itself); when refused ``reason`` and ``message`` of the ABORT
    (``None`` if the connection just closed) and ``error`` for a transport
    failure; always ``challenges`` (CHALLENGE methods received).
    """
    try:
        session, lost = await open_auth_session(url, realm, serializer, methods, **kw)
    except (OSError, ssl.SSLError) as e:
        return {"joined": False, "reason": None, "message": None, "challenges": [],
                "error": f"{type(e).__name__}: {e}"}
    out = {"joined": session.joined.done(), "challenges": list(session.challenges)}
    if session.challenge_session is not None:
        out["challenge_session"] = session.challenge_session
    if session.joined.done():
        d = session.joined.result()
        out.update(authid=d.authid, authrole=d.authrole, authmethod=d.authmethod,
                   authprovider=d.authprovider, realm=d.realm, session=d.session)
        if roundtrip:
            proc = unique("com.auth.echo")
            await asyncio.wait_for(session.register(lambda x: ["echo", x], proc), STEP_TIMEOUT)
            out["rpc"] = await asyncio.wait_for(session.call(proc, 42), STEP_TIMEOUT)
        session.leave()
        await asyncio.wait([session.disconnected, lost], timeout=STEP_TIMEOUT)
        return out
    if session.left.done():
        details = session.left.result()
        out.update(reason=details.reason, message=details.message)
    else:
        out.update(reason=None, message=None)
        if lost.done() and lost.result() is not None:
            out["error"] = f"{type(lost.result()).__name__}: {lost.result()}"
    if session.welcome_denied:
        out["welcome_denied"] = session.welcome_denied
    if session.is_attached() or session._transport:
        session.disconnect()
    await asyncio.wait([lost], timeout=STEP_TIMEOUT)
    out["closed"] = lost.done()
    return out
