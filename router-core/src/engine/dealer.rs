//! # Routed RPC: the dealer (Basic Profile plus the Advanced Profile RPC features)
//!
//! Registrations, calls, invocations and their results for one realm. All
//! state of a call lives in two places: the callee's table of pending
//! invocations (keyed by invocation id, the callee's reply path) and the
//! caller's table of calls in flight (keyed by the CALL request id, used by
//! CANCEL, progressive CALL continuations, the pending-call limit and caller
//! departure). Both are per session ([`SessionRpc`]), so a call touches no
//! realm-wide table except the registration lookup and, with a timeout, the
//! timer set.
//!
//! ## Features (announced in `WELCOME.roles.dealer.features`)
//! * **caller_identification**: the caller is disclosed in INVOCATION details
//!   (`caller`, `caller_authid`, `caller_authrole`) when it asked with
//!   `disclose_me: true` or when its role's permission says
//!   `disclose.caller`.
//! * **progressive_call_results**: `CALL.Options.receive_progress` is passed
//!   on as `INVOCATION.Details.receive_progress`; `YIELD` with
//!   `progress: true` becomes `RESULT` with `progress: true` and the call
//!   stays pending until the final YIELD (or ERROR). Progressive YIELDs for a
//!   caller that did not ask for them are dropped (counted as ignored).
//! * **progressive_call_invocations**: a CALL with `progress: true` opens a
//!   stream on its request id; further CALLs with the same request id go to
//!   the same callee's invocation (same invocation id), with the details of
//!   the first CALL (options are frozen, spec) plus `progress: true`, until a
//!   CALL without `progress`. The caller must have announced the feature
//!   (else protocol violation, spec); a callee that did not announce both
//!   `progressive_call_invocations` and `call_canceling` gets none: the
//!   caller receives `wamp.error.feature_not_supported`. A CALL reusing the
//!   request id of a call in flight that is not streaming is a protocol
//!   violation; a continuation for a stream the router already ended (the
//!   call was answered, canceled or timed out) is discarded silently — the
//!   last 16 such ids are remembered per caller.
//! * **call_canceling**: `CANCEL.Options.mode` `skip` (ERROR
//!   `wamp.error.canceled` at once, the callee is not told, its reply is
//!   dropped), `kill` (INTERRUPT to the callee; its reply — RESULT or ERROR
//!   — ends the call), `killnowait` (INTERRUPT and ERROR `canceled` at
//!   once). The default mode is `killnowait`. A callee that did not announce
//!   `call_canceling` never receives INTERRUPT: kill and killnowait fall
//!   back to skip (spec). A `kill` the callee does not answer within
//!   [`DealerConfig::kill_grace`] ends with ERROR `canceled`, so a stuck
//!   callee never hangs its caller. CANCEL for a call that is no longer
//!   pending is ignored (it raced with the reply); an unknown mode is
//!   answered with ERROR `wamp.error.invalid_argument` (request type
//!   CANCEL) and the call continues.
//! * **call_timeout**: `CALL.Options.timeout` (milliseconds, 0 = none) — or
//!   [`DealerConfig::default_call_timeout`], capped by
//!   [`DealerConfig::max_call_timeout`] — is enforced by the router: the
//!   caller gets ERROR `wamp.error.timeout`, a canceling-capable callee gets
//!   `INTERRUPT {mode: "killnowait", reason: "wamp.error.timeout"}`, and a
//!   late reply is dropped. The timeout is not forwarded to the callee.
//! * **pattern_based_registration**: `REGISTER.Options.match` `exact`
//!   (default), `prefix` (string prefix, `com.app.` or `com.app`), `wildcard`
//!   (empty components match one component). A call is routed to exactly one
//!   registration, precedence per spec: exact, else the longest prefix, else
//!   the wildcard whose wildcards come latest (the positions of the empty
//!   components compared left to right; a pattern with no further wildcard
//!   wins a tie). INVOCATION details carry `procedure` (the called URI) for
//!   pattern matches. Procedures under `wamp.` are never routed to pattern
//!   registrations (they belong to the router).
//! * **shared_registration**: `REGISTER.Options.invoke` `single` (default),
//!   `roundrobin`, `random`, `first`, `last` (in registration order). A
//!   second REGISTER for the same URI and match policy fails (checks in
//!   Crossbar's order) with `procedure_already_exists` if the existing
//!   registration is `single`, with
//!   `wamp.error.procedure_exists_with_different_invocation_policy` (Crossbar's
//!   URI) if the policies differ — also when the newcomer asks for
//!   `single` — with `procedure_already_exists` if the session is already a
//!   callee, and otherwise joins the registration (same id). The
//!   registration lives until its last callee leaves. Registrations and
//!   removals produce `wamp.registration.*` meta events (see `meta`).
//! * **sharded_registration** (Junction-specific, see below).
//! * **registration_revocation**: [`Realm::revoke_registration`] removes a
//!   registration; callees that announced `registration_revocation` get
//!   `UNREGISTERED [0, {registration, reason}]` (others are not told,
//!   spec). Calls already invoked still complete. [`Realm::revoke_callee`]
//!   (also the meta procedure `wamp.registration.remove_callee`) does the
//!   same for one callee.
//!
//! ## Sharded registrations
//! A callee registers with `invoke: "sharded"`; every callee of the
//! procedure must use the same policy. A caller passes a routing key in
//! `CALL.Options.rkey` (the option name from the WAMP spec's sharded
//! registration sketch): a string, or an integer. The callee is chosen by
//! rendezvous (highest-random-weight) hashing: each callee's score is a
//! 64-bit mix of the key's hash (FNV-1a over the UTF-8 string, or over the
//! little-endian 8 bytes of an integer) and the callee's session id, and the
//! highest score wins. The same key always reaches the same callee while the
//! set of callees is unchanged, and when a callee joins or leaves only the
//! keys it wins or loses move (about 1/n). A CALL to a sharded registration
//! without a usable `rkey` fails with `wamp.error.invalid_argument`; `rkey`
//! is ignored for other policies. Keys follow session ids, so a callee that
//! reconnects gets a different share.
//!
//! ## Limits
//! A session may have at most [`DealerConfig::max_pending_calls_per_session`]
//! calls in flight; a CALL beyond that fails with
//! `junction.error.too_many_pending_calls` (vendor URI, like Crossbar's
//! `crossbar.error.max_concurrency_reached`) and a message naming the limit.
//!
//! ## Time
//! The engine has no clock. The runtime calls [`Realm::set_now`] before
//! handling a batch of messages (deadlines are computed from that instant),
//! [`Realm::poll_timeout`] to learn the earliest deadline, and
//! [`Realm::handle_timeout`] when it has passed. Until `set_now` was called
//! once, no deadline is armed (timeouts are not enforced).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use foldhash::{HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime};

use rand::Rng;
use wamp_proto::{code, Dict, Message, Payload, RegistrationId, RequestId, SessionId, Value, MAX_ID};

use super::{clip, internal, opt_bool, uri_ok, uris, Action, Authorization, MatchPolicy, Realm};

/// Completed or canceled progressive-call request ids remembered per caller,
/// so late continuations are discarded instead of starting new calls.
const FINISHED_STREAMS_KEPT: usize = 16;

/// The dealer's configuration for one realm (see the module docs). Set with
/// [`Realm::set_dealer_config`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DealerConfig {
    /// Calls one session may have in flight (default 1000).
    pub max_pending_calls_per_session: usize,
    /// Timeout for calls without a `timeout` option (default: none).
    pub default_call_timeout: Option<Duration>,
    /// Upper bound on any call's timeout; also applies to calls without one
    /// (default: none).
    pub max_call_timeout: Option<Duration>,
    /// How long a callee may take to answer an INTERRUPT of a `kill` cancel
    /// before the caller gets ERROR `wamp.error.canceled` (default 10 s).
    pub kill_grace: Duration,
}

