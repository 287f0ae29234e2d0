//! Roles and permissions: which session may do what on which URI.
//!
//! A realm has a list of [`Role`]s; each session joins under exactly one
//! role (its `authrole`). A role is a list of [`Permission`]s, each one a URI
//! pattern plus the actions it allows and the identities it discloses.
//!
//! ## Which permission applies
//! For a given URI, exactly one permission of the role applies (or none, and
//! then every action is denied). The lookup order, the same as Crossbar's:
//!
//! 1. an **exact** permission whose URI equals the URI;
//! 2. else the **prefix** permission with the *longest* matching prefix
//!    (a trailing `*` in a prefix pattern is ignored, so `com.app.*` and
//!    `com.app.` are the same pattern; the empty prefix matches everything);
//! 3. else a **wildcard** permission: the pattern's dot-separated components
//!    are matched one by one, an empty component matching any single
//!    component, and the number of components must be equal. If several
//!    wildcard patterns match, the one with the most concrete (non-empty)
//!    components wins; among those, the one whose first wildcard comes
//!    latest (the longest concrete prefix); then the one declared first.
//!
//! If the same pattern appears twice with the same policy, the first one
//! declared wins. The chosen permission alone decides: a more specific
//! permission that denies an action shadows a broader one that allows it.
//!
//! [`RoleTable`] is a role compiled for this lookup: one hash probe for exact
//! patterns, then a scan of prefixes ordered longest first, then wildcards in
//! precedence order. No allocation happens during a lookup.

use foldhash::{HashMap, HashMapExt};
use std::cell::RefCell;

/// A named role with its permissions (engine-level; the runtime converts the
/// configuration's types into these).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// The role name, matched against a session's `authrole`.
    pub name: String,
    /// The permissions, in declaration order.
    pub permissions: Vec<Permission>,
}

/// One permission: a URI pattern, what it allows, what it discloses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The URI pattern, interpreted per `match_policy`.
    pub uri: String,
    /// How `uri` is matched.
    pub match_policy: MatchPolicy,
    /// The actions allowed on matching URIs.
    pub allow: Allow,
    /// Which identities the router discloses for matching URIs.
    pub disclose: Disclose,
}

/// How a permission's URI pattern matches.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MatchPolicy {
    /// The URI equals the pattern.
    Exact,
    /// The URI starts with the pattern.
    Prefix,
    /// Component-wise match; empty pattern components match anything.
    Wildcard,
}

/// The actions a permission allows.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Allow {
    /// CALL the procedure.
    pub call: bool,
    /// REGISTER the procedure.
    pub register: bool,
    /// PUBLISH to the topic.
    pub publish: bool,
    /// SUBSCRIBE to the topic.
    pub subscribe: bool,
}

impl Allow {
    /// Everything allowed.
    pub const ALL: Allow = Allow { call: true, register: true, publish: true, subscribe: true };
    /// Nothing allowed.
    pub const NONE: Allow = Allow { call: false, register: false, publish: false, subscribe: false };

    /// True if `action` is allowed.
    pub const fn permits(&self, action: Action) -> bool {
        match action {
            Action::Call => self.call,
            Action::Register => self.register,
            Action::Publish => self.publish,
            Action::Subscribe => self.subscribe,
        }
    }
}

/// Identities the router discloses on its own authority (Crossbar's
/// `disclose`): the caller's to the callee in INVOCATION, the publisher's to
/// subscribers in EVENT.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Disclose {
    /// Disclose the caller of matching procedures.
    pub caller: bool,
    /// Disclose the publisher on matching topics.
    pub publisher: bool,
}

/// An action a session asks to perform on a URI.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    Call,
    Register,
    Publish,
    Subscribe,
}

impl Action {
    /// Lower-case verb for error messages.
    pub const fn verb(self) -> &'static str {
        match self {
            Action::Call => "call",
            Action::Register => "register",
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }
}

/// The outcome of an authorization check.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// The action is allowed.
    pub allowed: bool,
    /// The router discloses the originator's identity (caller for
    /// [`Action::Call`], publisher for [`Action::Publish`]).
    pub disclose: bool,
}

impl Authorization {
    /// Denied, nothing disclosed.
    pub const DENIED: Authorization = Authorization { allowed: false, disclose: false };
}

