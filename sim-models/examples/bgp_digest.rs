//! Equivalence check for changes that must not change behaviour: prints a
//! digest of every speaker output (and of the RIBs along the way) over
//! varied fabric timelines (failures, restarts with and without graceful
//! restart, cut pipes, resets, withdrawals) and of a single speaker driven
//! by pseudo-random inputs from eight fake peers (iBGP clients and
//! non-clients, eBGP, a 2-octet-AS peer; UPDATEs with colliding prefixes
//! and varied attributes, malformed ones, route refresh, NOTIFICATIONs,
//! graceful restarts with new BGP identifiers, timers), with the log on
//! and off. Build it at two commits and diff the outputs:
//!
//! ```text
//! cargo run --release -p sim-models --example bgp_digest > after.txt
//! ```
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;
use sim_core::rng::RootSeed;
use sim_core::time::{SimDuration, SimTime};
use sim_core::wire::bgp::{
    AFI_IPV4, AsSegment, AttrValue, BgpContext, BgpMessage, Capability, GrFamily,
    GracefulRestartCap, NotificationRepr, OpenRepr, Origin, PathAttribute, RouteRefreshRepr,
    SAFI_UNICAST, UpdateRepr,
};
use sim_models::bgp::{
    CalicoCluster, Fabric, FabricOptions, Input, Neighbor, Output, PrefixList, Speaker,
    SpeakerConfig, TimerKind,
};

fn h(s: &str) -> u64 {
    let mut x = std::hash::DefaultHasher::new();
    s.hash(&mut x);
    x.finish()
}

fn secs(s: u64) -> SimTime {
    SimTime::ZERO + SimDuration::from_secs(s)
}
fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}
fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

fn leaf_spine() -> Vec<(String, SpeakerConfig, Vec<Ipv4Net>)> {
    let link = |s: u8, t: u8| (ip(172, 16, s, 2 * t), ip(172, 16, s, 2 * t + 1));
    let rack = |t: u8| Ipv4Net::new(ip(10, 100, t, 0), 24).unwrap();
    let mut out = Vec::new();
    for s in 1..=2u8 {
        let mut c = SpeakerConfig::new(ip(10, 255, 0, s), 65000);
        c.address = ip(10, 255, 0, s);
        for t in 1..=4u8 {
            let (mine, tor) = link(s, t);
            c.neighbors.push(Neighbor {
                local_address: Some(mine),
                name: format!("tor{t}"),
                ..Neighbor::new(tor, 65100 + t as u32)
            });
        }
        out.push((format!("spine{s}"), c, vec![]));
    }
    for t in 1..=4u8 {
        let mut c = SpeakerConfig::new(ip(10, 255, 1, t), 65100 + t as u32);
        c.address = ip(10, 255, 1, t);
        for s in 1..=2u8 {
            let (spine, mine) = link(s, t);
            c.neighbors.push(Neighbor {
                local_address: Some(mine),
                import: PrefixList::allow_within(&[net("10.100.0.0/16")]),
                name: format!("spine{s}"),
                ..Neighbor::new(spine, 65000)
            });
        }
        let mut o = vec![rack(t)];
        if t == 2 {
            o.push(net("10.100.200.0/24"));
            o.push(net("10.100.201.0/24"));
        }
        out.push((format!("tor{t}"), c, o));
    }
    out
}

