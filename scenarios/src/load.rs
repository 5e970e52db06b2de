//! Loading a scenario file: RON syntax and types (via ron + serde), then the
//! semantic checks (names, durations, addresses, every command line), each
//! error positioned at file:line:column (columns count characters).

use std::fmt;
use std::net::Ipv4Addr;

use sim_core::rng::Probability;
use sim_core::time::{SimDuration, SimTime};
use sim_core::wire::MacAddr;
use sim_models::cmd::Command;

use crate::format::{ExpectSpec, ScenarioFile};
use crate::spans::{PathSeg, Pos, SpanTree, ron_error_pos};

/// A positioned error in a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.pos.line, self.pos.col, self.message
        )
    }
}

/// Where a command line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdSource {
    /// Host `host`'s setup script, line `line` (0-based) of the string.
    Setup { host: usize, line: usize },
    /// Timeline entry `entry`, line `line` of its `run` string.
    Timeline { entry: usize, line: usize },
}

/// One command line of the scenario, parsed and located.
#[derive(Debug, Clone)]
pub struct LocatedCommand {
    pub host: usize,
    pub at: SimTime,
    /// Shared with the simulation's step and log (`Arc`s: one copy each).
    pub text: std::sync::Arc<str>,
    pub cmd: std::sync::Arc<Command>,
    pub pos: Pos,
    pub source: CmdSource,
}

/// Segment settings after parsing.
#[derive(Debug, Clone)]
pub struct SegmentCfg {
    pub name: String,
    pub latency: SimDuration,
    pub bandwidth_bps: u64,
    pub mtu: u32,
    pub loss: Probability,
}

/// How a scenario's BGP is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BgpEngine {
    /// A BIRD per host, sessions over simulated TCP.
    Bird,
    /// `bgp::fabric`: in-memory sessions, converged once; routes installed
    /// when it is quiescent.
    Fabric,
}

/// `Scenario::fabric_bgp`'s cache: the seed and the fabric's answer.
pub(crate) type FabricCache = std::sync::Arc<
    std::sync::Mutex<Option<(u64, std::sync::Arc<sim_models::linux::bird::FabricBgp>)>>,
>;

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub path: String,
    pub source: String,
    pub file: ScenarioFile,
    pub segments: Vec<SegmentCfg>,
    pub commands: Vec<LocatedCommand>,
    pub until: Option<SimTime>,
    pub max_events: Option<u64>,
    /// Each BGP host's BIRD configuration (host index), from the `bgp` section.
    pub bird: Vec<(usize, sim_models::linux::bird::BirdSetup)>,
    /// When the BIRDs start.
    pub bird_start: SimTime,
    /// How BGP is computed (the bgp section's `engine`).
    pub bgp_engine: BgpEngine,
    /// Where the BGP configuration is (the `bgp` section, or a generated
    /// cluster's `calico`): what BIRD's own steps (starting it, the fabric
    /// engine's installs) are positioned at when they fail.
    pub bgp_pos: Pos,
    /// The fabric's answer for the last seed asked (engine `fabric`).
    pub(crate) fabric_cache: FabricCache,
    /// The resolved `cluster:` section; its hosts and segments follow the
    /// file's own in `file.hosts` and `file.segments`.
    pub cluster: Option<crate::cluster::Cluster>,
    /// How many of `file.hosts` the file itself lists (the rest are generated).
    pub file_hosts: usize,
    spans: Option<SpanTree>,
}

impl Scenario {
    /// How many command lines the scenario runs: its commands, a batch
    /// counted as the lines it stands for.
    pub fn command_lines(&self) -> usize {
        self.commands
            .iter()
            .map(|c| match &c.cmd.kind {
                sim_models::cmd::CommandKind::Batch(b) => b.0.len(),
                _ => 1,
            })
            .sum()
    }

