//! BGP-4 messages (RFC 4271), with 4-octet AS numbers (RFC 6793), route
//! reflection attributes (RFC 4456), capabilities (RFC 5492), the graceful
//! restart capability (RFC 4724) and ROUTE-REFRESH (RFC 2918, RFC 7313).
//!
//! A BGP message is a 19-byte header (16-byte marker of all ones, 2-byte
//! length, 1-byte type) and a body. [`BgpMessage`] is the typed form of a
//! whole message:
//!
//! - [`BgpMessage::frame_len`] finds where a message ends in a byte stream
//!   (BGP runs over TCP: a reader buffers until a whole message is there);
//! - [`BgpMessage::parse`] decodes one message, checking every length and
//!   the attribute flags, and fails with a [`BgpError`] that says which
//!   NOTIFICATION (code, subcode, data) RFC 4271 §6 prescribes;
//! - [`BgpMessage::buffer_len`] and [`BgpMessage::emit`] write it back.
//!
//! AS numbers in AS_PATH and AGGREGATOR are 2 or 4 octets wide depending on
//! whether both speakers announced the 4-octet AS capability, so parsing and
//! emitting those take a [`BgpContext`].
//!
//! What the model does not know is kept, not lost: unknown optional
//! parameters, capabilities and optional path attributes (with their flags),
//! and the exact flags of known attributes (the extended-length bit
//! included), so that what is parsed re-emits to the same bytes — checked
//! against a capture of real BIRD 2 sessions (`tests/fixtures/bgp/`).

use std::fmt;
use std::net::Ipv4Addr;

use super::{get_u16, get_u32, put_u16, put_u32};
use crate::net::Ipv4Net;

/// The TCP port BGP listens on.
pub const BGP_PORT: u16 = 179;
/// The only BGP version there is.
pub const BGP_VERSION: u8 = 4;
/// The header's marker: 16 bytes of all ones.
pub const MARKER: [u8; 16] = [0xff; 16];
/// The header length, and the length of a KEEPALIVE.
pub const HEADER_LEN: usize = 19;
/// The largest message (RFC 4271 §4.1; extended messages, RFC 8654, are not modelled).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// The 2-octet AS put in OPEN's My Autonomous System (and AS_PATH for old
/// speakers) in place of an AS number above 65535 (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// Message type codes (RFC 4271 §4.1, RFC 2918).
pub mod msg_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Path attribute type codes.
pub mod attr_type {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
}

/// Path attribute flag bits (RFC 4271 §4.3).
pub mod attr_flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Capability codes (RFC 5492 and the IANA registry).
pub mod cap_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
}

/// AFI and SAFI numbers used here.
pub const AFI_IPV4: u16 = 1;
pub const SAFI_UNICAST: u8 = 1;

/// How AS numbers are encoded on a session: 4 octets once both speakers
/// announced the 4-octet AS capability (RFC 6793), else 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BgpContext {
    pub four_octet_as: bool,
}

impl BgpContext {
    pub const FOUR_OCTET: BgpContext = BgpContext {
        four_octet_as: true,
    };
    pub const TWO_OCTET: BgpContext = BgpContext {
        four_octet_as: false,
    };
    fn as_width(self) -> usize {
        if self.four_octet_as { 4 } else { 2 }
    }
}

/// Why bytes are not a valid BGP message, as the NOTIFICATION that RFC 4271
/// §6 says to answer with ([`BgpError::code`], [`BgpError::data`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BgpError {
    /// Fewer bytes than the header or its length field needs (only when a
    /// buffer is handed to [`BgpMessage::parse`] whole; a stream reader
    /// waits for more with [`BgpMessage::frame_len`]).
    #[error("truncated BGP message: {got} bytes, need {need}")]
    Truncated { got: usize, need: usize },
    /// 1/1: the marker is not all ones.
    #[error("connection not synchronized: the marker is not all ones")]
    ConnectionNotSynchronized,
    /// 1/2: a length outside 19..=4096, or wrong for the message type.
    #[error("bad message length {length}")]
    BadMessageLength { length: u16 },
    /// 1/3: an unknown message type.
    #[error("bad message type {msg_type}")]
    BadMessageType { msg_type: u8 },
    /// 2/1: a version other than 4 (data: the version we support, 2 octets).
    #[error("unsupported version number {version}")]
    UnsupportedVersion { version: u8 },
    /// 2/2: the peer's AS is not the one configured.
    #[error("bad peer AS {asn}")]
    BadPeerAs { asn: u32 },
    /// 2/3: an unacceptable BGP identifier (zero, or ours on an iBGP session).
    #[error("bad BGP identifier {id}")]
    BadBgpIdentifier { id: Ipv4Addr },
    /// 2/4: an optional parameter other than capabilities.
    #[error("unsupported optional parameter type {param_type}")]
    UnsupportedOptionalParameter { param_type: u8 },
    /// 2/6: a hold time of 1 or 2 seconds.
    #[error("unacceptable hold time {hold_time}")]
    UnacceptableHoldTime { hold_time: u16 },
    /// 2/0: optional parameters or capabilities whose lengths do not add up.
    #[error("malformed optional parameters")]
    MalformedOptionalParameters,
    /// 3/1: withdrawn routes or attribute lengths that overrun the message,
    /// or an attribute that appears twice.
    #[error("malformed attribute list")]
    MalformedAttributeList,
    /// 3/2: a well-known (non-optional) attribute of unknown type.
    #[error("unrecognized well-known attribute (type {})", attr.first().copied().unwrap_or(0))]
    UnrecognizedWellKnownAttribute { attr: Vec<u8> },
    /// 3/3: ORIGIN, AS_PATH or NEXT_HOP missing from an UPDATE with NLRI.
    #[error("missing well-known attribute type {type_code}")]
    MissingWellKnownAttribute { type_code: u8 },
    /// 3/4: flags that conflict with the attribute's type.
    #[error("attribute flags error: {attr:02x?}")]
    AttributeFlagsError { attr: Vec<u8> },
    /// 3/5: a length that conflicts with the attribute's type.
    #[error("attribute length error: {attr:02x?}")]
    AttributeLengthError { attr: Vec<u8> },
    /// 3/6: an ORIGIN other than 0, 1 or 2.
    #[error("invalid ORIGIN attribute: {attr:02x?}")]
    InvalidOriginAttribute { attr: Vec<u8> },
    /// 3/8: a NEXT_HOP that is not a valid host address.
    #[error("invalid NEXT_HOP attribute: {attr:02x?}")]
    InvalidNextHopAttribute { attr: Vec<u8> },
    /// 3/9: a recognised optional attribute with a bad value.
    #[error("optional attribute error: {attr:02x?}")]
    OptionalAttributeError { attr: Vec<u8> },
    /// 3/10: a prefix length over 32 or a prefix cut short.
    #[error("invalid network field")]
    InvalidNetworkField,
    /// 3/11: an AS_PATH whose segments do not add up.
    #[error("malformed AS_PATH")]
    MalformedAsPath,
    /// 7/1 (RFC 7313): a ROUTE-REFRESH whose length is not 23.
    #[error("bad ROUTE-REFRESH length {length}")]
    BadRouteRefreshLength { length: u16 },
}

impl BgpError {
    /// The NOTIFICATION error code and subcode.
    pub fn code(&self) -> (u8, u8) {
        use BgpError::*;
        match self {
            Truncated { .. } | BadMessageLength { .. } => (1, 2),
            ConnectionNotSynchronized => (1, 1),
            BadMessageType { .. } => (1, 3),
            UnsupportedVersion { .. } => (2, 1),
            BadPeerAs { .. } => (2, 2),
            BadBgpIdentifier { .. } => (2, 3),
            UnsupportedOptionalParameter { .. } => (2, 4),
            UnacceptableHoldTime { .. } => (2, 6),
            MalformedOptionalParameters => (2, 0),
            MalformedAttributeList => (3, 1),
            UnrecognizedWellKnownAttribute { .. } => (3, 2),
            MissingWellKnownAttribute { .. } => (3, 3),
            AttributeFlagsError { .. } => (3, 4),
            AttributeLengthError { .. } => (3, 5),
            InvalidOriginAttribute { .. } => (3, 6),
            InvalidNextHopAttribute { .. } => (3, 8),
            OptionalAttributeError { .. } => (3, 9),
            InvalidNetworkField => (3, 10),
            MalformedAsPath => (3, 11),
            BadRouteRefreshLength { .. } => (7, 1),
        }
    }

    /// The NOTIFICATION data RFC 4271 §6 asks for.
    pub fn data(&self) -> Vec<u8> {
        use BgpError::*;
        match self {
            BadMessageLength { length } | BadRouteRefreshLength { length } => {
                length.to_be_bytes().to_vec()
            }
            BadMessageType { msg_type } => vec![*msg_type],
            UnsupportedVersion { .. } => (BGP_VERSION as u16).to_be_bytes().to_vec(),
            MissingWellKnownAttribute { type_code } => vec![*type_code],
            UnrecognizedWellKnownAttribute { attr }
            | AttributeFlagsError { attr }
            | AttributeLengthError { attr }
            | InvalidOriginAttribute { attr }
            | InvalidNextHopAttribute { attr }
            | OptionalAttributeError { attr } => attr.clone(),
            _ => Vec::new(),
        }
    }

    /// The NOTIFICATION to send for this error.
    pub fn notification(&self) -> NotificationRepr {
        let (code, subcode) = self.code();
        NotificationRepr {
            code,
            subcode,
            data: self.data(),
        }
    }
}

/// One BGP message.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BgpMessage {
    Open(OpenRepr),
    Update(UpdateRepr),
    Notification(NotificationRepr),
    Keepalive,
    RouteRefresh(RouteRefreshRepr),
}

impl BgpMessage {
    /// The type code.
    pub fn msg_type(&self) -> u8 {
        match self {
            BgpMessage::Open(_) => msg_type::OPEN,
            BgpMessage::Update(_) => msg_type::UPDATE,
            BgpMessage::Notification(_) => msg_type::NOTIFICATION,
            BgpMessage::Keepalive => msg_type::KEEPALIVE,
            BgpMessage::RouteRefresh(_) => msg_type::ROUTE_REFRESH,
        }
    }

