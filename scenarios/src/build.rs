//! Turning a loaded scenario into a runnable simulation.

use sim_core::rng::RootSeed;
use sim_core::sched::Limits;
use sim_core::time::SimTime;
use sim_core::wire::MacAddr;
use sim_models::cmd::{AddrCmd, BirdCmd, Command, CommandKind, LinkCmd, LinkSet};
use sim_models::linux::{HostId, LinkParams};
use sim_models::sim::{Simulation, Step};

use crate::format::ExpectSpec;
use crate::load::Scenario;

/// Options that override the file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub seed: Option<u64>,
    pub until: Option<SimTime>,
    pub max_events: Option<u64>,
    /// Capture every frame on every device (the CLI's `--pcap DIR`).
    pub capture_all: bool,
    /// Log only the failing commands of a batch step (a generated
    /// cluster's entries for the other nodes), for callers that print no
    /// command log (`podpath reach`, `trace`, `show`).
    pub quiet_batches: bool,
    /// Who is shown how far a long run got (nothing by default; never
    /// changes what the run does).
    pub progress: crate::progress::Progress,
}

/// The origin of BIRD's own steps (starting it; the fabric engine's
/// installs): positioned at the scenario's BGP configuration
/// ([`Scenario::bgp_pos`]) when they fail.
pub const BGP_ORIGIN: usize = usize::MAX - 1;

/// Default bound on simulated time when neither the file nor the CLI sets one.
pub const DEFAULT_UNTIL: SimTime = SimTime::from_nanos(600_000_000_000);
/// Default bound on events beyond the scenario's own commands (each
/// command is an event: a generated 5,000-node VXLAN cluster runs 75
/// million of them before anything else happens; see
/// [`Scenario::default_max_events`]).
pub const DEFAULT_MAX_EVENTS: u64 = 50_000_000;

impl Scenario {
    /// The event bound when neither the file nor the command line sets
    /// one: [`DEFAULT_MAX_EVENTS`] beyond the commands the scenario runs
    /// (a batch counted as the lines it stands for).
    pub fn default_max_events(&self) -> u64 {
        DEFAULT_MAX_EVENTS.saturating_add(self.command_lines() as u64)
    }

    pub fn seed(&self, opts: &RunOptions) -> u64 {
        opts.seed.unwrap_or(self.file.seed)
    }

    pub fn until(&self, opts: &RunOptions) -> SimTime {
        opts.until.or(self.until).unwrap_or(DEFAULT_UNTIL)
    }

    /// BGP converged by the fabric (engine `fabric`), computed once per seed
    /// and shared by every simulation built from this scenario (`podpath
    /// reach` builds several).
    pub fn fabric_bgp(
        &self,
        seed: u64,
        max_events: u64,
    ) -> std::sync::Arc<sim_models::linux::bird::FabricBgp> {
        use sim_models::bgp::fabric::{FabricOptions, converge};
        use sim_models::linux::bird::{BgpCounters, FabricBgp, FabricRoutes};
        if let Ok(g) = self.fabric_cache.lock()
            && let Some((s, fb)) = g.as_ref()
            && *s == seed
        {
            return fb.clone();
        }
        let nodes: Vec<(
            String,
            sim_models::bgp::SpeakerConfig,
            Vec<sim_core::net::Ipv4Net>,
        )> = self
            .bird
            .iter()
            .map(|(h, b)| {
                (
                    self.file.hosts[*h].name.clone(),
                    b.config.clone(),
                    b.originate.clone(),
                )
            })
            .collect();
        let node_of = self
            .bird
            .iter()
            .enumerate()
            .map(|(i, (h, _))| (HostId(*h as u32), i))
            .collect();
        let options = FabricOptions {
            max_events,
            ..FabricOptions::default()
        };
        let n = nodes.len();
        let converged = converge(nodes, seed, options);
        let (converged_at, counters) = match &converged {
            Ok(c) => (
                self.bird_start + (c.stats.last_route_change.unwrap_or(c.at) - SimTime::ZERO),
                BgpCounters {
                    opens: c.stats.opens,
                    updates: c.stats.updates,
                    withdrawals: c.stats.withdraw_updates,
                    keepalives: c.stats.keepalives,
                    notifications: c.stats.notifications,
                },
            ),
            Err(_) => (self.bird_start, BgpCounters::default()),
        };
        // Keep what the hosts install, not the speakers (several times
        // larger: sessions, Adj-RIBs, timers).
        let routes = converged.map(|c| FabricRoutes::new(&c, n));
        let fb = std::sync::Arc::new(FabricBgp {
            routes,
            node_of,
            converged_at,
            counters,
        });
        if let Ok(mut g) = self.fabric_cache.lock() {
            *g = Some((seed, fb.clone()));
        }
        fb
    }

