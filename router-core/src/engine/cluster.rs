//! # Router clusters: one realm over several router workers (sans-IO core)
//!
//! A realm can be served by several router workers (processes, possibly on
//! several machines) that are linked to each other in a **full mesh**: one
//! link per pair of workers, each link carrying the typed [`PeerMsg`]s of
//! this module. The runtime owns the links (sockets, proof of identity,
//! reconnects, ping); this module is the state machine on either end of
//! them, driven with [`Realm::peer_up`], [`Realm::handle_peer`] and
//! [`Realm::peer_down`], and answering through
//! [`super::Transmit::Peer`]. It does no I/O and has no clock.
//!
//! It is **not** a membership or discovery protocol (which workers form
//! the cluster is configuration, or the master's decision), and it never
//! relays: a message crosses at most one link, so nothing can loop (the
//! NATS route model).
//!
//! ## Ghosts
//! Every session of a peer worker is mirrored here as a **ghost**: an entry
//! in the realm's session table marked with the peer it lives on
//! ([`PeerMsg::SessionJoin`] / [`PeerMsg::SessionLeave`]). Ghosts make the
//! session meta API (`wamp.session.count/list/get/kill*`) and session-id
//! black/whitelisting cluster-wide with no special cases. A ghost never
//! sends anything itself; what the local engine sends *to* a ghost
//! (INVOCATION, INTERRUPT, GOODBYE of a kill, revocations) leaves as
//! [`PeerMsg::ToSession`] for the worker that owns the session, and that
//! worker's answers for it (YIELD, ERROR) come back as
//! [`PeerMsg::FromSession`] and are handled as if the ghost had sent them.
//! Meta events about ghosts are not published here: the session's own
//! worker publishes them, and they reach this worker as ordinary
//! publications.
//!
//! ## Interest, not flooding
//! * **Subscriptions**: a peer announces each of its sessions' subscriptions
//!   ([`PeerMsg::Subscribe`] / [`PeerMsg::Unsubscribe`]). They are kept on
//!   the local subscription of the same (policy, topic), which has the same
//!   id on every worker (ids are a hash of policy and topic, see the broker),
//!   as *remote subscribers* with a per-peer count. A publication accepted
//!   here is routed to local subscribers and then sent **once per peer** that
//!   has at least one matching remote subscriber ([`PeerMsg::Publish`]),
//!   with the publication id, the EVENT details computed here (publisher
//!   disclosure, passthru options), the black/whitelists and the payload
//!   exactly as received (never re-serialized per subscriber). The peer
//!   fans out locally on its own serialize-once path and never forwards it
//!   further. Publications with `retain: true` go to every peer, so every
//!   worker holds the retained event.
//! * **Registrations**: a peer announces its callees ([`PeerMsg::Register`]
//!   / [`PeerMsg::Unregister`]); the ghost becomes a callee of the local
//!   registration (same id everywhere, as for subscriptions), so shared
//!   registration policies (`roundrobin`, `random`, `first`, `last`,
//!   `sharded`) choose among the callees of the whole cluster, and pattern
//!   precedence is computed over all of them. A call is sent only to the
//!   worker of the chosen callee. Timeouts, cancel modes, progressive
//!   results and invocations and caller disclosure are all handled by the
//!   caller's worker exactly as for a local callee; the callee's worker
//!   re-issues the INVOCATION under its own invocation id and relays the
//!   callee's replies.
//!
//! ## Convergence and faults
//! [`Realm::peer_up`] sends the whole local state (sessions, subscriptions,
//! registrations) followed by [`PeerMsg::Synced`]; afterwards every change
//! is sent as it happens, over the same ordered link. [`Realm::peer_down`]
//! removes the peer's ghosts with everything they held: calls in flight to
//! callees behind the link fail at once with `wamp.error.canceled`, and
//! invocations of local callees made for the peer's callers are
//! interrupted (`killnowait`, if the callee supports canceling) and
//! forgotten. When the link returns, the full state is exchanged again.
//!
//! A registration clash that only a race or a healed partition can produce
//! (two `single` registrations of one URI, or different policies, on two
//! workers) is settled identically on every worker from session ids alone:
//! the side with the lowest callee session id keeps the procedure, the
//! other side's local callees are revoked (`UNREGISTERED` with reason
//! `wamp.error.procedure_already_exists`) and its ghosts dropped; a losing
//! remote callee is ignored and counted in [`ClusterStats::conflicts`].

