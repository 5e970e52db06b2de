//! Parsing the traffic tools: `nc` (OpenBSD netcat, the `nc` of Debian and
//! Ubuntu) and `iperf3`. A child module of `parse`, sharing its getopt.
//!
//! Representation choices:
//! - A shell line is one simple command, so `echo hello | nc ...` cannot be
//!   written. `nc` takes podpath's long options instead: `--send TEXT` writes
//!   TEXT and a newline (what `echo TEXT | nc` writes), `--bytes N` writes N
//!   zero bytes (`head -c N /dev/zero | nc`); several are written in order,
//!   `-i SECS` apart. A listener answers each connection with `--reply TEXT`
//!   (or `--reply-bytes N`), the request/response a web server would give.
//! - `nc -l` takes its port as an operand or with `-p`, and its address as
//!   an operand before the port or with `-s` (`nc -l 8888`, `nc -kl
//!   172.16.2.1 8888`, `nc -l -s 172.16.2.1 -p 8888`).
//! - `-w`, `-q` and `-i` take whole seconds, as OpenBSD netcat does.
//! - `iperf3` sizes (`-n`, `-l`, `-w`) take K/M/G suffixes as powers of 1024
//!   and rates (`-b`) as powers of 1000, as iperf3's unit_atof and
//!   unit_atof_rate do.

use super::{
    AddrErr, Item, OptSpec, R, Word, abbreviated_msg, decimal, getopt, ipv4, opt_arg, perr,
    secs_to_ms,
};
use crate::cmd::{Command, CommandKind, Iperf3Cmd, NcCmd, NcData};

/// Pseudo-letters for long options with no short form.
const SEND: char = '\u{10}';
const BYTES: char = '\u{11}';
const REPLY: char = '\u{12}';
const REPLY_BYTES: char = '\u{13}';
const CPORT: char = '\u{14}';

const NC_SPEC: OptSpec = OptSpec {
    prog: "nc",
    flags: "lkuvnNzd",
    with_arg: "spwqi\u{10}\u{11}\u{12}\u{13}",
    known: "46CDFhIMmOPrSTtUVWXxZ",
    long: &[
        ("send", SEND),
        ("bytes", BYTES),
        ("reply", REPLY),
        ("reply-bytes", REPLY_BYTES),
    ],
    expected: "nc [-u] [-v] [-N] [-s SRC] [-p SPORT] [-w SECS] [-q SECS] [-i SECS] ADDR PORT \
               [--send TEXT] [--bytes N], or nc -l [-k] [-u] [-v] [ADDR] PORT [--reply TEXT]",
};

/// A decimal count with an optional K, M or G suffix (powers of 1024).
fn size_1024(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac = &frac[..frac.len().min(9)];
    let digits: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let part = u128::from(digits) * u128::from(mult) / 10u128.pow(frac.len() as u32);
    whole.checked_mul(mult)?.checked_add(part as u64)
}

/// A rate in bits per second with an optional K, M or G suffix (powers of 1000).
fn rate_1000(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1_000u64),
        Some((i, 'm' | 'M')) => (&s[..i], 1_000_000),
        Some((i, 'g' | 'G')) => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac = &frac[..frac.len().min(9)];
    let digits: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    let part = u128::from(digits) * u128::from(mult) / 10u128.pow(frac.len() as u32);
    whole.checked_mul(mult)?.checked_add(part as u64)
}

/// A numeric IPv4 address operand (no DNS in the simulator).
fn addr(prog: &str, x: &Word) -> R<std::net::Ipv4Addr> {
    match ipv4(&x.text) {
        Ok(a) => Ok(a),
        Err(AddrErr::Abbreviated) => Err(perr(x.col, format!("{prog}: {}", abbreviated_msg(x)))),
        Err(AddrErr::Bad) => Err(perr(
            x.col,
            format!(
                "{prog}: getaddrinfo for host \"{}\": Name or service not known (the simulator \
                 has no DNS: use an IPv4 address)",
                x.text
            ),
        )),
    }
}

