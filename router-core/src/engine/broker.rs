//! Publish/subscribe: subscriptions (exact, prefix and wildcard), the EVENT
//! fan-out, subscriber black/whitelisting, event retention and event
//! history.
//!
//! ## Subscriptions
//! A subscription is a (match policy, topic pattern) pair, shared by all its
//! subscribers; SUBSCRIBE with `match: "prefix"` or `"wildcard"` creates a
//! pattern subscription (any other value: `wamp.error.invalid_argument`).
//! Pattern subscriptions are authorized like Crossbar does: the role must
//! allow `subscribe` on the pattern string itself. A publication is
//! delivered once per matching subscription (exact, every matching prefix,
//! every matching wildcard), so a session subscribed through two matching
//! subscriptions receives two EVENTs with the same publication id; EVENTs of
//! pattern subscriptions carry `details.topic`. Exact subscriptions are one
//! hash probe; patterns live in component tries ([`super::broker_trie`]).
//!
//! ## Publication options
//! * `exclude_me` (default true), `disclose_me` / the role's
//!   `disclose.publisher` (EVENT `publisher`, `publisher_authid`,
//!   `publisher_authrole`), `acknowledge` (PUBLISHED after the EVENTs are
//!   queued).
//! * Black/whitelisting: `eligible`, `exclude` (session ids),
//!   `eligible_authid`, `exclude_authid`, `eligible_authrole`,
//!   `exclude_authrole` (strings). A subscriber receives the event iff it is
//!   in every *present* eligible list and in no exclude list (so a present
//!   but empty eligible list admits nobody, as the spec reads). Malformed
//!   lists refuse the publication with `wamp.error.invalid_argument`.
//! * Payload passthru: `ppt_scheme`, `ppt_serializer`, `ppt_cipher`,
//!   `ppt_keyid` (and the older `enc_algo`, `enc_key`, `enc_serializer`) are
//!   copied untouched into EVENT details; the payload is never decoded.
//! * `retain: true` stores the event as the topic's retained event (see
//!   below).
//! * **subscription_revocation**: [`Realm::revoke_subscriber`] (also
//!   reachable as the meta procedure `wamp.subscription.remove_subscriber`)
//!   removes one subscriber; if it announced `subscription_revocation` it
//!   gets `UNSUBSCRIBED [0, {subscription, reason}]`, otherwise it is not
//!   told (spec).
//!
//! ## Retention
//! One retained event per topic (the latest publication with `retain`),
//! kept with its black/whitelists. SUBSCRIBE with `get_retained: true` gets,
//! right after SUBSCRIBED, the retained event of its topic (for a pattern
//! subscription: of every matching topic) that it is eligible for, with
//! `details.retained = true` and the original publication id. Memory is
//! bounded by [`BrokerSpec::max_retained_topics`] (new topics are declined
//! when full) and [`BrokerSpec::max_stored_payload`] (a larger publication
//! is not retained and clears the topic's retained event, which would
//! otherwise be stale).
//!
//! ## History
//! Topics configured in [`BrokerSpec::history`] get a subscription when the
//! realm is created (so history accrues before anyone subscribes; sessions
//! subscribing with the same topic and policy share it) and a ring buffer of
//! the last `limit` events. Events published with session-id lists
//! (`eligible`/`exclude`) are not stored (session ids are ephemeral, as the
//! spec demands); authid/authrole lists are stored and applied to the
//! caller of `wamp.subscription.get_events` (see [`super::broker_meta`]).

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt};

use bytes::Bytes;
use indexmap::IndexMap;
use rand::Rng;
use wamp_proto::{
    code, Dict, EncodeError, Message, Payload, PayloadFormat, PublicationId, RequestId, SessionId, SubscriptionId,
    Value, MAX_ID,
};

use super::broker_trie::{pattern_matches, valid_pattern, PatternIndex};
use super::{clip, opt_bool, uri_ok, uris, Action, MatchPolicy, Outbox, Realm, Serializer, Session};

/// Broker configuration of a realm (limits and event history), applied
/// with [`Realm::with_broker_spec`]; `BrokerSpec::default()` is what a realm
/// built by [`Realm::new`] alone uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerSpec {
    /// Most topics that may hold a retained event at once; a `retain`
    /// publication to a new topic beyond this is not retained. Default
    /// [`BrokerSpec::DEFAULT_MAX_RETAINED_TOPICS`].
    pub max_retained_topics: usize,
    /// Largest payload (encoded args + kwargs bytes) kept as a retained or
    /// history event. Default [`BrokerSpec::DEFAULT_MAX_STORED_PAYLOAD`].
    pub max_stored_payload: usize,
    /// Topics with event history.
    pub history: Vec<HistorySpec>,
}

impl BrokerSpec {
    /// Default of [`BrokerSpec::max_retained_topics`].
    pub const DEFAULT_MAX_RETAINED_TOPICS: usize = 10_000;
    /// Default of [`BrokerSpec::max_stored_payload`] (64 KiB).
    pub const DEFAULT_MAX_STORED_PAYLOAD: usize = 64 * 1024;
}

