//! Docker's stream multiplexing. Without a TTY, a container has two output
//! streams but an attach or a log request has one connection, so each chunk
//! travels in a frame: an 8-byte header (stream: 0 stdin, 1 stdout,
//! 2 stderr; three zero bytes; the payload length as a big-endian u32) and
//! then the payload. With a TTY there is one stream and bytes go raw.

/// Which stream a frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

// ANCHOR: frame_header
// exercise 6.2: the 8-byte header of a multiplexed frame
// hint: Byte 0 is the stream number (Stream as u8), bytes 1..4 are zero, bytes 4..8
// hint: are the payload length as a big-endian u32 (u32::to_be_bytes).
pub fn frame_header(stream: Stream, len: u32) -> [u8; 8] {
    let mut header = [0u8; 8];
    header[0] = stream as u8;
    header[4..].copy_from_slice(&len.to_be_bytes());
    header
}
// ANCHOR_END: frame_header

/// Header and payload, split into frames of at most 4 GiB - 1 each.
pub fn frame(stream: Stream, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    for chunk in payload.chunks(u32::MAX as usize) {
        out.extend_from_slice(&frame_header(stream, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
    out
}

/// Takes one whole frame off the front of `buf`, if one has arrived:
/// (stream number, payload). A client reads into `buf` and calls this
/// until it returns `None`.
pub fn next_frame(buf: &mut Vec<u8>) -> Option<(u8, Vec<u8>)> {
    if buf.len() < 8 {
        return None;
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if buf.len() < 8 + len {
        return None;
    }
    let stream = buf[0];
    let payload = buf[8..8 + len].to_vec();
    buf.drain(..8 + len);
    Some((stream, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_pieces() {
        let mut wire = frame(Stream::Stdout, b"hello\n");
        wire.extend(frame(Stream::Stderr, b"oops"));
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for byte in wire {
            buf.push(byte);
            while let Some(f) = next_frame(&mut buf) {
                got.push(f);
            }
        }
        assert_eq!(got, vec![(1, b"hello\n".to_vec()), (2, b"oops".to_vec())]);
    }
}
