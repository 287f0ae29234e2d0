//! Publish/subscribe: subscriptions and the EVENT fan-out.

use std::collections::HashMap;

use bytes::Bytes;
use indexmap::IndexMap;
use rand::Rng;
use wamp_proto::{
    code, Dict, EncodeError, Message, Payload, PayloadFormat, PublicationId, RequestId, SessionId, SubscriptionId,
    Value, MAX_ID,
};

use super::{clip, opt_bool, uri_ok, uris, Action, Outbox, Realm, Serializer};

/// One topic's subscription, shared by all its subscribers.
pub(super) struct Subscription {
    pub(super) id: SubscriptionId,
    /// Subscribers with their serializer, so the fan-out needs no session
    /// lookup. Insertion ordered; removal is O(1).
    pub(super) subscribers: IndexMap<SessionId, Serializer>,
}

/// All subscriptions of a realm (exact match).
#[derive(Default)]
pub(super) struct Broker {
    /// Topic → subscription (the publish path: one hash probe).
    pub(super) topics: HashMap<String, Subscription>,
    /// Subscription id → topic.
    pub(super) ids: HashMap<SubscriptionId, String>,
}

impl Broker {
    /// Adds `session` to the subscription of `topic`, creating it with a
    /// fresh random id if needed. Returns the subscription id.
    fn subscribe<R: Rng>(
        &mut self,
        topic: String,
        session: SessionId,
        serializer: Serializer,
        rng: &mut R,
    ) -> SubscriptionId {
        if let Some(sub) = self.topics.get_mut(&topic) {
            sub.subscribers.insert(session, serializer);
            return sub.id;
        }
        let id = loop {
            let id = SubscriptionId::from_valid(rng.gen_range(1..=MAX_ID));
            if !self.ids.contains_key(&id) {
                break id;
            }
        };
        let mut subscribers = IndexMap::new();
        subscribers.insert(session, serializer);
        self.ids.insert(id, topic.clone());
        self.topics.insert(topic, Subscription { id, subscribers });
        id
    }

    /// Removes `session` from subscription `id`; deletes the subscription
    /// when its last subscriber is gone. Returns false if `session` was not
    /// subscribed.
    pub(super) fn unsubscribe(&mut self, id: SubscriptionId, session: SessionId) -> bool {
        let Some(topic) = self.ids.get(&id) else { return false };
        let Some(sub) = self.topics.get_mut(topic) else { return false };
        if sub.subscribers.swap_remove(&session).is_none() {
            return false;
        }
        if sub.subscribers.is_empty() {
            if let Some(topic) = self.ids.remove(&id) {
                self.topics.remove(&topic);
            }
        }
        true
    }

    /// Number of live subscriptions.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.topics.len()
    }
}