impl Default for DealerConfig {
    fn default() -> Self {
        DealerConfig {
            max_pending_calls_per_session: 1000,
            default_call_timeout: None,
            max_call_timeout: None,
            kill_grace: Duration::from_secs(10),
        }
    }
}

/// Invocation policy of a registration.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Invoke {
    Single,
    RoundRobin,
    Random,
    First,
    Last,
    Sharded,
}

impl Invoke {
    fn parse(v: Option<&Value>) -> Option<Invoke> {
        let Some(v) = v else { return Some(Invoke::Single) };
        Some(match v.as_str()? {
            "single" => Invoke::Single,
            "roundrobin" => Invoke::RoundRobin,
            "random" => Invoke::Random,
            "first" => Invoke::First,
            "last" => Invoke::Last,
            "sharded" => Invoke::Sharded,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Invoke::Single => "single",
            Invoke::RoundRobin => "roundrobin",
            Invoke::Random => "random",
            Invoke::First => "first",
            Invoke::Last => "last",
            Invoke::Sharded => "sharded",
        }
    }
}

/// One registration: a URI pattern with one or more callees.
pub(super) struct Registration {
    id: RegistrationId,
    invoke: Invoke,
    /// Callees in registration order (never empty while registered).
    callees: Vec<SessionId>,
    /// Round-robin cursor (a `Cell` so the call path needs only `&self`).
    next: Cell<usize>,
    /// When it was created (wall clock, if the runtime provided one).
    created: Option<SystemTime>,
}

/// A registration as the meta API sees it.
pub(super) struct RegInfo<'a> {
    pub(super) id: RegistrationId,
    pub(super) policy: MatchPolicy,
    pub(super) uri: &'a str,
    pub(super) invoke: &'static str,
    pub(super) callees: &'a [SessionId],
    pub(super) created: Option<SystemTime>,
}

/// Who made a call: a session, or the router itself (an internal call,
/// identified by the runtime's token).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Caller {
    Session(SessionId),
    Router(u64),
    /// A caller on a peer worker, by that worker's invocation id (see the
    /// `cluster` module).
    Peer(super::PeerId, RequestId),
}

/// A wildcard registration with its precedence key.
struct WildcardReg {
    pattern: String,
    /// Positions of the wildcard (empty) components, ascending.
    wild_positions: Vec<usize>,
    reg: Registration,
}

impl WildcardReg {
    fn matches(&self, uri: &str) -> bool {
        let mut parts = uri.split('.');
        for c in self.pattern.split('.') {
            match parts.next() {
                None => return false,
                Some(p) if c.is_empty() || c == p => {}
                Some(_) => return false,
            }
        }
        parts.next().is_none()
    }

    /// True if `self` takes precedence over `other` (spec: the longest
    /// concrete portion before each wildcard).
    fn beats(&self, other: &WildcardReg) -> bool {
        for i in 0.. {
            match (self.wild_positions.get(i), other.wild_positions.get(i)) {
                (None, None) => return false,
                (None, Some(_)) => return true,
                (Some(_), None) => return false,
                (Some(a), Some(b)) if a != b => return a > b,
                _ => {}
            }
        }
        false
    }
}

/// The features a peer announced in HELLO that change what the dealer sends.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PeerFeatures {
    /// callee: `call_canceling` (INTERRUPT may be sent).
    pub(super) callee_canceling: bool,
    /// callee: `progressive_call_invocations`.
    pub(super) callee_progressive_invocations: bool,
    /// callee: `registration_revocation`.
    pub(super) callee_revocation: bool,
    /// caller: `progressive_call_invocations`.
    pub(super) caller_progressive_invocations: bool,
    /// subscriber: `subscription_revocation` (kept here so that all
    /// announced features that change what the router sends live together).
    pub(super) subscriber_revocation: bool,
}

impl PeerFeatures {
    /// The features as HELLO `roles` (what a peer worker needs to know).
    pub(super) fn as_roles(&self) -> Dict {
        fn role(flags: &[(&str, bool)]) -> Value {
            let mut f = Dict::new();
            for (n, on) in flags {
                if *on {
                    f.insert((*n).to_owned(), Value::Bool(true));
                }
            }
            let mut r = Dict::new();
            r.insert("features".into(), Value::Dict(f));
            Value::Dict(r)
        }
        let mut roles = Dict::new();
        roles.insert(
            "callee".into(),
            role(&[
                ("call_canceling", self.callee_canceling),
                ("progressive_call_invocations", self.callee_progressive_invocations),
                ("registration_revocation", self.callee_revocation),
            ]),
        );
        roles.insert("caller".into(), role(&[("progressive_call_invocations", self.caller_progressive_invocations)]));
        roles.insert("subscriber".into(), role(&[("subscription_revocation", self.subscriber_revocation)]));
        roles
    }

    /// Reads `HELLO.Details.roles.{callee,caller}.features`. Anything
    /// malformed counts as not announced.
    pub(super) fn from_hello(details: &Dict) -> PeerFeatures {
        fn features<'a>(details: &'a Dict, role: &str) -> Option<&'a Dict> {
            details.get("roles")?.as_dict()?.get(role)?.as_dict()?.get("features")?.as_dict()
        }
        fn flag(f: Option<&Dict>, names: &[&str]) -> bool {
            f.is_some_and(|f| names.iter().any(|n| f.get(*n).and_then(Value::as_bool) == Some(true)))
        }
        let callee = features(details, "callee");
        let caller = features(details, "caller");
        let subscriber = features(details, "subscriber");
        PeerFeatures {
            // The spec spells it both ways.
            callee_canceling: flag(callee, &["call_canceling", "call_cancelling"]),
            callee_progressive_invocations: flag(callee, &["progressive_call_invocations"]),
            callee_revocation: flag(callee, &["registration_revocation"]),
            caller_progressive_invocations: flag(caller, &["progressive_call_invocations"]),
            subscriber_revocation: flag(subscriber, &["subscription_revocation"]),
        }
    }
}

/// A caller's progressive CALL stream that is still open.
struct Stream {
    procedure: String,
    /// INVOCATION details of the first CALL (frozen), without `progress`.
    details: Dict,
}

/// A call in flight, stored with the callee under its invocation id.
struct Invocation {
    caller: Caller,
    call_request: RequestId,
    registration: RegistrationId,
    /// The caller asked for progressive results.
    receive_progress: bool,
    /// The caller may still send CALL continuations.
    stream: Option<Box<Stream>>,
    /// A `kill` CANCEL was passed on; awaiting the callee's reply.
    killed: bool,
    /// The armed deadline (also a key in `Dealer::timers`).
    deadline: Option<Instant>,
}

/// The RPC state of one session (as callee and as caller).
#[derive(Default)]
pub(super) struct SessionRpc {
    pub(super) features: PeerFeatures,
    /// As callee: registrations it is a callee of.
    pub(super) registrations: HashSet<RegistrationId>,
    /// As callee: invocations awaiting YIELD/ERROR.
    invocations: HashMap<RequestId, Invocation>,
    /// As callee: the last invocation request id issued (sequential).
    last_invocation: u64,
    /// As caller: CALL request id → (callee, invocation id).
    calls: HashMap<RequestId, (SessionId, RequestId)>,
    /// As caller: progressive streams the router ended early (bounded).
    ended_streams: VecDeque<RequestId>,
}

impl SessionRpc {
    /// The RPC state of a session that sent `hello_details`.
    pub(super) fn new(hello_details: &Dict) -> SessionRpc {
        SessionRpc { features: PeerFeatures::from_hello(hello_details), ..SessionRpc::default() }
    }

    /// As caller: forgets the call of invocation `p`; a stream still open
    /// is remembered so its late continuations are dropped.
    fn end_call(&mut self, p: &Invocation) {
        self.calls.remove(&p.call_request);
        if p.stream.is_some() {
            if self.ended_streams.len() >= FINISHED_STREAMS_KEPT {
                self.ended_streams.pop_front();
            }
            self.ended_streams.push_back(p.call_request);
        }
    }
}

