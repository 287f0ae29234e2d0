//! The message layer shared by the JSON, MessagePack and CBOR serializers.
//!
//! All three formats carry a WAMP message as one array of simple elements
//! (integers, strings, dicts) followed by the optional payload elements. This
//! module knows the per-type layouts (arity, element types, ID ranges,
//! trailing-element rules) once; each format only supplies a [`WireReader`]
//! and a [`WireWriter`] for its own primitives.

use std::ops::Range;

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::ids::{PublicationId, RegistrationId, RequestId, SessionId, SubscriptionId};
use crate::message::{code, code_name, Message};
use crate::payload::{decode_value, Payload, PayloadFormat};
use crate::value::{Dict, List, Value};

/// What a reader found in an args/kwargs position.
pub(crate) enum PayloadElem {
    /// A well-formed list (span in the input buffer); `empty` if it has no items.
    List { span: Range<usize>, empty: bool },
    /// A well-formed dict with string keys.
    Dict { span: Range<usize>, empty: bool },
    /// A well-formed binary value (transparent payload), span in the input.
    Binary { span: Range<usize> },
    /// Anything else (already skipped).
    Other,
}

/// Reads the top-level message array of one format.
///
/// `Ok(None)` from a `read_*` method means "an element of another type is
/// present"; the caller turns that into [`DecodeError::Invalid`].
pub(crate) trait WireReader {
    /// Opens the top-level array.
    fn begin(&mut self) -> Result<(), DecodeError>;
    /// True if another element follows in the top-level array; once it
    /// returns false the array has been closed.
    fn has_next(&mut self) -> Result<bool, DecodeError>;
    /// After the array is closed: rejects trailing bytes.
    fn finish(&mut self) -> Result<(), DecodeError>;
    /// A non-negative integer.
    fn read_uint(&mut self) -> Result<Option<u64>, DecodeError>;
    /// A text string.
    fn read_string(&mut self) -> Result<Option<String>, DecodeError>;
    /// A dict with string keys.
    fn read_dict(&mut self) -> Result<Option<Dict>, DecodeError>;
    /// Validates and skips one value, reporting its span and kind.
    fn read_payload(&mut self) -> Result<PayloadElem, DecodeError>;
}

/// Writes the top-level message array of one format. Every method except
/// `begin`/`end` writes one complete top-level element.
pub(crate) trait WireWriter {
    /// The payload encoding of this format (raw spans in it are spliced).
    const FORMAT: PayloadFormat;
    /// Opens an array of `n` elements.
    fn begin(&mut self, n: usize);
    /// Closes the array.
    fn end(&mut self);
    fn uint(&mut self, v: u64);
    fn str(&mut self, s: &str) -> Result<(), EncodeError>;
    fn dict(&mut self, d: &Dict) -> Result<(), EncodeError>;
    fn list(&mut self, l: &List) -> Result<(), EncodeError>;
    fn binary(&mut self, b: &[u8]) -> Result<(), EncodeError>;
    /// An already encoded value in [`Self::FORMAT`], copied verbatim.
    fn raw(&mut self, b: &[u8]);
}

// ---------------------------------------------------------------------------
// Decoding

struct Dec<'a, R: WireReader> {
    r: &'a mut R,
    src: &'a Bytes,
    name: &'static str,
    format: PayloadFormat,
}

