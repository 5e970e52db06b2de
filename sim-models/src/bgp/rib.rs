//! Routes and the decision process.
//!
//! [`PathAttrs`] is the typed set of path attributes a route carries (what
//! an UPDATE's attributes decode to); [`Candidate`] is one route for a
//! prefix as the decision process sees it (its attributes plus who it came
//! from); [`best`] is RFC 4271 §9.1.2 with RFC 4456's additions.

use std::net::Ipv4Addr;
use std::rc::Rc;

use sim_core::wire::bgp::{
    AsSegment, AsSegmentKind, AttrValue, Origin, PathAttribute, UpdateRepr, as_path_len,
    attr_flags, attr_type,
};

/// The path attributes of a route.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PathAttrs {
    pub origin: Origin,
    pub as_path: Vec<AsSegment>,
    pub next_hop: Ipv4Addr,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<(u32, Ipv4Addr)>,
    pub communities: Vec<u32>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    /// Optional attributes the model does not know: (flags, type, value).
    pub unknown: Vec<(u8, u8, Vec<u8>)>,
}

impl PathAttrs {
    /// The attributes of a route this speaker originates.
    pub fn local(next_hop: Ipv4Addr) -> Self {
        PathAttrs {
            origin: Origin::Igp,
            as_path: Vec::new(),
            next_hop,
            med: None,
            local_pref: None,
            atomic_aggregate: false,
            aggregator: None,
            communities: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
            unknown: Vec::new(),
        }
    }

    /// The attributes of an UPDATE that announces routes (which
    /// [`UpdateRepr::validate`] has checked carries ORIGIN, AS_PATH and
    /// NEXT_HOP).
    pub fn from_update(u: &UpdateRepr) -> Option<Self> {
        Self::from_attributes(&u.attributes)
    }

    /// [`from_update`](Self::from_update), from the attributes alone.
    pub fn from_attributes(attributes: &[PathAttribute]) -> Option<Self> {
        let find = |t: u8| {
            attributes
                .iter()
                .find(|a| a.type_code() == t)
                .map(|a| &a.value)
        };
        let Some(AttrValue::NextHop(nh)) = find(attr_type::NEXT_HOP) else {
            return None;
        };
        let mut a = PathAttrs::local(*nh);
        let Some(AttrValue::Origin(o)) = find(attr_type::ORIGIN) else {
            return None;
        };
        a.origin = *o;
        let Some(AttrValue::AsPath(p)) = find(attr_type::AS_PATH) else {
            return None;
        };
        a.as_path = p.clone();
        for attr in attributes {
            match &attr.value {
                AttrValue::MultiExitDisc(m) => a.med = Some(*m),
                AttrValue::LocalPref(l) => a.local_pref = Some(*l),
                AttrValue::AtomicAggregate => a.atomic_aggregate = true,
                AttrValue::Aggregator { asn, addr } => a.aggregator = Some((*asn, *addr)),
                AttrValue::Communities(c) => a.communities = c.clone(),
                AttrValue::OriginatorId(o) => a.originator_id = Some(*o),
                AttrValue::ClusterList(c) => a.cluster_list = c.clone(),
                AttrValue::Unknown { type_code, data } => {
                    a.unknown.push((attr.flags, *type_code, data.clone()))
                }
                AttrValue::Origin(_) | AttrValue::AsPath(_) | AttrValue::NextHop(_) => {}
            }
        }
        Some(a)
    }

