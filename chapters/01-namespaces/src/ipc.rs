//! IPC namespace: System V semaphores, message queues and shared memory, and
//! POSIX message queues, are named by keys that are global to a namespace.
//! A new IPC namespace starts empty: nothing the host created is visible,
//! and nothing created inside leaks out. There is no setup step; the
//! `CLONE_NEWIPC` flag is the whole mechanism.
//!
//! [`HostQueue`] creates a queue on the host for the experiment and tests to
//! look for from inside, and removes it again when dropped.

use std::io;

/// A SysV message queue created on the host; removed on drop.
pub struct HostQueue {
    id: libc::c_int,
    key: libc::key_t,
}

impl HostQueue {
    /// Creates a fresh queue under `key` (fails if that key is taken).
    pub fn create(key: libc::key_t) -> io::Result<HostQueue> {
        // SAFETY: msgget takes plain integers and returns an id or -1.
        let id = unsafe { libc::msgget(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
        if id < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(HostQueue { id, key })
    }

    pub fn key(&self) -> libc::key_t {
        self.key
    }
}

impl Drop for HostQueue {
    fn drop(&mut self) {
        // SAFETY: IPC_RMID ignores the buffer argument.
        unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
    }
}

/// The keys of the SysV message queues visible in this process's IPC
/// namespace, read from `/proc/sysvipc/msg`.
pub fn visible_queue_keys() -> io::Result<Vec<i64>> {
    let text = std::fs::read_to_string("/proc/sysvipc/msg")?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect())
}
