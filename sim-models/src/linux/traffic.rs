//! Traffic applications on the sockets: `nc` (OpenBSD netcat) and
//! `iperf3`, printing what the real tools print, in simulated time.
//!
//! `nc -l` prints what it receives as it arrives (one output line per
//! read); `nc` prints what the peer answers. Their connection messages
//! (`-v`) are OpenBSD netcat's. `iperf3` prints its interval table and
//! summary, in iperf3 3.x's own formats, when a test ends; the server's
//! block when its test ends. iperf3's control connection is not modelled:
//! the data connection is the only one on the wire, and the receiver's
//! figures reach the client's summary out of band.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use sim_core::packet::Payload;
use sim_core::time::{SimDuration, SimTime};

use crate::cmd::{Iperf3Cmd, NcCmd, NcData};
use crate::linux::apps::App;
use crate::linux::socket::{Endpoint, Errno};
use crate::linux::tcp::{TcpOpts, TcpState};
use crate::linux::{Cx, Event, NsId, World};

/// Which socket an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockRef {
    Tcp(u32),
    Udp(u32),
}

/// What a socket tells its application.
#[derive(Clone, Debug)]
pub enum SockEvent {
    /// connect() completed.
    Connected,
    /// A connection was accepted on `listener`.
    Accepted { listener: u32 },
    /// Bytes arrived, in order.
    Data(Payload),
    /// The peer closed its side (FIN).
    Eof,
    /// Data was acknowledged.
    Acked,
    /// Our FIN was acknowledged.
    FinAcked,
    /// The connection is over; with the error if it failed.
    Closed(Option<Errno>),
    /// A UDP datagram.
    Datagram {
        from: Endpoint,
        to: Endpoint,
        payload: Payload,
    },
    /// An error became pending on a UDP socket.
    Error(Errno),
}

// ============================================================== nc ====

/// A running `nc`.
#[derive(Debug, Clone)]
pub struct Nc {
    pub ns: NsId,
    pub cmd: NcCmd,
    /// The listening TCP socket (`nc -l`).
    pub listener: Option<u32>,
    /// TCP connections (the client's one, or those a listener accepted).
    pub conns: Vec<u32>,
    /// The UDP socket (`nc -u`).
    pub udp: Option<u32>,
    /// Connections (or UDP peers) already answered with `--reply`.
    replied: Vec<u32>,
    /// Writes done.
    pub next_write: usize,
    /// Payload bytes received.
    pub received: u64,
    pub done: bool,
    /// When the last data moved (for `-w`).
    last_activity: SimTime,
}

const NC_WRITE: u32 = 0;
const NC_QUIT: u32 = 1;
const NC_TIMEOUT: u32 = 2;

/// netcat-openbsd's read buffer: a UDP write of more is several datagrams.
const NC_BUFSIZE: u64 = 16384;

fn nc_bytes(d: &NcData) -> (Option<Vec<u8>>, u64) {
    match d {
        NcData::Text(t) => {
            let mut v = t.as_bytes().to_vec();
            v.push(b'\n');
            let n = v.len() as u64;
            (Some(v), n)
        }
        NcData::Bytes(n) => (None, *n),
    }
}

impl World {
    fn nc(&mut self, app: usize) -> &mut Nc {
        match &mut self.apps[app] {
            App::Nc(n) => n,
            _ => unreachable!("app {app} is nc"),
        }
    }

    /// Starts `nc` in `ns`. Errors are what nc prints before giving up.
    pub fn start_nc(&mut self, cx: &mut Cx, ns: NsId, cmd: NcCmd) -> Result<usize, String> {
        let app = self.apps.len();
        let proto = if cmd.udp { "udp" } else { "tcp" };
        self.apps.push(App::Nc(Box::new(Nc {
            ns,
            cmd: cmd.clone(),
            listener: None,
            conns: Vec::new(),
            udp: None,
            replied: Vec::new(),
            next_write: 0,
            received: 0,
            done: false,
            last_activity: cx.now,
        })));
        let fail = |w: &mut World, msg: String| {
            if let App::Nc(n) = &mut w.apps[app] {
                n.done = true;
            }
            Err(msg)
        };
        if cmd.listen {
            let port = cmd
                .port
                .or(cmd.source_port)
                .expect("parser requires a port");
            let addr = cmd.addr.or(cmd.source);
            if cmd.udp {
                match self.udp_open(cx, ns, app, "nc", addr, Some(port), None) {
                    Ok(s) => self.nc(app).udp = Some(s),
                    Err(e) => return fail(self, format!("nc: {e}")),
                }
            } else {
                match self.tcp_listen(cx, ns, app, "nc", addr, port, TcpOpts::default()) {
                    Ok(s) => self.nc(app).listener = Some(s),
                    Err(e) => return fail(self, format!("nc: {e}")),
                }
            }
            if cmd.verbose {
                let a = addr.unwrap_or(Ipv4Addr::UNSPECIFIED);
                self.out(cx.now, ns, format!("Listening on {a} {port}"));
            }
            return Ok(app);
        }
        let dst = Endpoint::new(
            cmd.addr.expect("parser requires an address"),
            cmd.port.expect("parser requires a port"),
        );
        let connect_fail = |w: &mut World, e: Errno| {
            let msg = if cmd.verbose {
                format!(
                    "nc: connect to {} port {} ({proto}) failed: {e}",
                    dst.addr, dst.port
                )
            } else {
                String::new()
            };
            fail(w, msg)
        };
        if cmd.udp {
            match self.udp_open(cx, ns, app, "nc", cmd.source, cmd.source_port, Some(dst)) {
                Ok(s) => self.nc(app).udp = Some(s),
                Err(e) => return connect_fail(self, e),
            }
            if cmd.verbose {
                self.out(
                    cx.now,
                    ns,
                    format!(
                        "Connection to {} {} port [udp/*] succeeded!",
                        dst.addr, dst.port
                    ),
                );
            }
            self.nc_write_next(cx, app);
        } else {
            match self.tcp_connect(
                cx,
                ns,
                app,
                "nc",
                cmd.source,
                cmd.source_port,
                dst,
                TcpOpts::default(),
            ) {
                Ok(s) => self.nc(app).conns.push(s),
                Err(e) => return connect_fail(self, e),
            }
        }
        if let Some(w) = cmd.wait_ms {
            cx.sched.schedule_at(
                cx.now + SimDuration::from_millis(w),
                Event::App {
                    app,
                    tag: NC_TIMEOUT,
                },
            );
        }
        Ok(app)
    }