/// OpenBSD netcat's strtonum check of a port.
fn nc_port(x: &Word, min: u64) -> R<u16> {
    let t = x.text.as_ref();
    if t.contains('-') && !t.starts_with('-') {
        return Err(perr(
            x.col,
            format!(
                "nc: port range \"{t}\" is valid for the real tool but not supported by the simulator"
            ),
        ));
    }
    match decimal(t) {
        None => Err(perr(x.col, format!("nc: port number invalid: {t}"))),
        Some(v) if v < min => Err(perr(x.col, format!("nc: port number too small: {t}"))),
        Some(v) if v > 65535 => Err(perr(x.col, format!("nc: port number too large: {t}"))),
        Some(v) => Ok(v as u16),
    }
}

/// Whole seconds, as netcat's -w, -q and -i take them, in milliseconds.
fn nc_secs(x: &Word, what: &str) -> R<u64> {
    match decimal(&x.text) {
        Some(v) if v <= (i32::MAX / 1000) as u64 => Ok(v * 1000),
        Some(_) => Err(perr(x.col, format!("nc: {what} too large: {}", x.text))),
        None => Err(perr(x.col, format!("nc: {what} invalid: {}", x.text))),
    }
}

pub(super) fn parse_nc(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut c = NcCmd::default();
    let mut operands: Vec<&Word> = Vec::new();
    let mut send_at: Option<usize> = None;
    let mut reply_at: Option<usize> = None;
    let mut k_at: Option<usize> = None;
    let mut z_at: Option<usize> = None;
    for item in getopt(w, &NC_SPEC)? {
        let (ch, arg, at) = match item {
            Item::Operand(x) => {
                operands.push(x);
                continue;
            }
            Item::Opt { c, arg, at } => (c, arg, at),
        };
        match ch {
            'l' => c.listen = true,
            'k' => {
                c.keep = true;
                k_at = Some(at.col);
            }
            'u' => c.udp = true,
            'v' => c.verbose = true,
            'n' | 'd' => {}
            'N' => c.shutdown = true,
            'z' => {
                c.zero_io = true;
                z_at = Some(at.col);
            }
            's' => c.source = Some(addr("nc", &opt_arg(arg, at))?),
            'p' => c.source_port = Some(nc_port(&opt_arg(arg, at), 0)?),
            'w' => c.wait_ms = Some(nc_secs(&opt_arg(arg, at), "timeout")?),
            'q' => c.quit_ms = Some(nc_secs(&opt_arg(arg, at), "quit_time")?),
            'i' => c.interval_ms = nc_secs(&opt_arg(arg, at), "interval")?,
            SEND => {
                send_at.get_or_insert(at.col);
                c.send
                    .push(NcData::Text(opt_arg(arg, at).text.into_owned()));
            }
            BYTES | REPLY_BYTES => {
                let x = opt_arg(arg, at);
                let n = size_1024(&x.text).ok_or_else(|| {
                    perr(
                        x.col,
                        format!(
                            "nc: byte count invalid: {}: expected a number of bytes such as 1000 or 64K",
                            x.text
                        ),
                    )
                })?;
                if ch == BYTES {
                    send_at.get_or_insert(at.col);
                    c.send.push(NcData::Bytes(n));
                } else {
                    reply_at = Some(at.col);
                    c.reply = Some(NcData::Bytes(n));
                }
            }
            REPLY => {
                reply_at = Some(at.col);
                c.reply = Some(NcData::Text(opt_arg(arg, at).text.into_owned()));
            }
            _ => {}
        }
    }
    if let (Some(col), false) = (k_at, c.listen) {
        return Err(perr(col, "nc: must use -l with -k"));
    }
    if c.listen {
        if let Some(col) = send_at {
            return Err(perr(
                col,
                "nc: --send and --bytes are for a client; a listener answers with --reply TEXT or --reply-bytes N",
            ));
        }
        if let Some(col) = z_at {
            return Err(perr(col, "nc: cannot use -z and -l"));
        }
        match operands.as_slice() {
            [] => {}
            [p] => c.port = Some(nc_port(p, 1)?),
            [a, p] => {
                c.addr = Some(addr("nc", a)?);
                c.port = Some(nc_port(p, 1)?);
            }
            [_, _, x, ..] => {
                return Err(perr(
                    x.col,
                    format!(
                        "nc: unexpected operand \"{}\": expected nc -l [ADDR] PORT",
                        x.text
                    ),
                ));
            }
        }
        if c.port.is_none() && c.source_port.is_none() {
            return Err(perr(
                w[0].col,
                "nc: missing port number: expected nc -l PORT (or -p PORT)",
            ));
        }
        if let (Some(a), Some(s)) = (c.addr, c.source)
            && a != s
        {
            return Err(perr(
                w[0].col,
                format!("nc: two listen addresses ({s} with -s and {a}): give one"),
            ));
        }
    } else {
        if let Some(col) = reply_at {
            return Err(perr(
                col,
                "nc: --reply is for a listener (nc -l); a client sends with --send or --bytes",
            ));
        }
        match operands.as_slice() {
            [] => {
                return Err(perr(
                    w[0].col,
                    "nc: missing destination: expected nc [options] ADDR PORT",
                ));
            }
            [a] => {
                addr("nc", a)?;
                return Err(perr(
                    a.col,
                    "nc: missing port number: expected nc [options] ADDR PORT",
                ));
            }
            [a, p] => {
                c.addr = Some(addr("nc", a)?);
                c.port = Some(nc_port(p, 1)?);
            }
            [_, _, x, ..] => {
                return Err(perr(
                    x.col,
                    format!(
                        "nc: more than one port (\"{}\") is valid for the real tool but not supported by the simulator",
                        x.text
                    ),
                ));
            }
        }
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Nc(c),
    })
}

