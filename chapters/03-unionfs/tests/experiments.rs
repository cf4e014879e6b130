//! The experiments of `cargo run -p chapter-03 -- …` run and show what they
//! promise. Not graded.

use testkit::{fixture, privileged};

const BIN: &str = env!("CARGO_BIN_EXE_chapter-03");

#[test]
fn experiments_show_copy_on_write() {
    if !privileged("experiments_show_copy_on_write") {
        return;
    }
    fixture::rootfs();
    let expect: [(&[&str], &str); 5] = [
        (&["cow"], "(the image is unchanged)"),
        (&["whiteout"], "whiteout (char device 0:0)"),
        (&["share", "--containers", "3"], "upper layers together"),
        (&["startup", "--runs", "2"], "slower than overlay"),
        (&["diff"], ".wh.home"),
    ];
    testkit::assert_experiments_show(BIN, &expect);
}
