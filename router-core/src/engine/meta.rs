//! The WAMP meta API: session, subscription and registration meta
//! procedures and events, and session testaments — answered and published by
//! the realm itself.
//!
//! Switched per realm with [`Realm::with_meta_api`] /
//! [`Realm::with_meta_config`] (on by default). When off, the procedures
//! do not exist (a call is routed like any other and fails with
//! `wamp.error.no_such_procedure`), no meta events or testaments are
//! published, and WELCOME does not announce `session_meta_api`,
//! `subscription_meta_api`, `registration_meta_api` or
//! `testament_meta_api`. A realm lives on one shard, so these answers are
//! complete for the realm whichever shard the caller is on.
//!
//! Argument and result shapes are Crossbar's (`RouterServiceAgent`);
//! arguments may be positional or keyword (by Crossbar's parameter names).
//! Calls are authorized like any call: the role needs `call` permission on
//! the procedure URI. As in Crossbar, subscriptions and registrations on
//! *protected* URIs (`wamp.`, `crossbar.`) are hidden from callers whose
//! role is not `trusted` (`list`/`lookup`/`match` omit them, `get` and
//! friends answer `wamp.error.not_authorized`).
//!
//! ## Procedures
//! * `wamp.session.count(filter_authroles=None)` → int;
//!   `wamp.session.list(filter_authroles=None)` → ids (ascending).
//!   Sessions the router is already closing are not counted.
//! * `wamp.session.get(session_id)` → `{realm, session, authid, authrole,
//!   authmethod, authprovider, transport}` or `wamp.error.no_such_session`.
//! * `wamp.session.kill(session_id, reason=None, message=None)` → no
//!   result; the target gets `GOODBYE {message} reason` (default
//!   `wamp.close.killed`) and is detached at once. The caller's own id, or a
//!   session already closing, is `wamp.error.no_such_session` (spec); a
//!   reason that is not a valid URI is `wamp.error.invalid_uri`.
//! * `wamp.session.kill_by_authid(authid, ...)`,
//!   `wamp.session.kill_by_authrole(authrole, ...)`,
//!   `wamp.session.kill_all(reason=None, message=None)` → the number of
//!   sessions killed (`count|int`, as the spec's session meta API says;
//!   Crossbar returns a list of ids for the first two). The caller is never
//!   killed. Sessions killed together are detached before any meta
//!   event or testament is routed, so they never see each other's
//!   departure.
//! * `wamp.subscription.list(session_id=None)`,
//!   `wamp.registration.list(session_id=None)` → `{exact: [ids], prefix:
//!   [ids], wildcard: [ids]}` (ids ascending; with a session id, that
//!   session's, or `wamp.error.no_such_session`).
//! * `wamp.subscription.lookup(topic, options={match})`,
//!   `wamp.registration.lookup(procedure, options={match})` → id or null.
//! * `wamp.subscription.match(topic)` → list of ids or null;
//!   `wamp.registration.match(procedure)` → the id a call would be routed
//!   to, or null.
//! * `wamp.subscription.get(id)` → `{id, created, uri, match}`;
//!   `wamp.registration.get(id)` → `{id, created, uri, match, invoke}`.
//!   `created` is an ISO 8601 UTC string with milliseconds
//!   (`2024-05-01T12:00:00.000Z`, Crossbar's format) taken from the wall
//!   clock the runtime passes with [`Realm::set_wall_clock`] — the engine
//!   has no clock of its own — or null if it never did.
//! * `wamp.subscription.list_subscribers(id)` /
//!   `wamp.registration.list_callees(id)` → session ids;
//!   `count_subscribers` / `count_callees` → int. Unknown ids:
//!   `wamp.error.no_such_subscription` / `no_such_registration`.
//! * `wamp.registration.remove_callee(registration_id, callee_id,
//!   reason=None)` / `wamp.subscription.remove_subscriber(subscription_id,
//!   subscriber_id, reason=None)` → no result (Crossbar). The callee
//!   (subscriber) is removed as by [`Realm::revoke_callee`]
//!   ([`Realm::revoke_subscriber`]): it gets `UNREGISTERED [0,
//!   {registration, reason}]` (`UNSUBSCRIBED [0, {subscription, reason}]`)
//!   if it announced `registration_revocation` (`subscription_revocation`),
//!   and is removed silently otherwise. Errors, checked in Crossbar's
//!   order: an unknown or closing session is `wamp.error.no_such_session`;
//!   an unknown id, a protected URI for a non-trusted caller, or a session
//!   that is not attached to it is `no_such_registration` /
//!   `no_such_subscription`; a reason that is not a valid URI is
//!   `wamp.error.invalid_uri`.
//!
//! ## Events
//! Published by the router through the normal broker path (subscribers
//! need `subscribe` permission on the `wamp.` topic), after the reply to the
//! request that caused them, with no publisher disclosure:
//! * `wamp.session.on_join [details]` (the `wamp.session.get` dict),
//!   `wamp.session.on_leave [session, authid, authrole]` (spec; Crossbar
//!   sends only the id, which is the first argument here too);
//! * `wamp.subscription.on_create [session, {id, created, uri, match}]`,
//!   `on_subscribe [session, id]`, `on_unsubscribe [session, id]`,
//!   `on_delete [session, id]`, and the `wamp.registration.*` analogues
//!   (`on_create` details also carry `invoke`). As in Crossbar, there are no
//!   events for subscriptions to `wamp.` topics.
//!
//! ## Testaments
//! `wamp.session.add_testament(topic, args, kwargs, publish_options=None,
//! scope="destroyed")` stores an event for the calling session and returns
//! its publication id (Crossbar); `wamp.session.flush_testaments(scope=
//! "destroyed")` drops that scope's testaments and returns how many. When
//! the session ends — GOODBYE from either side, ABORT, kill, or a lost
//! transport; this router has no session resumption, so "detached" and
//! "destroyed" coincide — its `detached` testaments, then its `destroyed`
//! ones, are published in the order added, as publications of that session
//! (its role's publisher disclosure applies; `acknowledge` and `exclude_me`
//! are ignored) with the id returned by `add_testament`. The topic and
//! options are checked when the testament is added (`invalid_uri` for an
//! invalid or `wamp.` topic, `not_authorized` if the role may not publish
//! there, `invalid_argument` for malformed black/whitelists). A bad scope
//! is `wamp.error.testament_error` (Crossbar); so is exceeding
//! [`MetaConfig::max_testaments`] or [`MetaConfig::max_testament_payload`].

