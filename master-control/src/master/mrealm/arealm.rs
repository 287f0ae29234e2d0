//! `crossbarfabriccenter.mrealm.arealm.*`: application realms, roles and
//! their permissions, the roles of each application realm, its principals
//! and their credentials (REFERENCE §2.5).
//!
//! Roles belong to the management realm and may be associated with several
//! application realms; a principal's role must be one of its application
//! realm's roles. Credentials hold secrets: they are returned to the caller
//! (as the reference does) but never published as events.

use serde_json::{json, Map, Value as Json};

use super::*;
use crate::error::ApiError;

const AR: &str = "application realm";
const ROLE_WORD: &str = "role";

/// Authentication methods a credential may have, with their `authconfig`.
pub const AUTHMETHODS: [&str; 4] = ["ticket", "wampcra", "cryptosign", "scram"];
/// Key derivation functions of WAMP-SCRAM.
const SCRAM_KDFS: [&str; 2] = ["argon2id-13", "pbkdf2"];
/// The role the router links of an application realm use (REFERENCE §6).
const RESERVED_ROLES: [&str; 1] = ["rlink"];

/// Loose WAMP URI rules (as the nodes' configuration checks them): no
/// whitespace or `#`; an exact URI has no empty components; a prefix may
/// be empty or end in `.`; a wildcard pattern may have empty components.
/// With `strict`, components are `[0-9a-z_]`.
fn check_uri(uri: &str, matching: &str, strict: bool) -> Result<(), String> {
    if uri.chars().any(|c| c.is_whitespace() || c == '#') {
        return Err("URIs must not contain whitespace or '#'".into());
    }
    match matching {
        "exact" if uri.is_empty() || uri.split('.').any(str::is_empty) => {
            return Err("an exact URI has no empty components (leading, trailing or double '.')".into());
        }
        "prefix" => {
            let comps: Vec<&str> = uri.split('.').collect();
            if !uri.is_empty() && comps[..comps.len() - 1].iter().any(|c| c.is_empty()) {
                return Err("a prefix has no empty components but a trailing one (leading or double '.')".into());
            }
        }
        "wildcard" if uri.is_empty() => {
            return Err("a wildcard pattern is not empty (match prefix \"\" matches everything)".into())
        }
        _ => {}
    }
    if strict && !wamp_proto::uri::is_valid_uri(uri, true, matching != "exact") {
        return Err("with uri_check_level \"strict\", components are lower-case letters, digits and '_'".into());
    }
    Ok(())
}

fn check_role_name(name: &str) -> Result<(), ApiError> {
    let mut c = name.chars();
    let ok = c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_-.@".contains(x))
        && name.len() <= 255;
    if !ok {
        return Err(ApiError::new(
            INVALID_CONFIGURATION,
            format!("invalid role name \"{name}\": a letter or digit, then up to 254 letters, digits, _ - . @"),
        ));
    }
    if RESERVED_ROLES.contains(&name) {
        return Err(ApiError::new(
            INVALID_CONFIGURATION,
            format!("invalid role name \"{name}\": reserved for the router links"),
        ));
    }
    Ok(())
}