    /// Makes the next write (and the ones after it, unless `-i` spaces them).
    fn nc_write_next(&mut self, cx: &mut Cx, app: usize) {
        loop {
            let n = self.nc(app);
            if n.done {
                return;
            }
            let k = n.next_write;
            let Some(item) = n.cmd.send.get(k).cloned() else {
                return self.nc_stdin_eof(cx, app);
            };
            n.next_write += 1;
            let interval = n.cmd.interval_ms;
            let more = n.next_write < n.cmd.send.len();
            let (data, len) = nc_bytes(&item);
            if let Some(&s) = n.conns.first() {
                self.tcp_write(cx, s, data, len);
            } else if let Some(u) = n.udp
                && !self.nc_udp_write(cx, app, u, None, data, len)
            {
                return;
            }
            if more && interval > 0 {
                cx.sched.schedule_at(
                    cx.now + SimDuration::from_millis(interval),
                    Event::App { app, tag: NC_WRITE },
                );
                return;
            }
            if !more {
                return self.nc_stdin_eof(cx, app);
            }
        }
    }

    /// One write on a UDP socket (as datagrams of up to 16 KiB). False if
    /// the send failed (nc stops writing).
    fn nc_udp_write(
        &mut self,
        cx: &mut Cx,
        app: usize,
        sock: u32,
        to: Option<Endpoint>,
        data: Option<Vec<u8>>,
        len: u64,
    ) -> bool {
        let mut parts: Vec<Payload> = Vec::new();
        match data {
            Some(d) => {
                for c in d.chunks(NC_BUFSIZE as usize) {
                    parts.push(Payload::Data(c.to_vec()));
                }
            }
            None => {
                let mut left = len;
                while left > 0 {
                    let n = left.min(NC_BUFSIZE);
                    parts.push(Payload::Filler(n as usize));
                    left -= n;
                }
            }
        }
        for p in parts {
            if self.udp_send(cx, sock, to, p).is_err() {
                // netcat-openbsd stops writing to the network, silently.
                self.nc(app).next_write = usize::MAX;
                return false;
            }
        }
        true
    }

    /// All of "stdin" is written: -N shuts down, -q quits later.
    fn nc_stdin_eof(&mut self, cx: &mut Cx, app: usize) {
        let n = self.nc(app);
        if n.cmd.listen {
            return;
        }
        let (shutdown, quit, conn) = (n.cmd.shutdown, n.cmd.quit_ms, n.conns.first().copied());
        if shutdown && let Some(s) = conn {
            self.tcp_close(cx, s);
        }
        if let Some(q) = quit {
            cx.sched.schedule_at(
                cx.now + SimDuration::from_millis(q),
                Event::App { app, tag: NC_QUIT },
            );
        }
    }

    /// nc exits: closes everything it has open.
    fn nc_exit(&mut self, cx: &mut Cx, app: usize) {
        let n = self.nc(app);
        if n.done {
            return;
        }
        n.done = true;
        let (conns, listener, udp) = (n.conns.clone(), n.listener, n.udp);
        for s in conns {
            self.tcp_close(cx, s);
        }
        if let Some(l) = listener {
            self.tcp_close(cx, l);
        }
        if let Some(u) = udp {
            self.udp_close(u);
        }
    }

    fn nc_timer(&mut self, cx: &mut Cx, app: usize, tag: u32) {
        match tag {
            NC_WRITE => self.nc_write_next(cx, app),
            NC_QUIT => self.nc_exit(cx, app),
            NC_TIMEOUT => {
                let n = self.nc(app);
                if n.done {
                    return;
                }
                let w = SimDuration::from_millis(n.cmd.wait_ms.unwrap_or(0));
                let (ns, verbose, dst) = (n.ns, n.cmd.verbose, (n.cmd.addr, n.cmd.port));
                if let Some(&s) = n.conns.first()
                    && self.sockets.tcp[s as usize].state == TcpState::SynSent
                {
                    // The connect timed out.
                    self.nc(app).done = true;
                    self.tcp_close(cx, s);
                    if verbose && let (Some(a), Some(p)) = dst {
                        self.out(
                            cx.now,
                            ns,
                            format!("nc: connect to {a} port {p} (tcp) failed: Operation now in progress"),
                        );
                    }
                    return;
                }
                let idle_since = self.nc(app).last_activity;
                let deadline = idle_since + w;
                if deadline <= cx.now {
                    self.nc_exit(cx, app);
                } else {
                    cx.sched.schedule_at(
                        deadline,
                        Event::App {
                            app,
                            tag: NC_TIMEOUT,
                        },
                    );
                }
            }
            _ => {}
        }
    }

    /// Prints received bytes as nc's stdout shows them.
    fn nc_print(&mut self, cx: &mut Cx, app: usize, payload: &Payload) {
        let n = self.nc(app);
        n.received += payload.len() as u64;
        n.last_activity = cx.now;
        let ns = n.ns;
        if let Payload::Data(d) = payload {
            // Zero bytes (--bytes filler) are not shown, as a terminal shows nothing for them.
            let text = String::from_utf8_lossy(d).replace('\0', "");
            let text = text.strip_suffix('\n').unwrap_or(&text);
            if !text.is_empty() {
                let t = text.to_string();
                self.out(cx.now, ns, t);
            }
        }
    }

