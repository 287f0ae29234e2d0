//! The `wamp.2.flatbuffers` serializer, byte-compatible with Autobahn|Python.
//!
//! The schema is Autobahn's (`wamp-proto/schema/*.fbs`, MIT licensed, copied
//! from the autobahn 26.x wheel). A message is a root table `Message` holding
//! a union `msg` of one concrete message table per WAMP message type.
//!
//! ## What is on the wire (and what is not)
//! Encoding follows Autobahn's `Message.build()` methods field by field and
//! in the same order, and the hand-written `builder` submodule reproduces the Python
//! `flatbuffers.Builder` layout, so for every message Autobahn can encode we
//! produce the identical bytes. Autobahn peculiarities we reproduce on
//! purpose, because they are on the wire:
//!
//! * The union type byte is the **WAMP message code** (`EVENT` = 36), not the
//!   union index the schema implies; `EVENT_RECEIVED` (337) is written as 37
//!   (the schema's `MessageType` value).
//! * `args`/`kwargs` are `[ubyte]` fields holding CBOR. Decoding keeps them as
//!   zero-copy [`Payload::Raw`] CBOR slices of the input; encoding splices
//!   [`Payload::encoded_in`]`(Cbor)` verbatim.
//! * Payload transparency (E2EE): when the options/details carry `enc_algo`
//!   and the args are a CBOR byte string, its contents go to the `payload`
//!   field (with `ppt_scheme`/`ppt_serializer`/`ppt_keyid` from `enc_algo`,
//!   `enc_serializer`, `enc_key`). Decoding turns `payload` back into a CBOR
//!   byte string in the args position (one small copy: the CBOR header).
//! * Options/Details dicts are typed schema fields. Keys the schema (or
//!   Autobahn's encoder) cannot carry are **dropped on encode**:
//!   HELLO `roles`, `authmethods`, `authextra`; WELCOME `roles`, `authmethod`,
//!   `authextra`; CHALLENGE/AUTHENTICATE `extra`; UNSUBSCRIBE/UNREGISTER
//!   options; EVENT_RECEIVED details and payload; SUBSCRIBE/REGISTER
//!   `forward_for`; any key not listed in the per-message code below. Autobahn
//!   drops exactly these too (its flatbuffers session messages carry no
//!   roles), so a HELLO/WELCOME decoded from flatbuffers has no `roles`.
//! * Integers/bools at their schema default (0/false, `exclude_me` = true,
//!   INTERRUPT `mode` = kill) are not written, so e.g. `acknowledge: false`
//!   does not survive a round trip; decode emits a key only for fields that
//!   are present.
//!
//! Deliberate deviations (Autobahn is lossy or crashes there): CANCEL and
//! INTERRUPT `mode: "killnowait"` are encoded as `KILLNOWAIT` (Autobahn writes
//! SKIP resp. KILL); `forward_for` on CALL/RESULT/INVOCATION/YIELD/ERROR is
//! encoded like CANCEL's (Autobahn raises an ImportError there); Autobahn's
//! `ERROR` orphan strings for `callee_authid`/`callee_authrole` are
//! reproduced so the bytes still match.
//!
//! Decoding validates every offset against the buffer (`reader` submodule); no input
//! can panic. Required-by-schema strings that are absent decode as `""`
//! (Autobahn omits empty strings), leaving URI validation to the router.

mod builder;
mod reader;
#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::ids::{PublicationId, RegistrationId, RequestId, SessionId, SubscriptionId};
use crate::message::{code, Message};
use crate::payload::{Payload, PayloadFormat};
use crate::value::{Dict, List, Value};
use builder::Builder;
use reader::Table;

/// Union type byte Autobahn writes for EVENT_RECEIVED (`MessageType.EVENT_RECEIVED`).
const FB_EVENT_RECEIVED: u8 = 37;

// ---------------------------------------------------------------------------
// encode
// ---------------------------------------------------------------------------

/// Encodes a message exactly as Autobahn|Python's `FlatBuffersSerializer`.
pub fn encode(msg: &Message) -> Result<Bytes, EncodeError> {
    let cap = 128 + payload_len(msg);
    let mut b = Builder::with_capacity(cap);
    let (ty, root) = build(&mut b, msg)?;
    b.start_object(2);
    b.add_u8(0, ty, 0);
    b.add_offset(1, root);
    let container = b.end_object();
    Ok(b.finish(container))
}

fn payload_len(msg: &Message) -> usize {
    let p = match msg {
        Message::Error { payload, .. }
        | Message::Publish { payload, .. }
        | Message::Event { payload, .. }
        | Message::Call { payload, .. }
        | Message::Result { payload, .. }
        | Message::Invocation { payload, .. }
        | Message::Yield { payload, .. } => payload,
        _ => return 0,
    };
    match p {
        Payload::Raw { args, kwargs, .. } => {
            args.as_ref().map_or(0, |a| a.len() + 8) + kwargs.as_ref().map_or(0, |k| k.len() + 8)
        }
        Payload::Values { .. } => 256,
    }
}

fn get_str<'a>(d: &'a Dict, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}
fn get_u64(d: &Dict, k: &str) -> u64 {
    d.get(k).and_then(Value::as_u64).unwrap_or(0)
}
fn get_bool(d: &Dict, k: &str) -> Option<bool> {
    d.get(k).and_then(Value::as_bool)
}
fn get_list<'a>(d: &'a Dict, k: &str) -> Option<&'a List> {
    d.get(k).and_then(Value::as_list).filter(|l| !l.is_empty())
}