impl<R: WireReader> Dec<'_, R> {
    fn invalid(&self, what: &str) -> DecodeError {
        DecodeError::Invalid(format!("{}: {}", self.name, what))
    }

    fn require(&mut self, field: &str) -> Result<(), DecodeError> {
        if self.r.has_next()? {
            Ok(())
        } else {
            Err(self.invalid(&format!("missing {field}")))
        }
    }

    fn uint(&mut self, field: &str) -> Result<u64, DecodeError> {
        self.require(field)?;
        match self.r.read_uint()? {
            Some(v) => Ok(v),
            None => Err(self.invalid(&format!("{field} must be a non-negative integer"))),
        }
    }

    fn id(&mut self, field: &str) -> Result<u64, DecodeError> {
        let v = self.uint(field)?;
        if v > crate::ids::MAX_ID {
            return Err(self.invalid(&format!("{field} {v} is outside [0, 2^53]")));
        }
        Ok(v)
    }

    fn string(&mut self, field: &str) -> Result<String, DecodeError> {
        self.require(field)?;
        match self.r.read_string()? {
            Some(s) => Ok(s),
            None => Err(self.invalid(&format!("{field} must be a string"))),
        }
    }

    fn dict(&mut self, field: &str) -> Result<Dict, DecodeError> {
        self.require(field)?;
        self.dict_present(field)
    }

    fn dict_present(&mut self, field: &str) -> Result<Dict, DecodeError> {
        match self.r.read_dict()? {
            Some(d) => Ok(d),
            None => Err(self.invalid(&format!("{field} must be a dict"))),
        }
    }

    /// The optional `Arguments|list, ArgumentsKw|dict` (or a transparent
    /// binary payload), then the end of the message.
    fn payload(&mut self) -> Result<Payload, DecodeError> {
        if !self.r.has_next()? {
            return self.done(Payload::EMPTY);
        }
        let args = match self.r.read_payload()? {
            PayloadElem::List { span, empty } => (!empty).then(|| self.src.slice(span)),
            PayloadElem::Binary { span } => {
                if self.r.has_next()? {
                    return Err(self.invalid("a transparent (binary) payload must be the last element"));
                }
                return self.done(Payload::Raw { format: self.format, args: Some(self.src.slice(span)), kwargs: None });
            }
            _ => return Err(self.invalid("Arguments|list must be a list")),
        };
        let kwargs = if self.r.has_next()? {
            match self.r.read_payload()? {
                PayloadElem::Dict { span, empty } => (!empty).then(|| self.src.slice(span)),
                _ => return Err(self.invalid("ArgumentsKw|dict must be a dict")),
            }
        } else {
            return self.done(Payload::Raw { format: self.format, args, kwargs: None });
        };
        self.end()?;
        Ok(Payload::Raw { format: self.format, args, kwargs })
    }

    fn done(&mut self, p: Payload) -> Result<Payload, DecodeError> {
        self.r.finish()?;
        Ok(p)
    }

    /// Expects the end of the array.
    fn end(&mut self) -> Result<(), DecodeError> {
        if self.r.has_next()? {
            return Err(self.invalid("too many elements"));
        }
        self.r.finish()
    }
}

