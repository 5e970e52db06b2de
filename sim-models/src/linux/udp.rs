//! UDP sockets: bind, connect, send, receive, and the ICMP errors Linux
//! reports to them (a connected socket that got ICMP port unreachable fails
//! its next send or receive with ECONNREFUSED, once: `__udp4_lib_err` sets
//! sk_err, the next call returns and clears it).
//!
//! Datagrams leave with DF set when they fit the route's MTU and are
//! fragmented locally when not, as with Linux's default
//! IP_PMTUDISC_WANT (net.ipv4.ip_no_pmtu_disc=0).

use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::packet::{Header, Packet, Payload};
use sim_core::time::SimTime;
use sim_core::trace::TraceEvent;
use sim_core::wire::{IpProtocol, UdpRepr};

use crate::linux::socket::{Endpoint, Errno};
use crate::linux::stack::LocalError;
use crate::linux::traffic::{SockEvent, SockRef};
use crate::linux::{Cx, NsId, World};

/// A UDP socket.
#[derive(Clone, Debug)]
pub struct UdpSock {
    pub ns: NsId,
    /// The bound address (0.0.0.0: any) and port.
    pub local: Endpoint,
    /// connect()ed peer.
    pub remote: Option<Endpoint>,
    pub owner: Option<usize>,
    pub by: Arc<str>,
    label: Arc<str>,
    /// This socket initiated the exchange (a client): listed in the flows.
    pub active: bool,
    /// sk_err: reported by the next send or receive, then cleared.
    pub pending_error: Option<Errno>,
    /// The last error a call returned.
    pub last_error: Option<Errno>,
    pub sent_dgrams: u64,
    pub sent_bytes: u64,
    pub rcvd_dgrams: u64,
    pub rcvd_bytes: u64,
    /// Sends that failed with ECONNREFUSED.
    pub refused_sends: u64,
    pub opened_at: SimTime,
    pub last_at: SimTime,
    pub closed: bool,
}

impl UdpSock {
    /// `UDP socket 10.0.0.2:9999 (nc)`.
    pub fn label(&self) -> Arc<str> {
        self.label.clone()
    }
}

impl World {
    /// socket() + bind() (+ connect()): a UDP socket on `addr:port` (an
    /// ephemeral port if None; the source address routing picks towards
    /// `connect`, if given and `addr` is None).
    pub fn udp_open(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        owner: usize,
        by: &str,
        addr: Option<Ipv4Addr>,
        port: Option<u16>,
        connect: Option<Endpoint>,
    ) -> Result<u32, Errno> {
        let addr = match (addr, connect) {
            (Some(a), _) => {
                if !a.is_unspecified() && !self.is_local_addr(ns, a) {
                    return Err(Errno::AddrNotAvail);
                }
                a
            }
            (None, Some(c)) => self.route_info(ns, c.addr, None)?.src,
            (None, None) => Ipv4Addr::UNSPECIFIED,
        };
        if let Some(c) = connect {
            // connect() looks the route up and fails without one.
            self.route_info(ns, c.addr, Some(addr).filter(|a| !a.is_unspecified()))?;
        }
        let port = match port {
            Some(p) => {
                if let Some(v) = self.sockets.udp_ports.get(&(ns, p))
                    && v.iter().any(|&u| {
                        let l = self.sockets.udp[u as usize].local.addr;
                        !self.sockets.udp[u as usize].closed
                            && (l.is_unspecified() || addr.is_unspecified() || l == addr)
                    })
                {
                    return Err(Errno::AddrInUse);
                }
                p
            }
            None => self.ephemeral_port(ns, true).ok_or(Errno::AddrNotAvail)?,
        };
        let local = Endpoint::new(addr, port);
        let i = self.sockets.udp.len() as u32;
        let by: Arc<str> = by.into();
        self.sockets.udp.push(UdpSock {
            ns,
            local,
            remote: connect,
            owner: Some(owner),
            label: Arc::from(format!("UDP socket {local} ({by})")),
            by,
            active: connect.is_some(),
            pending_error: None,
            last_error: None,
            sent_dgrams: 0,
            sent_bytes: 0,
            rcvd_dgrams: 0,
            rcvd_bytes: 0,
            refused_sends: 0,
            opened_at: cx.now,
            last_at: cx.now,
            closed: false,
        });
        self.sockets
            .udp_ports
            .entry((ns, port))
            .or_default()
            .push(i);
        Ok(i)
    }

    /// connect() on an existing socket (nc -u -l answering its first peer).
    pub fn udp_connect(&mut self, sock: u32, to: Endpoint) {
        self.sockets.udp[sock as usize].remote = Some(to);
    }

    pub fn udp_close(&mut self, sock: u32) {
        let u = &mut self.sockets.udp[sock as usize];
        if u.closed {
            return;
        }
        u.closed = true;
        let key = (u.ns, u.local.port);
        if let Some(v) = self.sockets.udp_ports.get_mut(&key) {
            v.retain(|&x| x != sock);
            if v.is_empty() {
                self.sockets.udp_ports.remove(&key);
            }
        }
    }