    /// Replaces every batch by its commands, each a located command with
    /// its line (for tools that need every line, such as the kernel-diff
    /// harness, which runs them on a real kernel). Runs the same.
    pub fn expand_batches(&mut self) {
        let mut out = Vec::with_capacity(self.command_lines());
        for c in std::mem::take(&mut self.commands) {
            let sim_models::cmd::CommandKind::Batch(b) = &c.cmd.kind else {
                out.push(c);
                continue;
            };
            for k in 0..b.0.len() {
                out.push(LocatedCommand {
                    text: b.0.line(k).into(),
                    cmd: b.0.command(k).into(),
                    ..c.clone()
                });
            }
        }
        self.commands = out;
    }

    /// The position of a path in the file (for errors found while running).
    pub fn pos_of(&self, path: &[PathSeg]) -> Pos {
        self.spans
            .as_ref()
            .and_then(|s| s.locate(path))
            .map(|s| s.start)
            .unwrap_or(Pos { line: 1, col: 1 })
    }
    pub fn diag(&self, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.clone(),
            pos,
            message: message.into(),
        }
    }
}

/// Parses "1Gbit", "100mbit", "10kbit", "2500bit" into bits per second.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let l = s.trim().to_ascii_lowercase();
    let units = [
        ("tbit", 1_000_000_000_000u64),
        ("gbit", 1_000_000_000),
        ("mbit", 1_000_000),
        ("kbit", 1_000),
        ("bit", 1),
    ];
    for (u, k) in units {
        if let Some(n) = l.strip_suffix(u) {
            let n = n.trim();
            let (int, frac) = n.split_once('.').unwrap_or((n, ""));
            if int.is_empty()
                || !int.bytes().all(|b| b.is_ascii_digit())
                || !frac.bytes().all(|b| b.is_ascii_digit())
                || frac.len() > 9
            {
                break;
            }
            let i: u64 = int
                .parse()
                .map_err(|_| format!("bandwidth \"{s}\" is too large"))?;
            let f: u64 = if frac.is_empty() {
                0
            } else {
                frac.parse().unwrap()
            };
            let fk = k as u128 * f as u128 / 10u128.pow(frac.len() as u32);
            return i
                .checked_mul(k)
                .and_then(|v| v.checked_add(fk as u64))
                .ok_or_else(|| format!("bandwidth \"{s}\" is too large"));
        }
    }
    Err(format!(
        "bad bandwidth \"{s}\": expected a number and a unit, one of bit, kbit, mbit, gbit, tbit (e.g. \"1Gbit\")"
    ))
}

struct Loader<'a> {
    path: &'a str,
    spans: Option<SpanTree>,
    diags: Vec<Diagnostic>,
}

impl crate::bgp::Report for Loader<'_> {
    fn report(&mut self, path: &[PathSeg], msg: String) {
        self.at(path, msg);
    }
}

impl Loader<'_> {
    /// Where a path starts in the file (line 1, column 1 if it is not there).
    fn pos(&self, path: &[PathSeg]) -> Pos {
        self.spans
            .as_ref()
            .and_then(|s| s.locate(path))
            .map(|s| s.start)
            .unwrap_or(Pos { line: 1, col: 1 })
    }
    fn at(&mut self, path: &[PathSeg], msg: impl Into<String>) {
        let pos = self.pos(path);
        self.diags.push(Diagnostic {
            file: self.path.to_string(),
            pos,
            message: msg.into(),
        });
    }
    fn at_pos(&mut self, pos: Pos, msg: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.path.to_string(),
            pos,
            message: msg.into(),
        });
    }
    fn str_pos(&self, path: &[PathSeg], line: usize, col: usize) -> Pos {
        self.spans
            .as_ref()
            .and_then(|s| {
                s.string_pos(path, line, col)
                    .or_else(|| s.locate(path).map(|sp| sp.start))
            })
            .unwrap_or(Pos { line: 1, col: 1 })
    }
}

