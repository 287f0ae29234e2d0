//! The objects of a management realm, sans-IO: router clusters
//! (`crossbarfabriccenter.mrealm.routercluster.*`, [`routercluster`]), web
//! clusters (`….webcluster.*`, [`webcluster`]) and application realms with
//! their roles, permissions, principals and credentials (`….arealm.*`,
//! [`arealm`]), with the URIs, argument shapes, result shapes and events of
//! Crossbar's master (REFERENCE §2.3–2.5, §3, §4).
//!
//! Every call reads the committed state, validates everything, and only then
//! produces its changes: a list of [`ObjectWrite`]s applied in one store
//! transaction after the handler succeeded, and the events, published only
//! if the transaction committed. A failed call writes nothing and announces
//! nothing.
//!
//! ## Status
//! Router clusters, web clusters and application realms have a status
//! (`STOPPED, STARTING, RUNNING, PAUSED, STOPPING, ERROR, DEGRADED`):
//! * `start_*` (from `STOPPED` or `PAUSED`, else `crossbar.error.cannot_start`)
//!   sets `STARTING` and publishes `on_*_starting` with `who`. A router
//!   cluster is `RUNNING` as soon as all its member nodes are online (the
//!   reference's router-cluster monitor rule, [`Master::check_routerclusters`]),
//!   checked at once; web clusters and application realms stay `STARTING`
//!   until the reconcile loop (not written yet) has started their workers
//!   and calls [`Master::object_running`].
//! * `stop_*` (from any status but `STOPPED`/`STOPPING`, else
//!   `crossbar.error.cannot_stop`) sets `STOPPING`, publishes
//!   `on_*_stopping`, then — in this slice nothing runs on the nodes yet, so
//!   there is nothing to tear down; the reconcile loop will stop the workers
//!   between the two steps — sets `STOPPED` and publishes `on_*_stopped`.
//!   The reference never leaves `STOPPING` (§8.3).
//!
//! ## Dependencies
//! Nothing cascades: removing or deleting an object that others still refer
//! to fails with `crossbar.error.dependent_objects`, naming the first one,
//! so a client tears down bottom-up as the reference transcript does
//! (services, nodes and worker groups before their cluster; credentials
//! before their principal; principals and role associations before their
//! arealm or role; permissions before their role). Placements are internal
//! parts of their worker group and go with it. Stopping a cluster that a
//! started application realm uses fails the same way.

use std::time::SystemTime;

use serde_json::{json, Map, Value as Json};
use wamp_proto::Value;

use super::{ns, str_of, Caller, Effects, Master, Publication};
use crate::error::ApiError;
use crate::store::ObjectWrite;
use crate::value::{from_json, to_json, Args};

pub mod arealm;
pub mod routercluster;
pub mod webcluster;

#[cfg(test)]
mod tests;

/// `delete_*` / `remove_routercluster_workergroup` of something not `STOPPED`.
pub const NOT_STOPPED: &str = "crossbar.error.not_stopped";
/// `start_*` of something that is not `STOPPED` or `PAUSED`.
pub const CANNOT_START: &str = "crossbar.error.cannot_start";
/// `stop_*` of something that is `STOPPED` or `STOPPING`.
pub const CANNOT_STOP: &str = "crossbar.error.cannot_stop";
/// A bad cluster, worker group, web service, role, permission or arealm
/// definition (the reference's URI for cluster definitions).
pub const INVALID_CONFIGURATION: &str = "wamp.error.invalid_configuration";
/// A bad principal or credential definition (the reference's URI for them).
pub const INVALID_CONFIG: &str = "crossbar.error.invalid_config";

/// The status codes of cfxdb, by name.
pub const STATUSES: [&str; 7] = ["STOPPED", "STARTING", "RUNNING", "PAUSED", "STOPPING", "ERROR", "DEGRADED"];