/// Creates the string if non-empty; 0 means "not written".
fn opt_str(b: &mut Builder, s: Option<&str>) -> u32 {
    match s {
        Some(s) if !s.is_empty() => b.create_string(s),
        _ => 0,
    }
}

fn unrepresentable(detail: impl Into<String>) -> EncodeError {
    EncodeError::Unrepresentable { format: "flatbuffers", detail: detail.into() }
}

fn enc_algo_code(s: &str) -> u8 {
    match s {
        "cryptobox" => 1,
        "mqtt" => 2,
        "xbr" => 3,
        _ => 0,
    }
}
fn enc_algo_name(c: u8) -> Option<&'static str> {
    match c {
        1 => Some("cryptobox"),
        2 => Some("mqtt"),
        3 => Some("xbr"),
        _ => None,
    }
}
fn enc_ser_code(s: &str) -> u8 {
    match s {
        "json" => 1,
        "msgpack" => 2,
        "cbor" => 3,
        "ubjson" => 4,
        "opaque" => 5,
        "flatbuffers" => 6,
        "flexbuffers" => 7,
        _ => 0,
    }
}
fn enc_ser_name(c: u8) -> Option<&'static str> {
    match c {
        1 => Some("json"),
        2 => Some("msgpack"),
        3 => Some("cbor"),
        4 => Some("ubjson"),
        5 => Some("opaque"),
        6 => Some("flatbuffers"),
        7 => Some("flexbuffers"),
        _ => None,
    }
}

/// Offsets of the application payload fields (0 = absent).
#[derive(Default)]
struct PayloadOffs {
    args: u32,
    kwargs: u32,
    payload: u32,
}

/// Content of a definite-length CBOR byte string that spans all of `b`.
fn cbor_byte_string(b: &[u8]) -> Option<&[u8]> {
    let (&first, rest) = b.split_first()?;
    if first >> 5 != 2 {
        return None;
    }
    let (len, rest) = match first & 0x1f {
        n @ 0..=23 => (n as u64, rest),
        24 => (*rest.first()? as u64, rest.get(1..)?),
        25 => (u16::from_be_bytes(rest.get(..2)?.try_into().ok()?) as u64, rest.get(2..)?),
        26 => (u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as u64, rest.get(4..)?),
        27 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), rest.get(8..)?),
        _ => return None,
    };
    (rest.len() as u64 == len).then_some(rest)
}