/// A wildcard pattern, split once at compile time.
#[derive(Clone, Debug)]
struct WildcardPattern {
    /// Index into `RoleTable::permissions`.
    perm: usize,
    /// Components; `None` is a wildcard component.
    components: Vec<Option<String>>,
}

impl WildcardPattern {
    fn matches(&self, uri: &str) -> bool {
        let mut parts = uri.split('.');
        for c in &self.components {
            match (parts.next(), c) {
                (None, _) => return false,
                (Some(_), None) => {}
                (Some(p), Some(c)) if p == c => {}
                (Some(_), Some(_)) => return false,
            }
        }
        parts.next().is_none()
    }

    /// Precedence key: larger is more specific.
    fn specificity(&self) -> (usize, usize) {
        let concrete = self.components.iter().filter(|c| c.is_some()).count();
        let first_wild = self.components.iter().position(|c| c.is_none()).unwrap_or(self.components.len());
        (concrete, first_wild)
    }
}

/// A [`Role`] compiled for fast permission lookup (see the module docs for
/// the precedence rules).
#[derive(Clone, Debug)]
pub struct RoleTable {
    name: String,
    permissions: Vec<Permission>,
    exact: HashMap<String, usize>,
    /// (prefix, permission index), longest prefix first.
    prefix: Vec<(String, usize)>,
    /// Wildcards in precedence order.
    wildcard: Vec<WildcardPattern>,
    /// Results of pattern lookups (roles are static, so entries never go
    /// stale); cleared when it reaches [`LOOKUP_CACHE_SIZE`] entries so
    /// hostile URIs cannot grow it.
    cache: RefCell<HashMap<String, Option<usize>>>,
}

/// Entries kept in a role's pattern-lookup cache.
pub const LOOKUP_CACHE_SIZE: usize = 4096;