    /// The length of the message at the start of a stream buffer, once the
    /// whole message is there: `Ok(None)` while fewer bytes than its header
    /// or its length field say have arrived. Checks the marker and that the
    /// length is within 19..=4096.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, BgpError> {
        let have = buf.len().min(MARKER.len());
        let synced = match buf.first_chunk::<16>() {
            // The whole marker: one comparison (the marker is all ones).
            Some(m) => u128::from_ne_bytes(*m) == u128::MAX,
            None => buf[..have] == MARKER[..have],
        };
        if !synced {
            return Err(BgpError::ConnectionNotSynchronized);
        }
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let length = get_u16(buf, 16);
        if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&(length as usize)) {
            return Err(BgpError::BadMessageLength { length });
        }
        Ok((buf.len() >= length as usize).then_some(length as usize))
    }

    /// Decodes the message at the start of `buf`; returns it and its length.
    pub fn parse(buf: &[u8], cx: BgpContext) -> Result<(BgpMessage, usize), BgpError> {
        let len = match Self::frame_len(buf)? {
            Some(len) => len,
            None if buf.len() < HEADER_LEN => {
                return Err(BgpError::Truncated {
                    got: buf.len(),
                    need: HEADER_LEN,
                });
            }
            None => {
                return Err(BgpError::Truncated {
                    got: buf.len(),
                    need: get_u16(buf, 16) as usize,
                });
            }
        };
        let length = len as u16;
        let body = &buf[HEADER_LEN..len];
        let bad_len = || BgpError::BadMessageLength { length };
        let msg = match buf[18] {
            msg_type::OPEN => {
                if body.len() < OpenRepr::MIN_BODY_LEN {
                    return Err(bad_len());
                }
                BgpMessage::Open(OpenRepr::parse_body(body)?)
            }
            msg_type::UPDATE => {
                if body.len() < 4 {
                    return Err(bad_len());
                }
                BgpMessage::Update(UpdateRepr::parse_body(body, cx)?)
            }
            msg_type::NOTIFICATION => {
                if body.len() < 2 {
                    return Err(bad_len());
                }
                BgpMessage::Notification(NotificationRepr {
                    code: body[0],
                    subcode: body[1],
                    data: body[2..].to_vec(),
                })
            }
            msg_type::KEEPALIVE => {
                if !body.is_empty() {
                    return Err(bad_len());
                }
                BgpMessage::Keepalive
            }
            msg_type::ROUTE_REFRESH => {
                if body.len() != 4 {
                    return Err(BgpError::BadRouteRefreshLength { length });
                }
                BgpMessage::RouteRefresh(RouteRefreshRepr {
                    afi: get_u16(body, 0),
                    subtype: body[2],
                    safi: body[3],
                })
            }
            t => return Err(BgpError::BadMessageType { msg_type: t }),
        };
        Ok((msg, len))
    }

    /// The message's length on the wire, header included.
    pub fn buffer_len(&self, cx: BgpContext) -> usize {
        HEADER_LEN
            + match self {
                BgpMessage::Open(o) => o.body_len(),
                BgpMessage::Update(u) => u.body_len(cx),
                BgpMessage::Notification(n) => 2 + n.data.len(),
                BgpMessage::Keepalive => 0,
                BgpMessage::RouteRefresh(_) => 4,
            }
    }

    /// Writes the whole message at the start of `buf` (at least
    /// [`buffer_len`](Self::buffer_len) bytes).
    ///
    /// # Panics
    /// In debug builds, if the message is longer than 4096 bytes (split
    /// UPDATEs with [`UpdateRepr::fits`]).
    pub fn emit(&self, buf: &mut [u8], cx: BgpContext) {
        let len = self.buffer_len(cx);
        debug_assert!(
            len <= MAX_MESSAGE_LEN,
            "BGP message of {len} bytes exceeds 4096"
        );
        buf[..16].copy_from_slice(&MARKER);
        put_u16(buf, 16, len as u16);
        buf[18] = self.msg_type();
        let body = &mut buf[HEADER_LEN..len];
        match self {
            BgpMessage::Open(o) => o.emit_body(body),
            BgpMessage::Update(u) => u.emit_body(body, cx),
            BgpMessage::Notification(n) => {
                body[0] = n.code;
                body[1] = n.subcode;
                body[2..].copy_from_slice(&n.data);
            }
            BgpMessage::Keepalive => {}
            BgpMessage::RouteRefresh(r) => {
                put_u16(body, 0, r.afi);
                body[2] = r.subtype;
                body[3] = r.safi;
            }
        }
    }

    /// The message's bytes.
    pub fn to_bytes(&self, cx: BgpContext) -> Vec<u8> {
        let mut buf = vec![0; self.buffer_len(cx)];
        self.emit(&mut buf, cx);
        buf
    }
}

impl fmt::Display for BgpMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BgpMessage::Open(o) => o.fmt(f),
            BgpMessage::Update(u) => u.fmt(f),
            BgpMessage::Notification(n) => n.fmt(f),
            BgpMessage::Keepalive => f.write_str("KEEPALIVE"),
            BgpMessage::RouteRefresh(r) => r.fmt(f),
        }
    }
}

// ---- OPEN ---------------------------------------------------------------

/// An OPEN message (RFC 4271 §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpenRepr {
    pub version: u8,
    /// My Autonomous System: the AS, or [`AS_TRANS`] when it needs 4 octets.
    pub my_as: u16,
    /// Seconds; 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// Optional parameters in wire order.
    pub params: Vec<OptParam>,
}

/// An optional parameter of an OPEN.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OptParam {
    /// Type 2 (RFC 5492): one or more capabilities, kept grouped as sent.
    Capabilities(Vec<Capability>),
    /// Any other type (deprecated authentication, ...), kept.
    Unknown { param_type: u8, data: Vec<u8> },
}

/// A capability (RFC 5492). A known code with a length it cannot have is
/// kept as [`Capability::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// 1 (RFC 4760): an address family the speaker carries.
    Multiprotocol { afi: u16, reserved: u8, safi: u8 },
    /// 2 (RFC 2918).
    RouteRefresh,
    /// 64 (RFC 4724).
    GracefulRestart(GracefulRestartCap),
    /// 65 (RFC 6793): the speaker's AS, 4 octets.
    FourOctetAs(u32),
    /// Anything else (enhanced route refresh 70, long-lived graceful
    /// restart 71, ADD-PATH 69, ...), kept.
    Unknown { code: u8, data: Vec<u8> },
}

/// The graceful restart capability (RFC 4724 §3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartCap {
    /// The 4 flag bits (the first octet's high nibble, as 0..=15):
    /// [`GracefulRestartCap::RESTARTING`] (R), [`GracefulRestartCap::NOTIFICATION`] (N, RFC 8538).
    pub flags: u8,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

impl GracefulRestartCap {
    pub const RESTARTING: u8 = 0x8;
    pub const NOTIFICATION: u8 = 0x4;
}

/// An address family in the graceful restart capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GrFamily {
    pub afi: u16,
    pub safi: u8,
    /// 0x80: forwarding state preserved.
    pub flags: u8,
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol { .. } => cap_code::MULTIPROTOCOL,
            Capability::RouteRefresh => cap_code::ROUTE_REFRESH,
            Capability::GracefulRestart(_) => cap_code::GRACEFUL_RESTART,
            Capability::FourOctetAs(_) => cap_code::FOUR_OCTET_AS,
            Capability::Unknown { code, .. } => *code,
        }
    }

    fn value_len(&self) -> usize {
        match self {
            Capability::Multiprotocol { .. } | Capability::FourOctetAs(_) => 4,
            Capability::RouteRefresh => 0,
            Capability::GracefulRestart(g) => 2 + 4 * g.families.len(),
            Capability::Unknown { data, .. } => data.len(),
        }
    }

    fn parse(code: u8, v: &[u8]) -> Capability {
        match (code, v.len()) {
            (cap_code::MULTIPROTOCOL, 4) => Capability::Multiprotocol {
                afi: get_u16(v, 0),
                reserved: v[2],
                safi: v[3],
            },
            (cap_code::ROUTE_REFRESH, 0) => Capability::RouteRefresh,
            (cap_code::FOUR_OCTET_AS, 4) => Capability::FourOctetAs(get_u32(v, 0)),
            (cap_code::GRACEFUL_RESTART, n) if n >= 2 && (n - 2) % 4 == 0 => {
                Capability::GracefulRestart(GracefulRestartCap {
                    flags: v[0] >> 4,
                    restart_time: get_u16(v, 0) & 0x0fff,
                    families: v[2..]
                        .chunks_exact(4)
                        .map(|c| GrFamily {
                            afi: get_u16(c, 0),
                            safi: c[2],
                            flags: c[3],
                        })
                        .collect(),
                })
            }
            _ => Capability::Unknown {
                code,
                data: v.to_vec(),
            },
        }
    }

    fn emit(&self, b: &mut [u8]) {
        b[0] = self.code();
        b[1] = self.value_len() as u8;
        let v = &mut b[2..];
        match self {
            Capability::Multiprotocol {
                afi,
                reserved,
                safi,
            } => {
                put_u16(v, 0, *afi);
                v[2] = *reserved;
                v[3] = *safi;
            }
            Capability::RouteRefresh => {}
            Capability::FourOctetAs(asn) => put_u32(v, 0, *asn),
            Capability::GracefulRestart(g) => {
                put_u16(
                    v,
                    0,
                    ((g.flags as u16 & 0xf) << 12) | (g.restart_time & 0x0fff),
                );
                for (i, fam) in g.families.iter().enumerate() {
                    let c = &mut v[2 + 4 * i..];
                    put_u16(c, 0, fam.afi);
                    c[2] = fam.safi;
                    c[3] = fam.flags;
                }
            }
            Capability::Unknown { data, .. } => v[..data.len()].copy_from_slice(data),
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Multiprotocol { afi, safi, .. } => write!(f, "multiprotocol {afi}/{safi}"),
            Capability::RouteRefresh => f.write_str("route-refresh"),
            Capability::GracefulRestart(g) => {
                write!(f, "graceful-restart {}s", g.restart_time)?;
                if g.flags & GracefulRestartCap::RESTARTING != 0 {
                    f.write_str(" restarting")?;
                }
                for fam in &g.families {
                    write!(f, " {}/{}", fam.afi, fam.safi)?;
                    if fam.flags & 0x80 != 0 {
                        f.write_str("(F)")?;
                    }
                }
                Ok(())
            }
            Capability::FourOctetAs(asn) => write!(f, "4-octet-as {asn}"),
            Capability::Unknown { code, data } => {
                write!(f, "capability {code} ({} bytes)", data.len())
            }
        }
    }
}

