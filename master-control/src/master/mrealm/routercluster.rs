//! `crossbarfabriccenter.mrealm.routercluster.*`: router clusters, their
//! member nodes and their router worker groups (REFERENCE §2.3).
//!
//! A worker group's placements (which worker `<group>_<i>` runs on which
//! member node) are computed when the group is added, from the nodes in the
//! cluster at that moment: each of its `scale` workers goes to the node with
//! the fewest placements of this cluster so far (below its `softlimit` if
//! possible, never at or above its `hardlimit`; ties go to the node added
//! first). The group's `status` stays `STOPPED`, as in the reference: its
//! workers start when an application realm is started on it.

use serde_json::{json, Value as Json};

use super::*;
use crate::error::ApiError;

const RC: &str = "router cluster";

impl Master {
    pub(super) fn routercluster_call(&self, cx: &mut Cx, p: &str) -> Result<Json, ApiError> {
        match p {
            "list_routerclusters" => {
                let names = cx.a.flag(0, "return_names")?;
                Ok(list_of(&self.objs(cx, ROUTERCLUSTER)?, names, "name"))
            }
            "get_routercluster" => {
                let oid = cx.a.oid(0, "routercluster_oid")?;
                self.obj(cx, ROUTERCLUSTER, &oid, RC)
            }
            "get_routercluster_by_name" => {
                let name = cx.a.str(0, "routercluster_name")?;
                self.by_name(cx, ROUTERCLUSTER, name)?
                    .ok_or_else(|| ApiError::no_such_object(format!("no router cluster named \"{name}\" found")))
            }
            "create_routercluster" => self.create_routercluster(cx),
            "delete_routercluster" => self.delete_routercluster(cx),
            "start_routercluster" => {
                let oid = cx.a.oid(0, "routercluster_oid")?;
                let mut rc = self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                let ev = ROUTERCLUSTER_LC.start(cx, &mut rc, json!({}))?;
                // The monitor runs at once: RUNNING if every member node is online.
                if self.routercluster_nodes_online(cx, &oid)? {
                    ROUTERCLUSTER_LC.running(cx, &mut rc);
                }
                Ok(ev)
            }
            "stop_routercluster" => {
                let oid = cx.a.oid(0, "routercluster_oid")?;
                let mut rc = self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                ROUTERCLUSTER_LC.check_stoppable(&rc)?;
                for wg in self.objs_where(cx, WORKERGROUP, "cluster_oid", &oid)? {
                    self.no_started_arealm(cx, "workergroup_oid", oid_of(&wg), &format!("stop router cluster {oid}"))?;
                }
                ROUTERCLUSTER_LC.stop(cx, &mut rc, |_| ())
            }
            "list_routercluster_nodes" => {
                let oid = cx.a.oid(0, "routercluster_oid")?;
                let names = cx.a.flag(1, "return_names")?;
                let status = cx.status_filter(2, "filter_by_status", &["online", "offline"])?;
                self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                self.list_members(cx, ROUTERCLUSTER_NODE, &oid, names, status.as_deref())
            }
            "get_routercluster_node" => {
                let (oid, node) = (cx.a.oid(0, "routercluster_oid")?, cx.a.oid(1, "node_oid")?);
                self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                self.rc_membership(cx, &oid, &node)
            }
            "add_routercluster_node" => self.add_routercluster_node(cx),
            "remove_routercluster_node" => {
                let (oid, node) = (cx.a.oid(0, "routercluster_oid")?, cx.a.oid(1, "node_oid")?);
                self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                let m = self.rc_membership(cx, &oid, &node)?;
                if let Some(p) = self
                    .objs_where(cx, PLACEMENT, "cluster_oid", &oid)?
                    .iter()
                    .find(|p| str_of(p, "node_oid") == Some(&node))
                {
                    return Err(ApiError::dependent_objects(format!(
                        "cannot remove node {node} from router cluster {oid}: worker {} of worker group {} is placed on it (remove the worker group first)",
                        str_of(p, "worker_name").unwrap_or_default(),
                        str_of(p, "worker_group_oid").unwrap_or_default()
                    )));
                }
                cx.delete(ROUTERCLUSTER_NODE, &format!("{oid}/{node}"));
                cx.publish("routercluster.on_routercluster_node_removed", &m);
                Ok(m)
            }
            "list_routercluster_workergroups" => {
                let oid = cx.a.oid(0, "routercluster_oid")?;
                let names = cx.a.flag(1, "return_names")?;
                let status = cx.status_filter(2, "filter_by_status", &STATUSES)?;
                self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                let wgs: Vec<Json> = self
                    .objs_where(cx, WORKERGROUP, "cluster_oid", &oid)?
                    .into_iter()
                    .filter(|w| status.as_deref().is_none_or(|s| status_of(w) == s))
                    .collect();
                Ok(list_of(&wgs, names, "name"))
            }
            "get_routercluster_workergroup" => {
                let (oid, wg) = (cx.a.oid(0, "routercluster_oid")?, cx.a.oid(1, "workergroup_oid")?);
                self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                self.workergroup_of(cx, &oid, &wg)
            }
            "get_routercluster_workergroup_by_name" => {
                let (rc_name, wg_name) = (cx.a.str(0, "routercluster_name")?, cx.a.str(1, "workergroup_name")?);
                let rc = self
                    .by_name(cx, ROUTERCLUSTER, rc_name)?
                    .ok_or_else(|| ApiError::no_such_object(format!("no router cluster named \"{rc_name}\" found")))?;
                self.objs_where(cx, WORKERGROUP, "cluster_oid", oid_of(&rc))?
                    .into_iter()
                    .find(|w| str_of(w, "name") == Some(wg_name))
                    .ok_or_else(|| {
                        ApiError::no_such_object(format!(
                            "no worker group named \"{wg_name}\" in router cluster \"{rc_name}\""
                        ))
                    })
            }
            "add_routercluster_workergroup" => self.add_routercluster_workergroup(cx),
            "remove_routercluster_workergroup" => {
                let (oid, wg_oid) = (cx.a.oid(0, "routercluster_oid")?, cx.a.oid(1, "workergroup_oid")?);
                let rc = self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
                let wg = self.workergroup_of(cx, &oid, &wg_oid)?;
                ROUTERCLUSTER_LC.require_stopped(&rc)?;
                self.no_started_arealm(cx, "workergroup_oid", &wg_oid, &format!("remove worker group {wg_oid}"))?;
                for p in self.objs_where(cx, PLACEMENT, "worker_group_oid", &wg_oid)? {
                    cx.delete(PLACEMENT, oid_of(&p));
                }
                cx.delete(WORKERGROUP, &wg_oid);
                cx.publish("routercluster.on_workergroup_removed", &wg);
                Ok(wg)
            }
            _ => Err(cx.no_such_procedure()),
        }
    }

