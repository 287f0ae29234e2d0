//! Application payloads (`Arguments|list`, `ArgumentsKw|dict`) and how they
//! avoid being decoded.
//!
//! A decoder does not build `Value`s for args/kwargs: it records the byte
//! spans of the two elements as [`Payload::Raw`] (zero-copy slices of the
//! received buffer). An encoder whose format matches splices those bytes into
//! its output unchanged; only a different format pays for a transcode.
//! Flatbuffers carries args/kwargs as CBOR bytes, so it shares the CBOR path.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::value::{Dict, List, Value};

/// The encoding of a raw payload span.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PayloadFormat {
    Json,
    Msgpack,
    Cbor,
}

/// Args and kwargs of a message that carries an application payload.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// Decoded values (built by application code, or after a transcode).
    /// `None`/`None` means the message carries no payload.
    Values { args: Option<List>, kwargs: Option<Dict> },
    /// Still encoded: `args` is the encoding of the list and `kwargs` of the
    /// dict, exactly as received. Decoders normalize an empty list/dict to
    /// `None`.
    ///
    /// Payload transparency (E2EE, `enc_algo` in Options/Details): the
    /// message carries one opaque binary value instead of `Arguments|list`;
    /// it is kept here as `args` = that binary value's encoding, `kwargs` =
    /// `None`. Encoders splice or transcode it like any other span.
    Raw { format: PayloadFormat, args: Option<Bytes>, kwargs: Option<Bytes> },
}

/// A payload in one particular encoding, ready to splice into a message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodedPayload {
    pub args: Option<Bytes>,
    pub kwargs: Option<Bytes>,
}

impl Default for Payload {
    fn default() -> Self {
        Payload::EMPTY
    }
}

impl Payload {
    /// No args, no kwargs.
    pub const EMPTY: Payload = Payload::Values { args: None, kwargs: None };

    /// A payload of decoded values.
    pub fn values(args: Option<List>, kwargs: Option<Dict>) -> Payload {
        Payload::Values { args, kwargs }
    }

    /// True if the message carries neither args nor kwargs.
    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Values { args, kwargs } => {
                args.as_ref().is_none_or(|a| a.is_empty()) && kwargs.as_ref().is_none_or(|k| k.is_empty())
            }
            Payload::Raw { args, kwargs, .. } => args.is_none() && kwargs.is_none(),
        }
    }

    /// Decodes into values (a transcode step for raw payloads).
    pub fn to_values(&self) -> Result<(Option<List>, Option<Dict>), DecodeError> {
        match self {
            Payload::Values { args, kwargs } => Ok((args.clone(), kwargs.clone())),
            Payload::Raw { format, args, kwargs } => {
                let args = match args {
                    Some(b) => match decode_value(*format, b)? {
                        Value::List(l) => Some(l),
                        _ => return Err(DecodeError::Invalid("Arguments|list is not a list".into())),
                    },
                    None => None,
                };
                let kwargs = match kwargs {
                    Some(b) => match decode_value(*format, b)? {
                        Value::Dict(d) => Some(d),
                        _ => return Err(DecodeError::Invalid("ArgumentsKw|dict is not a dict".into())),
                    },
                    None => None,
                };
                Ok((args, kwargs))
            }
        }
    }

    /// The payload encoded in `format`: shared bytes if it already is,
    /// otherwise transcoded.
    pub fn encoded_in(&self, format: PayloadFormat) -> Result<EncodedPayload, EncodeError> {
        match self {
            Payload::Raw { format: f, args, kwargs } if *f == format => {
                Ok(EncodedPayload { args: args.clone(), kwargs: kwargs.clone() })
            }
            Payload::Raw { format: from, args, kwargs } => {
                // Span by span, whatever value each holds (a transparent
                // payload's args span is a binary value, not a list).
                let transcode = |span: &Option<Bytes>| -> Result<Option<Bytes>, EncodeError> {
                    let Some(span) = span else { return Ok(None) };
                    let v = decode_value(*from, span).map_err(|e| EncodeError::Transcode(e.to_string()))?;
                    let mut out = Vec::with_capacity(span.len() + 16);
                    encode_value(format, &v, &mut out)?;
                    Ok(Some(Bytes::from(out)))
                };
                Ok(EncodedPayload { args: transcode(args)?, kwargs: transcode(kwargs)? })
            }
            Payload::Values { args, kwargs } => encode_values(format, args.as_ref(), kwargs.as_ref()),
        }
    }
}

fn encode_values(
    format: PayloadFormat,
    args: Option<&List>,
    kwargs: Option<&Dict>,
) -> Result<EncodedPayload, EncodeError> {
    let args = match args {
        Some(a) if !a.is_empty() => {
            let mut out = Vec::new();
            encode_value(format, &Value::List(a.clone()), &mut out)?;
            Some(Bytes::from(out))
        }
        _ => None,
    };
    let kwargs = match kwargs {
        Some(k) if !k.is_empty() => {
            let mut out = Vec::new();
            encode_value(format, &Value::Dict(k.clone()), &mut out)?;
            Some(Bytes::from(out))
        }
        _ => None,
    };
    Ok(EncodedPayload { args, kwargs })
}

/// Decodes one complete value in `format`.
pub fn decode_value(format: PayloadFormat, bytes: &Bytes) -> Result<Value, DecodeError> {
    match format {
        PayloadFormat::Json => crate::json::decode_value(bytes),
        PayloadFormat::Msgpack => crate::msgpack::decode_value(bytes),
        PayloadFormat::Cbor => crate::cbor::decode_value(bytes),
    }
}

/// Encodes one value in `format`, appending to `out`.
pub fn encode_value(format: PayloadFormat, value: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match format {
        PayloadFormat::Json => crate::json::encode_value(value, out),
        PayloadFormat::Msgpack => crate::msgpack::encode_value(value, out),
        PayloadFormat::Cbor => crate::cbor::encode_value(value, out),
    }
}