/// A CBOR byte string holding `content` (for transparent payloads).
fn cbor_wrap_bytes(content: &[u8]) -> Bytes {
    let n = content.len();
    let mut out = Vec::with_capacity(n + 9);
    match n {
        0..=23 => out.push(0x40 | n as u8),
        24..=0xff => out.extend_from_slice(&[0x58, n as u8]),
        0x100..=0xffff => {
            out.push(0x59);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ if n as u64 <= u32::MAX as u64 => {
            out.push(0x5a);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(0x5b);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(content);
    Bytes::from(out)
}

/// Writes args, kwargs and (transparent) payload, in Autobahn's order.
fn write_payload(b: &mut Builder, payload: &Payload, opts: &Dict) -> Result<PayloadOffs, EncodeError> {
    let ep = payload.encoded_in(PayloadFormat::Cbor)?;
    let mut offs = PayloadOffs::default();
    if get_str(opts, "enc_algo").is_some() {
        if let Some(content) = ep.args.as_deref().and_then(cbor_byte_string) {
            if !content.is_empty() {
                offs.payload = b.create_bytes(content);
            }
            return Ok(offs);
        }
    }
    if let Some(a) = ep.args.as_deref().filter(|a| !a.is_empty() && *a != [0x80]) {
        offs.args = b.create_bytes(a);
    }
    if let Some(k) = ep.kwargs.as_deref().filter(|k| !k.is_empty() && *k != [0xa0]) {
        offs.kwargs = b.create_bytes(k);
    }
    Ok(offs)
}

/// PPT fields: (scheme, serializer).
fn ppt(opts: &Dict) -> (u8, u8) {
    (get_str(opts, "enc_algo").map_or(0, enc_algo_code), get_str(opts, "enc_serializer").map_or(0, enc_ser_code))
}

/// Writes `forward_for` as `[Principal]`. `always_authrole` follows the
/// CANCEL/INTERRUPT variant of Autobahn's code (authrole string always
/// created), otherwise the PUBLISH/EVENT variant (only if non-empty).
fn write_forward_for(b: &mut Builder, opts: &Dict, always_authrole: bool) -> u32 {
    let Some(list) = get_list(opts, "forward_for") else {
        return 0;
    };
    let mut offs = Vec::with_capacity(list.len());
    for p in list {
        let Some(p) = p.as_dict() else { continue };
        let authid = opt_str(b, get_str(p, "authid"));
        let authrole = if always_authrole {
            b.create_string(get_str(p, "authrole").unwrap_or(""))
        } else {
            opt_str(b, get_str(p, "authrole"))
        };
        b.start_object(3);
        b.add_u64(0, get_u64(p, "session"));
        b.add_offset(1, authid);
        b.add_offset(2, authrole);
        offs.push(b.end_object());
    }
    if offs.is_empty() {
        return 0;
    }
    b.start_vector(4, offs.len(), 4);
    for &o in offs.iter().rev() {
        b.prepend_uoffset(o);
    }
    b.end_vector()
}

fn write_str_vec(b: &mut Builder, list: Option<&List>) -> u32 {
    let Some(list) = list else { return 0 };
    let offs: Vec<u32> = list.iter().filter_map(Value::as_str).map(|s| b.create_string(s)).collect();
    b.start_vector(4, offs.len(), 4);
    for &o in offs.iter().rev() {
        b.prepend_uoffset(o);
    }
    b.end_vector()
}

fn write_u64_vec(b: &mut Builder, list: Option<&List>) -> u32 {
    let Some(list) = list else { return 0 };
    let ids: Vec<u64> = list.iter().filter_map(Value::as_u64).collect();
    // Autobahn starts these with the 4-byte element size of a string vector.
    b.start_vector(4, ids.len(), 4);
    for &id in ids.iter().rev() {
        b.prepend_u64(id);
    }
    b.end_vector()
}

fn match_code(opts: &Dict) -> u8 {
    match get_str(opts, "match") {
        Some("prefix") => 1,
        Some("wildcard") => 2,
        _ => 0,
    }
}

fn cancel_mode_code(opts: &Dict, default: u8) -> u8 {
    match get_str(opts, "mode") {
        Some("skip") => 0,
        Some("kill") => 1,
        Some("killnowait") => 2,
        _ => default,
    }
}

/// Builds the concrete message table; returns (union type byte, offset).
fn build(b: &mut Builder, msg: &Message) -> Result<(u8, u32), EncodeError> {
    let ty = match msg {
        Message::EventReceived { .. } => FB_EVENT_RECEIVED,
        m => m.code() as u8,
    };
    let off = match msg {
        Message::Hello { realm, details: d } => {
            let realm = opt_str(b, Some(realm));
            let authid = opt_str(b, get_str(d, "authid"));
            let authrole = opt_str(b, get_str(d, "authrole"));
            let token = opt_str(b, get_str(d, "resume-token"));
            b.start_object(10);
            b.add_offset(2, realm);
            b.add_offset(4, authid);
            b.add_offset(5, authrole);
            b.add_bool(7, get_bool(d, "resumable").unwrap_or(false), false);
            b.add_u64(8, get_u64(d, "resume-session"));
            b.add_offset(9, token);
            b.end_object()
        }
        Message::Welcome { session, details: d } => {
            let realm = opt_str(b, get_str(d, "realm"));
            let authid = opt_str(b, get_str(d, "authid"));
            let authrole = opt_str(b, get_str(d, "authrole"));
            let authprovider = opt_str(b, get_str(d, "authprovider"));
            let token = opt_str(b, get_str(d, "resume_token"));
            b.start_object(11);
            b.add_u64(0, session.get());
            b.add_offset(2, realm);
            b.add_offset(3, authid);
            b.add_offset(4, authrole);
            b.add_offset(6, authprovider);
            b.add_bool(8, get_bool(d, "resumed").unwrap_or(false), false);
            b.add_bool(9, get_bool(d, "resumable").unwrap_or(false), false);
            b.add_offset(10, token);
            b.end_object()
        }
        Message::Abort { details, reason } | Message::Goodbye { details, reason } => {
            let reason = opt_str(b, Some(reason));
            let message = opt_str(b, get_str(details, "message"));
            let goodbye = matches!(msg, Message::Goodbye { .. });
            b.start_object(if goodbye { 4 } else { 3 });
            b.add_offset(1, reason);
            b.add_offset(2, message);
            if goodbye {
                b.add_bool(3, get_bool(details, "resumable").unwrap_or(false), false);
            }
            b.end_object()
        }
        Message::Challenge { method, .. } => {
            let m = match method.as_str() {
                "ticket" => 1,
                "wampcra" => 2,
                "wamp-scram" => 3,
                "cryptosign" => 4,
                _ => 0,
            };
            b.start_object(3);
            b.add_u8(1, m, 0);
            b.end_object()
        }
        Message::Authenticate { signature, .. } => {
            let sig = opt_str(b, Some(signature));
            b.start_object(3);
            b.add_offset(1, sig);
            b.end_object()
        }
        Message::Error { request_type, request, details: d, error, payload } => {
            let p = write_payload(b, payload, d)?;
            let error = opt_str(b, Some(error));
            let key = opt_str(b, get_str(d, "enc_key"));
            // Autobahn creates these strings but never references them.
            opt_str(b, get_str(d, "callee_authid"));
            opt_str(b, get_str(d, "callee_authrole"));
            let ff = write_forward_for(b, d, true);
            let rt = u16::try_from(*request_type).map_err(|_| unrepresentable("ERROR request type > 65535"))?;
            let (scheme, ser) = ppt(d);
            b.start_object(12);
            b.add_u16(1, rt);
            b.add_u64(2, request.get());
            b.add_offset(3, error);
            b.add_offset(4, p.args);
            b.add_offset(5, p.kwargs);
            b.add_offset(6, p.payload);
            b.add_u8(7, scheme, 0);
            b.add_u8(8, ser, 0);
            b.add_offset(10, key);
            b.add_offset(11, ff);
            b.end_object()
        }
        Message::Publish { request, options: o, topic, payload } => {
            let p = write_payload(b, payload, o)?;
            let topic = opt_str(b, Some(topic));
            let th = opt_str(b, get_str(o, "transaction_hash"));
            let key = opt_str(b, get_str(o, "enc_key"));
            let exclude = write_u64_vec(b, get_list(o, "exclude"));
            let exclude_authid = write_str_vec(b, get_list(o, "exclude_authid"));
            let exclude_authrole = write_str_vec(b, get_list(o, "exclude_authrole"));
            let eligible = write_u64_vec(b, get_list(o, "eligible"));
            let eligible_authid = write_str_vec(b, get_list(o, "eligible_authid"));
            let eligible_authrole = write_str_vec(b, get_list(o, "eligible_authrole"));
            let ff = write_forward_for(b, o, false);
            let (scheme, ser) = ppt(o);
            b.start_object(21);
            b.add_u64(1, request.get());
            b.add_offset(2, topic);
            b.add_offset(3, p.args);
            b.add_offset(4, p.kwargs);
            b.add_offset(5, p.payload);
            b.add_u8(6, scheme, 0);
            b.add_u8(7, ser, 0);
            b.add_offset(9, key);
            b.add_bool(10, get_bool(o, "acknowledge").unwrap_or(false), false);
            b.add_bool(11, get_bool(o, "exclude_me").unwrap_or(true), true);
            b.add_offset(12, exclude);
            b.add_offset(13, exclude_authid);
            b.add_offset(14, exclude_authrole);
            b.add_offset(15, eligible);
            b.add_offset(16, eligible_authid);
            b.add_offset(17, eligible_authrole);
            b.add_bool(18, get_bool(o, "retain").unwrap_or(false), false);
            b.add_offset(19, th);
            b.add_offset(20, ff);
            b.end_object()
        }
        Message::Published { request, publication } => ids3(b, request.get(), publication.get(), 3),
        Message::Subscribed { request, subscription } => ids3(b, request.get(), subscription.get(), 3),
        Message::Unsubscribe { request, subscription } => ids3(b, request.get(), subscription.get(), 3),
        Message::Registered { request, registration } => ids3(b, request.get(), registration.get(), 3),
        Message::Unregister { request, registration } => ids3(b, request.get(), registration.get(), 3),
        Message::Subscribe { request, options: o, topic } => {
            let topic = opt_str(b, Some(topic));
            b.start_object(5);
            b.add_u64(1, request.get());
            b.add_offset(2, topic);
            b.add_u8(3, match_code(o), 0);
            b.add_bool(4, get_bool(o, "get_retained").unwrap_or(false), false);
            b.end_object()
        }
        Message::Unsubscribed { request, details } | Message::Unregistered { request, details } => {
            let key = if matches!(msg, Message::Unsubscribed { .. }) { "subscription" } else { "registration" };
            let empty = Dict::new();
            let d = details.as_ref().unwrap_or(&empty);
            let reason = opt_str(b, get_str(d, "reason"));
            b.start_object(4);
            b.add_u64(1, request.get());
            b.add_u64(2, get_u64(d, key));
            b.add_offset(3, reason);
            b.end_object()
        }
        Message::Event { subscription, publication, details: d, payload } => {
            let p = write_payload(b, payload, d)?;
            let pub_authid = opt_str(b, get_str(d, "publisher_authid"));
            let pub_authrole = opt_str(b, get_str(d, "publisher_authrole"));
            let topic = opt_str(b, get_str(d, "topic"));
            let th = opt_str(b, get_str(d, "transaction_hash"));
            let key = opt_str(b, get_str(d, "enc_key"));
            let ff = write_forward_for(b, d, false);
            let (scheme, ser) = ppt(d);
            b.start_object(18);
            b.add_u64(1, subscription.get());
            b.add_u64(2, publication.get());
            b.add_offset(3, p.args);
            b.add_offset(4, p.kwargs);
            b.add_offset(5, p.payload);
            b.add_u64(10, get_u64(d, "publisher"));
            b.add_offset(11, pub_authid);
            b.add_offset(12, pub_authrole);
            b.add_offset(13, topic);
            b.add_bool(14, get_bool(d, "retained").unwrap_or(false), false);
            b.add_offset(15, th);
            b.add_bool(16, get_bool(d, "x_acknowledged_delivery").unwrap_or(false), false);
            b.add_u8(6, scheme, 0);
            b.add_offset(9, key);
            b.add_u8(7, ser, 0);
            b.add_offset(17, ff);
            b.end_object()
        }
        Message::EventReceived { publication, .. } => {
            b.start_object(3);
            b.add_u64(1, publication.get());
            b.end_object()
        }
        Message::Call { request, options: o, procedure, payload } => {
            let p = write_payload(b, payload, o)?;
            let procedure = opt_str(b, Some(procedure));
            let th = opt_str(b, get_str(o, "transaction_hash"));
            let caller_authid = opt_str(b, get_str(o, "caller_authid"));
            let caller_authrole = opt_str(b, get_str(o, "caller_authrole"));
            let key = opt_str(b, get_str(o, "enc_key"));
            let ff = write_forward_for(b, o, true);
            let (scheme, ser) = ppt(o);
            let timeout = timeout_ms(o)?;
            b.start_object(17);
            b.add_u64(1, request.get());
            b.add_offset(2, procedure);
            b.add_offset(3, p.args);
            b.add_offset(4, p.kwargs);
            b.add_offset(5, p.payload);
            b.add_u8(6, scheme, 0);
            b.add_u8(7, ser, 0);
            b.add_offset(9, key);
            b.add_u32(10, timeout);
            b.add_bool(11, get_bool(o, "receive_progress").unwrap_or(false), false);
            b.add_offset(12, th);
            b.add_u64(13, get_u64(o, "caller"));
            b.add_offset(14, caller_authid);
            b.add_offset(15, caller_authrole);
            b.add_offset(16, ff);
            b.end_object()
        }
        Message::Cancel { request, options: o } => {
            let ff = write_forward_for(b, o, true);
            b.start_object(4);
            b.add_u64(1, request.get());
            b.add_u8(2, cancel_mode_code(o, 0), 0);
            b.add_offset(3, ff);
            b.end_object()
        }
        Message::Result { request, details: d, payload } | Message::Yield { request, options: d, payload } => {
            let p = write_payload(b, payload, d)?;
            let key = opt_str(b, get_str(d, "enc_key"));
            let callee_authid = opt_str(b, get_str(d, "callee_authid"));
            let callee_authrole = opt_str(b, get_str(d, "callee_authrole"));
            let ff = write_forward_for(b, d, true);
            let (scheme, ser) = ppt(d);
            let progress = get_bool(d, "progress").unwrap_or(false);
            let is_result = matches!(msg, Message::Result { .. });
            b.start_object(14);
            b.add_u64(1, request.get());
            b.add_offset(2, p.args);
            b.add_offset(3, p.kwargs);
            b.add_offset(4, p.payload);
            if !is_result {
                b.add_bool(9, progress, false);
            }
            b.add_u8(5, scheme, 0);
            b.add_u8(6, ser, 0);
            b.add_offset(8, key);
            if is_result {
                b.add_bool(9, progress, false);
            }
            b.add_u64(10, get_u64(d, "callee"));
            b.add_offset(11, callee_authid);
            b.add_offset(12, callee_authrole);
            b.add_offset(13, ff);
            b.end_object()
        }
        Message::Register { request, options: o, procedure } => {
            let procedure = opt_str(b, Some(procedure));
            let invoke = match get_str(o, "invoke") {
                Some("first") => 1,
                Some("last") => 2,
                Some("roundrobin") => 3,
                Some("random") => 4,
                _ => 0,
            };
            let concurrency = get_u64(o, "concurrency");
            let concurrency =
                u16::try_from(concurrency).map_err(|_| unrepresentable("REGISTER concurrency > 65535"))?;
            b.start_object(7);
            b.add_u64(1, request.get());
            b.add_offset(2, procedure);
            b.add_u8(3, match_code(o), 0);
            b.add_u8(4, invoke, 0);
            b.add_u16(5, concurrency);
            b.add_bool(6, get_bool(o, "force_reregister").unwrap_or(false), false);
            b.end_object()
        }
        Message::Invocation { request, registration, details: d, payload } => {
            let p = write_payload(b, payload, d)?;
            let procedure = opt_str(b, get_str(d, "procedure"));
            let th = opt_str(b, get_str(d, "transaction_hash"));
            let caller_authid = opt_str(b, get_str(d, "caller_authid"));
            let caller_authrole = opt_str(b, get_str(d, "caller_authrole"));
            let key = opt_str(b, get_str(d, "enc_key"));
            let ff = write_forward_for(b, d, true);
            let (scheme, ser) = ppt(d);
            let timeout = timeout_ms(d)?;
            b.start_object(18);
            b.add_u64(1, request.get());
            b.add_u64(2, registration.get());
            b.add_offset(3, p.args);
            b.add_offset(4, p.kwargs);
            b.add_offset(5, p.payload);
            b.add_u32(11, timeout);
            b.add_bool(12, get_bool(d, "receive_progress").unwrap_or(false), false);
            b.add_u64(14, get_u64(d, "caller"));
            b.add_offset(15, caller_authid);
            b.add_offset(16, caller_authrole);
            b.add_offset(10, procedure);
            b.add_u8(6, scheme, 0);
            b.add_u8(7, ser, 0);
            b.add_offset(9, key);
            b.add_offset(13, th);
            b.add_offset(17, ff);
            b.end_object()
        }
        Message::Interrupt { request, options: o } => {
            let reason = opt_str(b, get_str(o, "reason"));
            let ff = write_forward_for(b, o, true);
            b.start_object(5);
            b.add_u64(1, request.get());
            b.add_u8(2, cancel_mode_code(o, 1), 1);
            b.add_offset(3, reason);
            b.add_offset(4, ff);
            b.end_object()
        }
    };
    Ok((ty, off))
}

fn timeout_ms(o: &Dict) -> Result<u32, EncodeError> {
    u32::try_from(get_u64(o, "timeout")).map_err(|_| unrepresentable("timeout does not fit uint32"))
}

/// Tables of the shape `{session, request, <id>}`.
fn ids3(b: &mut Builder, request: u64, id: u64, fields: usize) -> u32 {
    b.start_object(fields);
    b.add_u64(1, request);
    b.add_u64(2, id);
    b.end_object()
}

// ---------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------

/// Decodes a message; args/kwargs stay raw CBOR slices of `bytes`.
pub fn decode(bytes: &Bytes) -> Result<Message, DecodeError> {
    let root = Table::root(bytes)?;
    let ty = root.u8(0, 0)?;
    let t = root.table(1)?.ok_or_else(|| DecodeError::Invalid("flatbuffers message has no body".into()))?;
    let code = if ty == FB_EVENT_RECEIVED { code::EVENT_RECEIVED } else { ty as u64 };
    Ok(match code {
        code::HELLO => {
            let mut d = Dict::new();
            put_str(&mut d, "authid", t.str(4)?);
            put_str(&mut d, "authrole", t.str(5)?);
            put_true(&mut d, "resumable", t.bool(7, false)?);
            put_u64(&mut d, "resume-session", t.u64(8)?);
            put_str(&mut d, "resume-token", t.str(9)?);
            Message::Hello { realm: string(t.str(2)?), details: d }
        }
        code::WELCOME => {
            let mut d = Dict::new();
            put_str(&mut d, "realm", t.str(2)?);
            put_str(&mut d, "authid", t.str(3)?);
            put_str(&mut d, "authrole", t.str(4)?);
            put_str(&mut d, "authmethod", auth_method_name(t.u8(5, 0)?));
            put_str(&mut d, "authprovider", t.str(6)?);
            put_true(&mut d, "resumed", t.bool(8, false)?);
            put_true(&mut d, "resumable", t.bool(9, false)?);
            put_str(&mut d, "resume_token", t.str(10)?);
            Message::Welcome { session: id(t.u64(0)?, SessionId::new)?, details: d }
        }
        code::ABORT => {
            let mut d = Dict::new();
            put_str(&mut d, "message", t.str(2)?);
            Message::Abort { details: d, reason: string(t.str(1)?) }
        }
        code::GOODBYE => {
            let mut d = Dict::new();
            put_str(&mut d, "message", t.str(2)?);
            put_true(&mut d, "resumable", t.bool(3, false)?);
            Message::Goodbye { details: d, reason: string(t.str(1)?) }
        }
        code::CHALLENGE => Message::Challenge {
            method: auth_method_name(t.u8(1, 0)?).unwrap_or("anonymous").to_owned(),
            extra: Dict::new(),
        },
        code::AUTHENTICATE => Message::Authenticate { signature: string(t.str(1)?), extra: Dict::new() },
        code::ERROR => {
            let mut d = Dict::new();
            put_forward_for(&mut d, &t, 11)?;
            let payload = read_payload(bytes, &t, 4, &mut d, 7, 8, 10)?;
            Message::Error {
                request_type: t.u16(1)? as u64,
                request: id(t.u64(2)?, RequestId::new)?,
                details: d,
                error: string(t.str(3)?),
                payload,
            }
        }
        code::PUBLISH => {
            let mut o = Dict::new();
            put_true(&mut o, "acknowledge", t.bool(10, false)?);
            if !t.bool(11, true)? {
                o.insert("exclude_me".into(), Value::Bool(false));
            }
            put_u64s(&mut o, "exclude", &t, 12)?;
            put_strs(&mut o, "exclude_authid", &t, 13)?;
            put_strs(&mut o, "exclude_authrole", &t, 14)?;
            put_u64s(&mut o, "eligible", &t, 15)?;
            put_strs(&mut o, "eligible_authid", &t, 16)?;
            put_strs(&mut o, "eligible_authrole", &t, 17)?;
            put_true(&mut o, "retain", t.bool(18, false)?);
            put_str(&mut o, "transaction_hash", t.str(19)?);
            let payload = read_payload(bytes, &t, 3, &mut o, 6, 7, 9)?;
            put_forward_for(&mut o, &t, 20)?;
            Message::Publish { request: id(t.u64(1)?, RequestId::new)?, options: o, topic: string(t.str(2)?), payload }
        }
        code::PUBLISHED => Message::Published {
            request: id(t.u64(1)?, RequestId::new)?,
            publication: id(t.u64(2)?, PublicationId::new)?,
        },
        code::SUBSCRIBE => {
            let mut o = Dict::new();
            put_str(&mut o, "match", match_name(t.u8(3, 0)?));
            put_true(&mut o, "get_retained", t.bool(4, false)?);
            Message::Subscribe { request: id(t.u64(1)?, RequestId::new)?, options: o, topic: string(t.str(2)?) }
        }
        code::SUBSCRIBED => Message::Subscribed {
            request: id(t.u64(1)?, RequestId::new)?,
            subscription: id(t.u64(2)?, SubscriptionId::new)?,
        },
        code::UNSUBSCRIBE => Message::Unsubscribe {
            request: id(t.u64(1)?, RequestId::new)?,
            subscription: id(t.u64(2)?, SubscriptionId::new)?,
        },
        code::UNSUBSCRIBED => {
            Message::Unsubscribed { request: id(t.u64(1)?, RequestId::new)?, details: revocation(&t, "subscription")? }
        }
        code::EVENT => {
            let mut d = Dict::new();
            put_u64(&mut d, "publisher", t.u64(10)?);
            put_str(&mut d, "publisher_authid", t.str(11)?);
            put_str(&mut d, "publisher_authrole", t.str(12)?);
            put_str(&mut d, "topic", t.str(13)?);
            put_true(&mut d, "retained", t.bool(14, false)?);
            put_str(&mut d, "transaction_hash", t.str(15)?);
            put_true(&mut d, "x_acknowledged_delivery", t.bool(16, false)?);
            put_forward_for(&mut d, &t, 17)?;
            let payload = read_payload(bytes, &t, 3, &mut d, 6, 7, 9)?;
            Message::Event {
                subscription: id(t.u64(1)?, SubscriptionId::new)?,
                publication: id(t.u64(2)?, PublicationId::new)?,
                details: d,
                payload,
            }
        }
        code::EVENT_RECEIVED => Message::EventReceived {
            publication: id(t.u64(1)?, PublicationId::new)?,
            details: Dict::new(),
            payload: Payload::EMPTY,
        },
        code::CALL => {
            let mut o = Dict::new();
            put_u64(&mut o, "timeout", t.u32(10)? as u64);
            put_true(&mut o, "receive_progress", t.bool(11, false)?);
            put_str(&mut o, "transaction_hash", t.str(12)?);
            let payload = read_payload(bytes, &t, 3, &mut o, 6, 7, 9)?;
            put_u64(&mut o, "caller", t.u64(13)?);
            put_str(&mut o, "caller_authid", t.str(14)?);
            put_str(&mut o, "caller_authrole", t.str(15)?);
            put_forward_for(&mut o, &t, 16)?;
            Message::Call { request: id(t.u64(1)?, RequestId::new)?, options: o, procedure: string(t.str(2)?), payload }
        }
        code::CANCEL => {
            let mut o = Dict::new();
            put_str(&mut o, "mode", mode_name(t.u8(2, 0)?, 0));
            put_forward_for(&mut o, &t, 3)?;
            Message::Cancel { request: id(t.u64(1)?, RequestId::new)?, options: o }
        }
        code::RESULT | code::YIELD => {
            let mut d = Dict::new();
            put_true(&mut d, "progress", t.bool(9, false)?);
            put_u64(&mut d, "callee", t.u64(10)?);
            put_str(&mut d, "callee_authid", t.str(11)?);
            put_str(&mut d, "callee_authrole", t.str(12)?);
            put_forward_for(&mut d, &t, 13)?;
            let payload = read_payload(bytes, &t, 2, &mut d, 5, 6, 8)?;
            let request = id(t.u64(1)?, RequestId::new)?;
            if code == code::RESULT {
                Message::Result { request, details: d, payload }
            } else {
                Message::Yield { request, options: d, payload }
            }
        }
        code::REGISTER => {
            let mut o = Dict::new();
            put_str(&mut o, "match", match_name(t.u8(3, 0)?));
            let invoke = match t.u8(4, 0)? {
                0 => None,
                1 => Some("first"),
                2 => Some("last"),
                3 => Some("roundrobin"),
                4 => Some("random"),
                n => return Err(DecodeError::Invalid(format!("unknown invocation policy {n}"))),
            };
            put_str(&mut o, "invoke", invoke);
            put_u64(&mut o, "concurrency", t.u16(5)? as u64);
            put_true(&mut o, "force_reregister", t.bool(6, false)?);
            Message::Register { request: id(t.u64(1)?, RequestId::new)?, options: o, procedure: string(t.str(2)?) }
        }
        code::REGISTERED => Message::Registered {
            request: id(t.u64(1)?, RequestId::new)?,
            registration: id(t.u64(2)?, RegistrationId::new)?,
        },
        code::UNREGISTER => Message::Unregister {
            request: id(t.u64(1)?, RequestId::new)?,
            registration: id(t.u64(2)?, RegistrationId::new)?,
        },
        code::UNREGISTERED => {
            Message::Unregistered { request: id(t.u64(1)?, RequestId::new)?, details: revocation(&t, "registration")? }
        }
        code::INVOCATION => {
            let mut d = Dict::new();
            put_u64(&mut d, "timeout", t.u32(11)? as u64);
            put_true(&mut d, "receive_progress", t.bool(12, false)?);
            put_u64(&mut d, "caller", t.u64(14)?);
            put_str(&mut d, "caller_authid", t.str(15)?);
            put_str(&mut d, "caller_authrole", t.str(16)?);
            put_str(&mut d, "procedure", t.str(10)?);
            put_str(&mut d, "transaction_hash", t.str(13)?);
            put_forward_for(&mut d, &t, 17)?;
            let payload = read_payload(bytes, &t, 3, &mut d, 6, 7, 9)?;
            Message::Invocation {
                request: id(t.u64(1)?, RequestId::new)?,
                registration: id(t.u64(2)?, RegistrationId::new)?,
                details: d,
                payload,
            }
        }
        code::INTERRUPT => {
            let mut o = Dict::new();
            put_str(&mut o, "mode", mode_name(t.u8(2, 1)?, 1));
            put_str(&mut o, "reason", t.str(3)?);
            put_forward_for(&mut o, &t, 4)?;
            Message::Interrupt { request: id(t.u64(1)?, RequestId::new)?, options: o }
        }
        _ => return Err(DecodeError::UnknownType(ty as u64)),
    })
}

fn string(s: Option<&str>) -> String {
    s.unwrap_or("").to_owned()
}

fn id<T>(v: u64, ctor: fn(u64) -> Option<T>) -> Result<T, DecodeError> {
    ctor(v).ok_or_else(|| DecodeError::Invalid(format!("ID {v} out of range")))
}

fn put_str(d: &mut Dict, k: &str, v: Option<&str>) {
    if let Some(v) = v {
        d.insert(k.to_owned(), Value::Str(v.to_owned()));
    }
}
fn put_u64(d: &mut Dict, k: &str, v: u64) {
    if v != 0 {
        d.insert(k.to_owned(), Value::UInt(v));
    }
}
fn put_true(d: &mut Dict, k: &str, v: bool) {
    if v {
        d.insert(k.to_owned(), Value::Bool(true));
    }
}
fn put_u64s(d: &mut Dict, k: &str, t: &Table<'_>, slot: usize) -> Result<(), DecodeError> {
    if let Some(it) = t.u64s(slot)? {
        d.insert(k.to_owned(), Value::List(it.map(Value::UInt).collect()));
    }
    Ok(())
}
fn put_strs(d: &mut Dict, k: &str, t: &Table<'_>, slot: usize) -> Result<(), DecodeError> {
    if let Some(v) = t.strs(slot)? {
        d.insert(k.to_owned(), Value::List(v.into_iter().map(Value::from).collect()));
    }
    Ok(())
}
fn put_forward_for(d: &mut Dict, t: &Table<'_>, slot: usize) -> Result<(), DecodeError> {
    let Some(ps) = t.tables(slot)? else {
        return Ok(());
    };
    let mut list = List::with_capacity(ps.len());
    for p in ps {
        let mut e = Dict::new();
        e.insert("session".into(), Value::UInt(p.u64(0)?));
        put_str(&mut e, "authid", p.str(1)?);
        put_str(&mut e, "authrole", p.str(2)?);
        list.push(Value::Dict(e));
    }
    d.insert("forward_for".into(), Value::List(list));
    Ok(())
}

fn revocation(t: &Table<'_>, key: &str) -> Result<Option<Dict>, DecodeError> {
    let mut d = Dict::new();
    put_str(&mut d, "reason", t.str(3)?);
    put_u64(&mut d, key, t.u64(2)?);
    Ok((!d.is_empty()).then_some(d))
}

fn auth_method_name(c: u8) -> Option<&'static str> {
    match c {
        1 => Some("ticket"),
        2 => Some("wampcra"),
        3 => Some("wamp-scram"),
        4 => Some("cryptosign"),
        _ => None,
    }
}

fn match_name(c: u8) -> Option<&'static str> {
    match c {
        1 => Some("prefix"),
        2 => Some("wildcard"),
        _ => None,
    }
}

/// Cancel mode name, or `None` for the schema default.
fn mode_name(c: u8, default: u8) -> Option<&'static str> {
    if c == default {
        return None;
    }
    match c {
        0 => Some("skip"),
        1 => Some("kill"),
        2 => Some("killnowait"),
        _ => None,
    }
}