    /// Builds the simulation: segments, hosts, NICs, and every command as a step.
    pub fn build(&self, opts: &RunOptions) -> Simulation {
        let seed = RootSeed(self.seed(opts));
        let limits = Limits {
            max_events: opts
                .max_events
                .or(self.max_events)
                .unwrap_or_else(|| self.default_max_events()),
            max_time: SimTime::MAX,
        };
        let mut sim = Simulation::new(seed, limits);
        sim.log_batches = !opts.quiet_batches;
        sim.world.captures.all = opts.capture_all;
        let w = &mut sim.world;
        for s in &self.segments {
            w.add_segment(
                &s.name,
                LinkParams {
                    latency: s.latency,
                    bandwidth_bps: s.bandwidth_bps,
                    loss: s.loss,
                },
                s.mtu,
            );
        }
        let mut boot: Vec<(HostId, Command, String)> = Vec::new();
        for h in &self.file.hosts {
            let host = w.add_host(&h.name);
            for nic in &h.nics {
                let seg = w.seg_by_name[&nic.segment];
                let mac = nic.mac.as_deref().and_then(|m| m.parse::<MacAddr>().ok());
                w.add_nic(host, &nic.name, seg, mac);
                if let Some(a) = &nic.address {
                    let addr = a.parse().expect("validated at load");
                    boot.push((
                        host,
                        Command {
                            netns: None,
                            kind: CommandKind::Addr(AddrCmd::Add {
                                addr,
                                dev: nic.name.clone(),
                                broadcast: None,
                                scope: None,
                            }),
                        },
                        format!("ip addr add {a} dev {}", nic.name),
                    ));
                    boot.push((
                        host,
                        Command {
                            netns: None,
                            kind: CommandKind::Link(LinkCmd::Set(LinkSet {
                                dev: nic.name.clone(),
                                up: Some(true),
                                ..Default::default()
                            })),
                        },
                        format!("ip link set {} up", nic.name),
                    ));
                }
            }
        }
        // The machines' own configuration first, then the scripts.
        for (host, cmd, line) in boot {
            sim.add_step(Step {
                at: SimTime::ZERO,
                host,
                cmd: cmd.into(),
                line: line.into(),
                origin: usize::MAX,
                expect_error: None,
            });
        }
        for (i, c) in self.commands.iter().enumerate() {
            let host = HostId(c.host as u32);
            let host_name = &self.file.hosts[c.host].name;
            let expect_error = self.file.expect.iter().find_map(|e| match e {
                ExpectSpec::CommandError { on, command, error }
                    if on.split(':').next() == Some(host_name.as_str())
                        && command.trim() == &*c.text =>
                {
                    Some(Some(error.clone()))
                }
                _ => None,
            });
            sim.add_step(Step {
                at: c.at,
                host,
                cmd: c.cmd.clone(),
                line: c.text.clone(),
                origin: i,
                expect_error,
            });
        }
        if self.bgp_engine == crate::load::BgpEngine::Fabric {
            let fb = self.fabric_bgp(self.seed(opts), limits.max_events);
            let at = fb.converged_at;
            let hosts: Vec<HostId> = fb.node_of.keys().copied().collect();
            for (h, setup) in &self.bird {
                sim.world
                    .bird_setups
                    .insert(HostId(*h as u32), std::sync::Arc::new(setup.clone()));
            }
            sim.world.bgp_fabric = Some(fb);
            for host in hosts {
                sim.add_step(Step {
                    at,
                    host,
                    cmd: Command {
                        netns: None,
                        kind: CommandKind::Bird(BirdCmd::FabricInstall),
                    }
                    .into(),
                    line: "bird -c /etc/calico/confd/config/bird.cfg  # BGP engine fabric: BIRD's routes once BGP converged".into(),
                    origin: BGP_ORIGIN,
                    expect_error: None,
                });
            }
            return sim;
        }
        // BIRD on every BGP host, after the setup scripts.
        for (h, setup) in &self.bird {
            let host = HostId(*h as u32);
            sim.world
                .bird_setups
                .insert(host, std::sync::Arc::new(setup.clone()));
            sim.add_step(Step {
                at: self.bird_start,
                host,
                cmd: Command {
                    netns: None,
                    kind: CommandKind::Bird(BirdCmd::Start { recovering: false }),
                }
                .into(),
                line: "bird -c /etc/calico/confd/config/bird.cfg".into(),
                origin: BGP_ORIGIN,
                expect_error: None,
            });
        }
        sim
    }
}
