//! # The sans-IO routing engine: WAMP Basic Profile for one realm
//!
//! A [`Realm`] is the complete router logic of one WAMP realm — broker
//! (publish/subscribe), dealer (routed RPC), authorization and session
//! lifecycle — as a plain state machine. It owns no sockets, no clock, no
//! threads, no tasks and no locks: the runtime feeds it decoded messages
//! ([`Realm::handle_message`]) and transport events ([`Realm::join`],
//! [`Realm::leave`], [`Realm::abort`]), then drains what to send
//! ([`Realm::poll_transmit`]). A realm lives on exactly one shard (core), so
//! it is single-threaded and owns all of its state outright.
//!
//! It is **not** a transport, a codec or an authenticator: messages arrive
//! decoded, leave encoded by `wamp_proto::Serializer`, and sessions arrive
//! already authenticated (see [`handshake`] for HELLO processing, which
//! happens before a session belongs to a realm).
//!
//! ## Behaviour
//! * Every request gets its reply or an ERROR with a Basic Profile URI
//!   (Crossbar's choices where the spec leaves room): `invalid_uri`,
//!   `not_authorized`, `no_such_subscription`, `no_such_registration`,
//!   `procedure_already_exists`, `no_such_procedure`, `canceled` (the callee
//!   left while a call was pending), `invalid_argument` (unsupported
//!   `match`/`invoke` options, or a payload that could not be transcoded for
//!   the receiver), `procedure_exists_with_different_invocation_policy`.
//!   Clients may not register or publish under the reserved
//!   `wamp.` prefix (`invalid_uri`, as Crossbar).
//! * A PUBLISH is answered (PUBLISHED or ERROR) only with
//!   `acknowledge: true`; otherwise refused publications are silently dropped
//!   and counted in [`RealmStats`].
//! * Messages a client must never send (HELLO, WELCOME, CHALLENGE,
//!   AUTHENTICATE after joining, EVENT, INVOCATION, RESULT, the router-side
//!   acknowledgements, ERROR for anything but an INVOCATION, and YIELD/ERROR
//!   for an invocation id never issued to that callee) abort the offending
//!   session with `wamp.error.protocol_violation`; no other session is
//!   affected. A YIELD/ERROR for an invocation that *was* issued but is no
//!   longer pending (its caller left) is a harmless race and is dropped.
//! * Pub/sub implements the Advanced Profile features listed in the
//!   `broker` module docs (pattern-based subscriptions, black/whitelisting,
//!   retention, event history, payload passthru); the router-provided
//!   procedure `wamp.subscription.get_events` is answered by the realm
//!   itself (`broker_meta`).
//! * RPC implements the Advanced Profile features listed in the `dealer`
//!   module docs (progressive results and invocations, canceling, timeouts,
//!   pattern-based, shared and sharded registrations, revocation).
//! * The WAMP meta API — session, subscription and registration meta
//!   procedures and events, and session testaments — is answered and
//!   published by the realm itself, switchable per realm
//!   ([`Realm::with_meta_api`], on by default; see the `meta` module).
//!   Router-originated publications (meta events, testaments) are routed at
//!   the end of the input that caused them, after its replies.
//! * The router itself can call procedures registered by clients (dynamic
//!   authenticators): [`Realm::internal_call`] and
//!   [`Realm::poll_internal_result`] (see the `internal` module).
//! * Identity disclosure: a publisher (caller) is disclosed in EVENT
//!   (INVOCATION) details when its role's permission for the URI says so
//!   (`disclose.publisher` / `disclose.caller`, as Crossbar), or when the
//!   client itself asked for it with `disclose_me: true` — disclosing one's
//!   own identity is the client's choice.
//!
//! ## Fan-out
//! A PUBLISH payload arrives as `Payload::Raw` and is never decoded: the
//! EVENT is encoded at most once per (matching subscription, serializer),
//! splicing the raw args/kwargs verbatim for the publisher's format and
//! transcoding once per other format and publication; every subscriber of
//! that subscription using that serializer receives a clone of the same
//! `Bytes`.
//! Subscribers are iterated in place, with no allocation per subscriber.
//!
//! ## IDs
//! Session IDs are assigned by the runtime (node-unique). Publication IDs are
//! random in `[1, 2^53]`; subscription and registration IDs are a hash of
//! (match policy, URI), unique within the realm and the same on every worker
//! of a cluster (see [`cluster`]); invocation request IDs are sequential per
//! callee.
//! Randomness comes from an RNG seeded in [`Realm::new`], so tests are
//! deterministic.

