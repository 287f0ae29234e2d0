use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::{json, Value};
use wamp_proto::Serializer;

use super::*;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

/// A small valid config as a JSON value, for tests to break.
fn base() -> Value {
    json!({
        "version": 2,
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "roles": [{
                    "name": "anonymous",
                    "permissions": [{"uri": "", "match": "prefix", "allow": {"call": true}}]
                }]
            }],
            "transports": [{
                "type": "websocket",
                "endpoint": {"type": "tcp", "port": 8080}
            }]
        }]
    })
}

fn parse_value(v: &Value) -> Result<NodeConfig, ConfigErrors> {
    parse_str(&v.to_string(), Format::Json)
}

/// Applies `f` to `base()`, parses, and returns the errors (failing the test
/// if the config is accepted).
fn errors_of(f: impl FnOnce(&mut Value)) -> ConfigErrors {
    let mut v = base();
    f(&mut v);
    match parse_value(&v) {
        Ok(_) => panic!("config was accepted:\n{v:#}"),
        Err(e) => e,
    }
}

/// Asserts exactly one error, at `location`, whose message contains `needle`.
fn assert_single(errs: &ConfigErrors, location: &str, needle: &str) {
    assert_eq!(errs.len(), 1, "expected one error, got:\n{errs}");
    let e = &errs.errors[0];
    assert_eq!(e.location, location, "{errs}");
    assert!(e.message.contains(needle), "message {:?} lacks {needle:?}", e.message);
}

fn w0(v: &mut Value) -> &mut Value {
    &mut v["workers"][0]
}

#[test]
fn base_is_valid() {
    let cfg = parse_value(&base()).expect("base config");
    let r = cfg.router().expect("router");
    assert_eq!(r.transports.len(), 1);
    // Defaults applied.
    let TransportKind::WebSocket(ws) = &r.transports[0].kind else {
        panic!("websocket expected");
    };
    assert_eq!(ws.serializers, Serializer::ALL.to_vec());
    assert_eq!(ws.options, WebSocketOptions::default());
    assert_eq!(ws.auth.anonymous_role(), Some("anonymous"));
    assert_eq!(r.transports[0].limits, ConnectionLimits::default());
    assert_eq!(
        r.transports[0].endpoint,
        Endpoint::Tcp {
            interface: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 8080,
            portrange: None,
            backlog: 1024,
            shared: false,
            tls: None
        }
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn embedded_default_parses_and_validates() {
    let cfg = default_config();
    cfg.validate().expect("default validates");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    assert_eq!(cfg.workers.len(), 1);
    let r = cfg.router().expect("router");
    assert_eq!(r.realms.len(), 1);
    let realm = &r.realms[0];
    assert_eq!(realm.name, "realm1");
    let role = realm.role("anonymous").expect("anonymous role");
    assert_eq!(role.permissions.len(), 1);
    let p = &role.permissions[0];
    assert_eq!(p.uri, "");
    assert_eq!(p.match_policy, MatchPolicy::Prefix);
    assert_eq!(p.allow, Allow { call: true, register: true, publish: true, subscribe: true });

    assert_eq!(r.transports.len(), 2);
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let web = &r.transports[0];
    assert_eq!(web.endpoint.to_string(), "tcp:127.0.0.1:8080");
    let TransportKind::Web(w) = &web.kind else {
        panic!("web transport expected");
    };
    let Some(WebService::WebSocket(ws)) = w.paths.get("ws") else {
        panic!("ws path expected");
    };
    let url = ws.url.as_deref().expect("url");
    assert_eq!(url, "ws://127.0.0.1:8080/ws");
    let mut sers = ws.serializers.clone();
    sers.sort();
    let mut all = Serializer::ALL.to_vec();
    all.sort();
    assert_eq!(sers, all);

    let raw = &r.transports[1];
    assert!(matches!(
        raw.endpoint,
        Endpoint::Tcp { interface, port: 8081, .. } if interface == lo
    ));
    let TransportKind::RawSocket(rs) = &raw.kind else {
        panic!("rawsocket expected");
    };
    let mut sers = rs.serializers.clone();
    sers.sort();
    assert_eq!(sers, all);
}

#[test]
fn docs_show_the_embedded_default() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"))
        .expect("docs/config.md");
    assert!(
        doc.contains(DEFAULT_CONFIG_JSON.trim_end()),
        "docs/config.md must contain src/default-config.json verbatim"
    );
}

fn expected_full() -> NodeConfig {
    let all = Allow { call: true, register: true, publish: true, subscribe: true };
    let mut controller_options = serde_json::Map::new();
    controller_options.insert("title".into(), json!("junction node1"));
    let mut paths = IndexMap::new();
    paths.insert(
        "ws".to_string(),
        WebService::WebSocket(WebSocketService {
            url: None,
            serializers: vec![Serializer::Cbor],
            options: WebSocketOptions::default(),
            auth: TransportAuth::default(),
        }),
    );
    NodeConfig {
        version: 2,
        controller: ControllerConfig { id: Some("node1".into()), options: controller_options, fabric: None },
        warnings: Vec::new(),
        workers: vec![WorkerConfig::Router(RouterWorkerConfig {
            id: Some("worker001".into()),
            options: RouterOptions { shards: Some(2), pin_cores: true, title: Some("router".into()) },
            realms: vec![RealmConfig {
                name: "realm1".into(),
                roles: vec![
                    RoleConfig {
                        name: "anonymous".into(),
                        permissions: vec![PermissionConfig {
                            uri: "".into(),
                            match_policy: MatchPolicy::Prefix,
                            allow: all,
                            disclose: Disclose::default(),
                            cache: true,
                        }],
                        authorizer: None,
                    },
                    RoleConfig {
                        name: "backend".into(),
                        permissions: vec![
                            PermissionConfig {
                                uri: "com.example.add2".into(),
                                match_policy: MatchPolicy::Exact,
                                allow: Allow { register: true, ..Allow::default() },
                                disclose: Disclose { caller: true, publisher: false },
                                cache: false,
                            },
                            PermissionConfig {
                                uri: "com.example..on_update".into(),
                                match_policy: MatchPolicy::Wildcard,
                                allow: Allow { publish: true, subscribe: true, ..Allow::default() },
                                disclose: Disclose { caller: false, publisher: true },
                                cache: false,
                            },
                            // Legacy "com.legacy.*" without `match`.
                            PermissionConfig {
                                uri: "com.legacy.".into(),
                                match_policy: MatchPolicy::Prefix,
                                allow: Allow { call: true, ..Allow::default() },
                                disclose: Disclose::default(),
                                cache: false,
                            },
                        ],
                        authorizer: None,
                    },
                ],
                options: RealmOptions {
                    home_shard: Some(1),
                    max_sessions: 5000,
                    enable_meta_api: false,
                    uri_check: UriCheck::Strict,
                    dealer: DealerOptions {
                        max_pending_calls_per_session: 64,
                        default_call_timeout: Some(Duration::from_secs(5)),
                        max_call_timeout: Some(Duration::from_secs(60)),
                        kill_grace: Duration::from_secs(2),
                    },
                    broker: BrokerOptions { max_retained_topics: 500, max_stored_payload: 4096 },
                },
                store: Some(StoreConfig {
                    kind: StoreKind::Memory,
                    limit: 50,
                    event_history: vec![
                        EventHistoryConfig {
                            uri: "com.example.oncounter".into(),
                            match_policy: MatchPolicy::Exact,
                            limit: 1000,
                        },
                        EventHistoryConfig {
                            uri: "com.example.feed.".into(),
                            match_policy: MatchPolicy::Prefix,
                            limit: 50,
                        },
                    ],
                }),
                rlinks: Vec::new(),
            }],
            transports: vec![
                TransportConfig {
                    id: Some("ws1".into()),
                    kind: TransportKind::WebSocket(WebSocketService {
                        url: Some("ws://127.0.0.1:9000".into()),
                        serializers: vec![Serializer::Json, Serializer::Msgpack],
                        options: WebSocketOptions {
                            max_frame_size: 65536,
                            max_message_size: 1048576,
                            auto_ping_interval: Some(Duration::from_secs(30)),
                            auto_ping_timeout: Some(Duration::from_secs(10)),
                            auto_ping_size: 8,
                            open_handshake_timeout: Duration::from_millis(2500),
                            close_handshake_timeout: Duration::from_millis(500),
                            allowed_origins: vec!["https://example.com".into(), "http://localhost:*".into()],
                            require_subprotocol: false,
                            tcp_nodelay: true,
                        },
                        auth: TransportAuth {
                            methods: vec![AuthMethod::Anonymous {
                                role: "anonymous".into(),
                                authid: None,
                                realm: None,
                            }],
                            options: AuthOptions::default(),
                        },
                    }),
                    endpoint: Endpoint::Tcp {
                        interface: IpAddr::V4(Ipv4Addr::LOCALHOST),
                        port: 9000,
                        portrange: None,
                        backlog: 512,
                        shared: false,
                        tls: None,
                    },
                    limits: ConnectionLimits {
                        max_connections: 1000,
                        max_outbound_bytes: 4194304,
                        max_outbound_messages: 1024,
                        slow_consumer_policy: SlowConsumerPolicy::Drop,
                    },
                },
                TransportConfig {
                    id: None,
                    kind: TransportKind::RawSocket(RawSocketTransport {
                        serializers: vec![Serializer::Cbor, Serializer::Flatbuffers],
                        options: RawSocketOptions {
                            max_message_size: 1048576,
                            handshake_timeout: Duration::from_secs(3),
                            auto_ping_interval: Some(Duration::from_secs(20)),
                            auto_ping_timeout: None,
                        },
                        auth: TransportAuth {
                            methods: vec![AuthMethod::Anonymous { role: "backend".into(), authid: None, realm: None }],
                            options: AuthOptions::default(),
                        },
                    }),
                    endpoint: Endpoint::Unix { path: "/tmp/junction.sock".into(), backlog: 1024 },
                    limits: ConnectionLimits::default(),
                },
                TransportConfig {
                    id: None,
                    kind: TransportKind::Web(WebTransport { paths }),
                    endpoint: Endpoint::Tcp {
                        interface: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                        port: 8080,
                        portrange: None,
                        backlog: 1024,
                        shared: true,
                        tls: None,
                    },
                    limits: ConnectionLimits { max_connections: 20000, ..ConnectionLimits::default() },
                },
            ],
        })],
    }
}

#[test]
fn full_example_json_parses_to_expected_structs() {
    let cfg = load(&example("full.json")).expect("full.json");
    assert_eq!(cfg, expected_full());
}

#[test]
fn full_example_yaml_equals_json() {
    let cfg = load(&example("full.yaml")).expect("full.yaml");
    assert_eq!(cfg, expected_full());
}

#[test]
fn two_realms_example() {
    let cfg = load(&example("two-realms.yaml")).expect("two-realms.yaml");
    let r = cfg.router().expect("router");
    let names: Vec<&str> = r.realms.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["app.public", "app.internal"]);
    assert_eq!(r.realms[1].options.max_sessions, 100);
    assert_eq!(r.realms[0].options.max_sessions, DEFAULT_MAX_SESSIONS);
    assert_eq!(r.options.shards, Some(2));
    assert_eq!(r.options.effective_shards(), 2);
    let TransportKind::RawSocket(rs) = &r.transports[1].kind else {
        panic!("rawsocket expected");
    };
    assert_eq!(rs.options.max_message_size, 65536);
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
}

