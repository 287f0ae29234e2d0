//! A managed node's session to its master, kept open: connect, log in with
//! the node key (cryptosign, authrole `node`), register the procedures the
//! [`UplinkHandler`] serves, answer invocations, publish its periodic
//! events, and reconnect with backoff when the master goes away.
//!
//! Used by the node controller (`junction edge start`: the node API) and by
//! each of its worker processes (the worker API under
//! `crossbarfabriccenter.node.<authid>.worker.<id>.`), so the master's calls
//! reach the process that can act on them. The handler never waits on the
//! uplink: a worker keeps serving whatever happens to it.

use std::time::{Duration, Instant, SystemTime};

use wamp_client::auth::Auth;
use wamp_client::conn::Conn;
use wamp_client::target::Target;
use wamp_client::{Session, SessionEvent};
use wamp_proto::{Dict, Serializer, Value};

use crate::error::ApiError;
use crate::master::GLOBAL_REALM;
use crate::node::{NodeAction, NodeIdentity};

/// Longest wait between two attempts to reach the master.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a key the master does not know waits before retrying.
pub const UNPAIRED_RETRY: Duration = Duration::from_secs(10);
/// How long the session blocks in a read before it looks at its timers.
const POLL: Duration = Duration::from_millis(100);

/// What an uplink serves.
pub trait UplinkHandler {
    /// The procedures to register (full URIs) once logged in as `id`; a URI
    /// ending in `.` is a prefix registration.
    fn procedures(&self, id: &NodeIdentity) -> Vec<String>;
    /// Answers `procedure` (a full URI from [`UplinkHandler::procedures`]).
    fn call(
        &mut self,
        id: &NodeIdentity,
        procedure: &str,
        args: &[Value],
        kwargs: &Dict,
    ) -> (Result<Value, ApiError>, NodeAction);
    /// A periodic publication (topic, args) and its period, if any.
    fn periodic(&mut self, _id: &NodeIdentity, _seq: u64) -> Option<(String, Vec<Value>)> {
        None
    }
    /// The publication (topic, args) that tells the master this uplink's
    /// procedures are all registered, so calls to them will find a callee.
    /// The node controller announces it (the master counts the node online
    /// from then on); workers need not.
    fn ready(&self, _id: &NodeIdentity) -> Option<(String, Vec<Value>)> {
        None
    }
    /// Events to publish now (polled between reads).
    fn events(&mut self, _id: &NodeIdentity) -> Vec<(String, Vec<Value>)> {
        Vec::new()
    }
}

/// Where and how to log in.
pub struct UplinkSetup {
    pub target: Target,
    /// The node key's private seed.
    pub seed: [u8; 32],
    /// Extra `authextra` keys (e.g. `cluster_ip`, `worker`).
    pub authextra: Dict,
    /// For the logs (`node`, `worker app1`).
    pub name: String,
    /// Period of [`UplinkHandler::periodic`], and the delay before its first run.
    pub period: Duration,
    pub first_after: Duration,
}

/// How long the uplink waits for any answer from the master after an
/// acknowledged heartbeat: three periods, at least 10 s.
pub fn silence_limit(period: Duration) -> Duration {
    (period * 3).max(Duration::from_secs(10))
}

enum Ended {
    Shutdown,
    Lost(String),
    Refused(String),
}

/// Runs the uplink until the master asks for a shutdown (then returns).
pub fn run(setup: &UplinkSetup, handler: &mut dyn UplinkHandler) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let t0 = Instant::now();
        match session(setup, handler) {
            Ended::Shutdown => return,
            Ended::Lost(e) => {
                if t0.elapsed() > BACKOFF_MAX * 2 {
                    backoff = Duration::from_millis(250);
                }
                tracing::warn!(uplink = %setup.name, error = %e, retry_in = ?backoff, "master unreachable or session lost; still serving");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Ended::Refused(e) => {
                tracing::warn!(uplink = %setup.name, error = %e, retry_in = ?UNPAIRED_RETRY, "the master refused this node (is it paired?)");
                std::thread::sleep(UNPAIRED_RETRY);
            }
        }
    }
}

