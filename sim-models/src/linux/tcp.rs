//! TCP (RFC 9293) as Linux runs it, in the parts that decide where packets
//! go and when: the three-way handshake with Linux's SYN options (MSS,
//! SACK-permitted, timestamps, window scale), a sliding window, Reno
//! congestion control (slow start from an initial window of 10 segments,
//! congestion avoidance), NewReno fast retransmit and recovery (RFC 6582)
//! on three duplicate ACKs, retransmission timeouts (RFC 6298 with Linux's
//! 200 ms minimum and `srtt + max(4 * rttvar, 200 ms)` formula, initial
//! 1 s, exponential backoff), delayed ACKs (40 ms, every second full
//! segment, quick ACKs at the start), FIN and RST, RST for a closed port,
//! and path MTU discovery from ICMP fragmentation-needed. Segments are real
//! TCP headers (`TcpRepr`); checksums are computed when a capture emits them.
//!
//! Timers are scheduler events (`Event::Tcp`). The retransmission timer is
//! lazy: an ACK only moves its deadline; the event, when it fires early,
//! re-arms itself for the deadline, so a bulk flow costs one timer event per
//! RTO period instead of a schedule and a cancel per ACK.
//!
//! Not modelled (see docs/fidelity.md): SACK-based loss recovery and RACK
//! (the receiver sends SACK blocks; the sender recovers with NewReno), CUBIC
//! (Reno is used, as with `net.ipv4.tcp_congestion_control=reno`), receive
//! buffer autotuning (the receive window is fixed), TSO/GSO, pacing, TCP
//! small queues, keepalives, the persist timer, and TIME-WAIT expiry.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use sim_core::packet::{Header, Packet, PacketId, Payload};
use sim_core::sched::EventId;
use sim_core::time::{SimDuration, SimTime};
use sim_core::trace::{DropReason, TraceEvent};
use sim_core::wire::{IpProtocol, Ipv4Repr, TcpFlags, TcpOption, TcpRepr};

use crate::linux::socket::{Endpoint, Errno, seq_gt, seq_le, seq_lt};
use crate::linux::stack::LocalError;
use crate::linux::traffic::{SockEvent, SockRef};
use crate::linux::{Cx, Event, NsId, World};

/// Linux's minimum retransmission timeout (TCP_RTO_MIN).
pub const RTO_MIN: SimDuration = SimDuration::from_millis(200);
/// TCP_RTO_MAX.
pub const RTO_MAX: SimDuration = SimDuration::from_secs(120);
/// TCP_TIMEOUT_INIT: the RTO before any RTT sample.
pub const RTO_INIT: SimDuration = SimDuration::from_secs(1);
/// TCP_DELACK_MIN (the delayed-ACK timeout).
pub const DELACK: SimDuration = SimDuration::from_millis(40);
/// net.ipv4.tcp_syn_retries.
pub const SYN_RETRIES: u32 = 6;
/// net.ipv4.tcp_synack_retries.
pub const SYNACK_RETRIES: u32 = 5;
/// net.ipv4.tcp_retries2.
pub const RETRIES2: u32 = 15;
/// The initial congestion window (TCP_INIT_CWND), in segments.
pub const INIT_CWND: u32 = 10;
/// The receive window a socket advertises once connected (what Linux 6.x
/// advertises after the handshake: 502 << 7), unless `iperf3 -w` sets it.
pub const RCV_WND_DEFAULT: u32 = 64_256;
/// The window scale Linux offers with the default tcp_rmem (6 MiB maximum).
pub const RCV_WSCALE_DEFAULT: u8 = 7;
/// The MSS assumed when a SYN carries none (TCP_MSS_DEFAULT).
pub const MSS_DEFAULT: u32 = 536;
/// TCP_MAX_QUICKACKS.
const MAX_QUICKACKS: u32 = 16;
/// Bytes the timestamps option adds to every segment after the SYN.
const TS_LEN: u32 = 12;
/// The smallest path MTU Linux accepts from an ICMP message (ip_rt_min_pmtu).
const MIN_PMTU: u32 = 552;

/// TCP states (RFC 9293).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcpState {
    Listen,
    SynSent,
    SynRecv,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
    Closed,
}

impl TcpState {
    /// The name as netstat prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Listen => "LISTEN",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::Established => "ESTABLISHED",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::Closing => "CLOSING",
            TcpState::LastAck => "LAST_ACK",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Closed => "CLOSED",
        }
    }
    fn synchronized(self) -> bool {
        !matches!(
            self,
            TcpState::Listen | TcpState::SynSent | TcpState::SynRecv | TcpState::Closed
        )
    }
    /// States in which the socket may still send data.
    fn can_send(self) -> bool {
        matches!(self, TcpState::Established | TcpState::CloseWait)
    }
}

/// Which timer an `Event::Tcp` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpTimer {
    Retransmit,
    DelayedAck,
}

/// Congestion-control state (Linux's icsk_ca_state, reduced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaState {
    Open,
    /// Fast recovery after three duplicate ACKs (NewReno).
    Recovery,
    /// After a retransmission timeout (or a path MTU reduction).
    Loss,
}

/// Socket options an application sets before connecting or listening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpOpts {
    /// The receive window (SO_RCVBUF as `iperf3 -w` sets it).
    pub rcv_wnd: u32,
    /// TCP_MAXSEG.
    pub mss_clamp: Option<u16>,
}

impl Default for TcpOpts {
    fn default() -> Self {
        TcpOpts {
            rcv_wnd: RCV_WND_DEFAULT,
            mss_clamp: None,
        }
    }
}

/// A segment sent and not yet acknowledged (the retransmission queue).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TxSeg {
    seq: u32,
    /// Sequence space: data bytes plus one each for SYN and FIN.
    len: u32,
    syn: bool,
    fin: bool,
    sent_at: SimTime,
    /// Sent more than once (no RTT sample from its ACK: Karn).
    ever_retrans: bool,
    /// Retransmitted and not yet acknowledged or SACKed (TCPCB_SACKED_RETRANS).
    retrans: bool,
    /// Covered by a SACK block (TCPCB_SACKED_ACKED).
    sacked: bool,
    /// Deemed lost (TCPCB_LOST): to be retransmitted.
    lost: bool,
}

impl TxSeg {
    fn new(seq: u32, len: u32, syn: bool, fin: bool, now: SimTime) -> TxSeg {
        TxSeg {
            seq,
            len,
            syn,
            fin,
            sent_at: now,
            ever_retrans: false,
            retrans: false,
            sacked: false,
            lost: false,
        }
    }
    fn end(&self) -> u32 {
        self.seq.wrapping_add(self.len)
    }
    fn data_len(&self) -> u32 {
        self.len - u32::from(self.syn) - u32::from(self.fin)
    }
}

/// One out-of-order segment held by the receiver.
#[derive(Clone, Debug)]
struct OooSeg {
    len: u32,
    payload: Payload,
    fin: bool,
}

/// A chunk of the byte stream the application wrote.
#[derive(Clone, Debug)]
struct WriteChunk {
    /// Stream offset just past the chunk.
    end: u64,
    /// The bytes, or None for zero filler (bulk data).
    data: Option<Arc<[u8]>>,
}

/// A TCP socket.
#[derive(Clone, Debug)]
pub struct TcpSock {
    pub ns: NsId,
    pub state: TcpState,
    pub local: Endpoint,
    pub remote: Endpoint,
    /// The application (index into `World::apps`).
    pub owner: Option<usize>,
    /// The listening socket a passively opened socket came from.
    pub parent: Option<u32>,
    /// This side sent the SYN.
    pub active: bool,
    /// The application's name (`nc`, `iperf3`), for the trace.
    pub by: Arc<str>,
    label: Arc<str>,
    pub opts: TcpOpts,
    // --- send side
    iss: u32,
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    snd_wnd: u32,
    snd_wl1: u32,
    snd_wl2: u32,
    snd_wscale: u8,
    /// Stream bytes sent at least once.
    pub sent_bytes: u64,
    /// Stream bytes acknowledged.
    pub acked_bytes: u64,
    /// Stream bytes the application has written (u64::MAX: unlimited).
    written: u64,
    chunks: Vec<WriteChunk>,
    /// The application shut down its sending side: FIN after the data.
    fin_queued: bool,
    fin_sent: bool,
    /// End of the last small (Nagle/Minshall) segment sent.
    snd_sml: u32,
    /// The retransmission queue: every segment from snd_una to snd_nxt.
    rtx: VecDeque<TxSeg>,
    /// Segments SACKed (or, without SACK, duplicate ACKs counted as Linux's
    /// NewReno emulation counts them), deemed lost, retransmitted in flight.
    sacked_out: u32,
    lost_out: u32,
    retrans_out: u32,
    /// Where to look for the next lost segment to retransmit.
    retx_hint: usize,
    // --- receive side
    irs: u32,
    rcv_nxt: u32,
    rcv_wscale: u8,
    /// Stream offset of rcv_nxt (for ordering the out-of-order queue).
    rcv_off: u64,
    ooo: BTreeMap<u64, OooSeg>,
    ooo_bytes: u32,
    /// Offset of the out-of-order segment received last (SACK order).
    last_ooo: Option<u64>,
    pub received_bytes: u64,
    rcv_mss: u32,
    /// The first data has arrived (the delayed-ACK engine is initialised).
    rcv_started: bool,
    quickack: u32,
    ack_pending: bool,
    unacked_bytes: u32,
    delack_ev: Option<EventId>,
    // --- options
    ts_ok: bool,
    sack_ok: bool,
    ws_ok: bool,
    ts_recent: u32,
    ts_offset: u32,
    /// The MSS option the peer sent (536 if none).
    pub peer_mss: u32,
    /// The MSS option we sent.
    pub adv_mss: u32,
    /// The path MTU.
    pub pmtu: u32,
    /// Data bytes per full segment.
    pub mss: u32,
    // --- congestion control
    /// Congestion window, in segments.
    pub cwnd: u32,
    pub ssthresh: u32,
    cwnd_cnt: u32,
    pub ca: CaState,
    dupacks: u32,
    /// NewReno's `recover` (Linux's high_seq).
    recover: u32,
    max_packets_out: u32,
    cwnd_usage_seq: u32,
    is_cwnd_limited: bool,
    // --- timers
    srtt_ns: Option<u64>,
    rttvar_ns: u64,
    pub rto: SimDuration,
    retries: u32,
    rto_at: Option<SimTime>,
    rto_ev: Option<(EventId, SimTime)>,
    // --- accounting
    /// Segments retransmitted.
    pub retrans: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub opened_at: SimTime,
    pub established_at: Option<SimTime>,
    /// The last time data moved (acknowledged or received) or the state changed.
    pub last_progress: SimTime,
    pub error: Option<Errno>,
    soft_error: Option<Errno>,
}

