//! The sans-IO core of a joined client session: request ids, what each
//! outstanding request was, registrations and subscriptions by id, and
//! turning router messages into [`SessionEvent`]s.
//!
//! Nothing here touches a socket or a clock. The owner queues requests
//! ([`Session::call`], [`Session::register`], ...), sends what
//! [`Session::poll_transmit`] yields, and feeds every message the router sends
//! to [`Session::handle`]. A message that does not fit the session's state
//! (a RESULT for no call, an INVOCATION for no registration) is a
//! [`SessionError`], which means the owner should close the session with
//! `wamp.error.protocol_violation`.

use std::collections::{HashMap, VecDeque};

use thiserror::Error;
use wamp_proto::{code, Dict, List, Message, Payload, PublicationId, RegistrationId, RequestId, SubscriptionId, Value};

/// What an outstanding request was.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Call,
    Register(String),
    Unregister(RegistrationId),
    Subscribe(String),
    Unsubscribe(SubscriptionId),
    Publish,
}

/// Something the router told the session.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    /// A call's result (`progress`: more results follow).
    Result { request: RequestId, args: List, kwargs: Dict, progress: bool },
    /// A call, registration, subscription, unregistration, unsubscription or
    /// acknowledged publication failed.
    Error { request: RequestId, error: String, args: List, kwargs: Dict },
    /// A registration succeeded.
    Registered { request: RequestId, registration: RegistrationId, procedure: String },
    /// An unregistration succeeded.
    Unregistered { request: RequestId, registration: RegistrationId },
    /// A subscription succeeded.
    Subscribed { request: RequestId, subscription: SubscriptionId, topic: String },
    /// An unsubscription succeeded.
    Unsubscribed { request: RequestId, subscription: SubscriptionId },
    /// An acknowledged publication was accepted.
    Published { request: RequestId, publication: PublicationId },
    /// A call to one of our procedures: answer with [`Session::yield_result`]
    /// or [`Session::yield_error`]. `procedure` is the registered URI, or the
    /// called one for a pattern registration (`details.procedure`).
    Invocation {
        request: RequestId,
        registration: RegistrationId,
        procedure: String,
        args: List,
        kwargs: Dict,
        details: Dict,
    },
    /// The caller canceled an invocation.
    Interrupt { request: RequestId },
    /// An event on one of our subscriptions; `topic` is the subscribed topic,
    /// or the published one for a pattern subscription (`details.topic`).
    Event {
        subscription: SubscriptionId,
        publication: PublicationId,
        topic: String,
        args: List,
        kwargs: Dict,
        details: Dict,
    },
    /// The router closed the session (GOODBYE already answered) or aborted it.
    Closed { reason: String, message: Option<String> },
}