    /// The attributes in type-code order, as BIRD sends them.
    pub fn to_attributes(&self) -> Vec<PathAttribute> {
        let mut out = vec![
            PathAttribute::new(AttrValue::Origin(self.origin)),
            PathAttribute::new(AttrValue::AsPath(self.as_path.clone())),
            PathAttribute::new(AttrValue::NextHop(self.next_hop)),
        ];
        if let Some(m) = self.med {
            out.push(PathAttribute::new(AttrValue::MultiExitDisc(m)));
        }
        if let Some(l) = self.local_pref {
            out.push(PathAttribute::new(AttrValue::LocalPref(l)));
        }
        if self.atomic_aggregate {
            out.push(PathAttribute::new(AttrValue::AtomicAggregate));
        }
        if let Some((asn, addr)) = self.aggregator {
            out.push(PathAttribute::new(AttrValue::Aggregator { asn, addr }));
        }
        if !self.communities.is_empty() {
            out.push(PathAttribute::new(AttrValue::Communities(
                self.communities.clone(),
            )));
        }
        if let Some(o) = self.originator_id {
            out.push(PathAttribute::new(AttrValue::OriginatorId(o)));
        }
        if !self.cluster_list.is_empty() {
            out.push(PathAttribute::new(AttrValue::ClusterList(
                self.cluster_list.clone(),
            )));
        }
        let mut unknown = self.unknown.clone();
        unknown.sort_by_key(|u| u.1);
        out.extend(
            unknown
                .into_iter()
                .map(|(f, t, d)| PathAttribute::unknown(f, t, d)),
        );
        out
    }

    /// What goes on to another speaker of unknown attributes (RFC 4271
    /// §5): optional transitive ones, marked partial; the others are dropped.
    pub fn propagate_unknown(&mut self) {
        self.unknown
            .retain(|(f, _, _)| f & attr_flags::TRANSITIVE != 0);
        for u in &mut self.unknown {
            u.0 |= attr_flags::PARTIAL;
        }
    }

    /// Prepends `asn` to the AS_PATH (into a leading AS_SEQUENCE with room).
    pub fn prepend(&mut self, asn: u32) {
        match self.as_path.first_mut() {
            Some(s) if s.kind == AsSegmentKind::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self.as_path.insert(0, AsSegment::sequence(vec![asn])),
        }
    }

    pub fn path_contains(&self, asn: u32) -> bool {
        self.as_path.iter().any(|s| s.asns.contains(&asn))
    }

    /// The neighbouring AS for MED comparison: the first AS of a leading
    /// AS_SEQUENCE; `None` for a route from inside our AS.
    pub fn neighbor_as(&self) -> Option<u32> {
        match self.as_path.first() {
            Some(s) if s.kind == AsSegmentKind::Sequence => s.asns.first().copied(),
            _ => None,
        }
    }

    /// The flattened AS numbers of the path (for display).
    pub fn path_asns(&self) -> Vec<u32> {
        self.as_path.iter().flat_map(|s| s.asns.clone()).collect()
    }
}

/// Where a route came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Originated by this speaker (`Input::Originate`).
    Local,
    /// Learned from this neighbour.
    Peer(Ipv4Addr),
}

/// One route for a prefix, as the decision process compares them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub source: Source,
    pub attrs: Rc<PathAttrs>,
    /// Learned over iBGP (false for eBGP and local routes).
    pub ibgp: bool,
    /// The BGP identifier of the neighbour it came from (ours for local).
    pub peer_id: Ipv4Addr,
    /// Kept from a restarting neighbour (RFC 4724).
    pub stale: bool,
}

impl Candidate {
    /// LOCAL_PREF as the decision process uses it: an eBGP route's (or a
    /// local route's) is ours by default, an iBGP route's its own.
    pub fn local_pref(&self, default: u32) -> u32 {
        if self.ibgp {
            self.attrs.local_pref.unwrap_or(default)
        } else {
            default
        }
    }

    /// ORIGINATOR_ID if present, else the neighbour's BGP identifier (RFC 4456 §9).
    pub fn id_for_tiebreak(&self) -> Ipv4Addr {
        self.attrs.originator_id.unwrap_or(self.peer_id)
    }
}

/// One route as [`best_of`] sees it: [`Candidate`] without owning its
/// attributes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CandRef<'a> {
    pub source: Source,
    pub attrs: &'a PathAttrs,
    pub ibgp: bool,
    pub peer_id: Ipv4Addr,
}

impl CandRef<'_> {
    fn local_pref(&self, default: u32) -> u32 {
        if self.ibgp {
            self.attrs.local_pref.unwrap_or(default)
        } else {
            default
        }
    }

    fn peer_addr(&self) -> Ipv4Addr {
        match self.source {
            Source::Local => Ipv4Addr::UNSPECIFIED,
            Source::Peer(a) => a,
        }
    }
}