impl Default for BrokerSpec {
    fn default() -> Self {
        BrokerSpec {
            max_retained_topics: Self::DEFAULT_MAX_RETAINED_TOPICS,
            max_stored_payload: Self::DEFAULT_MAX_STORED_PAYLOAD,
            history: Vec::new(),
        }
    }
}

/// Event history for one topic or topic pattern (Crossbar's
/// `store.event-history` entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistorySpec {
    /// The topic or pattern.
    pub uri: String,
    /// How `uri` matches (a subscription with this policy is created).
    pub match_policy: MatchPolicy,
    /// Events kept (the oldest is dropped first); clamped to
    /// `1..=HistorySpec::MAX_LIMIT`.
    pub limit: usize,
}

impl HistorySpec {
    /// The default `limit` (Crossbar's).
    pub const DEFAULT_LIMIT: usize = 100;
    /// The largest `limit` honoured.
    pub const MAX_LIMIT: usize = 1_000_000;
}

/// Broker counters (monotonic) and gauges.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// Live subscriptions (gauge), including history subscriptions.
    pub subscriptions: usize,
    /// Topics holding a retained event (gauge).
    pub retained_topics: usize,
    /// Retained events stored.
    pub retained_stored: u64,
    /// `retain` requests declined (topic limit or payload size).
    pub retained_declined: u64,
    /// Retained events delivered on SUBSCRIBE.
    pub retained_delivered: u64,
    /// Events appended to a history.
    pub history_stored: u64,
    /// Events not stored in a history (session-id lists, payload size).
    pub history_skipped: u64,
}

/// Payload-passthru (and older payload-transparency) options copied from
/// PUBLISH options into EVENT details untouched.
const PASSTHRU_KEYS: [&str; 7] =
    ["ppt_scheme", "ppt_serializer", "ppt_cipher", "ppt_keyid", "enc_algo", "enc_key", "enc_serializer"];

/// One subscription, shared by all its subscribers.
pub(super) struct Subscription {
    pub(super) id: SubscriptionId,
    pub(super) policy: MatchPolicy,
    /// The topic (exact) or pattern.
    pub(super) topic: String,
    /// Subscribers with their serializer, so the fan-out needs no session
    /// lookup. Insertion ordered; removal is O(1).
    pub(super) subscribers: IndexMap<SessionId, Serializer>,
    /// Subscribers on peer workers (ghosts), with their peer.
    pub(super) remote: IndexMap<SessionId, super::PeerId>,
    /// Remote subscribers per peer (a publication goes once to each).
    pub(super) peers: Vec<(super::PeerId, u32)>,
    /// Configured event history; such a subscription outlives its last
    /// subscriber.
    pub(super) history: Option<History>,
    /// When it was created (wall clock, if the runtime provided one).
    pub(super) created: Option<std::time::SystemTime>,
}

/// A bounded ring of stored events.
pub(super) struct History {
    pub(super) limit: usize,
    pub(super) events: VecDeque<StoredEvent>,
}

/// A publication kept for retention or history.
#[derive(Clone, Debug)]
pub(super) struct StoredEvent {
    pub(super) publication: PublicationId,
    /// The topic published to.
    pub(super) topic: String,
    /// EVENT details as delivered to an exact subscription (publisher
    /// disclosure, passthru options).
    pub(super) details: Dict,
    /// The payload, copied out of the receive buffer.
    pub(super) payload: Payload,
    /// Who may receive it.
    pub(super) receivers: Receivers,
}

/// Receiver restrictions of a publication (black/whitelisting), lists
/// sorted for binary search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Receivers {
    eligible: Option<Vec<u64>>,
    exclude: Vec<u64>,
    eligible_authid: Option<Vec<String>>,
    exclude_authid: Vec<String>,
    eligible_authrole: Option<Vec<String>>,
    exclude_authrole: Vec<String>,
}

impl Receivers {
    /// Parses the black/whitelisting options of a PUBLISH.
    pub(super) fn parse(options: &Dict) -> Result<Receivers, String> {
        fn ids(options: &Dict, key: &str) -> Result<Option<Vec<u64>>, String> {
            let Some(v) = options.get(key) else { return Ok(None) };
            let list = v.as_list().ok_or_else(|| format!("'{key}' must be a list of session IDs"))?;
            let mut out = Vec::with_capacity(list.len());
            for x in list {
                out.push(x.as_u64().ok_or_else(|| format!("'{key}' must be a list of session IDs"))?);
            }
            out.sort_unstable();
            Ok(Some(out))
        }
        fn strings(options: &Dict, key: &str) -> Result<Option<Vec<String>>, String> {
            let Some(v) = options.get(key) else { return Ok(None) };
            let list = v.as_list().ok_or_else(|| format!("'{key}' must be a list of strings"))?;
            let mut out = Vec::with_capacity(list.len());
            for x in list {
                out.push(x.as_str().ok_or_else(|| format!("'{key}' must be a list of strings"))?.to_owned());
            }
            out.sort_unstable();
            Ok(Some(out))
        }
        Ok(Receivers {
            eligible: ids(options, "eligible")?,
            exclude: ids(options, "exclude")?.unwrap_or_default(),
            eligible_authid: strings(options, "eligible_authid")?,
            exclude_authid: strings(options, "exclude_authid")?.unwrap_or_default(),
            eligible_authrole: strings(options, "eligible_authrole")?,
            exclude_authrole: strings(options, "exclude_authrole")?.unwrap_or_default(),
        })
    }

