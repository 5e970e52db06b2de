//! Packet captures as pcapng files that Wireshark, tshark and tcpdump read.
//!
//! The model records frames (`sim_models::linux::capture`): exact wire
//! bytes, the device, the direction and the simulated time. This module turns
//! a finished run's frames into pcapng (with the `pcap-file` crate) and
//! writes the files; it is the only place captures touch the file system.
//!
//! - `podpath run --pcap DIR` captures every device and writes one file per
//!   host, `DIR/HOST.pcapng`, with one interface per device of the host (in
//!   every namespace), named by its topology path (`node1:test3:veth3`).
//! - A `tcpdump -i DEV -w FILE` line writes FILE (a relative name, under
//!   `--pcap DIR` if given, else the current directory) with the frames of the
//!   device(s) it tapped from the simulated time it ran.
//! - Every `tcpdump` line reports `N packets captured` in the run's output at
//!   the end of the run, as tcpdump does when it exits.
//!
//! Each interface has its device's link type (Ethernet, or raw IPv4 for
//! IPIP), except in a file that mixes the two, which libpcap cannot read:
//! there every interface is LINKTYPE_LINUX_SLL, as with `tcpdump -i any`.
//!
//! Timestamps are nanoseconds (`if_tsresol` = 9) since 1970-01-01 00:00:00
//! UTC plus the simulated time ([`EPOCH_OFFSET_NS`] is 0), so Wireshark's
//! "seconds since epoch" column shows the simulated time exactly. Bytes are
//! little-endian on every machine, so the same run writes the same files.
//!
//! pcap-file 2.0.0 writes an Enhanced Packet Block's timestamp as the raw
//! nanosecond count whatever the interface's `if_tsresol` (and reads it back
//! as nanoseconds), so every interface must declare `if_tsresol` = 9 for the
//! numbers to mean what readers think they mean; [`encode`] always does.

use std::borrow::Cow;
use std::path::{Component, Path};
use std::time::Duration;

use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::{DataLink, Endianness};
use scenarios::{Diagnostic, Scenario};
use sim_core::time::SimTime;
use sim_models::cmd::CommandKind;
use sim_models::linux::capture::LinkType;
use sim_models::linux::{DevId, DevKind, HostId, OutputLine, World};
use sim_models::sim::Simulation;

/// Largest number of bytes kept of one frame (tcpdump's default).
pub const SNAPLEN: u32 = 262_144;
/// `if_tsresol` value: timestamps in units of 10^-9 s.
pub const TSRESOL_NANOS: u8 = 9;
/// Nanoseconds added to simulated time for a timestamp: simulated time 0 is
/// 1970-01-01 00:00:00 UTC.
pub const EPOCH_OFFSET_NS: u64 = 0;
/// `epb_flags` direction bits (pcapng): received by the device.
pub const EPB_INBOUND: u32 = 0b01;
/// `epb_flags` direction bits (pcapng): sent by the device.
pub const EPB_OUTBOUND: u32 = 0b10;

/// ARPHRD_* device types (for LINKTYPE_LINUX_SLL headers).
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPHRD_TUNNEL: u16 = 768;
pub const ARPHRD_LOOPBACK: u16 = 772;

/// One interface of a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// `if_name`: the device's topology path (`node1:eth0`).
    pub name: String,
    pub link: LinkType,
    /// The device's ARPHRD_* type.
    pub arphrd: u16,
    /// The device's MAC address (all zero for IPIP and loopback).
    pub mac: [u8; 6],
}

/// One packet of a capture file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Index into the file's interfaces.
    pub interface: u32,
    pub time: SimTime,
    pub outgoing: bool,
    pub bytes: &'a [u8],
}

/// The pcap LINKTYPE_* of a link type.
pub fn linktype(link: LinkType) -> DataLink {
    match link {
        LinkType::Ethernet => DataLink::ETHERNET,
        LinkType::RawIp => DataLink::RAW,
    }
}

