//! The master's state on disk: one SQLite database, `<cbdir>/master.db`.
//!
//! ## Schema (version 1)
//! ```sql
//! meta    (key TEXT PRIMARY KEY, value TEXT NOT NULL)  -- 'schema_version', 'default_mrealm'
//! users   (oid TEXT PRIMARY KEY, authid TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)
//! mrealms (oid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL)
//! nodes   (oid TEXT PRIMARY KEY, pubkey TEXT NOT NULL UNIQUE, mrealm_oid TEXT,
//!          authid TEXT, doc TEXT NOT NULL)   -- UNIQUE (mrealm_oid, authid)
//! objects (kind TEXT, oid TEXT, mrealm_oid TEXT NOT NULL, doc TEXT NOT NULL,
//!          PRIMARY KEY (kind, oid))          -- objects of a management realm
//! ```
//! `doc` is the object exactly as the API returns it (JSON); the other
//! columns are the keys it is looked up by. Every API call that changes
//! state is one transaction; the database runs in WAL mode with
//! `synchronous=FULL`, so a change the caller saw acknowledged survives a
//! `kill -9` or a power cut.
//!
//! ## Backup
//! Online: `sqlite3 <cbdir>/master.db ".backup /path/backup.db"` (consistent
//! while the master runs). Offline: stop the master and copy `master.db`
//! (and `master.db-wal` if present). Restore by putting the copy back
//! before the master starts.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value as Json;

use crate::error::StoreError;

const SCHEMA_VERSION: i64 = 1;

/// See the module docs.
pub struct Store {
    db: Connection,
}

fn doc(s: String) -> Result<Json, StoreError> {
    Ok(serde_json::from_str(&s)?)
}