    /// True if no list restricts the receivers.
    fn is_open(&self) -> bool {
        self.eligible.is_none() && self.exclude.is_empty() && !self.by_auth()
    }

    /// True if some list is by authid or authrole.
    fn by_auth(&self) -> bool {
        self.eligible_authid.is_some()
            || self.eligible_authrole.is_some()
            || !self.exclude_authid.is_empty()
            || !self.exclude_authrole.is_empty()
    }

    /// True if some list is by session id.
    fn by_session(&self) -> bool {
        self.eligible.is_some() || !self.exclude.is_empty()
    }

    fn admits_session(&self, session: SessionId) -> bool {
        let s = session.get();
        self.eligible.as_ref().is_none_or(|e| e.binary_search(&s).is_ok()) && self.exclude.binary_search(&s).is_err()
    }

    /// True if a session with this authid and authrole passes the authid
    /// and authrole lists.
    pub(super) fn admits_auth(&self, authid: &str, authrole: &str) -> bool {
        let has = |l: &[String], x: &str| l.binary_search_by(|e| e.as_str().cmp(x)).is_ok();
        self.eligible_authid.as_deref().is_none_or(|l| has(l, authid))
            && self.eligible_authrole.as_deref().is_none_or(|l| has(l, authrole))
            && !has(&self.exclude_authid, authid)
            && !has(&self.exclude_authrole, authrole)
    }

    fn admits(&self, session: SessionId, authid: &str, authrole: &str) -> bool {
        self.admits_session(session) && self.admits_auth(authid, authrole)
    }
}

/// All subscriptions of a realm, plus retained events.
pub(super) struct Broker {
    /// Subscriptions by slot; indexes hold slots.
    slots: Vec<Option<Subscription>>,
    free: Vec<usize>,
    /// Subscription id → slot.
    ids: HashMap<SubscriptionId, usize>,
    /// Topic → slot of its exact subscription (the common publish path:
    /// one hash probe).
    exact: HashMap<String, usize>,
    /// Prefix and wildcard subscriptions.
    patterns: PatternIndex,
    /// Topic → retained event (insertion ordered, for deterministic
    /// delivery to pattern subscriptions).
    retained: IndexMap<String, StoredEvent>,
    max_retained_topics: usize,
    max_stored_payload: usize,
    /// Reused buffer of matching slots.
    scratch: Vec<usize>,
    stats: BrokerStats,
}

impl Default for Broker {
    fn default() -> Self {
        let spec = BrokerSpec::default();
        Broker {
            slots: Vec::new(),
            free: Vec::new(),
            ids: HashMap::new(),
            exact: HashMap::new(),
            patterns: PatternIndex::default(),
            retained: IndexMap::new(),
            max_retained_topics: spec.max_retained_topics,
            max_stored_payload: spec.max_stored_payload,
            scratch: Vec::new(),
            stats: BrokerStats::default(),
        }
    }
}

impl Broker {
    /// The slot of the subscription (policy, topic), if any.
    fn find(&self, policy: MatchPolicy, topic: &str) -> Option<usize> {
        match policy {
            MatchPolicy::Exact => self.exact.get(topic).copied(),
            _ => self.patterns.get(policy, topic),
        }
    }

    /// The subscription (policy, topic), created with its hash-derived id if
    /// needed. Returns its slot and whether it was created.
    fn find_or_create(
        &mut self,
        policy: MatchPolicy,
        topic: String,
        now: Option<std::time::SystemTime>,
    ) -> (usize, bool) {
        if let Some(slot) = self.find(policy, &topic) {
            return (slot, false);
        }
        // The same (policy, topic) gets the same id on every worker of a
        // cluster: a hash, probed on (improbable) collision.
        let mut h = super::cluster_id_hash(b's', policy, &topic);
        let id = loop {
            let id = SubscriptionId::from_valid(h % MAX_ID + 1);
            if !self.ids.contains_key(&id) {
                break id;
            }
            h = h.wrapping_add(1);
        };
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        match policy {
            MatchPolicy::Exact => {
                self.exact.insert(topic.clone(), slot);
            }
            _ => self.patterns.insert(policy, &topic, slot),
        }
        self.ids.insert(id, slot);
        if let Some(s) = self.slots.get_mut(slot) {
            *s = Some(Subscription {
                id,
                policy,
                topic,
                subscribers: IndexMap::new(),
                remote: IndexMap::new(),
                peers: Vec::new(),
                history: None,
                created: now,
            });
        }
        self.stats.subscriptions += 1;
        (slot, true)
    }

