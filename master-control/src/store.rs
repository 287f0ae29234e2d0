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
//! columns are the keys it is looked up by.
//!
//! ### Management-realm objects (`objects`)
//! The `objects` table (no schema change: it was in version 1 from the
//! start) holds the objects of the management-realm APIs, one row per
//! object, `kind` naming its type:
//!
//! | kind | oid | doc |
//! |---|---|---|
//! | `routercluster` | cluster oid | router cluster |
//! | `routercluster_node` | `<cluster oid>/<node oid>` | `{cluster_oid, node_oid, softlimit, hardlimit}` |
//! | `workergroup` | worker group oid | router worker group |
//! | `placement` | placement oid | a worker of a worker group on a node (internal, not exposed by the API) |
//! | `webcluster` | cluster oid | web cluster |
//! | `webcluster_node` | `<cluster oid>/<node oid>` | `{cluster_oid, node_oid, parallel, standby}` |
//! | `webservice` | service oid | web service (its type-specific keys verbatim) |
//! | `role` | role oid | application role |
//! | `permission` | permission oid | permission of a role |
//! | `arealm` | arealm oid | application realm |
//! | `arealm_role` | `<arealm oid>/<role oid>` | `{arealm_oid, role_oid}` |
//! | `principal` | principal oid | principal of an application realm |
//! | `credential` | credential oid | credential of a principal (holds its secret) |
//!
//! Rows are listed in insertion order (updates keep a row's place).
//! Every change a call makes to them is one transaction
//! ([`Store::write_objects`]); deleting a management realm deletes its
//! objects in the same transaction. Every API call that changes
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

