//! Router-provided procedures: CALLs the realm answers itself instead of
//! routing them to a callee.
//!
//! [`Realm::handle_router_procedure`] is consulted before normal dealer
//! routing; it claims the URIs it knows and returns false for everything
//! else; the meta API procedures (see [`super::meta`]) are claimed here
//! too when enabled. Every
//! router procedure requires the caller's role to allow `call` on its URI
//! (`wamp.error.not_authorized` otherwise, as Crossbar).
//!
//! ## `wamp.subscription.get_events`
//! `[subscription_id]` or `[subscription_id, limit]` (or `limit` in
//! kwargs; default 10, as Crossbar) returns, as the single positional
//! result, the list of at most `limit` stored events of that subscription,
//! **newest first** (Crossbar's order). Each event is a dict:
//! `realm`, `subscription`, `publication`, `topic` (the topic published
//! to), `details` (the EVENT details as delivered on that subscription),
//! `args` / `kwargs` (when present; a passthru payload appears as its binary
//! value), and, only when the publisher was disclosed, Crossbar's
//! `session_id`, `authid`, `authrole`. There are no timestamps (the engine
//! has no clock).
//!
//! Errors: `wamp.error.invalid_argument` (bad arguments),
//! `wamp.error.no_such_subscription`, `wamp.error.not_authorized` (the role
//! may not call the procedure, or may not subscribe to the subscription's
//! topic: history is only for those who could have received the events),
//! `wamp.error.history_unavailable` (no history configured for that
//! subscription). Events published with authid/authrole black/whitelists
//! are only returned to callers those lists admit.

use wamp_proto::payload::decode_value;
use wamp_proto::{code, Dict, Message, Payload, RequestId, SessionId, Value};

use super::{uris, Action, Realm};

/// The event history procedure.
pub const GET_EVENTS: &str = "wamp.subscription.get_events";
/// Error when a subscription keeps no history (Crossbar's URI).
pub const HISTORY_UNAVAILABLE: &str = "wamp.error.history_unavailable";

/// Default `limit` of `wamp.subscription.get_events`.
const DEFAULT_LIMIT: u64 = 10;

impl Realm {
    /// Answers a CALL to a router-provided procedure. Returns false (and
    /// does nothing) if `procedure` is not one.
    pub(super) fn handle_router_procedure(
        &mut self,
        sid: SessionId,
        request: RequestId,
        options: &Dict,
        procedure: &str,
        payload: &Payload,
    ) -> bool {
        let _ = options;
        if !procedure.starts_with("wamp.") {
            return false;
        }
        if procedure != GET_EVENTS && !self.is_meta_procedure(procedure) {
            return false;
        }
        let Some(s) = self.sessions.get(&sid) else { return true };
        let ser = s.info.serializer;
        if !self.roles.get(s.role).is_some_and(|r| r.authorize(procedure, Action::Call).allowed) {
            let msg = format!("session is not authorized to call procedure '{procedure}'");
            self.out.error(sid, ser, code::CALL, request, uris::NOT_AUTHORIZED, msg);
            return true;
        }
        let reply = match procedure {
            GET_EVENTS => self.subscription_get_events(sid, payload).map(Some),
            _ => self.call_meta(sid, procedure, payload),
        };
        match reply {
            Ok(result) => {
                let msg = Message::Result {
                    request,
                    details: Dict::new(),
                    payload: Payload::Values { args: result.map(|r| vec![r]), kwargs: None },
                };
                if let Err(e) = self.out.send(sid, ser, &msg) {
                    let msg = format!("result could not be encoded: {e}");
                    self.out.error(sid, ser, code::CALL, request, uris::INVALID_ARGUMENT, msg);
                }
            }
            Err((error, msg)) => self.out.error(sid, ser, code::CALL, request, error, msg),
        }
        true
    }