    /// True if every member node of router cluster `oid` is online (also
    /// when it has none, as in the reference).
    pub(super) fn routercluster_nodes_online(&self, cx: &Cx, oid: &str) -> Result<bool, ApiError> {
        let members = self.objs_where(cx, ROUTERCLUSTER_NODE, "cluster_oid", oid)?;
        Ok(members.iter().all(|m| self.node_online(str_of(m, "node_oid").unwrap_or_default())))
    }

    fn rc_membership(&self, cx: &Cx, rc: &str, node: &str) -> Result<Json, ApiError> {
        self.store.object(ROUTERCLUSTER_NODE, &cx.mrealm, &format!("{rc}/{node}"))?.ok_or_else(|| {
            ApiError::no_such_object(format!("no association between node {node} and routercluster {rc} found"))
        })
    }

    fn workergroup_of(&self, cx: &Cx, rc: &str, wg: &str) -> Result<Json, ApiError> {
        match self.store.object(WORKERGROUP, &cx.mrealm, wg)? {
            Some(w) if str_of(&w, "cluster_oid") == Some(rc) => Ok(w),
            _ => Err(ApiError::no_such_object(format!("no worker group with oid {wg} found in router cluster {rc}"))),
        }
    }

    /// `crossbar.error.dependent_objects` if an application realm that is
    /// not `STOPPED` refers to `oid` by `key` (`workergroup_oid` or
    /// `webcluster_oid`).
    pub(super) fn no_started_arealm(&self, cx: &Cx, key: &str, oid: &str, doing: &str) -> Result<(), ApiError> {
        match self.objs_where(cx, AREALM, key, oid)?.iter().find(|a| status_of(a) != "STOPPED") {
            Some(a) => Err(ApiError::dependent_objects(format!(
                "cannot {doing}: application realm \"{}\" ({}) uses it and is {} (stop it first)",
                str_of(a, "name").unwrap_or_default(),
                oid_of(a),
                status_of(a)
            ))),
            None => Ok(()),
        }
    }