use std::time::{SystemTime, UNIX_EPOCH};

use rand::Rng;
use wamp_proto::{Dict, List, Payload, PublicationId, RegistrationId, SessionId, SubscriptionId, Value, MAX_ID};

use super::broker::{publication_details, Deferred, Receivers};
use super::{opt_bool, router_roles, uri_ok, uris, Action, MatchPolicy, Realm, Session};

/// Meta API configuration of a realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaConfig {
    /// Meta procedures, meta events and testaments (default true).
    pub enabled: bool,
    /// Most testaments one session may hold, both scopes together
    /// (default [`MetaConfig::DEFAULT_MAX_TESTAMENTS`]).
    pub max_testaments: usize,
    /// Largest encoded `add_testament` call payload in bytes (default
    /// [`MetaConfig::DEFAULT_MAX_TESTAMENT_PAYLOAD`]).
    pub max_testament_payload: usize,
}

impl MetaConfig {
    /// Default of [`MetaConfig::max_testaments`].
    pub const DEFAULT_MAX_TESTAMENTS: usize = 32;
    /// Default of [`MetaConfig::max_testament_payload`] (64 KiB).
    pub const DEFAULT_MAX_TESTAMENT_PAYLOAD: usize = 64 * 1024;
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            enabled: true,
            max_testaments: Self::DEFAULT_MAX_TESTAMENTS,
            max_testament_payload: Self::DEFAULT_MAX_TESTAMENT_PAYLOAD,
        }
    }
}

pub(super) const SESSION_ON_JOIN: &str = "wamp.session.on_join";
pub(super) const SESSION_ON_LEAVE: &str = "wamp.session.on_leave";
pub(super) const SUBSCRIPTION_ON_CREATE: &str = "wamp.subscription.on_create";
pub(super) const SUBSCRIPTION_ON_SUBSCRIBE: &str = "wamp.subscription.on_subscribe";
pub(super) const SUBSCRIPTION_ON_UNSUBSCRIBE: &str = "wamp.subscription.on_unsubscribe";
pub(super) const SUBSCRIPTION_ON_DELETE: &str = "wamp.subscription.on_delete";
pub(super) const REGISTRATION_ON_CREATE: &str = "wamp.registration.on_create";
pub(super) const REGISTRATION_ON_REGISTER: &str = "wamp.registration.on_register";
pub(super) const REGISTRATION_ON_UNREGISTER: &str = "wamp.registration.on_unregister";
pub(super) const REGISTRATION_ON_DELETE: &str = "wamp.registration.on_delete";

/// Every meta procedure the realm answers when the meta API is on.
pub(super) const PROCEDURES: [&str; 23] = [
    "wamp.session.count",
    "wamp.session.list",
    "wamp.session.get",
    "wamp.session.kill",
    "wamp.session.kill_by_authid",
    "wamp.session.kill_by_authrole",
    "wamp.session.kill_all",
    "wamp.session.add_testament",
    "wamp.session.flush_testaments",
    "wamp.subscription.list",
    "wamp.subscription.lookup",
    "wamp.subscription.match",
    "wamp.subscription.get",
    "wamp.subscription.list_subscribers",
    "wamp.subscription.count_subscribers",
    "wamp.registration.list",
    "wamp.registration.lookup",
    "wamp.registration.match",
    "wamp.registration.get",
    "wamp.registration.list_callees",
    "wamp.registration.count_callees",
    "wamp.subscription.remove_subscriber",
    "wamp.registration.remove_callee",
];