use std::collections::HashMap;

use bytes::Bytes;
use thiserror::Error;
use wamp_proto::{code, Dict, Message, Payload, PayloadFormat, PublicationId, RequestId, SessionId, Value};

use super::{dealer, meta, uris, MatchPolicy, Realm, Serializer, Session, SessionInfo, Transmit};

/// A peer worker as the realm knows it (assigned by the runtime, one per
/// live link).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u32);

impl std::fmt::Display for PeerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "peer{}", self.0)
    }
}

/// A session of a peer worker, as announced to the others.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteSession {
    pub session: SessionId,
    pub authid: String,
    pub authrole: String,
    pub authmethod: String,
    pub authprovider: String,
    /// Transport details (for the meta API).
    pub transport: Dict,
    /// The session's serializer (for the meta API).
    pub serializer: Serializer,
    /// The `roles` of its HELLO details (the features the local dealer needs:
    /// call canceling, progressive invocations, revocation).
    pub roles: Dict,
}

/// One message between the workers of a cluster (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub enum PeerMsg {
    SessionJoin(RemoteSession),
    SessionLeave(SessionId),
    Subscribe {
        session: SessionId,
        policy: MatchPolicy,
        topic: String,
    },
    Unsubscribe {
        session: SessionId,
        policy: MatchPolicy,
        topic: String,
    },
    Register {
        session: SessionId,
        policy: MatchPolicy,
        procedure: String,
        invoke: String,
    },
    Unregister {
        session: SessionId,
        policy: MatchPolicy,
        procedure: String,
    },
    /// The initial state has been sent.
    Synced,
    /// Link-level, from the worker that decides which link a pair of
    /// workers keeps (the lower instance id): this link is the one. First
    /// on the link; the engine ignores it.
    Admitted,
    /// A publication accepted by the sender.
    Publish {
        publication: PublicationId,
        topic: String,
        /// EVENT details as for an exact subscription.
        details: Dict,
        /// The black/whitelisting options of the PUBLISH (only those keys).
        receivers: Dict,
        retain: bool,
        payload: Payload,
    },
    /// A message for the receiver's session `session`.
    ToSession {
        session: SessionId,
        msg: Message,
    },
    /// A message from the sender's session `session` (to its ghost).
    FromSession {
        session: SessionId,
        msg: Message,
    },
}

/// A peer message that could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PeerError {
    #[error("peer message truncated")]
    Truncated,
    #[error("unknown peer message kind {0}")]
    UnknownKind(u8),
    #[error("bad peer message: {0}")]
    Bad(String),
}

/// Cluster counters of one realm.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Publications sent to peers (one per peer).
    pub publications_forwarded: u64,
    /// Publications received from peers.
    pub publications_received: u64,
    /// Invocations received from peers' callers.
    pub invocations_received: u64,
    /// Remote registrations ignored because they conflict with a local one.
    pub conflicts: u64,
    /// Peer messages that referred to unknown sessions or made no sense.
    pub ignored: u64,
}

/// The cluster state of a realm.
#[derive(Default)]
pub(super) struct Cluster {
    /// Links that are up.
    pub(super) peers: Vec<PeerId>,
    /// Invocations of local callees made for a peer's caller:
    /// (peer, the peer's invocation id) → (local callee, local invocation id).
    pub(super) calls: HashMap<(PeerId, RequestId), (SessionId, RequestId)>,
    pub(super) stats: ClusterStats,
}

const K_JOIN: u8 = 1;
const K_LEAVE: u8 = 2;
const K_SUB: u8 = 3;
const K_UNSUB: u8 = 4;
const K_REG: u8 = 5;
const K_UNREG: u8 = 6;
const K_SYNCED: u8 = 7;
const K_PUBLISH: u8 = 8;
const K_TO: u8 = 9;
const K_FROM: u8 = 10;
const K_ADMITTED: u8 = 11;