/// Decodes one message with `r`, whose input is `src`.
pub(crate) fn decode_message<R: WireReader>(
    r: &mut R,
    src: &Bytes,
    format: PayloadFormat,
) -> Result<Message, DecodeError> {
    r.begin()?;
    if !r.has_next()? {
        return Err(DecodeError::Invalid("empty message array".into()));
    }
    let ty = match r.read_uint()? {
        Some(t) => t,
        None => return Err(DecodeError::Invalid("message type must be a non-negative integer".into())),
    };
    let name = code_name(ty);
    let mut d = Dec { r, src, name, format };
    let msg = match ty {
        code::HELLO => {
            let realm = d.string("Realm|uri")?;
            let details = d.dict("Details|dict")?;
            d.end()?;
            Message::Hello { realm, details }
        }
        code::WELCOME => {
            let session = SessionId::from_valid(d.id("Session|id")?);
            let details = d.dict("Details|dict")?;
            d.end()?;
            Message::Welcome { session, details }
        }
        code::ABORT | code::GOODBYE => {
            let details = d.dict("Details|dict")?;
            let reason = d.string("Reason|uri")?;
            d.end()?;
            if ty == code::ABORT {
                Message::Abort { details, reason }
            } else {
                Message::Goodbye { details, reason }
            }
        }
        code::CHALLENGE => {
            let method = d.string("AuthMethod|string")?;
            let extra = d.dict("Extra|dict")?;
            d.end()?;
            Message::Challenge { method, extra }
        }
        code::AUTHENTICATE => {
            let signature = d.string("Signature|string")?;
            let extra = d.dict("Extra|dict")?;
            d.end()?;
            Message::Authenticate { signature, extra }
        }
        code::ERROR => {
            let request_type = d.uint("REQUEST.Type|int")?;
            let request = RequestId::from_valid(d.id("REQUEST.Request|id")?);
            let details = d.dict("Details|dict")?;
            let error = d.string("Error|uri")?;
            let payload = d.payload()?;
            Message::Error { request_type, request, details, error, payload }
        }
        code::PUBLISH => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let options = d.dict("Options|dict")?;
            let topic = d.string("Topic|uri")?;
            let payload = d.payload()?;
            Message::Publish { request, options, topic, payload }
        }
        code::PUBLISHED => {
            let request = RequestId::from_valid(d.id("PUBLISH.Request|id")?);
            let publication = PublicationId::from_valid(d.id("Publication|id")?);
            d.end()?;
            Message::Published { request, publication }
        }
        code::SUBSCRIBE => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let options = d.dict("Options|dict")?;
            let topic = d.string("Topic|uri")?;
            d.end()?;
            Message::Subscribe { request, options, topic }
        }
        code::SUBSCRIBED => {
            let request = RequestId::from_valid(d.id("SUBSCRIBE.Request|id")?);
            let subscription = SubscriptionId::from_valid(d.id("Subscription|id")?);
            d.end()?;
            Message::Subscribed { request, subscription }
        }
        code::UNSUBSCRIBE => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let subscription = SubscriptionId::from_valid(d.id("SUBSCRIBED.Subscription|id")?);
            d.end()?;
            Message::Unsubscribe { request, subscription }
        }
        code::UNSUBSCRIBED | code::UNREGISTERED => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let details = if d.r.has_next()? { Some(d.dict_present("Details|dict")?) } else { None };
            d.end()?;
            if ty == code::UNSUBSCRIBED {
                Message::Unsubscribed { request, details }
            } else {
                Message::Unregistered { request, details }
            }
        }
        code::EVENT => {
            let subscription = SubscriptionId::from_valid(d.id("SUBSCRIBED.Subscription|id")?);
            let publication = PublicationId::from_valid(d.id("PUBLISHED.Publication|id")?);
            let details = d.dict("Details|dict")?;
            let payload = d.payload()?;
            Message::Event { subscription, publication, details, payload }
        }
        code::EVENT_RECEIVED => {
            let publication = PublicationId::from_valid(d.id("EVENT.Publication|id")?);
            if d.r.has_next()? {
                let details = d.dict_present("Details|dict")?;
                let payload = d.payload()?;
                Message::EventReceived { publication, details, payload }
            } else {
                d.r.finish()?;
                Message::EventReceived { publication, details: Dict::new(), payload: Payload::EMPTY }
            }
        }
        code::CALL => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let options = d.dict("Options|dict")?;
            let procedure = d.string("Procedure|uri")?;
            let payload = d.payload()?;
            Message::Call { request, options, procedure, payload }
        }
        code::CANCEL | code::INTERRUPT => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let options = d.dict("Options|dict")?;
            d.end()?;
            if ty == code::CANCEL {
                Message::Cancel { request, options }
            } else {
                Message::Interrupt { request, options }
            }
        }
        code::RESULT | code::YIELD => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let dict = d.dict(if ty == code::RESULT { "Details|dict" } else { "Options|dict" })?;
            let payload = d.payload()?;
            if ty == code::RESULT {
                Message::Result { request, details: dict, payload }
            } else {
                Message::Yield { request, options: dict, payload }
            }
        }
        code::REGISTER => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let options = d.dict("Options|dict")?;
            let procedure = d.string("Procedure|uri")?;
            d.end()?;
            Message::Register { request, options, procedure }
        }
        code::REGISTERED => {
            let request = RequestId::from_valid(d.id("REGISTER.Request|id")?);
            let registration = RegistrationId::from_valid(d.id("Registration|id")?);
            d.end()?;
            Message::Registered { request, registration }
        }
        code::UNREGISTER => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let registration = RegistrationId::from_valid(d.id("REGISTERED.Registration|id")?);
            d.end()?;
            Message::Unregister { request, registration }
        }
        code::INVOCATION => {
            let request = RequestId::from_valid(d.id("Request|id")?);
            let registration = RegistrationId::from_valid(d.id("REGISTERED.Registration|id")?);
            let details = d.dict("Details|dict")?;
            let payload = d.payload()?;
            Message::Invocation { request, registration, details, payload }
        }
        other => return Err(DecodeError::UnknownType(other)),
    };
    Ok(msg)
}

// ---------------------------------------------------------------------------
// Encoding