#[test]
fn bad_example_reports_every_problem_at_once() {
    let errs = load(&example("bad.json")).expect_err("bad.json must fail");
    let expected = [
        ("workers[0].optoins", "did you mean 'options'?"),
        ("workers[0].options.shards", "between 1 and 4096"),
        ("workers[0].realms[0].roles[0].permissions[1].uri", "invalid URI 'com..bad'"),
        ("workers[0].realms[0].roles[0].permissions[1].allow.call", "expected a boolean"),
        ("workers[0].realms[0].roles[0].permissions[2].match", "invalid match policy 'regex'"),
        ("workers[0].realms[0].roles[1].name", "duplicate role name"),
        ("workers[0].realms[1].name", "duplicate realm name 'realm1'"),
        ("workers[0].realms[1].roles", "has no roles"),
        ("workers[0].transports[0].endpoint.port", "out of range"),
        ("workers[0].transports[0].serializers[2]", "did you mean 'msgpack'?"),
        ("workers[0].transports[1].endpoint.path", "at most 107"),
        ("workers[0].transports[1].max_message_size", "out of range"),
        ("workers[0].transports[1].options.max_outbound_bytes", "smaller than"),
        ("workers[0].transports[2].auth.ticket.principals.joe.role", "missing required key 'role'"),
        ("workers[0].transports[3].endpoint.port", "conflicts with"),
        ("workers[1].type", "worker type container is not supported by this version of Junction"),
    ];
    for (loc, needle) in expected {
        let e = errs.at(loc).unwrap_or_else(|| panic!("no error at {loc}; got:\n{errs}"));
        assert!(e.message.contains(needle), "{loc}: {:?} lacks {needle:?}", e.message);
    }
    assert_eq!(errs.len(), expected.len(), "unexpected extra errors:\n{errs}");
    // JSON sources carry line numbers, and errors come in line order.
    assert_eq!(errs.at("workers[0].optoins").and_then(|e| e.line), Some(6));
    assert_eq!(errs.at("workers[1].type").and_then(|e| e.line), Some(47));
    let lines: Vec<usize> = errs.iter().filter_map(|e| e.line).collect();
    assert_eq!(lines.len(), errs.len());
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn crossbar_default_loads_with_warnings_only() {
    let cfg = load(&example("crossbar-default.json")).expect("Crossbar's default config loads");
    let r = cfg.router().expect("router");
    let TransportKind::Web(web) = &r.transports[0].kind else {
        panic!("web transport expected");
    };
    assert_eq!(
        web.paths.get("/"),
        Some(&WebService::Static(StaticService {
            directory: PathBuf::from("../web"),
            enable_directory_listing: false,
            mime_types: IndexMap::new(),
            cache_timeout: Some(Duration::from_secs(43200)),
            default_file: "index.html".into(),
        }))
    );
    assert_eq!(web.paths.get("info"), Some(&WebService::NodeInfo));
    // ubjson is ignored with a warning, so Crossbar configs still load.
    let ubjson = warning_at(&cfg, "workers[0].transports[0].paths.ws.serializers[2]");
    assert!(ubjson.message.contains("valid in Crossbar but not supported"));
    // Ignored Crossbar options are warnings, not errors.
    let warned: Vec<&str> = cfg.warnings.iter().map(|w| w.location.as_str()).collect();
    for key in ["enable_webstatus", "auto_fragment_size", "fail_by_drop"] {
        let loc = format!("workers[0].transports[0].paths.ws.options.{key}");
        assert!(warned.contains(&loc.as_str()), "no warning at {loc}: {warned:?}");
    }
    assert_eq!(warned.len(), 4, "{warned:?}");
}

#[test]
fn display_is_location_colon_message_one_per_line() {
    let errs = errors_of(|v| {
        w0(v)["options"] = json!({"shards": 0});
        w0(v)["transports"][0]["endpoint"]["port"] = json!(0);
    });
    let text = errs.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("workers[0].options.shards (line "), "{text}");
    assert!(lines[1].starts_with("workers[0].transports[0].endpoint.port (line "));
    assert!(lines[1].ends_with(": port 0 is out of range: must be between 1 and 65535"));
    let plain = ConfigError::new("a.b", "bad");
    assert_eq!(plain.to_string(), "a.b: bad");
}

#[test]
fn unknown_keys_with_suggestions() {
    let errs = errors_of(|v| {
        w0(v)["realms"][0]["roles"][0]["permissions"][0]["mtach"] = json!("prefix");
    });
    assert_single(
        &errs,
        "workers[0].realms[0].roles[0].permissions[0].mtach",
        "unknown key 'mtach' (did you mean 'match'?)",
    );
    let errs = errors_of(|v| v["zzzzzz"] = json!(1));
    assert_single(&errs, "zzzzzz", "unknown key 'zzzzzz'");
    assert!(!errs.errors[0].message.contains("did you mean"));
}

#[test]
fn wrong_types_are_reported() {
    let errs = errors_of(|v| v["version"] = json!("2"));
    assert_single(&errs, "version", "expected a non-negative integer, found a string");
    let errs = errors_of(|v| w0(v)["realms"] = json!({"name": "x"}));
    assert_single(&errs, "workers[0].realms", "expected a list, found an object");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["port"] = json!("8080"));
    assert_single(&errs, "workers[0].transports[0].endpoint.port", "expected an integer");
    let errs = errors_of(|v| w0(v)["transports"][0]["options"] = json!({"auto_ping_interval": 1.5}));
    assert_single(&errs, "workers[0].transports[0].options.auto_ping_interval", "milliseconds");
}

#[test]
fn missing_required_keys() {
    let errs = errors_of(|v| {
        w0(v)["realms"][0].as_object_mut().map(|m| m.remove("name"));
    });
    assert_single(&errs, "workers[0].realms[0].name", "missing required key 'name'");
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["endpoint"].as_object_mut().map(|m| m.remove("port"));
    });
    assert_single(&errs, "workers[0].transports[0].endpoint.port", "missing required key 'port'");
    let errs = errors_of(|v| {
        w0(v).as_object_mut().map(|m| m.remove("transports"));
    });
    assert_single(&errs, "workers[0].transports", "missing required key 'transports'");
    let errs = errors_of(|v| {
        v.as_object_mut().map(|m| m.remove("workers"));
    });
    assert_single(&errs, "workers", "missing required key 'workers'");
}

#[test]
fn ports_and_endpoints() {
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["port"] = json!(0));
    assert_single(&errs, "workers[0].transports[0].endpoint.port", "port 0 is out of range");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["port"] = json!(65536));
    assert_single(&errs, "workers[0].transports[0].endpoint.port", "port 65536 is out of range");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["port"] = json!(-1));
    assert_single(&errs, "workers[0].transports[0].endpoint.port", "out of range");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["port"] = json!("$PORT"));
    assert_single(&errs, "workers[0].transports[0].endpoint.port", "environment variable");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["interface"] = json!("localhost"));
    assert_single(&errs, "workers[0].transports[0].endpoint.interface", "invalid interface");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["type"] = json!("udp"));
    assert_single(&errs, "workers[0].transports[0].endpoint.type", "invalid endpoint type 'udp'");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["tls"] = json!({"key": "k"}));
    assert_single(&errs, "workers[0].transports[0].endpoint.tls.certificate", "missing required key 'certificate'");
    let errs = errors_of(|v| w0(v)["transports"][0]["endpoint"]["backlog"] = json!(0));
    assert_single(&errs, "workers[0].transports[0].endpoint.backlog", "backlog 0");
}

#[test]
fn unix_paths() {
    let long = format!("/tmp/{}", "a".repeat(103)); // 108 bytes
    let ok = format!("/tmp/{}", "a".repeat(102)); // 107 bytes
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["endpoint"] = json!({"type": "unix", "path": long});
    });
    assert_single(&errs, "workers[0].transports[0].endpoint.path", "108 bytes long");
    let mut v = base();
    w0(&mut v)["transports"][0]["endpoint"] = json!({"type": "unix", "path": ok});
    parse_value(&v).expect("107-byte path is fine");
}

#[test]
fn duplicate_endpoints() {
    let errs = errors_of(|v| {
        let t = w0(v)["transports"][0].clone();
        let mut t2 = t.clone();
        t2["type"] = json!("rawsocket");
        w0(v)["transports"] = json!([t, t2]);
    });
    assert_single(&errs, "workers[0].transports[1].endpoint.port", "conflicts with tcp:0.0.0.0:8080");
    // Distinct interfaces on the same port are fine.
    let mut v = base();
    let mut t1 = w0(&mut v)["transports"][0].clone();
    t1["endpoint"]["interface"] = json!("127.0.0.1");
    let mut t2 = t1.clone();
    t2["endpoint"]["interface"] = json!("127.0.0.2");
    w0(&mut v)["transports"] = json!([t1, t2]);
    parse_value(&v).expect("different interfaces");
}

#[test]
fn serializers() {
    let mut v = base();
    w0(&mut v)["transports"][0]["serializers"] = json!(["json", "ubjson"]);
    let cfg = parse_value(&v).expect("ubjson is ignored, not an error");
    let w = cfg.warnings.iter().find(|w| w.location == "workers[0].transports[0].serializers[1]").expect("warning");
    assert!(w.message.contains("'ubjson' is valid in Crossbar but not supported by Junction"), "{}", w.message);
    let errs = errors_of(|v| w0(v)["transports"][0]["serializers"] = json!(["jsno"]));
    assert_single(&errs, "workers[0].transports[0].serializers[0]", "did you mean 'json'?");
    let errs = errors_of(|v| w0(v)["transports"][0]["serializers"] = json!([]));
    assert_single(&errs, "workers[0].transports[0].serializers", "at least one serializer");
    let errs = errors_of(|v| w0(v)["transports"][0]["serializers"] = json!(["cbor", "cbor"]));
    assert_single(&errs, "workers[0].transports[0].serializers", "'cbor' is listed more than once");
}

#[test]
fn message_size_limits() {
    let errs = errors_of(|v| {
        w0(v)["transports"][0] = json!({
            "type": "rawsocket",
            "endpoint": {"type": "tcp", "port": 8081},
            "max_message_size": 511
        });
    });
    assert_single(&errs, "workers[0].transports[0].max_message_size", "between 512 and 16777216");
    let errs = errors_of(|v| {
        w0(v)["transports"][0] = json!({
            "type": "rawsocket",
            "endpoint": {"type": "tcp", "port": 8081},
            "max_message_size": 16 * 1024 * 1024 + 1,
            "options": {"max_outbound_bytes": 64 * 1024 * 1024}
        });
    });
    assert_single(&errs, "workers[0].transports[0].max_message_size", "out of range for RawSocket");
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["options"] = json!({"max_message_size": 0});
    });
    assert_single(&errs, "workers[0].transports[0].options.max_message_size", "out of range");
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["options"] = json!({"auto_ping_size": 200});
    });
    assert_single(&errs, "workers[0].transports[0].options.auto_ping_size", "between 4 and 125");
}

#[test]
fn connection_limits() {
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["options"] = json!({"max_connections": 0, "max_outbound_messages": 0});
    });
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs.at("workers[0].transports[0].options.max_connections").is_some());
    assert!(errs.at("workers[0].transports[0].options.max_outbound_messages").is_some());
    // Limits inside a web path's WebSocket options belong to the transport.
    let errs = errors_of(|v| {
        w0(v)["transports"][0] = json!({
            "type": "web",
            "endpoint": {"type": "tcp", "port": 8080},
            "paths": {"ws": {"type": "websocket", "options": {"max_connections": 5}}}
        });
    });
    assert_single(&errs, "workers[0].transports[0].paths.ws.options.max_connections", "web transport's 'options'");
}

