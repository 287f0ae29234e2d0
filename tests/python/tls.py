"""TLS scenarios.

    tls.py gen-certs DIR
        Writes a throwaway PKI into DIR (PEM files) with ``cryptography``:
        ``ca`` (the CA), ``server`` (SAN 127.0.0.1, ::1 and localhost),
        client certificates ``client1`` (CN device-one), ``client2``
        (CN cn-user), ``client3`` (CN stranger), all issued by ``ca``, and
        ``rogue`` (CN device-one, issued by another, untrusted CA). Prints
        JSON: every ``<name>_cert``/``<name>_key`` path and the
        ``<name>_sha1`` fingerprints (``AB:CD:..``) of the client certs.

    tls.py URL REALM SERIALIZER --ca PEM [--cert PEM --key PEM]
            [--method M ...] [--peer-url URL --peer-serializer S]
        Two sessions over TLS (the second on --peer-url/--peer-serializer,
        default: the same): pub/sub (acknowledged publication with binary and
        unicode payload delivered to the other session) and RPC (a call
        across the sessions) both ways. Prints the sessions' WELCOME
        identities, the TLS version the client negotiated, and the results.
"""

import asyncio
import datetime
import ipaddress
import json
import os
import sys

from autobahn.wamp.types import PublishOptions

from secure import client_ssl_context, open_auth_session
from wampclient import STEP_TIMEOUT, Failure, base_parser, check, close, run, strict_equal, to_jsonable, unique


def gen_certs(out_dir):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)
    out = {}

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def save(label, cert, key):
        cert_path = os.path.join(out_dir, f"{label}.crt")
        key_path = os.path.join(out_dir, f"{label}.key")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        fp = cert.fingerprint(hashes.SHA1()).hex().upper()
        out[f"{label}_cert"] = cert_path
        out[f"{label}_key"] = key_path
        out[f"{label}_sha1"] = ":".join(fp[i : i + 2] for i in range(0, len(fp), 2))

    def make_ca(cn):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(name(cn))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cert, key

    def issue(ca, ca_key, cn, server):
        key = ec.generate_private_key(ec.SECP256R1())
        b = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if server:
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
        return b.sign(ca_key, hashes.SHA256()), key

    ca, ca_key = make_ca("Junction Test CA")
    save("ca", ca, ca_key)
    save("server", *issue(ca, ca_key, "localhost", True))
    save("client1", *issue(ca, ca_key, "device-one", False))
    save("client2", *issue(ca, ca_key, "cn-user", False))
    save("client3", *issue(ca, ca_key, "stranger", False))
    rogue_ca, rogue_key = make_ca("Rogue CA")
    save("rogue", *issue(rogue_ca, rogue_key, "device-one", False))
    print(json.dumps(out))


def identity(session):
    d = session.joined.result()
    return {"authid": d.authid, "authrole": d.authrole, "authmethod": d.authmethod, "realm": d.realm}


async def join(url, args, serializer, ctx):
    session, lost = await open_auth_session(url, args.realm, serializer, args.method, ssl_ctx=ctx)
    if not session.joined.done():
        reason = session.left.result().reason if session.left.done() else f"connection lost: {lost.result() if lost.done() else '?'}"
        raise Failure(f"join on {url} ({serializer}) failed: {reason}")
    return session


def large_filler(i):
    """Event i's payload: every third small, the rest 1 KiB to ~300 KiB."""
    n = 20 + i if i % 3 == 0 else 1024 + (i * 7919) % 300_000
    return chr(ord("a") + i % 26) * n


async def large_events(sub, pub, count):
    """`count` events of mixed sizes published back to back (only the last
    acknowledged): all must arrive, in order and intact."""
    topic = unique("com.tls.large")
    events = asyncio.Queue()
    await asyncio.wait_for(sub.subscribe(lambda i, s: events.put_nowait((i, s)), topic), STEP_TIMEOUT)
    for i in range(count):
        opts = PublishOptions(acknowledge=True) if i == count - 1 else None
        r = pub.publish(topic, i, large_filler(i), options=opts)
        if i == count - 1:
            await asyncio.wait_for(r, STEP_TIMEOUT)
    for i in range(count):
        got_i, got = await asyncio.wait_for(events.get(), STEP_TIMEOUT)
        check(got_i == i, f"large event {got_i} arrived where {i} was expected")
        check(got == large_filler(i), f"large event {i}: {len(got)} characters arrived, {len(large_filler(i))} sent, or altered")
    return count


async def scenario(args):
    ctx = client_ssl_context(args.ca, args.cert, args.key)
    a = await join(args.url, args, args.serializer, ctx)
    b = await join(args.peer_url or args.url, args, args.peer_serializer or args.serializer, ctx)
    ssl_obj = a._transport.transport.get_extra_info("ssl_object") if hasattr(a._transport, "transport") else None
    version = ssl_obj.version() if ssl_obj is not None else None

    payload = ["h\u00e9llo \u2713", b"\x00\x01\xff", {"n": 2**53}]
    results = {}
    for name, (sub, pub) in {"a_from_b": (a, b), "b_from_a": (b, a)}.items():
        topic = unique("com.tls.topic")
        events = asyncio.Queue()
        await asyncio.wait_for(sub.subscribe(lambda *x, **kw: events.put_nowait((list(x), kw)), topic), STEP_TIMEOUT)
        publication = await asyncio.wait_for(
            pub.publish(topic, *payload, options=PublishOptions(acknowledge=True), k=b"\xfe"), STEP_TIMEOUT
        )
        check(publication is not None, "publication not acknowledged")
        got, kw = await asyncio.wait_for(events.get(), STEP_TIMEOUT)
        check(strict_equal(got, payload), f"event args differ: {to_jsonable(got)!r}")
        check(strict_equal(kw, {"k": b"\xfe"}), f"event kwargs differ: {to_jsonable(kw)!r}")

        proc = unique("com.tls.proc")
        await asyncio.wait_for(sub.register(lambda x, y: [x + y, b"\x07"], proc), STEP_TIMEOUT)
        res = await asyncio.wait_for(pub.call(proc, 40, 2), STEP_TIMEOUT)
        results[name] = {"event": True, "call": res}

    if args.large:
        results["large"] = await large_events(a, b, args.large)

    out = {"a": identity(a), "b": identity(b), "tls_version": version, "results": results}
    await close(a, b)
    return out


if __name__ == "__main__":
    if sys.argv[1:2] == ["gen-certs"]:
        gen_certs(sys.argv[2])
        sys.exit(0)
    p = base_parser(__doc__)
    p.add_argument("--ca", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--method", action="append", default=None)
    p.add_argument("--peer-url")
    p.add_argument("--peer-serializer")
    p.add_argument("--large", type=int, default=0, help="then this many large events, checked in order")
    args = p.parse_args()
    if args.method is None:
        args.method = ["anonymous"]
    run(scenario, args)