/// Whether a file with these interfaces is written as LINKTYPE_LINUX_SLL:
/// when their link types differ (Ethernet devices and an IPIP tunnel).
/// libpcap, and so tcpdump, reads only files whose interfaces share one link
/// type; Linux's own answer for captures across such devices (`tcpdump -i
/// any`) is the "cooked" SLL header, which Wireshark reads as well.
pub fn needs_sll(interfaces: &[Interface]) -> bool {
    interfaces.windows(2).any(|w| w[0].link != w[1].link)
}

/// A frame with a LINKTYPE_LINUX_SLL header (16 bytes, big-endian: packet
/// type, ARPHRD type, address length, 8 address bytes, protocol) in place
/// of its Ethernet header, as Linux's packet socket gives it: the address
/// is the Ethernet source; the packet type is outgoing (4) for a frame the
/// device sent, else host (0), broadcast (1), multicast (2) or other host
/// (3) by the destination MAC.
pub fn sll_frame(i: &Interface, outgoing: bool, bytes: &[u8]) -> Vec<u8> {
    let (pkttype, addr, proto, payload): (u16, &[u8], [u8; 2], &[u8]) = match i.link {
        LinkType::RawIp => (if outgoing { 4 } else { 0 }, &[], [0x08, 0x00], bytes),
        LinkType::Ethernet if bytes.len() >= 14 => {
            let dst = &bytes[0..6];
            let pkttype = if outgoing {
                4
            } else if dst == [0xff; 6] {
                1
            } else if dst[0] & 1 == 1 {
                2
            } else if dst == i.mac {
                0
            } else {
                3
            };
            (pkttype, &bytes[6..12], [bytes[12], bytes[13]], &bytes[14..])
        }
        // Not a whole Ethernet header: keep the bytes, protocol unknown.
        LinkType::Ethernet => (if outgoing { 4 } else { 0 }, &[], [0, 0], bytes),
    };
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&pkttype.to_be_bytes());
    out.extend_from_slice(&i.arphrd.to_be_bytes());
    out.extend_from_slice(&(addr.len() as u16).to_be_bytes());
    let mut a = [0u8; 8];
    a[..addr.len()].copy_from_slice(addr);
    out.extend_from_slice(&a);
    out.extend_from_slice(&proto);
    out.extend_from_slice(payload);
    out
}

/// Encodes a pcapng file: a Section Header Block, one Interface Description
/// Block per interface, one Enhanced Packet Block per record, in order.
/// Interfaces of different link types make the whole file LINUX_SLL
/// ([`needs_sll`]).
pub fn encode(interfaces: &[Interface], records: &[Record<'_>]) -> Vec<u8> {
    let sll = needs_sll(interfaces);
    let shb = SectionHeaderBlock {
        endianness: Endianness::Little,
        major_version: 1,
        minor_version: 0,
        section_length: -1,
        options: vec![SectionHeaderOption::UserApplication(Cow::Borrowed(
            "podpath",
        ))],
    };
    // Writing to a Vec fails only on an interface id without an interface.
    let mut w = PcapNgWriter::with_section_header(Vec::new(), shb).expect("write to Vec");
    for i in interfaces {
        let idb = InterfaceDescriptionBlock {
            linktype: if sll {
                DataLink::LINUX_SLL
            } else {
                linktype(i.link)
            },
            snaplen: SNAPLEN,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(i.name.clone())),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NANOS),
            ],
        };
        w.write_pcapng_block(idb).expect("write to Vec");
    }
    for r in records {
        assert!(
            (r.interface as usize) < interfaces.len(),
            "record for interface {} of {}",
            r.interface,
            interfaces.len()
        );
        let bytes = if sll {
            Cow::Owned(sll_frame(
                &interfaces[r.interface as usize],
                r.outgoing,
                r.bytes,
            ))
        } else {
            Cow::Borrowed(r.bytes)
        };
        let kept = bytes.len().min(SNAPLEN as usize);
        let original_len = bytes.len() as u32;
        let data = match bytes {
            Cow::Borrowed(b) => Cow::Borrowed(&b[..kept]),
            Cow::Owned(mut b) => {
                b.truncate(kept);
                Cow::Owned(b)
            }
        };
        let epb = EnhancedPacketBlock {
            interface_id: r.interface,
            timestamp: Duration::from_nanos(EPOCH_OFFSET_NS + r.time.as_nanos()),
            original_len,
            data,
            options: vec![EnhancedPacketOption::Flags(if r.outgoing {
                EPB_OUTBOUND
            } else {
                EPB_INBOUND
            })],
        };
        w.write_pcapng_block(epb).expect("write to Vec");
    }
    w.into_inner()
}