/// One change to the `objects` table (see [`Store::write_objects`]).
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectWrite {
    /// Insert or replace the object of `kind` with `oid`.
    Put { kind: String, oid: String, doc: Json },
    /// Remove the object of `kind` with `oid`.
    Delete { kind: String, oid: String },
}

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
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew { found: v, supported: SCHEMA_VERSION })
            }
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

    // ---------------------------------------------------------------- objects

    /// The object of `kind` with `oid` in management realm `mrealm_oid`
    /// (`None` if there is none, or it belongs to another management realm).
    pub fn object(&self, kind: &str, mrealm_oid: &str, oid: &str) -> Result<Option<Json>, StoreError> {
        let s: Option<String> = self
            .db
            .query_row(
                "SELECT doc FROM objects WHERE kind = ?1 AND oid = ?2 AND mrealm_oid = ?3",
                [kind, oid, mrealm_oid],
                |r| r.get(0),
            )
            .optional()?;
        s.map(doc).transpose()
    }

    /// Every object of `kind` in management realm `mrealm_oid`, in
    /// insertion order.
    pub fn objects(&self, kind: &str, mrealm_oid: &str) -> Result<Vec<Json>, StoreError> {
        let mut st = self.db.prepare("SELECT doc FROM objects WHERE kind = ?1 AND mrealm_oid = ?2 ORDER BY rowid")?;
        let rows = st.query_map([kind, mrealm_oid], |r| r.get::<_, String>(0))?;
        rows.map(|r| doc(r?)).collect()
    }

    /// Every object of management realm `mrealm_oid` as `(kind, oid, doc)`,
    /// in insertion order (inspection and tests).
    pub fn all_objects(&self, mrealm_oid: &str) -> Result<Vec<(String, String, Json)>, StoreError> {
        let mut st = self.db.prepare("SELECT kind, oid, doc FROM objects WHERE mrealm_oid = ?1 ORDER BY rowid")?;
        let rows = st.query_map([mrealm_oid], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?;
        rows.map(|r| {
            let (k, o, d) = r?;
            Ok((k, o, doc(d)?))
        })
        .collect()
    }

    /// Stores one object (see [`Store::write_objects`]).
    pub fn put_object(&mut self, kind: &str, mrealm_oid: &str, oid: &str, d: &Json) -> Result<(), StoreError> {
        self.write_objects(
            mrealm_oid,
            &[ObjectWrite::Put { kind: kind.to_owned(), oid: oid.to_owned(), doc: d.clone() }],
        )
    }

    /// Deletes one object; `false` if there was none in `mrealm_oid`.
    pub fn delete_object(&mut self, kind: &str, mrealm_oid: &str, oid: &str) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute("DELETE FROM objects WHERE kind = ?1 AND oid = ?2 AND mrealm_oid = ?3", [kind, oid, mrealm_oid])?;
        Ok(n == 1)
    }

    /// Applies `writes` to the objects of management realm `mrealm_oid`, in
    /// order, in one transaction: all of them or (on any error) none. A put
    /// of an existing object replaces its document and keeps its place in
    /// listings; a put of an oid that belongs to another management realm
    /// fails; deleting what is not there is not an error.
    pub fn write_objects(&mut self, mrealm_oid: &str, writes: &[ObjectWrite]) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let tx = self.db.transaction()?;
        for w in writes {
            match w {
                ObjectWrite::Put { kind, oid, doc } => {
                    let n = tx.execute(
                        "INSERT INTO objects (kind, oid, mrealm_oid, doc) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (kind, oid) DO UPDATE SET doc = excluded.doc
                         WHERE objects.mrealm_oid = excluded.mrealm_oid",
                        params![kind, oid, mrealm_oid, doc.to_string()],
                    )?;
                    if n != 1 {
                        let code = rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT);
                        let why = format!("{kind} {oid} belongs to another management realm");
                        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(code, Some(why))));
                    }
                }
                ObjectWrite::Delete { kind, oid } => {
                    tx.execute(
                        "DELETE FROM objects WHERE kind = ?1 AND oid = ?2 AND mrealm_oid = ?3",
                        [kind, oid, mrealm_oid],
                    )?;
                }
            }
        }
        tx.commit()?;
        Ok(())
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
            .query_row("SELECT doc FROM nodes WHERE mrealm_oid = ?1 AND authid = ?2", [mrealm_oid, authid], |r| {
                r.get(0)
            })
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
    fn objects_are_scoped_to_their_mrealm_and_batches_are_all_or_nothing() {
        let mut s = Store::in_memory().expect("store");
        s.put_object("role", "m1", "r1", &json!({"oid": "r1", "name": "a"})).expect("put");
        s.put_object("role", "m1", "r2", &json!({"oid": "r2", "name": "b"})).expect("put");
        s.put_object("role", "m1", "r1", &json!({"oid": "r1", "name": "a2"})).expect("update");
        let names: Vec<Json> = s.objects("role", "m1").expect("list").iter().map(|d| d["name"].clone()).collect();
        assert_eq!(names, [json!("a2"), json!("b")], "an update keeps its place");
        assert!(s.object("role", "m2", "r1").expect("get").is_none(), "another mrealm sees nothing");
        assert!(s.objects("role", "m2").expect("list").is_empty());
        // A put of an oid of another mrealm fails, and the whole batch with it.
        let batch = [
            ObjectWrite::Put { kind: "role".into(), oid: "r3".into(), doc: json!({"oid": "r3"}) },
            ObjectWrite::Put { kind: "role".into(), oid: "r1".into(), doc: json!({"oid": "r1", "stolen": true}) },
        ];
        assert!(s.write_objects("m2", &batch).is_err());
        assert!(s.object("role", "m2", "r3").expect("get").is_none(), "rolled back");
        assert_eq!(s.object("role", "m1", "r1").expect("get").expect("kept")["name"], "a2");
        let batch = [
            ObjectWrite::Delete { kind: "role".into(), oid: "r2".into() },
            ObjectWrite::Put { kind: "permission".into(), oid: "p1".into(), doc: json!({"oid": "p1"}) },
        ];
        s.write_objects("m1", &batch).expect("batch");
        let all: Vec<(String, String)> =
            s.all_objects("m1").expect("all").into_iter().map(|(k, o, _)| (k, o)).collect();
        assert_eq!(all, [("role".to_owned(), "r1".to_owned()), ("permission".to_owned(), "p1".to_owned())]);
        assert!(!s.delete_object("role", "m2", "r1").expect("delete"), "not in m2");
        assert!(s.delete_object("role", "m1", "r1").expect("delete"));
        s.insert_mrealm("m1", "alpha", &json!({"oid": "m1"})).expect("mrealm");
        s.delete_mrealm("m1").expect("delete mrealm");
        assert!(s.all_objects("m1").expect("all").is_empty(), "deleting an mrealm deletes its objects");
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
