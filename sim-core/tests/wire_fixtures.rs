//! The wire codecs against bytes the real Linux kernel put on a veth.
//!
//! The fixtures in tests/fixtures were captured by scripts/capture-fixtures.sh
//! (see tests/fixtures/README.md); nothing here generates them. Each frame is
//! decoded with `Packet::parse` (which verifies every IPv4, ICMP, UDP and TCP
//! checksum), its fields are checked, and re-emitting the parsed packet must
//! give back the captured bytes exactly. No offload normalisation is needed:
//! the script turns tx checksum offload off on the veths, and the checksums
//! in these captures are all complete (tcpdump reports them correct).

use std::net::Ipv4Addr;

use sim_core::packet::{DecodeOptions, Header, Layer, Packet, Payload};
use sim_core::wire::icmp::unreachable;
use sim_core::wire::{
    ArpOp, ArpRepr, EtherType, EthernetRepr, IcmpRepr, IpProtocol, Ipv4Repr, MacAddr, TcpFlags,
    TcpOption, TcpRepr, UdpRepr, VxlanRepr, checksum,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/");

const MAC_A: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x01]); // ppfix-a's veth
const MAC_B: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0b, 0x01]); // ppfix-b's veth
const MAC_VXA: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0a, 0x42]); // ppfix-a's vx0
const MAC_VXB: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0b, 0x42]); // ppfix-b's vx0
const UA: Ipv4Addr = Ipv4Addr::new(192, 168, 56, 1);
const UB: Ipv4Addr = Ipv4Addr::new(192, 168, 56, 2);
const OA: Ipv4Addr = Ipv4Addr::new(172, 16, 42, 1);
const OB: Ipv4Addr = Ipv4Addr::new(172, 16, 42, 2);