/// The kinds of the store's `objects` table (see [`crate::store`]).
pub mod kind {
    pub const ROUTERCLUSTER: &str = "routercluster";
    pub const ROUTERCLUSTER_NODE: &str = "routercluster_node";
    pub const WORKERGROUP: &str = "workergroup";
    pub const PLACEMENT: &str = "placement";
    pub const WEBCLUSTER: &str = "webcluster";
    pub const WEBCLUSTER_NODE: &str = "webcluster_node";
    pub const WEBSERVICE: &str = "webservice";
    pub const ROLE: &str = "role";
    pub const PERMISSION: &str = "permission";
    pub const AREALM: &str = "arealm";
    pub const AREALM_ROLE: &str = "arealm_role";
    pub const PRINCIPAL: &str = "principal";
    pub const CREDENTIAL: &str = "credential";
}
use kind::*;

const PREFIX: &str = "crossbarfabriccenter.mrealm.";

/// One call on a management realm: its arguments, and the changes and
/// events it has produced so far.
pub(super) struct Cx<'a> {
    now: SystemTime,
    caller: &'a Caller,
    a: Args<'a>,
    /// The caller's management realm (oid).
    mrealm: String,
    /// The owner of what is created (the management user's oid).
    owner: String,
    writes: Vec<ObjectWrite>,
    events: Vec<Publication>,
}

impl Cx<'_> {
    fn ns(&self) -> u64 {
        ns(self.now)
    }

    fn who(&self) -> Json {
        json!({"session": self.caller.session, "authid": self.caller.authid, "authrole": self.caller.authrole})
    }

    fn put(&mut self, kind: &str, oid: &str, doc: &Json) {
        self.writes.push(ObjectWrite::Put { kind: kind.to_owned(), oid: oid.to_owned(), doc: doc.clone() });
    }

    fn delete(&mut self, kind: &str, oid: &str) {
        self.writes.push(ObjectWrite::Delete { kind: kind.to_owned(), oid: oid.to_owned() });
    }

    /// Publishes `crossbarfabriccenter.mrealm.<topic>(v)` on the management realm.
    fn publish(&mut self, topic: &str, v: &Json) {
        self.events.push(Publication {
            realm: self.caller.realm.clone(),
            topic: format!("{PREFIX}{topic}"),
            args: vec![from_json(v)],
        });
    }

    fn no_such_procedure(&self) -> ApiError {
        ApiError::new("wamp.error.no_such_procedure", format!("no procedure '{}' on this realm", self.a.procedure))
    }

    /// A required dict argument, as JSON.
    fn def_arg(&self, pos: usize, name: &str) -> Result<Json, ApiError> {
        Ok(to_json(&Value::Dict(self.a.dict(pos, name)?.clone())))
    }

    /// An optional dict argument, as JSON (`{}` if absent).
    fn opt_def_arg(&self, pos: usize, name: &str) -> Result<Json, ApiError> {
        Ok(self.a.opt_dict(pos, name)?.map_or_else(|| json!({}), |d| to_json(&Value::Dict(d.clone()))))
    }

    /// An optional status filter argument.
    fn status_filter(&self, pos: usize, name: &str, allowed: &[&str]) -> Result<Option<String>, ApiError> {
        match self.a.opt_str(pos, name)? {
            Some(s) if !allowed.contains(&s) => Err(ApiError::invalid_argument(format!(
                "{}: '{name}' must be one of {}, not {s:?}",
                self.a.procedure,
                allowed.join(", ")
            ))),
            s => Ok(s.map(str::to_owned)),
        }
    }
}

/// An object's oid.
fn oid_of(d: &Json) -> &str {
    str_of(d, "oid").unwrap_or_default()
}

fn status_of(d: &Json) -> &str {
    str_of(d, "status").unwrap_or("STOPPED")
}

/// A list result: the oids in creation order, or the names (`key`) sorted.
fn list_of(items: &[Json], names: bool, key: &str) -> Json {
    if names {
        let mut n: Vec<&str> = items.iter().filter_map(|d| str_of(d, key)).collect();
        n.sort_unstable();
        json!(n)
    } else {
        json!(items.iter().map(oid_of).collect::<Vec<_>>())
    }
}

fn new_oid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Crossbar's configuration item ids (`^[a-z][a-z0-9_]{2,63}$`): names of
/// router clusters, web clusters and worker groups, which become worker ids
/// on the nodes.
fn check_item_name(name: &str, what: &str) -> Result<(), ApiError> {
    let mut c = name.chars();
    let ok = c.next().is_some_and(|f| f.is_ascii_lowercase())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_')
        && (3..=64).contains(&name.len());
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            INVALID_CONFIGURATION,
            format!("invalid name \"{name}\" in {what} configuration (must match ^[a-z][a-z0-9_]{{2,63}}$)"),
        ))
    }
}