fn check_arealm_name(name: &str) -> Result<(), ApiError> {
    if let Err(why) = check_uri(name, "exact", false) {
        return Err(ApiError::new(INVALID_CONFIGURATION, format!("invalid application realm name \"{name}\": {why}")));
    }
    if name.len() > 255 || name.starts_with("crossbar") {
        return Err(ApiError::new(
            INVALID_CONFIGURATION,
            format!("invalid application realm name \"{name}\": at most 255 bytes, not starting with \"crossbar\""),
        ));
    }
    Ok(())
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a credential's `authconfig` for `authmethod` (cfxdb's rules).
fn check_authconfig(method: &str, c: &Map<String, Json>) -> Result<(), ApiError> {
    let bad = |m: String| ApiError::new(INVALID_CONFIG, format!("invalid configuration. {m} in {method} config"));
    let allowed: &[&str] = match method {
        "ticket" => &["secret"],
        "wampcra" => &["secret", "salt", "iterations", "keylen"],
        "cryptosign" => &["authorized_keys"],
        _ => &["kdf", "iterations", "memory", "salt", "stored-key", "server-key"],
    };
    if let Some(k) = c.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(format!("invalid attribute \"{k}\" (allowed: {})", allowed.join(", "))));
    }
    let s = |k: &str| c.get(k).and_then(Json::as_str);
    let pos_int = |k: &str, min: u64| c.get(k).map(|v| v.as_u64().filter(|n| *n >= min).ok_or(()));
    match method {
        "ticket" | "wampcra" => {
            if s("secret").is_none_or(str::is_empty) {
                return Err(bad("\"secret\" must be a non-empty string".into()));
            }
            if method == "wampcra" {
                if c.contains_key("salt") && s("salt").is_none() {
                    return Err(bad("\"salt\" must be a string".into()));
                }
                for k in ["iterations", "keylen"] {
                    if let Some(Err(())) = pos_int(k, 1) {
                        return Err(bad(format!("\"{k}\" must be a positive integer")));
                    }
                }
            }
        }
        "cryptosign" => match c.get("authorized_keys") {
            Some(Json::Array(keys)) if !keys.is_empty() => {
                if let Some(k) = keys.iter().find(|k| !k.as_str().is_some_and(|k| k.len() == 64 && is_hex(k))) {
                    return Err(bad(format!(
                        "key {k} in authorized_keys is not 64 hex digits (an Ed25519 public key)"
                    )));
                }
            }
            _ => return Err(bad("\"authorized_keys\" must be a non-empty list of public keys (64 hex digits)".into())),
        },
        _ => {
            if !s("kdf").is_some_and(|k| SCRAM_KDFS.contains(&k)) {
                return Err(bad(format!("\"kdf\" must be one of {}", SCRAM_KDFS.join(", "))));
            }
            for (k, min) in [("iterations", 1), ("memory", 0)] {
                if !matches!(pos_int(k, min), Some(Ok(_))) {
                    return Err(bad(format!("\"{k}\" must be an integer of at least {min}")));
                }
            }
            for k in ["salt", "stored-key", "server-key"] {
                if !s(k).is_some_and(is_hex) {
                    return Err(bad(format!("\"{k}\" must be a hex string")));
                }
            }
        }
    }
    Ok(())
}