/// The frames of a classic little-endian pcap file with Ethernet link type.
fn frames(name: &str) -> Vec<Vec<u8>> {
    let data = std::fs::read(format!("{FIXTURES}{name}")).unwrap();
    let u32le = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
    assert!(
        matches!(u32le(0), 0xa1b2_c3d4 | 0xa1b2_3c4d),
        "{name}: not a little-endian pcap"
    );
    assert_eq!(u32le(20), 1, "{name}: link type is not Ethernet");
    let mut out = Vec::new();
    let mut at = 24;
    while at < data.len() {
        let (incl, orig) = (u32le(at + 8) as usize, u32le(at + 12) as usize);
        assert_eq!(incl, orig, "{name}: frame cut short by the snap length");
        out.push(data[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    out
}

/// Parses one frame, checks that it re-emits to the same bytes and that
/// every IPv4 header checksum in it is valid.
fn parse(bytes: &[u8]) -> Packet {
    let d = Packet::decode(bytes, Layer::Ethernet, &DecodeOptions::default())
        .unwrap_or_else(|e| panic!("{e} in {bytes:02x?}"));
    assert_eq!(d.trailing, 0, "no Ethernet padding on a veth");
    let p = d.packet;
    assert_eq!(p.buffer_len(), bytes.len());
    assert_eq!(p.emit(), bytes, "re-emitting {p:?}");
    for (i, h) in p.headers.iter().enumerate() {
        if let Header::Ipv4(ip) = h {
            let off = p.offset_of(i);
            assert!(checksum::is_valid(&bytes[off..off + ip.header_len()]));
            assert_eq!(p.len_from(i), bytes.len() - off);
        }
    }
    p
}

fn eth(h: &Header) -> &EthernetRepr {
    match h {
        Header::Ethernet(e) => e,
        other => panic!("expected Ethernet, got {other:?}"),
    }
}
fn arp(h: &Header) -> &ArpRepr {
    match h {
        Header::Arp(a) => a,
        other => panic!("expected ARP, got {other:?}"),
    }
}
fn ipv4(h: &Header) -> &Ipv4Repr {
    match h {
        Header::Ipv4(ip) => ip,
        other => panic!("expected IPv4, got {other:?}"),
    }
}
fn icmp(h: &Header) -> &IcmpRepr {
    match h {
        Header::Icmp(i) => i,
        other => panic!("expected ICMP, got {other:?}"),
    }
}
fn udp(h: &Header) -> &UdpRepr {
    match h {
        Header::Udp(u) => u,
        other => panic!("expected UDP, got {other:?}"),
    }
}
fn tcp(h: &Header) -> &TcpRepr {
    match h {
        Header::Tcp(t) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}
fn vxlan(h: &Header) -> &VxlanRepr {
    match h {
        Header::Vxlan(v) => v,
        other => panic!("expected VXLAN, got {other:?}"),
    }
}
fn data(p: &Packet) -> &[u8] {
    p.payload.data().expect("parsed payloads are Data")
}

#[test]
fn arp_request_and_reply() {
    let f = frames("arp-icmp.pcap");
    assert_eq!(f.len(), 4);

    // Linux's ARP request on a veth: 42 bytes, no padding to 60
    assert_eq!(f[0].len(), 42);
    let req = parse(&f[0]);
    assert_eq!(req.headers.len(), 2);
    assert_eq!(
        *eth(&req.headers[0]),
        EthernetRepr {
            dst: MacAddr::BROADCAST,
            src: MAC_A,
            ethertype: EtherType::Arp
        }
    );
    assert_eq!(*arp(&req.headers[1]), ArpRepr::request(MAC_A, UA, UB));
    assert!(req.payload.is_empty());

    let rep = parse(&f[1]);
    assert_eq!(f[1].len(), 42);
    assert_eq!(
        *eth(&rep.headers[0]),
        EthernetRepr {
            dst: MAC_A,
            src: MAC_B,
            ethertype: EtherType::Arp
        }
    );
    let a = arp(&rep.headers[1]);
    assert_eq!(a.op, ArpOp::Reply);
    assert_eq!(*a, arp(&req.headers[1]).reply_from(MAC_B));
}

#[test]
fn icmp_echo_request_and_reply() {
    let f = frames("arp-icmp.pcap");
    let req = parse(&f[2]);
    assert_eq!(f[2].len(), 98); // ping -s 56: 14 + 20 + 8 + 56
    assert_eq!(req.headers.len(), 3);
    assert_eq!(
        *eth(&req.headers[0]),
        EthernetRepr {
            dst: MAC_B,
            src: MAC_A,
            ethertype: EtherType::Ipv4
        }
    );
    let ip = ipv4(&req.headers[1]);
    assert_eq!(
        (ip.src, ip.dst, ip.ttl, ip.protocol),
        (UA, UB, 64, IpProtocol::Icmp)
    );
    assert!(ip.dont_frag && !ip.is_fragment());
    assert_eq!((ip.dscp_ecn, ip.header_len()), (0, 20));
    assert_eq!(req.len_from(1), 84); // the IPv4 total length
    let IcmpRepr::EchoRequest { ident, seq } = *icmp(&req.headers[2]) else {
        panic!("not an echo request: {:?}", req.headers[2]);
    };
    assert_eq!(seq, 1);
    // ping's data: a 16-byte timeval, then 0x10, 0x11, ... 0x37
    let payload = data(&req);
    assert_eq!(payload.len(), 56);
    assert_eq!(payload[16..], (0x10..0x38).collect::<Vec<u8>>()[..]);

    let rep = parse(&f[3]);
    assert_eq!(
        *eth(&rep.headers[0]),
        EthernetRepr {
            dst: MAC_A,
            src: MAC_B,
            ethertype: EtherType::Ipv4
        }
    );
    let rip = ipv4(&rep.headers[1]);
    assert_eq!(
        (rip.src, rip.dst, rip.ttl, rip.protocol),
        (UB, UA, 64, IpProtocol::Icmp)
    );
    assert!(!rip.dont_frag, "Linux's echo replies do not set DF");
    assert_eq!(*icmp(&rep.headers[2]), IcmpRepr::EchoReply { ident, seq });
    assert_eq!(data(&rep), payload);
}

fn check_vxlan(name: &str, udp_checksum: bool) {
    let f = frames(name);
    assert_eq!(f.len(), 4);
    let inner_arp = [
        (
            UA,
            UB,
            MAC_A,
            MAC_B,
            ArpRepr::request(MAC_VXA, OA, OB),
            MacAddr::BROADCAST,
        ),
        (
            UB,
            UA,
            MAC_B,
            MAC_A,
            ArpRepr::request(MAC_VXA, OA, OB).reply_from(MAC_VXB),
            MAC_VXA,
        ),
    ];
    let mut sports = Vec::new();
    for (k, bytes) in f.iter().enumerate() {
        let p = parse(bytes);
        let (osrc, odst, omac_src, omac_dst) = if k % 2 == 0 {
            (UA, UB, MAC_A, MAC_B)
        } else {
            (UB, UA, MAC_B, MAC_A)
        };
        assert_eq!(
            *eth(&p.headers[0]),
            EthernetRepr {
                dst: omac_dst,
                src: omac_src,
                ethertype: EtherType::Ipv4
            }
        );
        let oip = ipv4(&p.headers[1]);
        assert_eq!((oip.src, oip.dst, oip.ttl), (osrc, odst, 64));
        assert_eq!(oip.protocol, IpProtocol::Udp);
        assert!(!oip.dont_frag);
        let u = udp(&p.headers[2]);
        assert_eq!(u.dst_port, 4789);
        assert_eq!(u.checksum, udp_checksum);
        let raw_udp_checksum = u16::from_be_bytes([bytes[40], bytes[41]]);
        assert_eq!(raw_udp_checksum != 0, udp_checksum, "{name} frame {k}");
        sports.push(u.src_port);
        assert_eq!(*vxlan(&p.headers[3]), VxlanRepr::new(42));
        assert_eq!(p.vxlan().unwrap().vni, 42);
        assert_eq!(p.l4_ports(), Some((u.src_port, 4789)));
        // 50 bytes of encapsulation: Ethernet, IPv4, UDP, VXLAN
        assert_eq!(p.len_from(1), p.len_from(4) + 36);
        assert_eq!(bytes.len(), p.len_from(4) + 50);

        let ie = eth(&p.headers[4]);
        if k < 2 {
            let (_, _, _, _, a, dst) = inner_arp[k];
            assert_eq!(
                *ie,
                EthernetRepr {
                    dst,
                    src: a.sender_mac,
                    ethertype: EtherType::Arp
                }
            );
            assert_eq!(*arp(&p.headers[5]), a);
            assert_eq!(p.headers.len(), 6);
            assert_eq!(p.len_from(4), 42);
        } else {
            let (isrc, idst, imac_src, imac_dst) = if k == 2 {
                (OA, OB, MAC_VXA, MAC_VXB)
            } else {
                (OB, OA, MAC_VXB, MAC_VXA)
            };
            assert_eq!(
                *ie,
                EthernetRepr {
                    dst: imac_dst,
                    src: imac_src,
                    ethertype: EtherType::Ipv4
                }
            );
            let iip = p.inner_ipv4().unwrap();
            assert_eq!((iip.src, iip.dst, iip.ttl), (isrc, idst, 64));
            assert_eq!(p.index_of_inner_ipv4(), Some(5));
            assert_eq!(p.len_from(5), 84);
            assert_eq!(oip.protocol, IpProtocol::Udp);
            assert_eq!(p.len_from(1), 134); // outer IPv4 total length
            match (k, icmp(&p.headers[6])) {
                (2, IcmpRepr::EchoRequest { seq: 1, .. })
                | (3, IcmpRepr::EchoReply { seq: 1, .. }) => {}
                (_, other) => panic!("frame {k}: {other:?}"),
            }
            assert_eq!(data(&p).len(), 56);
        }
    }
    // the source port is a hash of the inner flow: request and reply agree
    assert_eq!(sports[0], sports[1]);
    assert_eq!(sports[2], sports[3]);
}

#[test]
fn vxlan_with_outer_udp_checksum() {
    // this kernel's default for `ip link add ... type vxlan` is `udpcsum`
    check_vxlan("vxlan.pcap", true);
}

#[test]
fn vxlan_without_outer_udp_checksum() {
    check_vxlan("vxlan-noudpcsum.pcap", false);
}

#[test]
fn vxlan_is_decoded_only_on_its_ports() {
    let f = frames("vxlan.pcap");
    let opts = DecodeOptions {
        vxlan_ports: vec![8472],
        ..Default::default()
    };
    let p = Packet::parse(&f[2], Layer::Ethernet, &opts).unwrap();
    assert_eq!(p.headers.len(), 3);
    assert_eq!(p.payload.len(), f[2].len() - 42);
    assert_eq!(p.emit(), f[2]);
}

#[test]
fn ipip_from_a_raw_socket() {
    let f = frames("ipip.pcap");
    assert_eq!(f.len(), 2);
    let echo = &frames("arp-icmp.pcap")[2];

    let p = parse(&f[0]);
    assert_eq!(p.headers.len(), 4);
    assert_eq!(
        *eth(&p.headers[0]),
        EthernetRepr {
            dst: MAC_B,
            src: MAC_A,
            ethertype: EtherType::Ipv4
        }
    );
    let outer = ipv4(&p.headers[1]);
    assert_eq!((outer.src, outer.dst), (UA, UB));
    assert_eq!(
        (outer.protocol, u8::from(outer.protocol)),
        (IpProtocol::Ipip, 4)
    );
    assert_eq!(outer.ttl, 64);
    assert_eq!(p.len_from(1), 104); // 20 + the 84-byte inner datagram
    let inner = p.inner_ipv4().unwrap();
    assert_eq!(
        (inner.src, inner.dst, inner.protocol),
        (UA, UB, IpProtocol::Icmp)
    );
    assert!(matches!(
        icmp(&p.headers[3]),
        IcmpRepr::EchoRequest { seq: 1, .. }
    ));
    // the inner datagram is, byte for byte, the echo request that was sent
    assert_eq!(p.emit_from(2), echo[14..]);
    assert_eq!(p.l4_ports(), None);

    // the same from the IPv4 header on
    let q = Packet::parse(&f[0][14..], Layer::Ipv4, &DecodeOptions::default()).unwrap();
    assert_eq!(q.headers[..], p.headers[1..]);
    assert_eq!(q.emit(), f[0][14..]);

    // ppfix-b has no IPIP handler: protocol 4 unreachable, quoting it all
    let e = parse(&f[1]);
    assert_eq!(e.headers.len(), 3);
    let eip = ipv4(&e.headers[1]);
    assert_eq!((eip.src, eip.dst, eip.protocol), (UB, UA, IpProtocol::Icmp));
    assert_eq!(eip.dscp_ecn, 0xc0, "Linux sends ICMP errors with TOS 0xc0");
    assert_eq!(
        *icmp(&e.headers[2]),
        IcmpRepr::DestUnreachable {
            code: unreachable::PROTOCOL,
            next_hop_mtu: 0
        }
    );
    assert!(icmp(&e.headers[2]).is_error());
    assert_eq!(data(&e), &f[0][14..]);
    assert_eq!(e.len_from(2), 112);
}

#[test]
fn tcp_connection_with_options() {
    let f = frames("tcp.pcap");
    assert_eq!(f.len(), 8);
    let p: Vec<Packet> = f.iter().map(|b| parse(b)).collect();
    let t: Vec<&TcpRepr> = p.iter().map(|p| tcp(&p.headers[2])).collect();
    for (k, p) in p.iter().enumerate() {
        let ip = ipv4(&p.headers[1]);
        assert_eq!((ip.protocol, ip.ttl), (IpProtocol::Tcp, 64));
        assert!(ip.dont_frag);
        let client_to_server = t[k].dst_port == 8080;
        assert_eq!(
            (ip.src, ip.dst),
            if client_to_server { (UA, UB) } else { (UB, UA) }
        );
        assert_eq!(t[k].header_len(), if k < 2 { 40 } else { 32 });
    }
    let (syn, synack) = (t[0], t[1]);
    assert_eq!(syn.flags, TcpFlags::SYN);
    assert_eq!(syn.ack, 0);
    assert_eq!(syn.mss(), Some(1460));
    let TcpOption::Timestamps {
        tsval: syn_ts,
        tsecr: 0,
    } = syn.options[2]
    else {
        panic!("{:?}", syn.options);
    };
    assert_eq!(
        syn.options,
        vec![
            TcpOption::Mss(1460),
            TcpOption::SackPermitted,
            TcpOption::Timestamps {
                tsval: syn_ts,
                tsecr: 0
            },
            TcpOption::Nop,
            TcpOption::WindowScale(
                syn.options
                    .iter()
                    .find_map(|o| match o {
                        TcpOption::WindowScale(s) => Some(*s),
                        _ => None,
                    })
                    .unwrap()
            ),
        ]
    );
    assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!((synack.src_port, synack.dst_port), (8080, syn.src_port));
    assert_eq!(synack.ack, syn.seq.wrapping_add(1));
    assert!(matches!(synack.options[2], TcpOption::Timestamps { tsecr, .. } if tsecr == syn_ts));

    // the handshake's ACK, then the data
    assert_eq!(t[2].flags, TcpFlags::ACK);
    assert_eq!(t[2].options[..2], [TcpOption::Nop, TcpOption::Nop]);
    assert_eq!(t[3].flags, TcpFlags::PSH | TcpFlags::ACK);
    assert_eq!(p[3].payload, Payload::Data(b"hello podpath\n".to_vec()));
    assert_eq!(t[3].seq, syn.seq.wrapping_add(1));
    assert_eq!(t[4].ack, t[3].seq.wrapping_add(14));
    // both sides close
    assert_eq!(t[5].flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(t[6].flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(t[7].ack, t[6].seq.wrapping_add(t[6].segment_len(0) as u32));
}

/// `Packet::summary` says what tcpdump says (its `.summary` files).
#[test]
fn summaries_match_tcpdump() {
    for name in ["arp-icmp", "vxlan", "vxlan-noudpcsum", "ipip", "tcp"] {
        let text = std::fs::read_to_string(format!("{FIXTURES}{name}.summary")).unwrap();
        // tcpdump prints VXLAN's inner frame on a line of its own
        let mut lines: Vec<String> = Vec::new();
        let mut continued = false;
        for line in text.lines() {
            match lines.last_mut() {
                Some(prev) if continued => {
                    prev.push(' ');
                    prev.push_str(line);
                    continued = false;
                }
                _ => {
                    continued = line.contains(": VXLAN, ");
                    lines.push(line.to_string());
                }
            }
        }
        let f = frames(&format!("{name}.pcap"));
        assert_eq!(lines.len(), f.len(), "{name}");
        for (bytes, theirs) in f.iter().zip(&lines) {
            let ours = parse(bytes).summary();
            // tcpdump appends its guess at the application ("length 14: HTTP")
            let theirs = match theirs.split_once(": HTTP") {
                Some((head, _)) => head,
                None => theirs,
            };
            assert_eq!(ours, theirs, "{name}");
        }
    }
}
