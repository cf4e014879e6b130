//! Content addresses. Everything in an image is named by the SHA-256 of its
//! bytes, written `sha256:` and 64 lowercase hex digits. A name that is a
//! hash can be checked by anyone who has the bytes, and the same bytes
//! always get the same name, which is what lets images share layers.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Digest {
    // ANCHOR: parse_digest
    // exercise 4.1: accept only well-formed sha256 digests
    // hint: A digest is a content address: the algorithm, a colon, and the hash
    //   in hex. This store speaks sha256 only: "sha256:" and exactly 64 hex
    //   digits. Everything that names a blob passes through here first.
    // hint: Only lowercase a-f: the spec makes the encoding canonical, so one
    //   blob has exactly one name (and one file in blobs/). An error says what
    //   was wrong and quotes the input.
    // hint: The OCI image spec, descriptor.md "Digests" (the grammar, and
    //   "SHA-256" under "Registered algorithms").
    pub fn parse(text: &str) -> Result<Digest, String> {
        let bad = |why: &str| Err(format!("invalid digest {text:?}: {why}"));
        let Some(hex) = text.strip_prefix("sha256:") else {
            return bad("only sha256 digests are supported (sha256:<64 hex digits>)");
        };
        if hex.len() != 64 {
            return bad("a sha256 digest has 64 hex digits");
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return bad("only lowercase hex digits 0-9 a-f are allowed");
        }
        Ok(Digest(text.to_string()))
    }
    // ANCHOR_END: parse_digest

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex(&Sha256::digest(bytes))))
    }

    fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex(&h.finalize())))
    }

    /// The 64 hex digits (a blob's file name in the store).
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short form for people: the first 12 hex digits.
    pub fn short(&self) -> &str {
        &self.hex()[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A reader that hashes and counts what passes through it.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest (so the hash covers every byte), then returns the
    /// digest and the number of bytes.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((Digest::from_hasher(self.hasher), self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    // ANCHOR: hashing_read
    // exercise 4.2: hash a stream while it passes, without holding it
    // hint: A layer is hundreds of megabytes; it is never held in memory to be
    //   hashed. Instead every read passes through: read from the inner reader
    //   into `buf`, feed exactly the bytes that came to the hasher, count them,
    //   and hand the same count on. At the end, finish() has the digest of all.
    // hint: A read may fill less than `buf`: hash &buf[..n], not the whole
    //   buffer. An error is passed on as it is; 0 means the end.
    // hint: std::io::Read::read's contract; sha2's Digest::update. The OCI
    //   image spec, descriptor.md "Verification".
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    // ANCHOR_END: hashing_read
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

// ANCHOR: chain_ids
// exercise 4.4: compute the ChainIDs of a layer stack
// hint: A DiffID names one layer's content; a ChainID names a *stack*: this
//   layer on top of exactly those below. An unpacked layer is only valid on
//   the stack it was unpacked on, so snapshots are kept by ChainID.
// hint: The bottom layer's ChainID is its DiffID. Every next one is the
//   digest of the text "<ChainID of the stack below> <DiffID of this layer>",
//   one space between (Digest::of on the bytes of that text).
// hint: The OCI image spec, config.md "Layer ChainID".
/// The ChainID of a layer stack (OCI image spec, config.md): the first
/// layer's is its DiffID; each next one is the digest of the text
/// "<ChainID below> <DiffID>". It names a *stack*, so a layer unpacked on
/// top of a given stack is unpacked once, whatever image brought it.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(below) => Digest::of(format!("{below} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}
// ANCHOR_END: chain_ids

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_of_nothing_is_the_well_known_one() {
        assert_eq!(
            Digest::of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