#[test]
fn realms_and_roles() {
    let errs = errors_of(|v| {
        let r = w0(v)["realms"][0].clone();
        w0(v)["realms"] = json!([r.clone(), r]);
    });
    assert_single(&errs, "workers[0].realms[1].name", "duplicate realm name 'realm1' (also at workers[0].realms[0])");
    let errs = errors_of(|v| w0(v)["realms"][0]["roles"] = json!([]));
    assert_single(&errs, "workers[0].realms[0].roles", "has no roles");
    let errs = errors_of(|v| {
        let r = w0(v)["realms"][0]["roles"][0].clone();
        w0(v)["realms"][0]["roles"] = json!([r.clone(), r]);
    });
    assert_single(&errs, "workers[0].realms[0].roles[1].name", "duplicate role name 'anonymous'");
    let errs = errors_of(|v| w0(v)["realms"][0]["name"] = json!("bad realm"));
    assert_single(&errs, "workers[0].realms[0].name", "invalid realm name");
    let errs = errors_of(|v| {
        w0(v)["realms"][0]["roles"][0] = json!({"name": "anonymous", "authorizer": "com.example.authorize"});
    });
    assert_single(&errs, "workers[0].realms[0].roles[0].authorizer", "dynamic authorizers are not supported yet");
    let errs = errors_of(|v| {
        w0(v)["options"] = json!({"shards": 2});
        w0(v)["realms"][0]["options"] = json!({"home_shard": 2, "max_sessions": 0});
    });
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs.at("workers[0].realms[0].options.home_shard").is_some());
    assert!(errs.at("workers[0].realms[0].options.max_sessions").is_some());
}

#[test]
fn permission_uris() {
    let perm = |uri: &str, m: &str| {
        let mut v = base();
        w0(&mut v)["realms"][0]["roles"][0]["permissions"][0] = json!({"uri": uri, "match": m});
        parse_value(&v)
    };
    assert!(perm("", "prefix").is_ok());
    assert!(perm("com.example.", "prefix").is_ok());
    assert!(perm("com..x", "wildcard").is_ok());
    assert!(perm(".x.", "wildcard").is_ok());
    assert!(perm("com.example.proc", "exact").is_ok());
    for (uri, m) in [
        ("", "exact"),
        ("com..x", "exact"),
        ("com.x.", "exact"),
        ("com..x", "prefix"),
        ("", "wildcard"),
        ("com.ex ample", "exact"),
        ("com.#", "prefix"),
    ] {
        let errs = perm(uri, m).expect_err(uri);
        assert_single(&errs, "workers[0].realms[0].roles[0].permissions[0].uri", "invalid URI");
    }
    let errs = errors_of(|v| {
        let p = w0(v)["realms"][0]["roles"][0]["permissions"][0].clone();
        w0(v)["realms"][0]["roles"][0]["permissions"] = json!([p.clone(), p]);
    });
    assert_single(&errs, "workers[0].realms[0].roles[0].permissions[1].uri", "duplicate permission");
}

#[test]
fn workers() {
    let errs = errors_of(|v| w0(v)["options"] = json!({"shards": 0}));
    assert_single(&errs, "workers[0].options.shards", "shards must be between 1");
    // Two router workers are fine, but not on one port.
    let errs = errors_of(|v| {
        let w = v["workers"][0].clone();
        v["workers"] = json!([w.clone(), w]);
    });
    assert_single(
        &errs,
        "workers[1].transports[0].endpoint.port",
        "endpoint tcp:0.0.0.0:8080 conflicts with tcp:0.0.0.0:8080 of workers[0].transports[0]",
    );
    let mut v = base();
    let mut w2 = v["workers"][0].clone();
    w2["transports"][0]["endpoint"]["port"] = json!(8081);
    w2["id"] = json!("second");
    v["workers"].as_array_mut().expect("list").push(w2);
    let cfg = parse_value(&v).expect("two routers");
    let routers: Vec<(usize, Option<&str>)> = cfg.routers().map(|(i, r)| (i, r.id.as_deref())).collect();
    assert_eq!(routers, [(0, None), (1, Some("second"))]);
    assert_eq!(cfg.proxies().count(), 0);
    assert!(cfg.router().is_some_and(|r| r.id.is_none()));

    let errs = errors_of(|v| {
        let w = v["workers"][0].clone();
        v["workers"] = json!([w, {"type": "guest", "executable": "node"}]);
    });
    assert_single(&errs, "workers[1].type", "worker type guest is not supported by this version of Junction");
    let errs = errors_of(|v| v["workers"] = json!([]));
    assert_single(&errs, "workers", "no workers: at least one router or proxy worker is required");
    let errs = errors_of(|v| w0(v)["type"] = json!("ruoter"));
    assert!(errs.at("workers[0].type").is_some_and(|e| e.message.contains("did you mean 'router'?")), "{errs}");
    let errs = errors_of(|v| w0(v)["type"] = json!("proxi"));
    assert!(errs.at("workers[0].type").is_some_and(|e| e.message.contains("did you mean 'proxy'?")), "{errs}");
    let errs = errors_of(|v| w0(v)["transports"] = json!([]));
    assert_single(&errs, "workers[0].transports", "no transports");
    let errs = errors_of(|v| v["version"] = json!(1));
    assert_single(&errs, "version", "unsupported config version 1");
}

#[test]
fn transports_and_web_services() {
    let errs = errors_of(|v| w0(v)["transports"][0]["type"] = json!("universal"));
    assert_single(&errs, "workers[0].transports[0].type", "transport type universal is not supported");
    let errs = errors_of(|v| w0(v)["transports"][0]["type"] = json!("websockte"));
    assert_single(&errs, "workers[0].transports[0].type", "did you mean 'websocket'?");
    let errs = errors_of(|v| {
        w0(v)["transports"][0] = json!({
            "type": "web",
            "endpoint": {"type": "tcp", "port": 8080},
            "paths": {
                "ws": {"type": "websocket"},
                "/": {"type": "static", "directory": ".."},
                "app": {"type": "wsgi", "module": "x", "object": "app"},
                "a/b": {"type": "redirect", "url": "http://x"}
            }
        });
    });
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs
        .at("workers[0].transports[0].paths.app.type")
        .is_some_and(|e| e.message.contains("web service 'wsgi' is not supported by this version of Junction")));
    assert!(errs.at("workers[0].transports[0].paths[\"a/b\"]").is_some_and(|e| e.message.contains("invalid path")));
    let errs = errors_of(|v| {
        w0(v)["transports"][0] = json!({"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": {}});
    });
    assert_single(&errs, "workers[0].transports[0].paths", "no paths");
    let errs = errors_of(|v| {
        w0(v)["transports"][0] =
            json!({"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": {"x": {"type": "statc"}}});
    });
    assert_single(&errs, "workers[0].transports[0].paths.x.type", "did you mean 'static'?");
}

#[test]
fn authentication() {
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["auth"] = json!({
            "cookie": {},
            "cryptosign": {"type": "function", "create": "x.y"}
        });
    });
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs
        .at("workers[0].transports[0].auth.cookie")
        .is_some_and(|e| e.message.contains("cookie is not supported")));
    assert!(errs
        .at("workers[0].transports[0].auth.cryptosign")
        .is_some_and(|e| e.message.contains("cryptosign (function) is not supported")));
    // Shape problems are reported too.
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["auth"] = json!({"ticket": {"type": "dynamic"}, "kerberos": {}});
    });
    assert!(errs.at("workers[0].transports[0].auth.ticket.authenticator").is_some(), "{errs}");
    assert!(errs.at("workers[0].transports[0].auth.kerberos").is_some(), "{errs}");
    // Anonymous with a custom role, and a warning when no realm has it.
    let mut v = base();
    w0(&mut v)["transports"][0]["auth"] = json!({"anonymous": {"type": "static", "role": "guest"}});
    let cfg = parse_value(&v).expect("valid");
    let TransportKind::WebSocket(ws) = &cfg.router().expect("router").transports[0].kind else {
        panic!("websocket expected");
    };
    assert_eq!(ws.auth.anonymous_role(), Some("guest"));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.location == "workers[0].transports[0].auth.anonymous.role" && w.message.contains("'guest'")));
}

#[test]
fn validate_works_on_configs_built_in_code() {
    let mut cfg = default_config();
    let WorkerConfig::Router(r) = &mut cfg.workers[0] else {
        panic!("router expected");
    };
    r.options.shards = Some(0);
    r.realms[0].roles.clear();
    let errs = cfg.validate().expect_err("invalid");
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs.at("workers[0].options.shards").is_some());
    assert!(errs.at("workers[0].realms[0].roles").is_some());
}

#[test]
fn syntax_errors_carry_lines() {
    let errs = parse_str("{\n  \"version\": 2,\n  \"workers\": [,]\n}", Format::Json).expect_err("bad");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs.errors[0].line, Some(3));
    assert!(errs.errors[0].message.starts_with("invalid JSON"));
    let errs = parse_str("version: 2\nworkers: [\n", Format::Yaml).expect_err("bad");
    assert!(errs.errors[0].message.starts_with("invalid YAML"));
    assert!(errs.errors[0].line.is_some());
    let errs = parse_str("[1, 2]", Format::Json).expect_err("not an object");
    assert_single(&errs, "", "expected an object, found a list");
}

#[test]
fn yaml_errors_have_locations() {
    let errs = parse_str(
        "version: 2\nworkers:\n  - type: router\n    realms: []\n    transports:\n      - type: rawsocket\n        endpoint: {type: tcp, port: 0}\n",
        Format::Yaml,
    )
    .expect_err("port 0");
    assert_single(&errs, "workers[0].transports[0].endpoint.port", "port 0");
}