    /// Adds `session` to the subscription (policy, topic), creating it if
    /// needed. Returns its id, whether it was created and whether the
    /// session was added (false: it was already subscribed).
    fn subscribe(
        &mut self,
        policy: MatchPolicy,
        topic: String,
        session: SessionId,
        serializer: Serializer,
        now: Option<std::time::SystemTime>,
    ) -> Option<(SubscriptionId, bool, bool)> {
        let (slot, created) = self.find_or_create(policy, topic, now);
        let sub = self.slots.get_mut(slot)?.as_mut()?;
        let added = sub.subscribers.insert(session, serializer).is_none();
        Some((sub.id, created, added))
    }

    /// Adds ghost `session` of `peer` to the subscription (policy, topic),
    /// creating it if needed. Returns its id (`None` for an invalid pattern).
    pub(super) fn subscribe_remote(
        &mut self,
        policy: MatchPolicy,
        topic: String,
        session: SessionId,
        peer: super::PeerId,
        now: Option<std::time::SystemTime>,
    ) -> Option<SubscriptionId> {
        if !valid_pattern(policy, &topic) {
            return None;
        }
        let (slot, _) = self.find_or_create(policy, topic, now);
        let sub = self.slots.get_mut(slot)?.as_mut()?;
        if sub.remote.insert(session, peer).is_none() {
            match sub.peers.iter_mut().find(|(p, _)| *p == peer) {
                Some((_, n)) => *n += 1,
                None => sub.peers.push((peer, 1)),
            }
        }
        Some(sub.id)
    }

    /// Removes `session` from subscription `id`; deletes the subscription
    /// when its last subscriber is gone (unless it keeps a history).
    /// Returns `None` if `session` was not subscribed, else whether the
    /// subscription was deleted.
    pub(super) fn unsubscribe(&mut self, id: SubscriptionId, session: SessionId) -> Option<bool> {
        let &slot = self.ids.get(&id)?;
        let Some(Some(sub)) = self.slots.get_mut(slot) else { return None };
        if sub.subscribers.swap_remove(&session).is_none() {
            let peer = sub.remote.swap_remove(&session)?;
            if let Some(i) = sub.peers.iter().position(|(p, _)| *p == peer) {
                sub.peers[i].1 -= 1;
                if sub.peers[i].1 == 0 {
                    sub.peers.swap_remove(i);
                }
            }
        }
        if sub.subscribers.is_empty() && sub.remote.is_empty() && sub.history.is_none() {
            if let Some(sub) = self.slots.get_mut(slot).and_then(Option::take) {
                match sub.policy {
                    MatchPolicy::Exact => {
                        self.exact.remove(&sub.topic);
                    }
                    p => self.patterns.remove(p, &sub.topic),
                }
                self.ids.remove(&sub.id);
                self.free.push(slot);
                self.stats.subscriptions -= 1;
                return Some(true);
            }
        }
        Some(false)
    }

    /// The subscription with this id.
    pub(super) fn get(&self, id: SubscriptionId) -> Option<&Subscription> {
        self.slots.get(*self.ids.get(&id)?)?.as_ref()
    }

    /// The subscription (policy, topic), if any.
    pub(super) fn lookup(&self, policy: MatchPolicy, topic: &str) -> Option<&Subscription> {
        self.slots.get(self.find(policy, topic)?)?.as_ref()
    }

    /// All live subscriptions (slot order).
    pub(super) fn iter(&self) -> impl Iterator<Item = &Subscription> {
        self.slots.iter().flatten()
    }

    /// The subscriptions a publication to `topic` is delivered on: exact
    /// first, then patterns.
    pub(super) fn matching(&mut self, topic: &str) -> Vec<&Subscription> {
        let mut matches = std::mem::take(&mut self.scratch);
        matches.clear();
        if let Some(&slot) = self.exact.get(topic) {
            matches.push(slot);
        }
        if self.patterns.len() > 0 {
            self.patterns.matches(topic, &mut matches);
        }
        self.scratch = matches;
        self.scratch.iter().filter_map(|&slot| self.slots.get(slot)?.as_ref()).collect()
    }

    /// True if some subscription matches `topic` (cheap when there are no
    /// pattern subscriptions).
    pub(super) fn has_match(&mut self, topic: &str) -> bool {
        if self.exact.contains_key(topic) {
            return true;
        }
        if self.patterns.len() == 0 {
            return false;
        }
        let mut matches = std::mem::take(&mut self.scratch);
        matches.clear();
        self.patterns.matches(topic, &mut matches);
        let any = !matches.is_empty();
        self.scratch = matches;
        any
    }

