//! Helpers shared by this chapter's test files.

/// An uncompressed layer tar holding one regular file `name`.
pub fn one_file_layer(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, name, content).unwrap();
    b.into_inner().unwrap()
}
