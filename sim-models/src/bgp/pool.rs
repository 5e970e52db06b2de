//! Interned path attributes, shared by the speakers of a fabric.
//!
//! A route reflector sends one route's attributes, byte for byte, to every
//! client, and every client would otherwise decode and keep its own copy:
//! at 5,000 nodes that is 25 million copies of about 5,000 distinct
//! attribute sets. An [`AttrPool`] maps
//!
//! - the bytes of an UPDATE's path-attribute field (per AS-number width)
//!   to the [`PathAttrs`] they decode to, for UPDATEs that announce routes
//!   and passed every check (so the same bytes need no decoding or checking
//!   again), and
//! - attribute values to one shared `Rc` (the attributes a speaker
//!   exports), so that equal attributes are one allocation and compare by
//!   pointer;
//! - a whole message the caller names ([`AttrPool::set_message`]) to the
//!   attributes found for it before (a reflector's stored UPDATE reaches
//!   client after client): one probe by address, no hashing of bytes;
//! - prefixes to numbers, by which each speaker's routing table is a
//!   vector (a fabric's speakers share the numbering).
//!
//! Sharing changes nothing a speaker does: equal attributes are equal
//! whether or not they share an allocation. Lookups are hashed; nothing
//! iterates the tables except [`AttrPool::sweep`], whose result does not
//! depend on the order.

use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use indexmap::{IndexMap, IndexSet};
use sim_core::net::Ipv4Net;

use super::rib::PathAttrs;

/// FxHash (rustc's): a fast, fixed (unseeded) hash for short keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut c = bytes.chunks_exact(8);
        for w in &mut c {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = c.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ (rest.len() as u64) << 59);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type Fx = BuildHasherDefault<FxHasher>;

/// Interned path attributes; see the [module docs](self).
#[derive(Default)]
pub struct AttrPool {
    /// Boxed: a speaker swaps in its fabric's pool for every input.
    t: Box<Tables>,
}

impl Clone for AttrPool {
    /// A copy with its own prefix numbering (the copy's and the original's
    /// numbers may go different ways from here).
    fn clone(&self) -> Self {
        let mut t = self.t.clone();
        t.token = Rc::default();
        AttrPool { t }
    }
}

#[derive(Clone, Default)]
struct Tables {
    /// By the attribute field's bytes: [0] two-octet AS numbers, [1] four.
    wire: [IndexMap<Box<[u8]>, Rc<PathAttrs>, Fx>; 2],
    /// The index in `wire` of the last bytes looked up and found, per
    /// width: a reflector's UPDATE reaches all its clients one after
    /// another. (Entries are only appended between sweeps, which forget
    /// it.)
    last: [Option<usize>; 2],
    /// Sweep when the tables grow past this.
    sweep_at: usize,
    /// Every prefix a speaker using the pool has had in its table, by
    /// number (never swept): a speaker's table is a vector by these
    /// numbers, and a fabric's speakers share them.
    prefixes: IndexSet<Ipv4Net, Fx>,
    /// This numbering's identity (see [`AttrPool::prefix_token`]).
    token: Rc<()>,
    /// The whole message being handled, when the caller says (see
    /// [`AttrPool::set_message`]).
    message: Option<Rc<[u8]>>,
    /// Messages whose attributes were found before, by the message (held,
    /// so that its address is not reused while here), direct-mapped by
    /// address: a reflector's stored UPDATEs reach its clients again and
    /// again (table dumps), and a lookup here is one probe and no hashing.
    by_message: Vec<Option<MessageHit>>,
}

/// A message (and its AS-number width) and its attributes.
type MessageHit = (Rc<[u8]>, bool, Rc<PathAttrs>);

/// `Tables::by_message` slots.
const BY_MESSAGE: usize = 4096;

impl std::fmt::Debug for AttrPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttrPool")
            .field("wire", &self.t.len())
            .finish()
    }
}

const SWEEP_MIN: usize = 4096;

impl AttrPool {
    pub fn new() -> Self {
        AttrPool::default()
    }

    /// Says which whole message the next inputs handle (or none): its
    /// attributes are then looked up by the message first.
    pub fn set_message(&mut self, message: Option<Rc<[u8]>>) {
        self.t.message = message;
    }

    /// The attributes the attribute field `wire` of the message `frame`
    /// decoded to, if an UPDATE announcing routes with them was accepted
    /// before.
    #[inline]
    pub(crate) fn decoded_in(
        &mut self,
        four_octet: bool,
        frame: &[u8],
        wire: &[u8],
    ) -> Option<Rc<PathAttrs>> {
        let t = &mut *self.t;
        let msg = t
            .message
            .as_ref()
            .filter(|m| m.as_ptr() == frame.as_ptr() && m.len() == frame.len());
        let Some(msg) = msg else {
            return t.decoded(four_octet, wire).cloned();
        };
        let i = (msg.as_ptr() as usize >> 4) % BY_MESSAGE;
        if t.by_message.is_empty() {
            t.by_message.resize(BY_MESSAGE, None);
        }
        if let Some((m, f, a)) = &t.by_message[i]
            && Rc::ptr_eq(m, msg)
            && *f == four_octet
        {
            return Some(a.clone());
        }
        let msg = msg.clone();
        let a = t.decoded(four_octet, wire)?.clone();
        t.by_message[i] = Some((msg, four_octet, a.clone()));
        Some(a)
    }

    /// The number of a prefix in this pool's numbering, if it has one.
    #[inline]
    pub(crate) fn prefix_id(&self, p: &Ipv4Net) -> Option<usize> {
        self.t.prefixes.get_index_of(p)
    }

    /// The number of a prefix, given one if it has none yet.
    #[inline]
    pub(crate) fn intern(&mut self, p: Ipv4Net) -> usize {
        self.t.prefixes.insert_full(p).0
    }

    /// How many prefixes are numbered.
    pub(crate) fn prefixes(&self) -> usize {
        self.t.prefixes.len()
    }

    /// Identifies the prefix numbering: equal (`Rc::ptr_eq`) for the
    /// pool and its numbering only.
    pub(crate) fn prefix_token(&self) -> &Rc<()> {
        &self.t.token
    }

    /// Remembers what these bytes decode to (an UPDATE that passed every
    /// check); returns the shared attributes.
    pub(crate) fn remember(
        &mut self,
        four_octet: bool,
        wire: &[u8],
        attrs: PathAttrs,
    ) -> Rc<PathAttrs> {
        let a = Rc::new(attrs);
        self.t.wire[four_octet as usize].insert(wire.into(), a.clone());
        if self.t.len() > self.t.sweep_at.max(SWEEP_MIN) {
            self.sweep();
            self.t.sweep_at = 2 * self.t.len();
        }
        a
    }

    /// Forgets the attributes nobody else holds.
    pub fn sweep(&mut self) {
        let t = &mut self.t;
        t.last = [None, None];
        t.by_message.clear();
        for w in &mut t.wire {
            w.retain(|_, a| Rc::strong_count(a) > 1);
        }
    }
}

impl Tables {
    #[inline]
    fn decoded(&mut self, four_octet: bool, wire: &[u8]) -> Option<&Rc<PathAttrs>> {
        let w = four_octet as usize;
        let i = match self.last[w] {
            Some(i) if self.wire[w].get_index(i).is_some_and(|(k, _)| **k == *wire) => i,
            _ => {
                let i = self.wire[w].get_index_of(wire)?;
                self.last[w] = Some(i);
                i
            }
        };
        self.wire[w].get_index(i).map(|(_, a)| a)
    }

    fn len(&self) -> usize {
        self.wire[0].len() + self.wire[1].len()
    }
}