const IPERF3_SPEC: OptSpec = OptSpec {
    prog: "iperf3",
    flags: "s1u",
    with_arg: "cptnilbwBM\u{14}",
    known: "fDVJvkPRNZO46SLFATCdIhXgzmEe",
    long: &[
        ("server", 's'),
        ("client", 'c'),
        ("port", 'p'),
        ("one-off", '1'),
        ("time", 't'),
        ("bytes", 'n'),
        ("interval", 'i'),
        ("udp", 'u'),
        ("bitrate", 'b'),
        ("bandwidth", 'b'),
        ("length", 'l'),
        ("window", 'w'),
        ("bind", 'B'),
        ("set-mss", 'M'),
        ("cport", CPORT),
        ("reverse", 'R'),
        ("parallel", 'P'),
        ("json", 'J'),
        ("verbose", 'V'),
        ("format", 'f'),
        ("daemon", 'D'),
        ("blockcount", 'k'),
        ("no-delay", 'N'),
        ("zerocopy", 'Z'),
        ("omit", 'O'),
        ("title", 'T'),
        ("congestion", 'C'),
        ("help", 'h'),
        ("version", 'v'),
    ],
    expected: "iperf3 -s [-p PORT] [-1] [-i SECS], or iperf3 -c ADDR [-p PORT] [-t SECS | -n BYTES] \
               [-i SECS] [-u] [-b RATE] [-l LEN] [-w SIZE] [-B ADDR] [--cport PORT] [-M MSS]",
};

fn iperr(x: &Word, msg: impl std::fmt::Display) -> crate::cmd::ParseError {
    perr(x.col, format!("iperf3: parameter error - {msg}"))
}

