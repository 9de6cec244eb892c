//! Batched datagram I/O: `recvmmsg`/`sendmmsg`, many datagrams per system call.
//!
//! Most of srvd's `unsafe` lives here, wrapped in [`Batch`], which owns every buffer the
//! kernel writes to or reads from for the duration of each call (the rest: raising the
//! open-files limit in `server`, `malloc_trim` in `memory`).

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest datagram read; larger ones are flagged truncated and dropped.
pub const MAX_DATAGRAM: usize = 4096;

/// Receive buffers, source addresses and replies of one batch.
pub struct Batch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    lens: Vec<usize>,
    count: usize,
    /// Reply for datagram i (empty: none).
    pub replies: Vec<Vec<u8>>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            bufs: vec![0; BATCH * MAX_DATAGRAM],
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            addrs: vec![unsafe { zeroed() }; BATCH],
            addr_lens: vec![0; BATCH],
            lens: vec![0; BATCH],
            count: 0,
            replies: (0..BATCH).map(|_| Vec::with_capacity(512)).collect(),
        }
    }
}

impl Batch {
    /// Number of datagrams received by the last `recv`.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Datagram `i` of the last `recv` (empty if it was truncated).
    pub fn datagram(&self, i: usize) -> &[u8] {
        &self.bufs[i * MAX_DATAGRAM..i * MAX_DATAGRAM + self.lens[i]]
    }

    /// The source address of datagram `i` (where its reply goes).
    pub fn peer(&self, i: usize) -> Peer {
        Peer {
            addr: self.addrs[i],
            len: self.addr_lens[i],
        }
    }

    /// Receive up to [`BATCH`] datagrams: blocks for the first (up to the socket's read
    /// timeout), then takes whatever else is already queued.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        // SAFETY: iovec/mmsghdr are plain old data; zero is valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                // SAFETY: i * MAX_DATAGRAM < bufs.len(); the pointer stays inside the buffer.
                iov_base: unsafe { base.add(i * MAX_DATAGRAM) }.cast(),
                iov_len: MAX_DATAGRAM,
            };
            let hdr = &mut msgs[i].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
        }
        // SAFETY: every pointer in msgs points into self.bufs / self.addrs / iovs, which
        // outlive the call; vlen matches the array length.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, msg) in msgs.iter().enumerate().take(n) {
            let truncated = msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[i] = if truncated { 0 } else { msg.msg_len as usize };
            self.addr_lens[i] = msg.msg_hdr.msg_namelen;
            self.replies[i].clear();
        }
        self.count = n;
        Ok(n)
    }

    /// Send every non-empty reply back to the datagram's source. Errors drop the reply (a
    /// datagram server never blocks on one client).
    pub fn send(&mut self, fd: RawFd) {
        // SAFETY: plain old data; zero is valid.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        let mut pending = 0;
        for i in 0..self.count {
            if self.replies[i].is_empty() {
                continue;
            }
            iovs[pending] = libc::iovec {
                iov_base: self.replies[i].as_mut_ptr().cast(),
                iov_len: self.replies[i].len(),
            };
            let hdr = &mut msgs[pending].msg_hdr;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = self.addr_lens[i];
            hdr.msg_iov = &mut iovs[pending];
            hdr.msg_iovlen = 1;
            pending += 1;
        }
        let mut sent = 0;
        while sent < pending {
            // SAFETY: msgs[sent..pending] point into self.replies / self.addrs / iovs, all
            // alive for the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs.as_mut_ptr().add(sent),
                    (pending - sent) as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                // Skip the datagram that failed (e.g. an unreachable source) and go on.
                sent += 1;
            } else {
                sent += n as usize;
            }
        }
    }
}

/// A datagram's source address, kept to answer it later.
#[derive(Clone, Copy)]
pub struct Peer {
    addr: libc::sockaddr_storage,
    len: libc::socklen_t,
}

// SAFETY: sockaddr_storage is plain old data with no pointers.
unsafe impl Send for Peer {}

impl Peer {
    /// The source's IP address.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match i32::from(self.addr.ss_family) {
            libc::AF_INET => {
                // SAFETY: the kernel wrote a sockaddr_in here (family AF_INET).
                let v4 = unsafe { &*(&self.addr as *const _ as *const libc::sockaddr_in) };
                Some(std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)).into())
            }
            libc::AF_INET6 => {
                // SAFETY: the kernel wrote a sockaddr_in6 here (family AF_INET6).
                let v6 = unsafe { &*(&self.addr as *const _ as *const libc::sockaddr_in6) };
                Some(std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr).into())
            }
            _ => None,
        }
    }
}

/// Send one datagram to `peer` without blocking (dropped if the socket buffer is full).
pub fn send_one(fd: RawFd, bytes: &[u8], peer: &Peer) {
    // SAFETY: `bytes` and `peer.addr` are valid for the duration of the call; `len` is the
    // length the kernel gave for this address.
    unsafe {
        libc::sendto(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT,
            (&peer.addr as *const libc::sockaddr_storage).cast(),
            peer.len,
        );
    }
}
