//! WAMP values ([`wamp_proto::Value`]) to and from JSON documents (what the
//! store keeps), and reading call arguments with clear errors.

use base64::Engine;
use serde_json::Value as Json;
use wamp_proto::{Dict, Value};

use crate::error::ApiError;

/// A WAMP value as JSON. Binary values become `"\u0000" + base64`, the WAMP
/// JSON convention.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => Json::String(format!("\u{0}{}", base64::engine::general_purpose::STANDARD.encode(b))),
        Value::List(l) => Json::Array(l.iter().map(to_json).collect()),
        Value::Dict(d) => Json::Object(d.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
    }
}

/// A JSON document as a WAMP value.
pub fn from_json(j: &Json) -> Value {
    match j {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Value::UInt(u),
            (None, Some(i), _) => Value::Int(i),
            (_, _, Some(f)) => Value::Float(f),
            _ => Value::Null,
        },
        Json::String(s) => match s.strip_prefix('\u{0}') {
            Some(b64) => match base64::engine::general_purpose::STANDARD.decode(b64) {
                Ok(b) => Value::Bytes(b.into()),
                Err(_) => Value::Str(s.clone()),
            },
            None => Value::Str(s.clone()),
        },
        Json::Array(a) => Value::List(a.iter().map(from_json).collect()),
        Json::Object(o) => Value::Dict(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect()),
    }
}

/// The positional and keyword arguments of a management call, read by
/// position or name (Autobahn callers may pass either), each read checked.
pub struct Args<'a> {
    pub procedure: &'a str,
    pub args: &'a [Value],
    pub kwargs: &'a Dict,
}

impl<'a> Args<'a> {
    /// The argument at `pos`, or keyword `name`; `None` if absent or null.
    pub fn get(&self, pos: usize, name: &str) -> Option<&'a Value> {
        self.args.get(pos).or_else(|| self.kwargs.get(name)).filter(|v| !matches!(v, Value::Null))
    }

    fn bad(&self, name: &str, want: &str) -> ApiError {
        ApiError::invalid_argument(format!("{}: argument '{name}' must be {want}", self.procedure))
    }

    /// A required string.
    pub fn str(&self, pos: usize, name: &str) -> Result<&'a str, ApiError> {
        match self.get(pos, name) {
            Some(Value::Str(s)) => Ok(s),
            Some(_) => Err(self.bad(name, "a string")),
            None => Err(ApiError::invalid_argument(format!("{}: missing argument '{name}'", self.procedure))),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, pos: usize, name: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(pos, name) {
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(_) => Err(self.bad(name, "a string")),
            None => Ok(None),
        }
    }

    /// A required dict.
    pub fn dict(&self, pos: usize, name: &str) -> Result<&'a Dict, ApiError> {
        match self.get(pos, name) {
            Some(Value::Dict(d)) => Ok(d),
            Some(_) => Err(self.bad(name, "a dict")),
            None => Err(ApiError::invalid_argument(format!("{}: missing argument '{name}'", self.procedure))),
        }
    }

    /// An optional dict.
    pub fn opt_dict(&self, pos: usize, name: &str) -> Result<Option<&'a Dict>, ApiError> {
        match self.get(pos, name) {
            Some(Value::Dict(d)) => Ok(Some(d)),
            Some(_) => Err(self.bad(name, "a dict or null")),
            None => Ok(None),
        }
    }

    /// An optional bool (default `false`).
    pub fn flag(&self, pos: usize, name: &str) -> Result<bool, ApiError> {
        match self.get(pos, name) {
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(name, "a bool")),
            None => Ok(false),
        }
    }

    /// A required object id (a UUID string, normalised to lower case).
    pub fn oid(&self, pos: usize, name: &str) -> Result<String, ApiError> {
        let s = self.str(pos, name)?;
        uuid::Uuid::parse_str(s).map(|u| u.to_string()).map_err(|_| {
            ApiError::invalid_argument(format!("{}: '{name}' is not an object id (UUID): {s:?}", self.procedure))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip() {
        let mut d = Dict::new();
        d.insert("a".into(), Value::List(vec![Value::UInt(1), Value::Int(-2), Value::Float(0.5), Value::Null]));
        d.insert("b".into(), Value::Bytes(vec![0u8, 1, 2].into()));
        d.insert("c".into(), Value::Str("x".into()));
        let v = Value::Dict(d);
        assert_eq!(from_json(&to_json(&v)), v);
    }

    #[test]
    fn args_by_position_or_name_with_clear_errors() {
        let mut kw = Dict::new();
        kw.insert("return_names".into(), Value::Bool(true));
        let a = Args { procedure: "p", args: &[Value::Str("x".into()), Value::UInt(3)], kwargs: &kw };
        assert_eq!(a.str(0, "name"), Ok("x"));
        assert_eq!(a.flag(5, "return_names"), Ok(true));
        assert!(a.str(1, "n").unwrap_err().message.contains("must be a string"));
        assert!(a.str(2, "missing").unwrap_err().message.contains("missing argument"));
        assert!(a.oid(0, "oid").unwrap_err().message.contains("not an object id"));
        let u =
            Args { procedure: "p", args: &[Value::Str("4EAC2F28-4DF8-4FDA-A519-ABE998E54CAD".into())], kwargs: &kw };
        assert_eq!(u.oid(0, "oid").as_deref(), Ok("4eac2f28-4df8-4fda-a519-abe998e54cad"));
    }
}