pub mod authz;
mod broker;
mod broker_meta;
mod broker_trie;
pub mod cluster;
mod dealer;
pub mod handshake;
mod internal;
mod meta;
pub mod msgcount;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_broker;
#[cfg(test)]
mod tests_cluster;
#[cfg(test)]
mod tests_dealer;
#[cfg(test)]
mod tests_meta;
pub mod trace;

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::SeedableRng;
use thiserror::Error;
use wamp_proto::{code, Dict, EncodeError, Message, Payload, RequestId, SessionId, Value};

pub use authz::{Action, Allow, Authorization, Disclose, MatchPolicy, Permission, Role, RoleTable};
pub use broker::{BrokerSpec, BrokerStats, HistorySpec};
pub use cluster::{ClusterStats, PeerError, PeerId, PeerMsg, RemoteSession};
pub use dealer::DealerConfig;
pub use handshake::{AnonymousAuth, HandshakeOutcome};
pub use internal::{InternalCallError, InternalOutcome};
pub use meta::MetaConfig;
pub use msgcount::MessageCounts;
pub use wamp_proto::Serializer;

/// WAMP URIs the engine uses in ABORT, GOODBYE and ERROR messages.
pub mod uris {
    pub const PROTOCOL_VIOLATION: &str = "wamp.error.protocol_violation";
    pub const INVALID_URI: &str = "wamp.error.invalid_uri";
    pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
    pub const NO_SUCH_REALM: &str = "wamp.error.no_such_realm";
    pub const NO_SUCH_ROLE: &str = "wamp.error.no_such_role";
    pub const NO_AUTH_METHOD: &str = "wamp.error.no_auth_method";
    pub const NO_SUCH_SUBSCRIPTION: &str = "wamp.error.no_such_subscription";
    pub const NO_SUCH_REGISTRATION: &str = "wamp.error.no_such_registration";
    pub const PROCEDURE_ALREADY_EXISTS: &str = "wamp.error.procedure_already_exists";
    pub const NO_SUCH_PROCEDURE: &str = "wamp.error.no_such_procedure";
    pub const INVALID_ARGUMENT: &str = "wamp.error.invalid_argument";
    pub const CANCELED: &str = "wamp.error.canceled";
    pub const TIMEOUT: &str = "wamp.error.timeout";
    pub const FEATURE_NOT_SUPPORTED: &str = "wamp.error.feature_not_supported";
    pub const PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY: &str =
        "wamp.error.procedure_exists_with_different_invocation_policy";
    /// Meta API: no (other) session with that ID.
    pub const NO_SUCH_SESSION: &str = "wamp.error.no_such_session";
    /// Testament meta API: bad scope or limit reached (Crossbar's URI).
    pub const TESTAMENT_ERROR: &str = "wamp.error.testament_error";
    /// Default reason of `wamp.session.kill*`.
    pub const CLOSE_KILLED: &str = "wamp.close.killed";
    /// A session has too many calls in flight (see `DealerConfig`).
    pub const TOO_MANY_PENDING_CALLS: &str = "junction.error.too_many_pending_calls";
    pub const GOODBYE_AND_OUT: &str = "wamp.close.goodbye_and_out";
    pub const CLOSE_REALM: &str = "wamp.close.close_realm";
    pub const SYSTEM_SHUTDOWN: &str = "wamp.close.system_shutdown";
}

/// The configuration of one realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmSpec {
    /// The realm URI.
    pub name: String,
    /// The roles sessions may join under.
    pub roles: Vec<Role>,
}

/// An authenticated session about to join a realm.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    /// Node-unique session ID, chosen by the runtime.
    pub session: SessionId,
    /// The serializer of the session's transport.
    pub serializer: Serializer,
    pub authid: String,
    pub authrole: String,
    pub authmethod: String,
    pub authprovider: String,
    /// Transport details (`type`, `peer`, ...), kept for meta information.
    pub transport: Dict,
}

/// Output of the engine, drained with [`Realm::poll_transmit`].
// Not boxed: every routed message is a `Transmit`, and the large variants
// are the rare ones.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Transmit {
    /// One encoded WAMP message in the session's serializer. Fan-out shares
    /// one `Bytes` among all subscribers using the same serializer.
    Message { session: SessionId, bytes: Bytes },
    /// The session is finished (GOODBYE exchanged, or aborted); the engine
    /// has already forgotten it. Flush the queued bytes, then close the
    /// transport.
    Close { session: SessionId },
    /// A message for a peer worker of the cluster (see [`cluster`]).
    Peer { peer: PeerId, msg: PeerMsg },
    /// A meta event for the router's operator (see
    /// [`Realm::set_operator_events`]): the management API bridges them.
    Operator { topic: String, args: wamp_proto::List },
}