impl TcpSock {
    fn new(ns: NsId, local: Endpoint, remote: Endpoint, by: Arc<str>, now: SimTime) -> TcpSock {
        TcpSock {
            ns,
            state: TcpState::Closed,
            local,
            remote,
            owner: None,
            parent: None,
            active: false,
            label: Arc::from(format!("TCP socket {local} ({by})")),
            by,
            opts: TcpOpts::default(),
            iss: 0,
            snd_una: 0,
            snd_nxt: 0,
            snd_max: 0,
            snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            snd_wscale: 0,
            sent_bytes: 0,
            acked_bytes: 0,
            written: 0,
            chunks: Vec::new(),
            fin_queued: false,
            fin_sent: false,
            snd_sml: 0,
            rtx: VecDeque::new(),
            sacked_out: 0,
            lost_out: 0,
            retrans_out: 0,
            retx_hint: 0,
            irs: 0,
            rcv_nxt: 0,
            rcv_wscale: 0,
            rcv_off: 0,
            ooo: BTreeMap::new(),
            ooo_bytes: 0,
            last_ooo: None,
            received_bytes: 0,
            rcv_mss: MSS_DEFAULT,
            rcv_started: false,
            quickack: 0,
            ack_pending: false,
            unacked_bytes: 0,
            delack_ev: None,
            ts_ok: false,
            sack_ok: false,
            ws_ok: false,
            ts_recent: 0,
            ts_offset: 0,
            peer_mss: MSS_DEFAULT,
            adv_mss: MSS_DEFAULT,
            pmtu: 576,
            mss: MSS_DEFAULT,
            cwnd: INIT_CWND,
            ssthresh: 0x7fff_ffff,
            cwnd_cnt: 0,
            ca: CaState::Open,
            dupacks: 0,
            recover: 0,
            max_packets_out: 0,
            cwnd_usage_seq: 0,
            is_cwnd_limited: false,
            srtt_ns: None,
            rttvar_ns: 0,
            rto: RTO_INIT,
            retries: 0,
            rto_at: None,
            rto_ev: None,
            retrans: 0,
            segs_out: 0,
            segs_in: 0,
            opened_at: now,
            established_at: None,
            last_progress: now,
            error: None,
            soft_error: None,
        }
    }

    /// `TCP socket 10.0.0.2:8888 (nc)`.
    pub fn label(&self) -> Arc<str> {
        self.label.clone()
    }

    /// The smoothed round-trip time, once measured.
    pub fn srtt(&self) -> Option<SimDuration> {
        self.srtt_ns.map(SimDuration::from_nanos)
    }

    /// Segments in flight (tcp_packets_in_flight): sent, not acknowledged,
    /// not SACKed, not deemed lost, plus retransmissions in flight.
    pub fn packets_in_flight(&self) -> u32 {
        (self.rtx.len() as u32 + self.retrans_out).saturating_sub(self.sacked_out + self.lost_out)
    }

    /// Recounts the scoreboard from the segments' flags.
    fn recount(&mut self) {
        if self.sack_ok {
            self.sacked_out = self.rtx.iter().filter(|x| x.sacked).count() as u32;
        }
        self.lost_out = self.rtx.iter().filter(|x| x.lost && !x.sacked).count() as u32;
        self.retrans_out = self.rtx.iter().filter(|x| x.retrans && !x.sacked).count() as u32;
        self.retx_hint = 0;
    }

    /// Marks a segment lost.
    fn mark_lost(&mut self, k: usize) {
        let x = &mut self.rtx[k];
        if x.sacked || x.lost {
            return;
        }
        x.lost = true;
        self.lost_out += 1;
        if x.retrans {
            // Its retransmission is lost too: send it again.
            x.retrans = false;
            self.retrans_out -= 1;
        }
        self.retx_hint = self.retx_hint.min(k);
    }

    /// RFC 6675's IsLost for every segment: unSACKed with at least
    /// DupThresh (3) SACKed segments above it.
    fn mark_lost_by_sack(&mut self) {
        let mut above = 0u32;
        for k in (0..self.rtx.len()).rev() {
            if self.rtx[k].sacked {
                above += 1;
            } else if above >= 3 && !self.rtx[k].lost {
                self.mark_lost(k);
            }
        }
    }

    /// Applies the SACK blocks of an ACK to the scoreboard; true if any
    /// segment was newly SACKed.
    fn sacktag(&mut self, blocks: &[(u32, u32)]) -> bool {
        let mut new = false;
        let una = self.snd_una;
        for &(l, r) in blocks {
            if seq_le(r, una) || seq_gt(r, self.snd_max) || !seq_lt(l, r) {
                continue;
            }
            let from = self.rtx.partition_point(|x| seq_lt(x.seq, l));
            for k in from..self.rtx.len() {
                let x = &mut self.rtx[k];
                if seq_gt(x.end(), r) {
                    break;
                }
                if x.sacked {
                    continue;
                }
                x.sacked = true;
                self.sacked_out += 1;
                if x.lost {
                    x.lost = false;
                    self.lost_out -= 1;
                }
                if x.retrans {
                    x.retrans = false;
                    self.retrans_out -= 1;
                }
                new = true;
            }
        }
        new
    }

    /// The congestion window in bytes (as iperf3 prints `Cwnd`: tcpi_snd_cwnd * tcpi_snd_mss).
    pub fn cwnd_bytes(&self) -> u64 {
        u64::from(self.cwnd) * u64::from(self.mss)
    }

    /// Whether all the data written has been acknowledged.
    pub fn all_acked(&self) -> bool {
        self.written != u64::MAX && self.acked_bytes >= self.written
    }

    fn ts_len(&self) -> u32 {
        if self.ts_ok { TS_LEN } else { 0 }
    }

    /// Data bytes per full segment for the current path MTU.
    fn compute_mss(&self) -> u32 {
        let mut m = self.pmtu.saturating_sub(40).min(self.peer_mss);
        if let Some(c) = self.opts.mss_clamp {
            m = m.min(u32::from(c));
        }
        m.saturating_sub(self.ts_len()).max(48)
    }

    /// The receive window we can offer now.
    fn rcv_window(&self) -> u32 {
        self.opts.rcv_wnd.saturating_sub(self.ooo_bytes)
    }

    /// The window field of a segment after the handshake.
    fn window_field(&self) -> u16 {
        let w = self.rcv_window();
        if self.ws_ok {
            (w >> self.rcv_wscale).min(65535) as u16
        } else {
            w.min(65535) as u16
        }
    }

    /// The window of a SYN or SYN-ACK: Linux rounds the first window down to
    /// a multiple of the MSS it expects to receive (tcp_select_initial_window).
    fn syn_window(&self, mss: u32) -> u16 {
        // The default buffer offers the full unscaled 65535 (Linux's
        // tcp_rmem default of 128 KiB); a smaller SO_RCVBUF offers itself.
        let space = if self.opts.rcv_wnd == RCV_WND_DEFAULT {
            65535
        } else {
            self.opts.rcv_wnd.min(65535)
        };
        let mss = mss.max(1);
        (space / mss * mss).max(mss.min(space)) as u16
    }

