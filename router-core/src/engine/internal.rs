//! Router-originated calls: the router itself calls a procedure registered
//! by a client (dynamic authenticators and authorizers, as Crossbar's
//! `authenticator` option, which calls `(realm, authid, details)`).
//!
//! [`Realm::internal_call`] routes a CALL with no caller session: the
//! callee receives an ordinary INVOCATION (no caller disclosure; `procedure`
//! in the details for a pattern registration), chosen by the registration's
//! invocation policy. Authorization does not apply — the router is the
//! caller — and the `wamp.` prefix is not special (clients cannot register
//! there anyway). The outcome, identified by the runtime's `token`, is
//! drained with [`Realm::poll_internal_result`]:
//!
//! * YIELD → `Ok(args[0])`, or `Ok(kwargs)` as a dict when there are no
//!   args, or `Ok(Null)` when the result is empty;
//! * ERROR from the callee → `Err((error_uri, args[0] if a string, else ""))`;
//! * no registration → `Err("wamp.error.no_such_procedure")`; an invalid URI
//!   → `wamp.error.invalid_uri`; a sharded registration (internal calls
//!   carry no `rkey`) → `wamp.error.invalid_argument`;
//! * the callee leaves → `Err("wamp.error.canceled")`;
//! * the deadline passes (the given timeout, else
//!   [`super::DealerConfig::default_call_timeout`], capped by
//!   `max_call_timeout`; enforced by [`Realm::handle_timeout`] like any
//!   call) → `Err("wamp.error.timeout")`, and a canceling-capable callee gets
//!   INTERRUPT.
//!
//! Exactly one outcome is produced per accepted call. At most
//! [`super::DealerConfig::max_pending_calls_per_session`] internal calls may
//! be in flight at once.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use thiserror::Error;
use wamp_proto::{Dict, List, Payload, RequestId, SessionId, Value};

use super::{uris, Realm};

/// The outcome of an internal call: the result value, or `(error URI,
/// message)`.
pub type InternalOutcome = Result<Value, (String, String)>;

/// Why [`Realm::internal_call`] did not accept a call (nothing is queued).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum InternalCallError {
    /// A call with this token is still in flight.
    #[error("internal call token {0} is already in flight")]
    DuplicateToken(u64),
    /// Too many internal calls are in flight.
    #[error("too many internal calls in flight (limit {0})")]
    TooManyPending(usize),
}

/// Internal calls in flight and outcomes not yet polled.
#[derive(Default)]
pub(super) struct InternalCalls {
    /// token → (callee, invocation id).
    pending: HashMap<u64, (SessionId, RequestId)>,
    results: VecDeque<(u64, InternalOutcome)>,
}

impl InternalCalls {
    pub(super) fn track(&mut self, token: u64, callee: SessionId, inv: RequestId) {
        self.pending.insert(token, (callee, inv));
    }

    pub(super) fn forget(&mut self, token: u64) {
        self.pending.remove(&token);
    }
}

/// The value an internal call's result stands for.
pub(super) fn result_value(payload: &Payload) -> InternalOutcome {
    match payload.to_values() {
        Ok((args, kwargs)) => Ok(match (args.and_then(|a| a.into_iter().next()), kwargs) {
            (Some(first), _) => first,
            (None, Some(k)) if !k.is_empty() => Value::Dict(k),
            _ => Value::Null,
        }),
        Err(e) => Err((uris::INVALID_ARGUMENT.to_owned(), format!("call result could not be decoded: {e}"))),
    }
}

/// The message of an ERROR payload: its first argument if that is a string.
pub(super) fn error_message(payload: &Payload) -> String {
    match payload.to_values() {
        Ok((Some(args), _)) => match args.into_iter().next() {
            Some(Value::Str(s)) => s,
            _ => String::new(),
        },
        _ => String::new(),
    }
}

impl Realm {
    /// Calls `procedure` as the router (see the module docs), with the
    /// dealer's default timeout. The outcome arrives through
    /// [`Realm::poll_internal_result`] under `token` (possibly at once, e.g.
    /// `wamp.error.no_such_procedure`); drain [`Realm::poll_transmit`] for
    /// the INVOCATION.
    pub fn internal_call(
        &mut self,
        token: u64,
        procedure: &str,
        args: List,
        kwargs: Dict,
    ) -> Result<(), InternalCallError> {
        self.internal_call_with_timeout(token, procedure, args, kwargs, None)
    }

    /// [`Realm::internal_call`] with an explicit timeout (`None`: the
    /// dealer's default); the dealer's `max_call_timeout` still caps it. A
    /// deadline is only armed once [`Realm::set_now`] was called.
    pub fn internal_call_with_timeout(
        &mut self,
        token: u64,
        procedure: &str,
        args: List,
        kwargs: Dict,
        timeout: Option<Duration>,
    ) -> Result<(), InternalCallError> {
        if self.internal.pending.contains_key(&token) {
            return Err(InternalCallError::DuplicateToken(token));
        }
        let limit = self.dealer_config().max_pending_calls_per_session;
        if self.internal.pending.len() >= limit {
            return Err(InternalCallError::TooManyPending(limit));
        }
        let kwargs = if kwargs.is_empty() { None } else { Some(kwargs) };
        let payload = Payload::Values { args: Some(args), kwargs };
        if let Err(e) = self.route_internal_call(token, procedure, payload, timeout) {
            self.internal_outcome(token, Err(e));
        }
        Ok(())
    }

    /// The next outcome of an internal call: `(token, outcome)`.
    pub fn poll_internal_result(&mut self) -> Option<(u64, InternalOutcome)> {
        self.internal.results.pop_front()
    }

    /// Internal calls in flight.
    pub fn internal_calls_pending(&self) -> usize {
        self.internal.pending.len()
    }

    /// Records the outcome of internal call `token`.
    pub(super) fn internal_outcome(&mut self, token: u64, outcome: InternalOutcome) {
        self.internal.pending.remove(&token);
        self.internal.results.push_back((token, outcome));
    }
}
