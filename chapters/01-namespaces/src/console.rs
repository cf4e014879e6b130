//! A terminal of the container's own (`-t`). The pseudo-terminal is made
//! *inside* the container, from the `/dev/ptmx` of the devpts instance its
//! `/dev` mounted, so `/dev/pts/0` in the container names the terminal its
//! programs hold (`tty`, `ttyname(3)`, `ssh`, `sudo` look it up there) and
//! the host's devpts is never visible.
//!
//! The master end has to reach the runtime outside: it travels over a unix
//! socket as an `SCM_RIGHTS` message (see unix(7)), as runc's
//! `--console-socket` does. The slave end becomes the command's stdin,
//! stdout and stderr.
//!
//! [`make_console`] runs in the cloned child (and in `docker exec`'s helper),
//! so it is only system calls on stack memory; [`receive_console`] is the
//! runtime's side.

use nix::errno::Errno;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

fn check(rc: libc::c_int) -> Result<libc::c_int, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

/// Sends the descriptor `fd` over the unix socket `socket` (one byte of
/// data, the descriptor in the control message). Async-signal-safe.
pub fn send_fd(socket: RawFd, fd: RawFd) -> Result<(), Errno> {
    // Room for one cmsghdr and one int, aligned for cmsghdr.
    let mut control = [0u64; 4];
    let mut byte = [0u8; 1];
    // SAFETY: every pointer is to stack memory that lives through the call;
    // CMSG_* compute offsets within `control`, which is large enough for one
    // descriptor (CMSG_SPACE(4) is 24 bytes on 64-bit Linux).
    unsafe {
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        if libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(Errno::last());
        }
    }
    Ok(())
}

/// Makes a pseudo-terminal from `/dev/ptmx` as the caller's mount namespace
/// sees it, sized `rows` × `cols` (0: leave the kernel's), sends its master
/// over `socket`, and makes its slave descriptors 0, 1 and 2. Returns
/// nothing but errors; async-signal-safe (it runs in the cloned child).
pub fn make_console(socket: RawFd, rows: u16, cols: u16) -> Result<(), Errno> {
    // SAFETY: plain system calls on descriptors this function opens, and on
    // stack values that outlive each call.
    unsafe {
        let master = check(libc::open(
            c"/dev/ptmx".as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        ))?;
        let result = (|| {
            let unlock: libc::c_int = 0;
            check(libc::ioctl(master, libc::TIOCSPTLCK, &unlock))?;
            // TIOCGPTPEER (Linux 4.13) opens the slave from the master: no
            // path to build, and no way to be handed another terminal.
            let slave = check(libc::ioctl(
                master,
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY,
            ))?;
            if rows > 0 && cols > 0 {
                let size = libc::winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                };
                check(libc::ioctl(slave, libc::TIOCSWINSZ, &size))?;
            }
            send_fd(socket, master)?;
            for target in 0..3 {
                check(libc::dup2(slave, target))?;
            }
            if slave > 2 {
                libc::close(slave);
            }
            Ok(())
        })();
        libc::close(master);
        result
    }
}

/// The runtime's side: waits for the master a [`make_console`] sent. It
/// may allocate, so nix's recvmsg does the control-message work here (the
/// child's [`send_fd`] may not, and builds its message by hand).
pub fn receive_console(socket: RawFd) -> std::io::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!(RawFd);
    let msg = recvmsg::<()>(
        socket,
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let fd = msg.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
        _ => None,
    });
    match fd {
        // SAFETY: the kernel just installed this descriptor for us.
        Some(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        None => Err(std::io::Error::other(
            "the container sent no terminal (its setup ended before the console step)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_descriptor_crosses_a_socket() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        send_fd(a.as_raw_fd(), file.as_raw_fd()).unwrap();
        let got = receive_console(b.as_raw_fd()).unwrap();
        let path = std::fs::read_link(format!("/proc/self/fd/{}", got.as_raw_fd())).unwrap();
        assert_eq!(path, std::path::PathBuf::from("/dev/null"));
        drop(a);
        assert!(
            receive_console(b.as_raw_fd()).is_err(),
            "EOF: no descriptor"
        );
    }
}