/// Why [`Realm::join`] refused a session.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum JoinError {
    /// A session with this ID is already in the realm (a runtime bug). The
    /// existing session is untouched and nothing is queued.
    #[error("session {0} already joined this realm")]
    SessionExists(SessionId),
    /// The session's role does not exist on the realm. ABORT
    /// `wamp.error.no_such_role` and a Close are queued for the session.
    #[error("no role '{role}' on realm '{realm}'")]
    NoSuchRole { realm: String, role: String },
    /// The WELCOME could not be encoded. ABORT and Close are queued if
    /// possible.
    #[error("WELCOME could not be encoded: {0}")]
    Encode(#[from] EncodeError),
}

/// Counters of one realm (monotonic, since [`Realm::new`]).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RealmStats {
    /// Sessions admitted.
    pub sessions_joined: u64,
    /// Messages received from established sessions.
    pub messages_in: u64,
    /// Messages queued for sending (each fan-out copy counts).
    pub messages_out: u64,
    /// Publications accepted and routed.
    pub publications: u64,
    /// EVENTs queued to subscribers.
    pub events_delivered: u64,
    /// Publications refused because the role may not publish there.
    pub publishes_dropped_unauthorized: u64,
    /// Publications refused for an invalid or reserved topic.
    pub publishes_dropped_invalid: u64,
    /// Calls routed to a callee.
    pub calls: u64,
    /// Calls answered with `wamp.error.canceled` because of a CANCEL.
    pub calls_canceled: u64,
    /// Calls answered with `wamp.error.timeout`.
    pub calls_timed_out: u64,
    /// YIELD/ERROR replies dropped because the call is no longer pending.
    pub stale_replies: u64,
    /// Sessions aborted for a protocol violation.
    pub protocol_violations: u64,
    /// Messages that could not be encoded for their receiver.
    pub encode_errors: u64,
    /// Messages ignored (CANCEL, messages from a closing session, messages
    /// for unknown sessions).
    pub ignored: u64,
}

/// The output queue plus counters; a separate struct so handlers can borrow
/// it alongside the session table.
#[derive(Default)]
struct Outbox {
    queue: VecDeque<Transmit>,
    stats: RealmStats,
    /// Sessions of peer workers (see [`cluster`]): what is sent to them
    /// goes to their worker as [`PeerMsg::ToSession`].
    ghosts: HashMap<SessionId, PeerId>,
    /// Messages per type and bytes, readable from other threads.
    counts: std::sync::Arc<MessageCounts>,
    /// The worker's message traces (see [`trace`]); the hooks check
    /// [`trace::Tracer::is_active`] once.
    tracer: std::sync::Arc<trace::Tracer>,
    /// Messages queued while a trace runs, (session, type, URI), recorded
    /// with their session's identity at the end of the input (see
    /// [`Realm::flush_deferred`]).
    traced: Vec<(SessionId, u64, Option<String>)>,
}

impl Outbox {
    /// Queues already-encoded bytes of a message of type `code`.
    fn push(&mut self, session: SessionId, code: u64, bytes: Bytes) {
        self.counts.sent(code, bytes.len());
        self.push_uncounted(session, bytes);
    }

    /// Queues already-encoded bytes; the caller counts them in `counts`
    /// (a fan-out counts its EVENTs once, after the loop).
    fn push_uncounted(&mut self, session: SessionId, bytes: Bytes) {
        self.stats.messages_out += 1;
        self.queue.push_back(Transmit::Message { session, bytes });
    }

    /// Encodes and queues `msg`. Returns false (and counts) if it could not
    /// be encoded.
    fn send(&mut self, session: SessionId, serializer: Serializer, msg: &Message) -> Result<(), EncodeError> {
        if !self.ghosts.is_empty() {
            if let Some(&peer) = self.ghosts.get(&session) {
                self.stats.messages_out += 1;
                self.queue.push_back(Transmit::Peer { peer, msg: PeerMsg::ToSession { session, msg: msg.clone() } });
                return Ok(());
            }
        }
        match serializer.encode(msg) {
            Ok(bytes) => {
                self.push(session, msg.code(), bytes);
                if self.tracer.is_active() {
                    self.traced.push((session, msg.code(), trace::uri_of(msg).map(str::to_owned)));
                }
                Ok(())
            }
            Err(e) => {
                self.stats.encode_errors += 1;
                tracing::warn!(%session, %serializer, error = %e, "{} could not be encoded", msg.name());
                Err(e)
            }
        }
    }

