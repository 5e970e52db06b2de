//! Connection tracking: tuples, the per-namespace table, the TCP state
//! machine, timeouts in simulated time, and `conntrack -L` output.
//!
//! Entries expire lazily: a lookup that finds an expired entry removes it,
//! and every 1024 insertions the table is swept. `conntrack -L` lists live
//! entries in creation order (the kernel lists them in hash order, which is
//! not reproducible).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sim_core::time::{SimDuration, SimTime};

/// Conntrack status bits (IPS_*).
pub const S_SEEN_REPLY: u32 = 1 << 1;
pub const S_ASSURED: u32 = 1 << 2;
pub const S_CONFIRMED: u32 = 1 << 3;
pub const S_SRC_NAT: u32 = 1 << 4;
pub const S_DST_NAT: u32 = 1 << 5;
pub const S_NAT_MASK: u32 = S_SRC_NAT | S_DST_NAT;
pub const S_SRC_NAT_DONE: u32 = 1 << 7;
pub const S_DST_NAT_DONE: u32 = 1 << 8;

/// A connection tuple. For ICMP, `sport` is the identifier and `dport` is
/// `type << 8 | code`; for protocols without ports both are 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tuple {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

/// The order a derived `Ord` gives (fields in order, addresses by their
/// octets), compared as integers: an address's octets compare as its
/// big-endian `u32` does, without the byte-slice comparison.
impl Ord for Tuple {
    #[inline]
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (
            u32::from(self.src),
            u32::from(self.dst),
            self.proto,
            self.sport,
            self.dport,
        )
            .cmp(&(
                u32::from(o.src),
                u32::from(o.dst),
                o.proto,
                o.sport,
                o.dport,
            ))
    }
}