impl Realm {
    pub(super) fn handle_subscribe(&mut self, sid: SessionId, request: RequestId, options: &Dict, topic: String) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        if !uri_ok(&topic) {
            let msg = format!("subscribe for invalid topic URI '{}'", clip(&topic));
            return self.out.error(sid, ser, code::SUBSCRIBE, request, uris::INVALID_URI, msg);
        }
        if let Some(m) = options.get("match") {
            if m.as_str() != Some("exact") {
                let msg = "only exact-match subscriptions are supported".to_owned();
                return self.out.error(sid, ser, code::SUBSCRIBE, request, uris::INVALID_ARGUMENT, msg);
            }
        }
        let allowed = self.roles.get(s.role).is_some_and(|r| r.authorize(&topic, Action::Subscribe).allowed);
        if !allowed {
            let msg = format!("session is not authorized to subscribe to topic '{}'", clip(&topic));
            return self.out.error(sid, ser, code::SUBSCRIBE, request, uris::NOT_AUTHORIZED, msg);
        }
        let id = self.broker.subscribe(topic, sid, ser, &mut self.rng);
        s.subscriptions.insert(id);
        let _ = self.out.send(sid, ser, &Message::Subscribed { request, subscription: id });
    }

    pub(super) fn handle_unsubscribe(&mut self, sid: SessionId, request: RequestId, id: SubscriptionId) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        if !s.subscriptions.remove(&id) {
            let msg = format!("session is not subscribed to subscription {id}");
            return self.out.error(sid, ser, code::UNSUBSCRIBE, request, uris::NO_SUCH_SUBSCRIPTION, msg);
        }
        self.broker.unsubscribe(id, sid);
        let _ = self.out.send(sid, ser, &Message::Unsubscribed { request, details: None });
    }

    pub(super) fn handle_publish(
        &mut self,
        sid: SessionId,
        request: RequestId,
        options: &Dict,
        topic: String,
        payload: Payload,
    ) {
        let Some(s) = self.sessions.get(&sid) else { return };
        let ser = s.info.serializer;
        let ack = opt_bool(options, "acknowledge").unwrap_or(false);
        let refusal = if !uri_ok(&topic) {
            Some((uris::INVALID_URI, format!("publish with invalid topic URI '{}'", clip(&topic))))
        } else if topic.starts_with("wamp.") {
            Some((uris::INVALID_URI, format!("publish with restricted topic URI '{}'", clip(&topic))))
        } else {
            None
        };
        if let Some((error, msg)) = refusal {
            self.out.stats.publishes_dropped_invalid += 1;
            if ack {
                self.out.error(sid, ser, code::PUBLISH, request, error, msg);
            }
            return;
        }
        let auth = match self.roles.get(s.role) {
            Some(r) => r.authorize(&topic, Action::Publish),
            None => super::Authorization::DENIED,
        };
        if !auth.allowed {
            self.out.stats.publishes_dropped_unauthorized += 1;
            if ack {
                let msg = format!("session not authorized to publish to topic '{}'", clip(&topic));
                self.out.error(sid, ser, code::PUBLISH, request, uris::NOT_AUTHORIZED, msg);
            }
            return;
        }
        let publication = PublicationId::from_valid(self.rng.gen_range(1..=MAX_ID));
        self.out.stats.publications += 1;
        if let Some(sub) = self.broker.topics.get(&topic) {
            let skip = if opt_bool(options, "exclude_me").unwrap_or(true) { Some(sid) } else { None };
            let mut details = Dict::new();
            if auth.disclose || opt_bool(options, "disclose_me") == Some(true) {
                details.insert("publisher".into(), Value::UInt(sid.get()));
                details.insert("publisher_authid".into(), Value::Str(s.info.authid.clone()));
                details.insert("publisher_authrole".into(), Value::Str(s.info.authrole.clone()));
            }
            fan_out(&mut self.out, sub, publication, details, &payload, skip);
        }
        if ack {
            let _ = self.out.send(sid, ser, &Message::Published { request, publication });
        }
    }
}

/// Queues one EVENT per subscriber of `sub` (except `skip`), encoding it at
/// most once per serializer and sharing the bytes.
fn fan_out(
    out: &mut Outbox,
    sub: &Subscription,
    publication: PublicationId,
    details: Dict,
    payload: &Payload,
    skip: Option<SessionId>,
) {
    let mut encoded: [Option<Bytes>; 4] = [None, None, None, None];
    let mut failed = [false; 4];
    let mut transcoded: [Option<Payload>; 3] = [None, None, None];
    for (&target, &ser) in &sub.subscribers {
        if Some(target) == skip {
            continue;
        }
        let i = ser.index();
        if failed[i] {
            continue;
        }
        let bytes = match &encoded[i] {
            Some(b) => b.clone(),
            None => match encode_event(ser, sub.id, publication, &details, payload, &mut transcoded) {
                Ok(b) => {
                    encoded[i] = Some(b.clone());
                    b
                }
                Err(e) => {
                    failed[i] = true;
                    out.stats.encode_errors += 1;
                    tracing::warn!(%publication, %ser, error = %e, "EVENT could not be encoded");
                    continue;
                }
            },
        };
        out.push(target, bytes);
        out.stats.events_delivered += 1;
    }
}

/// Encodes the EVENT in `ser`. A raw payload of another format is transcoded
/// once per payload format (CBOR and Flatbuffers share one transcode).
fn encode_event(
    ser: Serializer,
    subscription: SubscriptionId,
    publication: PublicationId,
    details: &Dict,
    payload: &Payload,
    transcoded: &mut [Option<Payload>; 3],
) -> Result<Bytes, EncodeError> {
    let fmt = ser.payload_format();
    let payload = match payload {
        Payload::Raw { format, .. } if *format != fmt => {
            let slot = &mut transcoded[format_index(fmt)];
            match slot {
                Some(p) => p.clone(),
                None => {
                    let e = payload.encoded_in(fmt)?;
                    let p = Payload::Raw { format: fmt, args: e.args, kwargs: e.kwargs };
                    *slot = Some(p.clone());
                    p
                }
            }
        }
        other => other.clone(),
    };
    ser.encode(&Message::Event { subscription, publication, details: details.clone(), payload })
}

fn format_index(f: PayloadFormat) -> usize {
    match f {
        PayloadFormat::Json => 0,
        PayloadFormat::Msgpack => 1,
        PayloadFormat::Cbor => 2,
    }
}
