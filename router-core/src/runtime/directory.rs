//! The node-wide session directory: session id → where the session lives.
//!
//! Every shard reads it without locks (`papaya` is a lock-free hash map);
//! only the shard that owns a session inserts or removes its entry. It also
//! guarantees that session ids are unique across the node: a shard draws a
//! random id and claims it with an insert-if-absent.

use std::sync::Arc;

use wamp_proto::SessionId;

/// What the directory knows about one session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEntry {
    /// Index of the shard (core) that serves the session.
    pub shard: usize,
    pub realm: Arc<str>,
    pub authid: Arc<str>,
    pub authrole: Arc<str>,
}

/// See the module docs.
#[derive(Default)]
pub struct SessionDirectory {
    map: papaya::HashMap<u64, SessionEntry>,
}

impl SessionDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Claims `id` for a session if no other session holds it.
    pub fn try_insert(&self, id: SessionId, entry: SessionEntry) -> bool {
        let map = self.map.pin();
        map.try_insert(id.get(), entry).is_ok()
    }

    /// Replaces a session's entry (after authentication completed).
    pub fn update(&self, id: SessionId, entry: SessionEntry) {
        self.map.pin().insert(id.get(), entry);
    }

    /// Looks a session up.
    pub fn get(&self, id: SessionId) -> Option<SessionEntry> {
        self.map.pin().get(&id.get()).cloned()
    }

    /// Forgets a session.
    pub fn remove(&self, id: SessionId) {
        self.map.pin().remove(&id.get());
    }

    /// Number of sessions on the node.
    pub fn len(&self) -> usize {
        self.map.pin().len()
    }

    /// Sessions per realm (admitted or authenticating), for metrics.
    pub fn count_by_realm(&self) -> Vec<(Arc<str>, usize)> {
        let mut counts: Vec<(Arc<str>, usize)> = Vec::new();
        for (_, e) in self.map.pin().iter() {
            match counts.iter_mut().find(|(r, _)| *r == e.realm) {
                Some(c) => c.1 += 1,
                None => counts.push((e.realm.clone(), 1)),
            }
        }
        counts
    }

    /// True if there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(shard: usize) -> SessionEntry {
        SessionEntry { shard, realm: "realm1".into(), authid: "a".into(), authrole: "anonymous".into() }
    }

    #[test]
    fn ids_are_claimed_once() {
        let d = SessionDirectory::new();
        let id = SessionId::from_valid(42);
        assert!(d.try_insert(id, entry(0)));
        assert!(!d.try_insert(id, entry(1)));
        assert_eq!(d.get(id).map(|e| e.shard), Some(0));
        d.remove(id);
        assert!(d.get(id).is_none());
        assert!(d.try_insert(id, entry(1)));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn readable_from_other_threads() {
        let d = Arc::new(SessionDirectory::new());
        for i in 1..=100u64 {
            assert!(d.try_insert(SessionId::from_valid(i), entry((i % 2) as usize)));
        }
        let d2 = d.clone();
        let n =
            std::thread::spawn(move || (1..=100u64).filter(|i| d2.get(SessionId::from_valid(*i)).is_some()).count())
                .join()
                .expect("reader thread");
        assert_eq!(n, 100);
    }
}