impl Master {
    pub(super) fn arealm_call(&self, cx: &mut Cx, p: &str) -> Result<Json, ApiError> {
        match p {
            // ---------------------------------------------------- roles
            "list_roles" => {
                let names = cx.a.flag(0, "return_names")?;
                Ok(list_of(&self.objs(cx, ROLE)?, names, "name"))
            }
            "get_role" => {
                let oid = cx.a.oid(0, "role_oid")?;
                self.obj(cx, ROLE, &oid, ROLE_WORD)
            }
            "get_role_by_name" => {
                let name = cx.a.str(0, "role_name")?;
                self.by_name(cx, ROLE, name)?
                    .ok_or_else(|| ApiError::no_such_object(format!("no role named \"{name}\"")))
            }
            "create_role" => {
                let def = cx.def_arg(0, "role")?;
                let d = Def::new(&def, "role configuration", INVALID_CONFIGURATION, &["name"], true)?;
                let name = d.req_str("name")?;
                check_role_name(name)?;
                if self.by_name(cx, ROLE, name)?.is_some() {
                    return Err(ApiError::already_exists(format!("duplicate name \"{name}\" in role configuration")));
                }
                let oid = new_oid();
                let role = merged(
                    merged(json!({"oid": oid}), d.meta()?),
                    json!({"name": name, "created": cx.ns(), "owner": null}),
                );
                cx.put(ROLE, &oid, &role);
                cx.publish("arealm.on_role_created", &role);
                Ok(role)
            }
            "delete_role" => {
                let oid = cx.a.oid(0, "role_oid")?;
                let role = self.obj(cx, ROLE, &oid, ROLE_WORD)?;
                let doing = format!("delete role {oid}");
                if let Some(p) = self.objs_where(cx, PERMISSION, "role_oid", &oid)?.first() {
                    return Err(dependent(
                        &doing,
                        &format!("permission on \"{}\" ({})", str_of(p, "uri").unwrap_or_default(), oid_of(p)),
                    ));
                }
                if let Some(a) = self.objs_where(cx, AREALM_ROLE, "role_oid", &oid)?.first() {
                    return Err(dependent(
                        &doing,
                        &format!("application realm {} has it", str_of(a, "arealm_oid").unwrap_or_default()),
                    ));
                }
                if let Some(p) = self.objs_where(cx, PRINCIPAL, "role_oid", &oid)?.first() {
                    return Err(dependent(
                        &doing,
                        &format!("principal \"{}\" ({}) has it", str_of(p, "authid").unwrap_or_default(), oid_of(p)),
                    ));
                }
                cx.delete(ROLE, &oid);
                cx.publish("arealm.on_role_deleted", &role);
                Ok(role)
            }
            "list_role_permissions" | "get_role_permissions_by_uri" => {
                let oid = cx.a.oid(0, "role_oid")?;
                let prefix = cx.a.opt_str(1, "prefix")?.unwrap_or("");
                self.obj(cx, ROLE, &oid, ROLE_WORD)?;
                let mut perms: Vec<Json> = self
                    .objs_where(cx, PERMISSION, "role_oid", &oid)?
                    .into_iter()
                    .filter(|p| str_of(p, "uri").is_some_and(|u| u.starts_with(prefix)))
                    .collect();
                perms.sort_by(|x, y| str_of(x, "uri").cmp(&str_of(y, "uri")));
                if p == "list_role_permissions" {
                    Ok(json!(perms.iter().map(oid_of).collect::<Vec<_>>()))
                } else {
                    Ok(json!(perms))
                }
            }
            "get_role_permission" => {
                let (role, perm) = (cx.a.oid(0, "role_oid")?, cx.a.oid(1, "permission_oid")?);
                self.obj(cx, ROLE, &role, ROLE_WORD)?;
                self.permission_of(cx, &role, &perm)
            }
            "add_role_permission" => self.add_role_permission(cx),
            "remove_role_permission" => {
                let (role, perm) = (cx.a.oid(0, "role_oid")?, cx.a.oid(1, "permission_oid")?);
                self.obj(cx, ROLE, &role, ROLE_WORD)?;
                let p = self.permission_of(cx, &role, &perm)?;
                cx.delete(PERMISSION, &perm);
                // The reference publishes on_arealm_role_removed here (§4).
                cx.publish("arealm.on_permission_removed", &p);
                Ok(p)
            }

            // ---------------------------------------------------- application realms
            "list_arealms" => {
                let names = cx.a.flag(0, "return_names")?;
                Ok(list_of(&self.objs(cx, AREALM)?, names, "name"))
            }
            "get_arealm" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                self.obj(cx, AREALM, &oid, AR)
            }
            "get_arealm_by_name" => {
                let name = cx.a.str(0, "arealm_name")?;
                self.by_name(cx, AREALM, name)?
                    .ok_or_else(|| ApiError::no_such_object(format!("no application realm named \"{name}\" found")))
            }
            "create_arealm" => {
                let def = cx.def_arg(0, "arealm")?;
                let d = Def::new(
                    &def,
                    "application realm configuration",
                    INVALID_CONFIGURATION,
                    &["name", "enable_meta_api", "bridge_meta_api"],
                    true,
                )?;
                let name = d.req_str("name")?;
                check_arealm_name(name)?;
                if self.by_name(cx, AREALM, name)?.is_some() {
                    return Err(ApiError::already_exists(format!(
                        "duplicate name \"{name}\" in application realm configuration"
                    )));
                }
                let oid = new_oid();
                let ar = merged(
                    merged(json!({"oid": oid}), d.meta()?),
                    json!({
                        "name": name, "status": "STOPPED", "workergroup_oid": null, "webcluster_oid": null, "datamarket_oid": null,
                        "changed": cx.ns(), "owner_oid": cx.owner,
                        "enable_meta_api": d.bool("enable_meta_api")?.unwrap_or(false),
                        "bridge_meta_api": d.bool("bridge_meta_api")?.unwrap_or(false),
                    }),
                );
                cx.put(AREALM, &oid, &ar);
                cx.publish("arealm.on_arealm_created", &ar);
                Ok(ar)
            }
            "delete_arealm" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                let ar = self.obj(cx, AREALM, &oid, AR)?;
                AREALM_LC.require_stopped(&ar)?;
                let doing = format!("delete application realm {oid}");
                if let Some(p) = self.objs_where(cx, PRINCIPAL, "arealm_oid", &oid)?.first() {
                    return Err(dependent(
                        &doing,
                        &format!("principal \"{}\" ({})", str_of(p, "authid").unwrap_or_default(), oid_of(p)),
                    ));
                }
                if let Some(r) = self.objs_where(cx, AREALM_ROLE, "arealm_oid", &oid)?.first() {
                    return Err(dependent(
                        &doing,
                        &format!("role {} is associated with it", str_of(r, "role_oid").unwrap_or_default()),
                    ));
                }
                cx.delete(AREALM, &oid);
                cx.publish("arealm.on_arealm_deleted", &ar);
                Ok(ar)
            }
            "start_arealm" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                let wg = cx.a.oid(1, "router_workergroup_oid")?;
                let wc = cx.a.oid(2, "webcluster_oid")?;
                let mut ar = self.obj(cx, AREALM, &oid, AR)?;
                self.obj(cx, WORKERGROUP, &wg, "router cluster worker group")?;
                self.obj(cx, WEBCLUSTER, &wc, "webcluster")?;
                let started = AREALM_LC.start(cx, &mut ar, json!({"router_workergroup_oid": wg}))?;
                ar["workergroup_oid"] = json!(wg);
                ar["webcluster_oid"] = json!(wc);
                cx.put(AREALM, &oid, &ar);
                // RUNNING once the reconcile loop has the realm on every worker of the group (Master::object_running).
                Ok(started)
            }
            "stop_arealm" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                let mut ar = self.obj(cx, AREALM, &oid, AR)?;
                // Stopped, the realm is on no worker group or web cluster any more.
                AREALM_LC.stop(cx, &mut ar, |ar| {
                    ar["workergroup_oid"] = Json::Null;
                    ar["webcluster_oid"] = Json::Null;
                })
            }
            "stat_arealm" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                let ar = self.obj(cx, AREALM, &oid, AR)?;
                let workers: Vec<Json> = self
                    .arealm_placements(cx, &ar)?
                    .iter()
                    .map(|p| json!({"worker_name": p["worker_name"], "node_oid": p["node_oid"], "status": p["status"]}))
                    .collect();
                Ok(json!({
                    "oid": oid, "name": ar["name"], "status": ar["status"], "changed": ar["changed"],
                    "workergroup_oid": ar["workergroup_oid"], "webcluster_oid": ar["webcluster_oid"],
                    "roles": self.objs_where(cx, AREALM_ROLE, "arealm_oid", &oid)?.len(),
                    "principals": self.objs_where(cx, PRINCIPAL, "arealm_oid", &oid)?.len(),
                    "router_workers": workers,
                }))
            }
            "list_router_workers" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                let ar = self.obj(cx, AREALM, &oid, AR)?;
                Ok(json!(self.arealm_placements(cx, &ar)?.iter().map(|p| p["worker_name"].clone()).collect::<Vec<_>>()))
            }

            // ---------------------------------------------------- roles of an application realm
            "list_arealm_roles" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                let names = cx.a.flag(1, "return_names")?;
                self.obj(cx, AREALM, &oid, AR)?;
                let mut out = Vec::new();
                for r in self.objs_where(cx, AREALM_ROLE, "arealm_oid", &oid)? {
                    let role_oid = str_of(&r, "role_oid").unwrap_or_default();
                    if names {
                        let role = self.obj(cx, ROLE, role_oid, ROLE_WORD)?;
                        out.push(role["name"].clone());
                    } else {
                        out.push(json!(role_oid));
                    }
                }
                Ok(json!(out))
            }
            "get_arealm_role" => {
                let (ar, role) = (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "role_oid")?);
                self.obj(cx, AREALM, &ar, AR)?;
                self.obj(cx, ROLE, &role, ROLE_WORD)?;
                self.arealm_role(cx, &ar, &role)
            }
            "add_arealm_role" => {
                let (ar, role) = (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "role_oid")?);
                let config = cx.opt_def_arg(2, "config")?;
                Def::new(
                    &config,
                    "application realm role configuration",
                    INVALID_CONFIGURATION,
                    &["arealm_oid", "role_oid"],
                    false,
                )?;
                for (k, want) in [("arealm_oid", &ar), ("role_oid", &role)] {
                    if let Some(v) = config.get(k).filter(|v| !v.is_null()) {
                        if v.as_str() != Some(want.as_str()) {
                            return Err(ApiError::new(
                                INVALID_CONFIGURATION,
                                format!("'{k}' {v} in the configuration differs from the argument {want}"),
                            ));
                        }
                    }
                }
                self.obj(cx, AREALM, &ar, AR)?;
                self.obj(cx, ROLE, &role, ROLE_WORD)?;
                let key = format!("{ar}/{role}");
                if self.store.object(AREALM_ROLE, &cx.mrealm, &key)?.is_some() {
                    return Err(ApiError::already_exists(format!(
                        "role {role} is already a role of application realm {ar}"
                    )));
                }
                let assoc = json!({"arealm_oid": ar, "role_oid": role});
                cx.put(AREALM_ROLE, &key, &assoc);
                cx.publish("arealm.on_arealm_role_added", &assoc);
                Ok(assoc)
            }
            "remove_arealm_role" => {
                let (ar, role) = (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "role_oid")?);
                self.obj(cx, AREALM, &ar, AR)?;
                self.obj(cx, ROLE, &role, ROLE_WORD)?;
                let assoc = self.arealm_role(cx, &ar, &role)?;
                if let Some(p) = self
                    .objs_where(cx, PRINCIPAL, "arealm_oid", &ar)?
                    .iter()
                    .find(|p| str_of(p, "role_oid") == Some(&role))
                {
                    return Err(dependent(
                        &format!("remove role {role} from application realm {ar}"),
                        &format!("principal \"{}\" ({}) has it", str_of(p, "authid").unwrap_or_default(), oid_of(p)),
                    ));
                }
                cx.delete(AREALM_ROLE, &format!("{ar}/{role}"));
                cx.publish("arealm.on_arealm_role_removed", &assoc);
                Ok(assoc)
            }

            // ---------------------------------------------------- principals
            "list_principals" => {
                let oid = cx.a.oid(0, "arealm_oid")?;
                let names = cx.a.flag(1, "return_names")?;
                self.obj(cx, AREALM, &oid, AR)?;
                Ok(list_of(&self.objs_where(cx, PRINCIPAL, "arealm_oid", &oid)?, names, "authid"))
            }
            "get_principal" => {
                let (ar, p) = (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "principal_oid")?);
                self.obj(cx, AREALM, &ar, AR)?;
                self.principal_of(cx, &ar, &p)
            }
            "get_principal_by_name" => {
                let ar = cx.a.oid(0, "arealm_oid")?;
                let name = cx.a.str(1, "principal_name")?;
                self.obj(cx, AREALM, &ar, AR)?;
                self.objs_where(cx, PRINCIPAL, "arealm_oid", &ar)?
                    .into_iter()
                    .find(|p| str_of(p, "authid") == Some(name))
                    .ok_or_else(|| {
                        ApiError::no_such_object(format!(
                            "no principal with name (authid) \"{name}\" found in application realm"
                        ))
                    })
            }
            "add_principal" => self.add_principal(cx),
            "remove_principal" => {
                let (ar, p) = (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "principal_oid")?);
                self.obj(cx, AREALM, &ar, AR)?;
                let principal = self.principal_of(cx, &ar, &p)?;
                if let Some(c) = self.objs_where(cx, CREDENTIAL, "principal_oid", &p)?.first() {
                    return Err(dependent(
                        &format!("remove principal {p}"),
                        &format!("{} credential {}", str_of(c, "authmethod").unwrap_or_default(), oid_of(c)),
                    ));
                }
                cx.delete(PRINCIPAL, &p);
                cx.publish("arealm.on_principal_removed", &principal);
                Ok(principal)
            }

            // ---------------------------------------------------- credentials
            "list_principal_credentials" => {
                let (ar, p) = (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "principal_oid")?);
                self.obj(cx, AREALM, &ar, AR)?;
                self.principal_of(cx, &ar, &p)?;
                Ok(json!(self.objs_where(cx, CREDENTIAL, "principal_oid", &p)?.iter().map(oid_of).collect::<Vec<_>>()))
            }
            "get_principal_credential" => {
                let (ar, p, c) =
                    (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "principal_oid")?, cx.a.oid(2, "credential_oid")?);
                self.obj(cx, AREALM, &ar, AR)?;
                self.principal_of(cx, &ar, &p)?;
                self.credential_of(cx, &p, &c)
            }
            "add_principal_credential" => self.add_principal_credential(cx),
            "remove_principal_credential" => {
                let (ar, p, c) =
                    (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "principal_oid")?, cx.a.oid(2, "credential_oid")?);
                self.obj(cx, AREALM, &ar, AR)?;
                self.principal_of(cx, &ar, &p)?;
                let cred = self.credential_of(cx, &p, &c)?;
                cx.delete(CREDENTIAL, &c);
                Ok(cred)
            }
            _ => Err(cx.no_such_procedure()),
        }
    }

    /// The placements of the worker group an application realm is started
    /// on (none while it is stopped).
    fn arealm_placements(&self, cx: &Cx, ar: &Json) -> Result<Vec<Json>, ApiError> {
        match str_of(ar, "workergroup_oid") {
            Some(wg) => self.objs_where(cx, PLACEMENT, "worker_group_oid", wg),
            None => Ok(Vec::new()),
        }
    }

    fn permission_of(&self, cx: &Cx, role: &str, perm: &str) -> Result<Json, ApiError> {
        match self.store.object(PERMISSION, &cx.mrealm, perm)? {
            Some(p) if str_of(&p, "role_oid") == Some(role) => Ok(p),
            _ => Err(ApiError::no_such_object(format!("no permission with oid {perm} found on role {role}"))),
        }
    }

    fn arealm_role(&self, cx: &Cx, ar: &str, role: &str) -> Result<Json, ApiError> {
        self.store.object(AREALM_ROLE, &cx.mrealm, &format!("{ar}/{role}"))?.ok_or_else(|| {
            ApiError::no_such_object(format!("no association between role {role} and arealm {ar} found"))
        })
    }

    fn principal_of(&self, cx: &Cx, ar: &str, p: &str) -> Result<Json, ApiError> {
        match self.store.object(PRINCIPAL, &cx.mrealm, p)? {
            Some(x) if str_of(&x, "arealm_oid") == Some(ar) => Ok(x),
            _ => Err(ApiError::no_such_object(format!("no principal with oid {p} found in application realm"))),
        }
    }

    fn credential_of(&self, cx: &Cx, p: &str, c: &str) -> Result<Json, ApiError> {
        match self.store.object(CREDENTIAL, &cx.mrealm, c)? {
            Some(x) if str_of(&x, "principal_oid") == Some(p) => Ok(x),
            _ => Err(ApiError::no_such_object(format!("no credential with oid {c} found for principal {p}"))),
        }
    }

    fn add_role_permission(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let role = cx.a.oid(0, "role_oid")?;
        let uri = cx.a.str(1, "uri")?;
        let def = cx.def_arg(2, "permission")?;
        let flags = [
            "allow_call",
            "allow_register",
            "allow_publish",
            "allow_subscribe",
            "disclose_caller",
            "disclose_publisher",
            "cache",
        ];
        let mut keys = vec!["match", "uri_check_level"];
        keys.extend(flags);
        let d = Def::new(&def, "permission configuration", INVALID_CONFIGURATION, &keys, true)?;
        let matching = d.str("match")?.unwrap_or("exact");
        if !["exact", "prefix", "wildcard"].contains(&matching) {
            return Err(d.err(format!("'match' must be \"exact\", \"prefix\" or \"wildcard\", not {matching:?}")));
        }
        let level = d.str("uri_check_level")?;
        if level.is_some_and(|l| l != "strict" && l != "loose") {
            return Err(d.err(format!(
                "'uri_check_level' must be \"strict\", \"loose\" or null, not {:?}",
                level.unwrap_or_default()
            )));
        }
        check_uri(uri, matching, level == Some("strict")).map_err(|why| {
            ApiError::invalid_argument(format!(
                "add_role_permission: invalid URI {uri:?} for match \"{matching}\": {why}"
            ))
        })?;
        let mut perm = merged(
            merged(json!({"oid": new_oid()}), d.meta()?),
            json!({"role_oid": role, "uri": uri, "uri_check_level": level, "match": matching}),
        );
        for f in flags {
            perm[f] = json!(d.bool(f)?.unwrap_or(false));
        }
        perm["created"] = Json::Null;
        perm["owner"] = Json::Null;
        self.obj(cx, ROLE, &role, ROLE_WORD)?;
        if let Some(other) =
            self.objs_where(cx, PERMISSION, "role_oid", &role)?.iter().find(|p| str_of(p, "uri") == Some(uri))
        {
            return Err(ApiError::already_exists(format!(
                "role {role} already has a permission on URI \"{uri}\" ({}): remove it first",
                oid_of(other)
            )));
        }
        cx.put(PERMISSION, oid_of(&perm), &perm);
        cx.publish("arealm.on_permission_added", &perm);
        Ok(perm)
    }

    fn add_principal(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let ar = cx.a.oid(0, "arealm_oid")?;
        let def = cx.def_arg(1, "principal")?;
        let d = Def::new(&def, "principal configuration", INVALID_CONFIG, &["authid", "role_oid", "authextra"], true)?;
        let authid = d.req_str("authid")?;
        if authid.is_empty() || authid.len() > 255 || authid.contains(char::is_whitespace) {
            return Err(d.err(format!("'authid' must be a non-empty name without whitespace, not {authid:?}")));
        }
        let role_s = d.req_str("role_oid")?;
        let role = uuid::Uuid::parse_str(role_s).map(|u| u.to_string()).map_err(|_| {
            ApiError::invalid_argument(format!("add_principal: 'role_oid' is not an object id (UUID): {role_s:?}"))
        })?;
        let authextra = d.dict("authextra")?.cloned().map(Json::Object);
        let arealm = self.obj(cx, AREALM, &ar, AR)?;
        self.obj(cx, ROLE, &role, ROLE_WORD)?;
        if self.store.object(AREALM_ROLE, &cx.mrealm, &format!("{ar}/{role}"))?.is_none() {
            return Err(ApiError::no_such_object(format!(
                "role {role} is not a role of application realm \"{}\" (add_arealm_role first)",
                str_of(&arealm, "name").unwrap_or_default()
            )));
        }
        if self.objs_where(cx, PRINCIPAL, "arealm_oid", &ar)?.iter().any(|p| str_of(p, "authid") == Some(authid)) {
            return Err(ApiError::already_exists(format!(
                "principal with name (authid) \"{authid}\" already exist in application realm"
            )));
        }
        let oid = new_oid();
        let p = merged(
            merged(json!({"oid": oid}), d.meta()?),
            json!({"modified": cx.ns(), "arealm_oid": ar, "authid": authid, "role_oid": role, "authextra": authextra}),
        );
        cx.put(PRINCIPAL, &oid, &p);
        cx.publish("arealm.on_principal_created", &p);
        Ok(p)
    }

    fn add_principal_credential(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let (ar, p) = (cx.a.oid(0, "arealm_oid")?, cx.a.oid(1, "principal_oid")?);
        let def = cx.def_arg(2, "credential")?;
        let d = Def::new(&def, "credential configuration", INVALID_CONFIG, &["authmethod", "authconfig"], false)?;
        let method = d.req_str("authmethod")?;
        if !AUTHMETHODS.contains(&method) {
            return Err(d.err(format!("'authmethod' must be one of {}, not {method:?}", AUTHMETHODS.join(", "))));
        }
        let config = d.dict("authconfig")?.ok_or_else(|| d.err("missing 'authconfig'"))?;
        check_authconfig(method, config)?;
        let arealm = self.obj(cx, AREALM, &ar, AR)?;
        let principal = self.principal_of(cx, &ar, &p)?;
        if self.objs_where(cx, CREDENTIAL, "principal_oid", &p)?.iter().any(|c| str_of(c, "authmethod") == Some(method))
        {
            return Err(ApiError::already_exists(format!(
                "duplicate credential for authmethod \"{method}\", realm \"{}\" and authid \"{}\" in application realm",
                str_of(&arealm, "name").unwrap_or_default(),
                str_of(&principal, "authid").unwrap_or_default()
            )));
        }
        let oid = new_oid();
        let c = json!({
            "oid": oid, "created": cx.ns(), "authmethod": method, "realm": arealm["name"],
            "authid": principal["authid"], "authconfig": config, "principal_oid": p,
        });
        cx.put(CREDENTIAL, &oid, &c);
        Ok(c)
    }
}

fn dependent(doing: &str, what: &str) -> ApiError {
    ApiError::dependent_objects(format!("cannot {doing}: {what} (remove it first)"))
}