fn timeline(name: &str, mut f: Fabric) {
    let names: Vec<String> = f.nodes().iter().map(|n| n.name.clone()).collect();
    let last = names.len() - 1;
    let mut out = Vec::new();
    let step = |f: &mut Fabric, t: u64, out: &mut Vec<u64>| {
        f.run_until(secs(t)).unwrap();
        out.push(f.digest() ^ h(&f.describe()));
    };
    f.start_all();
    step(&mut f, 20, &mut out);
    f.kill(&names[1], true).unwrap();
    step(&mut f, 40, &mut out);
    f.revive(&names[1], true).unwrap();
    step(&mut f, 80, &mut out);
    f.kill(&names[2], false).unwrap();
    step(&mut f, 400, &mut out);
    f.revive(&names[2], false).unwrap();
    step(&mut f, 500, &mut out);
    f.cut(&names[0], &names[3]).unwrap();
    step(&mut f, 800, &mut out);
    f.mend(&names[0], &names[3]).unwrap();
    step(&mut f, 900, &mut out);
    let b4 = f.nodes()[4].originate.clone();
    for p in &b4 {
        f.input(4, Input::WithdrawOrigin(*p));
    }
    step(&mut f, 910, &mut out);
    for p in &b4 {
        f.input(4, Input::Originate(*p));
    }
    step(&mut f, 920, &mut out);
    let nb0 = f.nodes()[0].config.neighbors[0].address;
    f.input(0, Input::AdminReset(nb0));
    step(&mut f, 1000, &mut out);
    f.input(5, Input::Originate(net("10.200.0.0/24")));
    f.input(5, Input::Originate(net("10.200.1.0/24")));
    step(&mut f, 1010, &mut out);
    f.kill(&names[last], false).unwrap();
    step(&mut f, 1300, &mut out);
    f.revive(&names[last], true).unwrap();
    step(&mut f, 1400, &mut out);
    f.kill(&names[last - 1], true).unwrap();
    step(&mut f, 1420, &mut out);
    f.revive(&names[last - 1], false).unwrap();
    step(&mut f, 1500, &mut out);
    println!(
        "{name}: {:016x} {:?}",
        h(&format!("{out:?}")),
        f.stats().installs
    );
}