/// Reads an object definition (a call's dict argument) with clear errors:
/// unknown keys are refused, nulls count as absent.
pub(super) struct Def<'a> {
    map: &'a Map<String, Json>,
    what: &'static str,
    uri: &'static str,
}

impl<'a> Def<'a> {
    /// `v` (a JSON object) as a definition of `what` (e.g. "router cluster
    /// configuration") that may hold the keys `allowed` (plus `label`,
    /// `description`, `tags` if `meta`); errors are `uri`.
    fn new(
        v: &'a Json,
        what: &'static str,
        uri: &'static str,
        allowed: &[&str],
        meta: bool,
    ) -> Result<Def<'a>, ApiError> {
        let Some(map) = v.as_object() else {
            return Err(ApiError::new(uri, format!("invalid {what}: must be a dict")));
        };
        let d = Def { map, what, uri };
        let known = |k: &str| allowed.contains(&k) || (meta && ["label", "description", "tags"].contains(&k));
        if let Some(k) = map.keys().find(|k| !known(k)) {
            let mut all: Vec<&str> = allowed.to_vec();
            if meta {
                all.extend(["label", "description", "tags"]);
            }
            return Err(d.err(format!("unknown attribute '{k}' (allowed: {})", all.join(", "))));
        }
        Ok(d)
    }

    fn err(&self, msg: impl std::fmt::Display) -> ApiError {
        ApiError::new(self.uri, format!("invalid {}: {msg}", self.what))
    }

    fn get(&self, k: &str) -> Option<&'a Json> {
        self.map.get(k).filter(|v| !v.is_null())
    }

    fn str(&self, k: &str) -> Result<Option<&'a str>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(format!("'{k}' must be a string, not {v}"))),
        }
    }

    fn req_str(&self, k: &str) -> Result<&'a str, ApiError> {
        self.str(k)?.ok_or_else(|| self.err(format!("missing '{k}'")))
    }

    fn bool(&self, k: &str) -> Result<Option<bool>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Json::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.err(format!("'{k}' must be a bool, not {v}"))),
        }
    }

    /// An integer in `lo..=hi`.
    fn int(&self, k: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(i) if (lo..=hi).contains(&i) => Ok(Some(i)),
                _ => Err(self.err(format!("'{k}' must be an integer from {lo} to {hi}, not {v}"))),
            },
        }
    }

    fn str_list(&self, k: &str) -> Result<Option<Vec<&'a str>>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Json::Array(l)) if l.iter().all(Json::is_string) => {
                Ok(Some(l.iter().filter_map(Json::as_str).collect()))
            }
            Some(v) => Err(self.err(format!("'{k}' must be a list of strings, not {v}"))),
        }
    }

    fn dict(&self, k: &str) -> Result<Option<&'a Map<String, Json>>, ApiError> {
        match self.get(k) {
            None => Ok(None),
            Some(Json::Object(m)) => Ok(Some(m)),
            Some(v) => Err(self.err(format!("'{k}' must be a dict, not {v}"))),
        }
    }

    /// `{label, description, tags}` of the definition (each may be null).
    fn meta(&self) -> Result<Json, ApiError> {
        Ok(json!({
            "label": self.str("label")?,
            "description": self.str("description")?,
            "tags": self.str_list("tags")?,
        }))
    }
}