impl OptParam {
    fn value_len(&self) -> usize {
        match self {
            OptParam::Capabilities(caps) => caps.iter().map(|c| 2 + c.value_len()).sum(),
            OptParam::Unknown { data, .. } => data.len(),
        }
    }
}

impl OpenRepr {
    /// Version, AS, hold time, identifier, optional parameters length.
    pub const MIN_BODY_LEN: usize = 10;

    /// An OPEN for `asn` (4 octets if need be, as [`AS_TRANS`] plus the
    /// 4-octet AS capability, which callers put in `caps`), with the
    /// capabilities in one optional parameter, as BIRD sends them.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, caps: Vec<Capability>) -> Self {
        OpenRepr {
            version: BGP_VERSION,
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            params: if caps.is_empty() {
                Vec::new()
            } else {
                vec![OptParam::Capabilities(caps)]
            },
        }
    }

    /// Every capability, over all optional parameters.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flat_map(|p| match p {
            OptParam::Capabilities(c) => c.as_slice(),
            OptParam::Unknown { .. } => &[],
        })
    }

    /// The AS of the 4-octet AS capability, if announced.
    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities().find_map(|c| match c {
            Capability::FourOctetAs(a) => Some(*a),
            _ => None,
        })
    }

    /// The speaker's AS: from the 4-octet capability, else My Autonomous System.
    pub fn peer_as(&self) -> u32 {
        self.four_octet_as().unwrap_or(self.my_as as u32)
    }

    pub fn graceful_restart(&self) -> Option<&GracefulRestartCap> {
        self.capabilities().find_map(|c| match c {
            Capability::GracefulRestart(g) => Some(g),
            _ => None,
        })
    }

    pub fn route_refresh(&self) -> bool {
        self.capabilities()
            .any(|c| matches!(c, Capability::RouteRefresh))
    }

    fn body_len(&self) -> usize {
        Self::MIN_BODY_LEN + self.params.iter().map(|p| 2 + p.value_len()).sum::<usize>()
    }

    fn parse_body(b: &[u8]) -> Result<OpenRepr, BgpError> {
        let opt_len = b[9] as usize;
        if Self::MIN_BODY_LEN + opt_len != b.len() {
            return Err(BgpError::BadMessageLength {
                length: (HEADER_LEN + b.len()) as u16,
            });
        }
        let mut params = Vec::new();
        let mut rest = &b[Self::MIN_BODY_LEN..];
        while !rest.is_empty() {
            if rest.len() < 2 || rest.len() < 2 + rest[1] as usize {
                return Err(BgpError::MalformedOptionalParameters);
            }
            let (ptype, plen) = (rest[0], rest[1] as usize);
            let v = &rest[2..2 + plen];
            params.push(if ptype == 2 {
                let mut caps = Vec::new();
                let mut c = v;
                while !c.is_empty() {
                    if c.len() < 2 || c.len() < 2 + c[1] as usize {
                        return Err(BgpError::MalformedOptionalParameters);
                    }
                    let clen = c[1] as usize;
                    caps.push(Capability::parse(c[0], &c[2..2 + clen]));
                    c = &c[2 + clen..];
                }
                OptParam::Capabilities(caps)
            } else {
                OptParam::Unknown {
                    param_type: ptype,
                    data: v.to_vec(),
                }
            });
            rest = &rest[2 + plen..];
        }
        Ok(OpenRepr {
            version: b[0],
            my_as: get_u16(b, 1),
            hold_time: get_u16(b, 3),
            bgp_id: Ipv4Addr::from(get_u32(b, 5)),
            params,
        })
    }

    fn emit_body(&self, b: &mut [u8]) {
        b[0] = self.version;
        put_u16(b, 1, self.my_as);
        put_u16(b, 3, self.hold_time);
        put_u32(b, 5, u32::from(self.bgp_id));
        b[9] = (self.body_len() - Self::MIN_BODY_LEN) as u8;
        let mut at = Self::MIN_BODY_LEN;
        for p in &self.params {
            let vlen = p.value_len();
            match p {
                OptParam::Capabilities(caps) => {
                    b[at] = 2;
                    let mut c = at + 2;
                    for cap in caps {
                        cap.emit(&mut b[c..]);
                        c += 2 + cap.value_len();
                    }
                }
                OptParam::Unknown { param_type, data } => {
                    b[at] = *param_type;
                    b[at + 2..at + 2 + data.len()].copy_from_slice(data);
                }
            }
            b[at + 1] = vlen as u8;
            at += 2 + vlen;
        }
    }
}

impl fmt::Display for OpenRepr {
    /// `OPEN version 4, AS 64512, hold time 240, id 10.0.0.1, capabilities [...]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OPEN version {}, AS {}, hold time {}, id {}",
            self.version,
            self.peer_as(),
            self.hold_time,
            self.bgp_id
        )?;
        let caps: Vec<String> = self.capabilities().map(|c| c.to_string()).collect();
        if !caps.is_empty() {
            write!(f, ", capabilities [{}]", caps.join(", "))?;
        }
        Ok(())
    }
}

// ---- UPDATE -------------------------------------------------------------

/// An UPDATE message (RFC 4271 §4.3): IPv4 unicast routes withdrawn and
/// announced (with the path attributes they share).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct UpdateRepr {
    pub withdrawn: Vec<Ipv4Net>,
    /// Path attributes in wire order.
    pub attributes: Vec<PathAttribute>,
    pub nlri: Vec<Ipv4Net>,
}

/// A path attribute: its flags as sent, and its value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathAttribute {
    /// Optional, transitive, partial and extended-length bits (and the
    /// four unused bits), as received. Emitting sets the extended-length
    /// bit if the value needs it.
    pub flags: u8,
    pub value: AttrValue,
}

/// A path attribute's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttrValue {
    Origin(Origin),
    AsPath(Vec<AsSegment>),
    NextHop(Ipv4Addr),
    MultiExitDisc(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator {
        asn: u32,
        addr: Ipv4Addr,
    },
    /// RFC 1997 communities, each `asn << 16 | value`.
    Communities(Vec<u32>),
    /// RFC 4456.
    OriginatorId(Ipv4Addr),
    /// RFC 4456, the most recent cluster first.
    ClusterList(Vec<Ipv4Addr>),
    /// An optional attribute the model does not know (extended and large
    /// communities, MP_REACH_NLRI, AS4_PATH, ...), kept as bytes.
    Unknown {
        type_code: u8,
        data: Vec<u8>,
    },
}

/// ORIGIN (lower is preferred).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Igp => "IGP",
            Origin::Egp => "EGP",
            Origin::Incomplete => "incomplete",
        })
    }
}

/// An AS_PATH segment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsSegment {
    pub kind: AsSegmentKind,
    /// 1..=255 AS numbers.
    pub asns: Vec<u32>,
}

/// AS_PATH segment types (RFC 4271; the confederation ones of RFC 5065
/// are kept too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AsSegmentKind {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl AsSegment {
    pub fn sequence(asns: Vec<u32>) -> Self {
        AsSegment {
            kind: AsSegmentKind::Sequence,
            asns,
        }
    }
}

/// The length of an AS_PATH for the decision process (RFC 4271 §9.1.2.2
/// a): an AS_SET counts as 1, confederation segments as 0 (RFC 5065).
pub fn as_path_len(path: &[AsSegment]) -> usize {
    path.iter()
        .map(|s| match s.kind {
            AsSegmentKind::Sequence => s.asns.len(),
            AsSegmentKind::Set => 1,
            _ => 0,
        })
        .sum()
}

impl AttrValue {
    pub fn type_code(&self) -> u8 {
        use attr_type::*;
        match self {
            AttrValue::Origin(_) => ORIGIN,
            AttrValue::AsPath(_) => AS_PATH,
            AttrValue::NextHop(_) => NEXT_HOP,
            AttrValue::MultiExitDisc(_) => MULTI_EXIT_DISC,
            AttrValue::LocalPref(_) => LOCAL_PREF,
            AttrValue::AtomicAggregate => ATOMIC_AGGREGATE,
            AttrValue::Aggregator { .. } => AGGREGATOR,
            AttrValue::Communities(_) => COMMUNITIES,
            AttrValue::OriginatorId(_) => ORIGINATOR_ID,
            AttrValue::ClusterList(_) => CLUSTER_LIST,
            AttrValue::Unknown { type_code, .. } => *type_code,
        }
    }

    fn value_len(&self, cx: BgpContext) -> usize {
        match self {
            AttrValue::Origin(_) => 1,
            AttrValue::AsPath(segs) => segs.iter().map(|s| 2 + cx.as_width() * s.asns.len()).sum(),
            AttrValue::NextHop(_)
            | AttrValue::MultiExitDisc(_)
            | AttrValue::LocalPref(_)
            | AttrValue::OriginatorId(_) => 4,
            AttrValue::AtomicAggregate => 0,
            AttrValue::Aggregator { .. } => cx.as_width() + 4,
            AttrValue::Communities(c) => 4 * c.len(),
            AttrValue::ClusterList(c) => 4 * c.len(),
            AttrValue::Unknown { data, .. } => data.len(),
        }
    }

    fn emit(&self, v: &mut [u8], cx: BgpContext) {
        match self {
            AttrValue::Origin(o) => v[0] = *o as u8,
            AttrValue::AsPath(segs) => {
                let mut at = 0;
                for s in segs {
                    v[at] = s.kind as u8;
                    v[at + 1] = s.asns.len() as u8;
                    at += 2;
                    for &a in &s.asns {
                        put_as(v, at, a, cx);
                        at += cx.as_width();
                    }
                }
            }
            AttrValue::NextHop(a) | AttrValue::OriginatorId(a) => put_u32(v, 0, u32::from(*a)),
            AttrValue::MultiExitDisc(x) | AttrValue::LocalPref(x) => put_u32(v, 0, *x),
            AttrValue::AtomicAggregate => {}
            AttrValue::Aggregator { asn, addr } => {
                put_as(v, 0, *asn, cx);
                put_u32(v, cx.as_width(), u32::from(*addr));
            }
            AttrValue::Communities(c) => {
                for (i, x) in c.iter().enumerate() {
                    put_u32(v, 4 * i, *x);
                }
            }
            AttrValue::ClusterList(c) => {
                for (i, x) in c.iter().enumerate() {
                    put_u32(v, 4 * i, u32::from(*x));
                }
            }
            AttrValue::Unknown { data, .. } => v.copy_from_slice(data),
        }
    }
}