    /// Queues `[ERROR, request_type, request, {}, error, [message]]`.
    fn error(
        &mut self,
        session: SessionId,
        serializer: Serializer,
        request_type: u64,
        request: RequestId,
        error: &str,
        message: String,
    ) {
        let msg = Message::Error {
            request_type,
            request,
            details: Dict::new(),
            error: error.to_owned(),
            payload: Payload::Values { args: Some(vec![Value::Str(message)]), kwargs: None },
        };
        let _ = self.send(session, serializer, &msg);
    }

    fn close(&mut self, session: SessionId) {
        if self.ghosts.contains_key(&session) {
            // The ghost's own worker closes the real session.
            return;
        }
        self.queue.push_back(Transmit::Close { session });
    }
}

/// One joined session.
struct Session {
    info: SessionInfo,
    /// Index into `Realm::roles`.
    role: usize,
    subscriptions: HashSet<wamp_proto::SubscriptionId>,
    /// Registrations, invocations and calls (see the `dealer` module).
    rpc: dealer::SessionRpc,
    /// The router sent GOODBYE and awaits the reply; all state is detached.
    closing: bool,
    /// Subscriptions, registrations and calls are gone, testaments and
    /// `wamp.session.on_leave` were published (happens once).
    detached: bool,
    /// Testaments (see the `meta` module).
    testaments: meta::Testaments,
    /// A ghost: the session lives on this peer worker (see [`cluster`]).
    remote: Option<PeerId>,
}

/// The router logic of one realm (see the module docs).
pub struct Realm {
    name: String,
    roles: Vec<RoleTable>,
    role_index: HashMap<String, usize>,
    rng: StdRng,
    sessions: HashMap<SessionId, Session>,
    broker: broker::Broker,
    dealer: dealer::Dealer,
    out: Outbox,
    /// `WELCOME.Details.roles`, rebuilt when the meta configuration changes.
    router_roles: Value,
    /// Meta API switch and limits.
    meta: MetaConfig,
    /// Router-originated publications (meta events, testaments) waiting to
    /// be routed at the end of the current input (see [`Realm::flush_deferred`]).
    deferred: VecDeque<broker::Deferred>,
    /// Wall-clock time for `created` timestamps, if the runtime gave it.
    wall_clock: Option<std::time::SystemTime>,
    /// Router-originated calls (see the `internal` module).
    internal: internal::InternalCalls,
    /// Peer workers of the realm's cluster (see [`cluster`]).
    cluster: cluster::Cluster,
    /// Meta events also go to the operator (`Transmit::Operator`).
    operator_events: bool,
}

/// Gives a hash map's memory back once it is mostly empty (after a storm of
/// sessions left); a map keeps its capacity otherwise.
pub(crate) fn shrink_if_mostly_empty<K: Eq + std::hash::Hash, V, S: std::hash::BuildHasher>(
    map: &mut std::collections::HashMap<K, V, S>,
) {
    let (len, cap) = (map.len(), map.capacity());
    if cap > 1024 && len * 8 < cap {
        map.shrink_to(len * 2);
    }
}

impl Realm {
    /// Removes a session's state; gives memory back once the session table
    /// is mostly empty (after a storm of sessions left).
    fn forget_session(&mut self, sid: SessionId) {
        self.sessions.remove(&sid);
        shrink_if_mostly_empty(&mut self.sessions);
    }

    /// A realm with no sessions. `rng_seed` seeds the ID generator.
    pub fn new(spec: RealmSpec, rng_seed: u64) -> Realm {
        let mut roles = Vec::with_capacity(spec.roles.len());
        let mut role_index = HashMap::new();
        for r in &spec.roles {
            if !role_index.contains_key(&r.name) {
                role_index.insert(r.name.clone(), roles.len());
                roles.push(RoleTable::new(r));
            }
        }
        Realm {
            name: spec.name,
            roles,
            role_index,
            rng: StdRng::seed_from_u64(rng_seed),
            sessions: HashMap::new(),
            broker: broker::Broker::default(),
            dealer: dealer::Dealer::default(),
            out: Outbox::default(),
            router_roles: router_roles(&MetaConfig::default()),
            meta: MetaConfig::default(),
            deferred: VecDeque::new(),
            wall_clock: None,
            internal: internal::InternalCalls::default(),
            cluster: cluster::Cluster::default(),
            operator_events: false,
        }
    }

