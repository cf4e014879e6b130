//! Network namespace: its own interfaces, addresses, routes and ports. A new
//! one holds a single interface, the loopback `lo`, and even that starts
//! down. Connecting it to the world (veth pairs, a bridge, NAT) comes with
//! the engine's networking; here the container is simply offline.

use std::io;

// ANCHOR: loopback_up
// exercise 1.6: bring up `lo` in the new network namespace
// hint: Any socket works as a handle for interface ioctls: socket(AF_INET, SOCK_DGRAM).
// hint: Read the flags with SIOCGIFFLAGS into a libc::ifreq naming "lo", OR in
// hint: IFF_UP, write them back with SIOCSIFFLAGS, close the socket.
// hint: This runs in the child: no allocation, only system calls.
/// Sets `IFF_UP` on `lo`. Async-signal-safe: it runs in the cloned child.
pub fn loopback_up() -> io::Result<()> {
    // SAFETY: plain system calls on a socket we own; `ifreq` is a C struct for
    // which all-zero bytes are a valid value.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut result = Ok(());
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) < 0 {
            result = Err(io::Error::last_os_error());
        } else {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) < 0 {
                result = Err(io::Error::last_os_error());
            }
        }
        libc::close(sock);
        result
    }
}
// ANCHOR_END: loopback_up