#[test]
fn load_picks_format_by_extension_or_content() {
    let dir = std::env::temp_dir().join(format!("junction-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let yaml = std::fs::read_to_string(example("two-realms.yaml")).expect("read");
    let json = std::fs::read_to_string(example("full.json")).expect("read");
    let p1 = dir.join("config");
    std::fs::write(&p1, &yaml).expect("write");
    assert_eq!(load(&p1).expect("yaml without extension").router().expect("r").realms.len(), 2);
    let p2 = dir.join("config.conf");
    std::fs::write(&p2, &json).expect("write");
    assert_eq!(load(&p2).expect("json without extension"), expected_full());
    let p3 = dir.join("config.json");
    std::fs::write(&p3, &yaml).expect("write");
    assert!(load(&p3).expect_err("yaml in .json").errors[0].message.starts_with("invalid JSON"));
    let missing = load(&dir.join("nope.json")).expect_err("missing");
    assert!(missing.errors[0].message.contains("cannot read"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn suggestions_are_only_for_close_names() {
    assert_eq!(parse::suggest("serializer", &["serializers", "options"]), " (did you mean 'serializers'?)");
    assert_eq!(parse::suggest("xyz", &["serializers", "options"]), "");
    assert_eq!(parse::suggest("options", &["options"]), "");
}

fn auth_of(cfg: &NodeConfig) -> &TransportAuth {
    let r = cfg.router().expect("router");
    match &r.transports[0].kind {
        TransportKind::WebSocket(ws) => &ws.auth,
        TransportKind::RawSocket(rs) => &rs.auth,
        other => panic!("{other:?}"),
    }
}

fn with_user_role(v: &mut Value) {
    w0(v)["realms"][0]["roles"]
        .as_array_mut()
        .expect("roles")
        .push(json!({"name": "user", "permissions": [{"uri": "", "match": "prefix", "allow": {"call": true}}]}));
}

#[test]
fn static_auth_methods_in_crossbar_shape() {
    let mut v = base();
    with_user_role(&mut v);
    let key = "545efb0a2192db8d43f118e9bf9aee081466e1ef36c708b96ee6f62dddad9122";
    w0(&mut v)["transports"][0]["auth"] = json!({
        "ticket": {"type": "static", "principals": {"joe": {"ticket": "secret", "role": "user"}}},
        "wampcra": {"type": "static", "users": {
            "peter": {"secret": "s1", "role": "user"},
            "salty": {"secret": "s2", "role": "user", "salt": "salt123", "iterations": 100, "keylen": 32}
        }},
        "cryptosign": {"type": "static", "principals": {
            "client01@example.com": {"realm": "realm1", "role": "user", "authorized_keys": [key.to_uppercase()]}
        }},
        "scram": {"type": "static", "principals": {"foobar@example.com": {
            "kdf": "argon2id-13", "iterations": 4096, "memory": 512,
            "salt": "3bc3ca01dd1d501ca1c22e1c5d7d16fe",
            "stored-key": "e796c2f0a51770303ee4616bc630a66774d51a55003154aff2a54ec7c4ac0e38",
            "server-key": "8de7864c316f3c2356fd76cfdab696db55bc70e680fe5180e2f731e2345acca2",
            "role": "user"
        }}},
        "anonymous": {"type": "static", "role": "anonymous", "authid": "guest"},
        "options": {"challenge_timeout": 5000, "max_failures": 3, "failure_window": 30000, "max_tracked_peers": 10}
    });
    let cfg = parse_value(&v).expect("valid");
    let auth = auth_of(&cfg);
    assert_eq!(
        auth.methods.iter().map(AuthMethod::name).collect::<Vec<_>>(),
        ["ticket", "wampcra", "cryptosign", "scram", "anonymous"]
    );
    assert_eq!(auth.options.challenge_timeout, Duration::from_secs(5));
    assert_eq!(auth.options.max_failures, 3);
    assert_eq!(auth.options.failure_window, Duration::from_secs(30));
    assert_eq!(auth.options.max_tracked_peers, 10);
    let Some(AuthMethod::WampCra(AuthProvider::Static(users))) = auth.method("wampcra") else {
        panic!("wampcra");
    };
    assert_eq!(users["peter"].salt, None);
    assert_eq!(users["salty"].salt, Some(WampCraSalt { salt: "salt123".into(), iterations: 100, keylen: 32 }));
    let Some(AuthMethod::Cryptosign(AuthProvider::Static(p))) = auth.method("cryptosign") else {
        panic!("cryptosign");
    };
    assert_eq!(p["client01@example.com"].authorized_keys, vec![key.to_string()]);
    assert_eq!(p["client01@example.com"].realm.as_deref(), Some("realm1"));
    let Some(AuthMethod::Scram(AuthProvider::Static(p))) = auth.method("scram") else {
        panic!("scram");
    };
    assert_eq!(p["foobar@example.com"].kdf, ScramKdf::Argon2id13);
    assert_eq!(p["foobar@example.com"].memory, 512);
    assert_eq!(
        auth.method("anonymous"),
        Some(&AuthMethod::Anonymous { role: "anonymous".into(), authid: Some("guest".into()), realm: None })
    );
    assert_eq!(auth.anonymous_role(), Some("anonymous"));
}

#[test]
fn dynamic_auth_methods() {
    let mut v = base();
    w0(&mut v)["realms"]
        .as_array_mut()
        .expect("realms")
        .push(json!({"name": "auth", "roles": [{"name": "authenticator", "permissions": []}]}));
    w0(&mut v)["transports"][0]["auth"] = json!({
        "ticket": {"type": "dynamic", "authenticator": "com.example.auth", "authenticator-realm": "auth", "authenticator-role": "authenticator"},
        "anonymous": {"type": "dynamic", "authenticator": "com.example.anon"}
    });
    let cfg = parse_value(&v).expect("valid");
    let auth = auth_of(&cfg);
    assert_eq!(
        auth.method("ticket"),
        Some(&AuthMethod::Ticket(AuthProvider::Dynamic(DynamicAuthenticator {
            authenticator: "com.example.auth".into(),
            authenticator_realm: Some("auth".into()),
            authenticator_role: Some("authenticator".into()),
        })))
    );
    assert!(matches!(auth.method("anonymous"), Some(AuthMethod::AnonymousDynamic(_))));
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["auth"] = json!({
            "wampcra": {"type": "dynamic", "authenticator": "bad uri", "authenticator-realm": "nope"}
        });
    });
    assert!(errs.at("workers[0].transports[0].auth.wampcra.authenticator").is_some(), "{errs}");
    assert!(errs.at("workers[0].transports[0].auth.wampcra[\"authenticator-realm\"]").is_some(), "{errs}");
}

#[test]
fn auth_shape_errors() {
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["auth"] = json!({
            "cryptosign": {"type": "static", "principals": {"a": {"role": "anonymous", "authorized_keys": ["abcd"]}}},
            "scram": {"type": "static", "principals": {"b": {
                "kdf": "md5", "iterations": 1, "salt": "xyz", "stored-key": "00", "server-key": "00", "role": "anonymous"
            }}},
            "wampcra": {"type": "static", "users": {"c": {"secret": "s", "role": "anonymous", "keylen": 3}}},
            "ticket": {"type": "static", "principals": {"d": {"ticket": "t", "role": "anonymous", "colour": "red"}}},
            "options": {"max_failures": 0}
        });
    });
    for loc in [
        "workers[0].transports[0].auth.cryptosign.principals.a.authorized_keys[0]",
        "workers[0].transports[0].auth.scram.principals.b.kdf",
        "workers[0].transports[0].auth.scram.principals.b.salt",
        "workers[0].transports[0].auth.scram.principals.b[\"stored-key\"]",
        "workers[0].transports[0].auth.scram.principals.b[\"server-key\"]",
        "workers[0].transports[0].auth.wampcra.users.c.salt",
        "workers[0].transports[0].auth.ticket.principals.d.colour",
        "workers[0].transports[0].auth.options.max_failures",
    ] {
        assert!(errs.at(loc).is_some(), "no error at {loc}:\n{errs}");
    }
}

#[test]
fn tls_endpoint_and_tls_auth() {
    let mut v = base();
    with_user_role(&mut v);
    w0(&mut v)["transports"][0]["endpoint"]["tls"] = json!({
        "key": "server.key", "certificate": "server.crt",
        "ca_certificates": ["ca.crt"], "chain_certificates": ["intermediate.crt"],
        "ciphers": "ECDHE-RSA-AES128-GCM-SHA256"
    });
    w0(&mut v)["transports"][0]["auth"] = json!({
        "tls": {"type": "static", "principals": {"client1": {
            "certificate-sha1": "b6:e5:e6:f2:2a:86:db:3c:c8:18:9b:2c:ed:4a:a3:fc:2e:9d:8f:5a", "role": "user"
        }}}
    });
    let cfg = parse_value(&v).expect("valid");
    let r = cfg.router().expect("router");
    let Endpoint::Tcp { tls: Some(tls), .. } = &r.transports[0].endpoint else {
        panic!("tls endpoint");
    };
    assert_eq!(tls.key, PathBuf::from("server.key"));
    assert_eq!(tls.certificate, PathBuf::from("server.crt"));
    assert_eq!(tls.ca_certificates, vec![PathBuf::from("ca.crt")]);
    assert_eq!(tls.chain_certificates, vec![PathBuf::from("intermediate.crt")]);
    assert!(tls.require_client_cert);
    let Some(AuthMethod::Tls(AuthProvider::Static(p))) = auth_of(&cfg).method("tls") else {
        panic!("tls auth");
    };
    assert_eq!(p["client1"].certificate_sha1.as_deref(), Some("B6E5E6F22A86DB3CC8189B2CED4AA3FC2E9D8F5A"));
    // tls auth without client certificates is an error; so is requiring
    // client certificates without CAs.
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["auth"] = json!({"tls": {"type": "static", "principals": {}}});
    });
    assert_single(&errs, "workers[0].transports[0].auth.tls", "needs a TLS endpoint");
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["endpoint"]["tls"] =
            json!({"key": "k", "certificate": "c", "require_client_certificate": true, "dhparam": "d"});
    });
    assert_single(
        &errs,
        "workers[0].transports[0].endpoint.tls.require_client_certificate",
        "without 'ca_certificates'",
    );
}

// ---------------------------------------------------------------------------
// Crossbar placements, dealer/broker options, realm store, slow consumers.

fn rawsocket_at(v: &mut Value, t: Value) {
    w0(v)["transports"][0] = t;
}

fn raw_options(cfg: &NodeConfig) -> &RawSocketOptions {
    match &cfg.router().expect("router").transports[0].kind {
        TransportKind::RawSocket(rs) => &rs.options,
        other => panic!("not a rawsocket transport: {other:?}"),
    }
}

fn warning_at<'c>(cfg: &'c NodeConfig, loc: &str) -> &'c ConfigError {
    cfg.warnings.iter().find(|w| w.location == loc).unwrap_or_else(|| panic!("no warning at {loc}: {:?}", cfg.warnings))
}

#[test]
fn rawsocket_max_message_size_is_accepted_in_both_places() {
    // Crossbar's checkconfig/runtime place: options.max_message_size.
    let mut v = base();
    rawsocket_at(
        &mut v,
        json!({
            "type": "rawsocket",
            "endpoint": {"type": "tcp", "port": 8081},
            "debug": true,
            "options": {"max_message_size": 65536}
        }),
    );
    let cfg = parse_value(&v).expect("crossbar-shaped rawsocket");
    assert_eq!(raw_options(&cfg).max_message_size, 65536);
    // Crossbar's transport-level `debug` is accepted with a warning.
    assert!(warning_at(&cfg, "workers[0].transports[0].debug").message.contains("ignored by Junction"));

    // Crossbar's documented place: transport level.
    w0(&mut v)["transports"][0]["options"] = json!({});
    w0(&mut v)["transports"][0]["max_message_size"] = json!(4096);
    let cfg = parse_value(&v).expect("transport-level size");
    assert_eq!(raw_options(&cfg).max_message_size, 4096);

    // Both, agreeing.
    w0(&mut v)["transports"][0]["options"] = json!({"max_message_size": 4096});
    let cfg = parse_value(&v).expect("same size twice");
    assert_eq!(raw_options(&cfg).max_message_size, 4096);

    // Both, disagreeing: one error at the options key naming the other.
    let errs = errors_of(|v| {
        rawsocket_at(
            v,
            json!({
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": 8081},
                "max_message_size": 4096,
                "options": {"max_message_size": 8192}
            }),
        );
    });
    assert_single(
        &errs,
        "workers[0].transports[0].options.max_message_size",
        "conflicts with 4096 given at workers[0].transports[0].max_message_size",
    );

    // A bad value under options is reported there, once.
    let errs = errors_of(|v| {
        rawsocket_at(
            v,
            json!({
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": 8081},
                "options": {"max_message_size": 100}
            }),
        );
    });
    assert_single(&errs, "workers[0].transports[0].options.max_message_size", "out of range for RawSocket");
    let errs = errors_of(|v| {
        rawsocket_at(
            v,
            json!({
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": 8081},
                "options": {"max_message_size": "big"}
            }),
        );
    });
    assert_single(&errs, "workers[0].transports[0].options.max_message_size", "non-negative integer");
}

#[test]
fn websocket_crossbar_options_are_accepted() {
    let mut v = base();
    w0(&mut v)["transports"][0] = json!({
        "type": "web",
        "endpoint": {"type": "tcp", "port": 8080},
        "paths": {"ws": {
            "type": "websocket",
            "id": "ws-service",
            "options": {"allow_null_origin": true, "show_server_version": false}
        }}
    });
    let cfg = parse_value(&v).expect("crossbar websocket options");
    let w = warning_at(&cfg, "workers[0].transports[0].paths.ws.options.allow_null_origin");
    assert!(w.message.contains("\"null\""), "{}", w.message);
    // The path service `id` (Crossbar accepts it) must still be a string.
    let errs = errors_of(|v| {
        w0(v)["transports"][0] = json!({
            "type": "web",
            "endpoint": {"type": "tcp", "port": 8080},
            "paths": {"ws": {"type": "websocket", "id": 7}}
        });
    });
    assert_single(&errs, "workers[0].transports[0].paths.ws.id", "expected a string");
}