fn put_as(v: &mut [u8], at: usize, asn: u32, cx: BgpContext) {
    if cx.four_octet_as {
        put_u32(v, at, asn);
    } else {
        put_u16(v, at, u16::try_from(asn).unwrap_or(AS_TRANS));
    }
}

fn get_as(v: &[u8], at: usize, cx: BgpContext) -> u32 {
    if cx.four_octet_as {
        get_u32(v, at)
    } else {
        get_u16(v, at) as u32
    }
}

/// The flags a known attribute type must have (optional, transitive), or
/// `None` for types the model does not know.
fn expected_flags(type_code: u8) -> Option<u8> {
    use attr_flags::*;
    use attr_type::*;
    match type_code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some(TRANSITIVE),
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST => Some(OPTIONAL),
        AGGREGATOR | COMMUNITIES => Some(OPTIONAL | TRANSITIVE),
        _ => None,
    }
}

impl PathAttribute {
    /// A known attribute with the flags its type has (not partial, short
    /// length form unless the value is over 255 bytes).
    ///
    /// # Panics
    /// For [`AttrValue::Unknown`], whose flags cannot be guessed: use
    /// [`PathAttribute::unknown`].
    pub fn new(value: AttrValue) -> Self {
        let flags = expected_flags(value.type_code())
            .expect("PathAttribute::new takes a known attribute; use PathAttribute::unknown");
        PathAttribute { flags, value }
    }

    /// An attribute of a type the model does not know, with its flags.
    pub fn unknown(flags: u8, type_code: u8, data: Vec<u8>) -> Self {
        PathAttribute {
            flags,
            value: AttrValue::Unknown { type_code, data },
        }
    }

    pub fn type_code(&self) -> u8 {
        self.value.type_code()
    }

    fn extended(&self, cx: BgpContext) -> bool {
        self.flags & attr_flags::EXTENDED_LENGTH != 0 || self.value.value_len(cx) > 255
    }

    fn buffer_len(&self, cx: BgpContext) -> usize {
        (if self.extended(cx) { 4 } else { 3 }) + self.value.value_len(cx)
    }

    fn emit(&self, b: &mut [u8], cx: BgpContext) -> usize {
        let vlen = self.value.value_len(cx);
        let ext = self.extended(cx);
        b[0] = if ext {
            self.flags | attr_flags::EXTENDED_LENGTH
        } else {
            self.flags
        };
        b[1] = self.type_code();
        let hl = if ext {
            put_u16(b, 2, vlen as u16);
            4
        } else {
            b[2] = vlen as u8;
            3
        };
        self.value.emit(&mut b[hl..hl + vlen], cx);
        hl + vlen
    }

    /// Decodes one attribute at the start of `b` (within the attribute
    /// list); returns it and its length.
    fn parse(b: &[u8], cx: BgpContext) -> Result<(PathAttribute, usize), BgpError> {
        use attr_type::*;
        if b.len() < 3 {
            return Err(BgpError::MalformedAttributeList);
        }
        let (flags, code) = (b[0], b[1]);
        let ext = flags & attr_flags::EXTENDED_LENGTH != 0;
        let hl = if ext { 4 } else { 3 };
        if b.len() < hl {
            return Err(BgpError::MalformedAttributeList);
        }
        let vlen = if ext {
            get_u16(b, 2) as usize
        } else {
            b[2] as usize
        };
        if b.len() < hl + vlen {
            return Err(BgpError::MalformedAttributeList);
        }
        let whole = &b[..hl + vlen];
        let v = &b[hl..hl + vlen];
        let attr = || whole.to_vec();
        let Some(expected) = expected_flags(code) else {
            if flags & attr_flags::OPTIONAL == 0 {
                return Err(BgpError::UnrecognizedWellKnownAttribute { attr: attr() });
            }
            return Ok((PathAttribute::unknown(flags, code, v.to_vec()), hl + vlen));
        };
        // Well-known and optional non-transitive attributes must not be
        // partial; optional transitive ones may be.
        let checked = if expected == attr_flags::OPTIONAL | attr_flags::TRANSITIVE {
            attr_flags::OPTIONAL | attr_flags::TRANSITIVE
        } else {
            attr_flags::OPTIONAL | attr_flags::TRANSITIVE | attr_flags::PARTIAL
        };
        if flags & checked != expected {
            return Err(BgpError::AttributeFlagsError { attr: attr() });
        }
        let len_err = || BgpError::AttributeLengthError { attr: attr() };
        let want = |n: usize| if vlen == n { Ok(()) } else { Err(len_err()) };
        let value = match code {
            ORIGIN => {
                want(1)?;
                AttrValue::Origin(match v[0] {
                    0 => Origin::Igp,
                    1 => Origin::Egp,
                    2 => Origin::Incomplete,
                    _ => return Err(BgpError::InvalidOriginAttribute { attr: attr() }),
                })
            }
            AS_PATH => {
                let mut segs = Vec::new();
                let mut at = 0;
                let w = cx.as_width();
                while at < vlen {
                    if vlen - at < 2 {
                        return Err(BgpError::MalformedAsPath);
                    }
                    let kind = match v[at] {
                        1 => AsSegmentKind::Set,
                        2 => AsSegmentKind::Sequence,
                        3 => AsSegmentKind::ConfedSequence,
                        4 => AsSegmentKind::ConfedSet,
                        _ => return Err(BgpError::MalformedAsPath),
                    };
                    let n = v[at + 1] as usize;
                    if n == 0 || vlen - at - 2 < n * w {
                        return Err(BgpError::MalformedAsPath);
                    }
                    let asns = (0..n).map(|i| get_as(v, at + 2 + i * w, cx)).collect();
                    segs.push(AsSegment { kind, asns });
                    at += 2 + n * w;
                }
                AttrValue::AsPath(segs)
            }
            NEXT_HOP => {
                want(4)?;
                AttrValue::NextHop(Ipv4Addr::from(get_u32(v, 0)))
            }
            MULTI_EXIT_DISC => {
                want(4)?;
                AttrValue::MultiExitDisc(get_u32(v, 0))
            }
            LOCAL_PREF => {
                want(4)?;
                AttrValue::LocalPref(get_u32(v, 0))
            }
            ATOMIC_AGGREGATE => {
                want(0)?;
                AttrValue::AtomicAggregate
            }
            AGGREGATOR => {
                want(cx.as_width() + 4)?;
                AttrValue::Aggregator {
                    asn: get_as(v, 0, cx),
                    addr: Ipv4Addr::from(get_u32(v, cx.as_width())),
                }
            }
            COMMUNITIES => {
                if vlen % 4 != 0 {
                    return Err(len_err());
                }
                AttrValue::Communities(v.chunks_exact(4).map(|c| get_u32(c, 0)).collect())
            }
            ORIGINATOR_ID => {
                want(4)?;
                AttrValue::OriginatorId(Ipv4Addr::from(get_u32(v, 0)))
            }
            CLUSTER_LIST => {
                if vlen % 4 != 0 {
                    return Err(len_err());
                }
                AttrValue::ClusterList(
                    v.chunks_exact(4)
                        .map(|c| Ipv4Addr::from(get_u32(c, 0)))
                        .collect(),
                )
            }
            _ => unreachable!("expected_flags knows exactly these types"),
        };
        Ok((PathAttribute { flags, value }, hl + vlen))
    }
}

/// The length of an encoded prefix: its length octet and the octets the
/// prefix needs.
pub fn prefix_len_on_wire(p: &Ipv4Net) -> usize {
    1 + (p.len as usize).div_ceil(8)
}

fn parse_prefixes(mut b: &[u8]) -> Result<Vec<Ipv4Net>, BgpError> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = b[0];
        if len > 32 {
            return Err(BgpError::InvalidNetworkField);
        }
        let n = (len as usize).div_ceil(8);
        if b.len() < 1 + n {
            return Err(BgpError::InvalidNetworkField);
        }
        let mut octets = [0u8; 4];
        octets[..n].copy_from_slice(&b[1..1 + n]);
        out.push(Ipv4Net {
            addr: Ipv4Addr::from(octets),
            len,
        });
        b = &b[1 + n..];
    }
    Ok(out)
}

fn emit_prefixes(ps: &[Ipv4Net], b: &mut [u8]) -> usize {
    let mut at = 0;
    for p in ps {
        let n = (p.len as usize).div_ceil(8);
        b[at] = p.len;
        b[at + 1..at + 1 + n].copy_from_slice(&p.addr.octets()[..n]);
        at += 1 + n;
    }
    at
}

impl UpdateRepr {
    /// An End-of-RIB marker for IPv4 unicast (RFC 4724 §2): an empty UPDATE.
    pub fn end_of_rib() -> Self {
        UpdateRepr::default()
    }

    pub fn is_end_of_rib(&self) -> bool {
        self.withdrawn.is_empty() && self.attributes.is_empty() && self.nlri.is_empty()
    }

