//! Frames seen on interfaces, on both sides: reading tcpdump's pcap files,
//! and turning a frame's bytes into a normalised one-line summary of its
//! headers (addresses, ports, VNI, TTL, lengths) plus the key of the packet it
//! belongs to (its innermost IPv4 or ARP identity, so a VXLAN frame joins the
//! inner packet's sequence).
//!
//! Normalised away (each naming its entry in tests/kernel-diff/known-differences.md):
//! MAC addresses the kernel draws at random become the name of the device that
//! owns them (`KD-RANDOM-MAC`); IP ids, ICMP echo ids, IP/ICMP/UDP checksums and
//! the VXLAN UDP source port are left out (`KD-RANDOM-FIELDS`, `KD-CSUM-OFFLOAD`);
//! IPv6 frames are set aside (`KD-IPV6`), and so is IGMP (`KD-MULTICAST`).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::known;

/// One frame seen on an interface.
#[derive(Clone, Debug)]
pub struct Frame {
    /// `node1:test3:veth3`.
    pub place: String,
    /// Nanoseconds from the start of the timeline (display only).
    pub time_ns: i128,
    /// pcap link type: 1 Ethernet, 101 raw IP.
    pub linktype: u32,
    pub bytes: Vec<u8>,
}

/// A pcap file's link type and records (timestamp in nanoseconds, bytes).
pub type Pcap = (u32, Vec<(i128, Vec<u8>)>);

