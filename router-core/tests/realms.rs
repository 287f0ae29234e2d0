//! Realms started and stopped at run time on a real `RouterNode` (glommio
//! shards, real TCP listener), driven by hand-written RawSocket/JSON client
//! sessions: a realm that does not exist is refused, starts and is joined,
//! sessions on other realms are untouched by a stop, a stopped realm's
//! sessions get GOODBYE `wamp.close.system_shutdown` and new joins get
//! `wamp.error.no_such_realm`, and a realm can be started again under the
//! same name.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use router_core::runtime::setup::RealmSetup;
use router_core::runtime::{EndpointSetup, RealmError, RouterNode};
use wamp_framing::rawsocket::{self, FrameKind, RawSocketDecoder, RawSocketEvent};
use wamp_proto::{Dict, Message, Payload, RequestId, Serializer, Value};

fn start_router(shards: usize) -> (RouterNode, u16) {
    let cfg = format!(
        r#"{{
        "version": 2,
        "workers": [{{
            "type": "router",
            "options": {{"shards": {shards}, "pin_cores": false}},
            "realms": [{{"name": "realm1", "roles": [
                {{"name": "anonymous", "permissions": [{{"uri": "", "match": "prefix",
                  "allow": {{"call": true, "register": true, "publish": true, "subscribe": true}}}}]}}
            ]}}],
            "transports": [{{"type": "rawsocket", "endpoint": {{"type": "tcp", "interface": "127.0.0.1", "port": 1}}}}]
        }}]
    }}"#
    );
    let cfg = junction_config::parse_str(&cfg, junction_config::Format::Json).expect("config");
    let mut setup = router_core::setup_from_config(&cfg).expect("setup");
    if let EndpointSetup::Tcp { addr, .. } = &mut setup.transports[0].endpoint {
        addr.set_port(0);
    }
    let node = RouterNode::start(setup).expect("router starts");
    let port = match &node.endpoints[0] {
        EndpointSetup::Tcp { addr, .. } => addr.port(),
        other => panic!("unexpected endpoint {other}"),
    };
    (node, port)
}

