//! WAMP messages as typed Rust values.

use crate::ids::{PublicationId, RegistrationId, RequestId, SessionId, SubscriptionId};
use crate::payload::Payload;
use crate::value::Dict;

/// WAMP message type codes.
pub mod code {
    pub const HELLO: u64 = 1;
    pub const WELCOME: u64 = 2;
    pub const ABORT: u64 = 3;
    pub const CHALLENGE: u64 = 4;
    pub const AUTHENTICATE: u64 = 5;
    pub const GOODBYE: u64 = 6;
    pub const ERROR: u64 = 8;
    pub const PUBLISH: u64 = 16;
    pub const PUBLISHED: u64 = 17;
    pub const SUBSCRIBE: u64 = 32;
    pub const SUBSCRIBED: u64 = 33;
    pub const UNSUBSCRIBE: u64 = 34;
    pub const UNSUBSCRIBED: u64 = 35;
    pub const EVENT: u64 = 36;
    pub const EVENT_RECEIVED: u64 = 337;
    pub const CALL: u64 = 48;
    pub const CANCEL: u64 = 49;
    pub const RESULT: u64 = 50;
    pub const REGISTER: u64 = 64;
    pub const REGISTERED: u64 = 65;
    pub const UNREGISTER: u64 = 66;
    pub const UNREGISTERED: u64 = 67;
    pub const INVOCATION: u64 = 68;
    pub const INTERRUPT: u64 = 69;
    pub const YIELD: u64 = 70;
}

/// One WAMP message.
///
/// Application payloads (`Arguments|list`, `ArgumentsKw|dict`) are carried as
/// [`Payload`], which may still be in its received encoding so that a router
/// can forward it without decoding.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// `[HELLO, Realm|uri, Details|dict]`
    Hello { realm: String, details: Dict },
    /// `[WELCOME, Session|id, Details|dict]`
    Welcome { session: SessionId, details: Dict },
    /// `[ABORT, Details|dict, Reason|uri]`
    Abort { details: Dict, reason: String },
    /// `[CHALLENGE, AuthMethod|string, Extra|dict]`
    Challenge { method: String, extra: Dict },
    /// `[AUTHENTICATE, Signature|string, Extra|dict]`
    Authenticate { signature: String, extra: Dict },
    /// `[GOODBYE, Details|dict, Reason|uri]`
    Goodbye { details: Dict, reason: String },
    /// `[ERROR, REQUEST.Type|int, REQUEST.Request|id, Details|dict, Error|uri, Arguments|list, ArgumentsKw|dict]`
    Error { request_type: u64, request: RequestId, details: Dict, error: String, payload: Payload },
    /// `[PUBLISH, Request|id, Options|dict, Topic|uri, Arguments|list, ArgumentsKw|dict]`
    Publish { request: RequestId, options: Dict, topic: String, payload: Payload },
    /// `[PUBLISHED, PUBLISH.Request|id, Publication|id]`
    Published { request: RequestId, publication: PublicationId },
    /// `[SUBSCRIBE, Request|id, Options|dict, Topic|uri]`
    Subscribe { request: RequestId, options: Dict, topic: String },
    /// `[SUBSCRIBED, SUBSCRIBE.Request|id, Subscription|id]`
    Subscribed { request: RequestId, subscription: SubscriptionId },
    /// `[UNSUBSCRIBE, Request|id, SUBSCRIBED.Subscription|id]`
    Unsubscribe { request: RequestId, subscription: SubscriptionId },
    /// `[UNSUBSCRIBED, UNSUBSCRIBE.Request|id]`, or with `Details|dict` (revocation, Advanced Profile).
    Unsubscribed { request: RequestId, details: Option<Dict> },
    /// `[EVENT, SUBSCRIBED.Subscription|id, PUBLISHED.Publication|id, Details|dict, Arguments|list, ArgumentsKw|dict]`
    Event { subscription: SubscriptionId, publication: PublicationId, details: Dict, payload: Payload },
    /// `[EVENT_RECEIVED, EVENT.Publication|id, Details|dict, Arguments|list, ArgumentsKw|dict]` (acknowledged delivery, Advanced Profile)
    EventReceived { publication: PublicationId, details: Dict, payload: Payload },
    /// `[CALL, Request|id, Options|dict, Procedure|uri, Arguments|list, ArgumentsKw|dict]`
    Call { request: RequestId, options: Dict, procedure: String, payload: Payload },
    /// `[CANCEL, CALL.Request|id, Options|dict]`
    Cancel { request: RequestId, options: Dict },
    /// `[RESULT, CALL.Request|id, Details|dict, Arguments|list, ArgumentsKw|dict]`
    Result { request: RequestId, details: Dict, payload: Payload },
    /// `[REGISTER, Request|id, Options|dict, Procedure|uri]`
    Register { request: RequestId, options: Dict, procedure: String },
    /// `[REGISTERED, REGISTER.Request|id, Registration|id]`
    Registered { request: RequestId, registration: RegistrationId },
    /// `[UNREGISTER, Request|id, REGISTERED.Registration|id]`
    Unregister { request: RequestId, registration: RegistrationId },
    /// `[UNREGISTERED, UNREGISTER.Request|id]`, or with `Details|dict` (revocation, Advanced Profile).
    Unregistered { request: RequestId, details: Option<Dict> },
    /// `[INVOCATION, Request|id, REGISTERED.Registration|id, Details|dict, Arguments|list, ArgumentsKw|dict]`
    Invocation { request: RequestId, registration: RegistrationId, details: Dict, payload: Payload },
    /// `[INTERRUPT, INVOCATION.Request|id, Options|dict]`
    Interrupt { request: RequestId, options: Dict },
    /// `[YIELD, INVOCATION.Request|id, Options|dict, Arguments|list, ArgumentsKw|dict]`
    Yield { request: RequestId, options: Dict, payload: Payload },
}