/// A meta procedure's reply: a single positional result (`None`: an empty
/// RESULT), or `(error URI, message)`.
pub(super) type MetaReply = Result<Option<Value>, (&'static str, String)>;

/// One stored testament.
#[derive(Clone, Debug)]
pub(super) struct Testament {
    topic: String,
    details: Dict,
    receivers: Receivers,
    retain: bool,
    publication: PublicationId,
    payload: Payload,
    receiver_options: Dict,
}

/// A session's testaments per scope, in the order added.
#[derive(Clone, Debug, Default)]
pub(super) struct Testaments {
    detached: Vec<Testament>,
    destroyed: Vec<Testament>,
}

impl Testaments {
    fn len(&self) -> usize {
        self.detached.len() + self.destroyed.len()
    }

    fn scope(&mut self, scope: &str) -> Option<&mut Vec<Testament>> {
        match scope {
            "detached" => Some(&mut self.detached),
            "destroyed" => Some(&mut self.destroyed),
            _ => None,
        }
    }
}

/// Positional-or-keyword arguments of a meta call.
struct Args {
    args: List,
    kwargs: Dict,
}

impl Args {
    fn parse(payload: &Payload) -> Result<Args, (&'static str, String)> {
        let (args, kwargs) = payload.to_values().map_err(|e| (uris::INVALID_ARGUMENT, e.to_string()))?;
        Ok(Args { args: args.unwrap_or_default(), kwargs: kwargs.unwrap_or_default() })
    }

    /// Argument `i` (positional) or `name` (keyword); null counts as absent.
    fn get(&self, i: usize, name: &str) -> Option<&Value> {
        self.args.get(i).or_else(|| self.kwargs.get(name)).filter(|v| !matches!(v, Value::Null))
    }

    fn id(&self, i: usize, name: &str) -> Result<u64, (&'static str, String)> {
        self.get(i, name)
            .and_then(Value::as_u64)
            .filter(|v| (1..=MAX_ID).contains(v))
            .ok_or_else(|| (uris::INVALID_ARGUMENT, format!("'{name}' must be an ID")))
    }

    fn string(&self, i: usize, name: &str) -> Result<&str, (&'static str, String)> {
        self.get(i, name)
            .and_then(Value::as_str)
            .ok_or_else(|| (uris::INVALID_ARGUMENT, format!("'{name}' must be a string")))
    }

    fn opt_string(&self, i: usize, name: &str) -> Result<Option<&str>, (&'static str, String)> {
        match self.get(i, name) {
            None => Ok(None),
            Some(v) => {
                v.as_str().map(Some).ok_or_else(|| (uris::INVALID_ARGUMENT, format!("'{name}' must be a string")))
            }
        }
    }

    /// An optional list of strings (`filter_authroles`).
    fn opt_strings(&self, i: usize, name: &str) -> Result<Option<Vec<&str>>, (&'static str, String)> {
        let Some(v) = self.get(i, name) else { return Ok(None) };
        let bad = || (uris::INVALID_ARGUMENT, format!("'{name}' must be a list of strings"));
        let list = v.as_list().ok_or_else(bad)?;
        list.iter().map(|x| x.as_str().ok_or_else(bad)).collect::<Result<Vec<_>, _>>().map(Some)
    }

    /// The `match` of an optional `options` dict.
    fn match_policy(&self, i: usize) -> Result<MatchPolicy, (&'static str, String)> {
        let Some(options) = self.get(i, "options") else { return Ok(MatchPolicy::Exact) };
        let bad =
            || (uris::INVALID_ARGUMENT, "'options' must be a dict with 'match' exact, prefix or wildcard".to_owned());
        let options = options.as_dict().ok_or_else(bad)?;
        match options.get("match").map(Value::as_str) {
            None | Some(Some("exact")) => Ok(MatchPolicy::Exact),
            Some(Some("prefix")) => Ok(MatchPolicy::Prefix),
            Some(Some("wildcard")) => Ok(MatchPolicy::Wildcard),
            Some(_) => Err(bad()),
        }
    }
}

/// Crossbar's `is_protected_uri`.
fn protected(uri: &str, trusted: bool) -> bool {
    !trusted && (uri.starts_with("wamp.") || uri.starts_with("crossbar."))
}

fn policy_name(p: MatchPolicy) -> &'static str {
    match p {
        MatchPolicy::Exact => "exact",
        MatchPolicy::Prefix => "prefix",
        MatchPolicy::Wildcard => "wildcard",
    }
}

fn ids_value(mut ids: Vec<u64>) -> Value {
    ids.sort_unstable();
    Value::List(ids.into_iter().map(Value::UInt).collect())
}