/// The RFC 4271 §9.1.2.2 decision among the routes for one prefix: the
/// index of the best, or `None` if there are none.
///
/// 0. a locally originated route wins (BIRD: its static/kernel routes have
///    preference 200, BGP routes 100, and preference is compared first);
/// 1. highest LOCAL_PREF (§9.1.1; eBGP routes get the default);
/// 2. shortest AS_PATH (an AS_SET counts 1);
/// 3. lowest ORIGIN;
/// 4. lowest MED among routes from the same neighbouring AS (a missing MED
///    is 0), applied set-wise as §9.1.2.2 c) says;
/// 5. eBGP over iBGP;
/// 6. lowest IGP cost to the next hop: every next hop costs the same here;
/// 7. lowest BGP identifier, ORIGINATOR_ID in its place when present (RFC 4456 §9);
/// 8. shortest CLUSTER_LIST (RFC 4456 §9);
/// 9. lowest neighbour address.
pub fn best(cands: &[Candidate], default_local_pref: u32) -> Option<usize> {
    let refs: Vec<CandRef<'_>> = cands
        .iter()
        .map(|c| CandRef {
            source: c.source,
            attrs: &c.attrs,
            ibgp: c.ibgp,
            peer_id: c.peer_id,
        })
        .collect();
    best_of(&refs, default_local_pref)
}

/// [`best`], on borrowed routes and without allocating (up to 64 routes).
pub(crate) fn best_of(cands: &[CandRef<'_>], default_local_pref: u32) -> Option<usize> {
    match cands.len() {
        0 => return None,
        1 => return Some(0),
        2 => return Some(best_of_two(&cands[0], &cands[1], default_local_pref)),
        n if n > 64 => return best_of_many(cands, default_local_pref),
        _ => {}
    }
    if let Some(i) = cands.iter().position(|c| c.source == Source::Local) {
        return Some(i);
    }
    // The set of routes still in the running, as a bit mask.
    let all: u64 = if cands.len() == 64 {
        u64::MAX
    } else {
        (1u64 << cands.len()) - 1
    };
    let members = |set: u64| (0..cands.len()).filter(move |i| set >> i & 1 == 1);
    // Steps 1-3: keep the routes tied on the best (lp, path length, origin).
    let key = |c: &CandRef<'_>| {
        (
            std::cmp::Reverse(c.local_pref(default_local_pref)),
            as_path_len(&c.attrs.as_path),
            c.attrs.origin,
        )
    };
    let top = members(all).map(|i| key(&cands[i])).min()?;
    let mut set = 0u64;
    for i in members(all) {
        if key(&cands[i]) == top {
            set |= 1 << i;
        }
    }
    // Step 4: drop a route if another from the same neighbouring AS has a
    // lower MED.
    let med = |c: &CandRef<'_>| c.attrs.med.unwrap_or(0);
    let snapshot = set;
    for i in members(snapshot) {
        let c = &cands[i];
        if members(snapshot).any(|j| {
            cands[j].attrs.neighbor_as() == c.attrs.neighbor_as() && med(&cands[j]) < med(c)
        }) {
            set &= !(1 << i);
        }
    }
    // Step 5.
    if members(set).any(|i| !cands[i].ibgp) {
        for i in members(set) {
            if cands[i].ibgp {
                set &= !(1 << i);
            }
        }
    }
    // Steps 7-9.
    members(set).min_by_key(|&i| {
        let c = &cands[i];
        (
            c.attrs.originator_id.unwrap_or(c.peer_id),
            c.attrs.cluster_list.len(),
            c.peer_addr(),
        )
    })
}