    /// The payload of the data in `[seq, seq + len)`.
    fn payload(&self, seq: u32, len: u32) -> Payload {
        if len == 0 {
            return Payload::Filler(0);
        }
        if self.chunks.iter().all(|c| c.data.is_none()) || self.written > u64::from(u32::MAX) {
            return Payload::Filler(len as usize);
        }
        let start = u64::from(seq.wrapping_sub(self.iss.wrapping_add(1)));
        let end = start + u64::from(len);
        let mut out = Vec::with_capacity(len as usize);
        let mut cstart = 0u64;
        for c in &self.chunks {
            let (a, b) = (start.max(cstart), end.min(c.end));
            if a < b {
                match &c.data {
                    Some(d) => {
                        out.extend_from_slice(&d[(a - cstart) as usize..(b - cstart) as usize])
                    }
                    None => out.resize(out.len() + (b - a) as usize, 0),
                }
            }
            cstart = c.end;
            if cstart >= end {
                break;
            }
        }
        out.resize(len as usize, 0);
        Payload::Data(out)
    }

    /// Whether stream offset `off` ends a write (PSH).
    fn ends_write(&self, off: u64) -> bool {
        off == self.written || self.chunks.iter().any(|c| c.end == off)
    }

    /// SACK blocks for the out-of-order queue (up to `max`), the block
    /// holding the segment received last first (RFC 2018).
    fn sack_blocks(&self, max: usize) -> Vec<(u32, u32)> {
        let mut blocks: Vec<(u64, u64)> = Vec::new();
        for (&off, s) in &self.ooo {
            let end = off + u64::from(s.len);
            match blocks.last_mut() {
                Some(b) if b.1 >= off => b.1 = b.1.max(end),
                _ => blocks.push((off, end)),
            }
        }
        if let Some(last) = self.last_ooo
            && let Some(k) = blocks.iter().position(|b| b.0 <= last && last < b.1)
        {
            let b = blocks.remove(k);
            blocks.insert(0, b);
        }
        let to_seq = |off: u64| {
            self.rcv_nxt
                .wrapping_add(off.wrapping_sub(self.rcv_off) as u32)
        };
        blocks
            .into_iter()
            .take(max)
            .map(|(a, b)| (to_seq(a), to_seq(b)))
            .collect()
    }

    fn update_rtt(&mut self, sample: SimDuration) {
        let r = sample.as_nanos().max(1);
        match self.srtt_ns {
            None => {
                self.srtt_ns = Some(r);
                self.rttvar_ns = r / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(r);
                self.rttvar_ns = (3 * self.rttvar_ns + diff) / 4;
                self.srtt_ns = Some((7 * s + r) / 8);
            }
        }
        self.set_rto();
    }

    fn set_rto(&mut self) {
        let s = self.srtt_ns.unwrap_or(0);
        let var = (4 * self.rttvar_ns).max(RTO_MIN.as_nanos());
        let rto = SimDuration::from_nanos(s + var);
        self.rto = if rto > RTO_MAX { RTO_MAX } else { rto };
    }

    /// Splits queued segments longer than the MSS (after a path MTU drop):
    /// the pieces are deemed lost (tcp_simple_retransmit). True if any was.
    fn resegment(&mut self) -> bool {
        let mss = self.mss;
        let mut out = VecDeque::with_capacity(self.rtx.len());
        let mut split = false;
        for x in self.rtx.drain(..) {
            if x.data_len() <= mss || x.syn || x.sacked {
                out.push_back(x);
                continue;
            }
            split = true;
            let mut left = x.data_len();
            let mut seq = x.seq;
            while left > 0 {
                let n = left.min(mss);
                left -= n;
                let fin = x.fin && left == 0;
                let mut piece = TxSeg::new(seq, n + u32::from(fin), false, fin, x.sent_at);
                piece.ever_retrans = x.ever_retrans;
                piece.lost = true;
                out.push_back(piece);
                seq = seq.wrapping_add(n);
            }
        }
        self.rtx = out;
        self.recount();
        split
    }
}

/// What a received segment says, taken out of the packet once.
struct SegInfo {
    id: PacketId,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tcp: TcpRepr,
    payload: Payload,
}

impl World {
    fn ts_now(&self, i: usize, now: SimTime) -> u32 {
        self.sockets.tcp[i]
            .ts_offset
            .wrapping_add((now.as_nanos() / 1_000_000) as u32)
    }

    /// Creates a TCP socket (not yet in any lookup map).
    fn tcp_new(
        &mut self,
        ns: NsId,
        local: Endpoint,
        remote: Endpoint,
        by: Arc<str>,
        now: SimTime,
    ) -> usize {
        let i = self.sockets.tcp.len();
        self.sockets
            .tcp
            .push(TcpSock::new(ns, local, remote, by, now));
        i
    }

    fn tcp_port_ref(&mut self, ns: NsId, port: u16, delta: i32) {
        let e = self.sockets.tcp_ports.entry((ns, port)).or_insert(0);
        *e = (*e as i32 + delta).max(0) as u32;
        if *e == 0 {
            self.sockets.tcp_ports.remove(&(ns, port));
        }
    }

    /// listen(): a TCP socket on `addr` (None: every address) and `port`.
    pub fn tcp_listen(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        owner: usize,
        by: &str,
        addr: Option<Ipv4Addr>,
        port: u16,
        opts: TcpOpts,
    ) -> Result<u32, Errno> {
        let addr = addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
        if !addr.is_unspecified() && !self.is_local_addr(ns, addr) {
            return Err(Errno::AddrNotAvail);
        }
        if let Some(ls) = self.sockets.tcp_listen.get(&(ns, port))
            && ls.iter().any(|&l| {
                let a = self.sockets.tcp[l as usize].local.addr;
                a.is_unspecified() || addr.is_unspecified() || a == addr
            })
        {
            return Err(Errno::AddrInUse);
        }
        let local = Endpoint::new(addr, port);
        let i = self.tcp_new(
            ns,
            local,
            Endpoint::new(Ipv4Addr::UNSPECIFIED, 0),
            by.into(),
            cx.now,
        );
        let s = &mut self.sockets.tcp[i];
        s.state = TcpState::Listen;
        s.owner = Some(owner);
        s.opts = opts;
        self.sockets
            .tcp_listen
            .entry((ns, port))
            .or_default()
            .push(i as u32);
        self.tcp_port_ref(ns, port, 1);
        Ok(i as u32)
    }

    /// connect(): sends the SYN. Fails at once (as connect() does) without
    /// a route or with a source address that is not local.
    pub fn tcp_connect(
        &mut self,
        cx: &mut Cx,
        ns: NsId,
        owner: usize,
        by: &str,
        src: Option<Ipv4Addr>,
        sport: Option<u16>,
        dst: Endpoint,
        opts: TcpOpts,
    ) -> Result<u32, Errno> {
        let route = self.route_info(ns, dst.addr, src)?;
        let port = match sport {
            Some(p) => {
                let local = Endpoint::new(route.src, p);
                if self.sockets.tcp_conns.contains_key(&(ns, local, dst))
                    || self.sockets.tcp_listen.contains_key(&(ns, p))
                {
                    return Err(Errno::AddrInUse);
                }
                p
            }
            None => self.ephemeral_port(ns, false).ok_or(Errno::AddrNotAvail)?,
        };
        let local = Endpoint::new(route.src, port);
        let i = self.tcp_new(ns, local, dst, by.into(), cx.now);
        let (iss, tso) = {
            let r = self.sock_rng(ns);
            (r.next_u32(), r.next_u32())
        };
        let s = &mut self.sockets.tcp[i];
        s.state = TcpState::SynSent;
        s.active = true;
        s.owner = Some(owner);
        s.opts = opts;
        s.iss = iss;
        s.ts_offset = tso;
        s.snd_una = iss;
        s.snd_nxt = iss.wrapping_add(1);
        s.snd_max = s.snd_nxt;
        s.pmtu = route.mtu;
        s.adv_mss = route.mtu.saturating_sub(40);
        if let Some(c) = opts.mss_clamp {
            s.adv_mss = s.adv_mss.min(u32::from(c));
        }
        s.rcv_wscale = wscale_for(opts.rcv_wnd);
        s.rtx.push_back(TxSeg::new(iss, 1, true, false, cx.now));
        self.sockets.tcp_conns.insert((ns, local, dst), i as u32);
        self.tcp_port_ref(ns, port, 1);
        self.tcp_send_syn(cx, i, false);
        let at = cx.now + self.sockets.tcp[i].rto;
        self.tcp_arm_rto(cx, i, at);
        Ok(i as u32)
    }

    /// Queues `data` (None: `n` zero bytes) for sending.
    pub fn tcp_write(&mut self, cx: &mut Cx, sock: u32, data: Option<Vec<u8>>, n: u64) {
        let i = sock as usize;
        let s = &mut self.sockets.tcp[i];
        if s.fin_queued || s.written == u64::MAX {
            return;
        }
        let len = data.as_ref().map_or(n, |d| d.len() as u64);
        s.written += len;
        let end = s.written;
        s.chunks.push(WriteChunk {
            end,
            data: data.map(Arc::from),
        });
        if s.state.can_send() {
            self.tcp_output(cx, i);
        }
    }