/// All registrations and timers of a realm.
#[derive(Default)]
pub(super) struct Dealer {
    /// Exact procedure → registration (the common call path: one probe).
    exact: HashMap<String, Registration>,
    /// Prefix → registration.
    prefix: HashMap<String, Registration>,
    /// Distinct prefix lengths (byte length → number of prefixes).
    prefix_lens: BTreeMap<usize, usize>,
    /// Wildcard registrations in precedence order.
    wildcard: Vec<WildcardReg>,
    /// Registration id → (policy, URI pattern).
    ids: HashMap<RegistrationId, (MatchPolicy, String)>,
    /// Armed deadlines: (when, callee, invocation id).
    timers: BTreeSet<(Instant, SessionId, RequestId)>,
    /// The runtime's current time, if it told us.
    now: Option<Instant>,
    config: DealerConfig,
}

impl Dealer {
    /// Number of live registrations.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    fn get(&self, policy: MatchPolicy, uri: &str) -> Option<&Registration> {
        match policy {
            MatchPolicy::Exact => self.exact.get(uri),
            MatchPolicy::Prefix => self.prefix.get(uri),
            MatchPolicy::Wildcard => self.wildcard.iter().find(|w| w.pattern == uri).map(|w| &w.reg),
        }
    }

    fn get_mut(&mut self, policy: MatchPolicy, uri: &str) -> Option<&mut Registration> {
        match policy {
            MatchPolicy::Exact => self.exact.get_mut(uri),
            MatchPolicy::Prefix => self.prefix.get_mut(uri),
            MatchPolicy::Wildcard => self.wildcard.iter_mut().find(|w| w.pattern == uri).map(|w| &mut w.reg),
        }
    }

    fn insert(&mut self, policy: MatchPolicy, uri: String, reg: Registration) {
        self.ids.insert(reg.id, (policy, uri.clone()));
        match policy {
            MatchPolicy::Exact => {
                self.exact.insert(uri, reg);
            }
            MatchPolicy::Prefix => {
                *self.prefix_lens.entry(uri.len()).or_insert(0) += 1;
                self.prefix.insert(uri, reg);
            }
            MatchPolicy::Wildcard => {
                let wild_positions = uri.split('.').enumerate().filter(|(_, c)| c.is_empty()).map(|(i, _)| i).collect();
                let w = WildcardReg { pattern: uri, wild_positions, reg };
                // Before the first one it beats; equals keep insertion order.
                let at = self.wildcard.iter().position(|o| w.beats(o)).unwrap_or(self.wildcard.len());
                self.wildcard.insert(at, w);
            }
        }
    }

    /// Deletes registration `id` and returns its callees.
    fn remove(&mut self, id: RegistrationId) -> Vec<SessionId> {
        let Some((policy, uri)) = self.ids.remove(&id) else { return Vec::new() };
        let reg = match policy {
            MatchPolicy::Exact => self.exact.remove(&uri),
            MatchPolicy::Prefix => {
                if let Some(n) = self.prefix_lens.get_mut(&uri.len()) {
                    *n -= 1;
                    if *n == 0 {
                        self.prefix_lens.remove(&uri.len());
                    }
                }
                self.prefix.remove(&uri)
            }
            MatchPolicy::Wildcard => {
                self.wildcard.iter().position(|w| w.pattern == uri).map(|i| self.wildcard.remove(i).reg)
            }
        };
        reg.map(|r| r.callees).unwrap_or_default()
    }

    /// Removes `session` from registration `id`, deleting the registration
    /// when it was the last callee. Returns `None` if there is no such
    /// registration, else whether it was deleted.
    fn remove_callee(&mut self, id: RegistrationId, session: SessionId) -> Option<bool> {
        let (policy, uri) = self.ids.get(&id)?;
        let (policy, uri) = (*policy, uri.clone());
        let reg = self.get_mut(policy, &uri)?;
        reg.callees.retain(|c| *c != session);
        if reg.callees.is_empty() {
            self.remove(id);
            return Some(true);
        }
        Some(false)
    }

    fn info<'a>(&'a self, policy: MatchPolicy, uri: &'a str, reg: &'a Registration) -> RegInfo<'a> {
        RegInfo { id: reg.id, policy, uri, invoke: reg.invoke.name(), callees: &reg.callees, created: reg.created }
    }

    /// Registration `id` for the meta API.
    pub(super) fn registration(&self, id: RegistrationId) -> Option<RegInfo<'_>> {
        let (policy, uri) = self.ids.get(&id)?;
        let reg = self.get(*policy, uri)?;
        Some(self.info(*policy, uri, reg))
    }

    /// All registrations, for the meta API (unordered).
    pub(super) fn registrations(&self) -> impl Iterator<Item = RegInfo<'_>> {
        self.ids.keys().filter_map(|id| self.registration(*id))
    }

    /// The registration (policy, uri), for `wamp.registration.lookup`.
    pub(super) fn lookup_exact(&self, policy: MatchPolicy, uri: &str) -> Option<RegistrationId> {
        self.get(policy, uri).map(|r| r.id)
    }

    /// The registration a call to `procedure` would be routed to, for
    /// `wamp.registration.match`.
    pub(super) fn best_match(&self, procedure: &str) -> Option<RegistrationId> {
        self.lookup(procedure).map(|(r, _)| r.id)
    }

    /// The registration a call to `procedure` is routed to, and whether it
    /// is a pattern registration.
    fn lookup(&self, procedure: &str) -> Option<(&Registration, bool)> {
        if let Some(r) = self.exact.get(procedure) {
            return Some((r, false));
        }
        if procedure.starts_with("wamp.") {
            return None;
        }
        for &len in self.prefix_lens.keys().rev() {
            if len <= procedure.len() && procedure.is_char_boundary(len) {
                if let Some(r) = self.prefix.get(&procedure[..len]) {
                    return Some((r, true));
                }
            }
        }
        self.wildcard.iter().find(|w| w.matches(procedure)).map(|w| (&w.reg, true))
    }

    /// The id of a new registration (policy, uri): the same on every worker
    /// of a cluster (a hash, probed on collision).
    fn new_id(&self, policy: MatchPolicy, uri: &str) -> RegistrationId {
        let mut h = super::cluster_id_hash(b'r', policy, uri);
        loop {
            let id = RegistrationId::from_valid(h % MAX_ID + 1);
            if !self.ids.contains_key(&id) {
                return id;
            }
            h = h.wrapping_add(1);
        }
    }

    fn disarm(&mut self, callee: SessionId, inv: RequestId, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            self.timers.remove(&(d, callee, inv));
        }
    }
}

/// FNV-1a, 64 bit.
fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(0xcbf2_9ce4_8422_2325, bytes)
}