/// Loads and validates scenario text; `path` names it in messages.
pub fn load_str(path: &str, src: &str) -> Result<Scenario, Vec<Diagnostic>> {
    let opts =
        ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mut file: ScenarioFile = match opts.from_str(src) {
        Ok(f) => f,
        Err(e) => {
            let pos = ron_error_pos(src, &e);
            let mut message = ron_message(&e.code);
            if let Some(tok) = token_at(src, pos) {
                message = format!("{message}, found `{tok}`");
            }
            return Err(vec![Diagnostic {
                file: path.to_string(),
                pos,
                message,
            }]);
        }
    };
    let mut l = Loader {
        path,
        spans: SpanTree::parse(src),
        diags: Vec::new(),
    };

    // The cluster: its nodes and routers become hosts after the file's own.
    let file_hosts = file.hosts.len();
    let mut cluster = None;
    // Each generated host's batch of entries for the other nodes, and the
    // line of its script it runs before.
    let mut batches = Vec::new();
    if let Some(spec) = &file.cluster {
        match crate::cluster::resolve(spec) {
            Ok(c) => {
                let cpath = [PathSeg::Field("cluster")];
                for (h, batch) in c.load_hosts() {
                    batches.push(batch);
                    if file.hosts.iter().any(|o| o.name == h.name) {
                        l.at(
                            &cpath,
                            format!(
                                "the cluster's host \"{}\" has the name of a host in `hosts`",
                                h.name
                            ),
                        );
                    }
                    file.hosts.push(h);
                }
                for sg in &c.segments {
                    if file.segments.iter().any(|o| o.name == sg.name) {
                        l.at(&cpath, format!("the cluster's segment \"{}\" has the name of a segment in `segments`", sg.name));
                    }
                    file.segments.push(sg.clone());
                }
                cluster = Some(c);
            }
            Err(errs) => {
                for (p, m) in errs {
                    l.at(&p, m);
                }
            }
        }
    }
    if file.hosts.is_empty() && file.cluster.is_none() {
        l.at(&[], "a scenario needs `hosts` or a `cluster`");
    }

    // Segments.
    let mut segments = Vec::new();
    for (i, s) in file.segments.iter().enumerate() {
        if file.segments[..i].iter().any(|o| o.name == s.name) {
            l.at(
                &[
                    PathSeg::Field("segments"),
                    PathSeg::Index(i),
                    PathSeg::Field("name"),
                ],
                format!("duplicate segment name \"{}\"", s.name),
            );
        }
        let p = |f: &'static str| {
            [
                PathSeg::Field("segments"),
                PathSeg::Index(i),
                PathSeg::Field(f),
            ]
        };
        let latency = match s
            .latency
            .as_deref()
            .map(str::parse::<SimDuration>)
            .transpose()
        {
            Ok(v) => v.unwrap_or(SimDuration::from_micros(50)),
            Err(e) => {
                l.at(&p("latency"), format!("bad latency: {e}"));
                SimDuration::ZERO
            }
        };
        let bandwidth_bps = match s.bandwidth.as_deref().map(parse_bandwidth).transpose() {
            Ok(v) => v.unwrap_or(1_000_000_000),
            Err(e) => {
                l.at(&p("bandwidth"), e);
                0
            }
        };
        let mtu = s.mtu.unwrap_or(1500);
        if !(68..=65535).contains(&mtu) {
            l.at(&p("mtu"), format!("bad mtu {mtu}: expected 68..65535"));
        }
        let loss = match s.loss.as_deref() {
            None => Probability::ZERO,
            Some(v) => Probability::parse_decimal(v).unwrap_or_else(|| {
                l.at(
                    &p("loss"),
                    format!(
                        "bad loss \"{v}\": expected a probability between 0 and 1 such as \"0.01\""
                    ),
                );
                Probability::ZERO
            }),
        };
        segments.push(crate::load::SegmentCfg {
            name: s.name.clone(),
            latency,
            bandwidth_bps,
            mtu,
            loss,
        });
    }

    // Lines expected to fail (CommandError), by host index.
    let expected_errors: Vec<(usize, String)> = file
        .expect
        .iter()
        .filter_map(|e| match e {
            ExpectSpec::CommandError { on, command, .. } => {
                let host = on.split(':').next().unwrap_or("");
                file.hosts
                    .iter()
                    .position(|h| h.name == host)
                    .map(|h| (h, command.clone()))
            }
            _ => None,
        })
        .collect();

    // Hosts and their setup scripts.
    let mut commands = Vec::new();
    for (h, host) in file.hosts.iter().enumerate() {
        if host.name.is_empty()
            || host.name.contains(':')
            || host.name.contains(char::is_whitespace)
        {
            l.at(
                &[
                    PathSeg::Field("hosts"),
                    PathSeg::Index(h),
                    PathSeg::Field("name"),
                ],
                format!(
                    "bad host name \"{}\": expected a name without ':' or spaces",
                    host.name
                ),
            );
        }
        if file.hosts[..h].iter().any(|o| o.name == host.name) {
            l.at(
                &[
                    PathSeg::Field("hosts"),
                    PathSeg::Index(h),
                    PathSeg::Field("name"),
                ],
                format!("duplicate host name \"{}\"", host.name),
            );
        }
        for (n, nic) in host.nics.iter().enumerate() {
            let p = |f: &'static str| {
                [
                    PathSeg::Field("hosts"),
                    PathSeg::Index(h),
                    PathSeg::Field("nics"),
                    PathSeg::Index(n),
                    PathSeg::Field(f),
                ]
            };
            if !file.segments.iter().any(|s| s.name == nic.segment) {
                let known: Vec<&str> = file.segments.iter().map(|s| s.name.as_str()).collect();
                l.at(
                    &p("segment"),
                    format!(
                        "unknown segment \"{}\": expected one of {:?}",
                        nic.segment, known
                    ),
                );
            }
            if let Some(m) = &nic.mac
                && m.parse::<MacAddr>().is_err()
            {
                l.at(&p("mac"), format!("bad MAC address \"{m}\": expected six hex bytes such as \"02:00:00:00:00:01\""));
            }
            if let Some(a) = &nic.address
                && a.parse::<sim_core::net::Ipv4Net>().is_err()
            {
                l.at(&p("address"), format!("bad address \"{a}\": expected an IPv4 address with a prefix length such as \"192.168.56.6/24\""));
            }
            if host.nics[..n].iter().any(|o| o.name == nic.name) {
                l.at(&p("name"), format!("duplicate NIC name \"{}\"", nic.name));
            }
        }
        let own = [
            PathSeg::Field("hosts"),
            PathSeg::Index(h),
            PathSeg::Field("setup"),
        ];
        let generated = [PathSeg::Field("cluster")];
        let path: &[PathSeg] = if h < file_hosts { &own } else { &generated };
        let before = commands.len();
        parse_script(
            &mut l,
            &expected_errors,
            path,
            &host.setup,
            h,
            SimTime::ZERO,
            &mut commands,
            |line| CmdSource::Setup { host: h, line },
        );
        if let Some(Some((line, batch))) = h
            .checked_sub(file_hosts)
            .and_then(|g| batches.get_mut(g))
            .map(Option::take)
        {
            let at = before
                + commands[before..]
                    .iter()
                    .take_while(
                        |c| matches!(c.source, CmdSource::Setup { line: k, .. } if k < line),
                    )
                    .count();
            let pos = l.pos(path);
            let text = format!(
                "# {} commands for the other nodes, made when run (podpath expand prints them)",
                batch.0.len()
            );
            commands.insert(
                at,
                LocatedCommand {
                    host: h,
                    at: SimTime::ZERO,
                    text: text.into(),
                    cmd: Command {
                        netns: None,
                        kind: sim_models::cmd::CommandKind::Batch(batch),
                    }
                    .into(),
                    pos,
                    source: CmdSource::Setup { host: h, line },
                },
            );
        }
    }

    // Timeline.
    for (e, t) in file.timeline.iter().enumerate() {
        let p = |f: &'static str| {
            [
                PathSeg::Field("timeline"),
                PathSeg::Index(e),
                PathSeg::Field(f),
            ]
        };
        let at = match t.at.parse::<SimTime>() {
            Ok(v) => v,
            Err(err) => {
                l.at(&p("at"), format!("bad time: {err}"));
                SimTime::ZERO
            }
        };
        let host_name = t.on.split(':').next().unwrap_or("");
        let Some(h) = file.hosts.iter().position(|x| x.name == host_name) else {
            l.at(&p("on"), format!("unknown host \"{host_name}\" in \"{}\": expected HOST or HOST:NETNS with one of the hosts", t.on));
            continue;
        };
        let netns =
            t.on.split_once(':')
                .map(|(_, n)| n.to_string())
                .filter(|n| !n.is_empty());
        let before = commands.len();
        parse_script(
            &mut l,
            &expected_errors,
            &p("run"),
            &t.run,
            h,
            at,
            &mut commands,
            |line| CmdSource::Timeline { entry: e, line },
        );
        // `on: "node1:test3"` runs the lines inside that namespace.
        if let Some(ns) = netns {
            for c in &mut commands[before..] {
                if c.cmd.netns.is_some() {
                    let pos = c.pos;
                    l.at_pos(pos, format!("\"ip netns exec\" inside a timeline entry already on namespace \"{ns}\""));
                }
                std::sync::Arc::make_mut(&mut c.cmd).netns = Some(ns.clone());
            }
        }
    }

    // Expectations.
    for (i, ex) in file.expect.iter().enumerate() {
        let p = |f: &'static str| {
            [
                PathSeg::Field("expect"),
                PathSeg::Index(i),
                PathSeg::Field(f),
            ]
        };
        let check_place = |l: &mut Loader, field: &'static str, place: &str| {
            let host = place.split(':').next().unwrap_or("");
            if !file.hosts.iter().any(|x| x.name == host) {
                l.at(&p(field), format!("unknown host \"{host}\" in \"{place}\""));
            }
        };
        match ex {
            ExpectSpec::Reach { from, to, .. } | ExpectSpec::Path { from, to, .. } => {
                check_place(&mut l, "from", from);
                if to.parse::<Ipv4Addr>().is_err() {
                    l.at(
                        &p("to"),
                        format!("bad address \"{to}\": expected an IPv4 address"),
                    );
                }
            }
            ExpectSpec::Drop { reason, at } => {
                if !DROP_CODES.contains(&reason.as_str()) {
                    l.at(
                        &p("reason"),
                        format!(
                            "unknown drop reason \"{reason}\": expected one of {}",
                            DROP_CODES.join(", ")
                        ),
                    );
                }
                if let Some(a) = at {
                    check_place(&mut l, "at", a);
                }
            }
            ExpectSpec::Table { on, table, .. } => {
                check_place(&mut l, "on", on);
                if !TABLES.contains(&table.as_str()) {
                    l.at(
                        &p("table"),
                        format!(
                            "unknown table \"{table}\": expected one of {}",
                            TABLES.join(", ")
                        ),
                    );
                }
            }
            ExpectSpec::Output { on, .. } => check_place(&mut l, "on", on),
            // Selectors name pods, known after setup (`podpath reach` checks them).
            ExpectSpec::FullReach { .. } => {}
            ExpectSpec::CommandError { on, command, .. } => {
                check_place(&mut l, "on", on);
                let host = on.split(':').next().unwrap_or("");
                let found = commands.iter().any(|c| {
                    file.hosts.get(c.host).is_some_and(|h| h.name == host)
                        && c.text.trim() == command.trim()
                });
                if !found {
                    l.at(
                        &p("command"),
                        format!(
                            "no command \"{}\" on host \"{host}\" to expect an error from",
                            command.trim()
                        ),
                    );
                }
            }
        }
    }

    let (mut until, mut max_events) = (None, None);
    if let Some(lim) = &file.limits {
        if let Some(u) = &lim.until {
            match u.parse::<SimTime>() {
                Ok(t) => until = Some(t),
                Err(e) => l.at(
                    &[PathSeg::Field("limits"), PathSeg::Field("until")],
                    format!("bad time: {e}"),
                ),
            }
        }
        max_events = lim.max_events;
    }

    let (mut bird, mut bird_start, mut bgp_engine) = (Vec::new(), SimTime::ZERO, BgpEngine::Bird);
    let mut bgp_pos = Pos { line: 1, col: 1 };
    let generated_bgp = cluster
        .as_ref()
        .and_then(crate::cluster::calico_bgp::bgp_section);
    if generated_bgp.is_some() && file.bgp.is_some() {
        l.at(
            &[PathSeg::Field("bgp")],
            "a calico-ipip or calico-bgp cluster generates its own bgp section: remove this one (or set its settings in the cluster's `calico: Calico(...)`)",
        );
    }
    if let Some(spec) = file.bgp.as_ref().or(generated_bgp.as_ref()) {
        let hosts: Vec<String> = file.hosts.iter().map(|h| h.name.clone()).collect();
        bird = crate::bgp::setups(spec, &hosts, &mut l);
        if let Some(t) = &spec.start {
            match t.parse::<SimTime>() {
                Ok(t) => bird_start = t,
                Err(e) => l.at(
                    &[PathSeg::Field("bgp"), PathSeg::Field("start")],
                    format!("bad time: {e}"),
                ),
            }
        }
        bgp_pos = if file.bgp.is_some() {
            l.pos(&[PathSeg::Field("bgp")])
        } else {
            l.pos(&[PathSeg::Field("cluster"), PathSeg::Field("calico")])
        };
        let engine_path: &[PathSeg] = if file.bgp.is_some() {
            &[PathSeg::Field("bgp"), PathSeg::Field("engine")]
        } else {
            &[
                PathSeg::Field("cluster"),
                PathSeg::Field("calico"),
                PathSeg::Field("bgp_engine"),
            ]
        };
        match spec.engine.as_deref() {
            None | Some("bird") => {}
            Some("fabric") => {
                bgp_engine = BgpEngine::Fabric;
                // The fabric converges once, from the cold start: refuse
                // what it would not see rather than ignore it.
                for c in &commands {
                    let bird_cmd = matches!(c.cmd.kind, sim_models::cmd::CommandKind::Bird(_));
                    let timeline = matches!(c.source, CmdSource::Timeline { .. });
                    if bird_cmd || (timeline && crate::routes::changes_state(&c.cmd)) {
                        l.at_pos(
                            c.pos,
                            format!(
                                "`{}`: with the BGP engine \"fabric\", BGP converges once from the cold start and no BIRD runs, so {}; use engine \"bird\" (the default)",
                                c.text,
                                if bird_cmd {
                                    "there is no BIRD to run or ask"
                                } else {
                                    "BGP would not react to this change"
                                }
                            ),
                        );
                    }
                }
            }
            Some(other) => l.at(
                engine_path,
                format!("unknown BGP engine \"{other}\": expected \"bird\" or \"fabric\""),
            ),
        }
    }

    if !l.diags.is_empty() {
        return Err(l.diags);
    }
    Ok(Scenario {
        bird,
        bird_start,
        bgp_engine,
        bgp_pos,
        fabric_cache: FabricCache::default(),
        path: path.to_string(),
        source: src.to_string(),
        file,
        segments,
        commands,
        until,
        max_events,
        cluster,
        file_hosts,
        spans: l.spans,
    })
}