/// `{exact: [...], prefix: [...], wildcard: [...]}`.
fn by_policy(items: impl Iterator<Item = (MatchPolicy, u64)>) -> Value {
    let (mut exact, mut prefix, mut wildcard) = (Vec::new(), Vec::new(), Vec::new());
    for (p, id) in items {
        match p {
            MatchPolicy::Exact => exact.push(id),
            MatchPolicy::Prefix => prefix.push(id),
            MatchPolicy::Wildcard => wildcard.push(id),
        }
    }
    let mut d = Dict::new();
    d.insert("exact".into(), ids_value(exact));
    d.insert("prefix".into(), ids_value(prefix));
    d.insert("wildcard".into(), ids_value(wildcard));
    Value::Dict(d)
}

/// ISO 8601 UTC with milliseconds, as Crossbar's `utcnow()`.
pub(super) fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

fn created_value(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| Value::Str(iso8601(t)))
}

/// The session details dict of `wamp.session.get` and `on_join`.
fn session_details(realm: &str, s: &Session) -> Value {
    let i = &s.info;
    let mut d = Dict::new();
    d.insert("realm".into(), Value::Str(realm.to_owned()));
    d.insert("session".into(), Value::UInt(i.session.get()));
    d.insert("authid".into(), Value::Str(i.authid.clone()));
    d.insert("authrole".into(), Value::Str(i.authrole.clone()));
    d.insert("authmethod".into(), Value::Str(i.authmethod.clone()));
    d.insert("authprovider".into(), Value::Str(i.authprovider.clone()));
    d.insert("transport".into(), Value::Dict(i.transport.clone()));
    Value::Dict(d)
}

impl Realm {
    /// Switches the meta API (procedures, events, testaments) on or off.
    /// Meant to be called right after [`Realm::new`]; WELCOMEs sent
    /// afterwards announce the matching features.
    pub fn with_meta_api(mut self, enabled: bool) -> Realm {
        self.set_meta_config(MetaConfig { enabled, ..self.meta.clone() });
        self
    }

    /// Applies a full meta API configuration (see [`Realm::with_meta_api`]).
    pub fn with_meta_config(mut self, config: MetaConfig) -> Realm {
        self.set_meta_config(config);
        self
    }

    /// Replaces the meta API configuration at run time. Sessions already
    /// joined keep the features their WELCOME announced, but get the new
    /// behaviour.
    pub fn set_meta_config(&mut self, config: MetaConfig) {
        self.router_roles = router_roles(&config);
        self.meta = config;
    }

    /// The meta API configuration.
    pub fn meta_config(&self) -> &MetaConfig {
        &self.meta
    }

    /// Tells the engine the wall-clock time, used for the `created`
    /// timestamps of subscriptions and registrations created afterwards
    /// (the engine has no clock). Call it with [`Realm::set_now`].
    pub fn set_wall_clock(&mut self, now: SystemTime) {
        self.wall_clock = Some(now);
    }

    /// True if `procedure` is a meta procedure answered by the realm now.
    pub(super) fn is_meta_procedure(&self, procedure: &str) -> bool {
        self.meta.enabled && PROCEDURES.contains(&procedure)
    }

    /// True if a meta event on `topic` would reach anyone.
    fn meta_wanted(&mut self, topic: &str) -> bool {
        self.meta.enabled && (self.operator_events || self.broker.has_match(topic))
    }

    /// Also hand every meta event of this realm to the runtime as
    /// [`super::Transmit::Operator`] (the management API's
    /// `bridge_meta_api`). Needs the meta API on.
    pub fn set_operator_events(&mut self, on: bool) {
        self.operator_events = on;
    }

    /// Queues a meta event with positional `args`.
    fn defer_meta(&mut self, topic: &str, args: List) {
        if self.operator_events {
            self.out.queue.push_back(super::Transmit::Operator { topic: topic.to_owned(), args: args.clone() });
        }
        self.deferred.push_back(Deferred {
            topic: topic.to_owned(),
            details: Dict::new(),
            receivers: Receivers::default(),
            retain: false,
            publication: None,
            payload: Payload::Values { args: Some(args), kwargs: None },
            receiver_options: Dict::new(),
        });
    }

    /// Queues `topic [session, id]` if anyone listens.
    pub(super) fn meta_event_ids(&mut self, topic: &str, session: SessionId, id: u64) {
        // A ghost's own worker publishes its meta events.
        if !self.is_ghost(session) && self.meta_wanted(topic) {
            self.defer_meta(topic, vec![Value::UInt(session.get()), Value::UInt(id)]);
        }
    }

    pub(super) fn session_joined_meta(&mut self, sid: SessionId) {
        if !self.meta_wanted(SESSION_ON_JOIN) {
            return;
        }
        let Some(s) = self.sessions.get(&sid) else { return };
        let details = session_details(&self.name, s);
        self.defer_meta(SESSION_ON_JOIN, vec![details]);
    }