fn policy_code(p: MatchPolicy) -> u64 {
    match p {
        MatchPolicy::Exact => 0,
        MatchPolicy::Prefix => 1,
        MatchPolicy::Wildcard => 2,
    }
}

fn policy_from(v: Option<&Value>) -> Result<MatchPolicy, PeerError> {
    match v.and_then(Value::as_u64) {
        Some(0) => Ok(MatchPolicy::Exact),
        Some(1) => Ok(MatchPolicy::Prefix),
        Some(2) => Ok(MatchPolicy::Wildcard),
        _ => Err(PeerError::Bad("bad match policy".into())),
    }
}

/// The serializer that carries `payload` without transcoding it.
fn carrier(payload: &Payload) -> Serializer {
    match payload {
        Payload::Raw { format: PayloadFormat::Json, .. } => Serializer::Json,
        Payload::Raw { format: PayloadFormat::Cbor, .. } => Serializer::Cbor,
        _ => Serializer::Msgpack,
    }
}

fn message_payload(msg: &Message) -> Option<&Payload> {
    match msg {
        Message::Invocation { payload, .. }
        | Message::Yield { payload, .. }
        | Message::Error { payload, .. }
        | Message::Publish { payload, .. } => Some(payload),
        _ => None,
    }
}

/// A control body: `PUBLISH [request: session, options, topic]` in MessagePack.
fn control(session: SessionId, options: Dict, topic: String) -> Message {
    Message::Publish { request: RequestId::from_valid(session.get()), options, topic, payload: Payload::EMPTY }
}

impl PeerMsg {
    /// Encodes the message as one link frame body: a kind byte, the
    /// serializer's RawSocket id, then one WAMP message in that serializer
    /// (the serializer matching a raw payload's format, so payloads are
    /// spliced, never transcoded).
    pub fn encode(&self) -> Result<Bytes, wamp_proto::EncodeError> {
        let mut out = Vec::new();
        self.encode_into(&mut out)?;
        Ok(Bytes::from(out))
    }