    fn create_routercluster(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let def = cx.def_arg(0, "routercluster")?;
        let d = Def::new(&def, "router cluster configuration", INVALID_CONFIGURATION, &["name"], true)?;
        let name = d.str("name")?.ok_or_else(|| d.err("missing \"name\""))?;
        check_item_name(name, "router cluster")?;
        if self.by_name(cx, ROUTERCLUSTER, name)?.is_some() {
            return Err(ApiError::already_exists(format!("duplicate name \"{name}\" in router cluster configuration")));
        }
        let oid = new_oid();
        let rc = merged(
            merged(json!({"oid": oid}), d.meta()?),
            json!({"name": name, "status": "STOPPED", "owner_oid": cx.owner, "changed": cx.ns()}),
        );
        cx.put(ROUTERCLUSTER, &oid, &rc);
        cx.publish("routercluster.on_routercluster_created", &rc);
        Ok(rc)
    }

    fn delete_routercluster(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let oid = cx.a.oid(0, "routercluster_oid")?;
        let rc = self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
        ROUTERCLUSTER_LC.require_stopped(&rc)?;
        if let Some(wg) = self.objs_where(cx, WORKERGROUP, "cluster_oid", &oid)?.first() {
            return Err(ApiError::dependent_objects(format!(
                "cannot delete router cluster {oid}: it has worker group \"{}\" ({}) (remove it first)",
                str_of(wg, "name").unwrap_or_default(),
                oid_of(wg)
            )));
        }
        if let Some(m) = self.objs_where(cx, ROUTERCLUSTER_NODE, "cluster_oid", &oid)?.first() {
            return Err(ApiError::dependent_objects(format!(
                "cannot delete router cluster {oid}: node {} is a member (remove it first)",
                str_of(m, "node_oid").unwrap_or_default()
            )));
        }
        cx.delete(ROUTERCLUSTER, &oid);
        cx.publish("routercluster.on_routercluster_deleted", &rc);
        Ok(rc)
    }

    fn add_routercluster_node(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let (oid, node) = (cx.a.oid(0, "routercluster_oid")?, cx.a.oid(1, "node_oid")?);
        let config = cx.opt_def_arg(2, "config")?;
        let d = Def::new(
            &config,
            "router cluster node configuration",
            INVALID_CONFIGURATION,
            &["softlimit", "hardlimit"],
            false,
        )?;
        let soft = d.int("softlimit", 1, 65_535)?;
        let hard = d.int("hardlimit", 1, 65_535)?;
        if let (Some(s), Some(h)) = (soft, hard) {
            if s > h {
                return Err(d.err(format!("softlimit {s} is above hardlimit {h}")));
            }
        }
        self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
        self.mrealm_node(cx, &node)?;
        let key = format!("{oid}/{node}");
        if self.store.object(ROUTERCLUSTER_NODE, &cx.mrealm, &key)?.is_some() {
            return Err(ApiError::already_exists(format!("node {node} is already a member of router cluster {oid}")));
        }
        let m = json!({"cluster_oid": oid, "node_oid": node, "softlimit": soft, "hardlimit": hard});
        cx.put(ROUTERCLUSTER_NODE, &key, &m);
        cx.publish("routercluster.on_routercluster_node_added", &m);
        Ok(m)
    }