fn session(setup: &UplinkSetup, handler: &mut dyn UplinkHandler) -> Ended {
    let tls = if setup.target.is_tls() {
        match wamp_client::tls::client_config(None, false) {
            Ok(t) => Some(t),
            Err(e) => return Ended::Lost(format!("TLS: {e}")),
        }
    } else {
        None
    };
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64) | 1;
    let mut conn =
        match Conn::open_with(&setup.target, tls.as_ref(), Serializer::Msgpack, Duration::from_secs(10), seed) {
            Ok(c) => c,
            Err(e) => return Ended::Lost(e.to_string()),
        };
    let auth = Auth {
        cryptosign: Some(setup.seed),
        authrole: Some(crate::master::ROLE_NODE.into()),
        authextra: setup.authextra.clone(),
        ..Auth::default()
    };
    let session = match conn.join_with(GLOBAL_REALM, &auth, Duration::from_secs(10)) {
        Ok(s) => s,
        Err(e) => {
            let e = e.to_string();
            return if e.contains("ABORT") { Ended::Refused(e) } else { Ended::Lost(e) };
        }
    };
    let w = conn.welcome_details();
    let text = |k: &str| w.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let pubkey = wamp_client::auth::public_key_hex(&setup.seed);
    let id = NodeIdentity {
        authid: text("authid"),
        pubkey,
        mrealm: text("realm"),
        session: session.get(),
        extra: w.get("authextra").and_then(Value::as_dict).cloned().unwrap_or_default(),
    };
    tracing::info!(uplink = %setup.name, authid = %id.authid, mrealm = %id.mrealm, session = id.session, "connected to the master");
    if let Err(e) = conn.stream().set_read_timeout(Some(POLL)) {
        return Ended::Lost(e.to_string());
    }
    let mut sess = Session::new();
    let procedures = handler.procedures(&id);
    // Registrations not answered yet; when none are left the ready
    // announcement goes out (once).
    let mut unanswered = std::collections::HashSet::new();
    let mut announced = false;
    for p in procedures {
        // A URI ending in '.' is registered as a prefix (exact
        // registrations of other sessions win over it).
        let mut opts = Dict::new();
        if p.ends_with('.') {
            opts.insert("match".into(), Value::Str("prefix".into()));
        }
        unanswered.insert(sess.register(&p, opts));
    }
    let mut next = Instant::now() + setup.first_after;
    let mut seq = 0u64;
    // The periodic publication (the heartbeat) is acknowledged, so a live
    // master always answers something; silence for `silent` after one
    // means the master (or the path to it) is gone even if TCP says
    // nothing: drop the connection and reconnect.
    let silent = silence_limit(setup.period);
    let mut unanswered_since: Option<Instant> = None;
    loop {
        if Instant::now() >= next {
            seq += 1;
            if let Some((topic, args)) = handler.periodic(&id, seq) {
                let mut ack = Dict::new();
                ack.insert("acknowledge".into(), Value::Bool(true));
                sess.publish(&topic, args, Dict::new(), ack);
                unanswered_since.get_or_insert_with(Instant::now);
            }
            next = Instant::now() + setup.period;
        }
        if let Some(since) = unanswered_since {
            if since.elapsed() > silent {
                return Ended::Lost(format!("the master did not answer for {:.0?}", since.elapsed()));
            }
        }
        if unanswered.is_empty() && !announced {
            announced = true;
            if let Some((topic, args)) = handler.ready(&id) {
                sess.publish(&topic, args, Dict::new(), Dict::new());
            }
        }
        for (topic, args) in handler.events(&id) {
            sess.publish(&topic, args, Dict::new(), Dict::new());
        }
        while let Some(m) = sess.poll_transmit() {
            if let Err(e) = conn.push(&m) {
                return Ended::Lost(e.to_string());
            }
        }
        if let Err(e) = conn.flush() {
            return Ended::Lost(e.to_string());
        }
        let msg = match conn.recv() {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        unanswered_since = None;
        match sess.handle(msg) {
            Ok(SessionEvent::Invocation { request, procedure, args, kwargs, .. }) => {
                let (r, action) = handler.call(&id, &procedure, &args, &kwargs);
                match r {
                    Ok(v) => sess.yield_result(request, vec![v], Dict::new()),
                    Err(e) => sess.yield_error(request, &e.uri, vec![Value::Str(e.message)], Dict::new()),
                }
                if action == NodeAction::Shutdown {
                    while let Some(m) = sess.poll_transmit() {
                        let _ = conn.push(&m);
                    }
                    let _ = conn.flush();
                    return Ended::Shutdown;
                }
            }
            Ok(SessionEvent::Registered { request, .. }) => {
                unanswered.remove(&request);
            }
            Ok(SessionEvent::Error { request, error, args, .. }) => {
                let msg = args.first().and_then(Value::as_str).unwrap_or("").to_owned();
                tracing::warn!(uplink = %setup.name, %error, %msg, "the master refused a registration or publication");
                // Announced anyway once all are answered: the node serves what it could register.
                unanswered.remove(&request);
            }
            Ok(SessionEvent::Closed { reason, message }) => {
                return Ended::Lost(format!("the master closed the session: {reason} {}", message.unwrap_or_default()));
            }
            Ok(_) => {}
            Err(e) => return Ended::Lost(format!("protocol error from the master: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_limit_is_three_periods_and_at_least_ten_seconds() {
        assert_eq!(silence_limit(Duration::from_secs(1)), Duration::from_secs(10));
        assert_eq!(silence_limit(Duration::from_secs(10)), Duration::from_secs(30));
    }
}