impl Message {
    /// The WAMP message type code.
    pub fn code(&self) -> u64 {
        use code::*;
        match self {
            Message::Hello { .. } => HELLO,
            Message::Welcome { .. } => WELCOME,
            Message::Abort { .. } => ABORT,
            Message::Challenge { .. } => CHALLENGE,
            Message::Authenticate { .. } => AUTHENTICATE,
            Message::Goodbye { .. } => GOODBYE,
            Message::Error { .. } => ERROR,
            Message::Publish { .. } => PUBLISH,
            Message::Published { .. } => PUBLISHED,
            Message::Subscribe { .. } => SUBSCRIBE,
            Message::Subscribed { .. } => SUBSCRIBED,
            Message::Unsubscribe { .. } => UNSUBSCRIBE,
            Message::Unsubscribed { .. } => UNSUBSCRIBED,
            Message::Event { .. } => EVENT,
            Message::EventReceived { .. } => EVENT_RECEIVED,
            Message::Call { .. } => CALL,
            Message::Cancel { .. } => CANCEL,
            Message::Result { .. } => RESULT,
            Message::Register { .. } => REGISTER,
            Message::Registered { .. } => REGISTERED,
            Message::Unregister { .. } => UNREGISTER,
            Message::Unregistered { .. } => UNREGISTERED,
            Message::Invocation { .. } => INVOCATION,
            Message::Interrupt { .. } => INTERRUPT,
            Message::Yield { .. } => YIELD,
        }
    }

    /// The upper-case WAMP name of the message type, for logs and errors.
    pub fn name(&self) -> &'static str {
        code_name(self.code())
    }
}

/// The WAMP name of a message type code (`"UNKNOWN"` if it has none).
pub fn code_name(code: u64) -> &'static str {
    use code::*;
    match code {
        HELLO => "HELLO",
        WELCOME => "WELCOME",
        ABORT => "ABORT",
        CHALLENGE => "CHALLENGE",
        AUTHENTICATE => "AUTHENTICATE",
        GOODBYE => "GOODBYE",
        ERROR => "ERROR",
        PUBLISH => "PUBLISH",
        PUBLISHED => "PUBLISHED",
        SUBSCRIBE => "SUBSCRIBE",
        SUBSCRIBED => "SUBSCRIBED",
        UNSUBSCRIBE => "UNSUBSCRIBE",
        UNSUBSCRIBED => "UNSUBSCRIBED",
        EVENT => "EVENT",
        EVENT_RECEIVED => "EVENT_RECEIVED",
        CALL => "CALL",
        CANCEL => "CANCEL",
        RESULT => "RESULT",
        REGISTER => "REGISTER",
        REGISTERED => "REGISTERED",
        UNREGISTER => "UNREGISTER",
        UNREGISTERED => "UNREGISTERED",
        INVOCATION => "INVOCATION",
        INTERRUPT => "INTERRUPT",
        YIELD => "YIELD",
        _ => "UNKNOWN",
    }
}