/// A router message that does not fit the session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionError {
    #[error("{kind} for request {request}, which is not outstanding")]
    UnknownRequest { kind: &'static str, request: u64 },
    #[error("INVOCATION for registration {0}, which this session does not hold")]
    UnknownRegistration(u64),
    #[error("the router sent a payload that cannot be decoded: {0}")]
    BadPayload(String),
    #[error("unexpected message from the router: {0}")]
    Unexpected(&'static str),
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Session {
    next_request: u64,
    pending: HashMap<RequestId, Pending>,
    registrations: HashMap<RegistrationId, String>,
    subscriptions: HashMap<SubscriptionId, String>,
    out: VecDeque<Message>,
    closed: bool,
}

fn values(payload: &Payload) -> Result<(List, Dict), SessionError> {
    let (args, kwargs) = payload.to_values().map_err(|e| SessionError::BadPayload(e.to_string()))?;
    Ok((args.unwrap_or_default(), kwargs.unwrap_or_default()))
}

fn payload(args: List, kwargs: Dict) -> Payload {
    Payload::values((!args.is_empty() || !kwargs.is_empty()).then_some(args), (!kwargs.is_empty()).then_some(kwargs))
}

impl Session {
    /// A freshly joined session.
    pub fn new() -> Session {
        Session::default()
    }

    fn request(&mut self, what: Pending) -> RequestId {
        // Request ids run 1..=2^53 and wrap; an id still outstanding is skipped.
        loop {
            self.next_request = if self.next_request >= 1 << 53 { 1 } else { self.next_request + 1 };
            let id = RequestId::from_valid(self.next_request);
            if let std::collections::hash_map::Entry::Vacant(e) = self.pending.entry(id) {
                e.insert(what);
                return id;
            }
        }
    }

    /// Queues a CALL.
    pub fn call(&mut self, procedure: &str, args: List, kwargs: Dict, options: Dict) -> RequestId {
        let request = self.request(Pending::Call);
        self.out.push_back(Message::Call {
            request,
            options,
            procedure: procedure.into(),
            payload: payload(args, kwargs),
        });
        request
    }

    /// Queues a REGISTER.
    pub fn register(&mut self, procedure: &str, options: Dict) -> RequestId {
        let request = self.request(Pending::Register(procedure.into()));
        self.out.push_back(Message::Register { request, options, procedure: procedure.into() });
        request
    }

    /// Queues an UNREGISTER.
    pub fn unregister(&mut self, registration: RegistrationId) -> RequestId {
        let request = self.request(Pending::Unregister(registration));
        self.out.push_back(Message::Unregister { request, registration });
        request
    }

    /// Queues a SUBSCRIBE.
    pub fn subscribe(&mut self, topic: &str, options: Dict) -> RequestId {
        let request = self.request(Pending::Subscribe(topic.into()));
        self.out.push_back(Message::Subscribe { request, options, topic: topic.into() });
        request
    }

    /// Queues an UNSUBSCRIBE.
    pub fn unsubscribe(&mut self, subscription: SubscriptionId) -> RequestId {
        let request = self.request(Pending::Unsubscribe(subscription));
        self.out.push_back(Message::Unsubscribe { request, subscription });
        request
    }

    /// Queues a PUBLISH. Only `acknowledge: true` publications stay
    /// outstanding (until PUBLISHED or ERROR).
    pub fn publish(&mut self, topic: &str, args: List, kwargs: Dict, options: Dict) -> RequestId {
        let ack = matches!(options.get("acknowledge"), Some(Value::Bool(true)));
        let request = if ack {
            self.request(Pending::Publish)
        } else {
            self.next_request = if self.next_request >= 1 << 53 { 1 } else { self.next_request + 1 };
            RequestId::from_valid(self.next_request)
        };
        self.out.push_back(Message::Publish { request, options, topic: topic.into(), payload: payload(args, kwargs) });
        request
    }

    /// Answers an invocation with a result.
    pub fn yield_result(&mut self, request: RequestId, args: List, kwargs: Dict) {
        self.out.push_back(Message::Yield { request, options: Dict::new(), payload: payload(args, kwargs) });
    }

    /// Answers an invocation with an error.
    pub fn yield_error(&mut self, request: RequestId, error: &str, args: List, kwargs: Dict) {
        self.out.push_back(Message::Error {
            request_type: code::INVOCATION,
            request,
            details: Dict::new(),
            error: error.into(),
            payload: payload(args, kwargs),
        });
    }

    /// Queues GOODBYE (`wamp.close.close_realm`).
    pub fn goodbye(&mut self) {
        self.out.push_back(Message::Goodbye { details: Dict::new(), reason: "wamp.close.close_realm".into() });
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        self.out.pop_front()
    }

    /// True once the router closed the session.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Number of requests still waiting for their answer.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// The registrations held, by id.
    pub fn registrations(&self) -> &HashMap<RegistrationId, String> {
        &self.registrations
    }

    /// The subscriptions held, by id.
    pub fn subscriptions(&self) -> &HashMap<SubscriptionId, String> {
        &self.subscriptions
    }

    fn take(&mut self, kind: &'static str, request: RequestId) -> Result<Pending, SessionError> {
        self.pending.remove(&request).ok_or(SessionError::UnknownRequest { kind, request: request.get() })
    }

    /// Handles one message from the router.
    pub fn handle(&mut self, msg: Message) -> Result<SessionEvent, SessionError> {
        match msg {
            Message::Result { request, details, payload } => {
                let progress = matches!(details.get("progress"), Some(Value::Bool(true)));
                if progress {
                    if self.pending.get(&request) != Some(&Pending::Call) {
                        return Err(SessionError::UnknownRequest { kind: "RESULT", request: request.get() });
                    }
                } else if self.take("RESULT", request)? != Pending::Call {
                    return Err(SessionError::Unexpected("RESULT for a request that is not a call"));
                }
                let (args, kwargs) = values(&payload)?;
                Ok(SessionEvent::Result { request, args, kwargs, progress })
            }
            Message::Error { request, error, payload, .. } => {
                self.take("ERROR", request)?;
                let (args, kwargs) = values(&payload)?;
                Ok(SessionEvent::Error { request, error, args, kwargs })
            }
            Message::Registered { request, registration } => match self.take("REGISTERED", request)? {
                Pending::Register(procedure) => {
                    self.registrations.insert(registration, procedure.clone());
                    Ok(SessionEvent::Registered { request, registration, procedure })
                }
                _ => Err(SessionError::Unexpected("REGISTERED for a request that is not a registration")),
            },
            // Router-initiated (a revocation): the id is in the details.
            Message::Unregistered { request, details: Some(d) } if d.contains_key("registration") => {
                let id = d.get("registration").and_then(Value::as_u64).and_then(RegistrationId::new);
                let registration = id.ok_or(SessionError::Unexpected("UNREGISTERED with a bad registration id"))?;
                self.registrations.remove(&registration);
                Ok(SessionEvent::Unregistered { request, registration })
            }
            Message::Unsubscribed { request, details: Some(d) } if d.contains_key("subscription") => {
                let id = d.get("subscription").and_then(Value::as_u64).and_then(SubscriptionId::new);
                let subscription = id.ok_or(SessionError::Unexpected("UNSUBSCRIBED with a bad subscription id"))?;
                self.subscriptions.remove(&subscription);
                Ok(SessionEvent::Unsubscribed { request, subscription })
            }
            Message::Unregistered { request, .. } => match self.take("UNREGISTERED", request)? {
                Pending::Unregister(registration) => {
                    self.registrations.remove(&registration);
                    Ok(SessionEvent::Unregistered { request, registration })
                }
                _ => Err(SessionError::Unexpected("UNREGISTERED for a request that is not an unregistration")),
            },
            Message::Subscribed { request, subscription } => match self.take("SUBSCRIBED", request)? {
                Pending::Subscribe(topic) => {
                    self.subscriptions.insert(subscription, topic.clone());
                    Ok(SessionEvent::Subscribed { request, subscription, topic })
                }
                _ => Err(SessionError::Unexpected("SUBSCRIBED for a request that is not a subscription")),
            },
            Message::Unsubscribed { request, .. } => match self.take("UNSUBSCRIBED", request)? {
                Pending::Unsubscribe(subscription) => {
                    self.subscriptions.remove(&subscription);
                    Ok(SessionEvent::Unsubscribed { request, subscription })
                }
                _ => Err(SessionError::Unexpected("UNSUBSCRIBED for a request that is not an unsubscription")),
            },
            Message::Published { request, publication } => match self.take("PUBLISHED", request)? {
                Pending::Publish => Ok(SessionEvent::Published { request, publication }),
                _ => Err(SessionError::Unexpected("PUBLISHED for a request that is not a publication")),
            },
            Message::Invocation { request, registration, details, payload } => {
                let registered = self
                    .registrations
                    .get(&registration)
                    .ok_or(SessionError::UnknownRegistration(registration.get()))?;
                let procedure = match details.get("procedure") {
                    Some(Value::Str(p)) => p.clone(),
                    _ => registered.clone(),
                };
                let (args, kwargs) = values(&payload)?;
                Ok(SessionEvent::Invocation { request, registration, procedure, args, kwargs, details })
            }
            Message::Interrupt { request, .. } => Ok(SessionEvent::Interrupt { request }),
            Message::Event { subscription, publication, details, payload } => {
                // An event racing an UNSUBSCRIBE may still arrive: pass it on with the topic if known.
                let topic = match details.get("topic") {
                    Some(Value::Str(t)) => t.clone(),
                    _ => self.subscriptions.get(&subscription).cloned().unwrap_or_default(),
                };
                let (args, kwargs) = values(&payload)?;
                Ok(SessionEvent::Event { subscription, publication, topic, args, kwargs, details })
            }
            Message::Goodbye { details, reason } => {
                if !self.closed {
                    self.closed = true;
                    self.out.push_back(Message::Goodbye {
                        details: Dict::new(),
                        reason: "wamp.close.goodbye_and_out".into(),
                    });
                }
                let message = details.get("message").and_then(Value::as_str).map(str::to_owned);
                Ok(SessionEvent::Closed { reason, message })
            }
            Message::Abort { details, reason } => {
                self.closed = true;
                let message = details.get("message").and_then(Value::as_str).map(str::to_owned);
                Ok(SessionEvent::Closed { reason, message })
            }
            _ => Err(SessionError::Unexpected("a message a router never sends to a joined client")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rid(n: u64) -> RequestId {
        RequestId::from_valid(n)
    }

    #[test]
    fn register_then_invocation_then_yield() {
        let mut s = Session::new();
        let r = s.register("com.example.add", Dict::new());
        assert!(
            matches!(s.poll_transmit(), Some(Message::Register { procedure, .. }) if procedure == "com.example.add")
        );
        let reg = RegistrationId::from_valid(77);
        assert_eq!(
            s.handle(Message::Registered { request: r, registration: reg }),
            Ok(SessionEvent::Registered { request: r, registration: reg, procedure: "com.example.add".into() })
        );
        let ev = s
            .handle(Message::Invocation {
                request: rid(5),
                registration: reg,
                details: Dict::new(),
                payload: Payload::values(Some(vec![Value::UInt(2), Value::UInt(3)]), None),
            })
            .expect("invocation");
        match ev {
            SessionEvent::Invocation { request, procedure, args, .. } => {
                assert_eq!((request, procedure.as_str(), args.len()), (rid(5), "com.example.add", 2));
            }
            other => panic!("{other:?}"),
        }
        s.yield_result(rid(5), vec![Value::UInt(5)], Dict::new());
        assert!(matches!(s.poll_transmit(), Some(Message::Yield { request, .. }) if request == rid(5)));
        s.yield_error(rid(6), "com.example.error", Vec::new(), Dict::new());
        assert!(matches!(s.poll_transmit(), Some(Message::Error { request_type: code::INVOCATION, .. })));
        // An invocation for a registration never made is a protocol violation.
        let bad = Message::Invocation {
            request: rid(7),
            registration: RegistrationId::from_valid(99),
            details: Dict::new(),
            payload: Payload::EMPTY,
        };
        assert_eq!(s.handle(bad), Err(SessionError::UnknownRegistration(99)));
    }

    #[test]
    fn calls_progress_finish_and_fail() {
        let mut s = Session::new();
        let c = s.call("p", vec![Value::UInt(1)], Dict::new(), Dict::new());
        let mut prog = Dict::new();
        prog.insert("progress".into(), Value::Bool(true));
        let progress = s.handle(Message::Result { request: c, details: prog, payload: Payload::EMPTY });
        assert!(matches!(progress, Ok(SessionEvent::Result { progress: true, .. })));
        assert_eq!(s.outstanding(), 1);
        let done = s.handle(Message::Result { request: c, details: Dict::new(), payload: Payload::EMPTY });
        assert!(matches!(done, Ok(SessionEvent::Result { progress: false, .. })));
        assert_eq!(s.outstanding(), 0);
        // A second final result is for no outstanding request.
        let again = s.handle(Message::Result { request: c, details: Dict::new(), payload: Payload::EMPTY });
        assert_eq!(again, Err(SessionError::UnknownRequest { kind: "RESULT", request: c.get() }));

        let c2 = s.call("p", Vec::new(), Dict::new(), Dict::new());
        let err = s.handle(Message::Error {
            request_type: code::CALL,
            request: c2,
            details: Dict::new(),
            error: "wamp.error.no_such_procedure".into(),
            payload: Payload::EMPTY,
        });
        assert!(matches!(err, Ok(SessionEvent::Error { error, .. }) if error == "wamp.error.no_such_procedure"));
        assert_ne!(c, c2, "request ids are not reused while outstanding");
    }

    #[test]
    fn subscriptions_events_and_acknowledged_publications() {
        let mut s = Session::new();
        let r = s.subscribe("com.example.", {
            let mut o = Dict::new();
            o.insert("match".into(), Value::Str("prefix".into()));
            o
        });
        let sub = SubscriptionId::from_valid(3);
        assert!(s.handle(Message::Subscribed { request: r, subscription: sub }).is_ok());
        let mut d = Dict::new();
        d.insert("topic".into(), Value::Str("com.example.x".into()));
        let ev = s.handle(Message::Event {
            subscription: sub,
            publication: PublicationId::from_valid(9),
            details: d,
            payload: Payload::EMPTY,
        });
        assert!(matches!(ev, Ok(SessionEvent::Event { topic, .. }) if topic == "com.example.x"));

        let mut ack = Dict::new();
        ack.insert("acknowledge".into(), Value::Bool(true));
        let p = s.publish("t", Vec::new(), Dict::new(), ack);
        assert_eq!(s.outstanding(), 1);
        let ok = s.handle(Message::Published { request: p, publication: PublicationId::from_valid(4) });
        assert!(matches!(ok, Ok(SessionEvent::Published { .. })));
        s.publish("t", Vec::new(), Dict::new(), Dict::new());
        assert_eq!(s.outstanding(), 0, "unacknowledged publications are not tracked");

        let u = s.unsubscribe(sub);
        assert!(s.handle(Message::Unsubscribed { request: u, details: None }).is_ok());
        assert!(s.subscriptions().is_empty());
    }

    #[test]
    fn goodbye_is_answered_once_and_closes() {
        let mut s = Session::new();
        let ev = s.handle(Message::Goodbye { details: Dict::new(), reason: "wamp.close.system_shutdown".into() });
        assert!(matches!(ev, Ok(SessionEvent::Closed { reason, .. }) if reason == "wamp.close.system_shutdown"));
        assert!(s.is_closed());
        assert!(matches!(s.poll_transmit(), Some(Message::Goodbye { .. })));
        assert!(s.poll_transmit().is_none());
        // A message a router never sends to a client.
        assert!(s.handle(Message::Hello { realm: "r".into(), details: Dict::new() }).is_err());
    }
}