    /// The realm URI.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if sessions may join under `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.role_index.contains_key(role)
    }

    /// Adds a role, or replaces the permissions of the role of that name
    /// (at run time: sessions of the role are authorized by the new
    /// permissions from their next action on; what they already hold —
    /// subscriptions, registrations — stays).
    pub fn set_role(&mut self, role: &Role) {
        match self.role_index.get(&role.name) {
            Some(&i) => self.roles[i] = RoleTable::new(role),
            None => {
                self.role_index.insert(role.name.clone(), self.roles.len());
                self.roles.push(RoleTable::new(role));
            }
        }
    }

    /// Removes a role: no session may join under it any more, and the
    /// sessions that have it are closed (GOODBYE `wamp.close.system_shutdown`).
    /// Returns the number of sessions closed, `None` if there is no such role.
    pub fn remove_role(&mut self, name: &str) -> Option<usize> {
        let i = self.role_index.remove(name)?;
        // The slot stays (sessions hold role indices) but allows nothing.
        self.roles[i] = RoleTable::new(&Role { name: name.to_owned(), permissions: Vec::new() });
        let victims: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.role == i && s.remote.is_none() && !s.closing)
            .map(|(id, _)| *id)
            .collect();
        for &v in &victims {
            self.goodbye_inner(v, uris::SYSTEM_SHUTDOWN, "the session's role was removed");
        }
        self.flush_deferred();
        Some(victims.len())
    }

    /// The names of the realm's roles.
    pub fn role_names(&self) -> Vec<String> {
        let mut v: Vec<(&String, &usize)> = self.role_index.iter().collect();
        v.sort_by_key(|(_, i)| **i);
        v.into_iter().map(|(n, _)| n.clone()).collect()
    }

    /// Number of sessions in the realm (including ones the router is saying
    /// GOODBYE to).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The realm's counters.
    pub fn stats(&self) -> &RealmStats {
        &self.out.stats
    }

    /// The realm's messages per type and bytes sent (shared: other threads
    /// may read them while the realm runs; see [`msgcount`]).
    pub fn message_counts(&self) -> std::sync::Arc<MessageCounts> {
        self.out.counts.clone()
    }

    /// Admits an authenticated session and queues its WELCOME (details:
    /// `realm`, `authid`, `authrole`, `authmethod`, `authprovider`, `roles`
    /// announcing exactly the implemented broker and dealer features, and
    /// `agent`). `hello_details` is the client's HELLO details; the Basic
    /// Profile engine needs nothing from it at present.
    pub fn join(&mut self, info: SessionInfo, hello_details: &Dict) -> Result<(), JoinError> {
        self.join_with_authextra(info, hello_details, Dict::new())
    }

    /// [`Realm::join`] with the authenticator's `authextra` (e.g. SCRAM's
    /// server signature), sent in `WELCOME.Details.authextra` when not empty.
    pub fn join_with_authextra(
        &mut self,
        info: SessionInfo,
        hello_details: &Dict,
        authextra: Dict,
    ) -> Result<(), JoinError> {
        let sid = info.session;
        let r = self.join_inner(info, hello_details, authextra);
        if r.is_ok() {
            self.session_joined_meta(sid);
        }
        self.flush_deferred();
        r
    }

    fn join_inner(&mut self, info: SessionInfo, hello_details: &Dict, authextra: Dict) -> Result<(), JoinError> {
        let sid = info.session;
        if self.sessions.contains_key(&sid) {
            return Err(JoinError::SessionExists(sid));
        }
        let Some(&role) = self.role_index.get(&info.authrole) else {
            let err = JoinError::NoSuchRole { realm: self.name.clone(), role: info.authrole.clone() };
            let abort = handshake::abort_message(uris::NO_SUCH_ROLE, &err.to_string());
            let _ = self.out.send(sid, info.serializer, &abort);
            self.out.close(sid);
            return Err(err);
        };
        let mut details = Dict::new();
        details.insert("realm".into(), Value::Str(self.name.clone()));
        details.insert("authid".into(), Value::Str(info.authid.clone()));
        details.insert("authrole".into(), Value::Str(info.authrole.clone()));
        details.insert("authmethod".into(), Value::Str(info.authmethod.clone()));
        details.insert("authprovider".into(), Value::Str(info.authprovider.clone()));
        if !authextra.is_empty() {
            details.insert("authextra".into(), Value::Dict(authextra));
        }
        details.insert("roles".into(), self.router_roles.clone());
        details.insert("agent".into(), Value::Str(AGENT.into()));
        if let Err(e) = self.out.send(sid, info.serializer, &Message::Welcome { session: sid, details }) {
            let abort = handshake::abort_message(uris::PROTOCOL_VIOLATION, "WELCOME could not be encoded");
            let _ = self.out.send(sid, info.serializer, &abort);
            self.out.close(sid);
            return Err(JoinError::Encode(e));
        }
        self.out.stats.sessions_joined += 1;
        self.sessions.insert(
            sid,
            Session {
                info,
                role,
                subscriptions: HashSet::new(),
                rpc: dealer::SessionRpc::new(hello_details),
                closing: false,
                detached: false,
                testaments: meta::Testaments::default(),
                remote: None,
            },
        );
        if !self.cluster.peers.is_empty() {
            if let Some(s) = self.sessions.get(&sid) {
                self.broadcast(PeerMsg::SessionJoin(cluster::remote_session(s)));
            }
        }
        Ok(())
    }

    /// Processes one decoded message from an established session. Messages
    /// for sessions the realm does not know are ignored.
    pub fn handle_message(&mut self, session: SessionId, msg: Message) {
        self.handle_message_inner(session, msg);
        self.flush_deferred();
    }

    fn handle_message_inner(&mut self, session: SessionId, msg: Message) {
        let Some(s) = self.sessions.get(&session) else {
            self.out.stats.ignored += 1;
            return;
        };
        if self.out.tracer.is_active() {
            self.out.tracer.record([trace::Traced {
                direction: trace::Direction::Rx,
                realm: &self.name,
                session: session.get(),
                authid: &s.info.authid,
                authrole: &s.info.authrole,
                code: msg.code(),
                uri: trace::uri_of(&msg),
            }]);
        }
        self.out.stats.messages_in += 1;
        // Counted per arm below with a constant type (no `msg.code()`).
        let counts = &*self.out.counts;
        if s.closing {
            counts.received(msg.code());
            // We sent GOODBYE: the reply ends the session, anything else is
            // ignored (session statechart, transition 14).
            if let Message::Goodbye { .. } = msg {
                self.forget_session(session);
                self.out.close(session);
            } else {
                self.out.stats.ignored += 1;
            }
            return;
        }
        match msg {
            Message::Publish { request, options, topic, payload } => {
                counts.received(code::PUBLISH);
                self.handle_publish(session, request, &options, topic, payload)
            }
            Message::Subscribe { request, options, topic } => {
                counts.received(code::SUBSCRIBE);
                self.handle_subscribe(session, request, &options, topic)
            }
            Message::Unsubscribe { request, subscription } => {
                counts.received(code::UNSUBSCRIBE);
                self.handle_unsubscribe(session, request, subscription)
            }
            Message::Call { request, options, procedure, payload } => {
                counts.received(code::CALL);
                if !self.handle_router_procedure(session, request, &options, &procedure, &payload) {
                    self.handle_call(session, request, &options, procedure, payload)
                }
            }
            Message::Register { request, options, procedure } => {
                counts.received(code::REGISTER);
                self.handle_register(session, request, &options, procedure)
            }
            Message::Unregister { request, registration } => {
                counts.received(code::UNREGISTER);
                self.handle_unregister(session, request, registration)
            }
            Message::Yield { request, options, payload } => {
                counts.received(code::YIELD);
                self.handle_yield(session, request, &options, payload)
            }
            Message::Error { request_type: code::INVOCATION, request, error, payload, .. } => {
                counts.received(code::ERROR);
                self.handle_invocation_error(session, request, error, payload)
            }
            Message::Error { request_type, .. } => {
                counts.received(code::ERROR);
                self.protocol_violation(
                    session,
                    &format!(
                        "ERROR for request type {} ({}): clients may only send ERROR for INVOCATION",
                        request_type,
                        wamp_proto::message::code_name(request_type)
                    ),
                )
            }
            Message::Goodbye { .. } => {
                counts.received(code::GOODBYE);
                let ser = s.info.serializer;
                self.detach(session);
                self.forget_session(session);
                let bye = Message::Goodbye { details: Dict::new(), reason: uris::GOODBYE_AND_OUT.to_owned() };
                let _ = self.out.send(session, ser, &bye);
                self.out.close(session);
            }
            Message::Abort { .. } => {
                counts.received(code::ABORT);
                // The client aborts: no reply is expected.
                self.detach(session);
                self.forget_session(session);
                self.out.close(session);
            }
            Message::Cancel { request, options } => {
                counts.received(code::CANCEL);
                self.handle_cancel(session, request, &options)
            }
            other @ (Message::Hello { .. }
            | Message::Welcome { .. }
            | Message::Challenge { .. }
            | Message::Authenticate { .. }
            | Message::Published { .. }
            | Message::Subscribed { .. }
            | Message::Unsubscribed { .. }
            | Message::Event { .. }
            | Message::EventReceived { .. }
            | Message::Result { .. }
            | Message::Registered { .. }
            | Message::Unregistered { .. }
            | Message::Invocation { .. }
            | Message::Interrupt { .. }) => {
                counts.received(other.code());
                self.protocol_violation(
                    session,
                    &format!("received {} message after session was established", other.name()),
                )
            }
        }
    }

    /// The transport of `session` is gone without GOODBYE: forget the
    /// session and clean up its subscriptions, registrations and calls.
    /// Nothing is queued to it (its callers may get `canceled` ERRORs).
    pub fn leave(&mut self, session: SessionId) {
        self.detach(session);
        self.forget_session(session);
        self.flush_deferred();
    }

    /// Aborts `session` from outside (undecodable message, a limit, ...):
    /// queues `ABORT {message: detail} reason` and a Close, and forgets the
    /// session. Unknown sessions are ignored (before joining, use
    /// [`handshake::encode_abort`]).
    pub fn abort(&mut self, session: SessionId, reason: &str, detail: &str) {
        if reason == uris::PROTOCOL_VIOLATION && self.sessions.contains_key(&session) {
            self.out.stats.protocol_violations += 1;
        }
        self.abort_session(session, reason, detail);
        self.flush_deferred();
    }

    /// Starts a router-initiated close: queues `GOODBYE {message} reason`
    /// (e.g. `wamp.close.system_shutdown`) and detaches the session's state
    /// at once. The client's GOODBYE reply then produces the Close; until
    /// then its other messages are ignored. If the peer never answers, the
    /// runtime times out and calls [`Realm::leave`].
    pub fn goodbye(&mut self, session: SessionId, reason: &str, message: &str) {
        self.goodbye_inner(session, reason, message);
        self.flush_deferred();
    }

    /// [`Realm::goodbye`] without routing the resulting meta events yet.
    /// Returns false if the session is unknown or already closing.
    fn goodbye_inner(&mut self, session: SessionId, reason: &str, message: &str) -> bool {
        let Some(s) = self.sessions.get(&session) else { return false };
        if s.closing {
            return false;
        }
        let ser = s.info.serializer;
        self.detach(session);
        let mut details = Dict::new();
        if !message.is_empty() {
            details.insert("message".into(), Value::Str(message.to_owned()));
        }
        let _ = self.out.send(session, ser, &Message::Goodbye { details, reason: reason.to_owned() });
        if let Some(s) = self.sessions.get_mut(&session) {
            s.closing = true;
        }
        true
    }

    /// Next output, in order. Call until `None` after each `join`/`handle_*`
    /// /`leave`/`abort`.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.queue.pop_front()
    }

    /// Aborts `session` for a protocol violation.
    fn protocol_violation(&mut self, session: SessionId, detail: &str) {
        self.out.stats.protocol_violations += 1;
        tracing::debug!(%session, realm = %self.name, detail, "protocol violation");
        self.abort_session(session, uris::PROTOCOL_VIOLATION, detail);
    }

    fn abort_session(&mut self, session: SessionId, reason: &str, detail: &str) {
        let Some(s) = self.sessions.get(&session) else { return };
        let ser = s.info.serializer;
        self.detach(session);
        self.forget_session(session);
        let _ = self.out.send(session, ser, &handshake::abort_message(reason, detail));
        self.out.close(session);
    }

    /// Removes every trace of `session` from subscriptions, registrations
    /// and calls in flight (the session entry itself stays). Callers of its
    /// pending invocations get ERROR `wamp.error.canceled`. Then its
    /// testaments (`detached`, then `destroyed` scope) and
    /// `wamp.session.on_leave` are queued for publication. Runs once per
    /// session.
    fn detach(&mut self, session: SessionId) {
        let Some(s) = self.sessions.get_mut(&session) else { return };
        if s.detached {
            return;
        }
        s.detached = true;
        let mut subscriptions: Vec<_> = s.subscriptions.drain().collect();
        let testaments = std::mem::take(&mut s.testaments);
        subscriptions.sort_unstable();
        for sub in subscriptions {
            self.unsubscribe_session(sub, session);
        }
        self.detach_rpc(session);
        let ghost = self.is_ghost(session);
        if !ghost {
            self.fire_testaments(testaments);
            self.session_left_meta(session);
            if !self.cluster.peers.is_empty() {
                self.broadcast(PeerMsg::SessionLeave(session));
            }
        }
    }

    /// Routes the router-originated publications queued while handling the
    /// current input (meta events, testaments). Called at the end of every
    /// public input method, so events follow the replies that caused them
    /// (as Crossbar, which publishes them on the next reactor turn) and
    /// sessions killed together never see each other's departure events.
    fn flush_deferred(&mut self) {
        while let Some(d) = self.deferred.pop_front() {
            self.route_deferred(d);
        }
        if !self.out.traced.is_empty() {
            self.flush_traced();
        }
    }

    /// Records the messages queued while a trace ran, with the identity of
    /// the session each went to.
    fn flush_traced(&mut self) {
        let traced = std::mem::take(&mut self.out.traced);
        let sessions = &self.sessions;
        let name = &self.name;
        self.out.tracer.record(traced.iter().map(|(sid, code, uri)| {
            let s = sessions.get(sid);
            trace::Traced {
                direction: trace::Direction::Tx,
                realm: name,
                session: sid.get(),
                authid: s.map_or("", |s| s.info.authid.as_str()),
                authrole: s.map_or("", |s| s.info.authrole.as_str()),
                code: *code,
                uri: uri.as_deref(),
            }
        }));
        // Keep the buffer's memory for the next input.
        let mut traced = traced;
        traced.clear();
        if self.out.traced.is_empty() {
            self.out.traced = traced;
        }
    }

    /// Traces messages into `tracer` (the worker's, shared by its realms)
    /// instead of the realm's own idle one.
    pub fn set_tracer(&mut self, tracer: std::sync::Arc<trace::Tracer>) {
        self.out.tracer = tracer;
    }
}