    pub(super) fn session_left_meta(&mut self, sid: SessionId) {
        if !self.meta_wanted(SESSION_ON_LEAVE) {
            return;
        }
        let Some(s) = self.sessions.get(&sid) else { return };
        let args = vec![Value::UInt(sid.get()), Value::Str(s.info.authid.clone()), Value::Str(s.info.authrole.clone())];
        self.defer_meta(SESSION_ON_LEAVE, args);
    }

    fn subscription_details(&self, id: SubscriptionId) -> Option<Value> {
        let sub = self.broker.get(id)?;
        let mut d = Dict::new();
        d.insert("id".into(), Value::UInt(id.get()));
        d.insert("created".into(), created_value(sub.created));
        d.insert("uri".into(), Value::Str(sub.topic.clone()));
        d.insert("match".into(), Value::Str(policy_name(sub.policy).into()));
        Some(Value::Dict(d))
    }

    fn registration_details(&self, id: RegistrationId) -> Option<Value> {
        let reg = self.dealer.registration(id)?;
        let mut d = Dict::new();
        d.insert("id".into(), Value::UInt(id.get()));
        d.insert("created".into(), created_value(reg.created));
        d.insert("uri".into(), Value::Str(reg.uri.to_owned()));
        d.insert("match".into(), Value::Str(policy_name(reg.policy).into()));
        d.insert("invoke".into(), Value::Str(reg.invoke.into()));
        Some(Value::Dict(d))
    }

    pub(super) fn subscription_created_meta(&mut self, sid: SessionId, id: SubscriptionId) {
        if !self.is_ghost(sid) && self.meta_wanted(SUBSCRIPTION_ON_CREATE) {
            if let Some(d) = self.subscription_details(id) {
                self.defer_meta(SUBSCRIPTION_ON_CREATE, vec![Value::UInt(sid.get()), d]);
            }
        }
    }

    pub(super) fn registration_created_meta(&mut self, sid: SessionId, id: RegistrationId) {
        if !self.is_ghost(sid) && self.meta_wanted(REGISTRATION_ON_CREATE) {
            if let Some(d) = self.registration_details(id) {
                self.defer_meta(REGISTRATION_ON_CREATE, vec![Value::UInt(sid.get()), d]);
            }
        }
    }

    /// Queues the testaments of a departing session (detached scope first).
    pub(super) fn fire_testaments(&mut self, testaments: Testaments) {
        if !self.meta.enabled {
            return;
        }
        for t in testaments.detached.into_iter().chain(testaments.destroyed) {
            self.deferred.push_back(Deferred {
                topic: t.topic,
                details: t.details,
                receivers: t.receivers,
                retain: t.retain,
                publication: Some(t.publication),
                payload: t.payload,
                receiver_options: t.receiver_options,
            });
            self.out.stats.publications += 1;
        }
    }

    /// Answers meta procedure `procedure` for caller `sid` (already
    /// authorized to call it).
    pub(super) fn call_meta(&mut self, sid: SessionId, procedure: &str, payload: &Payload) -> MetaReply {
        self.call_meta_as(Some(sid), procedure, payload)
    }

    /// A meta procedure called by the router's operator (the management
    /// API's `remote.realm.meta.*` and `kill_by_authid`), not by a session:
    /// trusted, excluding nobody. `wamp.session.add_testament` and
    /// `flush_testaments` need a session and are refused.
    pub fn operator_meta_call(&mut self, procedure: &str, payload: &Payload) -> Result<Value, (String, String)> {
        if !self.is_meta_procedure(procedure) {
            return Err((uris::NO_SUCH_PROCEDURE.to_owned(), format!("no meta procedure '{procedure}' on this realm")));
        }
        let r = self.call_meta_as(None, procedure, payload);
        self.flush_deferred();
        r.map(|v| v.unwrap_or(Value::Null)).map_err(|(u, m)| (u.to_owned(), m))
    }