    /// The attribute of this type, if present.
    pub fn attr(&self, type_code: u8) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.type_code() == type_code)
            .map(|a| &a.value)
    }

    pub fn origin(&self) -> Option<Origin> {
        match self.attr(attr_type::ORIGIN) {
            Some(AttrValue::Origin(o)) => Some(*o),
            _ => None,
        }
    }
    pub fn as_path(&self) -> Option<&[AsSegment]> {
        match self.attr(attr_type::AS_PATH) {
            Some(AttrValue::AsPath(p)) => Some(p),
            _ => None,
        }
    }
    pub fn next_hop(&self) -> Option<Ipv4Addr> {
        match self.attr(attr_type::NEXT_HOP) {
            Some(AttrValue::NextHop(a)) => Some(*a),
            _ => None,
        }
    }
    pub fn med(&self) -> Option<u32> {
        match self.attr(attr_type::MULTI_EXIT_DISC) {
            Some(AttrValue::MultiExitDisc(m)) => Some(*m),
            _ => None,
        }
    }
    pub fn local_pref(&self) -> Option<u32> {
        match self.attr(attr_type::LOCAL_PREF) {
            Some(AttrValue::LocalPref(m)) => Some(*m),
            _ => None,
        }
    }
    pub fn originator_id(&self) -> Option<Ipv4Addr> {
        match self.attr(attr_type::ORIGINATOR_ID) {
            Some(AttrValue::OriginatorId(a)) => Some(*a),
            _ => None,
        }
    }
    pub fn cluster_list(&self) -> Option<&[Ipv4Addr]> {
        match self.attr(attr_type::CLUSTER_LIST) {
            Some(AttrValue::ClusterList(c)) => Some(c),
            _ => None,
        }
    }
    pub fn communities(&self) -> Option<&[u32]> {
        match self.attr(attr_type::COMMUNITIES) {
            Some(AttrValue::Communities(c)) => Some(c),
            _ => None,
        }
    }

    /// The checks RFC 4271 §6.3 makes beyond the syntax [`BgpMessage::parse`]
    /// checks: an UPDATE that announces routes carries ORIGIN, AS_PATH and
    /// NEXT_HOP (3/3), and its NEXT_HOP is a unicast host address (3/8).
    pub fn validate(&self) -> Result<(), BgpError> {
        if self.nlri.is_empty() {
            return Ok(());
        }
        for t in [attr_type::ORIGIN, attr_type::AS_PATH, attr_type::NEXT_HOP] {
            if self.attr(t).is_none() {
                return Err(BgpError::MissingWellKnownAttribute { type_code: t });
            }
        }
        if let Some(nh) = self.next_hop()
            && (nh.is_unspecified() || nh.is_broadcast() || nh.is_multicast())
        {
            let a = self
                .attributes
                .iter()
                .find(|a| a.type_code() == attr_type::NEXT_HOP)
                .expect("checked above");
            let mut buf = vec![0; a.buffer_len(BgpContext::FOUR_OCTET)];
            a.emit(&mut buf, BgpContext::FOUR_OCTET);
            return Err(BgpError::InvalidNextHopAttribute { attr: buf });
        }
        Ok(())
    }

    /// The length of the body: lengths, withdrawn routes, attributes, NLRI.
    pub fn body_len(&self, cx: BgpContext) -> usize {
        4 + self.withdrawn.iter().map(prefix_len_on_wire).sum::<usize>()
            + self
                .attributes
                .iter()
                .map(|a| a.buffer_len(cx))
                .sum::<usize>()
            + self.nlri.iter().map(prefix_len_on_wire).sum::<usize>()
    }

    /// Whether the whole message fits in 4096 bytes.
    pub fn fits(&self, cx: BgpContext) -> bool {
        HEADER_LEN + self.body_len(cx) <= MAX_MESSAGE_LEN
    }

    fn parse_body(b: &[u8], cx: BgpContext) -> Result<UpdateRepr, BgpError> {
        let wlen = get_u16(b, 0) as usize;
        if 2 + wlen + 2 > b.len() {
            return Err(BgpError::MalformedAttributeList);
        }
        let withdrawn = parse_prefixes(&b[2..2 + wlen])?;
        let alen = get_u16(b, 2 + wlen) as usize;
        let astart = 4 + wlen;
        if astart + alen > b.len() {
            return Err(BgpError::MalformedAttributeList);
        }
        let mut attributes: Vec<PathAttribute> = Vec::new();
        let mut a = &b[astart..astart + alen];
        while !a.is_empty() {
            let (attr, n) = PathAttribute::parse(a, cx)?;
            if attributes.iter().any(|x| x.type_code() == attr.type_code()) {
                return Err(BgpError::MalformedAttributeList);
            }
            attributes.push(attr);
            a = &a[n..];
        }
        let nlri = parse_prefixes(&b[astart + alen..])?;
        Ok(UpdateRepr {
            withdrawn,
            attributes,
            nlri,
        })
    }

    fn emit_body(&self, b: &mut [u8], cx: BgpContext) {
        let wlen = emit_prefixes(&self.withdrawn, &mut b[2..]);
        put_u16(b, 0, wlen as u16);
        let astart = 4 + wlen;
        let mut at = astart;
        for a in &self.attributes {
            at += a.emit(&mut b[at..], cx);
        }
        put_u16(b, 2 + wlen, (at - astart) as u16);
        emit_prefixes(&self.nlri, &mut b[at..]);
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Origin(o) => write!(f, "origin {o}"),
            AttrValue::AsPath(segs) => {
                f.write_str("as-path [")?;
                for (i, s) in segs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    let asns: Vec<String> = s.asns.iter().map(|a| a.to_string()).collect();
                    match s.kind {
                        AsSegmentKind::Sequence => write!(f, "{}", asns.join(" "))?,
                        AsSegmentKind::Set => write!(f, "{{{}}}", asns.join(","))?,
                        AsSegmentKind::ConfedSequence => write!(f, "({})", asns.join(" "))?,
                        AsSegmentKind::ConfedSet => write!(f, "[{}]", asns.join(","))?,
                    }
                }
                f.write_str("]")
            }
            AttrValue::NextHop(a) => write!(f, "next-hop {a}"),
            AttrValue::MultiExitDisc(m) => write!(f, "med {m}"),
            AttrValue::LocalPref(l) => write!(f, "local-pref {l}"),
            AttrValue::AtomicAggregate => f.write_str("atomic-aggregate"),
            AttrValue::Aggregator { asn, addr } => write!(f, "aggregator {asn} {addr}"),
            AttrValue::Communities(c) => {
                let c: Vec<String> = c
                    .iter()
                    .map(|x| format!("{}:{}", x >> 16, x & 0xffff))
                    .collect();
                write!(f, "communities [{}]", c.join(" "))
            }
            AttrValue::OriginatorId(a) => write!(f, "originator-id {a}"),
            AttrValue::ClusterList(c) => {
                let c: Vec<String> = c.iter().map(|x| x.to_string()).collect();
                write!(f, "cluster-list [{}]", c.join(" "))
            }
            AttrValue::Unknown { type_code, data } => {
                write!(f, "attribute {type_code} ({} bytes)", data.len())
            }
        }
    }
}

impl fmt::Display for UpdateRepr {
    /// `UPDATE withdrawn [..], origin IGP, as-path [..], ..., nlri [..]`,
    /// or `UPDATE End-of-RIB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_end_of_rib() {
            return f.write_str("UPDATE End-of-RIB");
        }
        f.write_str("UPDATE")?;
        let mut sep = " ";
        if !self.withdrawn.is_empty() {
            let w: Vec<String> = self.withdrawn.iter().map(|p| p.to_string()).collect();
            write!(f, "{sep}withdrawn [{}]", w.join(" "))?;
            sep = ", ";
        }
        for a in &self.attributes {
            write!(f, "{sep}{}", a.value)?;
            sep = ", ";
        }
        if !self.nlri.is_empty() {
            let n: Vec<String> = self.nlri.iter().map(|p| p.to_string()).collect();
            write!(f, "{sep}nlri [{}]", n.join(" "))?;
        }
        Ok(())
    }
}

// ---- NOTIFICATION, ROUTE-REFRESH ---------------------------------------

/// A NOTIFICATION message (RFC 4271 §4.5).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NotificationRepr {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl NotificationRepr {
    /// Hold Timer Expired (4/0).
    pub fn hold_timer_expired() -> Self {
        NotificationRepr {
            code: 4,
            subcode: 0,
            data: Vec::new(),
        }
    }
    /// Cease (6) with a subcode (RFC 4486: 2 administrative shutdown, 4
    /// administrative reset, ...).
    pub fn cease(subcode: u8) -> Self {
        NotificationRepr {
            code: 6,
            subcode,
            data: Vec::new(),
        }
    }

    /// The error code's and subcode's names (RFC 4271 §4.5, RFC 4486,
    /// RFC 7313).
    pub fn names(&self) -> (&'static str, &'static str) {
        let code = match self.code {
            1 => "Message Header Error",
            2 => "OPEN Message Error",
            3 => "UPDATE Message Error",
            4 => "Hold Timer Expired",
            5 => "Finite State Machine Error",
            6 => "Cease",
            7 => "ROUTE-REFRESH Message Error",
            _ => "unknown error",
        };
        let sub = match (self.code, self.subcode) {
            (_, 0) => "Unspecific",
            (1, 1) => "Connection Not Synchronized",
            (1, 2) => "Bad Message Length",
            (1, 3) => "Bad Message Type",
            (2, 1) => "Unsupported Version Number",
            (2, 2) => "Bad Peer AS",
            (2, 3) => "Bad BGP Identifier",
            (2, 4) => "Unsupported Optional Parameter",
            (2, 6) => "Unacceptable Hold Time",
            (2, 7) => "Unsupported Capability",
            (3, 1) => "Malformed Attribute List",
            (3, 2) => "Unrecognized Well-known Attribute",
            (3, 3) => "Missing Well-known Attribute",
            (3, 4) => "Attribute Flags Error",
            (3, 5) => "Attribute Length Error",
            (3, 6) => "Invalid ORIGIN Attribute",
            (3, 8) => "Invalid NEXT_HOP Attribute",
            (3, 9) => "Optional Attribute Error",
            (3, 10) => "Invalid Network Field",
            (3, 11) => "Malformed AS_PATH",
            (6, 1) => "Maximum Number of Prefixes Reached",
            (6, 2) => "Administrative Shutdown",
            (6, 3) => "Peer De-configured",
            (6, 4) => "Administrative Reset",
            (6, 5) => "Connection Rejected",
            (6, 6) => "Other Configuration Change",
            (6, 7) => "Connection Collision Resolution",
            (6, 8) => "Out of Resources",
            (6, 9) => "Hard Reset",
            (7, 1) => "Invalid Message Length",
            _ => "unknown subcode",
        };
        (code, sub)
    }
}

impl fmt::Display for NotificationRepr {
    /// `NOTIFICATION 6/2 (Cease, Administrative Shutdown)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, s) = self.names();
        write!(f, "NOTIFICATION {}/{} ({c}, {s})", self.code, self.subcode)?;
        if !self.data.is_empty() {
            write!(f, " data {:02x?}", self.data)?;
        }
        Ok(())
    }
}

