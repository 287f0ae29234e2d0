//! Configuration diagnostics: every problem found, each with its location.

use std::fmt;

/// One problem found in a configuration.
///
/// `location` is a JSON-path-like string such as
/// `workers[0].realms[1].roles[0].permissions[2].match`; keys that are not
/// plain identifiers are quoted (`paths["/"]`). The empty location means
/// "the document as a whole".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is, e.g. `workers[0].transports[1].endpoint.port`.
    pub location: String,
    /// What is wrong, in words meant for the person editing the file.
    pub message: String,
    /// 1-based line in the source text, when known (syntax errors, and every
    /// location of a JSON source).
    pub line: Option<usize>,
}

impl ConfigError {
    /// A problem at `location`.
    pub fn new(location: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { location: location.into(), message: message.into(), line: None }
    }
}

impl fmt::Display for ConfigError {
    /// `location: message`, or `location (line N): message` when the line is
    /// known; `<config>` stands for an empty location.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let loc = if self.location.is_empty() { "<config>" } else { &self.location };
        match self.line {
            Some(line) => write!(f, "{loc} (line {line}): {}", self.message),
            None => write!(f, "{loc}: {}", self.message),
        }
    }
}

/// Every problem found in one configuration (never empty when returned as an
/// `Err`). Displays one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigErrors {
    /// The problems; for JSON sources sorted by line, otherwise shape
    /// problems first, then value problems.
    pub errors: Vec<ConfigError>,
    /// Non-fatal findings made along the way (not part of `Display`), so a
    /// CLI can show them next to the errors.
    pub warnings: Vec<ConfigError>,
}

impl ConfigErrors {
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// True when there are no problems.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates the problems.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.errors.iter()
    }

    /// The first problem reported at exactly `location`, if any.
    pub fn at(&self, location: &str) -> Option<&ConfigError> {
        self.errors.iter().find(|e| e.location == location)
    }

    pub(crate) fn single(location: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigErrors { errors: vec![ConfigError::new(location, message)], warnings: Vec::new() }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.errors.into_iter()
    }
}

/// Collector of errors and warnings while walking a configuration.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigError>,
    /// Locations whose typed value is a stand-in for something the parser
    /// could not read; value checks at or below them are not reported.
    pub poisoned: Vec<String>,
}

impl Diags {
    pub fn error(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError::new(location, message));
    }
    pub fn poison(&mut self, location: impl Into<String>) {
        self.poisoned.push(location.into());
    }
    pub fn warn(&mut self, location: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(ConfigError::new(location, message));
    }
}

/// Appends `.key` (or `["key"]` for keys that are not identifiers) to a path.
pub(crate) fn join(path: &str, key: &str) -> String {
    let ident = !key.is_empty()
        && key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ident {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    } else {
        let quoted = serde_json::to_string(key).unwrap_or_else(|_| format!("\"{key}\""));
        format!("{path}[{quoted}]")
    }
}

/// Appends `[i]` to a path.
pub(crate) fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// True if `inner` is `outer` or lies below it (`outer.x`, `outer[3]`).
pub(crate) fn is_within(inner: &str, outer: &str) -> bool {
    if outer.is_empty() {
        return true;
    }
    match inner.strip_prefix(outer) {
        Some("") => true,
        Some(rest) => rest.starts_with('.') || rest.starts_with('['),
        None => false,
    }
}