/// Table names accepted by `Table` expectations and `podpath show`.
pub const TABLES: &[&str] = &[
    "routes", "rules", "neigh", "fdb", "links", "addrs", "iptables",
];

/// Drop reason codes (sim_core::trace::DropReason::code).
pub const DROP_CODES: &[&str] = &[
    "no-route",
    "blackhole",
    "unreachable",
    "prohibit",
    "route-type",
    "forwarding-disabled",
    "rp-filter",
    "ttl-exceeded",
    "neigh-failed",
    "frag-needed",
    "netfilter",
    "link-down",
    "no-carrier",
    "queue-full",
    "random-loss",
    "other-host",
    "martian",
    "no-socket",
    "no-tunnel",
    "fdb-miss",
    "neigh-table-overflow",
    "no-ipv4",
    "malformed",
    "other",
];

/// Splits a script into commands (one per line; a here-document takes the
/// lines up to its terminator); parses each; records positions.
fn parse_script(
    l: &mut Loader,
    expected_errors: &[(usize, String)],
    path: &[PathSeg],
    script: &str,
    host: usize,
    at: SimTime,
    out: &mut Vec<LocatedCommand>,
    source: impl Fn(usize) -> CmdSource,
) {
    // Every line's position, located in one pass over the string.
    let lines: Vec<&str> = script
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    let fallback = l.pos(path);
    let located = l.spans.as_ref().and_then(|s| s.string_lines(path));
    let positions: Vec<Pos> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let first = line.chars().position(|c| !c.is_whitespace()).unwrap_or(0);
            located
                .as_ref()
                .and_then(|sl| sl.pos(i, first))
                .unwrap_or(fallback)
        })
        .collect();
    drop(located);
    for sc in sim_models::cmd::parse_script(script) {
        let i = sc.line;
        let line = lines[i];
        let pos = positions[i];
        match sc.result {
            Ok(cmd) => {
                if cmd.kind == sim_models::cmd::CommandKind::Noop {
                    continue;
                }
                out.push(LocatedCommand {
                    host,
                    at,
                    text: sc.text.into(),
                    cmd: cmd.into(),
                    pos,
                    source: source(i),
                });
            }
            Err((err_line, e)) => {
                // A command the scenario expects to fail is kept, and fails
                // when run. It is named by its text, or by its first line.
                if expected_errors.iter().any(|(h, c)| {
                    *h == host && (c.trim() == sc.text.trim() || c.trim() == line.trim())
                }) {
                    let cmd = Command {
                        netns: None,
                        kind: sim_models::cmd::CommandKind::Invalid { message: e.message },
                    };
                    out.push(LocatedCommand {
                        host,
                        at,
                        text: sc.text.into(),
                        cmd: cmd.into(),
                        pos,
                        source: source(i),
                    });
                    continue;
                }
                let p = l.str_pos(path, err_line, e.col);
                let shown = lines[err_line];
                l.at_pos(p, format!("{} (in `{}`)", e.message, shown.trim()));
            }
        }
    }
}