/// A device's path for `if_name`: its topology path, or (for a device whose
/// node is gone) `host[:netns]:name` from the model's own names.
pub fn dev_path(world: &World, dev: DevId) -> String {
    let d = &world.devices[dev.ix()];
    if let Some(n) = world.topo.get(d.node) {
        return n.path.clone();
    }
    let ns = &world.namespaces[d.ns.ix()];
    let host = &world.hosts[ns.host.ix()].name;
    if ns.name.is_empty() {
        format!("{host}:{}", d.name)
    } else {
        format!("{host}:{}:{}", ns.name, d.name)
    }
}

fn host_of(world: &World, dev: DevId) -> HostId {
    world.namespaces[world.devices[dev.ix()].ns.ix()].host
}

/// The frames of `devs` (each from its own start time) as one pcapng file.
fn file_of(world: &World, name: String, devs: &[(DevId, SimTime)]) -> CaptureFile {
    let interfaces: Vec<Interface> = devs
        .iter()
        .map(|&(d, _)| Interface {
            name: dev_path(world, d),
            link: world.link_type(d),
            arphrd: match world.devices[d.ix()].kind {
                DevKind::Loopback => ARPHRD_LOOPBACK,
                DevKind::Ipip(_) => ARPHRD_TUNNEL,
                _ => ARPHRD_ETHER,
            },
            mac: world.devices[d.ix()].mac.0,
        })
        .collect();
    let records: Vec<Record<'_>> = world
        .captures
        .frames
        .iter()
        .filter_map(|f| {
            let i = devs
                .iter()
                .position(|&(d, since)| d == f.dev && f.time >= since)?;
            Some(Record {
                interface: i as u32,
                time: f.time,
                outgoing: f.outgoing,
                bytes: &f.bytes,
            })
        })
        .collect();
    CaptureFile {
        bytes: encode(&interfaces, &records),
        name,
        interfaces: interfaces.len(),
        packets: records.len(),
    }
}

/// A capture file of a finished run, ready to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureFile {
    /// Relative to the output directory.
    pub name: String,
    pub bytes: Vec<u8>,
    pub interfaces: usize,
    pub packets: usize,
}

/// `--pcap`: one file per host, `HOST.pcapng`, with every device the host
/// ever had (in creation order) and all their frames.
pub fn host_files(world: &World) -> Vec<CaptureFile> {
    world
        .hosts
        .iter()
        .enumerate()
        .map(|(h, host)| {
            let devs: Vec<(DevId, SimTime)> = (0..world.devices.len())
                .map(|i| DevId(i as u32))
                .filter(|&d| host_of(world, d).ix() == h)
                .map(|d| (d, SimTime::ZERO))
                .collect();
            file_of(world, format!("{}.pcapng", host.name), &devs)
        })
        .collect()
}

/// One `tcpdump` line that ran: when, where, and what it tapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tcpdump {
    pub time: SimTime,
    /// `node1` or `node1:test3`.
    pub place: String,
    pub line: String,
    pub devs: Vec<DevId>,
    pub write: Option<String>,
}

