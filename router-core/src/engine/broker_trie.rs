//! The index of pattern-based subscriptions: tries over URI components.
//!
//! * **Prefix** patterns match by *string* prefix (`com.app.emergency`
//!   matches `com.app.emergency-low` and `com.app.emergency.x`). A pattern
//!   is split into its complete components (the trie path) and its last,
//!   possibly partial or empty, component, stored in the node's `partial`
//!   map. Matching a topic walks its components once; at each node, the
//!   partial map is probed with the prefixes of the topic's next component
//!   (or scanned, if it is the smaller of the two).
//! * **Wildcard** patterns match component-wise with equal component counts,
//!   an empty pattern component matching any one component. The trie has a
//!   concrete child per component and one `any` child for empty components;
//!   matching follows both, iteratively.
//!
//! Matching cost depends on the topic's length and on the patterns that
//! actually share a path with it, never on the total number of patterns.
//! Pattern depth is bounded ([`MAX_PATTERN_COMPONENTS`]) so that no walk,
//! prune or drop can recurse deeply.

use foldhash::HashMap;

use super::MatchPolicy;

/// Most components a prefix or wildcard pattern may have.
pub const MAX_PATTERN_COMPONENTS: usize = 128;

/// One trie node (shared by both tries; each uses its own fields).
#[derive(Default, Debug)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// Wildcard trie: the child for an empty component.
    any: Option<Box<Node>>,
    /// Wildcard trie: the subscription whose pattern ends at this node.
    end: Option<usize>,
    /// Prefix trie: subscriptions whose complete components lead here, by
    /// their last (partial) component.
    partial: HashMap<Box<str>, usize>,
}