    fn nc_event(&mut self, cx: &mut Cx, app: usize, sock: SockRef, ev: SockEvent) {
        let now = cx.now;
        match (sock, ev) {
            (SockRef::Tcp(s), SockEvent::Connected) => {
                let n = self.nc(app);
                n.last_activity = now;
                let (ns, verbose, zero) = (n.ns, n.cmd.verbose, n.cmd.zero_io);
                let r = self.sockets.tcp[s as usize].remote;
                if verbose {
                    self.out(
                        now,
                        ns,
                        format!(
                            "Connection to {} {} port [tcp/*] succeeded!",
                            r.addr, r.port
                        ),
                    );
                }
                if zero {
                    return self.nc_exit(cx, app);
                }
                self.nc_write_next(cx, app);
            }
            (SockRef::Tcp(s), SockEvent::Accepted { .. }) => {
                let n = self.nc(app);
                if n.done {
                    return self.tcp_close(cx, s);
                }
                n.conns.push(s);
                n.last_activity = now;
                let (ns, verbose, keep, listener) = (n.ns, n.cmd.verbose, n.cmd.keep, n.listener);
                if verbose {
                    let r = self.sockets.tcp[s as usize].remote;
                    self.out(
                        now,
                        ns,
                        format!("Connection received on {} {}", r.addr, r.port),
                    );
                }
                if !keep && let Some(l) = listener {
                    // Without -k, nc serves one connection: the listening
                    // socket closes once it is accepted.
                    self.nc(app).listener = None;
                    self.tcp_close(cx, l);
                }
            }
            (SockRef::Tcp(s), SockEvent::Data(p)) => {
                self.nc_print(cx, app, &p);
                let n = self.nc(app);
                if n.cmd.listen
                    && let Some(reply) = n.cmd.reply.clone()
                    && !n.replied.contains(&s)
                {
                    n.replied.push(s);
                    let (data, len) = nc_bytes(&reply);
                    self.tcp_write(cx, s, data, len);
                }
            }
            (SockRef::Tcp(s), SockEvent::Eof) => {
                let n = self.nc(app);
                n.last_activity = now;
                if n.cmd.listen {
                    // The client is done: close this connection; without -k nc exits.
                    let keep = n.cmd.keep;
                    n.conns.retain(|&c| c != s);
                    self.tcp_close(cx, s);
                    if !keep {
                        self.nc_exit(cx, app);
                    }
                } else if n.next_write >= n.cmd.send.len() {
                    self.nc_exit(cx, app);
                }
            }
            (SockRef::Tcp(s), SockEvent::Closed(err)) => {
                let n = self.nc(app);
                n.conns.retain(|&c| c != s);
                let (ns, verbose, listen) = (n.ns, n.cmd.verbose, n.cmd.listen);
                let sk = &self.sockets.tcp[s as usize];
                let never_connected = sk.established_at.is_none();
                let r = sk.remote;
                if !listen {
                    if let Some(e) = err
                        && never_connected
                        && verbose
                    {
                        self.out(
                            now,
                            ns,
                            format!(
                                "nc: connect to {} port {} (tcp) failed: {e}",
                                r.addr, r.port
                            ),
                        );
                    }
                    self.nc(app).done = true;
                }
            }
            (SockRef::Udp(u), SockEvent::Datagram { from, payload, .. }) => {
                self.nc_print(cx, app, &payload);
                let n = self.nc(app);
                if !n.cmd.listen {
                    return;
                }
                let (keep, reply) = (n.cmd.keep, n.cmd.reply.clone());
                if !keep && self.sockets.udp[u as usize].remote.is_none() {
                    // nc -u -l answers the first peer only (it connect()s).
                    self.udp_connect(u, from);
                }
                if let Some(r) = reply {
                    let (data, len) = nc_bytes(&r);
                    self.nc_udp_write(cx, app, u, Some(from), data, len);
                }
            }
            _ => {}
        }
    }
}

// =========================================================== iperf3 ====

/// One reporting interval's counters.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    bytes: u64,
    retrans: u64,
    packets: u64,
    lost: u64,
}

/// A running `iperf3`.
#[derive(Debug, Clone)]
pub struct Iperf3 {
    pub ns: NsId,
    pub cmd: Iperf3Cmd,
    /// Server: the listening TCP socket and the UDP socket.
    listener: Option<u32>,
    /// The test's TCP connection.
    conn: Option<u32>,
    /// The test's UDP socket.
    udp: Option<u32>,
    /// UDP server: the client it is testing with.
    peer: Option<Endpoint>,
    /// Server: the test number.
    test_no: u32,
    /// When the test started (connected / first datagram).
    start: Option<SimTime>,
    /// When the sender stopped (`-t` elapsed, or `-n` all sent).
    end: Option<SimTime>,
    /// Counters at the last interval boundary.
    last: Counters,
    last_tick: SimTime,
    pub transcript: String,
    pub done: bool,
    /// Interval timer generation (a new test invalidates old ticks).
    generation: u32,
    // UDP sender
    udp_seq: u32,
    udp_sent: Counters,
    // UDP receiver
    rx: Counters,
    rx_max_seq: u32,
    jitter_ns: f64,
    prev_transit: Option<f64>,
    last_rx: SimTime,
    /// The receiver's figures for the client's summary.
    pub result: Option<Iperf3Result>,
}

/// What one side measured over a test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iperf3Result {
    pub bytes: u64,
    pub duration: SimDuration,
    pub jitter_ms: f64,
    pub lost: u64,
    pub packets: u64,
}

const IP_END: u32 = 1;
const IP_UDP_SEND: u32 = 2;
const IP_RESULTS: u32 = 3;
/// How long after a UDP test's end the results are exchanged (the control
/// connection's round trips, not modelled).
const UDP_RESULTS_DELAY: SimDuration = SimDuration::from_millis(10);
/// Tags above this are ticks, carrying the generation.
const IP_GEN_BASE: u32 = 16;

/// The iperf3 stream id the tables show (the socket's file descriptor).
const STREAM_ID: u32 = 5;
/// iperf3's default UDP datagram size.
const UDP_DEFAULT_LEN: u32 = 1460;
/// iperf3's default UDP bitrate.
const UDP_DEFAULT_RATE: u64 = 1_000_000;

