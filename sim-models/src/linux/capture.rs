//! Packet capture: what passed chosen devices, as exact wire bytes, for
//! `tcpdump -i DEV [-w FILE]` lines and the CLI's `--pcap DIR`. The model
//! only records frames; writing pcapng files is the caller's business.

use sim_core::packet::{Header, Packet};
use sim_core::time::SimTime;
use sim_core::wire::{EtherType, EthernetRepr, MacAddr};

use crate::linux::{DevId, DevKind, World};

/// Link types of captured frames (pcap LINKTYPE_* values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_RAW (101): raw IPv4, as on an IPIP tunnel device.
    RawIp,
}

/// One captured frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub time: SimTime,
    pub dev: DevId,
    /// Sent by the device (true) or received (false).
    pub outgoing: bool,
    pub bytes: Vec<u8>,
}

/// What to capture and what was captured.
#[derive(Clone, Debug, Default)]
pub struct Captures {
    /// Capture on every device (the CLI's `--pcap`).
    pub all: bool,
    /// Devices named by `tcpdump -i DEV` lines, with their `-w FILE` if any.
    pub taps: Vec<(DevId, Option<String>)>,
    pub frames: Vec<Frame>,
}

impl Captures {
    pub fn active(&self) -> bool {
        self.all || !self.taps.is_empty()
    }
}

impl World {
    pub fn link_type(&self, dev: DevId) -> LinkType {
        match self.devices[dev.ix()].kind {
            DevKind::Ipip(_) => LinkType::RawIp,
            _ => LinkType::Ethernet,
        }
    }

    /// Records a frame passing `dev` if that device is being captured.
    #[inline]
    pub fn capture(&mut self, now: SimTime, dev: DevId, pkt: &Packet, outgoing: bool) {
        if !self.captures.active() {
            return;
        }
        if !self.captures.all && !self.captures.taps.iter().any(|(d, _)| *d == dev) {
            return;
        }
        // A packet sent on `lo` comes straight back in on it: libpcap drops
        // the outgoing copy on the loopback device (linux_check_direction),
        // so tcpdump shows each packet once, as received.
        if outgoing && matches!(self.devices[dev.ix()].kind, DevKind::Loopback) {
            return;
        }
        let bytes = match (&self.devices[dev.ix()].kind, pkt.headers.first()) {
            // Loopback frames carry an all-zero Ethernet header on Linux.
            (DevKind::Loopback, Some(Header::Ipv4(_))) => {
                let mut p = pkt.clone();
                p.headers.insert(
                    0,
                    Header::Ethernet(EthernetRepr {
                        dst: MacAddr::ZERO,
                        src: MacAddr::ZERO,
                        ethertype: EtherType::Ipv4,
                    }),
                );
                p.emit()
            }
            _ => pkt.emit(),
        };
        self.captures.frames.push(Frame {
            time: now,
            dev,
            outgoing,
            bytes,
        });
    }
}