    fn call_meta_as(&mut self, caller: Option<SessionId>, procedure: &str, payload: &Payload) -> MetaReply {
        let a = Args::parse(payload)?;
        let trusted = match caller {
            None => true,
            Some(sid) => match self.sessions.get(&sid) {
                Some(c) => c.info.authrole == "trusted",
                None => return Err((uris::NO_SUCH_SESSION, "no session".into())),
            },
        };
        let no_session = || (uris::NO_SUCH_SESSION, "testaments belong to a session".to_owned());
        match procedure {
            "wamp.session.count" | "wamp.session.list" => {
                let filter = a.opt_strings(0, "filter_authroles")?;
                let ids: Vec<u64> = self
                    .sessions
                    .values()
                    .filter(|s| !s.closing)
                    .filter(|s| filter.as_ref().is_none_or(|f| f.contains(&s.info.authrole.as_str())))
                    .map(|s| s.info.session.get())
                    .collect();
                Ok(Some(if procedure == "wamp.session.count" { Value::UInt(ids.len() as u64) } else { ids_value(ids) }))
            }
            "wamp.session.get" => {
                let id = a.id(0, "session_id")?;
                match self.sessions.get(&SessionId::from_valid(id)).filter(|s| !s.closing) {
                    Some(s) => Ok(Some(session_details(&self.name, s))),
                    None => Err(no_such_session(id)),
                }
            }
            "wamp.session.kill" => {
                let id = a.id(0, "session_id")?;
                let (reason, message) = kill_reason(&a, 1)?;
                let target = SessionId::from_valid(id);
                if Some(target) == caller || self.sessions.get(&target).is_none_or(|s| s.closing) {
                    return Err(no_such_session(id));
                }
                self.kill(&[target], reason, message);
                Ok(None)
            }
            "wamp.session.kill_by_authid" | "wamp.session.kill_by_authrole" | "wamp.session.kill_all" => {
                let (key, first) = match procedure {
                    "wamp.session.kill_by_authid" => (Some(a.string(0, "authid")?), 1),
                    "wamp.session.kill_by_authrole" => (Some(a.string(0, "authrole")?), 1),
                    _ => (None, 0),
                };
                let (reason, message) = kill_reason(&a, first)?;
                let by_authid = procedure == "wamp.session.kill_by_authid";
                let mut targets: Vec<SessionId> = self
                    .sessions
                    .values()
                    .filter(|s| Some(s.info.session) != caller && !s.closing)
                    .filter(|s| match key {
                        None => true,
                        Some(k) if by_authid => s.info.authid == k,
                        Some(k) => s.info.authrole == k,
                    })
                    .map(|s| s.info.session)
                    .collect();
                targets.sort_unstable();
                self.kill(&targets, reason, message);
                // The spec's `count|int` for all three (Crossbar returns the
                // list of ids for the by-authid/authrole variants).
                Ok(Some(Value::UInt(targets.len() as u64)))
            }
            "wamp.session.add_testament" => {
                let sid = caller.ok_or_else(no_session)?;
                self.add_testament(sid, &a, payload).map(Some)
            }
            "wamp.session.flush_testaments" => {
                let scope = a.opt_string(0, "scope")?.unwrap_or("destroyed");
                let sid = caller.ok_or_else(no_session)?;
                let Some(s) = self.sessions.get_mut(&sid) else { return Ok(None) };
                let Some(list) = s.testaments.scope(scope) else { return Err(bad_scope()) };
                let n = list.len();
                list.clear();
                Ok(Some(Value::UInt(n as u64)))
            }
            "wamp.subscription.list" => match a.get(0, "session_id") {
                None => Ok(Some(by_policy(
                    self.broker.iter().filter(|s| !protected(&s.topic, trusted)).map(|s| (s.policy, s.id.get())),
                ))),
                Some(_) => {
                    let id = a.id(0, "session_id")?;
                    let Some(s) = self.sessions.get(&SessionId::from_valid(id)) else {
                        return Err(no_such_session(id));
                    };
                    Ok(Some(by_policy(
                        s.subscriptions.iter().filter_map(|i| self.broker.get(*i)).map(|s| (s.policy, s.id.get())),
                    )))
                }
            },
            "wamp.subscription.lookup" => {
                let topic = a.string(0, "topic")?;
                let policy = a.match_policy(1)?;
                Ok(Some(
                    self.broker
                        .lookup(policy, topic)
                        .filter(|s| !protected(&s.topic, trusted))
                        .map_or(Value::Null, |s| Value::UInt(s.id.get())),
                ))
            }
            "wamp.subscription.match" => {
                let topic = a.string(0, "topic")?.to_owned();
                let ids: Vec<u64> = self
                    .broker
                    .matching(&topic)
                    .into_iter()
                    .filter(|s| !protected(&s.topic, trusted))
                    .map(|s| s.id.get())
                    .collect();
                Ok(Some(if ids.is_empty() {
                    Value::Null
                } else {
                    Value::List(ids.into_iter().map(Value::UInt).collect())
                }))
            }
            "wamp.subscription.get" | "wamp.subscription.list_subscribers" | "wamp.subscription.count_subscribers" => {
                let id = a.id(0, "subscription_id")?;
                let sid_ = SubscriptionId::from_valid(id);
                let Some(sub) = self.broker.get(sid_) else {
                    return Err((
                        uris::NO_SUCH_SUBSCRIPTION,
                        format!("no subscription with ID {id} exists on this broker"),
                    ));
                };
                if protected(&sub.topic, trusted) {
                    return Err((
                        uris::NOT_AUTHORIZED,
                        format!(
                            "not authorized to access subscription for protected URI '{}'",
                            super::clip(&sub.topic)
                        ),
                    ));
                }
                Ok(Some(match procedure {
                    "wamp.subscription.get" => self.subscription_details(sid_).unwrap_or(Value::Null),
                    "wamp.subscription.list_subscribers" => {
                        ids_value(sub.subscribers.keys().chain(sub.remote.keys()).map(|s| s.get()).collect())
                    }
                    _ => Value::UInt((sub.subscribers.len() + sub.remote.len()) as u64),
                }))
            }
            "wamp.registration.list" => match a.get(0, "session_id") {
                None => Ok(Some(by_policy(
                    self.dealer.registrations().filter(|r| !protected(r.uri, trusted)).map(|r| (r.policy, r.id.get())),
                ))),
                Some(_) => {
                    let id = a.id(0, "session_id")?;
                    let Some(s) = self.sessions.get(&SessionId::from_valid(id)) else {
                        return Err(no_such_session(id));
                    };
                    Ok(Some(by_policy(
                        s.rpc
                            .registrations
                            .iter()
                            .filter_map(|i| self.dealer.registration(*i))
                            .map(|r| (r.policy, r.id.get())),
                    )))
                }
            },
            "wamp.registration.lookup" => {
                let uri = a.string(0, "procedure")?;
                let policy = a.match_policy(1)?;
                let id = self.dealer.lookup_exact(policy, uri).filter(|_| !protected(uri, trusted));
                Ok(Some(id.map_or(Value::Null, |i| Value::UInt(i.get()))))
            }
            "wamp.registration.match" => {
                let uri = a.string(0, "procedure")?;
                let id = self
                    .dealer
                    .best_match(uri)
                    .and_then(|i| self.dealer.registration(i))
                    .filter(|r| !protected(r.uri, trusted))
                    .map(|r| r.id);
                Ok(Some(id.map_or(Value::Null, |i| Value::UInt(i.get()))))
            }
            "wamp.registration.get" | "wamp.registration.list_callees" | "wamp.registration.count_callees" => {
                let id = a.id(0, "registration_id")?;
                let rid = RegistrationId::from_valid(id);
                let Some(reg) = self.dealer.registration(rid) else {
                    return Err((
                        uris::NO_SUCH_REGISTRATION,
                        format!("no registration with ID {id} exists on this dealer"),
                    ));
                };
                if protected(reg.uri, trusted) {
                    return Err((
                        uris::NOT_AUTHORIZED,
                        format!("not authorized to access registration for protected URI '{}'", super::clip(reg.uri)),
                    ));
                }
                Ok(Some(match procedure {
                    "wamp.registration.get" => self.registration_details(rid).unwrap_or(Value::Null),
                    "wamp.registration.list_callees" => ids_value(reg.callees.iter().map(|s| s.get()).collect()),
                    _ => Value::UInt(reg.callees.len() as u64),
                }))
            }
            "wamp.registration.remove_callee" => {
                let id = a.id(0, "registration_id")?;
                let callee = a.id(1, "callee_id")?;
                let reason = revoke_reason(&a, 2)?;
                let callee_sid = SessionId::from_valid(callee);
                if self.sessions.get(&callee_sid).is_none_or(|s| s.closing) {
                    return Err(no_such_session(callee));
                }
                let rid = RegistrationId::from_valid(id);
                let attached = match self.dealer.registration(rid) {
                    Some(reg) if !protected(reg.uri, trusted) => reg.callees.contains(&callee_sid),
                    _ => {
                        return Err((
                            uris::NO_SUCH_REGISTRATION,
                            format!("no registration with ID {id} exists on this dealer"),
                        ))
                    }
                };
                if !attached || !self.revoke_callee_inner(rid, callee_sid, reason) {
                    return Err((
                        uris::NO_SUCH_REGISTRATION,
                        format!("session {callee} is not registered on registration {id} on this dealer"),
                    ));
                }
                Ok(None)
            }
            "wamp.subscription.remove_subscriber" => {
                let id = a.id(0, "subscription_id")?;
                let subscriber = a.id(1, "subscriber_id")?;
                let reason = revoke_reason(&a, 2)?;
                let subscriber_sid = SessionId::from_valid(subscriber);
                if self.sessions.get(&subscriber_sid).is_none_or(|s| s.closing) {
                    return Err(no_such_session(subscriber));
                }
                let sub_id = SubscriptionId::from_valid(id);
                let attached = match self.broker.get(sub_id) {
                    Some(sub) if !protected(&sub.topic, trusted) => sub.subscribers.contains_key(&subscriber_sid),
                    _ => {
                        return Err((
                            uris::NO_SUCH_SUBSCRIPTION,
                            format!("no subscription with ID {id} exists on this broker"),
                        ))
                    }
                };
                if !attached || !self.revoke_subscriber_inner(sub_id, subscriber_sid, reason) {
                    return Err((
                        uris::NO_SUCH_SUBSCRIPTION,
                        format!("session {subscriber} is not subscribed on subscription {id} on this broker"),
                    ));
                }
                Ok(None)
            }
            _ => Err((uris::NO_SUCH_PROCEDURE, format!("no meta procedure '{}'", super::clip(procedure)))),
        }
    }