/// A realm whose role `anonymous` may do everything, from its config form.
fn realm(name: &str) -> RealmSetup {
    let cfg = junction_config::parse_realm(&serde_json::json!({"name": "placeholder", "roles": [
        {"name": "anonymous", "permissions": [{"uri": "", "match": "prefix",
          "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]}]}))
    .expect("realm config");
    let mut r = router_core::runtime::from_config::realm_setup(&cfg, "w", std::path::Path::new(".")).expect("setup");
    // Set afterwards so that invalid names reach the router's own check.
    r.name = name.into();
    r
}

struct Client {
    sock: TcpStream,
    dec: RawSocketDecoder,
}

impl Client {
    fn connect(port: u16) -> Client {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        sock.write_all(&rawsocket::client_handshake(Serializer::Json, 1 << 20)).expect("write");
        let mut reply = [0u8; 4];
        sock.read_exact(&mut reply).expect("handshake reply");
        rawsocket::parse_server_reply(reply).expect("accepted");
        Client { sock, dec: RawSocketDecoder::new(1 << 20) }
    }

    fn send(&mut self, m: &Message) {
        let mut out = Vec::new();
        rawsocket::write_frame(&mut out, FrameKind::Message, &Serializer::Json.encode(m).expect("encode"));
        self.sock.write_all(&out).expect("write");
    }

    /// The next message; `None` once the router closed the connection.
    fn recv(&mut self) -> Option<Message> {
        loop {
            match self.dec.poll_event() {
                Ok(Some(RawSocketEvent::Message(p))) => return Some(Serializer::Json.decode(&p).expect("decode")),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => panic!("framing: {e}"),
            }
            let mut buf = [0u8; 65536];
            match self.sock.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.dec.feed(&buf[..n]),
            }
        }
    }

    /// HELLO to `realm`: WELCOME, or the ABORT reason.
    fn join(port: u16, realm: &str) -> Result<Client, String> {
        let mut c = Client::connect(port);
        let mut roles = Dict::new();
        roles.insert("subscriber".into(), Value::Dict(Dict::new()));
        roles.insert("caller".into(), Value::Dict(Dict::new()));
        let mut details = Dict::new();
        details.insert("roles".into(), Value::Dict(roles));
        c.send(&Message::Hello { realm: realm.into(), details });
        match c.recv() {
            Some(Message::Welcome { .. }) => Ok(c),
            Some(Message::Abort { reason, .. }) => Err(reason),
            other => panic!("expected WELCOME or ABORT, got {other:?}"),
        }
    }

    /// `wamp.session.count` on the session's realm.
    fn session_count(&mut self) -> u64 {
        self.send(&Message::Call {
            request: RequestId::from_valid(1),
            options: Dict::new(),
            procedure: "wamp.session.count".into(),
            payload: Payload::EMPTY,
        });
        match self.recv() {
            Some(Message::Result { payload, .. }) => {
                let (args, _) = payload.to_values().expect("values");
                args.and_then(|a| a.first().and_then(Value::as_u64)).expect("count")
            }
            other => panic!("expected RESULT, got {other:?}"),
        }
    }
}

#[test]
fn realms_start_and_stop_at_run_time() {
    let (node, port) = start_router(2);
    assert_eq!(node.realm_names(), ["realm1"]);
    assert_eq!(Client::join(port, "tenant-a").err().as_deref(), Some("wamp.error.no_such_realm"));

    node.start_realm(realm("tenant-a")).expect("starts");
    assert_eq!(node.start_realm(realm("tenant-a")), Err(RealmError::Exists("tenant-a".into())));
    node.start_realm(realm("tenant-b")).expect("a second one starts");
    assert_eq!(node.realm_names(), ["realm1", "tenant-a", "tenant-b"]);

    let mut a1 = Client::join(port, "tenant-a").expect("joins the new realm");
    let mut a2 = Client::join(port, "tenant-a").expect("joins the new realm");
    let mut b = Client::join(port, "tenant-b").expect("joins the other new realm");
    let mut r1 = Client::join(port, "realm1").expect("the start-up realm still works");
    assert_eq!(a1.session_count(), 2);
    assert_eq!(b.session_count(), 1);

    assert_eq!(node.stop_realm("tenant-a"), Ok(2));
    for c in [&mut a1, &mut a2] {
        match c.recv() {
            Some(Message::Goodbye { reason, .. }) => assert_eq!(reason, "wamp.close.system_shutdown"),
            other => panic!("expected GOODBYE, got {other:?}"),
        }
    }
    assert_eq!(Client::join(port, "tenant-a").err().as_deref(), Some("wamp.error.no_such_realm"));
    assert_eq!(node.stop_realm("tenant-a"), Err(RealmError::NoSuchRealm("tenant-a".into())));
    // The other realms are untouched.
    assert_eq!(b.session_count(), 1);
    assert_eq!(r1.session_count(), 1);
    assert_eq!(node.realm_names(), ["realm1", "tenant-b"]);

    // Started again under the same name: a fresh, empty realm.
    node.start_realm(realm("tenant-a")).expect("starts again");
    let mut a3 = Client::join(port, "tenant-a").expect("joins the restarted realm");
    assert_eq!(a3.session_count(), 1);

    // A realm from the start-up config can be stopped too.
    assert_eq!(node.stop_realm("realm1"), Ok(1));
    assert_eq!(Client::join(port, "realm1").err().as_deref(), Some("wamp.error.no_such_realm"));
}

#[test]
fn invalid_realms_are_refused() {
    let (node, _) = start_router(1);
    assert!(matches!(node.start_realm(realm("bad realm")), Err(RealmError::Invalid(_))));
    assert!(matches!(node.start_realm(realm("")), Err(RealmError::Invalid(_))));
    let mut r = realm("linked");
    r.rlinks.push(router_core::runtime::rlink::RLinkSetup {
        id: "l1".into(),
        realm: "linked".into(),
        addr: router_core::runtime::dial::DialAddr::Tcp { host: "127.0.0.1".into(), port: 9 },
        tls: None,
        name: "w".into(),
        ping_interval: Duration::from_secs(1),
        ping_timeout: Duration::from_secs(5),
        reconnect_max: Duration::from_secs(5),
        max_queue_bytes: 1 << 24,
    });
    // No node key: the worker cannot prove itself to peers.
    assert!(matches!(node.start_realm(r), Err(RealmError::Invalid(_))));
    assert_eq!(node.realm_names(), ["realm1"]);
}

#[test]
fn roles_are_added_and_removed_at_run_time() {
    let (node, port) = start_router(2);
    let mut r = realm("tenant-r");
    let open = r.roles.remove(0);
    assert!(r.roles.is_empty());
    node.start_realm(r).expect("a realm with no roles yet");
    let refused = Client::join(port, "tenant-r").err().expect("no role to join under");
    assert!(refused.starts_with("wamp.error."), "{refused}");
    node.set_realm_role("tenant-r", open.clone()).expect("role added");
    assert_eq!(node.realm_roles("tenant-r").expect("roles"), ["anonymous"]);
    let mut c = Client::join(port, "tenant-r").expect("joins under the new role");
    assert_eq!(c.session_count(), 1);
    // Replacing keeps one role of that name.
    node.set_realm_role("tenant-r", open).expect("replaced");
    assert_eq!(node.realm_roles("tenant-r").expect("roles"), ["anonymous"]);
    assert_eq!(node.remove_realm_role("tenant-r", "anonymous"), Ok(1));
    match c.recv() {
        Some(Message::Goodbye { reason, .. }) => assert_eq!(reason, "wamp.close.system_shutdown"),
        other => panic!("expected GOODBYE, got {other:?}"),
    }
    assert!(Client::join(port, "tenant-r").is_err(), "the role is gone");
    assert!(matches!(node.remove_realm_role("tenant-r", "anonymous"), Err(RealmError::NoSuchRole { .. })));
    assert!(matches!(node.set_realm_role("nope", realm("x").roles.remove(0)), Err(RealmError::NoSuchRealm(_))));
}

#[test]
fn transports_start_and_stop_at_run_time() {
    let (node, port) = start_router(2);
    let before = node.transports().len();
    let t = junction_config::parse_router_transport(&serde_json::json!({
        "id": "tnp_new", "type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "portrange": [20000, 40000]}
    }))
    .expect("transport config");
    let setup = router_core::runtime::from_config::transport_setup(before, &t, [7; 32], std::path::Path::new("."))
        .expect("setup");
    let (index, endpoint) = node.start_transport(setup.clone(), Vec::new()).expect("starts");
    assert_eq!(index, before);
    let new_port = match endpoint {
        EndpointSetup::Tcp { addr, .. } => addr.port(),
        other => panic!("{other}"),
    };
    assert!((20000..=40000).contains(&new_port), "a port of the range: {new_port}");
    assert_ne!(new_port, port);
    assert!(node.start_transport(setup, Vec::new()).is_err(), "the id is taken");
    // Sessions on the new transport share the realm with the old one.
    let mut a = Client::join(new_port, "realm1").expect("joins over the new transport");
    let mut b = Client::join(port, "realm1").expect("and over the old one");
    assert_eq!(a.session_count(), 2);
    node.stop_transport("tnp_new").expect("stops");
    assert!(node.stop_transport("tnp_new").is_err(), "stopped already");
    // No new connections; the established session stays.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", new_port)).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the stopped transport still accepts");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.session_count(), 2);
    assert_eq!(b.session_count(), 2);
    let live: Vec<bool> =
        node.transports().iter().map(|t| t.stopped.load(std::sync::atomic::Ordering::Relaxed)).collect();
    assert_eq!(live.last(), Some(&true));
}