#[test]
fn dealer_and_broker_options_defaults_and_values() {
    let cfg = parse_value(&base()).expect("base");
    let o = &cfg.router().expect("router").realms[0].options;
    assert_eq!(o.dealer, DealerOptions::default());
    assert_eq!(o.dealer.max_pending_calls_per_session, 1000);
    assert_eq!(o.dealer.default_call_timeout, None);
    assert_eq!(o.dealer.max_call_timeout, None);
    assert_eq!(o.dealer.kill_grace, Duration::from_secs(10));
    assert_eq!(o.broker.max_retained_topics, 10_000);
    assert_eq!(o.broker.max_stored_payload, 65_536);
    assert!(o.enable_meta_api);
    assert_eq!(cfg.router().expect("router").realms[0].store, None);

    let mut v = base();
    w0(&mut v)["realms"][0]["options"] = json!({
        "max_pending_calls_per_session": 3,
        "default_call_timeout": 0,
        "max_call_timeout": 1500,
        "kill_grace": 0,
        "max_retained_topics": 0,
        "max_stored_payload": 1
    });
    let cfg = parse_value(&v).expect("dealer/broker options");
    let o = &cfg.router().expect("router").realms[0].options;
    assert_eq!(
        o.dealer,
        DealerOptions {
            max_pending_calls_per_session: 3,
            default_call_timeout: None,
            max_call_timeout: Some(Duration::from_millis(1500)),
            kill_grace: Duration::ZERO,
        }
    );
    assert_eq!(o.broker, BrokerOptions { max_retained_topics: 0, max_stored_payload: 1 });
}

#[test]
fn dealer_and_broker_option_errors() {
    let op = "workers[0].realms[0].options";
    let errs = errors_of(|v| {
        w0(v)["realms"][0]["options"] = json!({"max_pending_calls_per_session": 0});
    });
    assert_single(&errs, &format!("{op}.max_pending_calls_per_session"), "at least 1");
    let errs = errors_of(|v| {
        w0(v)["realms"][0]["options"] = json!({
            "default_call_timeout": "5s",
            "kill_grace": 86_400_001,
            "max_stored_payload": -1,
            "max_call_timeuot": 5
        });
    });
    assert_eq!(errs.len(), 4, "{errs}");
    assert!(errs.at(&format!("{op}.default_call_timeout")).is_some_and(|e| e.message.contains("milliseconds")));
    assert!(errs.at(&format!("{op}.kill_grace")).is_some_and(|e| e.message.contains("too long")));
    assert!(errs.at(&format!("{op}.max_stored_payload")).is_some_and(|e| e.message.contains("non-negative")));
    assert!(errs
        .at(&format!("{op}.max_call_timeuot"))
        .is_some_and(|e| e.message.contains("did you mean 'max_call_timeout'")));

    // A default longer than the cap is legal (the cap wins) but warned.
    let mut v = base();
    w0(&mut v)["realms"][0]["options"] = json!({"default_call_timeout": 9000, "max_call_timeout": 3000});
    let cfg = parse_value(&v).expect("accepted with a warning");
    assert!(warning_at(&cfg, &format!("{op}.default_call_timeout")).message.contains("cut off at max_call_timeout"));
}

#[test]
fn realm_store_in_crossbar_shape() {
    // The example of Crossbar's Event-History docs.
    let mut v = base();
    w0(&mut v)["realms"][0]["store"] = json!({
        "type": "memory",
        "event-history": [
            {"uri": "com.example.oncounter", "limit": 10000},
            {"uri": "com.example..tick", "match": "wildcard"}
        ]
    });
    let cfg = parse_value(&v).expect("crossbar store");
    let store = cfg.router().expect("router").realms[0].store.clone().expect("store");
    assert_eq!(
        store,
        StoreConfig {
            kind: StoreKind::Memory,
            limit: DEFAULT_EVENT_HISTORY_LIMIT,
            event_history: vec![
                EventHistoryConfig {
                    uri: "com.example.oncounter".into(),
                    match_policy: MatchPolicy::Exact,
                    limit: 10000,
                },
                EventHistoryConfig { uri: "com.example..tick".into(), match_policy: MatchPolicy::Wildcard, limit: 100 },
            ],
        }
    );
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);

    // An empty store is fine; a non-empty call-queue is ignored with a warning.
    w0(&mut v)["realms"][0]["store"] = json!({
        "type": "memory",
        "call-queue": [{"uri": "com.example.compute", "match": "exact", "limit": 10}]
    });
    let cfg = parse_value(&v).expect("store with call-queue");
    let store = cfg.router().expect("router").realms[0].store.clone().expect("store");
    assert!(store.event_history.is_empty());
    assert!(warning_at(&cfg, "workers[0].realms[0].store[\"call-queue\"]").message.contains("no_such_procedure"));
}

#[test]
fn realm_store_errors() {
    let sp = "workers[0].realms[0].store";
    let store_errors = |store: Value| errors_of(|v| w0(v)["realms"][0]["store"] = store);

    let errs = store_errors(json!({
        "type": "cfxdb", "path": "../.testdb", "maxsize": 1_073_741_824,
        "event-history": [{"uri": "com.example.oncounter"}]
    }));
    assert_single(&errs, &format!("{sp}.type"), "not supported by Junction");
    let errs = store_errors(json!({"type": "memroy"}));
    assert_single(&errs, &format!("{sp}.type"), "did you mean 'memory'");
    let errs = store_errors(json!({"limit": 5}));
    assert_single(&errs, &format!("{sp}.type"), "missing required key 'type'");
    // cfxdb keys are not accepted for a memory store.
    let errs = store_errors(json!({"type": "memory", "path": "x"}));
    assert_single(&errs, &format!("{sp}.path"), "unknown key 'path'");
    let errs = store_errors(json!(["memory"]));
    assert_single(&errs, sp, "expected an object");

    let eh = format!("{sp}[\"event-history\"]");
    let errs = store_errors(json!({
        "type": "memory",
        "event-history": [
            {"uri": "com.example.a", "match": "prefx"},
            {"uri": "bad uri"},
            {"uri": "com.example.a2", "limit": 0},
            {"uri": "com.example.b", "limti": 3},
            {"match": "exact"},
            {"uri": "com.example.b"},
            "com.example.c"
        ]
    }));
    let expected = [
        (format!("{eh}[0].match"), "did you mean 'prefix'"),
        (format!("{eh}[1].uri"), "whitespace"),
        (format!("{eh}[2].limit"), "between 1 and 1000000"),
        (format!("{eh}[3].limti"), "did you mean 'limit'"),
        (format!("{eh}[4].uri"), "missing required key 'uri'"),
        (format!("{eh}[5].uri"), "duplicate event-history entry"),
        (format!("{eh}[6]"), "expected an object"),
    ];
    for (loc, needle) in &expected {
        let e = errs.at(loc).unwrap_or_else(|| panic!("no error at {loc}:\n{errs}"));
        assert!(e.message.contains(needle), "{loc}: {}", e.message);
    }
    assert_eq!(errs.len(), expected.len(), "{errs}");

    // A bad store-wide limit is reported once, not again for entries that
    // inherit it.
    let errs = store_errors(json!({
        "type": "memory",
        "limit": 0,
        "event-history": [{"uri": "com.example.a"}, {"uri": "com.example.b", "limit": 2_000_000}]
    }));
    assert_eq!(errs.len(), 2, "{errs}");
    assert!(errs.at(&format!("{sp}.limit")).is_some());
    assert!(errs.at(&format!("{eh}[1].limit")).is_some());
}

#[test]
fn slow_consumer_policy() {
    let limits = |cfg: &NodeConfig| cfg.router().expect("router").transports[0].limits;
    let cfg = parse_value(&base()).expect("base");
    assert_eq!(limits(&cfg).slow_consumer_policy, SlowConsumerPolicy::Close);
    assert_eq!(SlowConsumerPolicy::default(), SlowConsumerPolicy::Close);

    for t in [
        json!({"type": "websocket", "endpoint": {"type": "tcp", "port": 8080},
               "options": {"slow_consumer_policy": "drop"}}),
        json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8080},
               "options": {"slow_consumer_policy": "drop"}}),
        json!({"type": "web", "endpoint": {"type": "tcp", "port": 8080},
               "paths": {"ws": {"type": "websocket"}},
               "options": {"slow_consumer_policy": "drop"}}),
    ] {
        let mut v = base();
        w0(&mut v)["transports"][0] = t.clone();
        let cfg = parse_value(&v).unwrap_or_else(|e| panic!("{t}: {e}"));
        assert_eq!(limits(&cfg).slow_consumer_policy, SlowConsumerPolicy::Drop, "{t}");
        assert_eq!(limits(&cfg).slow_consumer_policy.name(), "drop");
    }
    let mut v = base();
    w0(&mut v)["transports"][0]["options"] = json!({"slow_consumer_policy": "close"});
    let cfg = parse_value(&v).expect("close");
    assert_eq!(limits(&cfg).slow_consumer_policy, SlowConsumerPolicy::Close);

    let errs = errors_of(|v| {
        w0(v)["transports"][0]["options"] = json!({"slow_consumer_policy": "dorp"});
    });
    assert_single(&errs, "workers[0].transports[0].options.slow_consumer_policy", "did you mean 'drop'");
    let errs = errors_of(|v| {
        w0(v)["transports"][0] = json!({
            "type": "web",
            "endpoint": {"type": "tcp", "port": 8080},
            "paths": {"ws": {"type": "websocket", "options": {"slow_consumer_policy": "drop"}}}
        });
    });
    assert_single(&errs, "workers[0].transports[0].paths.ws.options.slow_consumer_policy", "web transport's 'options'");
}

// ---------------------------------------------------------------------------
// Proxy workers, shared endpoints, web services, cryptosign-proxy, node key.

const KEY1: &str = "545efb0a2192db8d43f118e9bf9aee081466e1ef36c708b96ee6f62dddad9122";
const KEY2: &str = "9c194391af3bf566fc11a619e8df200ba02efb35b91bdd98b424f20f4163875e";

/// A router worker (RawSocket backend endpoint with cryptosign-proxy) plus a
/// proxy worker routing realm1 to it.
fn proxy_base() -> Value {
    let mut v = base();
    w0(&mut v)["transports"].as_array_mut().expect("list").push(json!({
        "type": "rawsocket",
        "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": 9000},
        "auth": {"cryptosign-proxy": {"type": "static", "principals": {"node1": {"authorized_keys": [KEY1]}}}}
    }));
    v["workers"].as_array_mut().expect("list").push(json!({
        "type": "proxy",
        "routes": {"realm1": {"anonymous": "r1"}},
        "connections": {
            "r1": {
                "realm": "realm1",
                "transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": 9000}}
            }
        },
        "transports": [{"type": "websocket", "endpoint": {"type": "tcp", "port": 8090}}]
    }));
    v
}

fn w1(v: &mut Value) -> &mut Value {
    &mut v["workers"][1]
}

fn proxy_errors(f: impl FnOnce(&mut Value)) -> ConfigErrors {
    let mut v = proxy_base();
    f(&mut v);
    match parse_value(&v) {
        Ok(_) => panic!("config was accepted:\n{v:#}"),
        Err(e) => e,
    }
}

fn proxy_ok(f: impl FnOnce(&mut Value)) -> NodeConfig {
    let mut v = proxy_base();
    f(&mut v);
    parse_value(&v).unwrap_or_else(|e| panic!("rejected:\n{e}\n{v:#}"))
}

#[test]
fn proxy_worker_defaults() {
    let cfg = proxy_ok(|_| {});
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let proxies: Vec<(usize, &ProxyWorkerConfig)> = cfg.proxies().collect();
    assert_eq!(proxies.len(), 1);
    let (i, p) = proxies[0];
    assert_eq!(i, 1);
    assert_eq!(p.id, None);
    let o = &p.options;
    assert_eq!(o.shards, None);
    assert!(o.pin_cores);
    assert_eq!(o.balance, BalancePolicy::RoundRobin);
    assert_eq!(o.backend_ping_interval, Duration::from_secs(1));
    assert_eq!(o.backend_ping_timeout, Duration::from_secs(3));
    assert_eq!(o.backend_reconnect_max, Duration::from_secs(1));
    assert_eq!(o.backend_max_outbound_bytes, 64 * 1024 * 1024);
    assert!(o.effective_shards() >= 1);
    assert_eq!(
        p.connections.get("r1"),
        Some(&ProxyConnectionConfig {
            realm: "realm1".into(),
            endpoint: BackendEndpoint::Tcp { host: "127.0.0.1".into(), port: 9000, tls: None }
        })
    );
    assert_eq!(p.routes["realm1"]["anonymous"], vec!["r1".to_string()]);
    assert_eq!(p.route("realm1", "anonymous"), Some(&["r1".to_string()][..]));
    assert_eq!(p.route("realm1", "user"), None);
    assert_eq!(p.route("realm2", "anonymous"), None);
    assert_eq!(p.transports.len(), 1);
    assert_eq!(cfg.routers().map(|(i, _)| i).collect::<Vec<_>>(), [0]);
}