    fn add_routercluster_workergroup(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let oid = cx.a.oid(0, "routercluster_oid")?;
        let def = cx.def_arg(1, "workergroup")?;
        let d = Def::new(
            &def,
            "router worker group configuration",
            INVALID_CONFIGURATION,
            &["name", "scale", "cluster_oid"],
            true,
        )?;
        // `cluster_oid` is optional (the reference crashes without it, §8.2); if given it must be this cluster.
        if let Some(c) = d.str("cluster_oid")? {
            if uuid::Uuid::parse_str(c).map(|u| u.to_string()).ok().as_deref() != Some(oid.as_str()) {
                return Err(d.err(format!("'cluster_oid' {c:?} is not the router cluster it is added to ({oid})")));
            }
        }
        let scale = d.int("scale", 1, 128)?.unwrap_or(1);
        let wg_oid = new_oid();
        let name = match d.str("name")? {
            Some(n) => n.to_owned(),
            None => format!("cwg_{}", &wg_oid[..8]),
        };
        check_item_name(&name, "router worker group")?;
        self.obj(cx, ROUTERCLUSTER, &oid, RC)?;
        // Worker names (<group>_<i>) are worker ids on the nodes: group names are unique in the management realm.
        if let Some(other) = self.by_name(cx, WORKERGROUP, &name)? {
            return Err(ApiError::already_exists(format!(
                "duplicate name \"{name}\" in router worker group configuration (worker group {} of router cluster {})",
                oid_of(&other),
                str_of(&other, "cluster_oid").unwrap_or_default()
            )));
        }
        // Placements: each worker on the member node with the fewest placements of this cluster.
        let members = self.objs_where(cx, ROUTERCLUSTER_NODE, "cluster_oid", &oid)?;
        if members.is_empty() {
            return Err(ApiError::new(
                INVALID_CONFIGURATION,
                format!("router cluster {oid} has no nodes: add nodes first (a worker group's workers are placed on the cluster's nodes when it is added)"),
            ));
        }
        let existing = self.objs_where(cx, PLACEMENT, "cluster_oid", &oid)?;
        let mut load: Vec<(String, i64, Option<i64>, Option<i64>)> = members
            .iter()
            .map(|m| {
                let node = str_of(m, "node_oid").unwrap_or_default().to_owned();
                let n = existing.iter().filter(|p| str_of(p, "node_oid") == Some(node.as_str())).count();
                (node, i64::try_from(n).unwrap_or(i64::MAX), m["softlimit"].as_i64(), m["hardlimit"].as_i64())
            })
            .collect();
        let mut placements = Vec::new();
        for i in 1..=scale {
            let pick = load
                .iter()
                .enumerate()
                .filter(|(_, (_, n, _, hard))| hard.is_none_or(|h| *n < h))
                .min_by_key(|(idx, (_, n, soft, _))| (soft.is_some_and(|s| *n >= s), *n, *idx))
                .map(|(idx, _)| idx);
            let Some(idx) = pick else {
                return Err(ApiError::new(
                    INVALID_CONFIGURATION,
                    format!(
                        "router cluster {oid} cannot place {scale} workers: its nodes reach their hardlimit after {}",
                        i - 1
                    ),
                ));
            };
            load[idx].1 += 1;
            let p_oid = new_oid();
            placements.push(json!({
                "oid": p_oid, "label": null, "description": null, "tags": null,
                "worker_group_oid": wg_oid, "cluster_oid": oid, "node_oid": load[idx].0,
                "worker_name": format!("{name}_{i}"), "status": "STOPPED", "changed": cx.ns(), "tcp_listening_port": 0,
            }));
        }
        let wg = merged(
            merged(json!({"oid": wg_oid}), d.meta()?),
            json!({"cluster_oid": oid, "name": name, "scale": scale, "status": "STOPPED", "changed": cx.ns()}),
        );
        cx.put(WORKERGROUP, &wg_oid, &wg);
        for p in &placements {
            cx.put(PLACEMENT, oid_of(p), p);
        }
        cx.publish("routercluster.on_workergroup_added", &wg);
        Ok(wg)
    }
}
