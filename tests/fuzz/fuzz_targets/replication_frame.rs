//! Fuzz target of the replication frame decoder (`microlith::cluster::frame`): the payload
//! of a frame whose checksum matched, i.e. whatever bytes a peer (or a damaged link) makes
//! rkyv validate; and the same bytes read from a link as a whole frame.
//!
//! Properties: no panic; a payload that decodes re-encodes to a frame that `read` gives back
//! equal; reading raw bytes off a link ends in a frame or an error.

#![no_main]

use futures_lite::future::block_on;
use libfuzzer_sys::fuzz_target;
use microlith::cluster::frame::{self, Frame};

const MAX: usize = 1 << 20;

fn read_all(mut wire: &[u8]) -> Result<Frame, frame::FrameError> {
    block_on(frame::read(&mut wire, MAX))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = frame::decode_payload(data) {
        let wire = frame::encode(&f).expect("a decoded frame encodes");
        let back = read_all(&wire).expect("an encoded frame reads back");
        assert_eq!(back, f);
    }
    let _ = read_all(data);
});