    /// [`PeerMsg::encode`], appending to `out` (the link's outbound buffer:
    /// no intermediate copy). On error `out` is unchanged.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), wamp_proto::EncodeError> {
        let start = out.len();
        let (kind, ser, msg) = match self {
            PeerMsg::SessionJoin(s) => {
                let mut o = Dict::new();
                o.insert("authid".into(), Value::Str(s.authid.clone()));
                o.insert("authrole".into(), Value::Str(s.authrole.clone()));
                o.insert("authmethod".into(), Value::Str(s.authmethod.clone()));
                o.insert("authprovider".into(), Value::Str(s.authprovider.clone()));
                o.insert("transport".into(), Value::Dict(s.transport.clone()));
                o.insert("serializer".into(), Value::Str(s.serializer.name().into()));
                o.insert("roles".into(), Value::Dict(s.roles.clone()));
                (K_JOIN, Serializer::Msgpack, control(s.session, o, "join".into()))
            }
            PeerMsg::SessionLeave(s) => (K_LEAVE, Serializer::Msgpack, control(*s, Dict::new(), "leave".into())),
            PeerMsg::Subscribe { session, policy, topic } | PeerMsg::Unsubscribe { session, policy, topic } => {
                let mut o = Dict::new();
                o.insert("match".into(), Value::UInt(policy_code(*policy)));
                let kind = if matches!(self, PeerMsg::Subscribe { .. }) { K_SUB } else { K_UNSUB };
                (kind, Serializer::Msgpack, control(*session, o, topic.clone()))
            }
            PeerMsg::Register { session, policy, procedure, invoke } => {
                let mut o = Dict::new();
                o.insert("match".into(), Value::UInt(policy_code(*policy)));
                o.insert("invoke".into(), Value::Str(invoke.clone()));
                (K_REG, Serializer::Msgpack, control(*session, o, procedure.clone()))
            }
            PeerMsg::Unregister { session, policy, procedure } => {
                let mut o = Dict::new();
                o.insert("match".into(), Value::UInt(policy_code(*policy)));
                (K_UNREG, Serializer::Msgpack, control(*session, o, procedure.clone()))
            }
            PeerMsg::Synced => {
                (K_SYNCED, Serializer::Msgpack, control(SessionId::from_valid(1), Dict::new(), "synced".into()))
            }
            PeerMsg::Admitted => {
                (K_ADMITTED, Serializer::Msgpack, control(SessionId::from_valid(1), Dict::new(), "admitted".into()))
            }
            PeerMsg::Publish { publication, topic, details, receivers, retain, payload } => {
                let mut o = receivers.clone();
                o.insert("_details".into(), Value::Dict(details.clone()));
                if *retain {
                    o.insert("retain".into(), Value::Bool(true));
                }
                let msg = Message::Publish {
                    request: RequestId::from_valid(publication.get()),
                    options: o,
                    topic: topic.clone(),
                    payload: payload.clone(),
                };
                (K_PUBLISH, carrier(payload), msg)
            }
            PeerMsg::ToSession { session, msg } | PeerMsg::FromSession { session, msg } => {
                let kind = if matches!(self, PeerMsg::ToSession { .. }) { K_TO } else { K_FROM };
                let ser = message_payload(msg).map_or(Serializer::Msgpack, carrier);
                out.push(kind);
                out.push(ser.rawsocket_id());
                out.extend_from_slice(&session.get().to_be_bytes());
                return ser.encode_into(msg, out).inspect_err(|_| out.truncate(start));
            }
        };
        out.push(kind);
        out.push(ser.rawsocket_id());
        ser.encode_into(&msg, out).inspect_err(|_| out.truncate(start))
    }

    /// Decodes one frame body (payloads stay raw slices of `frame`).
    pub fn decode(frame: &Bytes) -> Result<PeerMsg, PeerError> {
        let (&kind, rest) = frame.split_first().ok_or(PeerError::Truncated)?;
        let &ser_id = rest.first().ok_or(PeerError::Truncated)?;
        let ser = Serializer::from_rawsocket_id(ser_id)
            .ok_or_else(|| PeerError::Bad(format!("unknown serializer id {ser_id}")))?;
        let bad = |e: wamp_proto::DecodeError| PeerError::Bad(e.to_string());
        if kind == K_TO || kind == K_FROM {
            let sid = frame.get(2..10).ok_or(PeerError::Truncated)?;
            let sid = u64::from_be_bytes(sid.try_into().map_err(|_| PeerError::Truncated)?);
            let session = SessionId::new(sid).ok_or_else(|| PeerError::Bad("session id 0".into()))?;
            let msg = ser.decode(&frame.slice(10..)).map_err(bad)?;
            return Ok(if kind == K_TO {
                PeerMsg::ToSession { session, msg }
            } else {
                PeerMsg::FromSession { session, msg }
            });
        }
        let Message::Publish { request, options, topic, payload } = ser.decode(&frame.slice(2..)).map_err(bad)? else {
            return Err(PeerError::Bad("expected a PUBLISH carrier".into()));
        };
        let session = SessionId::from_valid(request.get());
        let s = |k: &str| -> Result<String, PeerError> {
            options
                .get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| PeerError::Bad(format!("missing '{k}'")))
        };
        let d = |k: &str| options.get(k).and_then(Value::as_dict).cloned().unwrap_or_default();
        Ok(match kind {
            K_JOIN => {
                let ser_name = s("serializer")?;
                PeerMsg::SessionJoin(RemoteSession {
                    session,
                    authid: s("authid")?,
                    authrole: s("authrole")?,
                    authmethod: s("authmethod")?,
                    authprovider: s("authprovider")?,
                    transport: d("transport"),
                    serializer: Serializer::from_name(&ser_name)
                        .ok_or_else(|| PeerError::Bad(format!("unknown serializer '{ser_name}'")))?,
                    roles: d("roles"),
                })
            }
            K_LEAVE => PeerMsg::SessionLeave(session),
            K_SUB => PeerMsg::Subscribe { session, policy: policy_from(options.get("match"))?, topic },
            K_UNSUB => PeerMsg::Unsubscribe { session, policy: policy_from(options.get("match"))?, topic },
            K_REG => PeerMsg::Register {
                session,
                policy: policy_from(options.get("match"))?,
                procedure: topic,
                invoke: s("invoke")?,
            },
            K_UNREG => PeerMsg::Unregister { session, policy: policy_from(options.get("match"))?, procedure: topic },
            K_SYNCED => PeerMsg::Synced,
            K_ADMITTED => PeerMsg::Admitted,
            K_PUBLISH => {
                let mut receivers = options;
                let details = match receivers.swap_remove("_details") {
                    Some(Value::Dict(d)) => d,
                    _ => Dict::new(),
                };
                let retain = receivers.swap_remove("retain").and_then(|v| v.as_bool()).unwrap_or(false);
                PeerMsg::Publish {
                    publication: PublicationId::from_valid(request.get()),
                    topic,
                    details,
                    receivers,
                    retain,
                    payload,
                }
            }
            k => return Err(PeerError::UnknownKind(k)),
        })
    }
}