/// The token at a position (a quoted string whole, else up to a delimiter), for messages.
fn token_at(src: &str, pos: Pos) -> Option<String> {
    let line = src.split('\n').nth(pos.line as usize - 1)?;
    let rest: String = line.chars().skip(pos.col as usize - 1).collect();
    let rest = rest.trim_end();
    if rest.is_empty() {
        return None;
    }
    let tok: String = if let Some(stripped) = rest.strip_prefix('"') {
        match stripped.find('"') {
            Some(end) => format!("\"{}\"", &stripped[..end]),
            None => rest.to_string(),
        }
    } else {
        let end = rest
            .char_indices()
            .find(|(i, c)| *i > 0 && (c.is_whitespace() || ",:()[]{}".contains(*c)))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        rest[..end].to_string()
    };
    Some(tok.chars().take(40).collect())
}

/// ron's error, reworded as found/expected where ron's wording is terse.
fn ron_message(code: &ron::error::Error) -> String {
    use ron::error::Error as E;
    match code {
        E::NoSuchStructField {
            expected,
            found,
            outer,
        } => format!(
            "unknown field `{found}`{}: expected one of {}",
            outer
                .as_ref()
                .map(|o| format!(" in {o}"))
                .unwrap_or_default(),
            expected
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        E::MissingStructField { field, outer } => format!(
            "missing field `{field}`{}",
            outer
                .as_ref()
                .map(|o| format!(" in {o}"))
                .unwrap_or_default()
        ),
        other => {
            // ron says "Expected comma"; continue the sentence in lower case.
            let m = other.to_string();
            let mut c = m.chars();
            match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => m,
            }
        }
    }
}
