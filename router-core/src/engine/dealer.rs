//! Routed RPC: registrations, calls, invocations and their results.

use std::collections::HashMap;

use rand::Rng;
use wamp_proto::{code, Dict, Message, Payload, RegistrationId, RequestId, SessionId, Value, MAX_ID};

use super::{clip, opt_bool, uri_ok, uris, Action, Authorization, PendingInvocation, Realm};

/// One procedure's registration (single callee).
pub(super) struct Registration {
    pub(super) id: RegistrationId,
    pub(super) callee: SessionId,
}

/// All registrations of a realm (exact match).
#[derive(Default)]
pub(super) struct Dealer {
    /// Procedure → registration (the call path: one hash probe).
    pub(super) procedures: HashMap<String, Registration>,
    /// Registration id → procedure.
    pub(super) ids: HashMap<RegistrationId, String>,
}

impl Dealer {
    /// Deletes registration `id`.
    pub(super) fn unregister(&mut self, id: RegistrationId) {
        if let Some(procedure) = self.ids.remove(&id) {
            self.procedures.remove(&procedure);
        }
    }

    /// Number of live registrations.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.procedures.len()
    }
}

impl Realm {
    pub(super) fn handle_register(&mut self, sid: SessionId, request: RequestId, options: &Dict, procedure: String) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        let refusal = if !uri_ok(&procedure) {
            Some((uris::INVALID_URI, format!("register for invalid procedure URI '{}'", clip(&procedure))))
        } else if procedure.starts_with("wamp.") {
            Some((uris::INVALID_URI, format!("register for restricted procedure URI '{}'", clip(&procedure))))
        } else if options.get("match").is_some_and(|m| m.as_str() != Some("exact")) {
            Some((uris::INVALID_ARGUMENT, "only exact-match registrations are supported".to_owned()))
        } else if options.get("invoke").is_some_and(|m| m.as_str() != Some("single")) {
            Some((uris::INVALID_ARGUMENT, "only the 'single' invocation policy is supported".to_owned()))
        } else if !self.roles.get(s.role).is_some_and(|r| r.authorize(&procedure, Action::Register).allowed) {
            Some((
                uris::NOT_AUTHORIZED,
                format!("session is not authorized to register procedure '{}'", clip(&procedure)),
            ))
        } else if self.dealer.procedures.contains_key(&procedure) {
            Some((
                uris::PROCEDURE_ALREADY_EXISTS,
                format!("register for already registered procedure '{}'", clip(&procedure)),
            ))
        } else {
            None
        };
        if let Some((error, msg)) = refusal {
            return self.out.error(sid, ser, code::REGISTER, request, error, msg);
        }
        let id = loop {
            let id = RegistrationId::from_valid(self.rng.gen_range(1..=MAX_ID));
            if !self.dealer.ids.contains_key(&id) {
                break id;
            }
        };
        self.dealer.ids.insert(id, procedure.clone());
        self.dealer.procedures.insert(procedure, Registration { id, callee: sid });
        s.registrations.insert(id);
        let _ = self.out.send(sid, ser, &Message::Registered { request, registration: id });
    }

    pub(super) fn handle_unregister(&mut self, sid: SessionId, request: RequestId, id: RegistrationId) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let ser = s.info.serializer;
        if !s.registrations.remove(&id) {
            let msg = format!("session has no registration {id}");
            return self.out.error(sid, ser, code::UNREGISTER, request, uris::NO_SUCH_REGISTRATION, msg);
        }
        self.dealer.unregister(id);
        let _ = self.out.send(sid, ser, &Message::Unregistered { request, details: None });
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
        let Some(reg) = self.dealer.procedures.get(&procedure) else {
            let msg = format!("no callee registered for procedure '{}'", clip(&procedure));
            return self.out.error(sid, cser, code::CALL, request, uris::NO_SUCH_PROCEDURE, msg);
        };
        let (callee_id, registration) = (reg.callee, reg.id);
        let mut details = Dict::new();
        if auth.disclose || opt_bool(options, "disclose_me") == Some(true) {
            details.insert("caller".into(), Value::UInt(sid.get()));
            details.insert("caller_authid".into(), Value::Str(caller.info.authid.clone()));
            details.insert("caller_authrole".into(), Value::Str(caller.info.authrole.clone()));
        }
        let Some(callee) = self.sessions.get_mut(&callee_id) else {
            // Cannot happen: registrations are removed with their callee.
            let msg = format!("no callee registered for procedure '{}'", clip(&procedure));
            return self.out.error(sid, cser, code::CALL, request, uris::NO_SUCH_PROCEDURE, msg);
        };
        let next = callee.last_invocation + 1;
        let Some(inv) = RequestId::new(next) else {
            let msg = "callee has exhausted its invocation ids".to_owned();
            return self.out.error(sid, cser, code::CALL, request, uris::CANCELED, msg);
        };
        let msg = Message::Invocation { request: inv, registration, details, payload };
        if let Err(e) = self.out.send(callee_id, callee.info.serializer, &msg) {
            let msg = format!("call payload could not be passed to the callee: {e}");
            return self.out.error(sid, cser, code::CALL, request, uris::INVALID_ARGUMENT, msg);
        }
        callee.last_invocation = next;
        callee.invocations.insert(inv, PendingInvocation { caller: sid, call_request: request });
        if let Some(caller) = self.sessions.get_mut(&sid) {
            caller.calls.insert((callee_id, inv));
        }
        self.out.stats.calls += 1;
    }

    /// Takes the pending invocation `request` of callee `sid`. `None` means
    /// the reply must be dropped (stale) or the session was aborted (an id
    /// never issued is a protocol violation).
    fn take_invocation(&mut self, sid: SessionId, request: RequestId, what: &str) -> Option<PendingInvocation> {
        let callee = self.sessions.get_mut(&sid)?;
        if let Some(p) = callee.invocations.remove(&request) {
            if let Some(caller) = self.sessions.get_mut(&p.caller) {
                caller.calls.remove(&(sid, request));
            }
            return Some(p);
        }
        if request.get() >= 1 && request.get() <= callee.last_invocation {
            // Issued, but its caller left: a race, not a violation.
            self.out.stats.stale_replies += 1;
        } else {
            self.protocol_violation(sid, &format!("{what} for invocation request ID {request} that was never issued"));
        }
        None
    }

    pub(super) fn handle_yield(&mut self, sid: SessionId, request: RequestId, payload: Payload) {
        let Some(p) = self.take_invocation(sid, request, "YIELD") else { return };
        let Some(caller) = self.sessions.get(&p.caller) else { return };
        let ser = caller.info.serializer;
        let msg = Message::Result { request: p.call_request, details: Dict::new(), payload };
        if let Err(e) = self.out.send(p.caller, ser, &msg) {
            let msg = format!("call result could not be passed to the caller: {e}");
            self.out.error(p.caller, ser, code::CALL, p.call_request, uris::INVALID_ARGUMENT, msg);
        }
    }

    pub(super) fn handle_invocation_error(
        &mut self,
        sid: SessionId,
        request: RequestId,
        error: String,
        payload: Payload,
    ) {
        let Some(p) = self.take_invocation(sid, request, "ERROR") else { return };
        let Some(caller) = self.sessions.get(&p.caller) else { return };
        let ser = caller.info.serializer;
        let msg =
            Message::Error { request_type: code::CALL, request: p.call_request, details: Dict::new(), error, payload };
        if let Err(e) = self.out.send(p.caller, ser, &msg) {
            let msg = format!("call error could not be passed to the caller: {e}");
            self.out.error(p.caller, ser, code::CALL, p.call_request, uris::INVALID_ARGUMENT, msg);
        }
    }
}