/// FNV-1a continued from state `h` (hashing several parts in a row).
pub(super) fn fnv1a_from(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// SplitMix64 finalizer.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of a routing key (`CALL.Options.rkey`), or `None` if unusable.
fn rkey_hash(v: &Value) -> Option<u64> {
    match v {
        Value::Str(s) => Some(fnv1a(s.as_bytes())),
        Value::UInt(u) => Some(fnv1a(&u.to_le_bytes())),
        Value::Int(i) => Some(fnv1a(&i.to_le_bytes())),
        _ => None,
    }
}

/// The callee of `reg` a call with `options` goes to; `Err` if a sharded
/// registration gets no usable `rkey`. `Ok(None)` cannot happen (a
/// registration without callees is deleted).
fn pick_callee(reg: &Registration, options: &Dict, rng: &mut impl Rng) -> Result<Option<SessionId>, ()> {
    Ok(match reg.invoke {
        Invoke::Single | Invoke::First => reg.callees.first().copied(),
        Invoke::Last => reg.callees.last().copied(),
        Invoke::RoundRobin => {
            let i = reg.next.get() % reg.callees.len().max(1);
            reg.next.set(i + 1);
            reg.callees.get(i).copied()
        }
        Invoke::Random => reg.callees.get(rng.gen_range(0..reg.callees.len().max(1))).copied(),
        Invoke::Sharded => match options.get("rkey").and_then(rkey_hash) {
            Some(key) => rendezvous(key, &reg.callees),
            None => return Err(()),
        },
    })
}

/// Rendezvous hashing: the callee with the highest score for `key`.
fn rendezvous(key: u64, callees: &[SessionId]) -> Option<SessionId> {
    callees.iter().copied().max_by_key(|c| (mix(key ^ mix(c.get())), std::cmp::Reverse(c.get())))
}

fn interrupt(request: RequestId, mode: &str, reason: &str) -> Message {
    let mut options = Dict::new();
    options.insert("mode".into(), Value::Str(mode.to_owned()));
    options.insert("reason".into(), Value::Str(reason.to_owned()));
    Message::Interrupt { request, options }
}

impl Realm {
    /// Replaces the dealer configuration (limits and timeouts). Applies to
    /// calls made afterwards.
    pub fn set_dealer_config(&mut self, config: DealerConfig) {
        self.dealer.config = config;
    }

    /// The dealer configuration.
    pub fn dealer_config(&self) -> &DealerConfig {
        &self.dealer.config
    }

    /// Tells the engine the current time; call before each batch of
    /// [`Realm::handle_message`] calls. Deadlines of new calls are computed
    /// from it. Time never goes backwards: an earlier instant is ignored.
    pub fn set_now(&mut self, now: Instant) {
        if self.dealer.now.is_none_or(|t| now > t) {
            self.dealer.now = Some(now);
        }
    }

    /// The earliest armed deadline (call timeouts, kill grace periods), if
    /// any. Call [`Realm::handle_timeout`] once it has passed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dealer.timers.first().map(|t| t.0)
    }

    /// Fires every deadline at or before `now` (also does
    /// [`Realm::set_now`]): timed-out callers get ERROR
    /// `wamp.error.timeout`, callers of an unanswered `kill` get
    /// `wamp.error.canceled`; then drain [`Realm::poll_transmit`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.set_now(now);
        while let Some(&(when, callee, inv)) = self.dealer.timers.first() {
            if when > now {
                break;
            }
            self.dealer.timers.remove(&(when, callee, inv));
            let Some(c) = self.sessions.get_mut(&callee) else { continue };
            let Some(i) = c.rpc.invocations.get_mut(&inv) else { continue };
            if i.deadline != Some(when) {
                continue;
            }
            i.deadline = None;
            let killed = i.killed;
            let can_cancel = c.rpc.features.callee_canceling;
            let cser = c.info.serializer;
            let Some(p) = self.finish_invocation(callee, inv) else { continue };
            if killed {
                self.out.stats.calls_canceled += 1;
                self.reply_error(p.caller, p.call_request, uris::CANCELED, "callee did not answer the interrupt");
            } else {
                self.out.stats.calls_timed_out += 1;
                if can_cancel {
                    let _ = self.out.send(callee, cser, &interrupt(inv, "killnowait", uris::TIMEOUT));
                }
                self.reply_error(p.caller, p.call_request, uris::TIMEOUT, "call timed out");
            }
        }
    }

    /// Revokes registration `registration` (all its callees): callees that
    /// announced `registration_revocation` get `UNREGISTERED [0,
    /// {registration, reason}]`. Invocations in flight still complete.
    /// Returns false if there is no such registration.
    pub fn revoke_registration(&mut self, registration: RegistrationId, reason: &str) -> bool {
        if !self.dealer.ids.contains_key(&registration) {
            return false;
        }
        let all: Vec<SessionId> =
            self.dealer.registration(registration).map(|r| r.callees.to_vec()).unwrap_or_default();
        for c in all {
            self.announce_unregister(c, registration);
        }
        let callees = self.dealer.remove(registration);
        let last = callees.last().copied();
        for callee in callees {
            self.meta_event_ids(super::meta::REGISTRATION_ON_UNREGISTER, callee, registration.get());
            self.notify_unregistered(callee, registration, Some(reason));
        }
        if let Some(last) = last {
            self.meta_event_ids(super::meta::REGISTRATION_ON_DELETE, last, registration.get());
        }
        self.flush_deferred();
        true
    }

    /// Removes one callee from registration `registration` (the registration
    /// is deleted with its last callee): if the callee announced
    /// `registration_revocation` it gets `UNREGISTERED [0, {registration,
    /// reason}]` (`reason` only when given), otherwise it is removed
    /// silently. Invocations in flight still complete. Returns false if
    /// `callee` is not a callee of that registration.
    pub fn revoke_callee(&mut self, registration: RegistrationId, callee: SessionId, reason: Option<&str>) -> bool {
        let removed = self.revoke_callee_inner(registration, callee, reason);
        self.flush_deferred();
        removed
    }

    /// [`Realm::revoke_callee`] without routing the queued meta events.
    pub(super) fn revoke_callee_inner(
        &mut self,
        registration: RegistrationId,
        callee: SessionId,
        reason: Option<&str>,
    ) -> bool {
        if !self.sessions.get(&callee).is_some_and(|s| s.rpc.registrations.contains(&registration)) {
            return false;
        }
        self.announce_unregister(callee, registration);
        let deleted = self.dealer.remove_callee(registration, callee);
        self.registration_removed_meta(callee, registration, deleted);
        self.notify_unregistered(callee, registration, reason);
        true
    }

    /// Forgets `registration` in `callee`'s state and, if it announced
    /// `registration_revocation`, sends it `UNREGISTERED [0, {registration,
    /// reason}]`.
    fn notify_unregistered(&mut self, callee: SessionId, registration: RegistrationId, reason: Option<&str>) {
        let Some(s) = self.sessions.get_mut(&callee) else { return };
        s.rpc.registrations.remove(&registration);
        if s.rpc.features.callee_revocation {
            let mut details = Dict::new();
            details.insert("registration".into(), Value::UInt(registration.get()));
            if let Some(reason) = reason {
                details.insert("reason".into(), Value::Str(reason.to_owned()));
            }
            let msg = Message::Unregistered { request: RequestId::from_valid(0), details: Some(details) };
            let _ = self.out.send(callee, s.info.serializer, &msg);
        }
    }

    /// Answers `caller` with `ERROR [CALL, request, {}, error, [message]]`
    /// if it is still there (an internal call gets the error as its
    /// outcome).
    fn reply_error(&mut self, caller: Caller, request: RequestId, error: &str, message: &str) {
        match caller {
            Caller::Session(caller) => {
                if let Some(s) = self.sessions.get(&caller) {
                    self.out.error(caller, s.info.serializer, code::CALL, request, error, message.to_owned());
                }
            }
            Caller::Router(token) => self.internal_outcome(token, Err((error.to_owned(), message.to_owned()))),
            // Peer calls arm no deadline here: the caller's worker times out.
            Caller::Peer(..) => self.cluster.stats.ignored += 1,
        }
    }

    pub(super) fn handle_register(&mut self, sid: SessionId, request: RequestId, options: &Dict, procedure: String) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        let policy = match options.get("match").map(Value::as_str) {
            None | Some(Some("exact")) => Some(MatchPolicy::Exact),
            Some(Some("prefix")) => Some(MatchPolicy::Prefix),
            Some(Some("wildcard")) => Some(MatchPolicy::Wildcard),
            Some(_) => None,
        };
        let invoke = Invoke::parse(options.get("invoke"));
        let existing = policy.and_then(|p| self.dealer.get(p, &procedure));
        let refusal = match (policy, invoke) {
            (None, _) => Some((uris::INVALID_ARGUMENT, "match must be 'exact', 'prefix' or 'wildcard'".to_owned())),
            (_, None) => Some((
                uris::INVALID_ARGUMENT,
                "invoke must be 'single', 'roundrobin', 'random', 'first', 'last' or 'sharded'".to_owned(),
            )),
            (Some(p), Some(invoke)) => {
                let valid = match p {
                    MatchPolicy::Exact => uri_ok(&procedure),
                    _ => wamp_proto::uri::is_valid_uri(&procedure, false, true),
                };
                if !valid {
                    Some((uris::INVALID_URI, format!("register for invalid procedure URI '{}'", clip(&procedure))))
                } else if procedure.starts_with("wamp.") {
                    Some((uris::INVALID_URI, format!("register for restricted procedure URI '{}'", clip(&procedure))))
                } else if !self.roles.get(s.role).is_some_and(|r| r.authorize(&procedure, Action::Register).allowed) {
                    Some((
                        uris::NOT_AUTHORIZED,
                        format!("session is not authorized to register procedure '{}'", clip(&procedure)),
                    ))
                } else if let Some(reg) = existing {
                    // Crossbar's order: a `single` registration admits no
                    // one, then a policy mismatch is reported as such (also
                    // for a `single` request), then a second registration
                    // by the same session is refused.
                    if reg.invoke == Invoke::Single {
                        Some((
                            uris::PROCEDURE_ALREADY_EXISTS,
                            format!("register for already registered procedure '{}'", clip(&procedure)),
                        ))
                    } else if reg.invoke != invoke {
                        Some((
                            uris::PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY,
                            format!(
                                "register for already registered procedure '{}' with conflicting invocation policy \
                                 (has {} and {} was requested)",
                                clip(&procedure),
                                reg.invoke.name(),
                                invoke.name()
                            ),
                        ))
                    } else if reg.callees.contains(&sid) {
                        Some((
                            uris::PROCEDURE_ALREADY_EXISTS,
                            format!("register for already registered procedure '{}'", clip(&procedure)),
                        ))
                    } else {
                        None
                    }
                } else {
                    None
                }
            }
        };
        if let Some((error, msg)) = refusal {
            return self.out.error(sid, ser, code::REGISTER, request, error, msg);
        }
        let (Some(policy), Some(invoke)) = (policy, invoke) else { return };
        let mut created = false;
        let id = if let Some(reg) = self.dealer.get_mut(policy, &procedure) {
            reg.callees.push(sid);
            reg.id
        } else {
            created = true;
            let id = self.dealer.new_id(policy, &procedure);
            let reg = Registration { id, invoke, callees: vec![sid], next: Cell::new(0), created: self.wall_clock };
            self.dealer.insert(policy, procedure, reg);
            id
        };
        s.rpc.registrations.insert(id);
        let _ = self.out.send(sid, ser, &Message::Registered { request, registration: id });
        if !self.cluster.peers.is_empty() {
            if let Some(r) = self.dealer.registration(id) {
                let msg = super::PeerMsg::Register {
                    session: sid,
                    policy: r.policy,
                    procedure: r.uri.to_owned(),
                    invoke: r.invoke.to_owned(),
                };
                self.broadcast(msg);
            }
        }
        if created {
            self.registration_created_meta(sid, id);
        }
        self.meta_event_ids(super::meta::REGISTRATION_ON_REGISTER, sid, id.get());
    }

    pub(super) fn handle_unregister(&mut self, sid: SessionId, request: RequestId, id: RegistrationId) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        if !s.rpc.registrations.remove(&id) {
            let msg = format!("session has no registration {id}");
            return self.out.error(sid, ser, code::UNREGISTER, request, uris::NO_SUCH_REGISTRATION, msg);
        }
        self.announce_unregister(sid, id);
        let deleted = self.dealer.remove_callee(id, sid);
        let _ = self.out.send(sid, ser, &Message::Unregistered { request, details: None });
        self.registration_removed_meta(sid, id, deleted);
    }

    /// Tells the peer workers that local callee `sid` leaves registration
    /// `id` (call before removing it).
    fn announce_unregister(&mut self, sid: SessionId, id: RegistrationId) {
        if self.cluster.peers.is_empty() || self.is_ghost(sid) {
            return;
        }
        if let Some(r) = self.dealer.registration(id) {
            let msg = super::PeerMsg::Unregister { session: sid, policy: r.policy, procedure: r.uri.to_owned() };
            self.broadcast(msg);
        }
    }

    /// Queues `on_unregister` (and `on_delete` if `deleted`) for callee
    /// `sid` leaving registration `id`.
    fn registration_removed_meta(&mut self, sid: SessionId, id: RegistrationId, deleted: Option<bool>) {
        let Some(deleted) = deleted else { return };
        self.meta_event_ids(super::meta::REGISTRATION_ON_UNREGISTER, sid, id.get());
        if deleted {
            self.meta_event_ids(super::meta::REGISTRATION_ON_DELETE, sid, id.get());
        }
    }

    pub(super) fn handle_call(
        &mut self,
        sid: SessionId,
        request: RequestId,
        options: &Dict,
        procedure: String,
        payload: Payload,
    ) {
        let Some(caller) = self.sessions.get(&sid) else { return };
        let cser = caller.info.serializer;
        let progress = opt_bool(options, "progress") == Some(true);
        if let Some(&(callee, inv)) = caller.rpc.calls.get(&request) {
            return self.continue_call(sid, request, callee, inv, progress, &procedure, payload);
        }
        if caller.rpc.ended_streams.contains(&request) {
            // A continuation of a stream the router already ended.
            self.out.stats.ignored += 1;
            return;
        }
        if progress && !caller.rpc.features.caller_progressive_invocations {
            return self.protocol_violation(
                sid,
                "CALL with progress=true, but the caller did not announce progressive_call_invocations",
            );
        }
        if !uri_ok(&procedure) {
            let msg = format!("call with invalid procedure URI '{}'", clip(&procedure));
            return self.out.error(sid, cser, code::CALL, request, uris::INVALID_URI, msg);
        }
        let auth = match self.roles.get(caller.role) {
            Some(r) => r.authorize(&procedure, Action::Call),
            None => Authorization::DENIED,
        };
        if !auth.allowed {
            let msg = format!("session is not authorized to call procedure '{}'", clip(&procedure));
            return self.out.error(sid, cser, code::CALL, request, uris::NOT_AUTHORIZED, msg);
        }
        let limit = self.dealer.config.max_pending_calls_per_session;
        if caller.rpc.calls.len() >= limit {
            let msg = format!("session has reached its limit of {limit} pending calls");
            return self.out.error(sid, cser, code::CALL, request, uris::TOO_MANY_PENDING_CALLS, msg);
        }
        let Some((reg, pattern)) = self.dealer.lookup(&procedure) else {
            let msg = format!("no callee registered for procedure '{}'", clip(&procedure));
            return self.out.error(sid, cser, code::CALL, request, uris::NO_SUCH_PROCEDURE, msg);
        };
        let Ok(picked) = pick_callee(reg, options, &mut self.rng) else {
            let msg = format!(
                "procedure '{}' has a sharded registration: the call needs a string or integer 'rkey' option",
                clip(&procedure)
            );
            return self.out.error(sid, cser, code::CALL, request, uris::INVALID_ARGUMENT, msg);
        };
        let registration = reg.id;
        let Some(callee_id) = picked else {
            // Cannot happen: a registration without callees is deleted.
            let msg = format!("no callee registered for procedure '{}'", clip(&procedure));
            return self.out.error(sid, cser, code::CALL, request, uris::NO_SUCH_PROCEDURE, msg);
        };

        let mut details = Dict::new();
        if auth.disclose || opt_bool(options, "disclose_me") == Some(true) {
            details.insert("caller".into(), Value::UInt(sid.get()));
            details.insert("caller_authid".into(), Value::Str(caller.info.authid.clone()));
            details.insert("caller_authrole".into(), Value::Str(caller.info.authrole.clone()));
        }
        if pattern {
            details.insert("procedure".into(), Value::Str(procedure.clone()));
        }
        let receive_progress = opt_bool(options, "receive_progress") == Some(true);
        if receive_progress {
            details.insert("receive_progress".into(), Value::Bool(true));
        }
        let timeout = match options.get("timeout").and_then(Value::as_u64) {
            Some(ms) if ms > 0 => Some(Duration::from_millis(ms)),
            _ => self.dealer.config.default_call_timeout,
        };
        let timeout = match (timeout, self.dealer.config.max_call_timeout) {
            (Some(t), Some(max)) => Some(t.min(max)),
            (None, max) => max,
            (t, None) => t,
        };
        let deadline = timeout.and_then(|t| self.dealer.now.and_then(|now| now.checked_add(t)));

        let Some(callee) = self.sessions.get_mut(&callee_id) else {
            // Cannot happen: callees are removed from registrations when they leave.
            let msg = format!("no callee registered for procedure '{}'", clip(&procedure));
            return self.out.error(sid, cser, code::CALL, request, uris::NO_SUCH_PROCEDURE, msg);
        };
        let stream = if progress {
            let f = callee.rpc.features;
            if !(f.callee_progressive_invocations && f.callee_canceling) {
                let msg = "the callee does not support progressive call invocations".to_owned();
                return self.out.error(sid, cser, code::CALL, request, uris::FEATURE_NOT_SUPPORTED, msg);
            }
            let frozen = details.clone();
            details.insert("progress".into(), Value::Bool(true));
            Some(Box::new(Stream { procedure, details: frozen }))
        } else {
            None
        };
        let next = callee.rpc.last_invocation + 1;
        let Some(inv) = RequestId::new(next) else {
            let msg = "callee has exhausted its invocation ids".to_owned();
            return self.out.error(sid, cser, code::CALL, request, uris::CANCELED, msg);
        };
        let msg = Message::Invocation { request: inv, registration, details, payload };
        if let Err(e) = self.out.send(callee_id, callee.info.serializer, &msg) {
            let msg = format!("call payload could not be passed to the callee: {e}");
            return self.out.error(sid, cser, code::CALL, request, uris::INVALID_ARGUMENT, msg);
        }
        callee.rpc.last_invocation = next;
        callee.rpc.invocations.insert(
            inv,
            Invocation {
                caller: Caller::Session(sid),
                call_request: request,
                registration,
                receive_progress,
                stream,
                killed: false,
                deadline,
            },
        );
        if let Some(d) = deadline {
            self.dealer.timers.insert((d, callee_id, inv));
        }
        if let Some(caller) = self.sessions.get_mut(&sid) {
            caller.rpc.calls.insert(request, (callee_id, inv));
        }
        self.out.stats.calls += 1;
    }

    /// A CALL whose request id is a call in flight: the next chunk of a
    /// progressive call invocation.
    #[allow(clippy::too_many_arguments)]
    fn continue_call(
        &mut self,
        sid: SessionId,
        request: RequestId,
        callee_id: SessionId,
        inv: RequestId,
        progress: bool,
        procedure: &str,
        payload: Payload,
    ) {
        let Some(callee) = self.sessions.get_mut(&callee_id) else { return };
        let Some(i) = callee.rpc.invocations.get_mut(&inv) else { return };
        let Some(stream) = i.stream.as_ref() else {
            return self.protocol_violation(
                sid,
                &format!("CALL reuses request ID {request} of a call in flight that takes no continuations"),
            );
        };
        if stream.procedure != procedure {
            return self.protocol_violation(
                sid,
                &format!("progressive CALL continuation {request} names a different procedure"),
            );
        }
        if i.killed {
            // Canceled with mode kill: the callee is being interrupted.
            self.out.stats.ignored += 1;
            return;
        }
        let mut details = stream.details.clone();
        if progress {
            details.insert("progress".into(), Value::Bool(true));
        } else {
            i.stream = None;
        }
        let msg = Message::Invocation { request: inv, registration: i.registration, details, payload };
        if let Err(e) = self.out.send(callee_id, callee.info.serializer, &msg) {
            // The chunk cannot reach the callee: end the call for both.
            let can_cancel = callee.rpc.features.callee_canceling;
            let cser = callee.info.serializer;
            if let Some(p) = self.finish_invocation(callee_id, inv) {
                if can_cancel {
                    let _ = self.out.send(callee_id, cser, &interrupt(inv, "killnowait", uris::INVALID_ARGUMENT));
                }
                let msg = format!("call payload could not be passed to the callee: {e}");
                self.reply_error(p.caller, p.call_request, uris::INVALID_ARGUMENT, &msg);
            }
        }
    }

    /// Removes the pending invocation `inv` of `callee` with every trace of
    /// it (caller's call entry, timer). A caller stream still open is
    /// remembered so late continuations are dropped.
    fn finish_invocation(&mut self, callee: SessionId, inv: RequestId) -> Option<Invocation> {
        let p = self.sessions.get_mut(&callee)?.rpc.invocations.remove(&inv)?;
        self.dealer.disarm(callee, inv, p.deadline);
        match p.caller {
            Caller::Session(c) => {
                if let Some(caller) = self.sessions.get_mut(&c) {
                    caller.rpc.end_call(&p);
                }
            }
            Caller::Router(token) => self.internal.forget(token),
            Caller::Peer(peer, r) => {
                self.cluster.calls.remove(&(peer, r));
            }
        }
        Some(p)
    }

    /// The pending invocation `request` of callee `sid` exists? If not, the
    /// reply is counted as stale (issued, its call is over) or the callee is
    /// aborted (an id never issued). Returns true if it exists.
    fn check_invocation(&mut self, sid: SessionId, request: RequestId, what: &str) -> bool {
        let Some(callee) = self.sessions.get(&sid) else { return false };
        if callee.rpc.invocations.contains_key(&request) {
            return true;
        }
        if request.get() >= 1 && request.get() <= callee.rpc.last_invocation {
            // Issued, but its call is over (caller left, canceled, timed out).
            self.out.stats.stale_replies += 1;
        } else {
            self.protocol_violation(sid, &format!("{what} for invocation request ID {request} that was never issued"));
        }
        false
    }

    pub(super) fn handle_yield(&mut self, sid: SessionId, request: RequestId, options: &Dict, payload: Payload) {
        if !self.check_invocation(sid, request, "YIELD") {
            return;
        }
        let progress = opt_bool(options, "progress") == Some(true);
        let p = if progress {
            let Some(i) = self.sessions.get(&sid).and_then(|s| s.rpc.invocations.get(&request)) else { return };
            if i.killed || !i.receive_progress {
                self.out.stats.ignored += 1;
                return;
            }
            (i.caller, i.call_request)
        } else {
            let Some(i) = self.finish_invocation(sid, request) else { return };
            (i.caller, i.call_request)
        };
        let (caller, call_request) = match p {
            (Caller::Session(c), r) => (c, r),
            (Caller::Router(token), _) => {
                // Internal calls never ask for progress: this is the result.
                let outcome = internal::result_value(&payload);
                return self.internal_outcome(token, outcome);
            }
            (Caller::Peer(peer, r), _) => {
                let mut options = Dict::new();
                if progress {
                    options.insert("progress".into(), Value::Bool(true));
                }
                let msg = Message::Yield { request: r, options, payload };
                let msg = super::PeerMsg::FromSession { session: sid, msg };
                self.out.queue.push_back(super::Transmit::Peer { peer, msg });
                return;
            }
        };
        let Some(c) = self.sessions.get(&caller) else { return };
        let ser = c.info.serializer;
        let mut details = Dict::new();
        if progress {
            details.insert("progress".into(), Value::Bool(true));
        }
        let msg = Message::Result { request: call_request, details, payload };
        if let Err(e) = self.out.send(caller, ser, &msg) {
            let msg = format!("call result could not be passed to the caller: {e}");
            if progress {
                // End the call: the caller cannot receive this stream.
                let can_cancel = self.sessions.get(&sid).map(|s| (s.rpc.features.callee_canceling, s.info.serializer));
                self.finish_invocation(sid, request);
                if let Some((true, cser)) = can_cancel {
                    let _ = self.out.send(sid, cser, &interrupt(request, "killnowait", uris::INVALID_ARGUMENT));
                }
            }
            self.out.error(caller, ser, code::CALL, call_request, uris::INVALID_ARGUMENT, msg);
        }
    }

    pub(super) fn handle_invocation_error(
        &mut self,
        sid: SessionId,
        request: RequestId,
        error: String,
        payload: Payload,
    ) {
        if !self.check_invocation(sid, request, "ERROR") {
            return;
        }
        let Some(p) = self.finish_invocation(sid, request) else { return };
        let caller_id = match p.caller {
            Caller::Session(c) => c,
            Caller::Router(token) => {
                let message = internal::error_message(&payload);
                return self.internal_outcome(token, Err((error, message)));
            }
            Caller::Peer(peer, r) => {
                let msg =
                    Message::Error { request_type: code::INVOCATION, request: r, details: Dict::new(), error, payload };
                let msg = super::PeerMsg::FromSession { session: sid, msg };
                self.out.queue.push_back(super::Transmit::Peer { peer, msg });
                return;
            }
        };
        let Some(caller) = self.sessions.get(&caller_id) else { return };
        let ser = caller.info.serializer;
        let msg =
            Message::Error { request_type: code::CALL, request: p.call_request, details: Dict::new(), error, payload };
        if let Err(e) = self.out.send(caller_id, ser, &msg) {
            let msg = format!("call error could not be passed to the caller: {e}");
            self.out.error(caller_id, ser, code::CALL, p.call_request, uris::INVALID_ARGUMENT, msg);
        }
    }

    pub(super) fn handle_cancel(&mut self, sid: SessionId, request: RequestId, options: &Dict) {
        let Some(caller) = self.sessions.get(&sid) else { return };
        let cser = caller.info.serializer;
        let mode = match options.get("mode").map(Value::as_str) {
            None => "killnowait",
            Some(Some(m @ ("skip" | "kill" | "killnowait"))) => m,
            Some(_) => {
                let msg = "CANCEL mode must be 'skip', 'kill' or 'killnowait'".to_owned();
                return self.out.error(sid, cser, code::CANCEL, request, uris::INVALID_ARGUMENT, msg);
            }
        };
        let Some(&(callee_id, inv)) = caller.rpc.calls.get(&request) else {
            // Already answered: the CANCEL crossed the reply.
            self.out.stats.ignored += 1;
            return;
        };
        let Some(callee) = self.sessions.get_mut(&callee_id) else { return };
        let can_cancel = callee.rpc.features.callee_canceling;
        let callee_ser = callee.info.serializer;
        let Some(i) = callee.rpc.invocations.get_mut(&inv) else { return };
        let mode = if can_cancel { mode } else { "skip" };
        if mode == "kill" {
            if i.killed {
                self.out.stats.ignored += 1;
                return;
            }
            i.killed = true;
            // Bound the wait for the callee's answer.
            let old = i.deadline;
            let grace = self.dealer.now.and_then(|now| now.checked_add(self.dealer.config.kill_grace));
            let new = match (old, grace) {
                (Some(o), Some(g)) => Some(o.min(g)),
                (o, g) => o.or(g),
            };
            i.deadline = new;
            if new != old {
                self.dealer.disarm(callee_id, inv, old);
                if let Some(d) = new {
                    self.dealer.timers.insert((d, callee_id, inv));
                }
            }
            let _ = self.out.send(callee_id, callee_ser, &interrupt(inv, "kill", uris::CANCELED));
            return;
        }
        // skip or killnowait: answer now; a killed call escalates without a
        // second INTERRUPT.
        let already_interrupted = i.killed;
        if self.finish_invocation(callee_id, inv).is_none() {
            return;
        }
        self.out.stats.calls_canceled += 1;
        if mode == "killnowait" && !already_interrupted {
            let _ = self.out.send(callee_id, callee_ser, &interrupt(inv, "killnowait", uris::CANCELED));
        }
        self.out.error(sid, cser, code::CALL, request, uris::CANCELED, format!("call canceled (mode {mode})"));
    }

    /// Removes `session` from the dealer: its registrations (shared ones
    /// stay for the other callees), its invocations as callee (their callers
    /// get ERROR `wamp.error.canceled`) and its calls as caller (a callee
    /// that supports canceling gets `INTERRUPT {mode: "killnowait"}`).
    pub(super) fn detach_rpc(&mut self, session: SessionId) {
        let Some(s) = self.sessions.get_mut(&session) else { return };
        let mut registrations: Vec<_> = s.rpc.registrations.drain().collect();
        let invocations = std::mem::take(&mut s.rpc.invocations);
        let calls = std::mem::take(&mut s.rpc.calls);
        registrations.sort_unstable();
        for reg in registrations {
            self.announce_unregister(session, reg);
            let deleted = self.dealer.remove_callee(reg, session);
            self.registration_removed_meta(session, reg, deleted);
        }
        for (inv, p) in invocations {
            self.dealer.disarm(session, inv, p.deadline);
            let caller = match p.caller {
                Caller::Session(c) if c == session => continue,
                Caller::Session(c) => c,
                Caller::Router(token) => {
                    self.internal.forget(token);
                    let msg = "callee disconnected from in-flight request".to_owned();
                    self.internal_outcome(token, Err((uris::CANCELED.to_owned(), msg)));
                    continue;
                }
                // The caller's worker learns of the departure (SessionLeave)
                // and fails the call there.
                Caller::Peer(peer, r) => {
                    self.cluster.calls.remove(&(peer, r));
                    continue;
                }
            };
            if let Some(caller) = self.sessions.get_mut(&caller) {
                caller.rpc.end_call(&p);
                let ser = caller.info.serializer;
                let caller = caller.info.session;
                self.out.error(
                    caller,
                    ser,
                    code::CALL,
                    p.call_request,
                    uris::CANCELED,
                    "callee disconnected from in-flight request".to_owned(),
                );
            }
        }
        for (_, (callee, inv)) in calls {
            if callee == session {
                continue;
            }
            let Some(c) = self.sessions.get_mut(&callee) else { continue };
            let Some(p) = c.rpc.invocations.remove(&inv) else { continue };
            let (can_cancel, ser) = (c.rpc.features.callee_canceling, c.info.serializer);
            self.dealer.disarm(callee, inv, p.deadline);
            if can_cancel && !c.closing {
                let _ = self.out.send(callee, ser, &interrupt(inv, "killnowait", uris::CANCELED));
            }
        }
    }
}