#[test]
fn proxy_example_matches_docs_and_parses() {
    let cfg = load(&example("proxy.json")).expect("proxy example");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    assert_eq!(cfg.controller.node_key(), Some(PathBuf::from("key.priv")));
    let proxies: Vec<(usize, &ProxyWorkerConfig)> = cfg.proxies().collect();
    assert_eq!(proxies.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
    let p = proxies[0].1;
    assert_eq!(p.id.as_deref(), Some("proxy1"));
    assert_eq!(p.options.shards, Some(2));
    assert_eq!(p.options.balance, BalancePolicy::LeastSessions);
    assert_eq!(p.options.backend_ping_interval, Duration::from_millis(2000));
    // A single name and a list both become lists; "*" is kept as a role key.
    assert_eq!(p.route("realm1", "anonymous"), Some(&["router1".to_string()][..]));
    assert_eq!(p.route("realm1", "someone"), Some(&["router1".to_string()][..]));
    let t = &p.transports[0];
    assert!(matches!(t.endpoint, Endpoint::Tcp { port: 8080, shared: true, .. }), "{:?}", t.endpoint);
    let TransportKind::Web(web) = &t.kind else {
        panic!("web transport expected");
    };
    let kinds: Vec<&str> = web.paths.values().map(WebService::type_name).collect();
    assert_eq!(kinds, ["static", "websocket", "nodeinfo", "json", "redirect"]);
    let r = cfg.router().expect("router");
    let TransportKind::RawSocket(rs) = &r.transports[0].kind else {
        panic!("rawsocket expected");
    };
    let principals = rs.auth.proxy_principals().expect("cryptosign-proxy");
    assert_eq!(principals["node1"], vec![KEY1.to_string()]);
    assert!(!rs.auth.has_client_methods());
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"))
        .expect("docs/config.md");
    let text = std::fs::read_to_string(example("proxy.json")).expect("example");
    assert!(doc.contains(text.trim_end()), "docs/config.md must contain examples/proxy.json verbatim");
}

#[test]
fn proxy_options_values_and_errors() {
    let cfg = proxy_ok(|v| {
        w1(v)["options"] = json!({
            "shards": 3, "pin_cores": false, "balance": "least_sessions",
            "backend_ping_interval": 500, "backend_ping_timeout": 1500,
            "backend_reconnect_max": 4000, "backend_max_outbound_bytes": 33554432,
            "title": "edge", "cpu_affinity": [0]
        });
    });
    let (_, p) = cfg.proxies().next().expect("proxy");
    let o = &p.options;
    assert_eq!(o.shards, Some(3));
    assert_eq!(o.effective_shards(), 3);
    assert!(!o.pin_cores);
    assert_eq!(o.balance, BalancePolicy::LeastSessions);
    assert_eq!(o.backend_ping_interval, Duration::from_millis(500));
    assert_eq!(o.backend_ping_timeout, Duration::from_millis(1500));
    assert_eq!(o.backend_reconnect_max, Duration::from_millis(4000));
    assert_eq!(o.backend_max_outbound_bytes, 32 * 1024 * 1024);
    assert_eq!(o.title.as_deref(), Some("edge"));
    assert!(warning_at(&cfg, "workers[1].options.cpu_affinity").message.contains("pin_cores"));

    let errs = proxy_errors(|v| w1(v)["options"] = json!({"balance": "round-robin"}));
    assert_single(&errs, "workers[1].options.balance", "did you mean 'round_robin'?");
    let errs = proxy_errors(|v| w1(v)["options"] = json!({"shards": 0}));
    assert_single(&errs, "workers[1].options.shards", "shards must be between 1");
    let errs = proxy_errors(|v| w1(v)["options"] = json!({"backend_ping_timeout": 0}));
    assert_single(&errs, "workers[1].options.backend_ping_timeout", "must be greater than 0");
    let errs = proxy_errors(|v| w1(v)["options"] = json!({"backend_max_outbound_bytes": 1_000_000}));
    assert_single(&errs, "workers[1].options.backend_max_outbound_bytes", "smaller than the largest max_message_size");
    let errs = proxy_errors(|v| w1(v)["options"] = json!({"backend_ping_intervall": 5}));
    assert_single(&errs, "workers[1].options.backend_ping_intervall", "did you mean 'backend_ping_interval'?");
}

#[test]
fn proxy_routes_and_connections_errors() {
    let errs = proxy_errors(|v| w1(v)["routes"]["realm1"]["anonymous"] = json!("r2"));
    assert_single(
        &errs,
        "workers[1].routes.realm1.anonymous",
        "unknown connection 'r2': not in this worker's 'connections' (did you mean 'r1'?)",
    );
    let errs = proxy_errors(|v| w1(v)["routes"]["realm1"]["anonymous"] = json!(["r1", "nope"]));
    assert_single(&errs, "workers[1].routes.realm1.anonymous[1]", "unknown connection 'nope'");
    let errs = proxy_errors(|v| w1(v)["routes"]["realm1"]["anonymous"] = json!([]));
    assert_single(&errs, "workers[1].routes.realm1.anonymous", "no connections listed");
    let errs = proxy_errors(|v| w1(v)["routes"]["realm1"]["anonymous"] = json!(5));
    assert_single(&errs, "workers[1].routes.realm1.anonymous", "expected a connection name or a list");
    // The routed connection must serve the route's realm.
    let errs = proxy_errors(|v| {
        w1(v)["routes"] = json!({"realm1": {"anonymous": "r1"}, "realm2": {"*": "r1"}});
    });
    assert_single(&errs, "workers[1].routes.realm2[\"*\"]", "connection 'r1' serves realm 'realm1', not 'realm2'");
    let errs = proxy_errors(|v| w1(v)["routes"] = json!({"realm1": {}}));
    assert_single(&errs, "workers[1].routes.realm1", "has no routes");
    let errs = proxy_errors(|v| w1(v)["routes"] = json!({}));
    assert_single(&errs, "workers[1].routes", "no routes");
    let errs = proxy_errors(|v| {
        w1(v).as_object_mut().map(|m| m.remove("routes"));
    });
    assert_single(&errs, "workers[1].routes", "missing required key 'routes'");
    let errs = proxy_errors(|v| w1(v)["connections"] = json!({}));
    // The route names a connection that does not exist.
    assert!(errs.at("workers[1].connections").is_some_and(|e| e.message.contains("no connections")), "{errs}");
    assert!(errs.at("workers[1].routes.realm1.anonymous").is_some(), "{errs}");
    let errs = proxy_errors(|v| w1(v)["transports"] = json!([]));
    assert_single(&errs, "workers[1].transports", "no transports: a proxy without transports cannot be reached");
    let errs = proxy_errors(|v| w1(v)["rutes"] = json!({}));
    assert_single(&errs, "workers[1].rutes", "unknown key 'rutes' (did you mean 'routes'?)");

    let conn = "workers[1].connections.r1";
    let errs = proxy_errors(|v| w1(v)["connections"]["r1"]["transport"]["type"] = json!("websocket"));
    assert_single(&errs, &format!("{conn}.transport.type"), "Junction's proxy-to-router link is RawSocket");
    // The connection is dropped, but its routes are not reported again.
    // Link TLS: CA files are required; certificate and key go together.
    let errs = proxy_errors(|v| w1(v)["connections"]["r1"]["transport"]["endpoint"]["tls"] = json!({}));
    assert_single(&errs, &format!("{conn}.transport.endpoint.tls.ca_certificates"), "missing required key");
    let errs = proxy_errors(|v| {
        w1(v)["connections"]["r1"]["transport"]["endpoint"]["tls"] =
            json!({"ca_certificates": ["ca.pem"], "key": "k.pem"})
    });
    assert_single(&errs, &format!("{conn}.transport.endpoint.tls"), "go together");
    let cfg = proxy_ok(|v| {
        w1(v)["connections"]["r1"]["transport"]["endpoint"]["tls"] =
            json!({"ca_certificates": ["ca.pem"], "hostname": "router.example"})
    });
    let Some(WorkerConfig::Proxy(p)) = cfg.workers.get(1) else { panic!("proxy") };
    match &p.connections["r1"].endpoint {
        BackendEndpoint::Tcp { tls: Some(t), .. } => {
            assert_eq!(t.ca_certificates, vec![std::path::PathBuf::from("ca.pem")]);
            assert_eq!(t.hostname.as_deref(), Some("router.example"));
            assert_eq!(t.client_cert, None);
        }
        other => panic!("expected TLS endpoint, got {other:?}"),
    }
    let errs = proxy_errors(|v| w1(v)["connections"]["r1"]["transport"]["endpoint"]["port"] = json!(0));
    assert_single(&errs, &format!("{conn}.transport.endpoint.port"), "port 0 is out of range");
    let errs = proxy_errors(|v| {
        w1(v)["connections"]["r1"]["transport"]["endpoint"].as_object_mut().map(|m| m.remove("host"));
    });
    assert_single(&errs, &format!("{conn}.transport.endpoint.host"), "missing required key 'host'");
    let errs = proxy_errors(|v| {
        w1(v)["connections"]["r1"].as_object_mut().map(|m| m.remove("realm"));
    });
    assert_single(&errs, &format!("{conn}.realm"), "missing required key 'realm'");
    let errs = proxy_errors(|v| w1(v)["connections"]["r1"]["realm"] = json!("realm 1"));
    assert!(errs.at(&format!("{conn}.realm")).is_some_and(|e| e.message.contains("invalid realm name")), "{errs}");
    let errs = proxy_errors(|v| w1(v)["connections"]["r1"]["auth"] = json!({"ticket": {"type": "static"}}));
    assert_single(&errs, &format!("{conn}.auth.ticket"), "only 'cryptosign-proxy'");
    let errs = proxy_errors(|v| w1(v)["connections"]["r1"]["auth"] = json!({"cryptosign-proxy": {"type": "dynamic"}}));
    assert_single(&errs, &format!("{conn}.auth[\"cryptosign-proxy\"].type"), "'dynamic' is not supported");
    let errs = proxy_errors(|v| w1(v)["connections"]["r1"]["relam"] = json!("x"));
    assert_single(&errs, &format!("{conn}.relam"), "did you mean 'realm'?");

    // Unix backends, Crossbar's stray keys (warnings), an unused connection.
    let cfg = proxy_ok(|v| {
        w1(v)["connections"]["r1"]["url"] = json!("rs://localhost");
        w1(v)["connections"]["r1"]["auth"] = json!({"cryptosign-proxy": {"type": "static"}});
        w1(v)["connections"]["spare"] = json!({
            "realm": "realm1",
            "transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "router.sock", "serializer": "cbor"}}
        });
    });
    let (_, p) = cfg.proxies().next().expect("proxy");
    assert_eq!(p.connections["spare"].endpoint, BackendEndpoint::Unix { path: PathBuf::from("router.sock") });
    assert_eq!(p.connections["spare"].endpoint.to_string(), "unix:router.sock");
    assert!(warning_at(&cfg, "workers[1].connections.r1.url").message.contains("ignored"));
    assert!(warning_at(&cfg, "workers[1].connections.spare.transport.endpoint.serializer")
        .message
        .contains("own multiplexed protocol"));
    assert!(warning_at(&cfg, "workers[1].connections.spare").message.contains("not used by any route"));

    // A connection to a router transport of this node that cannot take
    // proxy links is a warning.
    let cfg = proxy_ok(|v| w1(v)["connections"]["r1"]["transport"]["endpoint"]["port"] = json!(8080));
    assert!(warning_at(&cfg, "workers[1].connections.r1")
        .message
        .contains("goes to workers[0].transports[0], which is not a rawsocket transport"));
    let cfg = proxy_ok(|v| {
        w0(v)["transports"][1]["auth"] = json!({"anonymous": {"type": "static"}});
    });
    // Same-node proxies are trusted through the node key: no warning.
    assert!(cfg.warnings.iter().all(|w| w.location != "workers[1].connections.r1"), "{:?}", cfg.warnings);
}

#[test]
fn proxy_transports_are_router_transports() {
    // Web services, TLS, auth and limits work on proxy transports too.
    let cfg = proxy_ok(|v| {
        w1(v)["routes"]["realm1"]["user"] = json!("r1");
        w1(v)["transports"] = json!([{
            "type": "web",
            "endpoint": {"type": "tcp", "port": 8443, "tls": {"key": "k.pem", "certificate": "c.pem"}},
            "options": {"max_connections": 10},
            "paths": {
                "/": {"type": "redirect", "url": "https://example.com/"},
                "ws": {"type": "websocket", "auth": {"ticket": {"type": "static", "principals": {"joe": {"ticket": "x", "role": "user"}}}}}
            }
        }]);
    });
    let (_, p) = cfg.proxies().next().expect("proxy");
    assert_eq!(p.transports[0].limits.max_connections, 10);
    assert!(matches!(&p.transports[0].endpoint, Endpoint::Tcp { tls: Some(_), .. }));
    // Roles are checked against the routes: a role without a route warns.
    let cfg = proxy_ok(|v| {
        w1(v)["transports"][0]["auth"] = json!({"anonymous": {"type": "static", "role": "guest"}});
    });
    assert!(warning_at(&cfg, "workers[1].transports[0].auth.anonymous.role").message.contains("has no route"));
    // cryptosign-proxy belongs on routers.
    let errs = proxy_errors(|v| {
        w1(v)["transports"][0]["auth"] =
            json!({"cryptosign-proxy": {"type": "static", "principals": {"n": {"authorized_keys": [KEY1]}}}});
    });
    assert_single(
        &errs,
        "workers[1].transports[0].auth[\"cryptosign-proxy\"]",
        "it belongs on a router's rawsocket transport",
    );
}

#[test]
fn shared_endpoints_across_workers() {
    let second_proxy = |v: &mut Value, shared_a: bool, shared_b: bool| {
        let mut p2 = w1(v).clone();
        w1(v)["transports"][0]["endpoint"]["shared"] = json!(shared_a);
        p2["transports"][0]["endpoint"]["shared"] = json!(shared_b);
        v["workers"].as_array_mut().expect("list").push(p2);
    };
    let cfg = proxy_ok(|v| second_proxy(v, true, true));
    let ports: Vec<bool> = cfg
        .proxies()
        .map(|(_, p)| matches!(p.transports[0].endpoint, Endpoint::Tcp { port: 8090, shared: true, .. }))
        .collect();
    assert_eq!(ports, [true, true]);
    let errs = proxy_errors(|v| second_proxy(v, true, false));
    assert_single(
        &errs,
        "workers[2].transports[0].endpoint.port",
        "conflicts with tcp:0.0.0.0:8090 of workers[1].transports[0] (proxy workers may share a port when each of them sets 'shared': true)",
    );
    // Shared ports must be configured alike.
    let errs = proxy_errors(|v| {
        second_proxy(v, true, true);
        v["workers"][2]["transports"][0]["serializers"] = json!(["json"]);
    });
    assert_single(&errs, "workers[2].transports[0].endpoint.port", "configured differently");
    // A router never shares, even with shared: true.
    let errs = proxy_errors(|v| {
        w0(v)["transports"][0]["endpoint"]["shared"] = json!(true);
        w1(v)["transports"][0]["endpoint"] = json!({"type": "tcp", "port": 8080, "shared": true});
    });
    assert_single(
        &errs,
        "workers[1].transports[0].endpoint.port",
        "conflicts with tcp:0.0.0.0:8080 of workers[0].transports[0]",
    );
    // Two transports of one proxy cannot share a port.
    let errs = proxy_errors(|v| {
        w1(v)["transports"][0]["endpoint"]["shared"] = json!(true);
        let t = w1(v)["transports"][0].clone();
        w1(v)["transports"].as_array_mut().expect("list").push(t);
    });
    assert_single(&errs, "workers[1].transports[1].endpoint.port", "two transports of one worker cannot share a port");
    // Unix paths conflict across workers too.
    let errs = proxy_errors(|v| {
        w0(v)["transports"][0]["endpoint"] = json!({"type": "unix", "path": "/tmp/j.sock"});
        w1(v)["transports"][0]["endpoint"] = json!({"type": "unix", "path": "/tmp/j.sock"});
    });
    assert_single(&errs, "workers[1].transports[0].endpoint.path", "conflicts with unix:/tmp/j.sock");
    // shared is a boolean.
    let errs = proxy_errors(|v| w1(v)["transports"][0]["endpoint"]["shared"] = json!("yes"));
    assert_single(&errs, "workers[1].transports[0].endpoint.shared", "expected a boolean");
}

fn web_at(v: &mut Value, paths: Value) {
    w0(v)["transports"][0] = json!({"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": paths});
}

fn web_paths(cfg: &NodeConfig) -> &IndexMap<String, WebService> {
    match &cfg.router().expect("router").transports[0].kind {
        TransportKind::Web(w) => &w.paths,
        other => panic!("web expected, got {other:?}"),
    }
}

#[test]
fn web_services_in_crossbar_shape() {
    let mut v = base();
    web_at(
        &mut v,
        json!({
            "/": {"type": "static", "directory": "/srv/www", "options": {
                "enable_directory_listing": true, "cache_timeout": 0, "default_file": "main.html",
                "mime_types": {".wasm": "application/wasm", ".md": "text/markdown; charset=utf-8"}
            }},
            "docs": {"type": "static", "directory": "docs", "options": {"cache_timeout": 60}},
            "go": {"type": "redirect", "url": "https://example.com/x?y=1"},
            "moved": {"type": "redirect", "url": "/new", "options": {"status": 301}},
            "config": {"type": "json", "value": {"a": [1, 2]}, "options": {"prettify": true, "allow_cross_origin": true, "discourage_caching": true}},
            "plain": {"type": "json", "value": "text"},
            "info": {"type": "nodeinfo"},
            "ws": {"type": "websocket"}
        }),
    );
    let cfg = parse_value(&v).expect("valid");
    let paths = web_paths(&cfg);
    let mut mime = IndexMap::new();
    mime.insert(".wasm".to_string(), "application/wasm".to_string());
    mime.insert(".md".to_string(), "text/markdown; charset=utf-8".to_string());
    assert_eq!(
        paths["/"],
        WebService::Static(StaticService {
            directory: PathBuf::from("/srv/www"),
            enable_directory_listing: true,
            mime_types: mime,
            cache_timeout: None,
            default_file: "main.html".into(),
        })
    );
    let WebService::Static(docs) = &paths["docs"] else {
        panic!("static expected");
    };
    assert_eq!(docs.cache_timeout, Some(Duration::from_secs(60)));
    assert_eq!(docs.default_file, "index.html");
    assert!(!docs.enable_directory_listing);
    assert_eq!(
        paths["go"],
        WebService::Redirect(RedirectService { url: "https://example.com/x?y=1".into(), status: 302 })
    );
    assert_eq!(paths["moved"], WebService::Redirect(RedirectService { url: "/new".into(), status: 301 }));
    assert_eq!(
        paths["config"],
        WebService::Json(JsonService {
            value: json!({"a": [1, 2]}),
            prettify: true,
            allow_cross_origin: true,
            discourage_caching: true
        })
    );
    assert_eq!(
        paths["plain"],
        WebService::Json(JsonService {
            value: json!("text"),
            prettify: false,
            allow_cross_origin: false,
            discourage_caching: false
        })
    );
    assert_eq!(paths["info"], WebService::NodeInfo);
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    // A web transport's max_message_size comes from its WebSocket paths only.
    assert_eq!(cfg.router().expect("router").transports[0].max_message_size(), DEFAULT_MAX_MESSAGE_SIZE);
}

#[test]
fn web_service_errors() {
    let p = "workers[0].transports[0].paths";
    let case = |paths: Value| errors_of(|v| web_at(v, paths));
    let errs = case(json!({"/": {"type": "static", "package": "mypkg", "resource": "web"}}));
    assert_single(&errs, &format!("{p}[\"/\"].package"), "not supported: use 'directory'");
    let errs = case(json!({"/": {"type": "static"}}));
    assert_single(&errs, &format!("{p}[\"/\"].directory"), "missing required key 'directory'");
    let errs = case(json!({"/": {"type": "static", "directory": ""}}));
    assert_single(&errs, &format!("{p}[\"/\"].directory"), "must not be empty");
    let errs = case(json!({"s": {"type": "static", "directory": "d", "options": {"default_file": "../x"}}}));
    assert_single(&errs, &format!("{p}.s.options.default_file"), "invalid default_file");
    let errs = case(json!({"s": {"type": "static", "directory": "d", "options": {"mime_types": {".x": "nonsense"}}}}));
    assert_single(&errs, &format!("{p}.s.options.mime_types[\".x\"]"), "invalid media type");
    let errs = case(json!({"s": {"type": "static", "directory": "d", "options": {"mime_types": {".x": 1}}}}));
    assert_single(&errs, &format!("{p}.s.options.mime_types[\".x\"]"), "expected a media type");
    let errs = case(json!({"s": {"type": "static", "directory": "d", "options": {"cache_timeout": -1}}}));
    assert_single(&errs, &format!("{p}.s.options.cache_timeout"), "non-negative");
    let errs = case(json!({"s": {"type": "static", "directory": "d", "options": {"enable_directory_listings": true}}}));
    assert_single(
        &errs,
        &format!("{p}.s.options.enable_directory_listings"),
        "did you mean 'enable_directory_listing'?",
    );
    let errs = case(json!({"r": {"type": "redirect"}}));
    assert_single(&errs, &format!("{p}.r.url"), "missing required key 'url'");
    let errs = case(json!({"r": {"type": "redirect", "url": "/a b"}}));
    assert_single(&errs, &format!("{p}.r.url"), "only visible ASCII");
    let errs = case(json!({"r": {"type": "redirect", "url": "/a", "options": {"status": 200}}}));
    assert_single(&errs, &format!("{p}.r.options.status"), "invalid redirect status 200");
    let errs = case(json!({"j": {"type": "json"}}));
    assert_single(&errs, &format!("{p}.j.value"), "missing required key 'value'");
    let errs = case(json!({"j": {"type": "json", "value": 1, "options": {"pretty": true}}}));
    assert_single(&errs, &format!("{p}.j.options.pretty"), "did you mean 'prettify'?");
    let errs = case(json!({"i": {"type": "nodeinfo", "extra": 1}}));
    assert_single(&errs, &format!("{p}.i.extra"), "unknown key 'extra'");
    for kind in ["resource", "reverseproxy", "caller", "publisher"] {
        let errs = case(json!({"x": {"type": kind}}));
        assert_single(&errs, &format!("{p}.x.type"), &format!("web service '{kind}' is not supported"));
    }
}

#[test]
fn cryptosign_proxy_on_router_rawsocket() {
    let mut v = base();
    rawsocket_at(
        &mut v,
        json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": 9000}, "auth": {
            "cryptosign-proxy": {"type": "static", "principals": {
                "node1": {"authorized_keys": [KEY1.to_ascii_uppercase(), KEY2], "realm": "realm1", "role": "proxy"},
                "node2": {"authorized_keys": [KEY2]}
            }},
            "anonymous": {"type": "static"}
        }}),
    );
    let cfg = parse_value(&v).expect("valid");
    let TransportKind::RawSocket(rs) = &cfg.router().expect("router").transports[0].kind else {
        panic!("rawsocket expected");
    };
    let mut expected = IndexMap::new();
    expected.insert("node1".to_string(), vec![KEY1.to_string(), KEY2.to_string()]);
    expected.insert("node2".to_string(), vec![KEY2.to_string()]);
    assert_eq!(rs.auth.methods[0], AuthMethod::CryptosignProxy { principals: expected.clone() });
    assert_eq!(rs.auth.methods[0].name(), "cryptosign-proxy");
    assert_eq!(rs.auth.proxy_principals(), Some(&expected));
    assert!(rs.auth.has_client_methods());
    assert_eq!(rs.auth.anonymous_role(), Some("anonymous"));
    let at = "workers[0].transports[0].auth[\"cryptosign-proxy\"].principals.node1";
    assert!(warning_at(&cfg, &format!("{at}.role")).message.contains("ignored by Junction"));
    assert!(warning_at(&cfg, &format!("{at}.realm")).message.contains("ignored by Junction"));

    let cp = "workers[0].transports[0].auth[\"cryptosign-proxy\"]";
    let case = |auth: Value| {
        errors_of(|v| {
            rawsocket_at(v, json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": 9000}, "auth": auth}))
        })
    };
    let errs = case(json!({"cryptosign-proxy": {"type": "static", "principals": {"n": {"authorized_keys": ["abc"]}}}}));
    assert_single(&errs, &format!("{cp}.principals.n.authorized_keys[0]"), "expected 64 hex digits");
    let errs = case(json!({"cryptosign-proxy": {"type": "static", "principals": {"n": {"authorized_keys": []}}}}));
    assert_single(&errs, &format!("{cp}.principals.n.authorized_keys"), "at least one authorized key");
    let errs = case(json!({"cryptosign-proxy": {"type": "dynamic", "authenticator": "a.b"}}));
    assert_single(&errs, cp, "authentication method cryptosign-proxy (dynamic) is not supported");
    let errs = case(json!({"cryptosign-proxy": {"type": "static"}}));
    assert_single(&errs, &format!("{cp}.principals"), "missing required key 'principals'");
    let errs = case(json!({"cryptosign-proxy": {"type": "static", "principals": {}, "principal": 1}}));
    assert_single(&errs, &format!("{cp}.principal"), "did you mean 'principals'?");
    // Only on rawsocket transports.
    let errs = errors_of(|v| {
        w0(v)["transports"][0]["auth"] =
            json!({"cryptosign-proxy": {"type": "static", "principals": {"n": {"authorized_keys": [KEY1]}}}});
    });
    assert_single(
        &errs,
        "workers[0].transports[0].auth[\"cryptosign-proxy\"]",
        "only accepted on rawsocket transports: Junction's proxy-to-router link is RawSocket",
    );
}