/// The black/whitelisting keys of PUBLISH options forwarded with a
/// publication.
pub(super) const RECEIVER_KEYS: [&str; 6] =
    ["eligible", "exclude", "eligible_authid", "exclude_authid", "eligible_authrole", "exclude_authrole"];

impl Realm {
    /// The cluster counters.
    pub fn cluster_stats(&self) -> ClusterStats {
        self.cluster.stats
    }

    /// Number of sessions of this realm that live on peer workers.
    pub fn ghost_count(&self) -> usize {
        self.out.ghosts.len()
    }

    /// True if `sid` is a ghost (a session of a peer worker).
    pub(super) fn is_ghost(&self, sid: SessionId) -> bool {
        !self.out.ghosts.is_empty() && self.out.ghosts.contains_key(&sid)
    }

    /// Queues `msg` for every peer that is up.
    pub(super) fn broadcast(&mut self, msg: PeerMsg) {
        for &peer in &self.cluster.peers {
            self.out.queue.push_back(Transmit::Peer { peer, msg: msg.clone() });
        }
    }

    /// A link to `peer` is up: sends it this worker's whole state (local
    /// sessions, their subscriptions and registrations), then
    /// [`PeerMsg::Synced`]. Later changes follow as they happen.
    pub fn peer_up(&mut self, peer: PeerId) {
        if self.cluster.peers.contains(&peer) {
            return;
        }
        self.cluster.peers.push(peer);
        let mut sids: Vec<SessionId> =
            self.sessions.values().filter(|s| s.remote.is_none() && !s.closing).map(|s| s.info.session).collect();
        sids.sort_unstable();
        let mut msgs = Vec::new();
        for sid in &sids {
            if let Some(s) = self.sessions.get(sid) {
                msgs.push(PeerMsg::SessionJoin(remote_session(s)));
            }
        }
        for sub in self.broker.iter() {
            for &sid in sub.subscribers.keys() {
                msgs.push(PeerMsg::Subscribe { session: sid, policy: sub.policy, topic: sub.topic.clone() });
            }
        }
        for reg in self.dealer.registrations() {
            for &sid in reg.callees {
                if self.sessions.get(&sid).is_some_and(|s| s.remote.is_none()) {
                    msgs.push(PeerMsg::Register {
                        session: sid,
                        policy: reg.policy,
                        procedure: reg.uri.to_owned(),
                        invoke: reg.invoke.to_owned(),
                    });
                }
            }
        }
        msgs.push(PeerMsg::Synced);
        for msg in msgs {
            self.out.queue.push_back(Transmit::Peer { peer, msg });
        }
    }

    /// The link to `peer` is gone: its ghosts leave with everything they
    /// held (calls in flight to them fail with `wamp.error.canceled`), and
    /// invocations of local callees for its callers are interrupted and
    /// forgotten.
    pub fn peer_down(&mut self, peer: PeerId) {
        self.cluster.peers.retain(|p| *p != peer);
        let mut ghosts: Vec<SessionId> = self.out.ghosts.iter().filter(|(_, p)| **p == peer).map(|(s, _)| *s).collect();
        ghosts.sort_unstable();
        for g in ghosts {
            self.remove_ghost(g);
        }
        let mut calls: Vec<(SessionId, RequestId)> =
            self.cluster.calls.iter().filter(|((p, _), _)| *p == peer).map(|(_, v)| *v).collect();
        calls.sort_unstable();
        for (callee, inv) in calls {
            self.peer_call_gone(callee, inv);
        }
        self.flush_deferred();
    }