/// [`best_of`] for two routes (0 or 1): the same steps, pairwise.
fn best_of_two(a: &CandRef<'_>, b: &CandRef<'_>, default_local_pref: u32) -> usize {
    use std::cmp::Ordering;
    match (a.source == Source::Local, b.source == Source::Local) {
        (true, _) => return 0,
        (false, true) => return 1,
        _ => {}
    }
    // Steps 1-3.
    let key = |c: &CandRef<'_>| {
        (
            std::cmp::Reverse(c.local_pref(default_local_pref)),
            as_path_len(&c.attrs.as_path),
            c.attrs.origin,
        )
    };
    match key(a).cmp(&key(b)) {
        Ordering::Less => return 0,
        Ordering::Greater => return 1,
        Ordering::Equal => {}
    }
    // Step 4: the lower MED from the same neighbouring AS.
    if a.attrs.neighbor_as() == b.attrs.neighbor_as() {
        let (ma, mb) = (a.attrs.med.unwrap_or(0), b.attrs.med.unwrap_or(0));
        if ma != mb {
            return if ma < mb { 0 } else { 1 };
        }
    }
    // Step 5.
    match (a.ibgp, b.ibgp) {
        (false, true) => return 0,
        (true, false) => return 1,
        _ => {}
    }
    // Steps 7-9; the first of equals.
    let tie = |c: &CandRef<'_>| {
        (
            c.attrs.originator_id.unwrap_or(c.peer_id),
            c.attrs.cluster_list.len(),
            c.peer_addr(),
        )
    };
    if tie(b) < tie(a) { 1 } else { 0 }
}