impl Realm {
    /// Routes a router-originated call (see the `internal` module): the
    /// INVOCATION goes to the callee as for a client CALL, without caller
    /// disclosure; the outcome is reported through the internal result
    /// queue. Authorization does not apply (the router is the caller).
    pub(super) fn route_internal_call(
        &mut self,
        token: u64,
        procedure: &str,
        payload: Payload,
        timeout: Option<Duration>,
    ) -> Result<(), (String, String)> {
        if !uri_ok(procedure) {
            return Err((
                uris::INVALID_URI.to_owned(),
                format!("call with invalid procedure URI '{}'", clip(procedure)),
            ));
        }
        let no_such = || {
            (uris::NO_SUCH_PROCEDURE.to_owned(), format!("no callee registered for procedure '{}'", clip(procedure)))
        };
        let Some((reg, pattern)) = self.dealer.lookup(procedure) else { return Err(no_such()) };
        let Ok(picked) = pick_callee(reg, &Dict::new(), &mut self.rng) else {
            let msg =
                format!("procedure '{}' has a sharded registration: internal calls carry no 'rkey'", clip(procedure));
            return Err((uris::INVALID_ARGUMENT.to_owned(), msg));
        };
        let registration = reg.id;
        let Some(callee_id) = picked else { return Err(no_such()) };
        let mut details = Dict::new();
        if pattern {
            details.insert("procedure".into(), Value::Str(procedure.to_owned()));
        }
        let timeout = match (timeout.or(self.dealer.config.default_call_timeout), self.dealer.config.max_call_timeout) {
            (Some(t), Some(max)) => Some(t.min(max)),
            (None, max) => max,
            (t, None) => t,
        };
        let deadline = timeout.and_then(|t| self.dealer.now.and_then(|now| now.checked_add(t)));
        let Some(callee) = self.sessions.get_mut(&callee_id) else { return Err(no_such()) };
        let next = callee.rpc.last_invocation + 1;
        let Some(inv) = RequestId::new(next) else {
            return Err((uris::CANCELED.to_owned(), "callee has exhausted its invocation ids".to_owned()));
        };
        let msg = Message::Invocation { request: inv, registration, details, payload };
        if let Err(e) = self.out.send(callee_id, callee.info.serializer, &msg) {
            return Err((
                uris::INVALID_ARGUMENT.to_owned(),
                format!("call payload could not be passed to the callee: {e}"),
            ));
        }
        callee.rpc.last_invocation = next;
        callee.rpc.invocations.insert(
            inv,
            Invocation {
                caller: Caller::Router(token),
                call_request: RequestId::from_valid(0),
                registration,
                receive_progress: false,
                stream: None,
                killed: false,
                deadline,
            },
        );
        if let Some(d) = deadline {
            self.dealer.timers.insert((d, callee_id, inv));
        }
        self.internal.track(token, callee_id, inv);
        self.out.stats.calls += 1;
        Ok(())
    }
}