    /// Closes `targets` with GOODBYE; all are detached before any of the
    /// resulting events is routed (they are deferred).
    fn kill(&mut self, targets: &[SessionId], reason: &str, message: &str) {
        for &t in targets {
            self.goodbye_inner(t, reason, message);
        }
    }

    /// `wamp.session.add_testament(topic, args, kwargs, publish_options=None,
    /// scope="destroyed")`.
    fn add_testament(&mut self, sid: SessionId, a: &Args, payload: &Payload) -> Result<Value, (&'static str, String)> {
        let topic = a.string(0, "topic")?.to_owned();
        let args = match a.get(1, "args") {
            None => None,
            Some(Value::List(l)) => Some(l.clone()),
            Some(_) => return Err((uris::INVALID_ARGUMENT, "'args' must be a list".into())),
        };
        let kwargs = match a.get(2, "kwargs") {
            None => None,
            Some(Value::Dict(d)) => Some(d.clone()).filter(|d| !d.is_empty()),
            Some(_) => return Err((uris::INVALID_ARGUMENT, "'kwargs' must be a dict".into())),
        };
        let options = match a.get(3, "publish_options") {
            None => Dict::new(),
            Some(Value::Dict(d)) => d.clone(),
            Some(_) => return Err((uris::INVALID_ARGUMENT, "'publish_options' must be a dict".into())),
        };
        let scope = a.opt_string(4, "scope")?.unwrap_or("destroyed");
        if scope != "detached" && scope != "destroyed" {
            return Err(bad_scope());
        }
        if raw_size(payload) > self.meta.max_testament_payload {
            let max = self.meta.max_testament_payload;
            return Err((uris::TESTAMENT_ERROR, format!("testament payload exceeds {max} bytes")));
        }
        if !uri_ok(&topic) || topic.starts_with("wamp.") {
            return Err((uris::INVALID_URI, format!("testament for invalid topic URI '{}'", super::clip(&topic))));
        }
        let Some(s) = self.sessions.get(&sid) else { return Err(no_such_session(sid.get())) };
        let auth = match self.roles.get(s.role) {
            Some(r) => r.authorize(&topic, Action::Publish),
            None => super::Authorization::DENIED,
        };
        if !auth.allowed {
            return Err((
                uris::NOT_AUTHORIZED,
                format!("session not authorized to publish to topic '{}'", super::clip(&topic)),
            ));
        }
        let receivers = Receivers::parse(&options).map_err(|e| (uris::INVALID_ARGUMENT, e))?;
        if s.testaments.len() >= self.meta.max_testaments {
            let max = self.meta.max_testaments;
            return Err((uris::TESTAMENT_ERROR, format!("a session may hold at most {max} testaments")));
        }
        let details = publication_details(s, auth.disclose, &options);
        let retain = opt_bool(&options, "retain") == Some(true);
        let publication = PublicationId::from_valid(self.rng.gen_range(1..=MAX_ID));
        let t = Testament {
            receiver_options: super::broker::receiver_options(&options),
            topic,
            details,
            receivers,
            retain,
            publication,
            payload: Payload::Values { args: Some(args.unwrap_or_default()), kwargs },
        };
        if let Some(list) = self.sessions.get_mut(&sid).and_then(|s| s.testaments.scope(scope)) {
            list.push(t);
        }
        Ok(Value::UInt(publication.get()))
    }
}