/// [`best_of`] for more than 64 routes.
fn best_of_many(cands: &[CandRef<'_>], default_local_pref: u32) -> Option<usize> {
    if cands.is_empty() {
        return None;
    }
    if let Some(i) = cands.iter().position(|c| c.source == Source::Local) {
        return Some(i);
    }
    let mut set: Vec<usize> = (0..cands.len()).collect();
    let key = |c: &CandRef<'_>| {
        (
            std::cmp::Reverse(c.local_pref(default_local_pref)),
            as_path_len(&c.attrs.as_path),
            c.attrs.origin,
        )
    };
    let top = set.iter().map(|&i| key(&cands[i])).min()?;
    set.retain(|&i| key(&cands[i]) == top);
    let med = |c: &CandRef<'_>| c.attrs.med.unwrap_or(0);
    let snapshot = set.clone();
    set.retain(|&i| {
        let c = &cands[i];
        !snapshot.iter().any(|&j| {
            cands[j].attrs.neighbor_as() == c.attrs.neighbor_as() && med(&cands[j]) < med(c)
        })
    });
    if set.iter().any(|&i| !cands[i].ibgp) {
        set.retain(|&i| !cands[i].ibgp);
    }
    set.into_iter().min_by_key(|&i| {
        let c = &cands[i];
        (
            c.attrs.originator_id.unwrap_or(c.peer_id),
            c.attrs.cluster_list.len(),
            c.peer_addr(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, d)
    }

    fn cand(peer: u8, f: impl FnOnce(&mut PathAttrs)) -> Candidate {
        let mut a = PathAttrs::local(ip(peer));
        f(&mut a);
        Candidate {
            source: Source::Peer(ip(peer)),
            attrs: Rc::new(a),
            ibgp: true,
            peer_id: ip(peer),
            stale: false,
        }
    }

    #[test]
    fn decision_steps_in_order() {
        // Local wins over everything.
        let mut local = cand(9, |_| {});
        local.source = Source::Local;
        assert_eq!(best(&[cand(1, |_| {}), local], 100), Some(1));
        // 1. LOCAL_PREF beats a shorter path.
        let a = cand(1, |a| {
            a.local_pref = Some(200);
            a.prepend(1);
            a.prepend(2);
        });
        let b = cand(2, |_| {});
        assert_eq!(best(&[b.clone(), a], 100), Some(1));
        // ... but an eBGP route's LOCAL_PREF is ignored.
        let mut e = cand(1, |a| a.local_pref = Some(500));
        e.ibgp = false;
        let shorter = cand(2, |a| a.local_pref = Some(100));
        let mut e2 = e.clone();
        Rc::make_mut(&mut e2.attrs).prepend(7);
        assert_eq!(best(&[e2, shorter], 100), Some(1));
        // 2. Shorter AS_PATH.
        let long = cand(1, |a| a.prepend(65001));
        assert_eq!(best(&[long, b.clone()], 100), Some(1));
        // 3. Lower ORIGIN.
        let inc = cand(1, |a| a.origin = Origin::Incomplete);
        assert_eq!(best(&[inc, b.clone()], 100), Some(1));
        // 4. MED only within the same neighbouring AS.
        let m1 = cand(3, |a| {
            a.prepend(65001);
            a.med = Some(10);
        });
        let m2 = cand(1, |a| {
            a.prepend(65001);
            a.med = Some(5);
        });
        assert_eq!(best(&[m1.clone(), m2], 100), Some(1));
        let other_as = cand(1, |a| {
            a.prepend(65002);
            a.med = Some(5);
        });
        // Different neighbouring ASes: MED not compared; lower router id wins.
        assert_eq!(best(&[m1, other_as], 100), Some(1));
        // 5. eBGP over iBGP.
        let mut ext = cand(5, |_| {});
        ext.ibgp = false;
        assert_eq!(best(&[b.clone(), ext], 100), Some(1));
        // 7. ORIGINATOR_ID stands in for the router id.
        let refl = cand(1, |a| a.originator_id = Some(ip(8)));
        assert_eq!(best(&[refl, cand(4, |_| {})], 100), Some(1));
        // 8. Shorter CLUSTER_LIST.
        let c2 = cand(1, |a| {
            a.originator_id = Some(ip(7));
            a.cluster_list = vec![ip(100), ip(101)];
        });
        let c1 = cand(2, |a| {
            a.originator_id = Some(ip(7));
            a.cluster_list = vec![ip(100)];
        });
        assert_eq!(best(&[c2, c1.clone()], 100), Some(1));
        // 9. Lowest neighbour address.
        let c1b = cand(3, |a| {
            a.originator_id = Some(ip(7));
            a.cluster_list = vec![ip(100)];
        });
        assert_eq!(best(&[c1b, c1], 100), Some(1));
        assert_eq!(best(&[], 100), None);
    }

    #[test]
    fn two_routes_decide_as_many_do() {
        // Every combination of the attributes the steps look at.
        let mut cands = Vec::new();
        for lp in [None, Some(100), Some(200)] {
            for path in [vec![], vec![65001], vec![65002], vec![65001, 65003]] {
                for med in [None, Some(0), Some(5)] {
                    for ibgp in [true, false] {
                        for (peer, orig) in [(1, None), (2, None), (3, Some(ip(2)))] {
                            let mut c = cand(peer, |a| {
                                a.local_pref = lp;
                                for asn in path.iter().rev() {
                                    a.prepend(*asn);
                                }
                                a.med = med;
                                a.originator_id = orig;
                            });
                            c.ibgp = ibgp;
                            cands.push(c);
                        }
                    }
                }
            }
        }
        fn refs(c: &[Candidate]) -> Vec<CandRef<'_>> {
            c.iter()
                .map(|c| CandRef {
                    source: c.source,
                    attrs: &c.attrs,
                    ibgp: c.ibgp,
                    peer_id: c.peer_id,
                })
                .collect()
        }
        for (i, a) in cands.iter().enumerate() {
            for b in cands.iter().skip(i + 1).step_by(7) {
                if a.source == b.source {
                    continue;
                }
                let pair = [a.clone(), b.clone()];
                let r = refs(&pair);
                assert_eq!(
                    Some(best_of_two(&r[0], &r[1], 100)),
                    best_of_many(&r, 100),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn attributes_round_trip_through_an_update() {
        let mut a = PathAttrs::local(ip(1));
        a.prepend(64512);
        a.prepend(4_200_000_000);
        a.med = Some(3);
        a.local_pref = Some(150);
        a.communities = vec![1, 2];
        a.originator_id = Some(ip(2));
        a.cluster_list = vec![ip(3)];
        a.unknown = vec![(0xc0, 32, vec![0; 12]), (0xc0, 16, vec![0; 8])];
        let u = UpdateRepr {
            attributes: a.to_attributes(),
            nlri: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        let back = PathAttrs::from_update(&u).unwrap();
        a.unknown.sort_by_key(|u| u.1);
        assert_eq!(back, a);
        assert_eq!(
            back.as_path,
            vec![AsSegment::sequence(vec![4_200_000_000, 64512])]
        );
        let mut p = back.clone();
        p.unknown.push((0x80, 99, vec![]));
        p.propagate_unknown();
        assert_eq!(
            p.unknown,
            vec![(0xe0, 16, vec![0; 8]), (0xe0, 32, vec![0; 12])]
        );
    }
}