    /// Handles one message from `peer`; then drain [`Realm::poll_transmit`].
    pub fn handle_peer(&mut self, peer: PeerId, msg: PeerMsg) {
        self.handle_peer_inner(peer, msg);
        self.flush_deferred();
    }

    fn handle_peer_inner(&mut self, peer: PeerId, msg: PeerMsg) {
        match msg {
            PeerMsg::SessionJoin(rs) => self.add_ghost(peer, rs),
            PeerMsg::SessionLeave(sid) => {
                if self.out.ghosts.get(&sid) == Some(&peer) {
                    self.remove_ghost(sid);
                } else {
                    self.cluster.stats.ignored += 1;
                }
            }
            PeerMsg::Subscribe { session, policy, topic } => {
                if self.out.ghosts.get(&session) != Some(&peer) {
                    self.cluster.stats.ignored += 1;
                    return;
                }
                if let Some(id) = self.broker.subscribe_remote(policy, topic, session, peer, self.wall_clock) {
                    if let Some(s) = self.sessions.get_mut(&session) {
                        s.subscriptions.insert(id);
                    }
                }
            }
            PeerMsg::Unsubscribe { session, policy, topic } => {
                let Some(id) = self.broker.lookup(policy, &topic).map(|s| s.id) else {
                    self.cluster.stats.ignored += 1;
                    return;
                };
                let Some(s) = self.sessions.get_mut(&session) else { return };
                if s.remote == Some(peer) && s.subscriptions.remove(&id) {
                    self.unsubscribe_session(id, session);
                }
            }
            PeerMsg::Register { session, policy, procedure, invoke } => {
                if self.out.ghosts.get(&session) != Some(&peer) {
                    tracing::debug!(%session, %peer, owner = ?self.out.ghosts.get(&session), procedure = %procedure,
                        "peer registration for a session that is not its ghost: ignored");
                    self.cluster.stats.ignored += 1;
                    return;
                }
                if !self.register_ghost(session, policy, procedure, &invoke) {
                    self.cluster.stats.conflicts += 1;
                }
            }
            PeerMsg::Unregister { session, policy, procedure } => {
                let Some(id) = self.dealer.lookup_exact(policy, &procedure) else {
                    self.cluster.stats.ignored += 1;
                    return;
                };
                if self.out.ghosts.get(&session) == Some(&peer) {
                    self.unregister_ghost(session, id);
                }
            }
            PeerMsg::Synced | PeerMsg::Admitted => {}
            PeerMsg::Publish { publication, topic, details, receivers, retain, payload } => {
                self.cluster.stats.publications_received += 1;
                let receivers = match super::broker::Receivers::parse(&receivers) {
                    Ok(r) => r,
                    Err(_) => {
                        self.cluster.stats.ignored += 1;
                        return;
                    }
                };
                self.route_from_peer(topic, details, receivers, retain, publication, &payload);
            }
            PeerMsg::ToSession { session, msg } => self.deliver_to_local_session(peer, session, msg),
            PeerMsg::FromSession { session, msg } => {
                if self.out.ghosts.get(&session) != Some(&peer) {
                    self.cluster.stats.ignored += 1;
                    return;
                }
                match msg {
                    Message::Yield { request, options, payload } => {
                        self.handle_yield(session, request, &options, payload)
                    }
                    Message::Error { request_type: code::INVOCATION, request, error, payload, .. } => {
                        self.handle_invocation_error(session, request, error, payload)
                    }
                    _ => self.cluster.stats.ignored += 1,
                }
            }
        }
    }