pub(super) fn parse_iperf3(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut server: Option<usize> = None;
    let mut c = Iperf3Cmd {
        client: None,
        port: 5201,
        one_off: false,
        time_ms: None,
        bytes: None,
        interval_ms: 1000,
        udp: false,
        bitrate: None,
        length: None,
        window: None,
        bind: None,
        cport: None,
        mss: None,
    };
    let mut client_only: Option<Word> = None;
    let mut server_only: Option<Word> = None;
    let mut end_conditions = 0;
    for item in getopt(w, &IPERF3_SPEC)? {
        let (ch, arg, at) = match item {
            Item::Operand(x) => {
                return Err(perr(
                    x.col,
                    format!(
                        "iperf3: parameter error - unexpected operand \"{}\": expected {}",
                        x.text, IPERF3_SPEC.expected
                    ),
                ));
            }
            Item::Opt { c, arg, at } => (c, arg, at),
        };
        let x = opt_arg(arg, at);
        match ch {
            's' => server = Some(at.col),
            '1' => {
                c.one_off = true;
                server_only = Some(at.clone());
            }
            'c' => c.client = Some(addr("iperf3", &x)?),
            'p' => {
                c.port = match decimal(&x.text) {
                    Some(v) if (1..=65535).contains(&v) => v as u16,
                    _ => return Err(iperr(&x, "invalid port number (1-65535)")),
                }
            }
            CPORT => {
                c.cport = match decimal(&x.text) {
                    Some(v) if (1..=65535).contains(&v) => Some(v as u16),
                    _ => return Err(iperr(&x, "invalid client port number (1-65535)")),
                };
                client_only = Some(at.clone());
            }
            't' => {
                let ms = secs_to_ms(&x.text)
                    .filter(|ms| *ms <= 86_400_000)
                    .ok_or_else(|| {
                        iperr(&x, "test duration valid values are 0 to 86400 seconds")
                    })?;
                c.time_ms = Some(ms);
                end_conditions += 1;
                client_only = Some(at.clone());
            }
            'n' => {
                let n = size_1024(&x.text)
                    .filter(|n| *n > 0)
                    .ok_or_else(|| iperr(&x, format!("invalid byte count \"{}\"", x.text)))?;
                c.bytes = Some(n);
                end_conditions += 1;
                client_only = Some(at.clone());
            }
            'i' => {
                let ms = secs_to_ms(&x.text).ok_or_else(|| {
                    iperr(&x, "report interval min/max values are 0.1 and 60 seconds")
                })?;
                if ms != 0 && !(100..=60_000).contains(&ms) {
                    return Err(iperr(
                        &x,
                        "report interval min/max values are 0.1 and 60 seconds",
                    ));
                }
                c.interval_ms = ms;
            }
            'u' => {
                c.udp = true;
                client_only = Some(at.clone());
            }
            'b' => {
                c.bitrate = Some(
                    rate_1000(&x.text)
                        .ok_or_else(|| iperr(&x, format!("invalid bitrate \"{}\"", x.text)))?,
                );
                client_only = Some(at.clone());
            }
            'l' => {
                let n = size_1024(&x.text)
                    .filter(|n| (1..=65507).contains(n))
                    .ok_or_else(|| {
                        iperr(&x, "block size too large or invalid (1 to 65507 bytes)")
                    })?;
                c.length = Some(n as u32);
                client_only = Some(at.clone());
            }
            'w' => {
                let n = size_1024(&x.text)
                    .filter(|n| (2048..=(512 << 20)).contains(n))
                    .ok_or_else(|| iperr(&x, "window size too large or too small (2K to 512M)"))?;
                c.window = Some(n as u32);
                client_only = Some(at.clone());
            }
            'B' => c.bind = Some(addr("iperf3", &x)?),
            'M' => {
                let n = decimal(&x.text)
                    .filter(|n| (88..=9216).contains(n))
                    .ok_or_else(|| {
                        iperr(&x, "TCP MSS too large (maximum = 9216 bytes) or invalid")
                    })?;
                c.mss = Some(n as u16);
                client_only = Some(at.clone());
            }
            other => {
                let shown = IPERF3_SPEC
                    .long
                    .iter()
                    .find(|(_, l)| *l == other)
                    .map(|(n, _)| format!("--{n}"))
                    .unwrap_or_else(|| format!("-{other}"));
                return Err(perr(
                    at.col,
                    format!(
                        "iperf3: option {shown} is valid for the real tool but not supported by the simulator; expected {}",
                        IPERF3_SPEC.expected
                    ),
                ));
            }
        }
    }
    match (server, c.client) {
        (Some(col), Some(_)) => {
            return Err(perr(
                col,
                "iperf3: parameter error - cannot be both server and client",
            ));
        }
        (None, None) => {
            return Err(perr(
                w[0].col,
                "iperf3: parameter error - must either be a client (-c) or server (-s)",
            ));
        }
        (Some(_), None) => {
            if let Some(x) = client_only {
                return Err(perr(
                    x.col,
                    format!(
                        "iperf3: parameter error - some option you are trying to set is client only (\"{}\")",
                        x.text
                    ),
                ));
            }
        }
        (None, Some(_)) => {
            if let Some(x) = server_only {
                return Err(perr(
                    x.col,
                    format!(
                        "iperf3: parameter error - some option you are trying to set is server only (\"{}\")",
                        x.text
                    ),
                ));
            }
        }
    }
    if end_conditions > 1 {
        return Err(perr(
            w[0].col,
            "iperf3: parameter error - only one test end condition (-t, -n, -k) may be specified",
        ));
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Iperf3(c),
    })
}