/// The hash behind subscription and registration ids (`kind` `b's'` or
/// `b'r'`): FNV-1a over kind, policy and URI, so every worker of a cluster
/// gives the same (policy, URI) the same id.
pub(crate) fn cluster_id_hash(kind: u8, policy: MatchPolicy, uri: &str) -> u64 {
    let p = match policy {
        MatchPolicy::Exact => b'e',
        MatchPolicy::Prefix => b'p',
        MatchPolicy::Wildcard => b'w',
    };
    // FNV-1a over kind, policy and URI, spread by the SplitMix64 finalizer
    // (the dealer's sharding hashes).
    dealer::mix(dealer::fnv1a_from(dealer::fnv1a_from(0xcbf2_9ce4_8422_2325, &[kind, p, 0]), uri.as_bytes()))
}

/// `WELCOME.Details.agent`.
pub const AGENT: &str = concat!("Junction-", env!("CARGO_PKG_VERSION"));

/// `WELCOME.Details.roles`: exactly the implemented features (the meta API
/// features only when it is enabled).
fn router_roles(meta: &MetaConfig) -> Value {
    fn features(names: &[&str]) -> Value {
        let mut f = Dict::new();
        for n in names {
            f.insert((*n).to_owned(), Value::Bool(true));
        }
        let mut role = Dict::new();
        role.insert("features".to_owned(), Value::Dict(f));
        Value::Dict(role)
    }
    let mut roles = Dict::new();
    let mut broker = vec![
        "publisher_exclusion",
        "publisher_identification",
        "subscriber_blackwhite_listing",
        "pattern_based_subscription",
        "event_retention",
        "event_history",
        "payload_passthru_mode",
        "subscription_revocation",
    ];
    let mut dealer = vec![
        "caller_identification",
        "progressive_call_results",
        "progressive_call_invocations",
        "call_canceling",
        "call_timeout",
        "pattern_based_registration",
        "shared_registration",
        "sharded_registration",
        "registration_revocation",
    ];
    if meta.enabled {
        broker.extend(["session_meta_api", "subscription_meta_api"]);
        dealer.extend(["session_meta_api", "registration_meta_api", "testament_meta_api"]);
    }
    roles.insert("broker".to_owned(), features(&broker));
    roles.insert("dealer".to_owned(), features(&dealer));
    Value::Dict(roles)
}

/// Loose WAMP URI check with non-empty components (the router default):
/// `^([^\s\.#]+\.)*([^\s\.#]+)$`.
pub(crate) fn uri_ok(uri: &str) -> bool {
    wamp_proto::uri::is_valid_uri(uri, false, false)
}

/// A boolean option; anything but a boolean counts as absent.
fn opt_bool(options: &Dict, key: &str) -> Option<bool> {
    options.get(key).and_then(Value::as_bool)
}

/// Peer-supplied strings echoed in error messages are cut to a sane length.
fn clip(s: &str) -> &str {
    const MAX: usize = 256;
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