impl PartialOrd for Tuple {
    #[inline]
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// ICMP query types and their replies (the kernel's invmap).
fn icmp_inverse(ty: u8) -> Option<u8> {
    Some(match ty {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

/// ICMP types that may start a connection.
pub fn icmp_valid_new(ty: u8) -> bool {
    matches!(ty, 8 | 13 | 15 | 17)
}

impl Tuple {
    pub fn invert(&self) -> Tuple {
        match self.proto {
            1 => {
                let ty = (self.dport >> 8) as u8;
                let code = self.dport & 0xff;
                let inv = icmp_inverse(ty).unwrap_or(ty);
                Tuple {
                    src: self.dst,
                    dst: self.src,
                    proto: 1,
                    sport: self.sport,
                    dport: (inv as u16) << 8 | code,
                }
            }
            _ => Tuple {
                src: self.dst,
                dst: self.src,
                proto: self.proto,
                sport: self.dport,
                dport: self.sport,
            },
        }
    }

    pub fn has_ports(&self) -> bool {
        matches!(self.proto, 6 | 17)
    }

    /// `src=A dst=B sport=P dport=Q` as conntrack -L prints a tuple.
    pub fn ct_text(&self, out: &mut String) {
        let _ = write!(out, "src={} dst={} ", self.src, self.dst);
        match self.proto {
            6 | 17 => {
                let _ = write!(out, "sport={} dport={} ", self.sport, self.dport);
            }
            1 => {
                let _ = write!(
                    out,
                    "type={} code={} id={} ",
                    self.dport >> 8,
                    self.dport & 0xff,
                    self.sport
                );
            }
            _ => {}
        }
    }

    /// `A:P > B:Q` (trace form).
    pub fn short(&self) -> String {
        match self.proto {
            6 | 17 => format!("{}:{} > {}:{}", self.src, self.sport, self.dst, self.dport),
            1 => format!("{} > {} id {}", self.src, self.dst, self.sport),
            _ => format!("{} > {}", self.src, self.dst),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    Orig = 0,
    Reply = 1,
}

impl Dir {
    pub fn ix(self) -> usize {
        self as usize
    }
    pub fn other(self) -> Dir {
        match self {
            Dir::Orig => Dir::Reply,
            Dir::Reply => Dir::Orig,
        }
    }
}

// ----------------------------------------------------------------- TCP --

pub const TCP_NONE: u8 = 0;
pub const TCP_SYN_SENT: u8 = 1;
pub const TCP_SYN_RECV: u8 = 2;
pub const TCP_ESTABLISHED: u8 = 3;
pub const TCP_FIN_WAIT: u8 = 4;
pub const TCP_CLOSE_WAIT: u8 = 5;
pub const TCP_LAST_ACK: u8 = 6;
pub const TCP_TIME_WAIT: u8 = 7;
pub const TCP_CLOSE: u8 = 8;
pub const TCP_SYN_SENT2: u8 = 9;
const IV: u8 = 10;
const IG: u8 = 11;

pub const TCP_STATE_NAMES: [&str; 10] = [
    "NONE",
    "SYN_SENT",
    "SYN_RECV",
    "ESTABLISHED",
    "FIN_WAIT",
    "CLOSE_WAIT",
    "LAST_ACK",
    "TIME_WAIT",
    "CLOSE",
    "SYN_SENT2",
];

/// Default timeouts in seconds (nf_conntrack_proto_tcp.c).
const TCP_TIMEOUTS: [u64; 10] = [0, 120, 60, 432_000, 120, 60, 30, 120, 10, 120];

/// tcp_conntracks[dir][flag class][state] (nf_conntrack_proto_tcp.c).
const TCP_TABLE: [[[u8; 10]; 6]; 2] = {
    use self::{
        IG as sIG, IV as sIV, TCP_CLOSE as sCL, TCP_CLOSE_WAIT as sCW, TCP_ESTABLISHED as sES,
        TCP_FIN_WAIT as sFW, TCP_LAST_ACK as sLA, TCP_SYN_RECV as sSR, TCP_SYN_SENT as sSS,
        TCP_SYN_SENT2 as sS2, TCP_TIME_WAIT as sTW,
    };
    [
        [
            // ORIGINAL: sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2
            [sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2], // syn
            [sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR], // synack
            [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV], // fin
            [sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV], // ack
            [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL], // rst
            [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV], // none
        ],
        [
            // REPLY
            [sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2], // syn
            [sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR], // synack
            [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV], // fin
            [sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG], // ack
            [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL], // rst
            [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV], // none
        ],
    ]
};

/// The flag class of a segment (get_conntrack_index).
fn tcp_index(flags: u8) -> usize {
    if flags & 0x04 != 0 {
        4
    } else if flags & 0x02 != 0 {
        if flags & 0x10 != 0 { 1 } else { 0 }
    } else if flags & 0x01 != 0 {
        2
    } else if flags & 0x10 != 0 {
        3
    } else {
        5
    }
}

/// The state a new connection starts in, or None if the segment cannot
/// start one (nf_conntrack_tcp_loose=1: a bare ACK picks a connection up).
pub fn tcp_new_state(flags: u8) -> Option<u8> {
    match TCP_TABLE[0][tcp_index(flags)][TCP_NONE as usize] {
        IV | IG => None,
        s => Some(s),
    }
}

// -------------------------------------------------------------- entries --

/// One tracked connection.
#[derive(Clone, Debug)]
pub struct Conn {
    pub id: u64,
    /// Original and reply tuples.
    pub tuple: [Tuple; 2],
    pub status: u32,
    pub tcp_state: u8,
    pub expires: SimTime,
    /// The connection mark (CONNMARK).
    pub mark: u32,
    /// UDP: after this time a replied flow is a stream (120 s, ASSURED).
    pub stream_ts: SimTime,
}

impl Conn {
    pub fn new(orig: Tuple, now: SimTime) -> Conn {
        Conn {
            id: 0,
            tuple: [orig, orig.invert()],
            status: 0,
            tcp_state: TCP_NONE,
            expires: now,
            mark: 0,
            stream_ts: now + SimDuration::from_secs(2),
        }
    }

    /// Updates protocol state for a packet in `dir`; false if the packet is
    /// INVALID for the connection (its state is then left alone).
    pub fn update(&mut self, dir: Dir, tcp_flags: u8, now: SimTime) -> bool {
        if dir == Dir::Reply {
            self.status |= S_SEEN_REPLY;
        }
        let secs = match self.tuple[0].proto {
            6 => {
                let old = self.tcp_state;
                let new = TCP_TABLE[dir.ix()][tcp_index(tcp_flags)][old as usize];
                match new {
                    IV => return false,
                    IG => {}
                    s => {
                        self.tcp_state = s;
                        if self.status & S_SEEN_REPLY != 0
                            && matches!(old, TCP_SYN_RECV | TCP_ESTABLISHED)
                            && s == TCP_ESTABLISHED
                        {
                            self.status |= S_ASSURED;
                        }
                    }
                }
                TCP_TIMEOUTS[self.tcp_state as usize]
            }
            17 => {
                if self.status & S_SEEN_REPLY != 0 {
                    if now > self.stream_ts {
                        self.status |= S_ASSURED;
                        120
                    } else {
                        30
                    }
                } else {
                    30
                }
            }
            1 => 30,
            _ => 600,
        };
        self.expires = now + SimDuration::from_secs(secs);
        true
    }

    /// A `conntrack -L` line (without the newline).
    pub fn ct_line(&self, now: SimTime, out: &mut String) {
        let proto = self.tuple[0].proto;
        let name = match proto {
            6 => "tcp",
            17 => "udp",
            1 => "icmp",
            _ => "unknown",
        };
        let left = self.expires.saturating_since(now).as_nanos() / 1_000_000_000;
        let _ = write!(out, "{name:<8} {proto} {left} ");
        if proto == 6 {
            let _ = write!(out, "{} ", TCP_STATE_NAMES[self.tcp_state as usize]);
        }
        self.tuple[0].ct_text(out);
        if self.status & S_SEEN_REPLY == 0 {
            out.push_str("[UNREPLIED] ");
        }
        self.tuple[1].ct_text(out);
        if self.status & S_ASSURED != 0 {
            out.push_str("[ASSURED] ");
        }
        let _ = write!(out, "mark={} use=1", self.mark);
    }
}

/// A namespace's conntrack table: entries by id (creation order) and both
/// tuples of each indexed.
#[derive(Clone, Debug, Default)]
pub struct Conntrack {
    pub entries: BTreeMap<u64, Conn>,
    pub index: BTreeMap<Tuple, (u64, Dir)>,
    next_id: u64,
    inserts: u64,
}

impl Conntrack {
    /// The live connection a tuple belongs to, and the direction.
    pub fn lookup(&mut self, t: &Tuple, now: SimTime) -> Option<(u64, Dir)> {
        let (id, dir) = *self.index.get(t)?;
        if self.entries.get(&id).is_some_and(|c| c.expires <= now) {
            self.remove(id);
            return None;
        }
        Some((id, dir))
    }

    /// Whether a live connection other than `except` uses tuple `t`
    /// (nf_conntrack_tuple_taken).
    pub fn taken(&self, t: &Tuple, except: u64, now: SimTime) -> bool {
        self.index.get(t).is_some_and(|(id, _)| {
            *id != except && self.entries.get(id).is_some_and(|c| c.expires > now)
        })
    }

    pub fn get(&self, id: u64) -> Option<&Conn> {
        self.entries.get(&id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Conn> {
        self.entries.get_mut(&id)
    }

    /// Confirms a new connection (inserts it); its id. None if a tuple clashes.
    pub fn confirm(&mut self, mut c: Conn, now: SimTime) -> Option<u64> {
        if self.taken(&c.tuple[0], u64::MAX, now) || self.taken(&c.tuple[1], u64::MAX, now) {
            return None;
        }
        self.inserts += 1;
        if self.inserts.is_multiple_of(1024) {
            self.sweep(now);
        }
        self.next_id += 1;
        let id = self.next_id;
        c.id = id;
        c.status |= S_CONFIRMED;
        self.index.insert(c.tuple[0], (id, Dir::Orig));
        self.index.insert(c.tuple[1], (id, Dir::Reply));
        self.entries.insert(id, c);
        Some(id)
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(c) = self.entries.remove(&id) {
            for (k, t) in c.tuple.iter().enumerate() {
                if self
                    .index
                    .get(t)
                    .is_some_and(|(i, d)| *i == id && d.ix() == k)
                {
                    self.index.remove(t);
                }
            }
        }
    }

    /// Removes expired entries.
    pub fn sweep(&mut self, now: SimTime) {
        let dead: Vec<u64> = self
            .entries
            .values()
            .filter(|c| c.expires <= now)
            .map(|c| c.id)
            .collect();
        for id in dead {
            self.remove(id);
        }
    }

    /// Live entries.
    pub fn live(&self, now: SimTime) -> impl Iterator<Item = &Conn> {
        self.entries.values().filter(move |c| c.expires > now)
    }

    /// `conntrack -L` standard output.
    pub fn list(&self, now: SimTime) -> String {
        let mut out = String::new();
        for c in self.live(now) {
            c.ct_line(now, &mut out);
            out.push('\n');
        }
        out
    }

    pub fn flush(&mut self) {
        self.entries.clear();
        self.index.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str, sp: u16, dst: &str, dp: u16, proto: u8) -> Tuple {
        Tuple {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            proto,
            sport: sp,
            dport: dp,
        }
    }

    #[test]
    fn tcp_handshake_states() {
        let now = SimTime::ZERO;
        let mut c = Conn::new(t("10.0.0.1", 40000, "10.0.0.2", 80, 6), now);
        c.tcp_state = tcp_new_state(0x02).unwrap();
        assert_eq!(c.tcp_state, TCP_SYN_SENT);
        assert!(c.update(Dir::Orig, 0x02, now));
        assert!(c.update(Dir::Reply, 0x12, now));
        assert_eq!(c.tcp_state, TCP_SYN_RECV);
        assert!(c.update(Dir::Orig, 0x10, now));
        assert_eq!(c.tcp_state, TCP_ESTABLISHED);
        assert!(c.status & S_ASSURED != 0);
        assert_eq!(c.expires, now + SimDuration::from_secs(432_000));
        // A SYN/ACK from the client side is invalid.
        assert!(!c.update(Dir::Orig, 0x12, now));
        assert!(c.update(Dir::Orig, 0x11, now));
        assert_eq!(c.tcp_state, TCP_FIN_WAIT);
        assert!(c.update(Dir::Reply, 0x04, now));
        assert_eq!(c.tcp_state, TCP_CLOSE);
        // Loose pickup: a bare ACK starts an ESTABLISHED entry; a SYN/ACK cannot.
        assert_eq!(tcp_new_state(0x10), Some(TCP_ESTABLISHED));
        assert_eq!(tcp_new_state(0x12), None);
        assert_eq!(tcp_new_state(0x04), None);
    }

    #[test]
    fn list_lines_as_conntrack_tools() {
        let now = SimTime::ZERO;
        let mut ct = Conntrack::default();
        let mut c = Conn::new(t("10.244.1.2", 1759, "192.168.9.2", 8 << 8, 1), now);
        c.tuple[1] = t("192.168.9.2", 1759, "192.168.9.1", 0, 1);
        c.update(Dir::Orig, 0, now);
        c.update(Dir::Reply, 0, now);
        ct.confirm(c, now).unwrap();
        let mut u = Conn::new(t("10.244.1.2", 60161, "192.168.9.2", 5354, 17), now);
        u.update(Dir::Orig, 0, now);
        ct.confirm(u, now).unwrap();
        let later = now + SimDuration::from_millis(500);
        assert_eq!(
            ct.list(later),
            "icmp     1 29 src=10.244.1.2 dst=192.168.9.2 type=8 code=0 id=1759 src=192.168.9.2 dst=192.168.9.1 type=0 code=0 id=1759 mark=0 use=1\n\
             udp      17 29 src=10.244.1.2 dst=192.168.9.2 sport=60161 dport=5354 [UNREPLIED] src=192.168.9.2 dst=10.244.1.2 sport=5354 dport=60161 mark=0 use=1\n"
        );
        // Expired entries are gone.
        assert_eq!(ct.list(now + SimDuration::from_secs(31)), "");
        assert!(
            ct.lookup(
                &t("10.244.1.2", 60161, "192.168.9.2", 5354, 17),
                now + SimDuration::from_secs(31)
            )
            .is_none()
        );
    }
}