#[test]
fn node_key_option() {
    let mut v = base();
    v["controller"] = json!({"options": {"node_key": "/etc/junction/node.key", "title": "x"}});
    let cfg = parse_value(&v).expect("valid");
    assert_eq!(cfg.controller.node_key(), Some(PathBuf::from("/etc/junction/node.key")));
    assert_eq!(default_config().controller.node_key(), None);
    let errs = errors_of(|v| v["controller"] = json!({"options": {"node_key": ""}}));
    assert_single(&errs, "controller.options.node_key", "must not be empty");
    let errs = errors_of(|v| v["controller"] = json!({"options": {"node_key": 5}}));
    assert_single(&errs, "controller.options.node_key", "expected a string");
    // validate() on a config built in code checks it too.
    let mut cfg = default_config();
    cfg.controller.options.insert("node_key".into(), json!(""));
    let errs = cfg.validate().expect_err("empty node_key");
    assert_single(&errs, "controller.options.node_key", "non-empty string");
}

fn rlink_json(id: &str) -> Value {
    json!({
        "id": id,
        "realm": "realm1",
        "transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "10.0.0.2", "port": 8081}},
        "forward_local_events": true,
        "forward_remote_events": false,
        "forward_local_invocations": true,
        "forward_remote_invocations": false
    })
}