/// How many elements the payload occupies (Autobahn's rule: kwargs forces
/// args to be present; empty trailing elements are omitted).
fn payload_len(p: &Payload) -> usize {
    match p {
        Payload::Raw { args, kwargs, .. } => {
            if kwargs.is_some() {
                2
            } else {
                usize::from(args.is_some())
            }
        }
        Payload::Values { args, kwargs } => {
            if kwargs.as_ref().is_some_and(|k| !k.is_empty()) {
                2
            } else {
                usize::from(args.as_ref().is_some_and(|a| !a.is_empty()))
            }
        }
    }
}

const EMPTY_LIST: &List = &Vec::new();

fn write_payload<W: WireWriter>(w: &mut W, p: &Payload, n: usize) -> Result<(), EncodeError> {
    if n == 0 {
        return Ok(());
    }
    match p {
        Payload::Raw { format, args, kwargs } if *format == W::FORMAT => {
            match args {
                Some(a) => w.raw(a),
                None => w.list(EMPTY_LIST)?,
            }
            if n == 2 {
                if let Some(k) = kwargs {
                    w.raw(k);
                }
            }
        }
        Payload::Raw { format, args, kwargs } => {
            // Transcode: decode each span and write it in this format. The
            // args span may hold a binary value (transparent payload).
            let decode = |b: &Bytes| decode_value(*format, b).map_err(|e| EncodeError::Transcode(e.to_string()));
            match args.as_ref().map(decode).transpose()? {
                None => w.list(EMPTY_LIST)?,
                Some(Value::List(l)) => w.list(&l)?,
                Some(Value::Bytes(b)) if kwargs.is_none() => w.binary(&b)?,
                Some(_) => return Err(EncodeError::Transcode("Arguments|list is not a list".into())),
            }
            if n == 2 {
                match kwargs.as_ref().map(decode).transpose()? {
                    Some(Value::Dict(k)) => w.dict(&k)?,
                    _ => return Err(EncodeError::Transcode("ArgumentsKw|dict is not a dict".into())),
                }
            }
        }
        Payload::Values { args, kwargs } => {
            w.list(args.as_ref().unwrap_or(EMPTY_LIST))?;
            if n == 2 {
                if let Some(k) = kwargs {
                    w.dict(k)?;
                }
            }
        }
    }
    Ok(())
}

/// Messages estimated at most this many bytes are encoded into a per-thread
/// scratch buffer and copied out at their exact size (see [`encode_exact`]).
const SCRATCH_MAX: usize = 4096;

/// The scratch buffer keeps at most this capacity between messages.
const SCRATCH_KEEP: usize = 4 * SCRATCH_MAX;