    /// Makes the application an endless source of bulk data.
    pub fn tcp_write_unlimited(&mut self, cx: &mut Cx, sock: u32) {
        let i = sock as usize;
        let s = &mut self.sockets.tcp[i];
        s.written = u64::MAX;
        s.chunks.push(WriteChunk {
            end: u64::MAX,
            data: None,
        });
        if s.state.can_send() {
            self.tcp_output(cx, i);
        }
    }

    /// Stops an unlimited source at what has been sent so far.
    pub fn tcp_stop_writing(&mut self, sock: u32) {
        let s = &mut self.sockets.tcp[sock as usize];
        if s.written == u64::MAX {
            s.written = s.sent_bytes;
            if let Some(c) = s.chunks.last_mut() {
                c.end = s.sent_bytes;
            }
        }
    }

    /// shutdown(SHUT_WR) / close(): FIN after the queued data. A listener
    /// stops listening; a connection not yet established is dropped.
    pub fn tcp_close(&mut self, cx: &mut Cx, sock: u32) {
        let i = sock as usize;
        let s = &mut self.sockets.tcp[i];
        match s.state {
            TcpState::Listen => {
                let (ns, port) = (s.ns, s.local.port);
                s.state = TcpState::Closed;
                if let Some(v) = self.sockets.tcp_listen.get_mut(&(ns, port)) {
                    v.retain(|&x| x != sock);
                    if v.is_empty() {
                        self.sockets.tcp_listen.remove(&(ns, port));
                    }
                }
                self.tcp_port_ref(ns, port, -1);
            }
            TcpState::SynSent | TcpState::SynRecv => self.tcp_done(cx, i, None),
            TcpState::Established | TcpState::CloseWait => {
                s.fin_queued = true;
                self.tcp_stop_writing(sock);
                self.tcp_output(cx, i);
            }
            _ => {}
        }
    }

    /// The connection is over (closed normally, reset or timed out): leaves
    /// the lookup map; the application hears of it.
    fn tcp_done(&mut self, cx: &mut Cx, i: usize, err: Option<Errno>) {
        let s = &mut self.sockets.tcp[i];
        if s.state == TcpState::Closed {
            return;
        }
        let key = (s.ns, s.local, s.remote);
        let (ns, port) = (s.ns, s.local.port);
        let was_listen = s.state == TcpState::Listen;
        s.state = TcpState::Closed;
        s.last_progress = cx.now;
        if err.is_some() {
            s.error = err;
        }
        s.rto_at = None;
        if let Some((ev, _)) = s.rto_ev.take() {
            cx.sched.cancel(ev);
        }
        if let Some(ev) = s.delack_ev.take() {
            cx.sched.cancel(ev);
        }
        let owner = s.owner;
        let parent = s.parent;
        if !was_listen {
            self.sockets.tcp_conns.remove(&key);
            if parent.is_none() {
                self.tcp_port_ref(ns, port, -1);
            }
        }
        if let Some(app) = owner {
            self.app_sock_event(cx, app, SockRef::Tcp(i as u32), SockEvent::Closed(err));
        }
    }

    // ---------------------------------------------------------------- output

    /// Builds and sends one segment.
    fn tcp_xmit(&mut self, cx: &mut Cx, i: usize, seq: u32, dlen: u32, flags: TcpFlags) {
        let now = cx.now;
        let tsval = self.ts_now(i, now);
        let s = &mut self.sockets.tcp[i];
        let mut options = Vec::new();
        let window;
        if flags.syn() {
            let wmss = if flags.ack() {
                s.adv_mss.saturating_sub(if s.ts_ok { TS_LEN } else { 0 })
            } else {
                s.adv_mss
            };
            window = s.syn_window(wmss);
            options.push(TcpOption::Mss(s.adv_mss.min(65535) as u16));
            let (sack, ts, ws) = if flags.ack() {
                (s.sack_ok, s.ts_ok, s.ws_ok)
            } else {
                (true, true, true)
            };
            let ecr = if flags.ack() { s.ts_recent } else { 0 };
            match (sack, ts) {
                (true, true) => {
                    options.push(TcpOption::SackPermitted);
                    options.push(TcpOption::Timestamps { tsval, tsecr: ecr });
                }
                (true, false) => {
                    options.extend([TcpOption::Nop, TcpOption::Nop, TcpOption::SackPermitted]);
                }
                (false, true) => {
                    options.extend([
                        TcpOption::Nop,
                        TcpOption::Nop,
                        TcpOption::Timestamps { tsval, tsecr: ecr },
                    ]);
                }
                (false, false) => {}
            }
            if ws {
                options.push(TcpOption::Nop);
                options.push(TcpOption::WindowScale(s.rcv_wscale));
            }
        } else {
            window = if flags.rst() { 0 } else { s.window_field() };
            if s.ts_ok && !flags.rst() {
                options.extend([
                    TcpOption::Nop,
                    TcpOption::Nop,
                    TcpOption::Timestamps {
                        tsval,
                        tsecr: s.ts_recent,
                    },
                ]);
            }
            if s.sack_ok && !s.ooo.is_empty() && flags.ack() {
                let max = if s.ts_ok { 3 } else { 4 };
                let blocks = s.sack_blocks(max);
                if !blocks.is_empty() {
                    options.extend([TcpOption::Nop, TcpOption::Nop, TcpOption::Sack(blocks)]);
                }
            }
        }
        let ack = if flags.ack() { s.rcv_nxt } else { 0 };
        if flags.ack() {
            s.ack_pending = false;
            s.unacked_bytes = 0;
        }
        s.segs_out += 1;
        let payload = s.payload(seq, dlen);
        let (ns, local, remote, by) = (s.ns, s.local, s.remote, s.by.clone());
        let tcp = TcpRepr {
            src_port: local.port,
            dst_port: remote.port,
            seq,
            ack,
            flags,
            window,
            urgent: 0,
            options,
        };
        let iph = self.new_ip(ns, local.addr, remote.addr, IpProtocol::Tcp, true, None);
        let id = self.next_packet_id();
        // Room for the headers the way out adds (Ethernet, a tunnel's
        // outer IPv4/UDP/VXLAN and Ethernet) without growing the vector.
        let mut headers = Vec::with_capacity(8);
        headers.push(Header::Ipv4(iph));
        headers.push(Header::Tcp(tcp));
        let pkt = Packet {
            id,
            headers,
            payload,
        };
        let place = self.namespaces[ns.ix()].node;
        self.trace(cx, place, id, || TraceEvent::Originate {
            by,
            summary: pkt.summary_arc(),
            dst: Some(remote.addr),
        });
        match self.ip_send(cx, ns, pkt, None) {
            Ok(()) => {}
            Err(LocalError::MessageTooLong { mtu }) => {
                // ip_fragment refuses a DF segment locally: the socket learns
                // the MTU as from an ICMP message (ip_local_error).
                self.tcp_mtu_reduced(cx, i, mtu);
            }
            Err(e) => {
                self.sockets.tcp[i].soft_error = Some(match e {
                    LocalError::NetUnreachable => Errno::NetUnreach,
                    LocalError::HostUnreachable => Errno::HostUnreach,
                    LocalError::NotPermitted => Errno::Perm,
                    _ => Errno::Inval,
                });
            }
        }
    }

    fn tcp_send_syn(&mut self, cx: &mut Cx, i: usize, ack: bool) {
        let seq = self.sockets.tcp[i].iss;
        let flags = if ack {
            TcpFlags::SYN | TcpFlags::ACK
        } else {
            TcpFlags::SYN
        };
        self.tcp_xmit(cx, i, seq, 0, flags);
    }

    /// A pure ACK now.
    fn tcp_send_ack(&mut self, cx: &mut Cx, i: usize) {
        let seq = self.sockets.tcp[i].snd_nxt;
        self.tcp_xmit(cx, i, seq, 0, TcpFlags::ACK);
    }

