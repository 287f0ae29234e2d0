"""Authentication scenarios with Autobahn's own authenticators.

    auth.py gen
        Prints credentials made with Autobahn: two cryptosign keys
        (``CryptosignKey``) and a SCRAM credential
        (``derive_scram_credential``), as JSON.

    auth.py URL REALM SERIALIZER --method M [--method M2 ...] [--authid ID]
            [--ticket T] [--secret S] [--privkey HEX] [--password P]
            [--channel-binding B] [--ca PEM --cert PEM --key PEM]
        One authentication attempt; prints what the client observed (see
        ``secure.attempt``).

    auth.py URL REALM SERIALIZER --scenario ratelimit --method ticket
            --authid ID --ticket RIGHT --wrong-ticket WRONG --attempts N
        N attempts with the wrong ticket, then one with the right ticket,
        one after another from this process; prints every outcome.
"""

import binascii
import json
import os
import sys

from wampclient import base_parser, run
from secure import attempt, client_ssl_context


def gen():
    from autobahn.wamp.auth import derive_scram_credential
    from autobahn.wamp.cryptosign import CryptosignKey

    keys = []
    for _ in range(2):
        seed = os.urandom(32)
        key = CryptosignKey.from_bytes(seed)
        keys.append({"privkey": binascii.b2a_hex(seed).decode("ascii"), "pubkey": key.public_key()})
    password = "scram-" + binascii.b2a_hex(os.urandom(8)).decode("ascii")
    scram = derive_scram_credential("alice@example.com", password)
    print(json.dumps({"cryptosign": keys, "scram": {"password": password, "credential": scram}}))


async def scenario(args):
    tls = {}
    if args.ca:
        tls["ssl_ctx"] = client_ssl_context(args.ca, args.cert, args.key)
    creds = dict(
        authid=args.authid,
        privkey=args.privkey,
        password=args.password,
        secret=args.secret,
        channel_binding=args.channel_binding,
        **tls,
    )
    if args.scenario == "login":
        return await attempt(args.url, args.realm, args.serializer, args.method, ticket=args.ticket, **creds)
    if args.scenario == "ratelimit":
        attempts = []
        for _ in range(args.attempts):
            attempts.append(
                await attempt(args.url, args.realm, args.serializer, args.method, ticket=args.wrong_ticket, **creds)
            )
        final = await attempt(args.url, args.realm, args.serializer, args.method, ticket=args.ticket, **creds)
        return {"attempts": attempts, "final": final}
    raise ValueError(f"unknown scenario {args.scenario!r}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["gen"]:
        gen()
        sys.exit(0)
    p = base_parser(__doc__)
    p.add_argument("--scenario", default="login", choices=["login", "ratelimit"])
    p.add_argument("--method", action="append", required=True, help="authmethod to offer (in order)")
    p.add_argument("--authid")
    p.add_argument("--ticket")
    p.add_argument("--wrong-ticket")
    p.add_argument("--attempts", type=int, default=1)
    p.add_argument("--secret")
    p.add_argument("--privkey")
    p.add_argument("--password")
    p.add_argument("--channel-binding")
    p.add_argument("--ca", help="PEM CA file to trust (TLS URLs)")
    p.add_argument("--cert", help="PEM client certificate (TLS URLs)")
    p.add_argument("--key", help="PEM client key (TLS URLs)")
    run(scenario, p.parse_args())