/// A pseudo-random driver of one speaker with fake peers.
fn driver(logging: bool, seed: u64) {
    let me = ip(10, 0, 0, 1);
    let mut cfg = SpeakerConfig::new(me, 64512);
    cfg.cluster_id = Some(ip(244, 0, 0, 1));
    cfg.graceful_restart = sim_models::bgp::GracefulRestart::On { restart_time: 120 };
    let peers: Vec<(Ipv4Addr, u32, bool, bool, bool)> = vec![
        // addr, as, rr_client, next_hop_keep, next_hop_self
        (ip(10, 0, 0, 2), 64512, true, false, false),
        (ip(10, 0, 0, 3), 64512, true, false, false),
        (ip(10, 0, 0, 4), 64512, false, false, false),
        (ip(10, 0, 0, 5), 65001, false, false, false),
        (ip(10, 0, 0, 6), 65002, false, true, false),
        (ip(10, 0, 0, 7), 64512, true, false, false),
        (ip(10, 0, 0, 8), 64512, false, false, true),
        (ip(10, 0, 0, 9), 64512, true, false, false),
    ];
    for (i, (a, asn, c, k, s)) in peers.iter().enumerate() {
        let mut n = Neighbor::new(*a, *asn);
        n.rr_client = *c;
        n.next_hop_keep = *k;
        n.next_hop_self = *s;
        if i == 3 {
            n.export = PrefixList::allow_within(&[net("10.0.0.0/8")]);
        }
        if i == 4 {
            n.import = PrefixList::allow_within(&[net("10.1.0.0/16")]);
        }
        cfg.neighbors.push(n);
    }
    let mut sp = Speaker::new(cfg, RootSeed(seed).stream("drv"));
    sp.set_logging(logging);
    let mut r = seed.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    let mut rnd = |n: u64| {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r % n
    };
    let mut now = SimTime::ZERO;
    let mut dig = Vec::new();
    let mut timers: BTreeMap<(Ipv4Addr, TimerKind), SimTime> = BTreeMap::new();
    let mut ids: Vec<Ipv4Addr> = peers.iter().map(|p| p.0).collect();
    let feed = |sp: &mut Speaker,
                now: SimTime,
                i: Input,
                timers: &mut BTreeMap<(Ipv4Addr, TimerKind), SimTime>| {
        let outs = sp.handle(now, i);
        for o in &outs {
            match o {
                Output::SetTimer(p, k, at) => {
                    timers.insert((*p, *k), *at);
                }
                Output::CancelTimer(p, k) => {
                    timers.remove(&(*p, *k));
                }
                _ => {}
            }
        }
        h(&format!("{now} {outs:?}"))
    };
    dig.push(feed(&mut sp, now, Input::Start, &mut timers));
    dig.push(feed(
        &mut sp,
        now,
        Input::Originate(net("10.1.1.0/24")),
        &mut timers,
    ));
    let prefixes: Vec<Ipv4Net> = (0..12u8)
        .map(|i| Ipv4Net::new(ip(10, 1 + i % 3, i, 0), 24).unwrap())
        .collect();
    for step in 0..3000u32 {
        now += SimDuration::from_millis(1 + rnd(500));
        let pi = rnd(peers.len() as u64) as usize;
        let (pa, pas, ..) = peers[pi];
        let four = pi != 5;
        let cx = if four {
            BgpContext::FOUR_OCTET
        } else {
            BgpContext::TWO_OCTET
        };
        let st = sp.state(pa).unwrap();
        let act = rnd(100);
        let input = if st != sim_models::bgp::State::Established && act < 60 {
            // bring the session up
            match st {
                sim_models::bgp::State::Active | sim_models::bgp::State::Connect => {
                    Input::TransportConnected(pa)
                }
                sim_models::bgp::State::OpenSent => {
                    if rnd(2) == 0 {
                        ids[pi] = ip(10, 9, 9, rnd(250) as u8 + 1);
                    }
                    let mut caps = vec![
                        Capability::Multiprotocol {
                            afi: AFI_IPV4,
                            reserved: 0,
                            safi: SAFI_UNICAST,
                        },
                        Capability::RouteRefresh,
                        Capability::GracefulRestart(GracefulRestartCap {
                            flags: 0,
                            restart_time: 120,
                            families: vec![GrFamily {
                                afi: AFI_IPV4,
                                safi: SAFI_UNICAST,
                                flags: if rnd(2) == 0 { 0x80 } else { 0 },
                            }],
                        }),
                    ];
                    if four {
                        caps.push(Capability::FourOctetAs(pas));
                    }
                    let o =
                        OpenRepr::new(if four { pas } else { pas.min(65535) }, 240, ids[pi], caps);
                    Input::TransportBytes(pa, BgpMessage::Open(o).to_bytes(cx))
                }
                sim_models::bgp::State::OpenConfirm => {
                    Input::TransportBytes(pa, BgpMessage::Keepalive.to_bytes(cx))
                }
                _ => {
                    // fire a timer if any
                    match timers.iter().next() {
                        Some((&(p, k), _)) => Input::Timer(p, k),
                        None => Input::Start,
                    }
                }
            }
        } else if act < 70 {
            // An UPDATE with several prefixes
            let mut nlri = Vec::new();
            let mut withdrawn = Vec::new();
            for _ in 0..rnd(4) {
                withdrawn.push(prefixes[rnd(prefixes.len() as u64) as usize]);
            }
            for _ in 0..rnd(5) {
                nlri.push(prefixes[rnd(prefixes.len() as u64) as usize]);
            }
            let mut attrs = vec![
                PathAttribute::new(AttrValue::Origin(if rnd(4) == 0 {
                    Origin::Incomplete
                } else {
                    Origin::Igp
                })),
                PathAttribute::new(AttrValue::AsPath(match (pas == 64512, rnd(3)) {
                    (true, 0) => vec![],
                    (true, _) => vec![AsSegment::sequence(vec![65009])],
                    (false, 0) => vec![AsSegment::sequence(vec![pas])],
                    (false, 1) => vec![AsSegment::sequence(vec![pas, 65100 + rnd(3) as u32])],
                    (false, _) => vec![AsSegment::sequence(vec![pas, 64512])],
                })),
                PathAttribute::new(AttrValue::NextHop(ip(10, 0, 0, 100 + rnd(3) as u8))),
            ];
            if rnd(2) == 0 {
                attrs.push(PathAttribute::new(AttrValue::MultiExitDisc(rnd(3) as u32)));
            }
            if pas == 64512 {
                attrs.push(PathAttribute::new(AttrValue::LocalPref(
                    100 + 50 * rnd(2) as u32,
                )));
                if rnd(3) == 0 {
                    attrs.push(PathAttribute::new(AttrValue::OriginatorId(ip(
                        10,
                        0,
                        0,
                        1 + rnd(9) as u8,
                    ))));
                    let mut cl = vec![ip(244, 0, 0, 2)];
                    if rnd(3) == 0 {
                        cl.push(ip(244, 0, 0, 1));
                    }
                    attrs.push(PathAttribute::new(AttrValue::ClusterList(cl)));
                }
            }
            if rnd(4) == 0 {
                attrs.push(PathAttribute::new(AttrValue::Communities(vec![
                    rnd(5) as u32
                ])));
            }
            if rnd(6) == 0 {
                attrs.push(PathAttribute::unknown(0xc0, 99, vec![1, 2, 3]));
            }
            if rnd(20) == 0 {
                attrs.remove(2); // no NEXT_HOP: an error
            }
            let u = UpdateRepr {
                withdrawn,
                attributes: if nlri.is_empty() && rnd(2) == 0 {
                    vec![]
                } else {
                    attrs
                },
                nlri,
            };
            let mut b = BgpMessage::Update(u).to_bytes(cx);
            if rnd(40) == 0 {
                let l = b.len();
                b[l - 1] ^= 0xff;
            }
            if rnd(3) == 0 {
                // split
                let cut = rnd(b.len() as u64) as usize;
                let rest = b.split_off(cut);
                dig.push(feed(
                    &mut sp,
                    now,
                    Input::TransportBytes(pa, b),
                    &mut timers,
                ));
                b = rest;
            }
            Input::TransportBytes(pa, b)
        } else if act < 73 {
            Input::TransportBytes(
                pa,
                BgpMessage::Update(UpdateRepr::end_of_rib()).to_bytes(cx),
            )
        } else if act < 76 {
            Input::TransportBytes(
                pa,
                BgpMessage::RouteRefresh(RouteRefreshRepr::ipv4_unicast()).to_bytes(cx),
            )
        } else if act < 78 {
            Input::TransportBytes(
                pa,
                BgpMessage::Notification(NotificationRepr::cease(2)).to_bytes(cx),
            )
        } else if act < 84 {
            Input::TransportClosed(pa)
        } else if act < 83 {
            Input::AdminReset(pa)
        } else if act < 86 {
            let p = prefixes[rnd(prefixes.len() as u64) as usize];
            if rnd(2) == 0 {
                Input::Originate(p)
            } else {
                Input::WithdrawOrigin(p)
            }
        } else if act < 95 {
            match timers.iter().nth(rnd(timers.len().max(1) as u64) as usize) {
                Some((&(p, k), &at)) => {
                    if at > now {
                        now = at;
                    }
                    Input::Timer(p, k)
                }
                None => Input::Timer(pa, TimerKind::Hold),
            }
        } else if act < 97 {
            Input::TransportBytes(pa, vec![0xff; 10 + rnd(20) as usize])
        } else {
            Input::TransportBytes(pa, BgpMessage::Keepalive.to_bytes(cx))
        };
        dig.push(feed(&mut sp, now, input, &mut timers));
        if step % 10 == 0 {
            let mut s = format!("{:?}", sp.loc_rib());
            for (a, ..) in &peers {
                s += &format!(
                    "{:?} {:?} {:?}",
                    sp.state(*a),
                    sp.adj_rib_in(*a),
                    sp.adj_rib_out(*a)
                );
            }
            dig.push(h(&s));
        }
    }
    println!(
        "driver log={logging} seed={seed}: {:016x}",
        h(&format!("{dig:?}"))
    );
}

fn main() {
    for seed in 1..=16 {
        driver(false, seed);
        driver(true, seed);
    }
    // Eager hold timers: every re-arm an output, as the digests were
    // first taken.
    let o = || FabricOptions {
        digest: true,
        lazy_hold: false,
        ..Default::default()
    };
    timeline(
        "mesh12",
        Fabric::new(&CalicoCluster::synthetic_mesh(12), 3, o()),
    );
    timeline(
        "rr30x2",
        Fabric::new(&CalicoCluster::synthetic_reflectors(30, 2), 4, o()),
    );
    timeline(
        "rr8x1",
        Fabric::new(&CalicoCluster::synthetic_reflectors(8, 1), 5, o()),
    );
    timeline("leafspine", Fabric::new(leaf_spine(), 6, o()));
    let mut lo = o();
    lo.log = true;
    timeline(
        "rr12x2-log",
        Fabric::new(&CalicoCluster::synthetic_reflectors(12, 2), 7, lo),
    );
}
