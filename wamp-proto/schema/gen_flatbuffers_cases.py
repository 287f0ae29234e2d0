"""Generates wamp-proto/src/flatbuffers/autobahn_cases.json: byte-exact
Flatbuffers encodings produced by Autobahn|Python (26.x) for messages the
shared test vectors do not cover. Run with a Python that has autobahn[serialization]:

    python gen_flatbuffers_cases.py > ../src/flatbuffers/autobahn_cases.json
"""
import json
import txaio
txaio.use_asyncio()
import cbor2
from autobahn.wamp import message
from autobahn.wamp.serializer import FlatBuffersSerializer

ser = FlatBuffersSerializer()

def enc(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, list):
        return [enc(x) for x in v]
    if isinstance(v, dict):
        return {k: enc(x) for k, x in v.items()}
    return v

# (name, wmsg, index of args in wmsg or None, keys of the dict that flatbuffers drops)
CASES = [
    ("hello_auth", [1, "realm1", {"roles": {"caller": {}}, "authmethods": ["ticket"], "authid": "joe", "authrole": "user", "resumable": True, "resume-session": 77, "resume-token": "tok"}], None, ["roles", "authmethods"]),
    ("welcome_full", [2, 12345, {"realm": "realm1", "authid": "joe", "authrole": "user", "authmethod": "ticket", "authprovider": "static", "resumed": True, "resumable": True, "resume_token": "tok", "roles": {"broker": {}}}], None, ["roles", "authmethod"]),
    ("abort_message", [3, {"message": "go away"}, "wamp.error.no_such_realm"], None, []),
    ("challenge_cryptosign", [4, "cryptosign", {"challenge": "abc"}], None, ["challenge"]),
    ("challenge_ticket", [4, "ticket", {}], None, []),
    ("authenticate_extra", [5, "sig", {"foo": "bar"}], None, ["foo"]),
    ("goodbye_message", [6, {"message": "bye", "resumable": True}, "wamp.close.close_realm"], None, []),
    ("error_args_kwargs", [8, 68, 99, {}, "com.err", [1, "two", None], {"a": 1, "b": [True, 2.5]}], 5, []),
    ("error_callee", [8, 68, 101, {"callee": 5, "callee_authid": "cid", "callee_authrole": "crole"}, "com.err", ["x"]], 5, ["callee", "callee_authid", "callee_authrole"]),
    ("error_forward_for", [8, 48, 102, {"forward_for": [{"session": 1, "authid": "a", "authrole": "r"}]}, "com.err"], 5, []),
    ("error_kwargs_only", [8, 48, 100, {}, "com.err", [], {"x": b"\x00\x01"}], 5, []),
    ("publish_options", [16, 5, {"acknowledge": True, "exclude_me": False, "retain": True}, "com.topic", ["a"], {"k": "v"}], 4, []),
    ("publish_exclude", [16, 6, {"exclude": [1, 2], "exclude_authid": ["a"], "exclude_authrole": ["r1", "r2"], "eligible": [3], "eligible_authid": ["b", "c"], "eligible_authrole": ["x"]}, "com.topic"], 4, []),
    ("publish_binary", [16, 7, {}, "com.topic", [b"\x00\xff\x10", {"nested": [1, -2]}]], 4, []),
    ("event_publisher", [36, 10, 20, {"publisher": 333, "publisher_authid": "alice", "publisher_authrole": "admin", "topic": "com.t", "retained": True, "x_acknowledged_delivery": True}, [1], {"a": "b"}], 4, []),
    ("event_kwargs_only", [36, 11, 21, {}, [], {"x": 1}], 4, []),
    ("event_forward_for_two", [36, 12, 22, {"forward_for": [{"session": 1, "authid": "a", "authrole": "r"}, {"session": 2, "authid": "b", "authrole": "r"}]}], 4, []),
    ("eventreceived", [337, 44], None, []),
    ("call_options", [48, 9, {"timeout": 1000, "receive_progress": True}, "com.proc", [1, 2]], 4, []),
    ("call_e2ee", [48, 10, {"enc_algo": "cryptobox", "enc_serializer": "cbor", "enc_key": "key1"}, "com.proc", b"\x01\x02\x03"], 4, []),
    ("cancel_kill", [49, 9, {"mode": "kill"}], None, []),
    ("result_progress", [50, 9, {"progress": True}, ["r"], {"k": 1}], 3, []),
    ("register_options", [64, 3, {"match": "prefix", "invoke": "roundrobin", "concurrency": 5, "force_reregister": True}, "com.proc"], None, []),
    ("register_wildcard", [64, 4, {"match": "wildcard", "invoke": "single"}, "com..proc"], None, ["invoke"]),
    ("subscribe_prefix", [32, 3, {"match": "prefix", "get_retained": True}, "com.topic"], None, []),
    ("unsubscribed_revoked", [35, 0, {"subscription": 77, "reason": "wamp.error.revoked"}], None, []),
    ("unregistered_revoked", [67, 0, {"registration": 78, "reason": "wamp.error.revoked"}], None, []),
    ("invocation_caller", [68, 8, 9, {"caller": 111, "caller_authid": "joe", "caller_authrole": "user", "procedure": "com.proc", "timeout": 50, "receive_progress": True}, [1], {"x": "y"}], 4, []),
    ("interrupt_reason", [69, 8, {"mode": "kill", "reason": "wamp.error.canceled"}], None, ["mode"]),
    ("publish_forward_for_e2ee_key", [16, 8, {"enc_algo": "xbr", "enc_serializer": "flatbuffers", "enc_key": "k", "forward_for": [{"session": 9, "authid": None, "authrole": "router"}]}, "com.t", b"\xaa" * 30], 4, []),
    ("event_e2ee_long", [36, 13, 23, {"enc_algo": "cryptobox", "enc_serializer": "json", "enc_key": "kk"}, b"\x01" * 300], 4, []),
    ("yield_callee", [70, 8, {"callee": 3, "callee_authid": "x", "callee_authrole": "y"}, [1]], 3, []),
    ("result_callee", [50, 8, {"callee": 3, "callee_authid": "x", "callee_authrole": "y"}], 3, []),
    ("yield_progress", [70, 8, {"progress": True}, [1, 2, 3]], 3, []),
]

out = []
for name, wmsg, args_idx, dropped in CASES:
    klass = ser.MESSAGE_TYPE_MAP[wmsg[0]]
    msg = klass.parse(wmsg)
    try:
        data, _ = ser.serialize(msg)
    except Exception as e:  # Autobahn cannot encode this message
        out.append({"name": name, "wamp": enc(wmsg), "autobahn_error": repr(e)})
        continue
    case = {"name": name, "wamp": enc(wmsg), "dropped": dropped, "fbs": data.hex()}
    if args_idx is not None:
        a = wmsg[args_idx] if len(wmsg) > args_idx else None
        k = wmsg[args_idx + 1] if len(wmsg) > args_idx + 1 else None
        if isinstance(a, bytes):
            case["args_cbor"] = cbor2.dumps(a).hex()
        else:
            case["args_cbor"] = cbor2.dumps(a).hex() if a else None
        case["kwargs_cbor"] = cbor2.dumps(k).hex() if k else None
        case["wamp"] = case["wamp"][:args_idx]
    try:
        case["autobahn_decoded"] = enc(ser.unserialize(data)[0].marshal())
    except Exception as e:  # Autobahn cannot decode its own encoding
        case["autobahn_decoded"] = repr(e)
    out.append(case)

print(json.dumps(out, indent=1))