    /// `wamp.subscription.get_events(subscription_id, limit=10)`.
    fn subscription_get_events(&self, sid: SessionId, payload: &Payload) -> Result<Value, (&'static str, String)> {
        let invalid = |m: &str| (uris::INVALID_ARGUMENT, m.to_owned());
        let (args, kwargs) = payload.to_values().map_err(|e| (uris::INVALID_ARGUMENT, e.to_string()))?;
        let args = args.unwrap_or_default();
        let kwargs = kwargs.unwrap_or_default();
        let id = args
            .first()
            .or_else(|| kwargs.get("subscription_id"))
            .and_then(Value::as_u64)
            .and_then(wamp_proto::SubscriptionId::new)
            .ok_or_else(|| invalid("expected a subscription ID as first argument"))?;
        let limit = match args.get(1).or_else(|| kwargs.get("limit")) {
            None | Some(Value::Null) => DEFAULT_LIMIT,
            Some(v) => v.as_u64().filter(|l| *l > 0).ok_or_else(|| invalid("'limit' must be a positive integer"))?,
        };
        let Some(s) = self.sessions.get(&sid) else { return Err(invalid("no session")) };
        let Some(sub) = self.broker.get(id) else {
            return Err((uris::NO_SUCH_SUBSCRIPTION, format!("no subscription with ID {id} exists on this broker")));
        };
        if !self.roles.get(s.role).is_some_and(|r| r.authorize(&sub.topic, Action::Subscribe).allowed) {
            let msg = format!("not authorized to retrieve event history for topic '{}'", super::clip(&sub.topic));
            return Err((uris::NOT_AUTHORIZED, msg));
        }
        let Some(history) = &sub.history else {
            return Err((HISTORY_UNAVAILABLE, "event history for the given subscription is not enabled".into()));
        };
        let pattern = sub.policy != super::MatchPolicy::Exact;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut events = Vec::new();
        for ev in history.events.iter().rev() {
            if events.len() >= limit {
                break;
            }
            if !ev.receivers.admits_auth(&s.info.authid, &s.info.authrole) {
                continue;
            }
            let mut details = ev.details.clone();
            if pattern {
                details.insert("topic".into(), Value::Str(ev.topic.clone()));
            }
            let mut e = Dict::new();
            e.insert("realm".into(), Value::Str(self.name.clone()));
            e.insert("subscription".into(), Value::UInt(id.get()));
            e.insert("publication".into(), Value::UInt(ev.publication.get()));
            e.insert("topic".into(), Value::Str(ev.topic.clone()));
            for (from, to) in
                [("publisher", "session_id"), ("publisher_authid", "authid"), ("publisher_authrole", "authrole")]
            {
                if let Some(v) = details.get(from) {
                    e.insert(to.into(), v.clone());
                }
            }
            e.insert("details".into(), Value::Dict(details));
            let (a, k) = payload_values(&ev.payload)
                .map_err(|m| (uris::INVALID_ARGUMENT, format!("stored event could not be decoded: {m}")))?;
            if let Some(a) = a {
                e.insert("args".into(), a);
            }
            if let Some(k) = k {
                e.insert("kwargs".into(), k);
            }
            events.push(Value::Dict(e));
        }
        Ok(Value::List(events))
    }
}

/// The args and kwargs of a stored payload as values (a passthru payload's
/// binary value stays binary: it is never looked into).
fn payload_values(p: &Payload) -> Result<(Option<Value>, Option<Value>), String> {
    match p {
        Payload::Values { args, kwargs } => {
            Ok((args.clone().map(Value::List), kwargs.clone().filter(|k| !k.is_empty()).map(Value::Dict)))
        }
        Payload::Raw { format, args, kwargs } => {
            let dec = |b: &Option<bytes::Bytes>| -> Result<Option<Value>, String> {
                b.as_ref().map(|b| decode_value(*format, b).map_err(|e| e.to_string())).transpose()
            };
            Ok((dec(args)?, dec(kwargs)?))
        }
    }
}