    /// Sends what the windows allow (tcp_xmit_retransmit_queue, then
    /// tcp_write_xmit): segments deemed lost first, then new data, then the
    /// FIN, while the packets in flight stay below the congestion window.
    pub(crate) fn tcp_output(&mut self, cx: &mut Cx, i: usize) {
        let now = cx.now;
        let mut sent_any = false;
        loop {
            let s = &mut self.sockets.tcp[i];
            if !matches!(
                s.state,
                TcpState::Established
                    | TcpState::CloseWait
                    | TcpState::FinWait1
                    | TcpState::Closing
                    | TcpState::LastAck
            ) {
                break;
            }
            let in_flight = s.packets_in_flight();
            if in_flight >= s.cwnd {
                break;
            }
            if s.lost_out > 0 && self.tcp_retransmit_next(cx, i) {
                sent_any = true;
                continue;
            }
            let s = &mut self.sockets.tcp[i];
            if !s.state.can_send() {
                break;
            }
            let avail = s.written.saturating_sub(s.sent_bytes);
            let fin_pending = s.fin_queued && !s.fin_sent;
            if avail == 0 && !fin_pending {
                break;
            }
            let wnd_end = s.snd_una.wrapping_add(s.snd_wnd);
            let room = if seq_lt(s.snd_nxt, wnd_end) {
                wnd_end.wrapping_sub(s.snd_nxt)
            } else {
                0
            };
            let len = (avail.min(u64::from(s.mss)) as u32).min(room);
            let fin = fin_pending && u64::from(len) == avail;
            if len == 0 && !fin {
                break;
            }
            if len < s.mss && u64::from(len) < avail {
                // The receive window cuts the segment short: wait for it.
                break;
            }
            if len < s.mss && !fin && in_flight > 0 && seq_lt(s.snd_una, s.snd_sml) {
                // Nagle (Minshall's variant): one small segment in flight at a time.
                break;
            }
            let seq = s.snd_nxt;
            let seglen = len + u32::from(fin);
            s.rtx.push_back(TxSeg::new(seq, seglen, false, fin, now));
            s.snd_nxt = seq.wrapping_add(seglen);
            s.snd_max = s.snd_nxt;
            s.sent_bytes += u64::from(len);
            if len < s.mss {
                s.snd_sml = s.snd_nxt;
            }
            let mut flags = TcpFlags::ACK;
            if len > 0 && s.ends_write(s.sent_bytes) {
                flags |= TcpFlags::PSH;
            }
            if fin {
                flags |= TcpFlags::FIN;
                s.fin_sent = true;
                s.state = match s.state {
                    TcpState::CloseWait => TcpState::LastAck,
                    _ => TcpState::FinWait1,
                };
            }
            self.tcp_xmit(cx, i, seq, len, flags);
            sent_any = true;
        }
        let s = &mut self.sockets.tcp[i];
        // tcp_cwnd_validate: is the window being used?
        let in_flight = s.packets_in_flight();
        let limited = in_flight >= s.cwnd;
        if !seq_lt(s.snd_una, s.cwnd_usage_seq) || in_flight > s.max_packets_out {
            s.max_packets_out = in_flight;
            s.cwnd_usage_seq = s.snd_nxt;
            s.is_cwnd_limited = limited;
        } else {
            s.is_cwnd_limited |= limited;
        }
        if sent_any && !s.rtx.is_empty() && s.rto_at.is_none() {
            let at = now + s.rto;
            self.tcp_arm_rto(cx, i, at);
        }
    }

    /// Retransmits the first segment deemed lost and not yet retransmitted,
    /// if any (whatever the window: callers check it).
    fn tcp_retransmit_next(&mut self, cx: &mut Cx, i: usize) -> bool {
        let now = cx.now;
        let s = &mut self.sockets.tcp[i];
        if s.lost_out == 0 {
            return false;
        }
        let mut k = s.retx_hint.min(s.rtx.len());
        while k < s.rtx.len() {
            let x = &s.rtx[k];
            if x.lost && !x.retrans && !x.sacked {
                break;
            }
            k += 1;
        }
        s.retx_hint = k;
        if k >= s.rtx.len() {
            return false;
        }
        let x = &mut s.rtx[k];
        x.retrans = true;
        x.ever_retrans = true;
        x.sent_at = now;
        let seg = *x;
        s.retrans_out += 1;
        s.retrans += 1;
        let mut flags = TcpFlags::ACK;
        if seg.fin {
            flags |= TcpFlags::FIN;
        }
        if seg.data_len() > 0 {
            let off = u64::from(seg.end().wrapping_sub(s.iss.wrapping_add(1))) - u64::from(seg.fin);
            if s.ends_write(off) {
                flags |= TcpFlags::PSH;
            }
        }
        self.tcp_xmit(cx, i, seg.seq, seg.data_len(), flags);
        true
    }

    // ---------------------------------------------------------------- timers

    /// Sets the retransmission deadline (lazily: see the module docs).
    fn tcp_arm_rto(&mut self, cx: &mut Cx, i: usize, at: SimTime) {
        let s = &mut self.sockets.tcp[i];
        s.rto_at = Some(at);
        match s.rto_ev {
            Some((_, t)) if t <= at => {}
            Some((ev, _)) => {
                cx.sched.cancel(ev);
                let ev = cx.sched.schedule_at(
                    at,
                    Event::Tcp {
                        sock: i as u32,
                        timer: TcpTimer::Retransmit,
                    },
                );
                self.sockets.tcp[i].rto_ev = Some((ev, at));
            }
            None => {
                let ev = cx.sched.schedule_at(
                    at,
                    Event::Tcp {
                        sock: i as u32,
                        timer: TcpTimer::Retransmit,
                    },
                );
                s.rto_ev = Some((ev, at));
            }
        }
    }

    fn tcp_disarm_rto(&mut self, cx: &mut Cx, i: usize) {
        let s = &mut self.sockets.tcp[i];
        s.rto_at = None;
        if let Some((ev, _)) = s.rto_ev.take() {
            cx.sched.cancel(ev);
        }
    }

    /// A TCP timer fired.
    pub fn tcp_timer(&mut self, cx: &mut Cx, sock: u32, timer: TcpTimer) {
        let i = sock as usize;
        match timer {
            TcpTimer::DelayedAck => {
                let s = &mut self.sockets.tcp[i];
                s.delack_ev = None;
                if s.ack_pending && s.state.synchronized() {
                    self.tcp_send_ack(cx, i);
                }
            }
            TcpTimer::Retransmit => {
                let s = &mut self.sockets.tcp[i];
                s.rto_ev = None;
                let Some(at) = s.rto_at else { return };
                if at > cx.now {
                    self.tcp_arm_rto(cx, i, at);
                    return;
                }
                s.rto_at = None;
                self.tcp_retransmit_timer(cx, i);
            }
        }
    }

    /// tcp_retransmit_timer: back off, collapse the window, go back N.
    fn tcp_retransmit_timer(&mut self, cx: &mut Cx, i: usize) {
        let now = cx.now;
        let s = &mut self.sockets.tcp[i];
        if s.rtx.is_empty() || s.state == TcpState::Closed {
            return;
        }
        let limit = match s.state {
            TcpState::SynSent => SYN_RETRIES,
            TcpState::SynRecv => SYNACK_RETRIES,
            _ => RETRIES2,
        };
        if s.retries >= limit {
            let err = s.soft_error.unwrap_or(Errno::TimedOut);
            if s.state == TcpState::SynRecv {
                return self.tcp_done(cx, i, None);
            }
            return self.tcp_done(cx, i, Some(err));
        }
        s.retries += 1;
        let rto = s.rto.as_nanos().saturating_mul(2);
        s.rto = SimDuration::from_nanos(rto.min(RTO_MAX.as_nanos()));
        match s.state {
            TcpState::SynSent | TcpState::SynRecv => {
                let ack = s.state == TcpState::SynRecv;
                if let Some(f) = s.rtx.front_mut() {
                    f.ever_retrans = true;
                    f.sent_at = now;
                }
                s.retrans += 1;
                self.tcp_send_syn(cx, i, ack);
            }
            _ => {
                // tcp_enter_loss: everything not SACKed is lost; the window
                // collapses to one segment.
                if s.ca != CaState::Loss {
                    s.ssthresh = (s.cwnd / 2).max(2);
                }
                s.cwnd = 1;
                s.cwnd_cnt = 0;
                s.ca = CaState::Loss;
                s.dupacks = 0;
                s.recover = s.snd_max;
                if !s.sack_ok {
                    s.sacked_out = 0;
                }
                for x in s.rtx.iter_mut() {
                    x.retrans = false;
                    if !x.sacked {
                        x.lost = true;
                    }
                }
                s.recount();
                self.tcp_output(cx, i);
            }
        }
        let s = &self.sockets.tcp[i];
        let at = now + s.rto;
        self.tcp_arm_rto(cx, i, at);
    }

    fn tcp_schedule_ack(&mut self, cx: &mut Cx, i: usize, now_ack: bool) {
        let s = &mut self.sockets.tcp[i];
        s.ack_pending = true;
        if now_ack {
            self.tcp_send_ack(cx, i);
            return;
        }
        if s.delack_ev.is_none() {
            let ev = cx.sched.schedule_at(
                cx.now + DELACK,
                Event::Tcp {
                    sock: i as u32,
                    timer: TcpTimer::DelayedAck,
                },
            );
            self.sockets.tcp[i].delack_ev = Some(ev);
        }
    }

    // ---------------------------------------------------------------- input