#[test]
fn rlinks_crossbar_shape_is_accepted() {
    let mut v = base();
    let mut tls = rlink_json("b");
    tls["transport"]["endpoint"]["tls"] = json!({"ca_certificates": ["ca.pem"], "hostname": "node2"});
    tls["ping_interval"] = json!(200);
    tls["ping_timeout"] = json!(900);
    tls["max_queue_bytes"] = json!(2_000_000);
    w0(&mut v)["realms"][0]["rlinks"] = json!([rlink_json("a"), tls, {"id": "c", "realm": "realm1",
        "transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "r3.sock"}}}]);
    let cfg = parse_value(&v).expect("valid");
    let WorkerConfig::Router(r) = &cfg.workers[0] else { panic!("router") };
    let links = &r.realms[0].rlinks;
    assert_eq!(links.len(), 3);
    assert_eq!(links[0].id, "a");
    assert_eq!(links[0].endpoint, BackendEndpoint::Tcp { host: "10.0.0.2".into(), port: 8081, tls: None });
    assert_eq!(links[0].ping_interval, Duration::from_secs(1));
    assert_eq!(links[0].ping_timeout, Duration::from_secs(5));
    assert_eq!(links[0].max_queue_bytes, DEFAULT_RLINK_MAX_QUEUE_BYTES);
    assert!(
        matches!(&links[1].endpoint, BackendEndpoint::Tcp { tls: Some(t), .. } if t.hostname.as_deref() == Some("node2"))
    );
    assert_eq!(links[1].ping_interval, Duration::from_millis(200));
    assert_eq!(links[1].ping_timeout, Duration::from_millis(900));
    assert_eq!(links[1].max_queue_bytes, 2_000_000);
    assert_eq!(links[2].endpoint, BackendEndpoint::Unix { path: "r3.sock".into() });
}

#[test]
fn rlinks_bad_flags_and_shapes_are_rejected_with_reasons() {
    let at = "workers[0].realms[0].rlinks[0]";
    for (key, val, needle) in [
        ("forward_remote_events", json!(true), "never relay"),
        ("forward_remote_invocations", json!(true), "never relay"),
        ("forward_local_events", json!(false), "must be true"),
        ("forward_local_invocations", json!(false), "must be true"),
        ("exclude_authid", json!(["x"]), "not supported"),
        ("realm", json!("other"), "differs from the realm"),
        ("ping_timeout", json!(500), "longer than ping_interval"),
        ("max_queue_bytes", json!(10), "at least 1048576"),
        ("forward", json!(true), "unknown key"),
    ] {
        let errs = errors_of(|v| {
            let mut l = rlink_json("a");
            l[key] = val.clone();
            w0(v)["realms"][0]["rlinks"] = json!([l]);
        });
        assert_eq!(errs.len(), 1, "{key}: {errs}");
        assert!(errs.errors[0].location.starts_with(at), "{key}: {errs}");
        assert!(errs.errors[0].message.contains(needle), "{key}: {errs}");
    }
    let errs = errors_of(|v| w0(v)["realms"][0]["rlinks"] = json!([rlink_json("a"), rlink_json("a")]));
    assert_single(&errs, "workers[0].realms[0].rlinks[1].id", "duplicate rlink id 'a'");
    let errs = errors_of(|v| {
        let mut l = rlink_json("a");
        l["transport"]["type"] = json!("websocket");
        w0(v)["realms"][0]["rlinks"] = json!([l]);
    });
    assert_single(&errs, "workers[0].realms[0].rlinks[0].transport.type", "not supported");
    let errs = errors_of(|v| {
        let mut l = rlink_json("a");
        l.as_object_mut().expect("object").remove("transport");
        w0(v)["realms"][0]["rlinks"] = json!([l]);
    });
    assert_single(&errs, "workers[0].realms[0].rlinks[0].transport", "missing required key 'transport'");
}

#[test]
fn a_realm_on_its_own_parses_and_validates_with_realm_relative_locations() {
    let ok = crate::parse_realm(&serde_json::json!({
        "name": "app-realm1",
        "roles": [{"name": "app-role", "permissions": [{"uri": "com.example.", "match": "prefix",
            "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]}]
    }))
    .expect("valid realm");
    assert_eq!(ok.name, "app-realm1");
    assert_eq!(ok.roles[0].permissions[0].uri, "com.example.");

    let bad = crate::parse_realm(&serde_json::json!({
        "name": "app-realm1",
        "roles": [{"name": "r", "permissions": [{"uri": "com.example.", "match": "sideways"}]}]
    }))
    .expect_err("bad match policy");
    assert!(bad.errors.iter().all(|e| e.location.starts_with("realm")), "{bad}");
    assert!(bad.errors.iter().any(|e| e.location.starts_with("realm.roles[0]")), "{bad}");

    assert!(crate::parse_realm(&serde_json::json!(["not", "an", "object"])).is_err());
    assert!(crate::parse_realm(&serde_json::json!({"roles": []})).is_err(), "a realm needs a name");
}

#[test]
fn a_managed_node_config_reads_controller_fabric_and_may_have_no_workers() {
    let cfg = crate::parse_str(
        r#"{"version": 2, "controller": {"options": {"shutdown": ["shutdown_on_shutdown_requested"]},
            "fabric": {"transport": {"type": "websocket", "endpoint": {"type": "tcp", "host": "10.0.0.1", "port": 9000}},
                       "heartbeat": {"startup_delay": 1, "heartbeat_period": 2}}},
            "workers": []}"#,
        crate::Format::Json,
    )
    .expect("managed node config");
    let f = cfg.controller.fabric.expect("fabric");
    assert_eq!(f.url.as_deref(), Some("ws://10.0.0.1:9000/ws"));
    assert_eq!(f.heartbeat_period, std::time::Duration::from_secs(2));
    assert_eq!(f.startup_delay, std::time::Duration::from_secs(1));

    let bad = crate::parse_str(
        r#"{"version": 2, "controller": {"fabric": {"transport": {"url": "http://x"}, "heartbeat": {"heartbeat_period": 0}}},
            "workers": []}"#,
        crate::Format::Json,
    )
    .expect_err("bad fabric");
    assert!(bad.errors.iter().any(|e| e.location == "controller.fabric.transport.url"), "{bad}");
    assert!(bad.errors.iter().any(|e| e.location == "controller.fabric.heartbeat.heartbeat_period"), "{bad}");
    // Without fabric an empty node is still an error.
    assert!(crate::parse_str(r#"{"version": 2, "workers": []}"#, crate::Format::Json).is_err());
}

#[test]
fn tcp_endpoints_take_a_portrange_instead_of_a_port() {
    let t = crate::parse_router_transport(&serde_json::json!({
        "type": "rawsocket", "endpoint": {"type": "tcp", "portrange": [10000, 10100]}, "serializers": ["cbor"]
    }))
    .expect("portrange");
    assert!(
        matches!(t.endpoint, Endpoint::Tcp { port: 10000, portrange: Some((10000, 10100)), .. }),
        "{:?}",
        t.endpoint
    );
    for bad in [
        serde_json::json!({"type": "tcp", "portrange": [10100, 10000]}),
        serde_json::json!({"type": "tcp", "portrange": [0, 10]}),
        serde_json::json!({"type": "tcp", "portrange": "10000-10100"}),
        serde_json::json!({"type": "tcp", "port": 8080, "portrange": [1, 2]}),
    ] {
        let e = crate::parse_router_transport(&serde_json::json!({"type": "rawsocket", "endpoint": bad}))
            .expect_err("bad portrange");
        assert!(e.errors.iter().any(|x| x.location == "transport.endpoint.portrange"), "{e}");
    }
    assert!(
        crate::parse_router_transport(&serde_json::json!({"type": "rawsocket", "endpoint": {"type": "tcp"}})).is_err()
    );
}