    /// Applies limits and creates the configured history subscriptions.
    pub(super) fn configure(&mut self, spec: BrokerSpec) {
        self.max_retained_topics = spec.max_retained_topics;
        self.max_stored_payload = spec.max_stored_payload;
        while self.retained.len() > self.max_retained_topics {
            self.retained.pop();
        }
        self.stats.retained_topics = self.retained.len();
        for h in spec.history {
            if !valid_pattern(h.match_policy, &h.uri) {
                tracing::warn!(uri = %h.uri, "event history for an invalid topic pattern ignored");
                continue;
            }
            let limit = h.limit.clamp(1, HistorySpec::MAX_LIMIT);
            let (slot, _) = self.find_or_create(h.match_policy, h.uri, None);
            if let Some(Some(sub)) = self.slots.get_mut(slot) {
                match &mut sub.history {
                    Some(hist) => hist.limit = limit,
                    None => sub.history = Some(History { limit, events: VecDeque::new() }),
                }
            }
        }
    }

    /// Number of live subscriptions.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.stats.subscriptions
    }
}

impl Realm {
    /// Applies a broker configuration: limits for retained and history
    /// events, and the event-history topics (their subscriptions are
    /// created now). Meant to be called right after [`Realm::new`]; history
    /// entries of an earlier call are kept (a repeated topic gets the new
    /// limit).
    pub fn with_broker_spec(mut self, spec: BrokerSpec) -> Realm {
        self.broker.configure(spec);
        self
    }

    /// The broker's counters.
    pub fn broker_stats(&self) -> BrokerStats {
        let mut s = self.broker.stats;
        s.retained_topics = self.broker.retained.len();
        s
    }