std::thread_local! {
    static SCRATCH: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Encodes `msg` with `into` (an `encode_into` of one format) and returns it
/// as `Bytes` of exactly its length. A small message is written to a
/// per-thread scratch buffer and copied into one allocation of its exact
/// size: `Bytes` of a vector whose length equals its capacity need no
/// separate reference-count block, so the message costs one allocation
/// instead of two (the buffer, then `Bytes`' shared header) and no slack.
/// A large one is written into its own buffer and handed over as is, as a
/// copy would cost more than the header it saves. The scratch is only a
/// cache: a nested call finds it taken and uses a fresh vector.
pub(crate) fn encode_exact(
    msg: &Message,
    into: impl FnOnce(&Message, &mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<Bytes, EncodeError> {
    let hint = size_hint(msg);
    if hint > SCRATCH_MAX {
        let mut v = Vec::with_capacity(hint);
        into(msg, &mut v)?;
        return Ok(Bytes::from(v));
    }
    let mut buf = SCRATCH.with(std::cell::Cell::take);
    buf.clear();
    let out = into(msg, &mut buf).map(|()| Bytes::copy_from_slice(&buf));
    if buf.capacity() <= SCRATCH_KEEP {
        SCRATCH.with(|s| s.set(buf));
    }
    out
}

/// A rough output size estimate, to allocate once.
pub(crate) fn size_hint(msg: &Message) -> usize {
    let p = match msg {
        Message::Error { payload, .. }
        | Message::Publish { payload, .. }
        | Message::Event { payload, .. }
        | Message::EventReceived { payload, .. }
        | Message::Call { payload, .. }
        | Message::Result { payload, .. }
        | Message::Invocation { payload, .. }
        | Message::Yield { payload, .. } => payload,
        _ => return 128,
    };
    128 + match p {
        Payload::Raw { args, kwargs, .. } => {
            args.as_ref().map_or(0, |b| b.len()) + kwargs.as_ref().map_or(0, |b| b.len())
        }
        Payload::Values { .. } => 64,
    }
}

/// Encodes `msg` with `w`.
pub(crate) fn encode_message<W: WireWriter>(w: &mut W, msg: &Message) -> Result<(), EncodeError> {
    let ty = msg.code();
    match msg {
        Message::Hello { realm, details } => {
            w.begin(3);
            w.uint(ty);
            w.str(realm)?;
            w.dict(details)?;
        }
        Message::Welcome { session, details } => {
            w.begin(3);
            w.uint(ty);
            w.uint(session.get());
            w.dict(details)?;
        }
        Message::Abort { details, reason } | Message::Goodbye { details, reason } => {
            w.begin(3);
            w.uint(ty);
            w.dict(details)?;
            w.str(reason)?;
        }
        Message::Challenge { method: s, extra } | Message::Authenticate { signature: s, extra } => {
            w.begin(3);
            w.uint(ty);
            w.str(s)?;
            w.dict(extra)?;
        }
        Message::Error { request_type, request, details, error, payload } => {
            let n = payload_len(payload);
            w.begin(5 + n);
            w.uint(ty);
            w.uint(*request_type);
            w.uint(request.get());
            w.dict(details)?;
            w.str(error)?;
            write_payload(w, payload, n)?;
        }
        Message::Publish { request, options, topic: s, payload }
        | Message::Call { request, options, procedure: s, payload } => {
            let n = payload_len(payload);
            w.begin(4 + n);
            w.uint(ty);
            w.uint(request.get());
            w.dict(options)?;
            w.str(s)?;
            write_payload(w, payload, n)?;
        }
        Message::Published { request, publication } => {
            w.begin(3);
            w.uint(ty);
            w.uint(request.get());
            w.uint(publication.get());
        }
        Message::Subscribe { request, options, topic: s } | Message::Register { request, options, procedure: s } => {
            w.begin(4);
            w.uint(ty);
            w.uint(request.get());
            w.dict(options)?;
            w.str(s)?;
        }
        Message::Subscribed { request, subscription } | Message::Unsubscribe { request, subscription } => {
            w.begin(3);
            w.uint(ty);
            w.uint(request.get());
            w.uint(subscription.get());
        }
        Message::Registered { request, registration } | Message::Unregister { request, registration } => {
            w.begin(3);
            w.uint(ty);
            w.uint(request.get());
            w.uint(registration.get());
        }
        Message::Unsubscribed { request, details } | Message::Unregistered { request, details } => {
            w.begin(if details.is_some() { 3 } else { 2 });
            w.uint(ty);
            w.uint(request.get());
            if let Some(d) = details {
                w.dict(d)?;
            }
        }
        Message::Event { subscription, publication, details, payload } => {
            let n = payload_len(payload);
            w.begin(4 + n);
            w.uint(ty);
            w.uint(subscription.get());
            w.uint(publication.get());
            w.dict(details)?;
            write_payload(w, payload, n)?;
        }
        Message::EventReceived { publication, details, payload } => {
            let n = payload_len(payload);
            if n == 0 && details.is_empty() {
                w.begin(2);
                w.uint(ty);
                w.uint(publication.get());
            } else {
                w.begin(3 + n);
                w.uint(ty);
                w.uint(publication.get());
                w.dict(details)?;
                write_payload(w, payload, n)?;
            }
        }
        Message::Cancel { request, options } | Message::Interrupt { request, options } => {
            w.begin(3);
            w.uint(ty);
            w.uint(request.get());
            w.dict(options)?;
        }
        Message::Result { request, details: d, payload } | Message::Yield { request, options: d, payload } => {
            let n = payload_len(payload);
            w.begin(3 + n);
            w.uint(ty);
            w.uint(request.get());
            w.dict(d)?;
            write_payload(w, payload, n)?;
        }
        Message::Invocation { request, registration, details, payload } => {
            let n = payload_len(payload);
            w.begin(4 + n);
            w.uint(ty);
            w.uint(request.get());
            w.uint(registration.get());
            w.dict(details)?;
            write_payload(w, payload, n)?;
        }
    }
    w.end();
    Ok(())
}