impl RoleTable {
    /// Compiles `role`.
    pub fn new(role: &Role) -> RoleTable {
        let mut exact = HashMap::new();
        let mut prefix: Vec<(String, usize)> = Vec::new();
        let mut wildcard: Vec<WildcardPattern> = Vec::new();
        for (i, p) in role.permissions.iter().enumerate() {
            match p.match_policy {
                MatchPolicy::Exact => {
                    exact.entry(p.uri.clone()).or_insert(i);
                }
                MatchPolicy::Prefix => {
                    let pat = p.uri.strip_suffix('*').unwrap_or(&p.uri);
                    if !prefix.iter().any(|(q, _)| q == pat) {
                        prefix.push((pat.to_owned(), i));
                    }
                }
                MatchPolicy::Wildcard => {
                    let components: Vec<Option<String>> =
                        p.uri.split('.').map(|c| if c.is_empty() { None } else { Some(c.to_owned()) }).collect();
                    if !wildcard.iter().any(|w| w.components == components) {
                        wildcard.push(WildcardPattern { perm: i, components });
                    }
                }
            }
        }
        // Stable sorts keep declaration order among equals.
        prefix.sort_by_key(|p| std::cmp::Reverse(p.0.len()));
        wildcard.sort_by_key(|w| std::cmp::Reverse(w.specificity()));
        RoleTable {
            name: role.name.clone(),
            permissions: role.permissions.clone(),
            exact,
            prefix,
            wildcard,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// The role name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The permission that applies to `uri`, if any.
    pub fn lookup(&self, uri: &str) -> Option<&Permission> {
        if let Some(&i) = self.exact.get(uri) {
            return self.permissions.get(i);
        }
        // Prefix/wildcard scans are linear in the role's patterns: remember
        // their answer per URI.
        if let Some(cached) = self.cache.borrow().get(uri) {
            return cached.and_then(|i| self.permissions.get(i));
        }
        let idx = self
            .prefix
            .iter()
            .find(|(p, _)| uri.starts_with(p.as_str()))
            .map(|(_, i)| *i)
            .or_else(|| self.wildcard.iter().find(|w| w.matches(uri)).map(|w| w.perm));
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= LOOKUP_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(uri.to_owned(), idx);
        idx.and_then(|i| self.permissions.get(i))
    }

    /// May a session of this role perform `action` on `uri`, and is its
    /// identity disclosed?
    pub fn authorize(&self, uri: &str, action: Action) -> Authorization {
        match self.lookup(uri) {
            Some(p) if p.allow.permits(action) => Authorization {
                allowed: true,
                disclose: match action {
                    Action::Call => p.disclose.caller,
                    Action::Publish => p.disclose.publisher,
                    Action::Register | Action::Subscribe => false,
                },
            },
            _ => Authorization::DENIED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(uri: &str, m: MatchPolicy, allow: Allow) -> Permission {
        Permission { uri: uri.into(), match_policy: m, allow, disclose: Disclose::default() }
    }

    fn only(action: Action) -> Allow {
        let mut a = Allow::NONE;
        match action {
            Action::Call => a.call = true,
            Action::Register => a.register = true,
            Action::Publish => a.publish = true,
            Action::Subscribe => a.subscribe = true,
        }
        a
    }

    #[test]
    fn cached_lookups_agree_and_the_cache_is_bounded() {
        let role = Role {
            name: "r".into(),
            permissions: vec![
                perm("com.a.", MatchPolicy::Prefix, only(Action::Publish)),
                perm("com..x", MatchPolicy::Wildcard, only(Action::Subscribe)),
            ],
        };
        let t = RoleTable::new(&role);
        for _ in 0..2 {
            assert!(t.authorize("com.a.b", Action::Publish).allowed);
            assert!(!t.authorize("com.a.b", Action::Subscribe).allowed);
            assert!(t.authorize("com.q.x", Action::Subscribe).allowed);
            assert!(!t.authorize("org.q.x", Action::Subscribe).allowed);
        }
        for i in 0..(LOOKUP_CACHE_SIZE * 2) {
            let _ = t.authorize(&format!("com.a.{i}"), Action::Publish);
        }
        assert!(t.cache.borrow().len() <= LOOKUP_CACHE_SIZE);
        assert!(t.authorize("com.a.zzz", Action::Publish).allowed);
    }

    #[test]
    fn exact_beats_prefix_beats_wildcard() {
        let role = Role {
            name: "r".into(),
            permissions: vec![
                perm("com.app..x", MatchPolicy::Wildcard, only(Action::Subscribe)),
                perm("com.", MatchPolicy::Prefix, only(Action::Call)),
                perm("com.app.", MatchPolicy::Prefix, only(Action::Publish)),
                perm("com.app.a.x", MatchPolicy::Exact, only(Action::Register)),
            ],
        };
        let t = RoleTable::new(&role);
        assert!(t.authorize("com.app.a.x", Action::Register).allowed);
        assert!(!t.authorize("com.app.a.x", Action::Publish).allowed, "exact shadows prefix");
        assert!(t.authorize("com.app.b.x", Action::Publish).allowed, "longest prefix");
        assert!(!t.authorize("com.app.b.x", Action::Call).allowed, "longest prefix shadows shorter");
        assert!(t.authorize("com.other", Action::Call).allowed);
        assert!(!t.authorize("org.app.b.x", Action::Call).allowed, "no match denies");
    }

    #[test]
    fn wildcard_matching_and_precedence() {
        let role = Role {
            name: "r".into(),
            permissions: vec![
                perm("a..c", MatchPolicy::Wildcard, only(Action::Call)),
                perm("a.b.", MatchPolicy::Wildcard, only(Action::Publish)),
                perm("..", MatchPolicy::Wildcard, only(Action::Subscribe)),
            ],
        };
        let t = RoleTable::new(&role);
        // "a.b.c" matches all three; "a.b." and "a..c" have two concrete
        // components, "a.b." has its first wildcard later.
        assert!(t.authorize("a.b.c", Action::Publish).allowed);
        assert!(!t.authorize("a.b.c", Action::Call).allowed);
        assert!(t.authorize("a.x.c", Action::Call).allowed);
        assert!(t.authorize("x.y.z", Action::Subscribe).allowed);
        assert!(!t.authorize("x.y", Action::Subscribe).allowed, "component count must match");
        assert!(!t.authorize("x.y.z.w", Action::Subscribe).allowed);
    }

    #[test]
    fn prefix_star_and_disclose() {
        let mut p = perm("com.app.*", MatchPolicy::Prefix, Allow::ALL);
        p.disclose = Disclose { caller: true, publisher: false };
        let t = RoleTable::new(&Role { name: "r".into(), permissions: vec![p] });
        let a = t.authorize("com.app.proc", Action::Call);
        assert!(a.allowed && a.disclose);
        let a = t.authorize("com.app.topic", Action::Publish);
        assert!(a.allowed && !a.disclose);
        assert_eq!(t.authorize("com.ap", Action::Call), Authorization::DENIED);
    }
}