    pub(super) fn handle_subscribe(&mut self, sid: SessionId, request: RequestId, options: &Dict, topic: String) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        let policy = match options.get("match") {
            None => MatchPolicy::Exact,
            Some(m) => match m.as_str() {
                Some("exact") => MatchPolicy::Exact,
                Some("prefix") => MatchPolicy::Prefix,
                Some("wildcard") => MatchPolicy::Wildcard,
                _ => {
                    let msg = "invalid match policy (expected 'exact', 'prefix' or 'wildcard')".to_owned();
                    return self.out.error(sid, ser, code::SUBSCRIBE, request, uris::INVALID_ARGUMENT, msg);
                }
            },
        };
        if !valid_pattern(policy, &topic) {
            let msg = format!("subscribe for invalid topic URI '{}'", clip(&topic));
            return self.out.error(sid, ser, code::SUBSCRIBE, request, uris::INVALID_URI, msg);
        }
        let allowed = self.roles.get(s.role).is_some_and(|r| r.authorize(&topic, Action::Subscribe).allowed);
        if !allowed {
            let msg = format!("session is not authorized to subscribe to topic '{}'", clip(&topic));
            return self.out.error(sid, ser, code::SUBSCRIBE, request, uris::NOT_AUTHORIZED, msg);
        }
        let meta = !topic.starts_with("wamp.");
        let Some((id, created, added)) = self.broker.subscribe(policy, topic, sid, ser, self.wall_clock) else {
            return;
        };
        s.subscriptions.insert(id);
        let _ = self.out.send(sid, ser, &Message::Subscribed { request, subscription: id });
        if added && !self.cluster.peers.is_empty() {
            if let Some(sub) = self.broker.get(id) {
                let msg = super::PeerMsg::Subscribe { session: sid, policy: sub.policy, topic: sub.topic.clone() };
                self.broadcast(msg);
            }
        }
        if opt_bool(options, "get_retained") == Some(true) {
            self.send_retained(sid, id);
        }
        if meta {
            if created {
                self.subscription_created_meta(sid, id);
            }
            if added {
                self.meta_event_ids(super::meta::SUBSCRIPTION_ON_SUBSCRIBE, sid, id.get());
            }
        }
    }

    /// Removes `session` from subscription `id` and queues the
    /// `on_unsubscribe` / `on_delete` meta events. Returns false if it was
    /// not subscribed.
    pub(super) fn unsubscribe_session(&mut self, id: SubscriptionId, session: SessionId) -> bool {
        let meta = self.broker.get(id).is_some_and(|s| !s.topic.starts_with("wamp."));
        if !self.cluster.peers.is_empty() && !self.is_ghost(session) {
            if let Some(sub) = self.broker.get(id).filter(|s| s.subscribers.contains_key(&session)) {
                let msg = super::PeerMsg::Unsubscribe { session, policy: sub.policy, topic: sub.topic.clone() };
                self.broadcast(msg);
            }
        }
        let Some(deleted) = self.broker.unsubscribe(id, session) else { return false };
        if meta {
            self.meta_event_ids(super::meta::SUBSCRIPTION_ON_UNSUBSCRIBE, session, id.get());
            if deleted {
                self.meta_event_ids(super::meta::SUBSCRIPTION_ON_DELETE, session, id.get());
            }
        }
        true
    }

    /// Removes subscriber `subscriber` from subscription `subscription` (the
    /// subscription is deleted with its last subscriber unless it keeps a
    /// history): if the subscriber announced `subscription_revocation` it
    /// gets `UNSUBSCRIBED [0, {subscription, reason}]` (`reason` only when
    /// given), otherwise it is removed silently. Returns false if it is not
    /// subscribed to that subscription.
    pub fn revoke_subscriber(
        &mut self,
        subscription: SubscriptionId,
        subscriber: SessionId,
        reason: Option<&str>,
    ) -> bool {
        let removed = self.revoke_subscriber_inner(subscription, subscriber, reason);
        self.flush_deferred();
        removed
    }

    /// [`Realm::revoke_subscriber`] without routing the queued meta events.
    pub(super) fn revoke_subscriber_inner(
        &mut self,
        subscription: SubscriptionId,
        subscriber: SessionId,
        reason: Option<&str>,
    ) -> bool {
        let Some(s) = self.sessions.get_mut(&subscriber) else { return false };
        if !s.subscriptions.remove(&subscription) {
            return false;
        }
        if s.rpc.features.subscriber_revocation {
            let mut details = Dict::new();
            details.insert("subscription".into(), Value::UInt(subscription.get()));
            if let Some(reason) = reason {
                details.insert("reason".into(), Value::Str(reason.to_owned()));
            }
            let msg = Message::Unsubscribed { request: RequestId::from_valid(0), details: Some(details) };
            let _ = self.out.send(subscriber, s.info.serializer, &msg);
        }
        self.unsubscribe_session(subscription, subscriber);
        true
    }

    /// Queues the retained events subscription `id` matches that `sid` is
    /// eligible for.
    fn send_retained(&mut self, sid: SessionId, id: SubscriptionId) {
        let (Some(s), Some(sub)) = (self.sessions.get(&sid), self.broker.get(id)) else { return };
        let ser = s.info.serializer;
        let send = |ev: &StoredEvent, out: &mut Outbox| -> bool {
            if !ev.receivers.admits(sid, &s.info.authid, &s.info.authrole) {
                return false;
            }
            let mut details = ev.details.clone();
            if sub.policy != MatchPolicy::Exact {
                details.insert("topic".into(), Value::Str(ev.topic.clone()));
            }
            details.insert("retained".into(), Value::Bool(true));
            let msg =
                Message::Event { subscription: id, publication: ev.publication, details, payload: ev.payload.clone() };
            let ok = out.send(sid, ser, &msg).is_ok();
            if ok {
                out.stats.events_delivered += 1;
            }
            ok
        };
        let mut delivered = 0;
        match sub.policy {
            MatchPolicy::Exact => {
                if let Some(ev) = self.broker.retained.get(&sub.topic) {
                    delivered += u64::from(send(ev, &mut self.out));
                }
            }
            policy => {
                // Bounded by `max_retained_topics`.
                for (topic, ev) in &self.broker.retained {
                    if pattern_matches(policy, &sub.topic, topic) {
                        delivered += u64::from(send(ev, &mut self.out));
                    }
                }
            }
        }
        self.broker.stats.retained_delivered += delivered;
    }

    pub(super) fn handle_unsubscribe(&mut self, sid: SessionId, request: RequestId, id: SubscriptionId) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        if !s.subscriptions.remove(&id) {
            let msg = format!("session is not subscribed to subscription {id}");
            return self.out.error(sid, ser, code::UNSUBSCRIBE, request, uris::NO_SUCH_SUBSCRIPTION, msg);
        }
        let _ = self.out.send(sid, ser, &Message::Unsubscribed { request, details: None });
        self.unsubscribe_session(id, sid);
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
        let receivers = if options.is_empty() {
            Receivers::default()
        } else {
            match Receivers::parse(options) {
                Ok(r) => r,
                Err(e) => {
                    self.out.stats.publishes_dropped_invalid += 1;
                    if ack {
                        self.out.error(sid, ser, code::PUBLISH, request, uris::INVALID_ARGUMENT, e);
                    }
                    return;
                }
            }
        };
        let publication = PublicationId::from_valid(self.rng.gen_range(1..=MAX_ID));
        self.out.stats.publications += 1;
        let details = publication_details(s, auth.disclose, options);
        let skip = if opt_bool(options, "exclude_me").unwrap_or(true) { Some(sid) } else { None };
        let retain = opt_bool(options, "retain") == Some(true);
        let fwd = if self.cluster.peers.is_empty() { None } else { Some(receiver_options(options)) };
        self.route_publication(skip, topic, details, receivers, retain, publication, &payload, fwd);
        if ack {
            let _ = self.out.send(sid, ser, &Message::Published { request, publication });
        }
    }

    /// Routes a router-originated publication (meta event or testament).
    pub(super) fn route_deferred(&mut self, d: Deferred) {
        let publication = d.publication.unwrap_or_else(|| PublicationId::from_valid(self.rng.gen_range(1..=MAX_ID)));
        let fwd = if self.cluster.peers.is_empty() { None } else { Some(d.receiver_options.clone()) };
        self.route_publication(None, d.topic, d.details, d.receivers, d.retain, publication, &d.payload, fwd);
    }

    /// Routes a publication a peer worker accepted, to local subscribers
    /// only (never forwarded again).
    pub(super) fn route_from_peer(
        &mut self,
        topic: String,
        details: Dict,
        receivers: Receivers,
        retain: bool,
        publication: PublicationId,
        payload: &Payload,
    ) {
        if !super::uri_ok(&topic) {
            self.cluster.stats.ignored += 1;
            return;
        }
        self.route_publication(None, topic, details, receivers, retain, publication, payload, None);
    }

    /// Delivers an accepted publication to every matching subscription
    /// (except to `skip`), appends it to histories and retains it. With
    /// `forward` (the publication's black/whitelisting options) it is also
    /// sent once to every peer worker with a matching remote subscriber
    /// (every peer, for `retain`).
    #[allow(clippy::too_many_arguments)]
    fn route_publication(
        &mut self,
        skip: Option<SessionId>,
        topic: String,
        details: Dict,
        receivers: Receivers,
        retain: bool,
        publication: PublicationId,
        payload: &Payload,
        forward: Option<Dict>,
    ) {
        let mut to_peers: Vec<super::PeerId> = Vec::new();
        // A topic with event history counts as interest of every worker, so
        // each worker's history holds every event (as on one router).
        let mut history_match = false;
        let broker = &mut self.broker;
        let mut matches = std::mem::take(&mut broker.scratch);
        matches.clear();
        if let Some(&slot) = broker.exact.get(&topic) {
            matches.push(slot);
        }
        if broker.patterns.len() > 0 {
            broker.patterns.matches(&topic, &mut matches);
        }
        let mut ctx = FanOut {
            publication,
            payload,
            skip,
            receivers: &receivers,
            sessions: &self.sessions,
            transcoded: [None, None, None],
        };
        let mut pattern_details: Option<Dict> = None;
        // The payload copy shared by stored events, made on first need.
        let mut stored: Option<Option<Payload>> = None;
        let max_stored = broker.max_stored_payload;
        for &slot in &matches {
            let Some(Some(sub)) = broker.slots.get_mut(slot) else { continue };
            let d = if sub.policy == MatchPolicy::Exact {
                &details
            } else {
                &*pattern_details.get_or_insert_with(|| {
                    let mut d = details.clone();
                    d.insert("topic".into(), Value::Str(topic.clone()));
                    d
                })
            };
            if !sub.subscribers.is_empty() {
                ctx.fan_out(&mut self.out, sub, d);
            }
            if forward.is_some() {
                for &(p, _) in &sub.peers {
                    if !to_peers.contains(&p) {
                        to_peers.push(p);
                    }
                }
            }
            if let Some(h) = &mut sub.history {
                history_match = true;
                let p = stored.get_or_insert_with(|| detach(payload, max_stored));
                match p {
                    Some(p) if !receivers.by_session() => {
                        if h.events.len() >= h.limit {
                            h.events.pop_front();
                        }
                        h.events.push_back(StoredEvent {
                            publication,
                            topic: topic.clone(),
                            details: details.clone(),
                            payload: p.clone(),
                            receivers: receivers.clone(),
                        });
                        broker.stats.history_stored += 1;
                    }
                    _ => broker.stats.history_skipped += 1,
                }
            }
        }
        broker.scratch = matches;

        if let Some(opts) = forward {
            if retain || history_match {
                to_peers.clone_from(&self.cluster.peers);
            }
            for peer in to_peers {
                self.cluster.stats.publications_forwarded += 1;
                let msg = super::PeerMsg::Publish {
                    publication,
                    topic: topic.clone(),
                    details: details.clone(),
                    receivers: opts.clone(),
                    retain,
                    payload: payload.clone(),
                };
                self.out.queue.push_back(super::Transmit::Peer { peer, msg });
            }
        }

        if retain {
            let p = stored.get_or_insert_with(|| detach(payload, max_stored)).clone();
            let full = broker.retained.len() >= broker.max_retained_topics && !broker.retained.contains_key(&topic);
            match p {
                Some(payload) if !full => {
                    let ev = StoredEvent { publication, topic: topic.clone(), details, payload, receivers };
                    broker.retained.insert(topic, ev);
                    broker.stats.retained_stored += 1;
                }
                Some(_) => broker.stats.retained_declined += 1,
                None => {
                    // Too large: do not leave an older, stale event behind.
                    broker.retained.swap_remove(&topic);
                    broker.stats.retained_declined += 1;
                }
            }
        }
    }
}