    fn add_ghost(&mut self, peer: PeerId, rs: RemoteSession) {
        tracing::debug!(session = %rs.session, %peer, realm = %self.name, "ghost joins");
        if self.sessions.contains_key(&rs.session) {
            // A session id taken twice in the cluster (or announced twice).
            tracing::warn!(session = %rs.session, %peer, realm = %self.name, "peer announced a session id already in use");
            self.cluster.stats.ignored += 1;
            return;
        }
        let role = self.role_index.get(&rs.authrole).copied().unwrap_or(0);
        let mut hello = Dict::new();
        hello.insert("roles".into(), Value::Dict(rs.roles.clone()));
        let sid = rs.session;
        let info = SessionInfo {
            session: sid,
            serializer: rs.serializer,
            authid: rs.authid,
            authrole: rs.authrole,
            authmethod: rs.authmethod,
            authprovider: rs.authprovider,
            transport: rs.transport,
        };
        self.sessions.insert(
            sid,
            Session {
                info,
                role,
                subscriptions: Default::default(),
                rpc: dealer::SessionRpc::new(&hello),
                closing: false,
                detached: false,
                testaments: meta::Testaments::default(),
                remote: Some(peer),
            },
        );
        self.out.ghosts.insert(sid, peer);
    }

    /// Forgets ghost `sid` with its subscriptions, registrations and the
    /// calls in flight to it.
    fn remove_ghost(&mut self, sid: SessionId) {
        tracing::debug!(session = %sid, peer = ?self.out.ghosts.get(&sid), realm = %self.name, "ghost leaves");
        self.detach(sid);
        self.forget_session(sid);
        self.out.ghosts.remove(&sid);
    }

    /// A message from a peer's dealer or meta API for local session `sid`.
    fn deliver_to_local_session(&mut self, peer: PeerId, sid: SessionId, msg: Message) {
        let local = self.sessions.get(&sid).is_some_and(|s| s.remote.is_none());
        match msg {
            Message::Invocation { request, registration, details, payload } => {
                if !local {
                    // The callee left meanwhile: tell the caller's worker.
                    let err = Message::Error {
                        request_type: code::INVOCATION,
                        request,
                        details: Dict::new(),
                        error: uris::CANCELED.into(),
                        payload: Payload::values(Some(vec![Value::Str("callee disconnected".into())]), None),
                    };
                    self.out
                        .queue
                        .push_back(Transmit::Peer { peer, msg: PeerMsg::FromSession { session: sid, msg: err } });
                    return;
                }
                self.cluster.stats.invocations_received += 1;
                self.invoke_for_peer(peer, sid, request, registration, details, payload);
            }
            Message::Interrupt { request, options } => {
                let Some(&(callee, inv)) = self.cluster.calls.get(&(peer, request)) else {
                    self.cluster.stats.ignored += 1;
                    return;
                };
                let mode = options.get("mode").and_then(Value::as_str).unwrap_or("killnowait").to_owned();
                self.interrupt_for_peer(callee, inv, options, mode == "kill");
            }
            Message::Goodbye { details, reason } if local => {
                let message = details.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
                self.goodbye_inner(sid, &reason, &message);
            }
            Message::Abort { details, reason } if local => {
                let message = details.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
                self.abort_session(sid, &reason, &message);
            }
            Message::Unregistered { details: Some(d), .. } if local => {
                let reason = d.get("reason").and_then(Value::as_str).map(str::to_owned);
                if let Some(reg) =
                    d.get("registration").and_then(Value::as_u64).and_then(wamp_proto::RegistrationId::new)
                {
                    self.revoke_callee_inner(reg, sid, reason.as_deref());
                }
            }
            Message::Unsubscribed { details: Some(d), .. } if local => {
                let reason = d.get("reason").and_then(Value::as_str).map(str::to_owned);
                if let Some(sub) =
                    d.get("subscription").and_then(Value::as_u64).and_then(wamp_proto::SubscriptionId::new)
                {
                    self.revoke_subscriber_inner(sub, sid, reason.as_deref());
                }
            }
            _ => self.cluster.stats.ignored += 1,
        }
    }
}

/// How a local session is announced to peers.
pub(super) fn remote_session(s: &Session) -> RemoteSession {
    RemoteSession {
        session: s.info.session,
        authid: s.info.authid.clone(),
        authrole: s.info.authrole.clone(),
        authmethod: s.info.authmethod.clone(),
        authprovider: s.info.authprovider.clone(),
        transport: s.info.transport.clone(),
        serializer: s.info.serializer,
        roles: s.rpc.features.as_roles(),
    }
}
