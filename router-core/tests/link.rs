//! The router side of proxy links over real sockets: a real `RouterNode`
//! (glommio shards, real TCP listener) and a hand-driven link client using
//! the `wamp_framing::link` codec — the proof exchange (trusted, untrusted,
//! forged), sessions on channels (WELCOME, pub/sub between two channels,
//! forwarded identity), refusals (unknown role, wrong realm), and the
//! cleanup when the link closes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use cluster_membership::NodeKey;
use router_core::runtime::dial::DialAddr;
use router_core::runtime::rlink::{RLinkError, RLinkSetup, RLinkState};
use router_core::runtime::{EndpointSetup, RouterNode};
use wamp_framing::link::{self, ChannelId, LinkFrame, LinkHello, OpenRequest};
use wamp_framing::rawsocket::{RawSocketDecoder, RawSocketEvent};
use wamp_proto::{Dict, Message, Payload, RequestId, Serializer, Value};

fn start_router(trusted: &[&NodeKey]) -> (RouterNode, u16) {
    start_router_with(trusted, None)
}

struct LinkClient {
    sock: TcpStream,
    dec: RawSocketDecoder,
}

impl LinkClient {
    fn connect(port: u16) -> LinkClient {
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        LinkClient { sock, dec: RawSocketDecoder::new(1 << 24) }
    }

    /// Link handshake; the router's reply.
    fn handshake(&mut self) -> Result<usize, String> {
        self.sock.write_all(&link::client_handshake(1 << 24)).expect("write");
        let mut reply = [0u8; 4];
        self.sock.read_exact(&mut reply).map_err(|e| e.to_string())?;
        link::parse_server_reply(reply)
    }

    fn send(&mut self, f: &LinkFrame) {
        let mut out = Vec::new();
        f.write(&mut out);
        self.sock.write_all(&out).expect("write");
    }