impl Store {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::init(Connection::open(path)?)
    }

    /// A database in memory (tests).
    pub fn in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(db: Connection) -> Result<Store, StoreError> {
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "FULL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS users (oid TEXT PRIMARY KEY, authid TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS mrealms (oid TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS nodes (oid TEXT PRIMARY KEY, pubkey TEXT NOT NULL UNIQUE, mrealm_oid TEXT,
                 authid TEXT, doc TEXT NOT NULL);
             CREATE UNIQUE INDEX IF NOT EXISTS nodes_by_mrealm_authid ON nodes (mrealm_oid, authid)
                 WHERE mrealm_oid IS NOT NULL AND authid IS NOT NULL;
             CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, oid TEXT NOT NULL, mrealm_oid TEXT NOT NULL,
                 doc TEXT NOT NULL, PRIMARY KEY (kind, oid));
             CREATE INDEX IF NOT EXISTS objects_by_mrealm ON objects (mrealm_oid, kind);",
        )?;
        let found: Option<String> =
            db.query_row("SELECT value FROM meta WHERE key = 'schema_version'", [], |r| r.get(0)).optional()?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            None => {
                db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)", [SCHEMA_VERSION.to_string()])?;
            }
            Some(v) if v > SCHEMA_VERSION => return Err(StoreError::SchemaTooNew { found: v, supported: SCHEMA_VERSION }),
            Some(_) => {}
        }
        Ok(Store { db })
    }

    // ---------------------------------------------------------------- meta

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.db.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value])?;
        Ok(())
    }

    // ---------------------------------------------------------------- users

    /// The user with `authid`.
    pub fn user_by_authid(&self, authid: &str) -> Result<Option<Json>, StoreError> {
        let s: Option<String> =
            self.db.query_row("SELECT doc FROM users WHERE authid = ?1", [authid], |r| r.get(0)).optional()?;
        s.map(doc).transpose()
    }

    /// Stores a user.
    pub fn put_user(&self, oid: &str, authid: &str, d: &Json) -> Result<(), StoreError> {
        self.db.execute(
            "INSERT OR REPLACE INTO users (oid, authid, doc) VALUES (?1, ?2, ?3)",
            params![oid, authid, d.to_string()],
        )?;
        Ok(())
    }

    // ---------------------------------------------------------------- mrealms

    /// Every management realm, in creation order.
    pub fn mrealms(&self) -> Result<Vec<Json>, StoreError> {
        let mut st = self.db.prepare("SELECT doc FROM mrealms ORDER BY rowid")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| doc(r?)).collect()
    }

    /// The management realm with `oid`.
    pub fn mrealm(&self, oid: &str) -> Result<Option<Json>, StoreError> {
        let s: Option<String> =
            self.db.query_row("SELECT doc FROM mrealms WHERE oid = ?1", [oid], |r| r.get(0)).optional()?;
        s.map(doc).transpose()
    }

    /// The management realm called `name`.
    pub fn mrealm_by_name(&self, name: &str) -> Result<Option<Json>, StoreError> {
        let s: Option<String> =
            self.db.query_row("SELECT doc FROM mrealms WHERE name = ?1", [name], |r| r.get(0)).optional()?;
        s.map(doc).transpose()
    }

    /// Adds a management realm (`false` if the name is taken).
    pub fn insert_mrealm(&self, oid: &str, name: &str, d: &Json) -> Result<bool, StoreError> {
        let n = self.db.execute(
            "INSERT OR IGNORE INTO mrealms (oid, name, doc) VALUES (?1, ?2, ?3)",
            params![oid, name, d.to_string()],
        )?;
        Ok(n == 1)
    }

    /// Deletes a management realm and the objects that belong to it; nodes
    /// paired to it are unpaired in the same transaction by the caller.
    pub fn delete_mrealm(&mut self, oid: &str) -> Result<bool, StoreError> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM objects WHERE mrealm_oid = ?1", [oid])?;
        let n = tx.execute("DELETE FROM mrealms WHERE oid = ?1", [oid])?;
        tx.commit()?;
        Ok(n == 1)
    }

    // ---------------------------------------------------------------- nodes

    /// The node with `oid`.
    pub fn node(&self, oid: &str) -> Result<Option<Json>, StoreError> {
        let s: Option<String> =
            self.db.query_row("SELECT doc FROM nodes WHERE oid = ?1", [oid], |r| r.get(0)).optional()?;
        s.map(doc).transpose()
    }

    /// The node with public key `pubkey` (64 lower-case hex digits).
    pub fn node_by_pubkey(&self, pubkey: &str) -> Result<Option<Json>, StoreError> {
        let s: Option<String> =
            self.db.query_row("SELECT doc FROM nodes WHERE pubkey = ?1", [pubkey], |r| r.get(0)).optional()?;
        s.map(doc).transpose()
    }

    /// The node paired to `mrealm_oid` as `authid`.
    pub fn node_by_authid(&self, mrealm_oid: &str, authid: &str) -> Result<Option<Json>, StoreError> {
        let s: Option<String> = self
            .db
            .query_row("SELECT doc FROM nodes WHERE mrealm_oid = ?1 AND authid = ?2", [mrealm_oid, authid], |r| r.get(0))
            .optional()?;
        s.map(doc).transpose()
    }

    /// The nodes paired to `mrealm_oid`, in pairing order.
    pub fn nodes_of(&self, mrealm_oid: &str) -> Result<Vec<Json>, StoreError> {
        let mut st = self.db.prepare("SELECT doc FROM nodes WHERE mrealm_oid = ?1 ORDER BY rowid")?;
        let rows = st.query_map([mrealm_oid], |r| r.get::<_, String>(0))?;
        rows.map(|r| doc(r?)).collect()
    }

    /// Every node the master knows (paired or not).
    pub fn all_nodes(&self) -> Result<Vec<Json>, StoreError> {
        let mut st = self.db.prepare("SELECT doc FROM nodes ORDER BY rowid")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| doc(r?)).collect()
    }

    /// Stores a node (its keys are read from the document).
    pub fn put_node(&self, d: &Json) -> Result<(), StoreError> {
        let s = |k: &str| d.get(k).and_then(Json::as_str).map(str::to_owned);
        self.db.execute(
            "INSERT INTO nodes (oid, pubkey, mrealm_oid, authid, doc) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (oid) DO UPDATE SET pubkey = ?2, mrealm_oid = ?3, authid = ?4, doc = ?5",
            params![s("oid"), s("pubkey"), s("mrealm_oid"), s("authid"), d.to_string()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mrealms_and_nodes_round_trip_and_keys_are_unique() {
        let mut s = Store::in_memory().expect("store");
        assert!(s.insert_mrealm("o1", "alpha", &json!({"oid": "o1", "name": "alpha"})).expect("insert"));
        assert!(!s.insert_mrealm("o2", "alpha", &json!({"oid": "o2", "name": "alpha"})).expect("insert"), "name taken");
        assert_eq!(s.mrealm_by_name("alpha").expect("get").expect("found")["oid"], "o1");
        let n = json!({"oid": "n1", "pubkey": "ab", "mrealm_oid": "o1", "authid": "node1"});
        s.put_node(&n).expect("node");
        assert_eq!(s.node_by_authid("o1", "node1").expect("get"), Some(n.clone()));
        assert_eq!(s.nodes_of("o1").expect("list").len(), 1);
        // A second node with the same authid in the same mrealm is refused.
        assert!(s.put_node(&json!({"oid": "n2", "pubkey": "cd", "mrealm_oid": "o1", "authid": "node1"})).is_err());
        // Unpairing rewrites the row.
        s.put_node(&json!({"oid": "n1", "pubkey": "ab", "mrealm_oid": null, "authid": null})).expect("unpair");
        assert!(s.nodes_of("o1").expect("list").is_empty());
        assert!(s.delete_mrealm("o1").expect("delete"));
        assert!(s.mrealm("o1").expect("get").is_none());
        assert!(!s.delete_mrealm("o1").expect("delete again"));
    }

    #[test]
    fn state_survives_reopening_and_newer_schemas_are_refused() {
        let dir = std::env::temp_dir().join(format!("junction-store-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("master.db");
        {
            let s = Store::open(&path).expect("open");
            s.insert_mrealm("o1", "alpha", &json!({"oid": "o1", "name": "alpha"})).expect("insert");
        }
        let s = Store::open(&path).expect("reopen");
        assert_eq!(s.mrealms().expect("list").len(), 1);
        s.db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'", []).expect("bump");
        drop(s);
        assert!(matches!(Store::open(&path), Err(StoreError::SchemaTooNew { found: 99, .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
