//! Network namespace: its own interfaces, addresses, routes and ports. A new
//! one holds a single interface, the loopback `lo`, and even that starts
//! down. Connecting it to the world (veth pairs, a bridge, NAT) comes with
//! the engine's networking; here the container is simply offline.

use std::io;

// ANCHOR: loopback_up
// exercise 1.15: bring up `lo` in the new network namespace
// builds on: 1.14
// hint: A new network namespace has one interface, lo, and even that is down:
//   nothing inside could reach 127.0.0.1. Setting a flag on an interface is
//   an ioctl on any socket (an AF_INET datagram socket will do), with a
//   struct ifreq that names the interface.
// hint: Read the flags first (SIOCGIFFLAGS), OR in IFF_UP, write them back
//   (SIOCSIFFLAGS): writing IFF_UP alone would clear the others. ifr_name is a
//   fixed array of c_char ending in NUL; close the socket on every path. This
//   runs in the cloned child: no allocation, only system calls.
// hint: netdevice(7) "SIOCGIFFLAGS, SIOCSIFFLAGS"; network_namespaces(7).
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