    /// A TCP segment for this namespace (tcp_v4_rcv).
    pub fn tcp_rcv(&mut self, cx: &mut Cx, ns: NsId, pkt: Packet) {
        let place = self.namespaces[ns.ix()].node;
        let (Some(Header::Ipv4(h)), Some(Header::Tcp(t))) =
            (pkt.headers.first(), pkt.headers.get(1))
        else {
            self.trace(cx, place, pkt.id, || TraceEvent::Drop {
                reason: DropReason::Malformed("TCP header".into()),
            });
            return;
        };
        let local = Endpoint::new(h.dst, t.dst_port);
        let remote = Endpoint::new(h.src, t.src_port);
        let id = pkt.id;
        if let Some(&i) = self.sockets.tcp_conns.get(&(ns, local, remote)) {
            let label = self.sockets.tcp[i as usize].label.clone();
            self.trace(cx, place, id, || TraceEvent::Deliver { to: label });
            let seg = Self::seg_info(pkt);
            return self.tcp_rcv_state(cx, i as usize, seg);
        }
        let listener = self
            .sockets
            .tcp_listen
            .get(&(ns, local.port))
            .and_then(|v| {
                v.iter()
                    .copied()
                    .find(|&l| self.sockets.tcp[l as usize].local.addr == local.addr)
                    .or_else(|| {
                        v.iter()
                            .copied()
                            .find(|&l| self.sockets.tcp[l as usize].local.addr.is_unspecified())
                    })
            });
        if let Some(l) = listener {
            let label = self.sockets.tcp[l as usize].label.clone();
            self.trace(cx, place, id, || TraceEvent::Deliver { to: label });
            let seg = Self::seg_info(pkt);
            return self.tcp_listen_rcv(cx, ns, l as usize, seg);
        }
        self.trace(cx, place, id, || TraceEvent::Drop {
            reason: DropReason::NoSocket,
        });
        let seg = Self::seg_info(pkt);
        self.tcp_send_reset(cx, ns, &seg);
    }

    fn seg_info(pkt: Packet) -> SegInfo {
        let id = pkt.id;
        let mut hs = pkt.headers.into_iter();
        let (Some(Header::Ipv4(h)), Some(Header::Tcp(t))) = (hs.next(), hs.next()) else {
            unreachable!("checked by the caller");
        };
        SegInfo {
            id,
            src: h.src,
            dst: h.dst,
            tcp: t,
            payload: pkt.payload,
        }
    }

    /// tcp_v4_send_reset: the answer to a segment no socket wants. With an
    /// ACK, the reset takes its sequence number from it; without, it
    /// acknowledges the segment (seq + length, SYN and FIN counted).
    fn tcp_send_reset(&mut self, cx: &mut Cx, ns: NsId, seg: &SegInfo) {
        let cause = seg.id;
        let t = &seg.tcp;
        if t.flags.rst() {
            return;
        }
        let place = self.namespaces[ns.ix()].node;
        let (seq, ack, flags) = if t.flags.ack() {
            (t.ack, 0, TcpFlags::RST)
        } else {
            let len = t.segment_len(seg.payload.len()) as u32;
            (0, t.seq.wrapping_add(len), TcpFlags::RST | TcpFlags::ACK)
        };
        let rst = TcpRepr {
            src_port: t.dst_port,
            dst_port: t.src_port,
            seq,
            ack,
            flags,
            window: 0,
            urgent: 0,
            options: Vec::new(),
        };
        let iph: Ipv4Repr = self.new_ip(ns, seg.dst, seg.src, IpProtocol::Tcp, true, None);
        let id = self.next_packet_id();
        let p = Packet {
            id,
            headers: vec![Header::Ipv4(iph), Header::Tcp(rst)],
            payload: Payload::Filler(0),
        };
        self.trace(cx, place, cause, || TraceEvent::Reply {
            reply: id,
            what: "TCP reset".into(),
        });
        let dst = seg.src;
        self.trace(cx, place, id, || TraceEvent::Originate {
            by: "kernel".into(),
            summary: p.summary_arc(),
            dst: Some(dst),
        });
        let _ = self.ip_send(cx, ns, p, None);
    }

    /// Reads the SYN options into the socket.
    fn tcp_parse_syn_options(&mut self, i: usize, t: &TcpRepr) {
        let s = &mut self.sockets.tcp[i];
        s.peer_mss = t.mss().map_or(MSS_DEFAULT, u32::from);
        s.sack_ok = t
            .options
            .iter()
            .any(|o| matches!(o, TcpOption::SackPermitted));
        s.ts_ok = false;
        s.ws_ok = false;
        for o in &t.options {
            match o {
                TcpOption::Timestamps { tsval, .. } => {
                    s.ts_ok = true;
                    s.ts_recent = *tsval;
                }
                TcpOption::WindowScale(w) => {
                    s.ws_ok = true;
                    s.snd_wscale = (*w).min(14);
                }
                _ => {}
            }
        }
        if !s.ws_ok {
            s.snd_wscale = 0;
            s.rcv_wscale = 0;
        }
    }

    /// A segment for a listening socket: a SYN opens a connection (SYN-ACK).
    fn tcp_listen_rcv(&mut self, cx: &mut Cx, ns: NsId, l: usize, seg: SegInfo) {
        let t = &seg.tcp;
        if t.flags.rst() {
            return;
        }
        if t.flags.ack() || !t.flags.syn() {
            // No connection request matches: the listener answers with a reset.
            return self.tcp_send_reset(cx, ns, &seg);
        }
        let local = Endpoint::new(seg.dst, t.dst_port);
        let remote = Endpoint::new(seg.src, t.src_port);
        let (opts, owner, by) = {
            let ls = &self.sockets.tcp[l];
            (ls.opts, ls.owner, ls.by.clone())
        };
        let mtu = self
            .route_info(ns, remote.addr, Some(local.addr))
            .map(|r| r.mtu)
            .unwrap_or(576);
        let i = self.tcp_new(ns, local, remote, by, cx.now);
        let (iss, tso) = {
            let r = self.sock_rng(ns);
            (r.next_u32(), r.next_u32())
        };
        self.sockets.tcp[i].rcv_wscale = wscale_for(opts.rcv_wnd);
        self.tcp_parse_syn_options(i, t);
        let s = &mut self.sockets.tcp[i];
        s.state = TcpState::SynRecv;
        s.owner = owner;
        s.parent = Some(l as u32);
        s.opts = opts;
        s.iss = iss;
        s.ts_offset = tso;
        s.irs = t.seq;
        s.rcv_nxt = t.seq.wrapping_add(1);
        s.snd_una = iss;
        s.snd_nxt = iss.wrapping_add(1);
        s.snd_max = s.snd_nxt;
        s.snd_wnd = u32::from(t.window);
        s.snd_wl1 = t.seq;
        s.pmtu = mtu;
        s.adv_mss = mtu.saturating_sub(40);
        if let Some(c) = opts.mss_clamp {
            s.adv_mss = s.adv_mss.min(u32::from(c));
        }
        s.mss = s.compute_mss();
        s.rtx.push_back(TxSeg::new(iss, 1, true, false, cx.now));
        s.segs_in += 1;
        self.sockets.tcp_conns.insert((ns, local, remote), i as u32);
        self.tcp_send_syn(cx, i, true);
        let at = cx.now + self.sockets.tcp[i].rto;
        self.tcp_arm_rto(cx, i, at);
    }

    /// A segment for a connection (tcp_rcv_state_process).
    fn tcp_rcv_state(&mut self, cx: &mut Cx, i: usize, seg: SegInfo) {
        let now = cx.now;
        let t = &seg.tcp;
        self.sockets.tcp[i].segs_in += 1;
        match self.sockets.tcp[i].state {
            TcpState::SynSent => {
                let s = &self.sockets.tcp[i];
                let ack_ok = t.flags.ack() && t.ack == s.iss.wrapping_add(1);
                if t.flags.ack() && !ack_ok {
                    if !t.flags.rst() {
                        let ns = s.ns;
                        self.tcp_send_reset(cx, ns, &seg);
                    }
                    return;
                }
                if t.flags.rst() {
                    if ack_ok {
                        self.tcp_done(cx, i, Some(Errno::ConnRefused));
                    }
                    return;
                }
                if !t.flags.syn() || !ack_ok {
                    return;
                }
                self.tcp_parse_syn_options(i, t);
                let s = &mut self.sockets.tcp[i];
                s.irs = t.seq;
                s.rcv_nxt = t.seq.wrapping_add(1);
                s.snd_wnd = u32::from(t.window);
                s.snd_wl1 = t.seq;
                s.snd_wl2 = t.ack;
                s.mss = s.compute_mss();
                if let Some(syn) = s.rtx.pop_front()
                    && !syn.ever_retrans
                {
                    s.update_rtt(now.saturating_since(syn.sent_at));
                }
                s.snd_una = t.ack;
                s.retries = 0;
                s.state = TcpState::Established;
                s.established_at = Some(now);
                s.last_progress = now;
                self.tcp_disarm_rto(cx, i);
                self.tcp_send_ack(cx, i);
                if let Some(app) = self.sockets.tcp[i].owner {
                    self.app_sock_event(cx, app, SockRef::Tcp(i as u32), SockEvent::Connected);
                }
                self.tcp_output(cx, i);
            }
            TcpState::SynRecv => {
                if t.flags.rst() {
                    return self.tcp_done(cx, i, None);
                }
                if t.flags.syn() && !t.flags.ack() {
                    // The SYN again: our SYN-ACK was lost.
                    self.tcp_send_syn(cx, i, true);
                    return;
                }
                let s = &self.sockets.tcp[i];
                if !t.flags.ack() {
                    return;
                }
                if t.ack != s.iss.wrapping_add(1) {
                    let ns = s.ns;
                    self.tcp_send_reset(cx, ns, &seg);
                    return;
                }
                let s = &mut self.sockets.tcp[i];
                if let Some(syn) = s.rtx.pop_front()
                    && !syn.ever_retrans
                {
                    s.update_rtt(now.saturating_since(syn.sent_at));
                }
                s.snd_una = t.ack;
                s.snd_wnd = u32::from(t.window) << s.snd_wscale;
                s.snd_wl1 = t.seq;
                s.snd_wl2 = t.ack;
                s.retries = 0;
                s.state = TcpState::Established;
                s.established_at = Some(now);
                s.last_progress = now;
                let (owner, parent) = (s.owner, s.parent);
                self.tcp_disarm_rto(cx, i);
                if let (Some(app), Some(l)) = (owner, parent) {
                    self.app_sock_event(
                        cx,
                        app,
                        SockRef::Tcp(i as u32),
                        SockEvent::Accepted { listener: l },
                    );
                }
                self.tcp_established_rcv(cx, i, seg);
            }
            TcpState::Closed | TcpState::Listen => {}
            _ => self.tcp_established_rcv(cx, i, seg),
        }
    }