/// iperf3's unit_snprintf: adaptive units, 4 significant places. Bytes use
/// powers of 1024 (`KByte`), bits powers of 1000 (`Mbit`).
pub fn iperf_unit(v: f64, bits: bool) -> String {
    let (base, labels): (f64, [&str; 5]) = if bits {
        (1000.0, ["bit", "Kbit", "Mbit", "Gbit", "Tbit"])
    } else {
        (1024.0, ["Byte", "KByte", "MByte", "GByte", "TByte"])
    };
    let mut x = v;
    let mut conv = 0;
    while x >= base && conv < 4 {
        x /= base;
        conv += 1;
    }
    let label = labels[conv];
    if x < 9.995 {
        format!("{x:4.2} {label}")
    } else if x < 99.95 {
        format!("{x:4.1} {label}")
    } else {
        format!("{x:4.0} {label}")
    }
}

/// C's `%.2g` for a percentage.
fn pct_g2(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let mag = v.abs().log10().floor() as i32;
    if mag >= 2 {
        // %g switches to an exponent: 100 is "1e+02".
        let m = v / 10f64.powi(mag);
        let ms = format!("{m:.1}");
        let ms = ms.trim_end_matches('0').trim_end_matches('.');
        return format!("{ms}e+{mag:02}");
    }
    let decimals = (1 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn secs(d: SimDuration) -> f64 {
    d.as_nanos() as f64 / 1e9
}

/// One table row: `[  5]   0.00-1.00   sec   112 MBytes   941 Mbits/sec` and the rest.
fn row(st: f64, et: f64, bytes: u64, dur: f64, tail: &str) -> String {
    let rate = if dur > 0.0 {
        bytes as f64 * 8.0 / dur
    } else {
        0.0
    };
    format!(
        "[{STREAM_ID:>3}] {st:6.2}-{et:<6.2} sec  {}s  {}s/sec{tail}\n",
        iperf_unit(bytes as f64, false),
        iperf_unit(rate, true)
    )
}

const SEPARATOR: &str = "- - - - - - - - - - - - - - - - - - - - - - - - -\n";
const SERVER_RULE: &str = "-----------------------------------------------------------\n";

impl World {
    fn iperf(&mut self, app: usize) -> &mut Iperf3 {
        match &mut self.apps[app] {
            App::Iperf3(n) => n,
            _ => unreachable!("app {app} is iperf3"),
        }
    }

    /// Starts `iperf3` in `ns`.
    pub fn start_iperf3(&mut self, cx: &mut Cx, ns: NsId, cmd: Iperf3Cmd) -> Result<usize, String> {
        let app = self.apps.len();
        self.apps.push(App::Iperf3(Box::new(Iperf3 {
            ns,
            cmd: cmd.clone(),
            listener: None,
            conn: None,
            udp: None,
            peer: None,
            test_no: 1,
            start: None,
            end: None,
            last: Counters::default(),
            last_tick: cx.now,
            transcript: String::new(),
            done: false,
            generation: 0,
            udp_seq: 0,
            udp_sent: Counters::default(),
            rx: Counters::default(),
            rx_max_seq: 0,
            jitter_ns: 0.0,
            prev_transit: None,
            last_rx: cx.now,
            result: None,
        })));
        let fail = |w: &mut World, msg: String| {
            w.iperf(app).done = true;
            Err(msg)
        };
        let opts = TcpOpts {
            rcv_wnd: cmd.window.unwrap_or(crate::linux::tcp::RCV_WND_DEFAULT),
            mss_clamp: cmd.mss,
        };
        match cmd.client {
            None => {
                match self.tcp_listen(cx, ns, app, "iperf3", cmd.bind, cmd.port, opts) {
                    Ok(l) => self.iperf(app).listener = Some(l),
                    Err(e) => {
                        return fail(
                            self,
                            format!(
                                "iperf3: error - unable to start listener for connections: {e}"
                            ),
                        );
                    }
                }
                match self.udp_open(cx, ns, app, "iperf3", cmd.bind, Some(cmd.port), None) {
                    Ok(u) => self.iperf(app).udp = Some(u),
                    Err(e) => {
                        return fail(
                            self,
                            format!(
                                "iperf3: error - unable to start listener for connections: {e}"
                            ),
                        );
                    }
                }
                self.iperf_server_banner(app);
                Ok(app)
            }
            Some(dst) => {
                let dst = Endpoint::new(dst, cmd.port);
                let _ = writeln!(
                    self.iperf(app).transcript,
                    "Connecting to host {}, port {}",
                    dst.addr,
                    dst.port
                );
                if cmd.udp {
                    match self.udp_open(cx, ns, app, "iperf3", cmd.bind, cmd.cport, Some(dst)) {
                        Ok(u) => self.iperf(app).udp = Some(u),
                        Err(e) => {
                            return fail(
                                self,
                                format!("iperf3: error - unable to connect to server: {e}"),
                            );
                        }
                    }
                    self.iperf_begin(cx, app);
                    self.iperf_udp_send(cx, app);
                } else {
                    match self.tcp_connect(cx, ns, app, "iperf3", cmd.bind, cmd.cport, dst, opts) {
                        Ok(s) => self.iperf(app).conn = Some(s),
                        Err(e) => {
                            return fail(
                                self,
                                format!(
                                    "iperf3: error - unable to connect to server - server may have stopped running or use a different port, firewall issue, etc.: {e}"
                                ),
                            );
                        }
                    }
                }
                Ok(app)
            }
        }
    }

    fn iperf_server_banner(&mut self, app: usize) {
        let ip = self.iperf(app);
        let port = ip.cmd.port;
        let n = ip.test_no;
        let _ = write!(
            ip.transcript,
            "{SERVER_RULE}Server listening on {port} (test #{n})\n{SERVER_RULE}"
        );
    }

    /// The test starts: connection line, table header, interval timer.
    fn iperf_begin(&mut self, cx: &mut Cx, app: usize) {
        let now = cx.now;
        let (ns, conn, udp, peer, client) = {
            let ip = self.iperf(app);
            (ip.ns, ip.conn, ip.udp, ip.peer, ip.cmd.client.is_some())
        };
        let (local, remote) = match (conn, udp) {
            (Some(s), _) => {
                let sk = &self.sockets.tcp[s as usize];
                (sk.local, sk.remote)
            }
            (None, Some(u)) => {
                let us = &self.sockets.udp[u as usize];
                let remote = us.remote.or(peer).unwrap_or(us.local);
                let mut local = us.local;
                if local.addr.is_unspecified() {
                    local.addr = self
                        .route_info(ns, remote.addr, None)
                        .map_or(local.addr, |r| r.src);
                }
                (local, remote)
            }
            _ => return,
        };
        let ip = self.iperf(app);
        ip.start = Some(now);
        ip.last_tick = now;
        ip.last = Counters::default();
        ip.generation += 1;
        let udp = ip.cmd.udp || ip.peer.is_some();
        if !client {
            let _ = writeln!(
                ip.transcript,
                "Accepted connection from {}, port {}",
                remote.addr, remote.port
            );
        }
        let _ = writeln!(
            ip.transcript,
            "[{STREAM_ID:>3}] local {} port {} connected to {} port {}",
            local.addr, local.port, remote.addr, remote.port
        );
        let header = match (client, udp) {
            (true, false) => "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd",
            (true, true) => "[ ID] Interval           Transfer     Bitrate         Total Datagrams",
            (false, false) => "[ ID] Interval           Transfer     Bitrate",
            (false, true) => {
                "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams"
            }
        };
        let _ = writeln!(ip.transcript, "{header}");
        let (interval, generation) = (ip.cmd.interval_ms, ip.generation);
        if interval > 0 {
            cx.sched.schedule_at(
                now + SimDuration::from_millis(interval),
                Event::App {
                    app,
                    tag: IP_GEN_BASE + generation,
                },
            );
        }
        if client {
            let (time_ms, bytes) = (ip.cmd.time_ms, ip.cmd.bytes);
            if bytes.is_none() {
                let t = time_ms.unwrap_or(10_000);
                cx.sched.schedule_at(
                    now + SimDuration::from_millis(t),
                    Event::App { app, tag: IP_END },
                );
            }
        }
    }

    fn iperf_is_client(&self, app: usize) -> bool {
        matches!(&self.apps[app], App::Iperf3(i) if i.cmd.client.is_some())
    }

    /// The counters now (sender: bytes sent; receiver: bytes received).
    fn iperf_counters(&self, app: usize) -> Counters {
        let App::Iperf3(ip) = &self.apps[app] else {
            return Counters::default();
        };
        let client = ip.cmd.client.is_some();
        match (ip.conn, client) {
            (Some(s), true) => {
                let sk = &self.sockets.tcp[s as usize];
                Counters {
                    bytes: sk.sent_bytes,
                    retrans: sk.retrans,
                    ..Default::default()
                }
            }
            (Some(s), false) => Counters {
                bytes: self.sockets.tcp[s as usize].received_bytes,
                ..Default::default()
            },
            (None, true) => ip.udp_sent,
            (None, false) => ip.rx,
        }
    }

    /// Prints the interval from the last boundary to `now`.
    fn iperf_interval(&mut self, app: usize, now: SimTime, last_one: bool) {
        let c = self.iperf_counters(app);
        let (cwnd, client) = {
            let App::Iperf3(ip) = &self.apps[app] else {
                return;
            };
            let cwnd = ip.conn.map(|s| self.sockets.tcp[s as usize].cwnd_bytes());
            (cwnd, ip.cmd.client.is_some())
        };
        let jitter = self.iperf(app).jitter_ns;
        let ip = self.iperf(app);
        let Some(start) = ip.start else { return };
        let dur = now.saturating_since(ip.last_tick);
        let interval = SimDuration::from_millis(ip.cmd.interval_ms.max(1));
        if last_one && dur.as_nanos() * 10 < interval.as_nanos() {
            // iperf3 drops a final interval shorter than a tenth of one.
            return;
        }
        if ip.cmd.interval_ms == 0 {
            return;
        }
        let st = secs(ip.last_tick.saturating_since(start));
        let et = secs(now.saturating_since(start));
        let bytes = c.bytes - ip.last.bytes;
        let d = secs(dur);
        let udp = ip.cmd.udp || ip.peer.is_some();
        let line = match (client, udp, cwnd) {
            (true, false, Some(cw)) => {
                let retr = c.retrans - ip.last.retrans;
                row(
                    st,
                    et,
                    bytes,
                    d,
                    &format!("  {retr:>3}   {}s       ", iperf_unit(cw as f64, false)),
                )
            }
            (true, true, _) => {
                let pk = c.packets - ip.last.packets;
                row(st, et, bytes, d, &format!(" {:10} {pk}  ", ""))
            }
            (false, true, _) => {
                let pk = c.packets - ip.last.packets;
                let lost = c.lost - ip.last.lost;
                let pct = if pk > 0 {
                    100.0 * lost as f64 / pk as f64
                } else {
                    0.0
                };
                row(
                    st,
                    et,
                    bytes,
                    d,
                    &format!(
                        "  {:5.3} ms  {lost}/{pk} ({}%)  ",
                        jitter / 1e6,
                        pct_g2(pct)
                    ),
                )
            }
            _ => row(st, et, bytes, d, "                  "),
        };
        ip.transcript.push_str(&line);
        ip.last = c;
        ip.last_tick = now;
    }

    fn iperf_timer(&mut self, cx: &mut Cx, app: usize, tag: u32) {
        if self.iperf(app).done {
            return;
        }
        if tag == IP_UDP_SEND && self.iperf(app).end.is_some() {
            return;
        }
        match tag {
            IP_END => self.iperf_client_stop(cx, app),
            IP_RESULTS => {
                if let Some(srv) = self.iperf_udp_server(app) {
                    self.iperf_server_finish(cx, srv);
                }
                self.iperf_client_summary(cx, app);
            }
            IP_UDP_SEND => self.iperf_udp_send(cx, app),
            t if t >= IP_GEN_BASE => {
                let ip = self.iperf(app);
                if t - IP_GEN_BASE != ip.generation || ip.start.is_none() || ip.end.is_some() {
                    return;
                }
                let interval = SimDuration::from_millis(ip.cmd.interval_ms);
                self.iperf_interval(app, cx.now, false);
                cx.sched
                    .schedule_at(cx.now + interval, Event::App { app, tag });
            }
            _ => {}
        }
    }

    /// The client's test time is up (or all `-n` bytes are acknowledged):
    /// stop sending, print the last interval, close.
    fn iperf_client_stop(&mut self, cx: &mut Cx, app: usize) {
        let ip = self.iperf(app);
        if ip.end.is_some() {
            return;
        }
        ip.end = Some(cx.now);
        let (conn, udp) = (ip.conn, ip.udp);
        self.iperf_interval(app, cx.now, true);
        if let Some(s) = conn {
            self.tcp_stop_writing(s);
            self.tcp_close(cx, s);
            if self.sockets.tcp[s as usize].state == TcpState::Closed {
                self.iperf_client_summary(cx, app);
            }
        } else if udp.is_some() {
            // The server hears of the end over the control connection (not
            // modelled), after the datagrams still in flight: the results
            // are exchanged a little later.
            cx.sched.schedule_at(
                cx.now + UDP_RESULTS_DELAY,
                Event::App {
                    app,
                    tag: IP_RESULTS,
                },
            );
        }
    }

    /// The server app testing with this client (found by its sockets).
    fn iperf_udp_server(&self, app: usize) -> Option<usize> {
        let App::Iperf3(ip) = &self.apps[app] else {
            return None;
        };
        let u = &self.sockets.udp[ip.udp? as usize];
        let mut me = u.local;
        let remote = u.remote?;
        if me.addr.is_unspecified() {
            me.addr = self.route_info(ip.ns, remote.addr, None).ok()?.src;
        }
        self.apps.iter().position(|a| {
            matches!(a, App::Iperf3(s) if s.cmd.client.is_none() && !s.done && s.peer == Some(me))
        })
    }

    /// The receiving side's figures for the client's summary.
    fn iperf_receiver_result(&self, app: usize) -> Option<Iperf3Result> {
        let App::Iperf3(ip) = &self.apps[app] else {
            return None;
        };
        if let Some(s) = ip.conn {
            let sk = &self.sockets.tcp[s as usize];
            let peer = self
                .sockets
                .tcp
                .iter()
                .find(|o| o.local == sk.remote && o.remote == sk.local && !o.active)?;
            return Some(Iperf3Result {
                bytes: peer.received_bytes,
                duration: peer
                    .last_progress
                    .saturating_since(peer.established_at.unwrap_or(peer.opened_at)),
                jitter_ms: 0.0,
                lost: 0,
                packets: 0,
            });
        }
        let srv = self.iperf_udp_server(app);
        srv.and_then(|s| match &self.apps[s] {
            App::Iperf3(x) => x.result,
            _ => None,
        })
        .or_else(|| {
            self.apps.iter().find_map(|a| match a {
                App::Iperf3(x) if x.cmd.client.is_none() => x.result,
                _ => None,
            })
        })
    }

    fn iperf_client_summary(&mut self, cx: &mut Cx, app: usize) {
        let rx = self.iperf_receiver_result(app);
        let c = self.iperf_counters(app);
        let ip = self.iperf(app);
        if ip.done {
            return;
        }
        ip.done = true;
        let (Some(start), Some(end)) = (ip.start, ip.end) else {
            return;
        };
        let dur = end.saturating_since(start);
        let t = secs(dur);
        ip.transcript.push_str(SEPARATOR);
        if ip.cmd.udp {
            ip.transcript.push_str(
                "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams\n",
            );
            ip.transcript.push_str(&row(
                0.0,
                t,
                c.bytes,
                t,
                &format!("  {:5.3} ms  0/{} (0%)  sender", 0.0, c.packets),
            ));
            if let Some(r) = rx {
                let rt = secs(r.duration);
                let pct = if r.packets > 0 {
                    100.0 * r.lost as f64 / r.packets as f64
                } else {
                    0.0
                };
                ip.transcript.push_str(&row(
                    0.0,
                    rt,
                    r.bytes,
                    rt,
                    &format!(
                        "  {:5.3} ms  {}/{} ({}%)  receiver",
                        r.jitter_ms,
                        r.lost,
                        r.packets,
                        pct_g2(pct)
                    ),
                ));
            }
        } else {
            ip.transcript
                .push_str("[ ID] Interval           Transfer     Bitrate         Retr\n");
            ip.transcript.push_str(&row(
                0.0,
                t,
                c.bytes,
                t,
                &format!("  {:>3}             sender", c.retrans),
            ));
            if let Some(r) = rx {
                let rt = secs(r.duration);
                ip.transcript
                    .push_str(&row(0.0, rt, r.bytes, rt, "                  receiver"));
            }
        }
        ip.transcript.push_str("\niperf Done.");
        let (ns, text, udp) = (ip.ns, std::mem::take(&mut ip.transcript), ip.udp);
        self.out(cx.now, ns, text);
        if let Some(u) = udp {
            self.udp_close(u);
        }
    }

    /// The server's test ended: summary, then listen for the next (or exit with -1).
    fn iperf_server_finish(&mut self, cx: &mut Cx, app: usize) {
        let now = cx.now;
        let ip = self.iperf(app);
        let Some(start) = ip.start else { return };
        let end = if ip.peer.is_some() { ip.last_rx } else { now };
        ip.end = Some(end);
        self.iperf_interval(app, end, true);
        let c = self.iperf_counters(app);
        let ip = self.iperf(app);
        let dur = end.saturating_since(start);
        let t = secs(dur);
        ip.transcript.push_str(SEPARATOR);
        let udp = ip.peer.is_some();
        if udp {
            ip.transcript.push_str(
                "[ ID] Interval           Transfer     Bitrate         Jitter    Lost/Total Datagrams\n",
            );
            let pct = if c.packets > 0 {
                100.0 * c.lost as f64 / c.packets as f64
            } else {
                0.0
            };
            let jitter = ip.jitter_ns / 1e6;
            ip.transcript.push_str(&row(
                0.0,
                t,
                c.bytes,
                t,
                &format!(
                    "  {jitter:5.3} ms  {}/{} ({}%)  receiver",
                    c.lost,
                    c.packets,
                    pct_g2(pct)
                ),
            ));
            ip.result = Some(Iperf3Result {
                bytes: c.bytes,
                duration: dur,
                jitter_ms: jitter,
                lost: c.lost,
                packets: c.packets,
            });
        } else {
            ip.transcript
                .push_str("[ ID] Interval           Transfer     Bitrate\n");
            ip.transcript
                .push_str(&row(0.0, t, c.bytes, t, "                  receiver"));
            ip.result = Some(Iperf3Result {
                bytes: c.bytes,
                duration: dur,
                jitter_ms: 0.0,
                lost: 0,
                packets: 0,
            });
        }
        let one_off = ip.cmd.one_off;
        ip.test_no += 1;
        ip.start = None;
        ip.end = None;
        ip.conn = None;
        ip.peer = None;
        ip.generation += 1;
        ip.rx = Counters::default();
        ip.rx_max_seq = 0;
        ip.jitter_ns = 0.0;
        ip.prev_transit = None;
        let ns = ip.ns;
        if one_off {
            ip.done = true;
            let text = std::mem::take(&mut ip.transcript);
            self.out(now, ns, text.trim_end().to_string());
            let (l, u) = (ip_listener(self, app), ip_udp(self, app));
            if let Some(l) = l {
                self.tcp_close(cx, l);
            }
            if let Some(u) = u {
                self.udp_close(u);
            }
            return;
        }
        self.iperf_server_banner(app);
        let ip = self.iperf(app);
        let text = std::mem::take(&mut ip.transcript);
        // The next banner is printed now, with this test's block.
        self.out(now, ns, text.trim_end().to_string());
        self.iperf(app).transcript.clear();
    }

    /// Sends the next paced UDP datagram (iperf3 -u).
    fn iperf_udp_send(&mut self, cx: &mut Cx, app: usize) {
        let now = cx.now;
        let ip = self.iperf(app);
        if ip.end.is_some() || ip.done {
            return;
        }
        let Some(u) = ip.udp else { return };
        let Some(start) = ip.start else { return };
        let len = ip.cmd.length.unwrap_or(UDP_DEFAULT_LEN).max(16);
        let rate = ip.cmd.bitrate.unwrap_or(UDP_DEFAULT_RATE);
        if let Some(n) = ip.cmd.bytes
            && ip.udp_sent.bytes >= n
        {
            return self.iperf_client_stop(cx, app);
        }
        ip.udp_seq = ip.udp_seq.wrapping_add(1);
        let seq = ip.udp_seq;
        // iperf3's UDP header: send time (sec, usec) and a 32-bit count.
        let t = now.as_nanos();
        let mut data = vec![0u8; len as usize];
        data[0..4].copy_from_slice(&((t / 1_000_000_000) as u32).to_be_bytes());
        data[4..8].copy_from_slice(&(((t % 1_000_000_000) / 1000) as u32).to_be_bytes());
        data[8..12].copy_from_slice(&seq.to_be_bytes());
        if self.udp_send(cx, u, None, Payload::Data(data)).is_ok() {
            let ip = self.iperf(app);
            ip.udp_sent.bytes += u64::from(len);
            ip.udp_sent.packets += 1;
        }
        let ip = self.iperf(app);
        // Paced: the k-th datagram leaves at start + k * len * 8 / rate.
        let next = if rate == 0 {
            now
        } else {
            let k = u128::from(ip.udp_seq);
            let ns = k * u128::from(len) * 8 * 1_000_000_000 / u128::from(rate);
            start + SimDuration::from_nanos(ns.min(u128::from(u64::MAX / 2)) as u64)
        };
        let next = next.max(now);
        cx.sched.schedule_at(
            next,
            Event::App {
                app,
                tag: IP_UDP_SEND,
            },
        );
    }

    fn iperf_event(&mut self, cx: &mut Cx, app: usize, sock: SockRef, ev: SockEvent) {
        let now = cx.now;
        let client = self.iperf_is_client(app);
        match (sock, ev) {
            (SockRef::Tcp(s), SockEvent::Connected) => {
                self.iperf(app).conn = Some(s);
                self.iperf_begin(cx, app);
                let n = self.iperf(app).cmd.bytes;
                match n {
                    Some(n) => {
                        self.tcp_write(cx, s, None, n);
                    }
                    None => self.tcp_write_unlimited(cx, s),
                }
            }
            (SockRef::Tcp(s), SockEvent::Acked) if client => {
                let ip = self.iperf(app);
                if ip.cmd.bytes.is_some()
                    && ip.end.is_none()
                    && self.sockets.tcp[s as usize].all_acked()
                {
                    self.iperf_client_stop(cx, app);
                }
            }
            (SockRef::Tcp(_), SockEvent::FinAcked) if client => {
                self.iperf_client_summary(cx, app);
            }
            (SockRef::Tcp(s), SockEvent::Closed(err)) if client => {
                let ip = self.iperf(app);
                if ip.done {
                    return;
                }
                match err {
                    Some(e) if ip.start.is_none() => {
                        ip.done = true;
                        let _ = write!(
                            ip.transcript,
                            "iperf3: error - unable to connect to server - server may have stopped running or use a different port, firewall issue, etc.: {e}"
                        );
                        let (ns, text) = (ip.ns, std::mem::take(&mut ip.transcript));
                        self.out(now, ns, text);
                    }
                    Some(e) => {
                        ip.done = true;
                        let _ = write!(
                            ip.transcript,
                            "iperf3: error - control socket has closed unexpectedly: {e}"
                        );
                        let (ns, text) = (ip.ns, std::mem::take(&mut ip.transcript));
                        self.out(now, ns, text);
                    }
                    None => {
                        if ip.end.is_none() {
                            ip.end = Some(now);
                        }
                        let _ = s;
                        self.iperf_client_summary(cx, app);
                    }
                }
            }
            (SockRef::Tcp(s), SockEvent::Accepted { .. }) => {
                let ip = self.iperf(app);
                if ip.done || ip.conn.is_some() || ip.peer.is_some() {
                    // One test at a time.
                    return self.tcp_close(cx, s);
                }
                ip.conn = Some(s);
                // The client's -w reaches the server over the control
                // connection (not modelled): its data socket takes it.
                let child = &self.sockets.tcp[s as usize];
                let (l, r) = (child.local, child.remote);
                if let Some(w) = self
                    .sockets
                    .tcp
                    .iter()
                    .find(|o| o.active && o.local == r && o.remote == l)
                    .map(|o| o.opts.rcv_wnd)
                {
                    self.sockets.tcp[s as usize].opts.rcv_wnd = w;
                }
                self.iperf_begin(cx, app);
            }
            (SockRef::Tcp(s), SockEvent::Eof) if !client => {
                if self.iperf(app).conn == Some(s) {
                    self.iperf_server_finish(cx, app);
                }
                self.tcp_close(cx, s);
            }
            (SockRef::Tcp(s), SockEvent::Closed(_))
                if !client && self.iperf(app).conn == Some(s) =>
            {
                self.iperf_server_finish(cx, app);
            }
            (SockRef::Udp(_), SockEvent::Datagram { from, payload, .. }) if !client => {
                let ip = self.iperf(app);
                if ip.done || ip.conn.is_some() {
                    return;
                }
                if ip.peer.is_none() {
                    ip.peer = Some(from);
                    self.iperf_begin(cx, app);
                }
                let ip = self.iperf(app);
                if ip.peer != Some(from) {
                    return;
                }
                ip.last_rx = now;
                ip.rx.bytes += payload.len() as u64;
                let Payload::Data(d) = &payload else { return };
                if d.len() < 12 {
                    return;
                }
                let sec = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
                let usec = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
                let seq = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
                // iperf_udp_recv: loss from sequence gaps, RFC 1889 jitter.
                if seq > ip.rx_max_seq {
                    let gap = u64::from(seq - ip.rx_max_seq - 1);
                    ip.rx.lost += gap;
                    ip.rx.packets += gap + 1;
                    ip.rx_max_seq = seq;
                } else {
                    ip.rx.lost = ip.rx.lost.saturating_sub(1);
                }
                let sent = f64::from(sec) * 1e9 + f64::from(usec) * 1e3;
                let transit = now.as_nanos() as f64 - sent;
                if let Some(prev) = ip.prev_transit {
                    let d = (transit - prev).abs();
                    ip.jitter_ns += (d - ip.jitter_ns) / 16.0;
                }
                ip.prev_transit = Some(transit);
            }
            _ => {}
        }
    }

    /// Delivers a socket event to the application that owns the socket.
    pub(crate) fn app_sock_event(&mut self, cx: &mut Cx, app: usize, sock: SockRef, ev: SockEvent) {
        match self.apps.get(app) {
            Some(App::Nc(_)) => self.nc_event(cx, app, sock, ev),
            Some(App::Iperf3(_)) => self.iperf_event(cx, app, sock, ev),
            Some(App::Bird(_)) => self.bird_sock_event(cx, app, sock, ev),
            _ => {}
        }
    }

    /// A timer of `nc` or `iperf3`.
    pub(crate) fn traffic_timer(&mut self, cx: &mut Cx, app: usize, tag: u32) {
        match self.apps.get(app) {
            Some(App::Nc(_)) => self.nc_timer(cx, app, tag),
            Some(App::Iperf3(_)) => self.iperf_timer(cx, app, tag),
            _ => {}
        }
    }
}

fn ip_listener(w: &World, app: usize) -> Option<u32> {
    match &w.apps[app] {
        App::Iperf3(i) => i.listener,
        _ => None,
    }
}

fn ip_udp(w: &World, app: usize) -> Option<u32> {
    match &w.apps[app] {
        App::Iperf3(i) => i.udp,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf_units_as_iperf3_prints_them() {
        assert_eq!(iperf_unit(117_440_512.0, false), " 112 MByte");
        assert_eq!(iperf_unit(941_000_000.0, true), " 941 Mbit");
        assert_eq!(
            iperf_unit(1.1 * 1024.0 * 1024.0 * 1024.0, false),
            "1.10 GByte"
        );
        assert_eq!(iperf_unit(387_072.0, false), " 378 KByte");
        assert_eq!(iperf_unit(1_050_000.0, true), "1.05 Mbit");
        assert_eq!(iperf_unit(0.0, false), "0.00 Byte");
        assert_eq!(iperf_unit(45_500_000.0, true), "45.5 Mbit");
    }

    #[test]
    fn rows_match_iperf3_formats() {
        let r = row(0.0, 1.0, 117_440_512, 1.0, "    0    378 KBytes       ");
        assert_eq!(
            r,
            "[  5]   0.00-1.00   sec   112 MBytes   940 Mbits/sec    0    378 KBytes       \n"
        );
        let r = row(0.0, 10.0, 1_181_116_006, 10.0, "    0             sender");
        assert_eq!(
            r,
            "[  5]   0.00-10.00  sec  1.10 GBytes   945 Mbits/sec    0             sender\n"
        );
    }

    #[test]
    fn percent_like_printf_g() {
        assert_eq!(pct_g2(0.0), "0");
        assert_eq!(pct_g2(1.0), "1");
        assert_eq!(pct_g2(1.5), "1.5");
        assert_eq!(pct_g2(12.34), "12");
        assert_eq!(pct_g2(0.25), "0.25");
        assert_eq!(pct_g2(100.0), "1e+02");
    }
}