/// The callee side of calls made on peer workers (see the `cluster` module).
impl Realm {
    /// Ghost `session` becomes a callee of (policy, procedure). Returns false
    /// (and changes nothing) if that conflicts with the registration here.
    pub(super) fn register_ghost(
        &mut self,
        session: SessionId,
        policy: MatchPolicy,
        procedure: String,
        invoke: &str,
    ) -> bool {
        let invoke_name = invoke.to_owned();
        let Some(invoke) = Invoke::parse(Some(&Value::Str(invoke_name.clone()))) else { return false };
        let valid = match policy {
            MatchPolicy::Exact => uri_ok(&procedure),
            _ => wamp_proto::uri::is_valid_uri(&procedure, false, true),
        };
        if !valid {
            return false;
        }
        let id = match self.dealer.get_mut(policy, &procedure) {
            Some(reg) => {
                if reg.callees.contains(&session) {
                    return false;
                }
                if reg.invoke == Invoke::Single || reg.invoke != invoke {
                    // Two workers accepted clashing registrations before
                    // either heard of the other. Every worker settles it
                    // the same way, from the session ids alone: the side
                    // with the lowest callee session id keeps the
                    // procedure. If that is the newcomer, the callees here
                    // lose it (local ones are told with UNREGISTERED, as a
                    // revocation; ghosts are dropped, their own workers
                    // revoke them) and the newcomer registers.
                    let lowest = reg.callees.iter().copied().min();
                    if lowest.is_some_and(|l| session < l) {
                        let (id, callees) = (reg.id, reg.callees.clone());
                        tracing::warn!(%session, procedure = %clip(&procedure), realm = %self.name,
                            "a peer's registration clashes with this worker's and takes precedence: revoking ours");
                        for c in callees {
                            if self.is_ghost(c) {
                                self.unregister_ghost(c, id);
                            } else {
                                self.revoke_callee_inner(id, c, Some(uris::PROCEDURE_ALREADY_EXISTS));
                            }
                        }
                        if self.dealer.get(policy, &procedure).is_some() {
                            return false;
                        }
                        return self.register_ghost(session, policy, procedure, &invoke_name);
                    }
                    tracing::warn!(%session, procedure = %clip(&procedure), realm = %self.name,
                        "a peer's registration clashes with this worker's, which takes precedence: ignored here");
                    return false;
                }
                reg.callees.push(session);
                reg.id
            }
            None => {
                let id = self.dealer.new_id(policy, &procedure);
                let reg =
                    Registration { id, invoke, callees: vec![session], next: Cell::new(0), created: self.wall_clock };
                self.dealer.insert(policy, procedure, reg);
                id
            }
        };
        if let Some(s) = self.sessions.get_mut(&session) {
            s.rpc.registrations.insert(id);
        }
        tracing::debug!(%session, registration = %id, realm = %self.name, "ghost registers");
        true
    }