/// EVENT details of a publication by `s` (publisher disclosure when the
/// role says so or the publisher asked, passthru options).
pub(super) fn publication_details(s: &Session, disclose: bool, options: &Dict) -> Dict {
    let mut details = Dict::new();
    if disclose || opt_bool(options, "disclose_me") == Some(true) {
        details.insert("publisher".into(), Value::UInt(s.info.session.get()));
        details.insert("publisher_authid".into(), Value::Str(s.info.authid.clone()));
        details.insert("publisher_authrole".into(), Value::Str(s.info.authrole.clone()));
    }
    if !options.is_empty() {
        for key in PASSTHRU_KEYS {
            if let Some(v) = options.get(key) {
                details.insert(key.to_owned(), v.clone());
            }
        }
    }
    details
}

/// The black/whitelisting options of a PUBLISH (forwarded to peers).
pub(super) fn receiver_options(options: &Dict) -> Dict {
    let mut d = Dict::new();
    if !options.is_empty() {
        for k in super::cluster::RECEIVER_KEYS {
            if let Some(v) = options.get(k) {
                d.insert(k.to_owned(), v.clone());
            }
        }
    }
    d
}

/// A router-originated publication waiting for the end of the current
/// input (see `Realm::flush_deferred`).
#[derive(Clone, Debug)]
pub(super) struct Deferred {
    pub(super) topic: String,
    pub(super) details: Dict,
    pub(super) receivers: Receivers,
    pub(super) retain: bool,
    /// A publication id assigned in advance (testaments), else random.
    pub(super) publication: Option<PublicationId>,
    pub(super) payload: Payload,
    /// `receivers` as PUBLISH options, for peers.
    pub(super) receiver_options: Dict,
}