    /// Segment processing in the synchronized states.
    fn tcp_established_rcv(&mut self, cx: &mut Cx, i: usize, seg: SegInfo) {
        let t = seg.tcp;
        let s = &mut self.sockets.tcp[i];
        if t.flags.rst() {
            // Accept a reset in the window (RFC 5961 asks for the exact
            // sequence number; in-window is what matters here).
            let in_wnd = !seq_lt(t.seq, s.rcv_nxt)
                && seq_lt(t.seq, s.rcv_nxt.wrapping_add(s.rcv_window().max(1)));
            if in_wnd || t.seq == s.rcv_nxt {
                let err = match s.state {
                    TcpState::TimeWait | TcpState::Closing | TcpState::LastAck => None,
                    TcpState::CloseWait => Some(Errno::ConnReset),
                    _ => Some(Errno::ConnReset),
                };
                self.tcp_done(cx, i, err);
            }
            return;
        }
        if t.flags.syn() {
            // A SYN in a synchronized state: a challenge ACK (RFC 5961).
            self.tcp_send_ack(cx, i);
            return;
        }
        if !t.flags.ack() {
            return;
        }
        if s.ts_ok
            && let Some(tsval) = t.options.iter().find_map(|o| match o {
                TcpOption::Timestamps { tsval, .. } => Some(*tsval),
                _ => None,
            })
            && seq_le(t.seq, s.rcv_nxt)
        {
            s.ts_recent = tsval;
        }
        let dlen = seg.payload.len() as u32;
        self.tcp_ack(cx, i, &t, dlen);
        if self.sockets.tcp[i].state == TcpState::Closed {
            return;
        }
        if dlen > 0 || t.flags.fin() {
            self.tcp_data(cx, i, t.seq, seg.payload, t.flags.fin());
        }
        if self.sockets.tcp[i].state == TcpState::Closed {
            return;
        }
        self.tcp_output(cx, i);
    }

    /// ACK processing (tcp_ack): the window, SACK blocks, the retransmission
    /// queue, RTT, congestion control and loss recovery (tcp_fastretrans_alert:
    /// SACK-based as RFC 6675 when SACK was negotiated, NewReno as RFC 6582
    /// otherwise).
    fn tcp_ack(&mut self, cx: &mut Cx, i: usize, t: &TcpRepr, dlen: u32) {
        let now = cx.now;
        let s = &mut self.sockets.tcp[i];
        let ack = t.ack;
        if seq_gt(ack, s.snd_max) {
            // Acknowledges data never sent: answer with an ACK, ignore it.
            s.ack_pending = true;
            return;
        }
        if seq_lt(ack, s.snd_una) {
            return;
        }
        let new_wnd = u32::from(t.window) << s.snd_wscale;
        let wnd_changed = new_wnd != s.snd_wnd;
        if seq_lt(s.snd_wl1, t.seq) || (s.snd_wl1 == t.seq && !seq_lt(ack, s.snd_wl2)) {
            s.snd_wnd = new_wnd;
            s.snd_wl1 = t.seq;
            s.snd_wl2 = ack;
        }
        let mut new_sack = false;
        if s.sack_ok && !s.rtx.is_empty() {
            for o in &t.options {
                if let TcpOption::Sack(blocks) = o {
                    new_sack |= s.sacktag(blocks);
                }
            }
        }
        let advanced = seq_gt(ack, s.snd_una);
        let mut acked_pkts = 0u32;
        let mut data_acked = 0u64;
        let mut fin_acked = false;
        if advanced {
            let mut oldest: Option<SimTime> = None;
            while let Some(front) = s.rtx.front_mut() {
                if seq_le(front.end(), ack) {
                    let f = *front;
                    s.rtx.pop_front();
                    acked_pkts += 1;
                    data_acked += u64::from(f.data_len());
                    if !f.ever_retrans && oldest.is_none() {
                        oldest = Some(f.sent_at);
                    }
                    if f.sacked && s.sack_ok {
                        s.sacked_out -= 1;
                    }
                    if f.lost && !f.sacked {
                        s.lost_out -= 1;
                    }
                    if f.retrans && !f.sacked {
                        s.retrans_out -= 1;
                    }
                    fin_acked |= f.fin;
                } else if seq_lt(front.seq, ack) {
                    let cut = ack.wrapping_sub(front.seq);
                    data_acked += u64::from(cut);
                    front.seq = ack;
                    front.len -= cut;
                    break;
                } else {
                    break;
                }
            }
            s.retx_hint = s.retx_hint.saturating_sub(acked_pkts as usize);
            if !s.sack_ok {
                // NewReno (tcp_remove_reno_sacks): the ACK covers the
                // duplicate ACKs counted so far.
                s.sacked_out = s.sacked_out.saturating_sub(acked_pkts.max(1));
                s.sacked_out = s.sacked_out.min((s.rtx.len() as u32).saturating_sub(1));
            }
            s.snd_una = ack;
            s.acked_bytes += data_acked;
            s.last_progress = now;
            if let Some(t0) = oldest {
                s.update_rtt(now.saturating_since(t0));
            } else {
                s.set_rto();
            }
            s.retries = 0;
            s.dupacks = 0;
        } else if !s.rtx.is_empty() && dlen == 0 && !t.flags.fin() && (!wnd_changed || new_sack) {
            // A duplicate ACK.
            s.dupacks += 1;
            if !s.sack_ok && s.ca != CaState::Loss {
                // Linux's NewReno counts it as a segment that left the network.
                s.sacked_out = (s.sacked_out + 1).min((s.rtx.len() as u32).saturating_sub(1));
            }
        }
        // tcp_fastretrans_alert.
        let mut force = false;
        match s.ca {
            CaState::Recovery => {
                if !seq_lt(ack, s.recover) {
                    // Full ACK: recovery is over, with the reduced window.
                    s.cwnd = s.ssthresh.max(1);
                    s.ca = CaState::Open;
                    s.dupacks = 0;
                    if !s.sack_ok {
                        s.sacked_out = 0;
                    }
                } else if s.sack_ok {
                    s.mark_lost_by_sack();
                } else if advanced && !s.rtx.is_empty() {
                    // NewReno partial ACK: the new head is lost too.
                    s.mark_lost(0);
                    force = true;
                }
            }
            CaState::Loss => {
                if !seq_lt(ack, s.recover) {
                    s.ca = CaState::Open;
                }
                tcp_cong_avoid(s, acked_pkts);
            }
            CaState::Open => {
                let enter = s.dupacks >= 3 || (s.sack_ok && s.sacked_out >= 3);
                if enter && !s.rtx.is_empty() {
                    s.ssthresh = (s.cwnd / 2).max(2);
                    s.cwnd = s.ssthresh;
                    s.cwnd_cnt = 0;
                    s.recover = s.snd_max;
                    s.ca = CaState::Recovery;
                    if s.sack_ok {
                        s.mark_lost_by_sack();
                    }
                    // The first unacknowledged segment is lost: fast retransmit.
                    s.mark_lost(0);
                    force = true;
                } else if advanced {
                    tcp_cong_avoid(s, acked_pkts);
                }
            }
        }
        if force {
            self.tcp_retransmit_next(cx, i);
        }
        let s = &mut self.sockets.tcp[i];
        if advanced || force {
            if s.rtx.is_empty() {
                self.tcp_disarm_rto(cx, i);
            } else {
                let at = now + s.rto;
                self.tcp_arm_rto(cx, i, at);
            }
        }
        if fin_acked {
            let s = &mut self.sockets.tcp[i];
            match s.state {
                TcpState::FinWait1 => s.state = TcpState::FinWait2,
                TcpState::Closing => s.state = TcpState::TimeWait,
                TcpState::LastAck => return self.tcp_done(cx, i, None),
                _ => {}
            }
            if let Some(app) = self.sockets.tcp[i].owner {
                self.app_sock_event(cx, app, SockRef::Tcp(i as u32), SockEvent::FinAcked);
            }
        }
        if data_acked > 0
            && let Some(app) = self.sockets.tcp[i].owner
        {
            self.app_sock_event(cx, app, SockRef::Tcp(i as u32), SockEvent::Acked);
        }
    }