    /// Ghost `session` leaves registration `id`.
    pub(super) fn unregister_ghost(&mut self, session: SessionId, id: RegistrationId) {
        let Some(s) = self.sessions.get_mut(&session) else { return };
        if s.rpc.registrations.remove(&id) {
            self.dealer.remove_callee(id, session);
        }
    }

    /// A peer's caller calls local callee `callee` (the peer chose it): the
    /// INVOCATION is re-issued under a local invocation id. A repeated peer
    /// invocation id is the next chunk of a progressive call invocation.
    pub(super) fn invoke_for_peer(
        &mut self,
        peer: super::PeerId,
        callee: SessionId,
        peer_inv: RequestId,
        registration: RegistrationId,
        details: Dict,
        payload: Payload,
    ) {
        if let Some(&(c, inv)) = self.cluster.calls.get(&(peer, peer_inv)) {
            let Some(s) = self.sessions.get(&c) else { return };
            if s.rpc.invocations.get(&inv).is_some_and(|i| !i.killed) {
                let msg = Message::Invocation { request: inv, registration, details, payload };
                let _ = self.out.send(c, s.info.serializer, &msg);
            }
            return;
        }
        let Some(s) = self.sessions.get_mut(&callee) else { return };
        let next = s.rpc.last_invocation + 1;
        let Some(inv) = RequestId::new(next) else { return };
        let receive_progress = opt_bool(&details, "receive_progress") == Some(true);
        let msg = Message::Invocation { request: inv, registration, details, payload };
        if let Err(e) = self.out.send(callee, s.info.serializer, &msg) {
            let err = Message::Error {
                request_type: code::INVOCATION,
                request: peer_inv,
                details: Dict::new(),
                error: uris::INVALID_ARGUMENT.into(),
                payload: Payload::values(
                    Some(vec![Value::Str(format!("call payload could not be passed to the callee: {e}"))]),
                    None,
                ),
            };
            let msg = super::PeerMsg::FromSession { session: callee, msg: err };
            self.out.queue.push_back(super::Transmit::Peer { peer, msg });
            return;
        }
        s.rpc.last_invocation = next;
        s.rpc.invocations.insert(
            inv,
            Invocation {
                caller: Caller::Peer(peer, peer_inv),
                call_request: peer_inv,
                registration,
                receive_progress,
                stream: None,
                killed: false,
                deadline: None,
            },
        );
        self.cluster.calls.insert((peer, peer_inv), (callee, inv));
        self.out.stats.calls += 1;
    }