    /// send() / sendto(): one datagram. A pending error (ECONNREFUSED from
    /// an earlier ICMP port unreachable) fails this call and is cleared.
    pub fn udp_send(
        &mut self,
        cx: &mut Cx,
        sock: u32,
        to: Option<Endpoint>,
        payload: Payload,
    ) -> Result<(), Errno> {
        let i = sock as usize;
        let u = &mut self.sockets.udp[i];
        if let Some(e) = u.pending_error.take() {
            u.last_error = Some(e);
            if e == Errno::ConnRefused {
                u.refused_sends += 1;
            }
            return Err(e);
        }
        let Some(dst) = to.or(u.remote) else {
            return Err(Errno::Inval);
        };
        let ns = u.ns;
        let src = if u.local.addr.is_unspecified() {
            self.route_info(ns, dst.addr, None)?.src
        } else {
            u.local.addr
        };
        let mtu = self
            .route_info(ns, dst.addr, Some(src))
            .map(|r| r.mtu)
            .unwrap_or(1500);
        let len = payload.len();
        let df = (len + 28) as u32 <= mtu;
        let u = &mut self.sockets.udp[i];
        let (sport, by) = (u.local.port, u.by.clone());
        let iph = self.new_ip(ns, src, dst.addr, IpProtocol::Udp, df, None);
        let id = self.next_packet_id();
        let pkt = Packet {
            id,
            headers: vec![
                Header::Ipv4(iph),
                Header::Udp(UdpRepr {
                    src_port: sport,
                    dst_port: dst.port,
                    checksum: true,
                }),
            ],
            payload,
        };
        let place = self.namespaces[ns.ix()].node;
        self.trace(cx, place, id, || TraceEvent::Originate {
            by,
            summary: pkt.summary_arc(),
            dst: Some(dst.addr),
        });
        let r = self.ip_send(cx, ns, pkt, None);
        let u = &mut self.sockets.udp[i];
        u.last_at = cx.now;
        match r {
            Ok(()) => {
                u.sent_dgrams += 1;
                u.sent_bytes += len as u64;
                Ok(())
            }
            Err(e) => {
                let e = match e {
                    LocalError::NetUnreachable => Errno::NetUnreach,
                    LocalError::HostUnreachable => Errno::HostUnreach,
                    LocalError::NotPermitted => Errno::Perm,
                    LocalError::MessageTooLong { .. } => Errno::MsgSize,
                    LocalError::Invalid => Errno::Inval,
                };
                u.last_error = Some(e);
                Err(e)
            }
        }
    }

    /// Delivers a datagram to a socket of `ns` (__udp4_lib_rcv): a
    /// connected socket whose peer sent it first, else one bound to the
    /// port and the address (or any address). False if none.
    pub(crate) fn udp_sock_rcv(&mut self, cx: &mut Cx, ns: NsId, pkt: &Packet) -> bool {
        let (Some(Header::Ipv4(h)), Some(Header::Udp(u))) =
            (pkt.headers.first(), pkt.headers.get(1))
        else {
            return false;
        };
        let from = Endpoint::new(h.src, u.src_port);
        let to = Endpoint::new(h.dst, u.dst_port);
        let Some(cands) = self.sockets.udp_ports.get(&(ns, to.port)) else {
            return false;
        };
        let matches_addr = |s: &UdpSock| s.local.addr.is_unspecified() || s.local.addr == to.addr;
        let pick = cands
            .iter()
            .copied()
            .find(|&c| {
                let s = &self.sockets.udp[c as usize];
                matches_addr(s) && s.remote == Some(from)
            })
            .or_else(|| {
                cands.iter().copied().find(|&c| {
                    let s = &self.sockets.udp[c as usize];
                    matches_addr(s) && s.remote.is_none()
                })
            });
        let Some(sock) = pick else { return false };
        let i = sock as usize;
        let place = self.namespaces[ns.ix()].node;
        let label = self.sockets.udp[i].label.clone();
        self.trace(cx, place, pkt.id, || TraceEvent::Deliver { to: label });
        let s = &mut self.sockets.udp[i];
        s.rcvd_dgrams += 1;
        s.rcvd_bytes += pkt.payload.len() as u64;
        s.last_at = cx.now;
        if let Some(app) = s.owner {
            self.app_sock_event(
                cx,
                app,
                SockRef::Udp(sock),
                SockEvent::Datagram {
                    from,
                    to,
                    payload: pkt.payload.clone(),
                },
            );
        }
        true
    }

    /// The socket an ICMP error about a datagram from `local` to `remote` is for.
    pub(crate) fn udp_find(&self, ns: NsId, local: Endpoint, remote: Endpoint) -> Option<u32> {
        let cands = self.sockets.udp_ports.get(&(ns, local.port))?;
        cands.iter().copied().find(|&c| {
            let s = &self.sockets.udp[c as usize];
            (s.local.addr.is_unspecified() || s.local.addr == local.addr)
                && s.remote.is_none_or(|r| r == remote)
        })
    }

    /// An ICMP error quoting one of our datagrams (__udp4_lib_err): a hard
    /// error on a connected socket becomes its pending error (without
    /// IP_RECVERR, unconnected sockets and soft errors are not told).
    pub(crate) fn udp_icmp_error(&mut self, cx: &mut Cx, sock: u32, ty: u8, code: u8) {
        let s = &mut self.sockets.udp[sock as usize];
        let (err, hard) = match (ty, code) {
            (3, 2) | (3, 3) => (Errno::ConnRefused, true),
            (3, 4) => (Errno::MsgSize, false),
            (3, 0) => (Errno::NetUnreach, false),
            (3, 9) | (3, 10) | (3, 13) => (Errno::HostUnreach, true),
            _ => (Errno::HostUnreach, false),
        };
        if hard && s.remote.is_some() {
            s.pending_error = Some(err);
            if let Some(app) = s.owner {
                self.app_sock_event(cx, app, SockRef::Udp(sock), SockEvent::Error(err));
            }
        }
    }
}