#[cfg(test)]
mod tests {
    use crate::cmd::{CommandKind, Iperf3Cmd, NcCmd, NcData, parse_line};
    use std::net::Ipv4Addr;

    fn kind(line: &str) -> CommandKind {
        parse_line(line)
            .unwrap_or_else(|e| panic!("{line:?} failed: col {} {}", e.col, e.message))
            .kind
    }
    fn nc(line: &str) -> NcCmd {
        match kind(line) {
            CommandKind::Nc(c) => c,
            k => panic!("{line}: {k:?}"),
        }
    }
    fn iperf(line: &str) -> Iperf3Cmd {
        match kind(line) {
            CommandKind::Iperf3(c) => c,
            k => panic!("{line}: {k:?}"),
        }
    }
    fn err_at(line: &str, word: &str, msg: &str) {
        let e = parse_line(line).expect_err(line);
        let col = line.rfind(word).map(|b| line[..b].chars().count()).unwrap();
        assert_eq!(e.col, col, "{line}: {}", e.message);
        assert!(
            e.message.contains(msg),
            "{line}: {:?} lacks {msg:?}",
            e.message
        );
    }
    fn a(s: &str) -> Option<Ipv4Addr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn nc_the_articles_forms() {
        let l = nc("nc -kl 172.16.2.1 8888");
        assert!(l.listen && l.keep && !l.udp);
        assert_eq!((l.addr, l.port), (a("172.16.2.1"), Some(8888)));
        let c = nc("nc -s 172.16.3.1 172.16.2.1 8888 --send hello");
        assert!(!c.listen);
        assert_eq!(c.source, a("172.16.3.1"));
        assert_eq!((c.addr, c.port), (a("172.16.2.1"), Some(8888)));
        assert_eq!(c.send, vec![NcData::Text("hello".into())]);
    }

    #[test]
    fn nc_listeners() {
        let l = nc("nc -l 8080");
        assert_eq!((l.addr, l.port, l.source_port), (None, Some(8080), None));
        let l = nc("nc -l -p 8080");
        assert_eq!((l.port, l.source_port), (None, Some(8080)));
        let l = nc("nc -lu -s 10.0.0.2 -p 53 --reply pong");
        assert!(l.udp);
        assert_eq!(l.source, a("10.0.0.2"));
        assert_eq!(l.reply, Some(NcData::Text("pong".into())));
        let l = nc("nc -lkv 80 --reply-bytes 10K");
        assert_eq!(l.reply, Some(NcData::Bytes(10240)));
        assert!(l.verbose);
    }

    #[test]
    fn nc_clients() {
        let c = nc("nc -u -v -w 2 -q 1 -i 1 10.0.0.2 9999 --send a --send 'b c' --bytes 1M");
        assert!(c.udp && c.verbose);
        assert_eq!(c.wait_ms, Some(2000));
        assert_eq!(c.quit_ms, Some(1000));
        assert_eq!(c.interval_ms, 1000);
        assert_eq!(
            c.send,
            vec![
                NcData::Text("a".into()),
                NcData::Text("b c".into()),
                NcData::Bytes(1 << 20)
            ]
        );
        let c = nc("nc -N -p 40000 10.0.0.2 80 --send=GET");
        assert!(c.shutdown);
        assert_eq!(c.source_port, Some(40000));
        assert_eq!(c.send, vec![NcData::Text("GET".into())]);
        let c = nc("nc -zv 10.0.0.2 22");
        assert!(c.zero_io && c.verbose);
        let c = nc("ip netns exec pod nc 10.0.0.2 80");
        assert!(c.send.is_empty());
    }