/// The run's successful `tcpdump` lines, matched with the taps they made
/// (`World.captures.taps` holds one tap per device, in command order: one
/// per line, or every device of the namespace for `-i any`).
pub fn tcpdumps(sc: &Scenario, sim: &Simulation) -> Vec<Tcpdump> {
    let w = &sim.world;
    let taps = &w.captures.taps;
    let mut next = 0;
    let mut out = Vec::new();
    for l in &sim.log {
        let Some(c) = sc.commands.get(l.origin) else {
            continue;
        };
        let CommandKind::Tcpdump { dev, write } = &c.cmd.kind else {
            continue;
        };
        if l.output.failed {
            continue;
        }
        let mut devs = Vec::new();
        if dev.as_deref() == Some("any") {
            let host = &w.hosts[c.host];
            let ns = match &c.cmd.netns {
                None => Some(host.root),
                Some(n) => host.namespaces.get(n).copied(),
            };
            while let Some((d, wr)) = taps.get(next) {
                if wr != write || Some(w.devices[d.ix()].ns) != ns || devs.contains(d) {
                    break;
                }
                devs.push(*d);
                next += 1;
            }
        } else if let Some((d, _)) = taps.get(next) {
            devs.push(*d);
            next += 1;
        }
        out.push(Tcpdump {
            time: l.time,
            place: l.place.clone(),
            line: l.line.to_string(),
            devs,
            write: write.clone(),
        });
    }
    out
}

/// `tcpdump -w FILE` lines: one file per FILE, with the devices of every
/// line writing it, each from the time its line ran.
pub fn tcpdump_files(sc: &Scenario, sim: &Simulation) -> Vec<CaptureFile> {
    let mut by_file: Vec<(String, Vec<(DevId, SimTime)>)> = Vec::new();
    for t in tcpdumps(sc, sim) {
        let Some(file) = t.write else { continue };
        let ix = match by_file.iter().position(|(f, _)| *f == file) {
            Some(i) => i,
            None => {
                by_file.push((file, Vec::new()));
                by_file.len() - 1
            }
        };
        let devs = &mut by_file[ix].1;
        for d in t.devs {
            if !devs.iter().any(|(x, _)| *x == d) {
                devs.push((d, t.time));
            }
        }
    }
    by_file
        .into_iter()
        .map(|(f, devs)| file_of(&sim.world, f, &devs))
        .collect()
}

/// What tcpdump prints when it exits, for every `tcpdump` line: `N packets
/// captured`, at the end of the run, in the place the line ran. (Filter
/// expressions are accepted but not applied: N counts every frame.)
pub fn tcpdump_counts(sc: &Scenario, sim: &Simulation) -> Vec<OutputLine> {
    let w = &sim.world;
    tcpdumps(sc, sim)
        .into_iter()
        .map(|t| {
            let n = w
                .captures
                .frames
                .iter()
                .filter(|f| f.time >= t.time && t.devs.contains(&f.dev))
                .count();
            OutputLine {
                time: sim.now(),
                place: t.place,
                text: format!("{} captured", plural(n, "packet")),
            }
        })
        .collect()
}

/// Why a `tcpdump -w` name cannot be written, if it cannot.
pub fn bad_name(name: &str) -> Option<&'static str> {
    let p = Path::new(name);
    if name == "-" {
        Some("writing the capture to standard output is not supported")
    } else if name.is_empty() || p.file_name().is_none() {
        Some("the capture file needs a file name")
    } else if p.is_absolute() || name.starts_with('/') || name.starts_with('\\') {
        Some(
            "the capture file must be a relative name (it is written under --pcap DIR, or the current directory)",
        )
    } else if p
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Some("the capture file must not leave its directory (no `..`)")
    } else {
        None
    }
}