/// A ROUTE-REFRESH message (RFC 2918), with RFC 7313's message subtype in
/// what RFC 2918 called the reserved octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefreshRepr {
    pub afi: u16,
    /// 0: a refresh request; 1: beginning of route refresh (BoRR); 2: end (EoRR).
    pub subtype: u8,
    pub safi: u8,
}

impl RouteRefreshRepr {
    pub fn ipv4_unicast() -> Self {
        RouteRefreshRepr {
            afi: AFI_IPV4,
            subtype: 0,
            safi: SAFI_UNICAST,
        }
    }
}

impl fmt::Display for RouteRefreshRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ROUTE-REFRESH afi {} safi {}", self.afi, self.safi)?;
        match self.subtype {
            0 => Ok(()),
            1 => f.write_str(" BoRR"),
            2 => f.write_str(" EoRR"),
            s => write!(f, " subtype {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{DecodeOptions, Header, Layer, Packet};
    use crate::wire::testutil::ip;
    use proptest::collection::vec;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const FOUR: BgpContext = BgpContext::FOUR_OCTET;

    fn prefix() -> impl Strategy<Value = Ipv4Net> {
        (any::<u32>(), 0u8..=32).prop_map(|(a, len)| {
            // Canonical: the octets past the prefix's length are zero (the
            // bits inside the last octet are kept as sent).
            let n = (len as usize).div_ceil(8);
            let mut o = a.to_be_bytes();
            for x in o.iter_mut().skip(n) {
                *x = 0;
            }
            Ipv4Net {
                addr: Ipv4Addr::from(o),
                len,
            }
        })
    }

    fn capability() -> impl Strategy<Value = Capability> {
        prop_oneof![
            (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(afi, reserved, safi)| {
                Capability::Multiprotocol {
                    afi,
                    reserved,
                    safi,
                }
            }),
            Just(Capability::RouteRefresh),
            any::<u32>().prop_map(Capability::FourOctetAs),
            (
                0u8..16,
                0u16..4096,
                vec(
                    (any::<u16>(), any::<u8>(), any::<u8>())
                        .prop_map(|(afi, safi, flags)| GrFamily { afi, safi, flags }),
                    0..4
                )
            )
                .prop_map(|(flags, restart_time, families)| {
                    Capability::GracefulRestart(GracefulRestartCap {
                        flags,
                        restart_time,
                        families,
                    })
                }),
            // Unknown codes (and known codes with lengths they cannot have).
            (any::<u8>(), vec(any::<u8>(), 0..8)).prop_filter_map(
                "an unknown capability",
                |(code, data)| {
                    let c = Capability::parse(code, &data);
                    matches!(c, Capability::Unknown { .. }).then_some(c)
                }
            ),
        ]
    }

    fn open() -> impl Strategy<Value = OpenRepr> {
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            ip(),
            vec(
                prop_oneof![
                    vec(capability(), 0..5).prop_map(OptParam::Capabilities),
                    (
                        any::<u8>().prop_filter("not 2", |t| *t != 2),
                        vec(any::<u8>(), 0..6)
                    )
                        .prop_map(|(param_type, data)| OptParam::Unknown { param_type, data }),
                ],
                0..3,
            ),
        )
            .prop_map(|(version, my_as, hold_time, bgp_id, params)| OpenRepr {
                version,
                my_as,
                hold_time,
                bgp_id,
                params,
            })
            .prop_filter("fits the 1-octet parameter lengths", |o| {
                o.params.iter().all(|p| p.value_len() <= 255) && o.body_len() - 10 <= 255
            })
    }

    fn as_path(cx: BgpContext) -> impl Strategy<Value = Vec<AsSegment>> {
        let asn = if cx.four_octet_as {
            any::<u32>().boxed()
        } else {
            (0u32..=65535).boxed()
        };
        vec(
            (
                prop_oneof![
                    Just(AsSegmentKind::Sequence),
                    Just(AsSegmentKind::Set),
                    Just(AsSegmentKind::ConfedSequence),
                    Just(AsSegmentKind::ConfedSet),
                ],
                vec(asn, 1..6),
            )
                .prop_map(|(kind, asns)| AsSegment { kind, asns }),
            0..4,
        )
    }

    /// One attribute of each type at most, with canonical or extended flags.
    fn attributes(cx: BgpContext) -> impl Strategy<Value = Vec<PathAttribute>> {
        let asn = if cx.four_octet_as {
            any::<u32>().boxed()
        } else {
            (0u32..=65535).boxed()
        };
        let known = prop_oneof![
            prop_oneof![
                Just(Origin::Igp),
                Just(Origin::Egp),
                Just(Origin::Incomplete)
            ]
            .prop_map(AttrValue::Origin),
            as_path(cx).prop_map(AttrValue::AsPath),
            ip().prop_map(AttrValue::NextHop),
            any::<u32>().prop_map(AttrValue::MultiExitDisc),
            any::<u32>().prop_map(AttrValue::LocalPref),
            Just(AttrValue::AtomicAggregate),
            (asn, ip()).prop_map(|(asn, addr)| AttrValue::Aggregator { asn, addr }),
            vec(any::<u32>(), 0..70).prop_map(AttrValue::Communities),
            ip().prop_map(AttrValue::OriginatorId),
            vec(ip(), 0..4).prop_map(AttrValue::ClusterList),
        ]
        .prop_flat_map(|v| {
            (Just(v), any::<bool>(), any::<bool>(), 0u8..16).prop_map(|(v, ext, partial, low)| {
                let mut a = PathAttribute::new(v);
                if ext {
                    a.flags |= attr_flags::EXTENDED_LENGTH;
                }
                if partial && a.flags & 0xc0 == 0xc0 {
                    a.flags |= attr_flags::PARTIAL;
                }
                a.flags |= low;
                a
            })
        });
        let unknown = (
            0x80u8..=0xff,
            prop_oneof![11u8..=255, Just(16u8), Just(32u8), Just(14u8), Just(17u8)],
            vec(any::<u8>(), 0..300),
        )
            .prop_map(|(flags, code, data)| PathAttribute::unknown(flags, code, data));
        vec(prop_oneof![3 => known, 1 => unknown], 0..8).prop_map(move |attrs| {
            let mut seen = std::collections::BTreeSet::new();
            attrs
                .into_iter()
                .filter(|a| seen.insert(a.type_code()))
                // Canonical: a value over 255 bytes has the extended-length
                // bit (emit sets it; parse keeps it).
                .map(|mut a| {
                    if a.value.value_len(cx) > 255 {
                        a.flags |= attr_flags::EXTENDED_LENGTH;
                    }
                    a
                })
                .collect()
        })
    }

    fn update(cx: BgpContext) -> impl Strategy<Value = UpdateRepr> {
        (vec(prefix(), 0..20), attributes(cx), vec(prefix(), 0..20))
            .prop_map(|(withdrawn, attributes, nlri)| UpdateRepr {
                withdrawn,
                attributes,
                nlri,
            })
            .prop_filter("fits in 4096 bytes", move |u| u.fits(cx))
    }

    fn message(cx: BgpContext) -> impl Strategy<Value = BgpMessage> {
        prop_oneof![
            open().prop_map(BgpMessage::Open),
            update(cx).prop_map(BgpMessage::Update),
            (any::<u8>(), any::<u8>(), vec(any::<u8>(), 0..40)).prop_map(
                |(code, subcode, data)| BgpMessage::Notification(NotificationRepr {
                    code,
                    subcode,
                    data
                })
            ),
            Just(BgpMessage::Keepalive),
            (any::<u16>(), any::<u8>(), any::<u8>()).prop_map(|(afi, subtype, safi)| {
                BgpMessage::RouteRefresh(RouteRefreshRepr { afi, subtype, safi })
            }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip_four_octet(m in message(BgpContext::FOUR_OCTET)) {
            let bytes = m.to_bytes(FOUR);
            prop_assert_eq!(bytes.len(), m.buffer_len(FOUR));
            prop_assert_eq!(BgpMessage::frame_len(&bytes), Ok(Some(bytes.len())));
            prop_assert_eq!(BgpMessage::frame_len(&bytes[..bytes.len() - 1]), Ok(None));
            let (back, n) = BgpMessage::parse(&bytes, FOUR).unwrap();
            prop_assert_eq!(n, bytes.len());
            prop_assert_eq!(&back, &m);
            prop_assert_eq!(back.to_bytes(FOUR), bytes);
        }

        #[test]
        fn round_trip_two_octet(m in message(BgpContext::TWO_OCTET)) {
            let cx = BgpContext::TWO_OCTET;
            let bytes = m.to_bytes(cx);
            let (back, n) = BgpMessage::parse(&bytes, cx).unwrap();
            prop_assert_eq!(n, bytes.len());
            prop_assert_eq!(back, m);
        }

        /// Arbitrary bytes after a valid header never panic the parser.
        #[test]
        fn garbage_bodies_do_not_panic(t in 1u8..=5, body in vec(any::<u8>(), 0..200)) {
            let mut b = MARKER.to_vec();
            b.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
            b.push(t);
            b.extend_from_slice(&body);
            let _ = BgpMessage::parse(&b, FOUR);
            let _ = BgpMessage::parse(&b, BgpContext::TWO_OCTET);
        }
    }

    fn msg(t: u8, body: &[u8]) -> Vec<u8> {
        let mut b = MARKER.to_vec();
        b.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
        b.push(t);
        b.extend_from_slice(body);
        b
    }

    fn update_with_attrs(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut body = vec![0, 0];
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(attrs);
        body.extend_from_slice(nlri);
        msg(2, &body)
    }

    fn err(bytes: &[u8]) -> BgpError {
        BgpMessage::parse(bytes, FOUR).unwrap_err()
    }

    #[test]
    fn keepalive_known_bytes() {
        let mut b = vec![0xff; 16];
        b.extend_from_slice(&[0, 19, 4]);
        assert_eq!(
            BgpMessage::parse(&b, FOUR).unwrap(),
            (BgpMessage::Keepalive, 19)
        );
        assert_eq!(BgpMessage::Keepalive.to_bytes(FOUR), b);
        assert_eq!(BgpMessage::Keepalive.to_string(), "KEEPALIVE");
    }

    #[test]
    fn header_errors_map_to_rfc4271_section_6_1() {
        let mut b = msg(4, &[]);
        b[3] = 0;
        let e = err(&b);
        assert_eq!((e.code(), e.data()), ((1, 1), vec![]));
        assert_eq!(
            BgpMessage::frame_len(&b[..5]),
            Err(BgpError::ConnectionNotSynchronized)
        );
        // Too short, too long, and wrong for the type: 1/2 with the length.
        let mut b = msg(4, &[]);
        b[17] = 18;
        let e = err(&b);
        assert_eq!((e.code(), e.data()), ((1, 2), vec![0, 18]));
        let mut b = msg(4, &[]);
        b[16] = 0x10;
        b[17] = 0x01;
        assert_eq!(err(&b).code(), (1, 2));
        let e = err(&msg(4, &[0]));
        assert_eq!((e.code(), e.data()), ((1, 2), vec![0, 20]));
        assert_eq!(err(&msg(3, &[6])).code(), (1, 2));
        assert_eq!(err(&msg(2, &[0, 0, 0])).code(), (1, 2));
        assert_eq!(err(&msg(1, &[4, 0, 1, 0, 240, 1, 2, 3, 4])).code(), (1, 2));
        let e = err(&msg(9, &[]));
        assert_eq!((e.code(), e.data()), ((1, 3), vec![9]));
        let e = err(&msg(5, &[0, 1, 0, 1, 0]));
        assert_eq!((e.code(), e.data()), ((7, 1), vec![0, 24]));
        // A stream waits for the rest.
        let b = msg(4, &[]);
        assert_eq!(BgpMessage::frame_len(&b[..18]), Ok(None));
        assert_eq!(BgpMessage::frame_len(&[]), Ok(None));
        assert_eq!(
            BgpMessage::parse(&b[..10], FOUR).unwrap_err(),
            BgpError::Truncated { got: 10, need: 19 }
        );
    }

    #[test]
    fn open_known_bytes_and_errors() {
        // BIRD's OPEN from the capture: AS_TRANS, 4-octet AS 4200000001.
        let body = [
            4, 0x5b, 0xa0, 0, 240, 10, 0, 0, 1, 24, 2, 22, 1, 4, 0, 1, 0, 1, 2, 0, 64, 2, 0, 120,
            65, 4, 0xfa, 0x56, 0xea, 0x01, 70, 0, 71, 0,
        ];
        let b = msg(1, &body);
        let (m, n) = BgpMessage::parse(&b, FOUR).unwrap();
        assert_eq!(n, 53);
        let BgpMessage::Open(o) = &m else { panic!() };
        assert_eq!(o.my_as, AS_TRANS);
        assert_eq!(o.peer_as(), 4_200_000_001);
        assert_eq!(o.graceful_restart().unwrap().restart_time, 120);
        assert!(o.route_refresh());
        assert_eq!(
            m.to_string(),
            "OPEN version 4, AS 4200000001, hold time 240, id 10.0.0.1, capabilities \
             [multiprotocol 1/1, route-refresh, graceful-restart 120s, 4-octet-as 4200000001, \
             capability 70 (0 bytes), capability 71 (0 bytes)]"
        );
        assert_eq!(m.to_bytes(FOUR), b);
        // OpenRepr::new puts AS_TRANS in for a 4-octet AS.
        assert_eq!(
            OpenRepr::new(4_200_000_001, 240, Ipv4Addr::new(10, 0, 0, 1), vec![]).my_as,
            AS_TRANS
        );
        // A capability overrunning its parameter.
        let mut bad = body;
        bad[11] = 30;
        assert_eq!(err(&msg(1, &bad)).code(), (2, 0));
        // Optional parameters length disagreeing with the message length.
        let mut bad = body;
        bad[9] = 23;
        assert_eq!(err(&msg(1, &bad)).code(), (1, 2));
        assert_eq!(
            BgpError::UnsupportedVersion { version: 3 }.notification(),
            NotificationRepr {
                code: 2,
                subcode: 1,
                data: vec![0, 4]
            }
        );
    }

    #[test]
    fn update_errors_map_to_rfc4271_section_6_3() {
        let origin = [0x40, 1, 1, 0];
        let path = [0x40, 2, 6, 2, 1, 0, 0, 0xfb, 0xf5];
        let nh = [0x40, 3, 4, 192, 168, 57, 2];
        let good: Vec<u8> = [&origin[..], &path, &nh].concat();
        let b = update_with_attrs(&good, &[26, 10, 244, 2, 0]);
        let (m, _) = BgpMessage::parse(&b, FOUR).unwrap();
        let BgpMessage::Update(u) = &m else { panic!() };
        assert_eq!(u.validate(), Ok(()));
        assert_eq!(
            m.to_string(),
            "UPDATE origin IGP, as-path [64501], next-hop 192.168.57.2, nlri [10.244.2.0/26]"
        );
        // ORIGIN with the optional bit: flags error, data the attribute.
        let e = err(&update_with_attrs(&[0xc0, 1, 1, 0], &[]));
        assert_eq!((e.code(), e.data()), ((3, 4), vec![0xc0, 1, 1, 0]));
        // Partial on a well-known attribute.
        assert_eq!(
            err(&update_with_attrs(&[0x60, 1, 1, 0], &[])).code(),
            (3, 4)
        );
        // Partial on an optional transitive one is fine.
        assert!(
            BgpMessage::parse(&update_with_attrs(&[0xe0, 8, 4, 1, 2, 3, 4], &[]), FOUR).is_ok()
        );
        // Lengths that conflict with the type.
        let e = err(&update_with_attrs(&[0x40, 3, 3, 1, 2, 3], &[]));
        assert_eq!((e.code(), e.data()), ((3, 5), vec![0x40, 3, 3, 1, 2, 3]));
        assert_eq!(
            err(&update_with_attrs(&[0xc0, 8, 3, 1, 2, 3], &[])).code(),
            (3, 5)
        );
        assert_eq!(
            err(&update_with_attrs(&[0x40, 6, 1, 0], &[])).code(),
            (3, 5)
        );
        // ORIGIN 3.
        let e = err(&update_with_attrs(&[0x40, 1, 1, 3], &[]));
        assert_eq!((e.code(), e.data()), ((3, 6), vec![0x40, 1, 1, 3]));
        // An unknown well-known attribute; an unknown optional one is kept.
        let e = err(&update_with_attrs(&[0x40, 99, 1, 7], &[]));
        assert_eq!((e.code(), e.data()), ((3, 2), vec![0x40, 99, 1, 7]));
        let (m, _) =
            BgpMessage::parse(&update_with_attrs(&[0xd0, 99, 0, 1, 7], &[]), FOUR).unwrap();
        let BgpMessage::Update(u) = &m else { panic!() };
        assert_eq!(
            u.attributes,
            vec![PathAttribute::unknown(0xd0, 99, vec![7])]
        );
        assert_eq!(
            m.to_bytes(FOUR),
            update_with_attrs(&[0xd0, 99, 0, 1, 7], &[])
        );
        // Twice the same attribute; an attribute overrunning the list.
        assert_eq!(
            err(&update_with_attrs(&[&origin[..], &origin].concat(), &[])).code(),
            (3, 1)
        );
        assert_eq!(
            err(&update_with_attrs(&[0x40, 1, 9, 0], &[])).code(),
            (3, 1)
        );
        // A segment overrunning the AS_PATH, an empty segment, a bad type.
        assert_eq!(
            err(&update_with_attrs(&[0x40, 2, 4, 2, 2, 0, 1], &[])).code(),
            (3, 11)
        );
        assert_eq!(
            err(&update_with_attrs(&[0x40, 2, 2, 2, 0], &[])).code(),
            (3, 11)
        );
        assert_eq!(
            err(&update_with_attrs(&[0x40, 2, 6, 7, 1, 0, 0, 0, 1], &[])).code(),
            (3, 11)
        );
        // Prefix length 33; a prefix cut short.
        assert_eq!(
            err(&update_with_attrs(&good, &[33, 1, 2, 3, 4, 5])).code(),
            (3, 10)
        );
        assert_eq!(
            err(&update_with_attrs(&good, &[24, 10, 244])).code(),
            (3, 10)
        );
        // Missing NEXT_HOP; NEXT_HOP 0.0.0.0.
        let b = update_with_attrs(&[&origin[..], &path].concat(), &[8, 10]);
        let BgpMessage::Update(u) = BgpMessage::parse(&b, FOUR).unwrap().0 else {
            panic!()
        };
        let e = u.validate().unwrap_err();
        assert_eq!((e.code(), e.data()), ((3, 3), vec![3]));
        let b = update_with_attrs(
            &[&origin[..], &path, &[0x40, 3, 4, 0, 0, 0, 0]].concat(),
            &[8, 10],
        );
        let BgpMessage::Update(u) = BgpMessage::parse(&b, FOUR).unwrap().0 else {
            panic!()
        };
        let e = u.validate().unwrap_err();
        assert_eq!((e.code(), e.data()), ((3, 8), vec![0x40, 3, 4, 0, 0, 0, 0]));
        // Withdrawn routes length overrunning the message.
        assert_eq!(err(&msg(2, &[0, 9, 0, 0])).code(), (3, 1));
    }

    #[test]
    fn extended_length_is_honoured_and_forced_when_needed() {
        // A 2-byte length on a 4-byte NEXT_HOP, as some speakers send.
        let b = update_with_attrs(&[0x50, 3, 0, 4, 10, 0, 0, 1], &[]);
        let (m, _) = BgpMessage::parse(&b, FOUR).unwrap();
        let BgpMessage::Update(u) = &m else { panic!() };
        assert_eq!(u.attributes[0].flags, 0x50);
        assert_eq!(u.next_hop(), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(m.to_bytes(FOUR), b);
        // 100 communities need 400 bytes: the long form, whatever the flags say.
        let u = UpdateRepr {
            attributes: vec![PathAttribute::new(AttrValue::Communities(
                (0..100).collect(),
            ))],
            ..Default::default()
        };
        let bytes = BgpMessage::Update(u.clone()).to_bytes(FOUR);
        assert_eq!(bytes[23], 0xc0 | attr_flags::EXTENDED_LENGTH);
        let BgpMessage::Update(back) = BgpMessage::parse(&bytes, FOUR).unwrap().0 else {
            panic!()
        };
        assert_eq!(back.communities(), u.communities());
    }

    #[test]
    fn two_octet_sessions_encode_as_trans() {
        let u = UpdateRepr {
            attributes: vec![
                PathAttribute::new(AttrValue::AsPath(vec![AsSegment::sequence(vec![
                    4_200_000_001,
                    64512,
                ])])),
                PathAttribute::new(AttrValue::Aggregator {
                    asn: 4_200_000_001,
                    addr: Ipv4Addr::new(1, 2, 3, 4),
                }),
            ],
            ..Default::default()
        };
        let cx = BgpContext::TWO_OCTET;
        let bytes = BgpMessage::Update(u).to_bytes(cx);
        let BgpMessage::Update(back) = BgpMessage::parse(&bytes, cx).unwrap().0 else {
            panic!()
        };
        assert_eq!(
            back.as_path().unwrap()[0].asns,
            vec![AS_TRANS as u32, 64512]
        );
        assert_eq!(
            back.attr(attr_type::AGGREGATOR),
            Some(&AttrValue::Aggregator {
                asn: AS_TRANS as u32,
                addr: Ipv4Addr::new(1, 2, 3, 4)
            })
        );
    }

    #[test]
    fn as_path_length_counts_a_set_as_one() {
        let p = vec![
            AsSegment::sequence(vec![1, 2, 3]),
            AsSegment {
                kind: AsSegmentKind::Set,
                asns: vec![4, 5],
            },
            AsSegment {
                kind: AsSegmentKind::ConfedSequence,
                asns: vec![6],
            },
        ];
        assert_eq!(as_path_len(&p), 4);
    }

    // ---- the capture of real BIRD 2 sessions --------------------------

    const PCAP: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bgp/bird-sessions.pcap"
    );

    /// Every TCP stream's payload in the capture, keyed by
    /// (source, source port, destination, destination port), checked to be
    /// contiguous (a veth loses nothing).
    fn streams() -> BTreeMap<(Ipv4Addr, u16, Ipv4Addr, u16), Vec<u8>> {
        let data = std::fs::read(PCAP).unwrap();
        let u32le = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        assert_eq!(u32le(0), 0xa1b2_c3d4, "a little-endian microsecond pcap");
        assert_eq!(u32le(20), 1, "Ethernet");
        let mut next_seq: BTreeMap<_, u32> = BTreeMap::new();
        let mut out: BTreeMap<_, Vec<u8>> = BTreeMap::new();
        let mut at = 24;
        while at < data.len() {
            let incl = u32le(at + 8) as usize;
            assert_eq!(
                incl,
                u32le(at + 12) as usize,
                "frame cut by the snap length"
            );
            let frame = &data[at + 16..at + 16 + incl];
            at += 16 + incl;
            let p = Packet::decode(frame, Layer::Ethernet, &DecodeOptions::default())
                .unwrap()
                .packet;
            let (Some(Header::Ipv4(ip)), Some(Header::Tcp(tcp))) =
                (p.headers.get(1), p.headers.get(2))
            else {
                panic!("not TCP over IPv4: {p:?}")
            };
            let key = (ip.src, tcp.src_port, ip.dst, tcp.dst_port);
            let payload = p.payload.to_vec();
            if tcp.flags.contains(crate::wire::TcpFlags::SYN) {
                next_seq.insert(key, tcp.seq.wrapping_add(1));
                continue;
            }
            if payload.is_empty() {
                continue;
            }
            let want = next_seq[&key];
            assert_eq!(tcp.seq, want, "a gap or retransmission in {key:?}");
            next_seq.insert(key, want.wrapping_add(payload.len() as u32));
            out.entry(key).or_default().extend_from_slice(&payload);
        }
        out
    }

    #[test]
    fn bird_capture_decodes_and_re_emits_exactly() {
        let streams = streams();
        // s_ebgp, s_as4, rr_b: both directions each.
        assert_eq!(streams.len(), 6);
        let mut all: Vec<(Ipv4Addr, BgpMessage)> = Vec::new();
        for ((src, _, _, _), bytes) in &streams {
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                let len = BgpMessage::frame_len(rest)
                    .unwrap()
                    .expect("the stream ends on a message boundary");
                // Every session here announced the 4-octet AS capability.
                let (m, n) = BgpMessage::parse(&rest[..len], FOUR)
                    .unwrap_or_else(|e| panic!("{e} in {:02x?}", &rest[..len]));
                assert_eq!(n, len);
                assert_eq!(m.buffer_len(FOUR), len);
                assert_eq!(m.to_bytes(FOUR), &rest[..len], "re-emitting {m}");
                if let BgpMessage::Update(u) = &m {
                    u.validate().unwrap();
                }
                all.push((*src, m));
                rest = &rest[len..];
            }
        }
        let count = |f: &dyn Fn(&BgpMessage) -> bool| all.iter().filter(|(_, m)| f(m)).count();
        assert_eq!(count(&|m| matches!(m, BgpMessage::Open(_))), 6);
        assert!(count(&|m| matches!(m, BgpMessage::Keepalive)) >= 6);
        assert!(count(&|m| matches!(m, BgpMessage::Update(_))) >= 12);

        let opens: Vec<&OpenRepr> = all
            .iter()
            .filter_map(|(_, m)| match m {
                BgpMessage::Open(o) => Some(o),
                _ => None,
            })
            .collect();
        // 4-octet ASes: AS_TRANS in My Autonomous System.
        assert!(
            opens
                .iter()
                .any(|o| o.my_as == AS_TRANS && o.peer_as() == 4_200_000_001)
        );
        assert!(
            opens
                .iter()
                .any(|o| o.my_as == AS_TRANS && o.peer_as() == 4_200_000_002)
        );
        for o in &opens {
            assert_eq!(
                (o.version, o.hold_time),
                (4, 240),
                "BIRD's default hold time"
            );
            let codes: Vec<u8> = o.capabilities().map(|c| c.code()).collect();
            assert_eq!(codes, vec![1, 2, 64, 65, 70, 71], "BIRD 2's capabilities");
            let gr = o.graceful_restart().unwrap();
            assert_eq!(gr.restart_time, 120);
            if o.peer_as() == 64501 || o.peer_as() == 64502 {
                // `graceful restart on`: IPv4 unicast listed; otherwise
                // (BIRD's default, `aware`) no families.
                assert_eq!(
                    gr.families,
                    vec![GrFamily {
                        afi: 1,
                        safi: 1,
                        flags: 0
                    }]
                );
            } else {
                assert!(gr.families.is_empty());
            }
        }

        let updates: Vec<&UpdateRepr> = all
            .iter()
            .filter_map(|(_, m)| match m {
                BgpMessage::Update(u) => Some(u),
                _ => None,
            })
            .collect();
        assert!(updates.iter().filter(|u| u.is_end_of_rib()).count() >= 5);
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        // The decorated prefix: MED, communities, unknown extended (16) and
        // large (32) communities kept with their flags.
        let deco = updates
            .iter()
            .find(|u| u.nlri.contains(&net("10.244.2.64/26")) && u.med().is_some())
            .unwrap();
        assert_eq!(deco.med(), Some(50));
        assert_eq!(
            deco.communities(),
            Some(&[(64502 << 16) | 100, 0xffff_ff01][..])
        );
        assert!(deco.attributes.contains(&PathAttribute::unknown(
            0xc0,
            16,
            vec![0, 2, 0xfb, 0xf6, 0, 0, 0, 7]
        )));
        assert!(
            deco.attributes.contains(&PathAttribute::unknown(
                0xc0,
                32,
                [64502u32, 1, 2]
                    .iter()
                    .flat_map(|x| x.to_be_bytes())
                    .collect()
            ))
        );
        // eBGP: AS_PATH of the sender's AS (4-octet); no LOCAL_PREF.
        assert!(updates.iter().any(|u| u.as_path()
            == Some(&[AsSegment::sequence(vec![4_200_000_001])][..])
            && u.local_pref().is_none()));
        // iBGP: LOCAL_PREF 100, empty AS_PATH.
        assert!(
            updates
                .iter()
                .any(|u| u.local_pref() == Some(100) && u.as_path() == Some(&[][..]))
        );
        // Reflected by A (cluster 10.0.0.100) from its client C (10.0.0.3),
        // next hop kept.
        let reflected = updates
            .iter()
            .find(|u| u.nlri.contains(&net("10.244.3.0/26")))
            .unwrap();
        assert_eq!(reflected.originator_id(), Some(Ipv4Addr::new(10, 0, 0, 3)));
        assert_eq!(
            reflected.cluster_list(),
            Some(&[Ipv4Addr::new(10, 0, 0, 100)][..])
        );
        assert_eq!(reflected.next_hop(), Some(Ipv4Addr::new(192, 168, 60, 3)));
        // Withdrawals when B disabled st_extra.
        assert!(updates.iter().any(|u| u.withdrawn
            == vec![net("172.16.8.0/23"), net("172.16.7.0/24")]
            && u.nlri.is_empty()));

        // Route refresh, and BIRD's enhanced route refresh demarcation.
        let subtypes: Vec<u8> = all
            .iter()
            .filter_map(|(_, m)| match m {
                BgpMessage::RouteRefresh(r) => {
                    assert_eq!((r.afi, r.safi), (1, 1));
                    Some(r.subtype)
                }
                _ => None,
            })
            .collect();
        assert_eq!(subtypes, vec![0, 1, 2]);

        // `birdc disable s_ebgp "podpath fixture"`: Cease, Administrative
        // Shutdown, with the RFC 8203 shutdown communication.
        let notes: Vec<&NotificationRepr> = all
            .iter()
            .filter_map(|(_, m)| match m {
                BgpMessage::Notification(n) => Some(n),
                _ => None,
            })
            .collect();
        let mut data = vec![15u8];
        data.extend_from_slice(b"podpath fixture");
        assert!(notes.contains(&&NotificationRepr {
            code: 6,
            subcode: 2,
            data
        }));
        assert!(notes.iter().all(|n| (n.code, n.subcode) == (6, 2)));
        assert_eq!(
            notes
                .iter()
                .find(|n| n.data.is_empty())
                .unwrap()
                .to_string(),
            "NOTIFICATION 6/2 (Cease, Administrative Shutdown)"
        );
    }
}