    #[test]
    fn nc_errors() {
        err_at("nc 10.0.0.2", "10.0.0.2", "nc: missing port number");
        err_at("nc", "nc", "nc: missing destination");
        err_at("nc -l", "nc", "nc: missing port number");
        err_at("nc -k 10.0.0.1 80", "-k", "nc: must use -l with -k");
        err_at(
            "nc 10.0.0.2 99999",
            "99999",
            "nc: port number too large: 99999",
        );
        err_at("nc 10.0.0.2 0", "0", "nc: port number too small: 0");
        err_at("nc 10.0.0.2 http", "http", "nc: port number invalid: http");
        err_at("nc 10.0.0.2 1-100", "1-100", "port range");
        err_at(
            "nc example.com 80",
            "example.com",
            "Name or service not known",
        );
        err_at("nc -w x 10.0.0.2 80", "x", "nc: timeout invalid: x");
        err_at(
            "nc -X 5 10.0.0.2 80",
            "-X",
            "not supported by the simulator",
        );
        err_at("nc -y 10.0.0.2 80", "-y", "nc: invalid option -- 'y'");
        err_at(
            "nc -l 80 --send hi",
            "--send",
            "a listener answers with --reply",
        );
        err_at(
            "nc 10.0.0.2 80 --reply hi",
            "--reply",
            "--reply is for a listener",
        );
        err_at(
            "nc 10.0.0.2 80 --bytes lots",
            "lots",
            "nc: byte count invalid",
        );
        err_at("nc -lz 80", "-lz", "nc: cannot use -z and -l");
        err_at(
            "echo hello | nc 10.0.0.2 80",
            "|",
            "no pipes, redirections, lists or subshells",
        );
    }

    #[test]
    fn iperf3_forms() {
        let s = iperf("iperf3 -s");
        assert_eq!((s.client, s.port), (None, 5201));
        let s = iperf("iperf3 -s -p 5000 -1");
        assert!(s.one_off);
        assert_eq!(s.port, 5000);
        let c = iperf("iperf3 -c 10.0.0.2 -t 5 -i 0.5");
        assert_eq!(c.client, a("10.0.0.2"));
        assert_eq!((c.time_ms, c.interval_ms), (Some(5000), 500));
        let c = iperf("iperf3 -c 10.0.0.2 -n 10M -w 256K -M 1400 --cport 40000 -B 10.0.0.1");
        assert_eq!(c.bytes, Some(10 << 20));
        assert_eq!(c.window, Some(256 << 10));
        assert_eq!(c.mss, Some(1400));
        assert_eq!(c.cport, Some(40000));
        assert_eq!(c.bind, a("10.0.0.1"));
        let c = iperf("iperf3 -c 10.0.0.2 -u -b 100M -l 1400");
        assert!(c.udp);
        assert_eq!((c.bitrate, c.length), (Some(100_000_000), Some(1400)));
        let c = iperf("iperf3 --client 10.0.0.2 --udp --bitrate 1.5M --time 2");
        assert_eq!((c.bitrate, c.time_ms), (Some(1_500_000), Some(2000)));
    }

    #[test]
    fn iperf3_errors() {
        err_at(
            "iperf3",
            "iperf3",
            "must either be a client (-c) or server (-s)",
        );
        err_at(
            "iperf3 -s -c 10.0.0.1",
            "-s",
            "cannot be both server and client",
        );
        err_at("iperf3 -s -t 5", "-t", "client only");
        err_at("iperf3 -c 10.0.0.1 -1", "-1", "server only");
        err_at(
            "iperf3 -c 10.0.0.1 -t 5 -n 1M",
            "iperf3",
            "only one test end condition",
        );
        err_at(
            "iperf3 -c 10.0.0.1 -R",
            "-R",
            "not supported by the simulator",
        );
        err_at(
            "iperf3 -c 10.0.0.1 -P 4",
            "-P",
            "not supported by the simulator",
        );
        err_at("iperf3 -c 10.0.0.1 -p 0", "0", "invalid port number");
        err_at("iperf3 -c 10.0.0.1 -b fast", "fast", "invalid bitrate");
        err_at("iperf3 -c 10.0.0.1 -i 0.01", "0.01", "report interval");
        err_at("iperf3 -c 10.0.0.1 extra", "extra", "unexpected operand");
        err_at(
            "iperf3 -c host.example",
            "host.example",
            "Name or service not known",
        );
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(super::size_1024("1.5K"), Some(1536));
        assert_eq!(super::size_1024("64k"), Some(65536));
        assert_eq!(super::size_1024("2G"), Some(2 << 30));
        assert_eq!(super::size_1024("x"), None);
        assert_eq!(super::rate_1000("1.5M"), Some(1_500_000));
        assert_eq!(super::rate_1000("10G"), Some(10_000_000_000));
        assert_eq!(super::rate_1000("0"), Some(0));
    }
}