/// Reads a pcap file (microsecond or nanosecond, either byte order).
pub fn read_pcap(bytes: &[u8]) -> Result<Pcap, String> {
    if bytes.len() < 24 {
        return Err(format!(
            "pcap file too short ({} bytes): the capture was not flushed",
            bytes.len()
        ));
    }
    let magic_le = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    let (le, nanos) = match magic_le {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        m => return Err(format!("not a pcap file (magic {m:#x})")),
    };
    let u32at = |b: &[u8], o: usize| {
        let a: [u8; 4] = b[o..o + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let linktype = u32at(bytes, 20);
    let mut out = Vec::new();
    let mut o = 24;
    while o + 16 <= bytes.len() {
        let sec = u32at(bytes, o) as i128;
        let frac = u32at(bytes, o + 4) as i128;
        let incl = u32at(bytes, o + 8) as usize;
        o += 16;
        if o + incl > bytes.len() {
            break; // a record cut short when tcpdump stopped
        }
        let ns = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        out.push((ns, bytes[o..o + incl].to_vec()));
        o += incl;
    }
    Ok((linktype, out))
}

/// The key of IGMP frames, which are set aside.
const IGMP: &str = "igmp";

/// What a frame is, for comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Summary {
    /// Compared: the packet key and the header summary.
    Frame { key: String, text: String },
    /// Set aside by a known difference (the entry's id).
    Ignored(&'static str),
}

/// Names MAC addresses (device labels for owned ones, literal otherwise).
pub type MacNamer<'a> = &'a dyn Fn([u8; 6]) -> String;

pub fn mac_text(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn mac_at(b: &[u8], o: usize) -> [u8; 6] {
    b[o..o + 6].try_into().unwrap()
}

fn ip_at(b: &[u8], o: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3])
}

fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

/// Summarises one captured frame.
pub fn summarize(linktype: u32, bytes: &[u8], macs: MacNamer) -> Summary {
    let mut text = String::new();
    let key = match linktype {
        1 => ethernet(bytes, macs, &mut text),
        101 => ipv4(bytes, macs, &mut text),
        other => Err(format!("link type {other}")),
    };
    match key {
        Ok(Some(key)) if key == IGMP => Summary::Ignored(known::KD_MULTICAST),
        Ok(Some(key)) => {
            let _ = write!(text, " | frame {}", bytes.len());
            Summary::Frame { key, text }
        }
        Ok(None) => Summary::Ignored(known::KD_IPV6),
        Err(e) => Summary::Frame {
            key: format!("unparsed: {e}"),
            text: format!("{text} | unparsed: {e} | frame {}", bytes.len()),
        },
    }
}

/// Ethernet: `eth SRC > DST` then the payload. Ok(None) = IPv6 (set aside).
fn ethernet(b: &[u8], macs: MacNamer, out: &mut String) -> Result<Option<String>, String> {
    if b.len() < 14 {
        return Err(format!("short Ethernet frame ({} bytes)", b.len()));
    }
    let (dst, src, et) = (mac_at(b, 0), mac_at(b, 6), be16(b, 12));
    let _ = write!(out, "eth {} > {}", macs(src), macs(dst));
    let p = &b[14..];
    match et {
        0x0800 => ipv4(p, macs, out),
        0x0806 => arp(p, macs, out).map(Some),
        0x86dd => Ok(None),
        other => {
            let _ = write!(out, " | ethertype {other:#06x}");
            Ok(Some(format!("ethertype {other:#06x}")))
        }
    }
}

fn arp(b: &[u8], macs: MacNamer, out: &mut String) -> Result<String, String> {
    if b.len() < 28 {
        return Err(format!("short ARP packet ({} bytes)", b.len()));
    }
    let op = match be16(b, 6) {
        1 => "request".to_string(),
        2 => "reply".to_string(),
        o => format!("op {o}"),
    };
    let (sha, spa, tha, tpa) = (mac_at(b, 8), ip_at(b, 14), mac_at(b, 18), ip_at(b, 24));
    let _ = write!(
        out,
        " | arp {op} {spa} > {tpa} sha {} tha {}",
        macs(sha),
        macs(tha)
    );
    Ok(format!("arp {op} {spa} > {tpa}"))
}

/// IPv4: addresses, TTL, total length, DF/MF, fragment offset, TOS; then the payload.
fn ipv4(b: &[u8], macs: MacNamer, out: &mut String) -> Result<Option<String>, String> {
    if b.len() < 20 || b[0] >> 4 != 4 {
        if !b.is_empty() && b[0] >> 4 == 6 {
            return Ok(None);
        }
        return Err("not IPv4".into());
    }
    let ihl = (b[0] & 0x0f) as usize * 4;
    let tos = b[1];
    let total = be16(b, 2) as usize;
    let flags = be16(b, 6);
    let (df, mf, off) = (
        flags & 0x4000 != 0,
        flags & 0x2000 != 0,
        (flags & 0x1fff) * 8,
    );
    let (ttl, proto) = (b[8], b[9]);
    let (src, dst) = (ip_at(b, 12), ip_at(b, 16));
    let _ = write!(out, " | ip {src} > {dst} ttl {ttl} len {total}");
    if tos != 0 {
        let _ = write!(out, " tos {tos:#04x}");
    }
    if df {
        out.push_str(" DF");
    }
    if mf {
        out.push_str(" MF");
    }
    if off != 0 {
        let _ = write!(out, " offset {off}");
    }
    if ihl > 20 {
        let _ = write!(out, " options {}", ihl - 20);
    }
    let end = total.min(b.len()).max(ihl.min(b.len()));
    let p = &b[ihl.min(b.len())..end];
    if off != 0 {
        let _ = write!(out, " proto {proto} (fragment)");
        return Ok(Some(format!("fragment {src} > {dst} proto {proto}")));
    }
    let truncated = total > b.len();
    let key = match proto {
        1 => icmp(p, src, dst, macs, out, truncated)?,
        17 => match udp(p, src, dst, macs, out)? {
            Some(k) => k,
            None => return Ok(None),
        },
        // KD-MULTICAST: IGMP (group membership) is not modelled.
        2 => return Ok(Some(IGMP.into())),
        4 => {
            out.push_str(" | ipip");
            match ipv4(p, macs, out)? {
                Some(k) => k,
                None => return Ok(None),
            }
        }
        6 if p.len() >= 20 => {
            let _ = write!(out, " | tcp {} > {}", be16(p, 0), be16(p, 2));
            format!("tcp {src}:{} > {dst}:{}", be16(p, 0), be16(p, 2))
        }
        other => {
            let _ = write!(out, " | proto {other}");
            format!("ip {src} > {dst} proto {other}")
        }
    };
    Ok(Some(key))
}

fn icmp_name(t: u8, c: u8) -> String {
    match (t, c) {
        (0, 0) => "echo-reply".into(),
        (8, 0) => "echo-request".into(),
        (3, 0) => "net-unreachable".into(),
        (3, 1) => "host-unreachable".into(),
        (3, 3) => "port-unreachable".into(),
        (3, 4) => "frag-needed".into(),
        (3, 13) => "admin-prohibited".into(),
        (11, 0) => "ttl-exceeded".into(),
        (5, c) => format!("redirect/{c}"),
        (t, c) => format!("icmp-{t}/{c}"),
    }
}

fn icmp(
    p: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    macs: MacNamer,
    out: &mut String,
    truncated: bool,
) -> Result<String, String> {
    if p.len() < 8 {
        return Err(format!("short ICMP header ({} bytes)", p.len()));
    }
    let (t, c) = (p[0], p[1]);
    let name = icmp_name(t, c);
    let _ = write!(out, " | icmp {name}");
    match t {
        0 | 8 => {
            // The echo id is the socket's (KD-RANDOM-FIELDS); the sequence and payload length are compared.
            let seq = be16(p, 6);
            let _ = write!(out, " seq {seq} payload {}", p.len() - 8);
            if truncated {
                out.push_str(" (truncated)");
            }
            Ok(format!("icmp {name} {src} > {dst} seq {seq}"))
        }
        3 | 11 | 5 => {
            if t == 3 && c == 4 {
                let _ = write!(out, " mtu {}", be16(p, 6));
            }
            let _ = write!(out, " quoting {} bytes:", p.len() - 8);
            let mut inner = String::new();
            let ik = match ipv4(&p[8..], macs, &mut inner) {
                Ok(Some(k)) => k,
                Ok(None) => "ipv6".into(),
                Err(e) => format!("unparsed {e}"),
            };
            // The quoted header's own total length may exceed what is quoted.
            out.push_str(&inner.replacen(" | ", " [", 1));
            out.push(']');
            Ok(format!("icmp {name} {src} > {dst} about {ik}"))
        }
        _ => Ok(format!("icmp {name} {src} > {dst}")),
    }
}

/// UDP. VXLAN (destination port 4789 or 8472 with the I flag) is followed into
/// the inner frame; its source port (a flow hash with a random boot key) is left out.
fn udp(
    p: &[u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    macs: MacNamer,
    out: &mut String,
) -> Result<Option<String>, String> {
    if p.len() < 8 {
        return Err(format!("short UDP header ({} bytes)", p.len()));
    }
    let (sport, dport, len) = (be16(p, 0), be16(p, 2), be16(p, 4));
    let vxlan = matches!(dport, 4789 | 8472) && p.len() >= 16 && p[8] & 0x08 != 0;
    if vxlan {
        let vni = u32::from_be_bytes([0, p[12], p[13], p[14]]);
        let _ = write!(out, " | udp * > {dport} len {len} | vxlan vni {vni} | ");
        let inner = &p[16..];
        let mut s = String::new();
        let k = match ethernet(inner, macs, &mut s) {
            Ok(Some(k)) => k,
            Ok(None) => return Ok(None),
            Err(e) => format!("unparsed {e}"),
        };
        out.push_str(&s);
        return Ok(Some(k));
    }
    let _ = write!(out, " | udp {sport} > {dport} len {len}");
    Ok(Some(format!("udp {src}:{sport} > {dst}:{dport}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_an_arp_request_and_an_echo() {
        let namer = |m: [u8; 6]| mac_text(m);
        let mut arp = vec![0xff; 6];
        arp.extend([2, 0, 0, 0, 0, 1, 0x08, 0x06]);
        arp.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
        arp.extend([0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        match summarize(1, &arp, &namer) {
            Summary::Frame { key, text } => {
                assert_eq!(key, "arp request 10.0.0.1 > 10.0.0.2");
                assert_eq!(
                    text,
                    "eth 02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff | arp request 10.0.0.1 > 10.0.0.2 sha 02:00:00:00:00:01 tha 00:00:00:00:00:00 | frame 42"
                );
            }
            s => panic!("{s:?}"),
        }
        let mut v6 = vec![0; 12];
        v6.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
        assert_eq!(summarize(1, &v6, &namer), Summary::Ignored(known::KD_IPV6));
    }
}