/// `a` with the keys of `b` appended (both JSON objects).
fn merged(mut a: Json, b: Json) -> Json {
    if let (Some(a), Json::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// What the status machine needs to know about router clusters, web
/// clusters and application realms.
pub(super) struct Lifecycle {
    kind: &'static str,
    /// In error messages: "router cluster".
    what: &'static str,
    /// In `cannot_start` messages and topics: "routercluster".
    word: &'static str,
    /// The topic prefix: "routercluster.on_routercluster".
    topic: &'static str,
}

pub(super) const ROUTERCLUSTER_LC: Lifecycle = Lifecycle {
    kind: ROUTERCLUSTER,
    what: "router cluster",
    word: "routercluster",
    topic: "routercluster.on_routercluster",
};
pub(super) const WEBCLUSTER_LC: Lifecycle =
    Lifecycle { kind: WEBCLUSTER, what: "web cluster", word: "webcluster", topic: "webcluster.on_webcluster" };
pub(super) const AREALM_LC: Lifecycle =
    Lifecycle { kind: AREALM, what: "application realm", word: "arealm", topic: "arealm.on_arealm" };

impl Lifecycle {
    /// `crossbar.error.not_stopped` unless `doc` is `STOPPED`.
    fn require_stopped(&self, doc: &Json) -> Result<(), ApiError> {
        match status_of(doc) {
            "STOPPED" => Ok(()),
            s => Err(ApiError::new(
                NOT_STOPPED,
                format!("{} with oid {} found, but currently in status \"{s}\"", self.what, oid_of(doc)),
            )),
        }
    }

    /// `crossbar.error.cannot_stop` if `doc` is `STOPPED` or `STOPPING`.
    fn check_stoppable(&self, doc: &Json) -> Result<(), ApiError> {
        match status_of(doc) {
            s @ ("STOPPED" | "STOPPING") => {
                Err(ApiError::new(CANNOT_STOP, format!("cannot stop {} currently in state {s}", self.word)))
            }
            _ => Ok(()),
        }
    }

    /// `STOPPED`/`PAUSED` → `STARTING`, with the `on_*_starting` event;
    /// `extra` goes into the event after `status`. Returns the event (the
    /// call's result).
    fn start(&self, cx: &mut Cx, doc: &mut Json, extra: Json) -> Result<Json, ApiError> {
        let status = status_of(doc).to_owned();
        if status != "STOPPED" && status != "PAUSED" {
            return Err(ApiError::new(CANNOT_START, format!("cannot start {} currently in state {status}", self.word)));
        }
        doc["status"] = json!("STARTING");
        doc["changed"] = json!(cx.ns());
        cx.put(self.kind, oid_of(doc), doc);
        let ev = merged(
            merged(json!({"oid": oid_of(doc), "status": "STARTING"}), extra),
            json!({"changed": cx.ns(), "who": cx.who()}),
        );
        cx.publish(&format!("{}_starting", self.topic), &ev);
        Ok(ev)
    }

    /// `STARTING`/`DEGRADED` → `RUNNING`, with the `on_*_started` event.
    fn running(&self, cx: &mut Cx, doc: &mut Json) {
        doc["status"] = json!("RUNNING");
        doc["changed"] = json!(cx.ns());
        cx.put(self.kind, oid_of(doc), doc);
        let ev = json!({"oid": oid_of(doc), "status": "RUNNING", "changed": cx.ns()});
        cx.publish(&format!("{}_started", self.topic), &ev);
    }

    /// → `STOPPING` (event `on_*_stopping` with `who`) → `STOPPED` (event
    /// `on_*_stopped`), `stopped` adjusting the stopped document. Returns
    /// the stopping event (the call's result, as the reference's).
    fn stop(&self, cx: &mut Cx, doc: &mut Json, stopped: impl FnOnce(&mut Json)) -> Result<Json, ApiError> {
        self.check_stoppable(doc)?;
        doc["status"] = json!("STOPPING");
        doc["changed"] = json!(cx.ns());
        cx.put(self.kind, oid_of(doc), doc);
        let ev = json!({"oid": oid_of(doc), "status": "STOPPING", "changed": cx.ns(), "who": cx.who()});
        cx.publish(&format!("{}_stopping", self.topic), &ev);
        // Here the reconcile loop will stop what runs on the nodes (workers,
        // transports, routes) before the object is STOPPED; in this slice
        // nothing has been started on any node, so it is STOPPED at once.
        stopped(doc);
        doc["status"] = json!("STOPPED");
        cx.put(self.kind, oid_of(doc), doc);
        cx.publish(
            &format!("{}_stopped", self.topic),
            &json!({"oid": oid_of(doc), "status": "STOPPED", "changed": cx.ns()}),
        );
        Ok(ev)
    }
}

impl Master {
    /// A call to `crossbarfabriccenter.mrealm.{routercluster,webcluster,arealm}.*`
    /// (`name` without the `crossbarfabriccenter.` prefix) on a management realm.
    pub(super) fn mrealm_object_call(
        &mut self,
        now: SystemTime,
        caller: &Caller,
        a: &Args,
        name: &str,
        fx: &mut Effects,
    ) -> Result<Value, ApiError> {
        let m = self.mrealm_of(caller)?;
        let mut cx = Cx {
            now,
            caller,
            a: Args { procedure: a.procedure, args: a.args, kwargs: a.kwargs },
            mrealm: oid_of(&m).to_owned(),
            owner: self.superuser_oid.clone(),
            writes: Vec::new(),
            events: Vec::new(),
        };
        let name = name.strip_prefix("mrealm.").unwrap_or(name);
        let result = if let Some(p) = name.strip_prefix("routercluster.") {
            self.routercluster_call(&mut cx, p)
        } else if let Some(p) = name.strip_prefix("webcluster.") {
            self.webcluster_call(&mut cx, p)
        } else if let Some(p) = name.strip_prefix("arealm.") {
            self.arealm_call(&mut cx, p)
        } else {
            Err(cx.no_such_procedure())
        }?;
        self.store.write_objects(&cx.mrealm, &cx.writes)?;
        fx.publish.extend(cx.events);
        Ok(from_json(&result))
    }

    /// A context for calls the master makes itself (the reconcile loop's).
    fn system_cx<'a>(&self, now: SystemTime, caller: &'a Caller) -> Result<Cx<'a>, ApiError> {
        let m = self.mrealm_of(caller)?;
        Ok(Cx {
            now,
            caller,
            a: Args { procedure: "master", args: &[], kwargs: empty_dict() },
            mrealm: oid_of(&m).to_owned(),
            owner: self.superuser_oid.clone(),
            writes: Vec::new(),
            events: Vec::new(),
        })
    }

    fn commit(&mut self, cx: Cx) -> Result<Vec<Publication>, ApiError> {
        self.store.write_objects(&cx.mrealm, &cx.writes)?;
        Ok(cx.events)
    }

    /// The object of `kind` with `oid` in the caller's management realm.
    fn obj(&self, cx: &Cx, kind: &str, oid: &str, what: &str) -> Result<Json, ApiError> {
        self.store
            .object(kind, &cx.mrealm, oid)?
            .ok_or_else(|| ApiError::no_such_object(format!("no {what} with oid {oid} found")))
    }

    /// Every object of `kind` in the caller's management realm.
    fn objs(&self, cx: &Cx, kind: &str) -> Result<Vec<Json>, ApiError> {
        Ok(self.store.objects(kind, &cx.mrealm)?)
    }

    /// The objects of `kind` whose `key` is `val`.
    fn objs_where(&self, cx: &Cx, kind: &str, key: &str, val: &str) -> Result<Vec<Json>, ApiError> {
        Ok(self.objs(cx, kind)?.into_iter().filter(|d| str_of(d, key) == Some(val)).collect())
    }

    /// The object of `kind` called `name`.
    fn by_name(&self, cx: &Cx, kind: &str, name: &str) -> Result<Option<Json>, ApiError> {
        Ok(self.objs_where(cx, kind, "name", name)?.into_iter().next())
    }

    /// The node with `oid`, which must be paired to the caller's management realm.
    fn mrealm_node(&self, cx: &Cx, oid: &str) -> Result<Json, ApiError> {
        match self.store.node(oid)? {
            Some(n) if str_of(&n, "mrealm_oid") == Some(cx.mrealm.as_str()) => Ok(n),
            _ => Err(ApiError::no_such_object(format!("no node with oid {oid} found in this management realm"))),
        }
    }

    fn node_online(&self, oid: &str) -> bool {
        self.live.get(oid).is_some_and(super::Live::online)
    }

    /// The members of a cluster (`kind` `routercluster_node` or
    /// `webcluster_node`), optionally only those `online`/`offline`; as oids
    /// or sorted authids.
    fn list_members(
        &self,
        cx: &Cx,
        kind: &str,
        cluster: &str,
        names: bool,
        status: Option<&str>,
    ) -> Result<Json, ApiError> {
        let mut out = Vec::new();
        for m in self.objs_where(cx, kind, "cluster_oid", cluster)? {
            let node_oid = str_of(&m, "node_oid").unwrap_or_default();
            let online = if self.node_online(node_oid) { "online" } else { "offline" };
            if status.is_some_and(|s| s != online) {
                continue;
            }
            if names {
                // A node unpaired since it was added has no authid here.
                if let Some(a) = self.store.node(node_oid)?.as_ref().and_then(|n| str_of(n, "authid")) {
                    out.push(a.to_owned());
                }
            } else {
                out.push(node_oid.to_owned());
            }
        }
        if names {
            out.sort();
        }
        Ok(json!(out))
    }

    // ------------------------------------------------------------ for the reconcile loop

    /// The placements of worker group `workergroup_oid` of management realm
    /// `mrealm` (by name): which worker (`worker_name` `<group>_<i>`) runs on
    /// which node. Fixed when the group is added; not exposed by any
    /// procedure (as in the reference), but what the reconcile loop starts.
    pub fn workergroup_placements(&self, mrealm: &str, workergroup_oid: &str) -> Result<Vec<Value>, ApiError> {
        let m = self
            .store
            .mrealm_by_name(mrealm)?
            .ok_or_else(|| ApiError::no_such_object(format!("no management realm '{mrealm}'")))?;
        let all = self.store.objects(PLACEMENT, oid_of(&m))?;
        Ok(all.iter().filter(|p| str_of(p, "worker_group_oid") == Some(workergroup_oid)).map(from_json).collect())
    }

    /// The router-cluster monitor's rule: every `STARTING` router cluster of
    /// management realm `mrealm` whose member nodes are all online is
    /// `RUNNING` (event `on_routercluster_started`). Run by
    /// `start_routercluster`; the reconcile loop will run it as nodes come
    /// online. Returns the events to publish.
    pub fn check_routerclusters(&mut self, mrealm: &str, now: SystemTime) -> Result<Vec<Publication>, ApiError> {
        let caller = system_caller(mrealm);
        let mut cx = self.system_cx(now, &caller)?;
        for mut rc in self.objs(&cx, ROUTERCLUSTER)? {
            if status_of(&rc) == "STARTING" && self.routercluster_nodes_online(&cx, oid_of(&rc))? {
                ROUTERCLUSTER_LC.running(&mut cx, &mut rc);
            }
        }
        self.commit(cx)
    }

    /// The reconcile loop found everything of a `STARTING` (or `DEGRADED`)
    /// object running: it becomes `RUNNING` (event `on_*_started`). `kind`
    /// is `routercluster`, `webcluster` or `arealm`. Returns the events.
    pub fn object_running(
        &mut self,
        mrealm: &str,
        kind: &str,
        oid: &str,
        now: SystemTime,
    ) -> Result<Vec<Publication>, ApiError> {
        let lc = match kind {
            ROUTERCLUSTER => &ROUTERCLUSTER_LC,
            WEBCLUSTER => &WEBCLUSTER_LC,
            AREALM => &AREALM_LC,
            _ => return Err(ApiError::invalid_argument(format!("no status for objects of kind {kind:?}"))),
        };
        let caller = system_caller(mrealm);
        let mut cx = self.system_cx(now, &caller)?;
        let mut doc = self.obj(&cx, kind, oid, lc.what)?;
        match status_of(&doc) {
            "STARTING" | "DEGRADED" => lc.running(&mut cx, &mut doc),
            s => return Err(ApiError::new(CANNOT_START, format!("{} {oid} is {s}, not STARTING", lc.what))),
        }
        self.commit(cx)
    }
}

fn system_caller(mrealm: &str) -> Caller {
    Caller { realm: mrealm.to_owned(), session: 0, authid: "master".into(), authrole: "master".into() }
}

fn empty_dict() -> &'static wamp_proto::Dict {
    static EMPTY: std::sync::OnceLock<wamp_proto::Dict> = std::sync::OnceLock::new();
    EMPTY.get_or_init(wamp_proto::Dict::new)
}