    /// Data and FIN (tcp_data_queue): in order to the application, out of
    /// order into the queue (with a duplicate ACK carrying SACK blocks).
    fn tcp_data(&mut self, cx: &mut Cx, i: usize, seq: u32, mut payload: Payload, fin: bool) {
        let s = &mut self.sockets.tcp[i];
        if !matches!(
            s.state,
            TcpState::Established | TcpState::FinWait1 | TcpState::FinWait2
        ) {
            // Nothing more to receive: re-acknowledge (a retransmitted FIN).
            if fin || !payload.is_empty() {
                self.tcp_send_ack(cx, i);
            }
            return;
        }
        let mut seq = seq;
        let mut len = payload.len() as u32;
        if seq_lt(seq, s.rcv_nxt) {
            let dup = s.rcv_nxt.wrapping_sub(seq);
            if dup >= len + u32::from(fin) || (dup >= len && !fin) {
                // All old: a duplicate; ACK at once.
                self.tcp_send_ack(cx, i);
                return;
            }
            let cut = dup.min(len);
            payload = trim_front(payload, cut as usize);
            len -= cut;
            seq = seq.wrapping_add(cut);
        }
        if seq != s.rcv_nxt {
            // Out of order.
            let off = s.rcv_off + u64::from(seq.wrapping_sub(s.rcv_nxt));
            if u64::from(seq.wrapping_sub(s.rcv_nxt)) + u64::from(len) <= u64::from(s.opts.rcv_wnd)
                && !s.ooo.contains_key(&off)
            {
                s.ooo_bytes += len;
                s.ooo.insert(off, OooSeg { len, payload, fin });
                s.last_ooo = Some(off);
            }
            self.tcp_send_ack(cx, i);
            return;
        }
        let had_ooo = !s.ooo.is_empty();
        if len > s.rcv_mss {
            // tcp_measure_rcv_mss
            s.rcv_mss = len.min(s.adv_mss.max(MSS_DEFAULT));
        }
        let mut deliveries: Vec<Payload> = Vec::new();
        let mut got_fin = fin;
        if len > 0 {
            deliveries.push(payload);
        }
        s.rcv_nxt = s.rcv_nxt.wrapping_add(len);
        s.rcv_off += u64::from(len);
        s.received_bytes += u64::from(len);
        let mut new_bytes = len;
        // Pull what the queue now continues.
        while !got_fin {
            let Some((&off, _)) = s.ooo.first_key_value() else {
                break;
            };
            if off > s.rcv_off {
                break;
            }
            let o = s.ooo.remove(&off).expect("present");
            s.ooo_bytes -= o.len;
            let end = off + u64::from(o.len);
            if end <= s.rcv_off {
                got_fin |= o.fin && end == s.rcv_off;
                continue;
            }
            let cut = (s.rcv_off - off) as u32;
            let p = trim_front(o.payload, cut as usize);
            let n = o.len - cut;
            s.rcv_nxt = s.rcv_nxt.wrapping_add(n);
            s.rcv_off += u64::from(n);
            s.received_bytes += u64::from(n);
            new_bytes += n;
            if n > 0 {
                deliveries.push(p);
            }
            got_fin |= o.fin;
        }
        if s.ooo.is_empty() {
            s.last_ooo = None;
        }
        if new_bytes > 0 {
            s.last_progress = cx.now;
        }
        if got_fin {
            s.rcv_nxt = s.rcv_nxt.wrapping_add(1);
            s.state = match s.state {
                TcpState::Established => TcpState::CloseWait,
                TcpState::FinWait1 => TcpState::Closing,
                _ => TcpState::TimeWait,
            };
            s.last_progress = cx.now;
        }
        // The ACK: at once while in quick-ACK mode, for every second full
        // segment, when a hole was filled or on FIN; else delayed.
        if !s.rcv_started && new_bytes > 0 {
            s.rcv_started = true;
            s.quickack = (s.opts.rcv_wnd / (2 * s.rcv_mss.max(1))).min(MAX_QUICKACKS);
        }
        s.unacked_bytes += new_bytes;
        if got_fin {
            s.ack_pending = true;
        }
        let ack_now = if had_ooo || got_fin {
            true
        } else if s.quickack > 0 && new_bytes > 0 {
            s.quickack -= 1;
            true
        } else {
            s.unacked_bytes >= 2 * s.rcv_mss
        };
        let owner = s.owner;
        if let Some(app) = owner {
            for p in deliveries {
                self.app_sock_event(cx, app, SockRef::Tcp(i as u32), SockEvent::Data(p));
            }
            if got_fin && self.sockets.tcp[i].state != TcpState::Closed {
                self.app_sock_event(cx, app, SockRef::Tcp(i as u32), SockEvent::Eof);
            }
        }
        if self.sockets.tcp[i].state == TcpState::Closed {
            return;
        }
        // What the application answered carries the ACK; else send one.
        self.tcp_output(cx, i);
        let s = &self.sockets.tcp[i];
        if s.ack_pending || s.unacked_bytes > 0 {
            self.tcp_schedule_ack(cx, i, ack_now);
        }
    }

    /// An ICMP error quoting one of our segments (tcp_v4_err).
    pub(crate) fn tcp_icmp_error(&mut self, cx: &mut Cx, i: usize, ty: u8, code: u8, info: u16) {
        match (ty, code) {
            (3, 4) => self.tcp_mtu_reduced(cx, i, u32::from(info)),
            (3, c) => {
                let err = match c {
                    0 | 6 | 9 | 11 => Errno::NetUnreach,
                    2 | 3 => Errno::ConnRefused,
                    _ => Errno::HostUnreach,
                };
                self.tcp_hard_or_soft(cx, i, err);
            }
            (11, _) => self.tcp_hard_or_soft(cx, i, Errno::HostUnreach),
            _ => {}
        }
    }

    /// An ICMP error aborts a connection being opened; later it is only
    /// remembered (sk_err_soft), reported if the connection times out.
    fn tcp_hard_or_soft(&mut self, cx: &mut Cx, i: usize, err: Errno) {
        let s = &mut self.sockets.tcp[i];
        match s.state {
            TcpState::SynSent | TcpState::SynRecv => self.tcp_done(cx, i, Some(err)),
            _ => s.soft_error = Some(err),
        }
    }

    /// tcp_v4_mtu_reduced: a smaller path MTU; segments now too large are
    /// resent at the new size (tcp_simple_retransmit: no window reduction).
    fn tcp_mtu_reduced(&mut self, cx: &mut Cx, i: usize, mtu: u32) {
        let s = &mut self.sockets.tcp[i];
        let mtu = mtu.max(MIN_PMTU);
        if mtu >= s.pmtu {
            return;
        }
        s.pmtu = mtu;
        if !s.state.synchronized() {
            return;
        }
        let old = s.mss;
        s.mss = s.compute_mss();
        if s.mss >= old {
            return;
        }
        if s.resegment() {
            if s.ca != CaState::Loss {
                s.recover = s.snd_max;
                s.ca = CaState::Loss;
            }
            self.tcp_output(cx, i);
        }
    }
}

/// Slow start and congestion avoidance (tcp_reno_cong_avoid), counting
/// segments as Linux does, growing only while the window is used.
fn tcp_cong_avoid(s: &mut TcpSock, mut acked: u32) {
    let limited = if s.cwnd < s.ssthresh {
        s.cwnd < 2 * s.max_packets_out
    } else {
        s.is_cwnd_limited
    };
    if !limited || acked == 0 {
        return;
    }
    if s.cwnd < s.ssthresh {
        let grow = acked.min(s.ssthresh - s.cwnd);
        s.cwnd += grow;
        acked -= grow;
        if acked == 0 {
            return;
        }
    }
    s.cwnd_cnt += acked;
    if s.cwnd_cnt >= s.cwnd {
        let inc = s.cwnd_cnt / s.cwnd;
        s.cwnd_cnt -= inc * s.cwnd;
        s.cwnd = (s.cwnd + inc).min(1 << 20);
    }
}

/// The window scale a receive window needs (0 for windows below 64 KiB,
/// Linux's 7 for the default buffer).
fn wscale_for(rcv_wnd: u32) -> u8 {
    if rcv_wnd == RCV_WND_DEFAULT {
        return RCV_WSCALE_DEFAULT;
    }
    let mut space = u64::from(rcv_wnd) * 2;
    let mut s = 0u8;
    while space > 65535 && s < 14 {
        space >>= 1;
        s += 1;
    }
    s
}

fn trim_front(p: Payload, n: usize) -> Payload {
    if n == 0 {
        return p;
    }
    match p {
        Payload::Filler(len) => Payload::Filler(len.saturating_sub(n)),
        Payload::Data(d) => Payload::Data(d.get(n..).map(<[u8]>::to_vec).unwrap_or_default()),
    }
}

#[cfg(test)]
#[path = "tcp_tests.rs"]
mod tests;