fn no_such_session(id: u64) -> (&'static str, String) {
    (uris::NO_SUCH_SESSION, format!("no session with ID {id} exists on this router"))
}

fn bad_scope() -> (&'static str, String) {
    (uris::TESTAMENT_ERROR, "scope must be destroyed or detached".to_owned())
}

/// The optional `reason` URI of the revocation procedures (positional at
/// `i`).
fn revoke_reason(a: &Args, i: usize) -> Result<Option<&str>, (&'static str, String)> {
    let reason = a.opt_string(i, "reason")?;
    if let Some(r) = reason.filter(|r| !uri_ok(r)) {
        return Err((uris::INVALID_URI, format!("invalid reason URI '{}'", super::clip(r))));
    }
    Ok(reason)
}

/// `reason` and `message` of the kill procedures (positional from `first`).
fn kill_reason(a: &Args, first: usize) -> Result<(&str, &str), (&'static str, String)> {
    let reason = a.opt_string(first, "reason")?.unwrap_or(uris::CLOSE_KILLED);
    if !uri_ok(reason) {
        return Err((uris::INVALID_URI, format!("invalid reason URI '{}'", super::clip(reason))));
    }
    let message = a.opt_string(first + 1, "message")?.unwrap_or("");
    Ok((reason, message))
}

/// Encoded size of a call payload (0 for decoded values, which only tests
/// produce).
fn raw_size(p: &Payload) -> usize {
    match p {
        Payload::Raw { args, kwargs, .. } => {
            args.as_ref().map_or(0, bytes::Bytes::len) + kwargs.as_ref().map_or(0, bytes::Bytes::len)
        }
        Payload::Values { .. } => 0,
    }
}