/// A copy of `payload` detached from the receive buffer, or `None` if it is
/// larger than `max` bytes.
fn detach(payload: &Payload, max: usize) -> Option<Payload> {
    match payload {
        Payload::Raw { format, args, kwargs } => {
            let size = args.as_ref().map_or(0, Bytes::len) + kwargs.as_ref().map_or(0, Bytes::len);
            if size > max {
                return None;
            }
            let copy = |b: &Option<Bytes>| b.as_ref().map(|b| Bytes::copy_from_slice(b));
            Some(Payload::Raw { format: *format, args: copy(args), kwargs: copy(kwargs) })
        }
        Payload::Values { .. } => {
            let e = payload.encoded_in(PayloadFormat::Cbor).ok()?;
            let size = e.args.as_ref().map_or(0, Bytes::len) + e.kwargs.as_ref().map_or(0, Bytes::len);
            if size > max {
                return None;
            }
            Some(Payload::Raw { format: PayloadFormat::Cbor, args: e.args, kwargs: e.kwargs })
        }
    }
}

/// One publication's fan-out state, shared across its subscriptions.
struct FanOut<'a> {
    publication: PublicationId,
    payload: &'a Payload,
    /// The publisher, unless `exclude_me: false`.
    skip: Option<SessionId>,
    receivers: &'a Receivers,
    sessions: &'a HashMap<SessionId, Session>,
    /// The payload transcoded per payload format, once per publication.
    transcoded: [Option<Payload>; 3],
}

impl FanOut<'_> {
    /// Queues one EVENT per admitted subscriber of `sub`, encoding it at
    /// most once per serializer and sharing the bytes.
    fn fan_out(&mut self, out: &mut Outbox, sub: &Subscription, details: &Dict) {
        let mut encoded: [Option<Bytes>; 4] = [None, None, None, None];
        let mut failed = [false; 4];
        // EVENTs per serializer, counted (with their bytes) after the loop.
        let mut sent = [0u64; 4];
        let open = self.receivers.is_open();
        let by_auth = self.receivers.by_auth();
        let tracing = out.tracer.is_active();
        for (&target, &ser) in &sub.subscribers {
            if Some(target) == self.skip {
                continue;
            }
            if !open {
                if !self.receivers.admits_session(target) {
                    continue;
                }
                if by_auth {
                    let Some(s) = self.sessions.get(&target) else { continue };
                    if !self.receivers.admits_auth(&s.info.authid, &s.info.authrole) {
                        continue;
                    }
                }
            }
            let i = ser.index();
            if failed[i] {
                continue;
            }
            let bytes = match &encoded[i] {
                Some(b) => b.clone(),
                None => {
                    match encode_event(ser, sub.id, self.publication, details, self.payload, &mut self.transcoded) {
                        Ok(b) => {
                            encoded[i] = Some(b.clone());
                            b
                        }
                        Err(e) => {
                            failed[i] = true;
                            out.stats.encode_errors += 1;
                            tracing::warn!(publication = %self.publication, %ser, error = %e, "EVENT could not be encoded");
                            continue;
                        }
                    }
                }
            };
            sent[i] += 1;
            out.push_uncounted(target, bytes);
            out.stats.events_delivered += 1;
            if tracing {
                out.traced.push((target, wamp_proto::code::EVENT, Some(sub.topic.clone())));
            }
        }
        let n = sent.iter().sum();
        let len = sent.iter().zip(&encoded).map(|(n, b)| n * b.as_ref().map_or(0, |b| b.len() as u64)).sum();
        out.counts.sent_many(wamp_proto::code::EVENT, n, len);
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
