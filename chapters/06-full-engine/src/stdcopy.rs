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
pub fn frame_header(stream: Stream, len: u32) -> [u8; 8] {
    let mut header = [0u8; 8];
    header[0] = stream as u8;
    header[4..].copy_from_slice(&len.to_be_bytes());
    header
}
// ANCHOR_END: frame_header

// ANCHOR: frame
// exercise 6.7: multiplex a chunk of output into frames
// builds on: 6.6
// hint: Without a TTY a container has two output streams but a client has
//   one connection, so each chunk travels in a frame: an 8-byte header,
//   then the payload. The header is byte 0 the stream (Stream as u8), bytes
//   1..4 zero, bytes 4..8 the payload's length as a big-endian u32.
// hint: A length field of 32 bits carries at most u32::MAX bytes: a bigger
//   chunk becomes several frames (chunks of u32::MAX). An empty payload
//   makes no frame. frame_header builds the 8 bytes.
// hint: The Docker Engine API reference, "Attach to a container", the part
//   "Stream format" (header := [8]byte{STREAM_TYPE, 0, 0, 0, SIZE1, ...}).
/// Header and payload, split into frames of at most 4 GiB - 1 each.
pub fn frame(stream: Stream, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    for chunk in payload.chunks(u32::MAX as usize) {
        out.extend_from_slice(&frame_header(stream, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
    out
}
// ANCHOR_END: frame

// ANCHOR: next_frame
// exercise 6.8: demultiplex: take one whole frame off a byte buffer
// builds on: 6.7
// hint: A client reads the connection in whatever pieces arrive and appends
//   them to `buf`; this takes a frame off the front once all of it is there:
//   8 header bytes, then as many payload bytes as the header says. Return
//   (stream number, payload) and remove those bytes from `buf`.
// hint: Until 8 bytes are there, or until the whole payload is, return None
//   and leave `buf` as it is: the rest is still on its way. The length is
//   bytes 4..8, big-endian.
// hint: The Docker Engine API reference, "Stream format" ("Read 8 bytes,
//   choose stdout or stderr depending on the first byte, extract the frame
//   size from the last four bytes, read the extracted size and output it").
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
// ANCHOR_END: next_frame

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