/// Reads args (`slot`), kwargs (`slot + 1`) and payload (`slot + 2`) plus
/// the PPT fields (which go into `d` as `enc_algo`/`enc_key`/`enc_serializer`).
fn read_payload(
    bytes: &Bytes,
    t: &Table<'_>,
    slot: usize,
    d: &mut Dict,
    scheme_slot: usize,
    ser_slot: usize,
    key_slot: usize,
) -> Result<Payload, DecodeError> {
    put_str(d, "enc_algo", enc_algo_name(t.u8(scheme_slot, 0)?));
    put_str(d, "enc_key", t.str(key_slot)?);
    put_str(d, "enc_serializer", enc_ser_name(t.u8(ser_slot, 0)?));
    let span = |r: Option<std::ops::Range<usize>>, empty: u8| {
        r.filter(|r| !r.is_empty() && bytes[r.clone()] != [empty]).map(|r| bytes.slice(r))
    };
    let mut args = span(t.bytes(slot)?, 0x80);
    let kwargs = span(t.bytes(slot + 1)?, 0xa0);
    // The spans are spliced verbatim into CBOR (and transcoded for other
    // serializers): they must be one well-formed CBOR array (or byte
    // string) resp. map.
    if let Some(a) = &args {
        crate::cbor::check_payload_span(a, false)?;
    }
    if let Some(k) = &kwargs {
        crate::cbor::check_payload_span(k, true)?;
    }
    // A byte string in `args` is a transparent payload, which the other
    // serializers carry as the message's last element: no kwargs after it.
    if args.as_ref().is_some_and(|a| a[0] >> 5 == 2) && kwargs.is_some() {
        return Err(DecodeError::Invalid("a transparent (binary) payload cannot have kwargs".into()));
    }
    if let Some(p) = t.bytes(slot + 2)?.filter(|r| !r.is_empty()) {
        if args.is_some() || kwargs.is_some() {
            return Err(DecodeError::Invalid("both args/kwargs and transparent payload present".into()));
        }
        args = Some(cbor_wrap_bytes(&bytes[p]));
    }
    if args.is_none() && kwargs.is_none() {
        return Ok(Payload::EMPTY);
    }
    Ok(Payload::Raw { format: PayloadFormat::Cbor, args, kwargs })
}