    /// The peer's caller canceled (or timed out) invocation `inv` of local
    /// callee `callee`: pass the INTERRUPT on (if the callee supports it).
    /// For `kill` the callee's reply still goes back; otherwise the call is
    /// forgotten here.
    pub(super) fn interrupt_for_peer(&mut self, callee: SessionId, inv: RequestId, options: Dict, kill: bool) {
        let Some(s) = self.sessions.get_mut(&callee) else { return };
        let (can_cancel, ser) = (s.rpc.features.callee_canceling, s.info.serializer);
        let Some(i) = s.rpc.invocations.get_mut(&inv) else { return };
        if kill {
            i.killed = true;
        }
        if can_cancel {
            let _ = self.out.send(callee, ser, &Message::Interrupt { request: inv, options });
        }
        if !kill {
            self.finish_invocation(callee, inv);
        }
    }

    /// The peer that called local callee `callee` (invocation `inv`) is gone.
    pub(super) fn peer_call_gone(&mut self, callee: SessionId, inv: RequestId) {
        let Some(s) = self.sessions.get(&callee) else { return };
        let (can_cancel, ser, closing) = (s.rpc.features.callee_canceling, s.info.serializer, s.closing);
        if self.finish_invocation(callee, inv).is_some() && can_cancel && !closing {
            let _ = self.out.send(callee, ser, &interrupt(inv, "killnowait", uris::CANCELED));
        }
    }
}