/// Positioned errors for `tcpdump -w FILE` names the run cannot write, and,
/// with `--pcap`, for names that clash with a host's `HOST.pcapng`.
pub fn check_names(sc: &Scenario, pcap: bool) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for c in &sc.commands {
        let CommandKind::Tcpdump {
            write: Some(file), ..
        } = &c.cmd.kind
        else {
            continue;
        };
        let why = bad_name(file).map(str::to_string).or_else(|| {
            let clash =
                sc.file.hosts.iter().find(|h| {
                    pcap && Path::new(file) == Path::new(&format!("{}.pcapng", h.name))
                })?;
            Some(format!(
                "the capture file is --pcap's file for host {}",
                clash.name
            ))
        });
        if let Some(why) = why {
            let mut pos = c.pos;
            if let Some(i) = c.text.find(file.as_str()) {
                pos.col += c.text[..i].chars().count() as u32;
            }
            out.push(sc.diag(pos, format!("tcpdump -w {file}: {why} (in `{}`)", c.text)));
        }
    }
    out
}

/// Writes the files under `dir` (created if missing), returning the path of
/// each file written, as `dir` joined with its name.
pub fn write_files(dir: &Path, files: &[CaptureFile]) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for f in files {
        let path = dir.join(&f.name);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create directory {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, &f.bytes)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// `N thing` or `N things`.
pub fn plural(n: usize, thing: &str) -> String {
    format!("{n} {thing}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two interfaces, two packets, checked byte by byte against the pcapng
    /// specification (draft-ietf-opsawg-pcapng), little-endian.
    #[test]
    fn pcapng_bytes_match_a_hand_checked_example() {
        let eth: Vec<u8> = (0u8..14).collect(); // 14 bytes: 2 bytes of padding
        let ip: Vec<u8> = (0x40u8..0x54).collect(); // 20 bytes: no padding (any bytes do)
        let got = encode(
            &[
                Interface {
                    name: "n1:e0".into(),
                    link: LinkType::Ethernet,
                    arphrd: ARPHRD_ETHER,
                    mac: [2, 0, 0, 0, 0, 1],
                },
                Interface {
                    name: "b:t0".into(),
                    link: LinkType::Ethernet,
                    arphrd: ARPHRD_ETHER,
                    mac: [2, 0, 0, 0, 0, 2],
                },
            ],
            &[
                Record {
                    interface: 0,
                    // 5_000_000_001 ns = 0x1_2A05_F201: the high word is 1.
                    time: SimTime::from_nanos(5_000_000_001),
                    outgoing: true,
                    bytes: &eth,
                },
                Record {
                    interface: 1,
                    time: SimTime::from_nanos(0),
                    outgoing: false,
                    bytes: &ip,
                },
            ],
        );
        #[rustfmt::skip]
        let mut want: Vec<u8> = vec![
            // Section Header Block: type, total length 44
            0x0A, 0x0D, 0x0D, 0x0A,  44, 0, 0, 0,
            0x4D, 0x3C, 0x2B, 0x1A, // byte-order magic 0x1A2B3C4D, little-endian
            1, 0, 0, 0,             // version 1.0
            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, // section length -1 (unknown)
            4, 0, 7, 0, b'p', b'o', b'd', b'p', b'a', b't', b'h', 0, // shb_userappl "podpath" + 1 pad
            0, 0, 0, 0,             // opt_endofopt
            44, 0, 0, 0,
            // Interface Description Block 0: type 1, total length 44
            1, 0, 0, 0,  44, 0, 0, 0,
            1, 0, 0, 0,             // LINKTYPE_ETHERNET (1), reserved
            0x00, 0x00, 0x04, 0x00, // snaplen 262144 = 0x40000
            2, 0, 5, 0, b'n', b'1', b':', b'e', b'0', 0, 0, 0, // if_name "n1:e0" + 3 pad
            9, 0, 1, 0, 9, 0, 0, 0, // if_tsresol = 9 (10^-9 s) + 3 pad
            0, 0, 0, 0,             // opt_endofopt
            44, 0, 0, 0,
            // Interface Description Block 1: total length 40
            1, 0, 0, 0,  40, 0, 0, 0,
            1, 0, 0, 0,             // LINKTYPE_ETHERNET, reserved
            0x00, 0x00, 0x04, 0x00,
            2, 0, 4, 0, b'b', b':', b't', b'0', // if_name "b:t0", no pad
            9, 0, 1, 0, 9, 0, 0, 0,
            0, 0, 0, 0,
            40, 0, 0, 0,
            // Enhanced Packet Block: type 6, total length 60
            6, 0, 0, 0,  60, 0, 0, 0,
            0, 0, 0, 0,             // interface 0
            1, 0, 0, 0,             // timestamp high 0x00000001
            0x01, 0xF2, 0x05, 0x2A, // timestamp low  0x2A05F201
            14, 0, 0, 0,  14, 0, 0, 0, // captured and original length
        ];
        want.extend_from_slice(&eth);
        #[rustfmt::skip]
        want.extend_from_slice(&[
            0, 0,                   // pad to 32 bits
            2, 0, 4, 0, 2, 0, 0, 0, // epb_flags: outbound (0b10)
            0, 0, 0, 0,
            60, 0, 0, 0,
            // Enhanced Packet Block: total length 64
            6, 0, 0, 0,  64, 0, 0, 0,
            1, 0, 0, 0,             // interface 1
            0, 0, 0, 0,  0, 0, 0, 0, // timestamp 0
            20, 0, 0, 0,  20, 0, 0, 0,
        ]);
        want.extend_from_slice(&ip);
        #[rustfmt::skip]
        want.extend_from_slice(&[
            2, 0, 4, 0, 1, 0, 0, 0, // epb_flags: inbound (0b01)
            0, 0, 0, 0,
            64, 0, 0, 0,
        ]);
        assert_eq!(got.len(), 44 + 44 + 40 + 60 + 64);
        assert_eq!(got, want);
    }

    fn iface(name: &str, link: LinkType, arphrd: u16, mac: [u8; 6]) -> Interface {
        Interface {
            name: name.into(),
            link,
            arphrd,
            mac,
        }
    }

    #[test]
    fn raw_ip_interfaces_are_linktype_raw() {
        let got = encode(&[iface("t", LinkType::RawIp, ARPHRD_TUNNEL, [0; 6])], &[]);
        #[rustfmt::skip]
        let idb: &[u8] = &[
            1, 0, 0, 0,  40, 0, 0, 0,
            101, 0, 0, 0,           // LINKTYPE_RAW (101), reserved
            0x00, 0x00, 0x04, 0x00,
            2, 0, 1, 0, b't', 0, 0, 0, // if_name "t" + 3 pad
            9, 0, 1, 0, 9, 0, 0, 0,
            0, 0, 0, 0,
            40, 0, 0, 0,
        ];
        assert_eq!(&got[44..], idb);
    }

    /// Ethernet and IPIP in one file: every interface LINKTYPE_LINUX_SLL,
    /// each frame behind a 16-byte SLL header (big-endian fields).
    #[test]
    fn mixed_link_types_are_linux_sll() {
        let mac = [2, 0, 0, 0, 0, 1];
        #[rustfmt::skip]
        let eth: &[u8] = &[
            2, 0, 0, 0, 0, 1,       // to the device's own MAC
            2, 0, 0, 0, 0, 9,       // from
            0x08, 0x00, 0xAA, 0xBB,
        ];
        let raw: &[u8] = &[0x45, 0, 0, 4];
        let got = encode(
            &[
                iface("e", LinkType::Ethernet, ARPHRD_ETHER, mac),
                iface("t", LinkType::RawIp, ARPHRD_TUNNEL, [0; 6]),
            ],
            &[
                Record {
                    interface: 0,
                    time: SimTime::ZERO,
                    outgoing: false,
                    bytes: eth,
                },
                Record {
                    interface: 1,
                    time: SimTime::ZERO,
                    outgoing: true,
                    bytes: raw,
                },
            ],
        );
        #[rustfmt::skip]
        let want: &[u8] = &[
            // IDB "e" and IDB "t": LINKTYPE_LINUX_SLL (113)
            1, 0, 0, 0,  40, 0, 0, 0,  113, 0, 0, 0,  0x00, 0x00, 0x04, 0x00,
            2, 0, 1, 0, b'e', 0, 0, 0,  9, 0, 1, 0, 9, 0, 0, 0,  0, 0, 0, 0,  40, 0, 0, 0,
            1, 0, 0, 0,  40, 0, 0, 0,  113, 0, 0, 0,  0x00, 0x00, 0x04, 0x00,
            2, 0, 1, 0, b't', 0, 0, 0,  9, 0, 1, 0, 9, 0, 0, 0,  0, 0, 0, 0,  40, 0, 0, 0,
            // EPB: 18 bytes of data + 2 pad: total 64
            6, 0, 0, 0,  64, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            18, 0, 0, 0,  18, 0, 0, 0,
            0, 0,                   // PACKET_HOST (to this device's MAC)
            0, 1,                   // ARPHRD_ETHER
            0, 6,                   // address length
            2, 0, 0, 0, 0, 9, 0, 0, // the Ethernet source, padded to 8
            0x08, 0x00,             // protocol IPv4
            0xAA, 0xBB,             // what followed the Ethernet header
            0, 0,
            2, 0, 4, 0, 1, 0, 0, 0,  0, 0, 0, 0,  64, 0, 0, 0,
            // EPB: 20 bytes of data: total 64
            6, 0, 0, 0,  64, 0, 0, 0,  1, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0,
            20, 0, 0, 0,  20, 0, 0, 0,
            0, 4,                   // PACKET_OUTGOING
            3, 0,                   // ARPHRD_TUNNEL (768)
            0, 0,                   // no address
            0, 0, 0, 0, 0, 0, 0, 0,
            0x08, 0x00,
            0x45, 0, 0, 4,
            2, 0, 4, 0, 2, 0, 0, 0,  0, 0, 0, 0,  64, 0, 0, 0,
        ];
        assert_eq!(&got[44..], want);
    }

    #[test]
    fn sll_packet_types() {
        let i = iface("e", LinkType::Ethernet, ARPHRD_ETHER, [2, 0, 0, 0, 0, 1]);
        let frame = |dst: [u8; 6]| {
            let mut f = dst.to_vec();
            f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 8, 6]);
            f
        };
        let kind = |dst, out| sll_frame(&i, out, &frame(dst))[..2].to_vec();
        assert_eq!(kind([2, 0, 0, 0, 0, 1], false), [0, 0]);
        assert_eq!(kind([0xff; 6], false), [0, 1]);
        assert_eq!(kind([1, 0, 0x5e, 0, 0, 1], false), [0, 2]);
        assert_eq!(kind([2, 0, 0, 0, 0, 7], false), [0, 3]);
        assert_eq!(kind([0xff; 6], true), [0, 4]);
    }

    #[test]
    fn snaplen_truncates_but_keeps_the_original_length() {
        let big = vec![0u8; SNAPLEN as usize + 3];
        let got = encode(
            &[iface("x", LinkType::Ethernet, ARPHRD_ETHER, [0; 6])],
            &[Record {
                interface: 0,
                time: SimTime::ZERO,
                outgoing: false,
                bytes: &big,
            }],
        );
        // The EPB follows the 44-byte SHB and the 40-byte IDB ("x": 1 + 3 pad).
        let epb = &got[44 + 40..];
        let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        assert_eq!(u32_at(epb, 0), 6);
        assert_eq!(u32_at(epb, 20), SNAPLEN);
        assert_eq!(u32_at(epb, 24), SNAPLEN + 3);
    }

    #[test]
    fn capture_file_names() {
        assert_eq!(bad_name("x.pcap"), None);
        assert_eq!(bad_name("caps/x.pcapng"), None);
        assert_eq!(bad_name("./x.pcap"), None);
        assert!(bad_name("/tmp/x.pcap").unwrap().contains("relative"));
        assert!(bad_name("../x.pcap").unwrap().contains(".."));
        assert!(bad_name("a/../../x.pcap").unwrap().contains(".."));
        assert!(bad_name("-").is_some());
        assert!(bad_name("").is_some());
        assert!(bad_name("caps/..").is_some());
    }
}
