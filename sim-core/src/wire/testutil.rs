//! proptest strategies for every repr, shared by the wire and packet tests.
//! They generate values in canonical form, the form `parse` gives back:
//! `From`-built protocol numbers, IPv4 options in whole words, TCP option
//! lists that end on a word boundary or with an end-of-list option.

use std::net::Ipv4Addr;

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

pub fn mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

pub fn ip() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

pub fn ethernet() -> impl Strategy<Value = EthernetRepr> {
    (mac(), mac(), any::<u16>()).prop_map(|(dst, src, t)| EthernetRepr {
        dst,
        src,
        ethertype: EtherType::from(t),
    })
}

pub fn arp() -> impl Strategy<Value = ArpRepr> {
    (
        prop_oneof![Just(1u16), Just(2u16), any::<u16>()],
        mac(),
        ip(),
        mac(),
        ip(),
    )
        .prop_map(
            |(op, sender_mac, sender_ip, target_mac, target_ip)| ArpRepr {
                op: ArpOp::from(op),
                sender_mac,
                sender_ip,
                target_mac,
                target_ip,
            },
        )
}

/// An IPv4 header with the given protocol number.
pub fn ipv4_with(protocol: IpProtocol) -> impl Strategy<Value = Ipv4Repr> {
    (
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
        0u16..=0x1fff,
        any::<u8>(),
        ip(),
        ip(),
        prop_oneof![3 => Just(0usize), 1 => 1usize..=10],
        any::<[u8; 40]>(),
    )
        .prop_map(
            move |(
                dscp_ecn,
                ident,
                dont_frag,
                more_frags,
                frag_offset,
                ttl,
                src,
                dst,
                words,
                opt,
            )| {
                Ipv4Repr {
                    dscp_ecn,
                    ident,
                    dont_frag,
                    more_frags,
                    frag_offset,
                    ttl,
                    protocol,
                    src,
                    dst,
                    options: opt[..words * 4].to_vec(),
                }
            },
        )
}

/// An unfragmented IPv4 header with the given protocol (what `parse`
/// decodes further).
pub fn ipv4_whole(protocol: IpProtocol) -> impl Strategy<Value = Ipv4Repr> {
    ipv4_with(protocol).prop_map(|mut r| {
        r.more_frags = false;
        r.frag_offset = 0;
        r
    })
}

pub fn ipv4() -> impl Strategy<Value = Ipv4Repr> {
    any::<u8>().prop_flat_map(|p| ipv4_with(IpProtocol::from(p)))
}

pub fn icmp() -> impl Strategy<Value = IcmpRepr> {
    prop_oneof![
        (any::<u16>(), any::<u16>()).prop_map(|(ident, seq)| IcmpRepr::EchoRequest { ident, seq }),
        (any::<u16>(), any::<u16>()).prop_map(|(ident, seq)| IcmpRepr::EchoReply { ident, seq }),
        (any::<u8>(), any::<u16>())
            .prop_map(|(code, next_hop_mtu)| IcmpRepr::DestUnreachable { code, next_hop_mtu }),
        any::<u8>().prop_map(|code| IcmpRepr::TimeExceeded { code }),
        (any::<u8>(), any::<u8>(), any::<[u8; 4]>())
            .prop_filter("types with their own variant", |(ty, _, _)| {
                !matches!(*ty, 0 | 3 | 8 | 11)
            })
            .prop_map(|(ty, code, rest)| IcmpRepr::Other { ty, code, rest }),
    ]
}

pub fn udp() -> impl Strategy<Value = UdpRepr> {
    (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(src_port, dst_port, checksum)| UdpRepr {
        src_port,
        dst_port,
        checksum,
    })
}

pub fn tcp_option() -> impl Strategy<Value = TcpOption> {
    prop_oneof![
        Just(TcpOption::Nop),
        any::<u16>().prop_map(TcpOption::Mss),
        any::<u8>().prop_map(TcpOption::WindowScale),
        Just(TcpOption::SackPermitted),
        vec(any::<(u32, u32)>(), 1..=3).prop_map(TcpOption::Sack),
        (any::<u32>(), any::<u32>())
            .prop_map(|(tsval, tsecr)| TcpOption::Timestamps { tsval, tsecr }),
        (
            any::<u8>().prop_filter("known kinds", |k| !matches!(k, 0..=5 | 8)),
            vec(any::<u8>(), 0..6)
        )
            .prop_map(|(kind, data)| TcpOption::Unknown { kind, data }),
    ]
}

/// Up to 40 bytes of options, ending with an end-of-list option when they
/// do not fill whole words (the zero padding parses as one).
pub fn tcp_options() -> impl Strategy<Value = Vec<TcpOption>> {
    vec(tcp_option(), 0..8).prop_map(|opts| {
        let mut out = Vec::new();
        let mut len = 0;
        for o in opts {
            if len + o.len() + 1 > TcpRepr::MAX_OPTIONS_LEN {
                break;
            }
            len += o.len();
            out.push(o);
        }
        if len % 4 != 0 {
            out.push(TcpOption::EndOfList);
        }
        out
    })
}

pub fn tcp() -> impl Strategy<Value = TcpRepr> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        0u16..=TcpFlags::MASK,
        any::<u16>(),
        any::<u16>(),
        tcp_options(),
    )
        .prop_map(
            |(src_port, dst_port, seq, ack, flags, window, urgent, options)| TcpRepr {
                src_port,
                dst_port,
                seq,
                ack,
                flags: TcpFlags(flags),
                window,
                urgent,
                options,
            },
        )
}

pub fn vxlan() -> impl Strategy<Value = VxlanRepr> {
    prop_oneof![
        3 => (0..=VxlanRepr::MAX_VNI).prop_map(VxlanRepr::new),
        1 => (any::<u8>(), any::<[u8; 3]>(), 0..=VxlanRepr::MAX_VNI, any::<u8>()).prop_map(
            |(flags, reserved0, vni, reserved1)| VxlanRepr { flags, reserved0, vni, reserved1 }
        ),
    ]
}