/// One step of a trie path.
#[derive(Copy, Clone)]
enum Step<'a> {
    Child(&'a str),
    Any,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty() && self.any.is_none() && self.end.is_none() && self.partial.is_empty()
    }

    /// True if the node holds anything besides one child.
    fn must_survive_without_one_child(&self) -> bool {
        self.end.is_some() || !self.partial.is_empty() || self.children.len() + usize::from(self.any.is_some()) > 1
    }

    fn child(&self, step: Step<'_>) -> Option<&Node> {
        match step {
            Step::Child(c) => self.children.get(c),
            Step::Any => self.any.as_deref(),
        }
    }

    fn child_mut(&mut self, step: Step<'_>) -> Option<&mut Node> {
        match step {
            Step::Child(c) => self.children.get_mut(c),
            Step::Any => self.any.as_deref_mut(),
        }
    }

    fn child_or_insert(&mut self, step: Step<'_>) -> &mut Node {
        match step {
            Step::Child(c) => self.children.entry(c.into()).or_default(),
            Step::Any => self.any.get_or_insert_with(Box::default),
        }
    }

    fn remove_child(&mut self, step: Step<'_>) {
        match step {
            Step::Child(c) => {
                self.children.remove(c);
            }
            Step::Any => self.any = None,
        }
    }

    fn walk(&self, path: &[Step<'_>]) -> Option<&Node> {
        let mut node = self;
        for s in path {
            node = node.child(*s)?;
        }
        Some(node)
    }

    fn walk_mut(&mut self, path: &[Step<'_>]) -> Option<&mut Node> {
        let mut node = self;
        for s in path {
            node = node.child_mut(*s)?;
        }
        Some(node)
    }

    fn walk_or_insert(&mut self, path: &[Step<'_>]) -> &mut Node {
        let mut node = self;
        for s in path {
            node = node.child_or_insert(*s);
        }
        node
    }

    /// Applies `remove` to the node at `path`; if that leaves the node
    /// empty, prunes the chain of nodes that existed only for it.
    fn remove_at(&mut self, path: &[Step<'_>], remove: impl FnOnce(&mut Node) -> bool) -> bool {
        // The deepest node on the path that survives the pruning.
        let mut cut = 0;
        let mut node = &*self;
        for (i, s) in path.iter().enumerate() {
            if i > 0 && node.must_survive_without_one_child() {
                cut = i;
            }
            match node.child(*s) {
                Some(n) => node = n,
                None => return false,
            }
        }
        let Some(target) = self.walk_mut(path) else { return false };
        if !remove(target) {
            return false;
        }
        if target.is_empty() && !path.is_empty() {
            if let Some(parent) = self.walk_mut(&path[..cut]) {
                parent.remove_child(path[cut]);
            }
        }
        true
    }
}

/// Splits a prefix pattern into its complete components and its last one.
fn prefix_parts(pattern: &str) -> (Vec<Step<'_>>, &str) {
    match pattern.rsplit_once('.') {
        Some((head, last)) => (head.split('.').map(Step::Child).collect(), last),
        None => (Vec::new(), pattern),
    }
}

fn wildcard_path(pattern: &str) -> Vec<Step<'_>> {
    pattern.split('.').map(|c| if c.is_empty() { Step::Any } else { Step::Child(c) }).collect()
}

/// True if `pattern` is a valid pattern for `policy` (loose URI rules):
/// prefix patterns may end with an empty component (`com.app.`) or be
/// empty; wildcard patterns may have empty components anywhere.
pub(super) fn valid_pattern(policy: MatchPolicy, pattern: &str) -> bool {
    match policy {
        MatchPolicy::Exact => super::uri_ok(pattern),
        MatchPolicy::Prefix => {
            pattern.split('.').count() <= MAX_PATTERN_COMPONENTS
                && wamp_proto::uri::is_valid_uri(pattern, false, true)
                && pattern.rsplit_once('.').is_none_or(|(head, _)| head.split('.').all(|c| !c.is_empty()))
        }
        MatchPolicy::Wildcard => {
            pattern.split('.').count() <= MAX_PATTERN_COMPONENTS && wamp_proto::uri::is_valid_uri(pattern, false, true)
        }
    }
}

/// True if `topic` matches `pattern` under `policy` (one pattern, no index).
pub(super) fn pattern_matches(policy: MatchPolicy, pattern: &str, topic: &str) -> bool {
    match policy {
        MatchPolicy::Exact => pattern == topic,
        MatchPolicy::Prefix => topic.starts_with(pattern),
        MatchPolicy::Wildcard => {
            let mut t = topic.split('.');
            for p in pattern.split('.') {
                match t.next() {
                    Some(c) if p.is_empty() || p == c => {}
                    _ => return false,
                }
            }
            t.next().is_none()
        }
    }
}

/// Prefix and wildcard subscriptions (values are subscription slots).
#[derive(Default, Debug)]
pub(super) struct PatternIndex {
    prefix: Node,
    wildcard: Node,
    prefixes: usize,
    wildcards: usize,
}

impl PatternIndex {
    /// The slot of the subscription with this pattern, if any.
    pub(super) fn get(&self, policy: MatchPolicy, pattern: &str) -> Option<usize> {
        match policy {
            MatchPolicy::Exact => None,
            MatchPolicy::Prefix => {
                let (path, last) = prefix_parts(pattern);
                self.prefix.walk(&path)?.partial.get(last).copied()
            }
            MatchPolicy::Wildcard => self.wildcard.walk(&wildcard_path(pattern))?.end,
        }
    }

    /// Adds a pattern (which must not be present yet).
    pub(super) fn insert(&mut self, policy: MatchPolicy, pattern: &str, slot: usize) {
        match policy {
            MatchPolicy::Exact => {}
            MatchPolicy::Prefix => {
                let (path, last) = prefix_parts(pattern);
                if self.prefix.walk_or_insert(&path).partial.insert(last.into(), slot).is_none() {
                    self.prefixes += 1;
                }
            }
            MatchPolicy::Wildcard => {
                if self.wildcard.walk_or_insert(&wildcard_path(pattern)).end.replace(slot).is_none() {
                    self.wildcards += 1;
                }
            }
        }
    }

    /// Removes a pattern; prunes nodes left empty.
    pub(super) fn remove(&mut self, policy: MatchPolicy, pattern: &str) {
        match policy {
            MatchPolicy::Exact => {}
            MatchPolicy::Prefix => {
                let (path, last) = prefix_parts(pattern);
                if self.prefix.remove_at(&path, |n| n.partial.remove(last).is_some()) {
                    self.prefixes -= 1;
                }
            }
            MatchPolicy::Wildcard => {
                if self.wildcard.remove_at(&wildcard_path(pattern), |n| n.end.take().is_some()) {
                    self.wildcards -= 1;
                }
            }
        }
    }

    /// Number of pattern subscriptions.
    pub(super) fn len(&self) -> usize {
        self.prefixes + self.wildcards
    }

    /// Appends the slots of every pattern matching `topic`: prefixes
    /// (shorter complete-component paths first), then wildcards.
    pub(super) fn matches(&self, topic: &str, out: &mut Vec<usize>) {
        if self.prefixes > 0 {
            self.prefix_matches(topic, out);
        }
        if self.wildcards > 0 {
            self.wildcard_matches(topic, out);
        }
    }

    fn prefix_matches(&self, topic: &str, out: &mut Vec<usize>) {
        let mut node = &self.prefix;
        for c in topic.split('.') {
            if !node.partial.is_empty() {
                if node.partial.len() <= c.len() + 1 {
                    // Few patterns here: test each (sorted by slot, so the
                    // order does not depend on hashing).
                    let start = out.len();
                    out.extend(node.partial.iter().filter(|(p, _)| c.starts_with(&***p)).map(|(_, s)| *s));
                    out[start..].sort_unstable();
                } else {
                    for end in c.char_indices().map(|(i, _)| i).chain(std::iter::once(c.len())) {
                        if let Some(s) = node.partial.get(&c[..end]) {
                            out.push(*s);
                        }
                    }
                }
            }
            match node.children.get(c) {
                Some(n) => node = n,
                None => return,
            }
        }
    }

    fn wildcard_matches(&self, topic: &str, out: &mut Vec<usize>) {
        // (node, byte offset of the next component in `topic`, or None at the end)
        let mut stack: Vec<(&Node, Option<usize>)> = vec![(&self.wildcard, Some(0))];
        while let Some((node, at)) = stack.pop() {
            let Some(at) = at else {
                if let Some(s) = node.end {
                    out.push(s);
                }
                continue;
            };
            let rest = &topic[at..];
            let (comp, next) = match rest.find('.') {
                Some(i) => (&rest[..i], Some(at + i + 1)),
                None => (rest, None),
            };
            // Pushed in reverse so concrete children are visited first.
            if let Some(any) = node.any.as_deref() {
                stack.push((any, next));
            }
            if let Some(child) = node.children.get(comp) {
                stack.push((child, next));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(ix: &PatternIndex, topic: &str) -> Vec<usize> {
        let mut v = Vec::new();
        ix.matches(topic, &mut v);
        v
    }

    #[test]
    fn prefix_is_a_string_prefix() {
        let mut ix = PatternIndex::default();
        ix.insert(MatchPolicy::Prefix, "com.app.emergency", 1);
        ix.insert(MatchPolicy::Prefix, "com.app.", 2);
        ix.insert(MatchPolicy::Prefix, "", 3);
        ix.insert(MatchPolicy::Prefix, "com.ap", 4);
        assert_eq!(matches(&ix, "com.app.emergency"), vec![3, 4, 1, 2]);
        assert_eq!(matches(&ix, "com.app.emergency-low"), vec![3, 4, 1, 2]);
        assert_eq!(matches(&ix, "com.app.emergency.x.y"), vec![3, 4, 1, 2]);
        assert_eq!(matches(&ix, "com.app.emerge"), vec![3, 4, 2]);
        assert_eq!(matches(&ix, "com.app"), vec![3, 4]);
        assert_eq!(matches(&ix, "org"), vec![3]);
        assert_eq!(ix.get(MatchPolicy::Prefix, "com.app."), Some(2));
        assert_eq!(ix.get(MatchPolicy::Prefix, "com.app"), None);
        ix.remove(MatchPolicy::Prefix, "com.app.emergency");
        ix.remove(MatchPolicy::Prefix, "");
        assert_eq!(matches(&ix, "com.app.emergency"), vec![4, 2]);
        assert_eq!(ix.len(), 2);
        ix.remove(MatchPolicy::Prefix, "com.app.");
        ix.remove(MatchPolicy::Prefix, "com.ap");
        assert_eq!(ix.len(), 0);
        assert!(ix.prefix.is_empty(), "pruned: {:?}", ix.prefix);
    }

    #[test]
    fn prefix_scan_and_probe_agree() {
        // Many partials at one node forces the probing branch.
        let mut ix = PatternIndex::default();
        for i in 0..50 {
            ix.insert(MatchPolicy::Prefix, &format!("a.t{i}"), i);
        }
        ix.insert(MatchPolicy::Prefix, "a.t", 100);
        assert_eq!(matches(&ix, "a.t12.x"), vec![100, 1, 12]);
        assert_eq!(matches(&ix, "a.u"), Vec::<usize>::new());
    }

    #[test]
    fn wildcard_components() {
        let mut ix = PatternIndex::default();
        ix.insert(MatchPolicy::Wildcard, "com.myapp..userevent", 1);
        ix.insert(MatchPolicy::Wildcard, "..", 2);
        ix.insert(MatchPolicy::Wildcard, "com...", 3);
        ix.insert(MatchPolicy::Wildcard, "com.myapp.foo.userevent", 4);
        let mut m = matches(&ix, "com.myapp.foo.userevent");
        m.sort();
        assert_eq!(m, vec![1, 3, 4]);
        assert_eq!(matches(&ix, "com.myapp.foo.userevent.bar"), Vec::<usize>::new());
        assert_eq!(matches(&ix, "com.myapp2.foo.userevent"), vec![3]);
        assert_eq!(matches(&ix, "x.y.z"), vec![2]);
        assert_eq!(matches(&ix, "x.y"), Vec::<usize>::new());
        for p in ["com.myapp..userevent", "..", "com...", "com.myapp.foo.userevent"] {
            ix.remove(MatchPolicy::Wildcard, p);
        }
        assert_eq!(ix.len(), 0);
        assert!(ix.wildcard.is_empty(), "pruned: {:?}", ix.wildcard);
    }

    #[test]
    fn pruning_keeps_shared_paths() {
        let mut ix = PatternIndex::default();
        ix.insert(MatchPolicy::Wildcard, "a.b.c", 1);
        ix.insert(MatchPolicy::Wildcard, "a.b", 2);
        ix.insert(MatchPolicy::Wildcard, "a.x.c", 3);
        ix.remove(MatchPolicy::Wildcard, "a.b.c");
        assert_eq!(matches(&ix, "a.b"), vec![2]);
        assert_eq!(matches(&ix, "a.x.c"), vec![3]);
        assert_eq!(matches(&ix, "a.b.c"), Vec::<usize>::new());
        ix.remove(MatchPolicy::Wildcard, "a.b");
        assert_eq!(matches(&ix, "a.x.c"), vec![3]);
        ix.remove(MatchPolicy::Wildcard, "a.x.c");
        assert!(ix.wildcard.is_empty());
        // Removing what is not there is a no-op.
        ix.remove(MatchPolicy::Wildcard, "a.x.c");
        ix.remove(MatchPolicy::Prefix, "a.x");
        assert_eq!(ix.len(), 0);
    }

    #[test]
    fn pattern_validation_and_single_match() {
        assert!(valid_pattern(MatchPolicy::Prefix, "com.app."));
        assert!(valid_pattern(MatchPolicy::Prefix, ""));
        assert!(!valid_pattern(MatchPolicy::Prefix, "com..app"));
        assert!(!valid_pattern(MatchPolicy::Prefix, "com app"));
        assert!(valid_pattern(MatchPolicy::Wildcard, "com..app"));
        assert!(!valid_pattern(MatchPolicy::Wildcard, "com.#.app"));
        assert!(!valid_pattern(MatchPolicy::Exact, "com."));
        let deep = vec!["a"; MAX_PATTERN_COMPONENTS + 1].join(".");
        assert!(!valid_pattern(MatchPolicy::Wildcard, &deep));
        assert!(!valid_pattern(MatchPolicy::Prefix, &deep));
        assert!(pattern_matches(MatchPolicy::Wildcard, "a..c", "a.b.c"));
        assert!(!pattern_matches(MatchPolicy::Wildcard, "a..c", "a.b.c.d"));
        assert!(!pattern_matches(MatchPolicy::Wildcard, "a..c", "a.b"));
        assert!(pattern_matches(MatchPolicy::Prefix, "a.b", "a.bc"));
    }
}