    /// The next link frame; `None` when the router closed the connection.
    fn recv(&mut self) -> Option<LinkFrame> {
        loop {
            match self.dec.poll_event() {
                Ok(Some(RawSocketEvent::Message(p))) => return Some(LinkFrame::decode(p).expect("link frame")),
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

    /// Handshake + proof with `key` for `realm`: `Ok` on ACCEPT, `Err(reason)` on REFUSE.
    fn authenticate(&mut self, key: &NodeKey, realm: &str, forge: bool) -> Result<(), (String, String)> {
        self.handshake().expect("link handshake accepted");
        let hello = LinkHello {
            realm: realm.into(),
            key: key.public_bytes(),
            name: "test-proxy".into(),
            peer: None,
            ping_ms: None,
        };
        self.send(&LinkFrame::Hello(hello.encode()));
        let c = match self.recv() {
            Some(LinkFrame::Challenge(c)) => c,
            Some(LinkFrame::Refuse(body)) => return Err(link::decode_refuse(&body)),
            other => panic!("expected CHALLENGE, got {other:?}"),
        };
        let mut sig = key.sign(&link::proof_message(&c));
        if forge {
            sig[0] ^= 1;
        }
        self.send(&LinkFrame::Proof(sig));
        match self.recv() {
            Some(LinkFrame::Accept(_)) => Ok(()),
            Some(LinkFrame::Refuse(body)) => Err(link::decode_refuse(&body)),
            other => panic!("expected ACCEPT or REFUSE, got {other:?}"),
        }
    }

    fn open(&mut self, ch: u32, authid: &str, authrole: &str, realm: &str) {
        let mut transport = Dict::new();
        transport.insert("peer".into(), Value::from("tcp4:10.1.2.3:4567"));
        transport.insert("type".into(), Value::from("websocket"));
        let mut roles = Dict::new();
        for r in ["publisher", "subscriber", "caller", "callee"] {
            roles.insert(r.into(), Value::Dict(Dict::new()));
        }
        let mut hello = Dict::new();
        hello.insert("roles".into(), Value::Dict(roles));
        let req = OpenRequest {
            realm: realm.into(),
            authid: authid.into(),
            authrole: authrole.into(),
            authmethod: "ticket".into(),
            authprovider: "static".into(),
            authextra: Dict::new(),
            hello_details: hello,
            transport,
            serializer: Serializer::Json,
            session: None,
        };
        self.send(&LinkFrame::Open { channel: ChannelId(ch), body: req.encode() });
    }

    fn data(&mut self, ch: u32, msg: &Message) {
        let bytes = Serializer::Json.encode(msg).expect("encode");
        self.send(&LinkFrame::Data { channel: ChannelId(ch), bytes });
    }

    /// Next DATA frame's message (skipping nothing else: a CLOSE is returned as `None`).
    fn next_message(&mut self) -> (u32, Option<Message>) {
        match self.recv() {
            Some(LinkFrame::Data { channel, bytes }) => {
                (channel.0, Some(Serializer::Json.decode(&bytes).expect("json")))
            }
            Some(LinkFrame::Close { channel }) => (channel.0, None),
            other => panic!("expected DATA or CLOSE, got {other:?}"),
        }
    }
}

#[test]
fn untrusted_and_forged_keys_are_refused_and_trusted_key_is_accepted() {
    let trusted = NodeKey::generate();
    let stranger = NodeKey::generate();
    let (_node, port) = start_router(&[&trusted]);

    let mut c = LinkClient::connect(port);
    let (reason, message) = c.authenticate(&stranger, "realm1", false).expect_err("untrusted key refused");
    assert_eq!(reason, "wamp.error.not_authorized");
    assert!(message.contains("not trusted"), "{message}");
    assert!(c.recv().is_none(), "router closes after REFUSE");

    let mut c = LinkClient::connect(port);
    let (reason, message) = c.authenticate(&trusted, "realm1", true).expect_err("forged proof refused");
    assert_eq!(reason, "wamp.error.not_authorized");
    assert!(message.contains("signature"), "{message}");

    let mut c = LinkClient::connect(port);
    let (reason, _) = c.authenticate(&trusted, "nosuchrealm", false).expect_err("unknown realm refused");
    assert_eq!(reason, "wamp.error.no_such_realm");

    let mut c = LinkClient::connect(port);
    c.authenticate(&trusted, "realm1", false).expect("trusted key accepted");
}

#[test]
fn router_without_trusted_keys_refuses_the_link_handshake() {
    let (_node, port) = start_router(&[]);
    let mut c = LinkClient::connect(port);
    let err = c.handshake().expect_err("refused");
    assert!(err.contains("does not accept proxy links"), "{err}");
}

#[test]
fn channels_are_sessions_with_the_forwarded_identity() {
    let key = NodeKey::generate();
    let (_node, port) = start_router(&[&key]);
    let mut c = LinkClient::connect(port);
    c.authenticate(&key, "realm1", false).expect("accepted");

    // Two sessions on one link.
    c.open(1, "alice", "user", "realm1");
    c.open(2, "bob", "user", "realm1");
    let mut welcomed = std::collections::HashMap::new();
    for _ in 0..2 {
        match c.next_message() {
            (ch, Some(Message::Welcome { session, details })) => {
                assert_eq!(details.get("authrole").and_then(Value::as_str), Some("user"));
                let authid = details.get("authid").and_then(Value::as_str).map(str::to_owned);
                welcomed.insert(ch, (session, authid));
            }
            other => panic!("expected WELCOME, got {other:?}"),
        }
    }
    assert_eq!(welcomed[&1].1.as_deref(), Some("alice"));
    assert_eq!(welcomed[&2].1.as_deref(), Some("bob"));
    assert_ne!(welcomed[&1].0, welcomed[&2].0, "distinct session ids");

    // bob subscribes, alice publishes with acknowledge; bob gets the EVENT
    // with alice's identity disclosed.
    c.data(2, &Message::Subscribe { request: RequestId::from_valid(1), options: Dict::new(), topic: "com.t".into() });
    let (ch, m) = c.next_message();
    assert_eq!(ch, 2);
    assert!(matches!(m, Some(Message::Subscribed { .. })), "{m:?}");
    let mut opts = Dict::new();
    opts.insert("acknowledge".into(), Value::Bool(true));
    opts.insert("disclose_me".into(), Value::Bool(true));
    opts.insert("exclude_me".into(), Value::Bool(false));
    c.data(
        1,
        &Message::Publish {
            request: RequestId::from_valid(7),
            options: opts,
            topic: "com.t".into(),
            payload: Payload::Values { args: Some(vec![Value::from("hi")]), kwargs: None },
        },
    );
    let mut got_event = false;
    let mut got_published = false;
    for _ in 0..2 {
        match c.next_message() {
            (2, Some(Message::Event { details, payload, .. })) => {
                assert_eq!(details.get("publisher_authid").and_then(Value::as_str), Some("alice"));
                let (args, _) = payload.to_values().expect("payload");
                assert_eq!(args, Some(vec![Value::from("hi")]));
                got_event = true;
            }
            (1, Some(Message::Published { .. })) => got_published = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got_event && got_published);

    // GOODBYE on channel 1: the router answers GOODBYE and closes the channel.
    c.data(1, &Message::Goodbye { details: Dict::new(), reason: "wamp.close.close_realm".into() });
    assert!(matches!(c.next_message(), (1, Some(Message::Goodbye { .. }))));
    assert_eq!(c.next_message(), (1, None));
}

#[test]
fn bad_opens_are_refused_per_channel_without_dropping_the_link() {
    let key = NodeKey::generate();
    let (_node, port) = start_router(&[&key]);
    let mut c = LinkClient::connect(port);
    c.authenticate(&key, "realm1", false).expect("accepted");

    c.open(5, "mallory", "admin", "realm1");
    match c.next_message() {
        (5, Some(Message::Abort { reason, .. })) => assert_eq!(reason, "wamp.error.no_such_role"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert_eq!(c.next_message(), (5, None));

    c.open(6, "eve", "user", "realm2");
    match c.next_message() {
        (6, Some(Message::Abort { reason, .. })) => assert_eq!(reason, "wamp.error.no_such_realm"),
        other => panic!("expected ABORT, got {other:?}"),
    }
    assert_eq!(c.next_message(), (6, None));

    // Garbage OPEN body and DATA for an unknown channel: refused / ignored.
    c.send(&LinkFrame::Open { channel: ChannelId(7), body: Bytes::from_static(b"not json") });
    assert!(matches!(c.next_message(), (7, Some(Message::Abort { .. }))));
    assert_eq!(c.next_message(), (7, None));
    c.send(&LinkFrame::Data { channel: ChannelId(99), bytes: Bytes::from_static(b"[1]") });

    // The link still works.
    c.open(8, "alice", "user", "realm1");
    assert!(matches!(c.next_message(), (8, Some(Message::Welcome { .. }))));
}

#[test]
fn refused_links_do_not_lock_out_a_trusted_proxy_on_the_same_host() {
    let trusted = NodeKey::generate();
    let stranger = NodeKey::generate();
    let (_node, port) = start_router(&[&trusted]);
    // Far more refusals than any failed-authentication budget allows.
    for _ in 0..25 {
        let mut c = LinkClient::connect(port);
        c.authenticate(&stranger, "realm1", false).expect_err("untrusted key refused");
    }
    let mut c = LinkClient::connect(port);
    c.authenticate(&trusted, "realm1", false).expect("the trusted proxy still gets in");
}

/// A router whose node key is `key` (it trusts it too), on a free port.
fn start_keyed_router(key: &NodeKey) -> (RouterNode, u16) {
    start_router_with(&[key], Some(key.clone()))
}

fn start_router_with(trusted: &[&NodeKey], node_key: Option<NodeKey>) -> (RouterNode, u16) {
    let cfg = r#"{
        "version": 2,
        "workers": [{
            "type": "router",
            "options": {"shards": 2, "pin_cores": false},
            "realms": [{"name": "realm1", "roles": [
                {"name": "user", "permissions": [{"uri": "", "match": "prefix",
                  "allow": {"call": true, "register": true, "publish": true, "subscribe": true},
                  "disclose": {"caller": true, "publisher": true}}]}
            ]}],
            "transports": [{"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": 1}}]
        }]
    }"#;
    let cfg = junction_config::parse_str(cfg, junction_config::Format::Json).expect("config");
    let mut setup = router_core::setup_from_config(&cfg).expect("setup");
    setup.trusted_proxy_keys = trusted.iter().map(|k| k.public_bytes()).collect();
    setup.node_key = node_key;
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

fn rlink_to(id: &str, realm: &str, port: u16) -> RLinkSetup {
    RLinkSetup {
        id: id.into(),
        realm: realm.into(),
        addr: DialAddr::Tcp { host: "127.0.0.1".into(), port },
        tls: None,
        name: "worker-a".into(),
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_secs(2),
        reconnect_max: Duration::from_millis(500),
        max_queue_bytes: 1 << 24,
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}: not within 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `wamp.session.count` from a session opened on channel `ch` of a link to `port`.
fn session_count(key: &NodeKey, port: u16) -> u64 {
    let mut c = LinkClient::connect(port);
    c.authenticate(key, "realm1", false).expect("accepted");
    c.open(1, "counter", "user", "realm1");
    assert!(matches!(c.next_message(), (1, Some(Message::Welcome { .. }))));
    let call = Message::Call {
        request: RequestId::from_valid(1),
        options: Dict::new(),
        procedure: "wamp.session.count".into(),
        payload: Payload::EMPTY,
    };
    c.data(1, &call);
    match c.next_message() {
        (1, Some(Message::Result { payload, .. })) => {
            let (args, _) = payload.to_values().expect("values");
            args.and_then(|a| a.first().and_then(Value::as_u64)).expect("count")
        }
        other => panic!("expected RESULT, got {other:?}"),
    }
}

#[test]
fn router_links_start_sync_and_stop_at_run_time() {
    let key = NodeKey::generate();
    let (a, _) = start_keyed_router(&key);
    let (b, pb) = start_keyed_router(&key);
    assert_ne!(a.instance, b.instance);

    assert!(matches!(a.start_rlink(rlink_to("l1", "nosuch", pb)), Err(RLinkError::NoSuchRealm(_))));
    assert!(matches!(a.stop_rlink("realm1", "l1"), Err(RLinkError::NoSuchLink { .. })));
    a.start_rlink(rlink_to("l1", "realm1", pb)).expect("start");
    assert!(matches!(a.start_rlink(rlink_to("l1", "realm1", pb)), Err(RLinkError::Exists { .. })));
    wait_until("link up and synced", || {
        a.rlinks("realm1").expect("status").first().is_some_and(|s| s.state == RLinkState::Up && s.synced)
    });
    let st = &a.rlinks("realm1").expect("status")[0];
    assert_eq!(st.peer_instance, Some(b.instance));
    assert_eq!(st.ups, 1);
    wait_until("B sees A", || b.peers("realm1").expect("peers").iter().any(|p| p.instance == a.instance && p.synced));
    assert!(!b.peers("realm1").expect("peers")[0].dialed_here);

    // A session held on B is counted on A (a ghost), and the other way round.
    let mut holder = LinkClient::connect(pb);
    holder.authenticate(&key, "realm1", false).expect("accepted");
    holder.open(7, "held", "user", "realm1");
    assert!(matches!(holder.next_message(), (7, Some(Message::Welcome { .. }))));
    let pa = match &a.endpoints[0] {
        EndpointSetup::Tcp { addr, .. } => addr.port(),
        other => panic!("unexpected endpoint {other}"),
    };
    wait_until("the session on B is counted on A", || session_count(&key, pa) == 2);

    // Stopping the link drops it on both sides; the ghost goes.
    a.stop_rlink("realm1", "l1").expect("stop");
    wait_until("link stopped", || a.rlinks("realm1").expect("status")[0].state == RLinkState::Stopped);
    wait_until("B lost A", || b.peers("realm1").expect("peers").is_empty());
    wait_until("no ghost on A", || session_count(&key, pa) == 1);
    assert!(a.cluster.links_up.load(std::sync::atomic::Ordering::Relaxed) >= 1);

    // Started again under the same id: it links up again.
    a.start_rlink(rlink_to("l1", "realm1", pb)).expect("restart");
    wait_until("relinked", || a.peers("realm1").expect("peers").len() == 1);
    wait_until("the session on B is counted on A again", || session_count(&key, pa) == 2);
}

#[test]
fn a_router_without_a_node_key_cannot_start_links() {
    let key = NodeKey::generate();
    let (a, _) = start_router_with(&[&key], None);
    let (_b, pb) = start_keyed_router(&key);
    assert_eq!(a.start_rlink(rlink_to("l1", "realm1", pb)), Err(RLinkError::NoNodeKey));
}

#[test]
fn two_workers_linking_each_other_keep_one_link() {
    let key = NodeKey::generate();
    let (a, pa) = start_keyed_router(&key);
    let (b, pb) = start_keyed_router(&key);
    a.start_rlink(rlink_to("to-b", "realm1", pb)).expect("a→b");
    b.start_rlink(rlink_to("to-a", "realm1", pa)).expect("b→a");
    // Both sides keep the same single link (whichever the lower instance
    // admitted first), and it stays: no second link replaces it.
    wait_until("one synced link each, the same one", || {
        let (pa_, pb_) = (a.peers("realm1").expect("peers"), b.peers("realm1").expect("peers"));
        pa_.len() == 1 && pb_.len() == 1 && pa_[0].synced && pb_[0].synced && pa_[0].dialed_here != pb_[0].dialed_here
    });
    let kept = a.peers("realm1").expect("peers")[0].dialed_here;
    std::thread::sleep(Duration::from_millis(500));
    let (pa_, pb_) = (a.peers("realm1").expect("peers"), b.peers("realm1").expect("peers"));
    assert_eq!((pa_.len(), pb_.len()), (1, 1));
    assert_eq!(pa_[0].dialed_here, kept, "the kept link was not replaced");
    assert_eq!(pb_[0].dialed_here, !kept);
    let ups: Vec<u64> = [&a, &b].iter().map(|n| n.rlinks("realm1").expect("status")[0].ups).collect();
    assert!(ups.iter().sum::<u64>() == 1, "exactly one link came up: {ups:?}");
    let states: Vec<RLinkState> = [&a, &b].iter().map(|n| n.rlinks("realm1").expect("status")[0].state).collect();
    assert!(states.contains(&RLinkState::Up) && states.contains(&RLinkState::Standby), "{states:?}");
    // A link to itself is parked.
    a.start_rlink(rlink_to("self", "realm1", pa)).expect("self");
    wait_until("self link parked", || {
        a.rlinks("realm1").expect("status").iter().any(|s| s.id == "self" && s.state == RLinkState::SelfLink)
    });
    assert_eq!(a.peers("realm1").expect("peers").len(), 1);
}
