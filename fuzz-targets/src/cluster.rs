//! Router-to-router cluster messages (router-core's `PeerMsg`), the body of
//! every `LinkFrame::Peer` a peer router worker sends.

use bytes::Bytes;
use router_core::engine::cluster::PeerMsg;

/// `PeerMsg::decode` of one PEER frame body. Checks: a message that decodes
/// re-encodes, and the encoding is a fixpoint (decode → encode gives the
/// same bytes again).
pub fn peer_msg(data: &[u8]) {
    let Ok(msg) = PeerMsg::decode(&Bytes::copy_from_slice(data)) else { return };
    let first = match msg.encode() {
        Ok(b) => b,
        Err(e) => panic!("a decoded peer message does not re-encode: {e} ({msg:?})"),
    };
    let again = match PeerMsg::decode(&first) {
        Ok(m) => m,
        Err(e) => panic!("our encoding of a decoded peer message does not decode: {e}"),
    };
    let second = again.encode().expect("re-encoding a decoded peer message");
    assert_eq!(first, second, "encode(decode(encode(m))) != encode(m)");
    let mut into = vec![1, 2, 3];
    again.encode_into(&mut into).expect("encode_into");
    assert_eq!(&into[3..], &second[..], "encode_into differs from encode");
}
