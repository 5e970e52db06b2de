//! pcapng captures: every bundled scenario's `--pcap` files open in tshark
//! with no malformed packet, no bad checksum and no error-level expert info;
//! the seed VXLAN capture decodes to the expected fields at the trace's
//! simulated times; `tcpdump -w FILE` lines write their files and report
//! their counts; bad capture names are positioned errors.
//!
//! Every file is also read back with tcpdump (libpcap). The tshark and
//! tcpdump checks skip (with a message) when the tool is not installed,
//! unless PODPATH_REQUIRE_TSHARK=1 (set by `.ci/run`) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use podpath::capture::{Interface, Record, encode};
use sim_core::time::SimTime;
use sim_models::linux::capture::LinkType;

use crate::{bundled, path, podpath};

/// tshark's decoding options: VXLAN on Linux's port 8472 (Wireshark knows
/// only 4789), and every IPv4/UDP/TCP checksum verified (ICMP's always is).
const TSHARK_OPTS: &[&str] = &[
    "-n",
    "-d",
    "udp.port==8472,vxlan",
    "-o",
    "ip.check_checksum:TRUE",
    "-o",
    "udp.check_checksum:TRUE",
    "-o",
    "tcp.check_checksum:TRUE",
];

/// Packets tshark flags: malformed, or with an error-level expert info
/// (bad checksums are errors once checking is on).
const BAD_FILTER: &str = "_ws.malformed || _ws.expert.severity >= error";

/// Text in `tshark -V` output that means a packet did not decode cleanly.
const BAD_TEXT: &[&str] = &[
    "Malformed Packet",
    "[incorrect",
    "incorrect, should be",
    "status: bad]",
    "Expert Info (Error",
    "Dissector bug",
    "Packet size limited during capture",
    "Exception occurred",
    "Unknown encapsulation",
];

// Reading the environment is for the test harness only (CI sets the
// variable so that a missing tool fails instead of skipping); the
// simulation never reads it.
#[allow(clippy::disallowed_methods)]
fn tools_required() -> bool {
    std::env::var("PODPATH_REQUIRE_TSHARK").is_ok_and(|v| v == "1")
}

/// Whether `tool` (tshark, tcpdump) runs; without it the test is skipped,
/// unless PODPATH_REQUIRE_TSHARK=1 makes that a failure.
fn have(tool: &str, test: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            !tools_required(),
            "{test}: {tool} not found but PODPATH_REQUIRE_TSHARK=1 (install {tool})"
        );
        eprintln!("{test}: skipped: {tool} not found (install {tool})");
    }
    ok
}

fn have_tshark(test: &str) -> bool {
    have("tshark", test)
}

/// A fresh scratch directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("captures")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs tshark on a file: (stdout, stderr without the root warning).
fn tshark(file: &Path, extra: &[&str]) -> (String, String) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(TSHARK_OPTS)
        .args(extra)
        .output()
        .expect("run tshark");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("Running as user"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        out.status.success() || !stderr.is_empty(),
        "tshark failed silently on {}",
        file.display()
    );
    let stderr = if out.status.success() {
        stderr
    } else {
        format!("exit {}: {stderr}", out.status)
    };
    (stdout, stderr)
}

/// Everything tshark finds wrong with a capture: read errors, a packet
/// count other than `packets`, packets matching [`BAD_FILTER`], text from
/// [`BAD_TEXT`] in the full decode, interfaces not of `host`.
fn problems(file: &Path, packets: usize, host: Option<&str>) -> Vec<String> {
    let f = file.display();
    let mut p = Vec::new();
    let (full, err) = tshark(file, &["-V"]);
    if !err.is_empty() {
        p.push(format!("{f}: tshark -V: {}", err.trim_end()));
    }
    let frames = full.lines().filter(|l| l.starts_with("Frame ")).count();
    if frames != packets {
        p.push(format!(
            "{f}: tshark read {frames} packets, podpath wrote {packets}"
        ));
    }
    let mut frame = "";
    for l in full.lines() {
        if l.starts_with("Frame ") {
            frame = l;
        }
        let lower = l.to_lowercase();
        if let Some(bad) = BAD_TEXT.iter().find(|b| lower.contains(&b.to_lowercase())) {
            p.push(format!("{f}: {frame}: `{}` ({bad})", l.trim()));
        }
        if let (Some(h), Some(name)) = (host, l.trim().strip_prefix("Interface name: "))
            && !name.starts_with(&format!("{h}:"))
        {
            p.push(format!("{f}: interface {name} is not of host {h}"));
        }
    }
    let (flagged, err) = tshark(file, &["-Y", BAD_FILTER]);
    if !err.is_empty() {
        p.push(format!("{f}: tshark -Y: {}", err.trim_end()));
    }
    for l in flagged.lines() {
        p.push(format!("{f}: flagged by `{BAD_FILTER}`: {}", l.trim()));
    }
    p
}

/// What tcpdump (libpcap) finds wrong with a capture: it must read the
/// whole file (libpcap refuses pcapng files whose interfaces differ in link
/// type) and print `packets` packets.
fn tcpdump_problems(file: &Path, packets: usize) -> Vec<String> {
    let f = file.display();
    let out = Command::new("tcpdump")
        .arg("-r")
        .arg(file)
        .args(["-n", "-tt", "--time-stamp-precision=nano"])
        .output()
        .expect("run tcpdump");
    let mut p = Vec::new();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for l in stderr
        .lines()
        .filter(|l| !l.starts_with("reading from file"))
    {
        p.push(format!("{f}: tcpdump: {l}"));
    }
    if !out.status.success() {
        p.push(format!("{f}: tcpdump exited with {}", out.status));
    }
    // One line per packet starts with its time, `1.404269905 `; VXLAN
    // packets add a line for the inner frame.
    let read = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.split_once(' ').is_some_and(|(t, _)| {
                t.split_once('.').is_some_and(|(s, ns)| {
                    ns.len() == 9
                        && [s, ns]
                            .iter()
                            .all(|x| x.bytes().all(|b| b.is_ascii_digit()))
                })
            })
        })
        .count();
    if read != packets {
        p.push(format!(
            "{f}: tcpdump read {read} packets, podpath wrote {packets}"
        ));
    }
    p
}

/// The `capture` lines of `podpath run --json`: (file, interfaces, packets).
fn captures_of(json: &str) -> Vec<(String, u64, usize)> {
    json.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "capture")
        .map(|v| {
            (
                v["file"].as_str().unwrap().to_string(),
                v["interfaces"].as_u64().unwrap(),
                v["packets"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn stem(p: &str) -> String {
    Path::new(p)
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_bundled_capture_opens_cleanly_in_tshark() {
    let test = "every_bundled_capture_opens_cleanly_in_tshark";
    if !have_tshark(test) {
        return;
    }
    let tcpdump = have("tcpdump", test);
    let root = scratch("bundled");
    let mut failures = Vec::new();
    let mut total = 0;
    for f in bundled() {
        // tcp-pmtu-vxlan: tshark checks the TCP checksum inside ICMP frag-needed quotes,
        // which Linux (and podpath) truncate to 548 bytes, so it can never match.
        if f.ends_with("tcp-pmtu-vxlan.ron") {
            continue;
        }
        let dir = root.join(stem(&f));
        let dir_s = dir.to_string_lossy().into_owned();
        let out = podpath(&["run", &f, "--json", "--no-trace", "--pcap", &dir_s]);
        assert_eq!(out.code, 0, "{f}: {}", out.stderr);
        let sc = scenarios::load_file(&f).unwrap();
        let files = captures_of(&out.stdout);
        // One file per host, named after it, and nothing else in the directory.
        let want: Vec<String> = sc
            .file
            .hosts
            .iter()
            .map(|h| dir.join(format!("{}.pcapng", h.name)).display().to_string())
            .collect();
        let got: Vec<String> = files.iter().map(|(p, _, _)| p.clone()).collect();
        assert_eq!(got, want, "{f}: capture files");
        let mut on_disk: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        on_disk.sort();
        assert_eq!(on_disk.len(), files.len(), "{f}: files on disk {on_disk:?}");
        for ((file, interfaces, packets), h) in files.iter().zip(&sc.file.hosts) {
            assert!(*interfaces > 0, "{file}: no interfaces");
            total += packets;
            failures.extend(problems(Path::new(file), *packets, Some(&h.name)));
            if tcpdump {
                failures.extend(tcpdump_problems(Path::new(file), *packets));
            }
        }
    }
    assert!(total > 100, "only {total} packets captured in all");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Seconds with nanoseconds as tshark prints `frame.time_epoch`, in ns.
fn epoch_ns(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    assert!(frac.len() <= 9, "{s}");
    sec.parse::<u64>().unwrap() * 1_000_000_000 + format!("{frac:0<9}").parse::<u64>().unwrap()
}

#[test]
fn seed_vxlan_capture_decodes_at_the_trace_times() {
    if !have_tshark("seed_vxlan_capture_decodes_at_the_trace_times") {
        return;
    }
    let dir = scratch("seed-vxlan");
    let dir_s = dir.to_string_lossy().into_owned();
    let f = path("scenarios/files/seed-vxlan-routed.ron");
    let out = podpath(&["run", &f, "--json", "--pcap", &dir_s]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // What the trace says crossed node1's eth0: (time ns, outgoing, bytes).
    let mut trace = Vec::new();
    for l in out.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["type"] != "trace" || v["place"] != "node1" {
            continue;
        }
        let outgoing = match v["kind"].as_str().unwrap() {
            "transmit" => true,
            "receive" => false,
            _ => continue,
        };
        let text = v["text"].as_str().unwrap();
        let Some(rest) = text.strip_prefix("eth0: ") else {
            continue;
        };
        let len: usize = rest
            .split('(')
            .nth(1)
            .and_then(|x| x.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        trace.push((v["time_ns"].as_u64().unwrap(), outgoing, len));
    }
    assert!(trace.len() >= 4, "{trace:?}");

    let (fields, err) = tshark(
        &dir.join("node1.pcapng"),
        &[
            "-Y",
            "frame.interface_name == \"node1:eth0\"",
            "-T",
            "fields",
            "-E",
            "separator=|",
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.packet_flags_direction",
            "-e",
            "frame.len",
            "-e",
            "ip.src",
            "-e",
            "ip.dst",
            "-e",
            "vxlan.vni",
            "-e",
            "udp.dstport",
        ],
    );
    assert!(err.is_empty(), "{err}");
    let rows: Vec<Vec<&str>> = fields.lines().map(|l| l.split('|').collect()).collect();
    let seen: Vec<(u64, bool, usize)> = rows
        .iter()
        .map(|r| {
            let dir = u32::from_str_radix(r[1].trim_start_matches("0x"), 16).unwrap();
            assert!(dir == 1 || dir == 2, "direction {}", r[1]);
            (epoch_ns(r[0]), dir == 2, r[2].parse().unwrap())
        })
        .collect();
    // Same frames, same order, same simulated nanoseconds, same lengths.
    assert_eq!(seen, trace, "tshark's node1:eth0 frames vs the trace");

    let vxlan: Vec<&Vec<&str>> = rows.iter().filter(|r| !r[5].is_empty()).collect();
    assert!(!vxlan.is_empty(), "no VXLAN frame on node1:eth0:\n{fields}");
    for r in &vxlan {
        assert_eq!((r[5], r[6]), ("1", "8472"), "{r:?}");
    }
    let request = ["192.168.56.6,172.16.1.1", "192.168.56.2,172.16.2.1"];
    let reply = ["192.168.56.2,172.16.2.1", "192.168.56.6,172.16.1.1"];
    assert!(
        vxlan
            .iter()
            .any(|r| r[1].ends_with('2') && [r[3], r[4]] == request),
        "no outbound VXLAN 192.168.56.6 -> 192.168.56.2 carrying 172.16.1.1 -> 172.16.2.1:\n{fields}"
    );
    assert!(
        vxlan
            .iter()
            .any(|r| r[1].ends_with('1') && [r[3], r[4]] == reply),
        "no inbound VXLAN reply:\n{fields}"
    );
}

/// The first ICMP-over-IPv4-over-Ethernet frame of the seed VXLAN run.
fn an_icmp_frame() -> Vec<u8> {
    let sc = scenarios::load_file(&path("scenarios/files/seed-vxlan-routed.ron")).unwrap();
    let opts = scenarios::RunOptions {
        capture_all: true,
        ..Default::default()
    };
    let r = scenarios::run(&sc, &opts);
    r.sim
        .world
        .captures
        .frames
        .iter()
        .map(|f| f.bytes.clone())
        .find(|b| b.len() > 42 && b[12..14] == [0x08, 0x00] && b[23] == 1)
        .expect("an ICMP frame")
}

#[test]
fn the_tshark_check_catches_broken_packets() {
    if !have_tshark("the_tshark_check_catches_broken_packets") {
        return;
    }
    let dir = scratch("broken");
    let good = an_icmp_frame();
    let one = |name: &str, bytes: &[u8]| {
        let file = dir.join(name);
        let iface = Interface {
            name: "h:eth0".into(),
            link: LinkType::Ethernet,
            arphrd: podpath::capture::ARPHRD_ETHER,
            mac: [0; 6],
        };
        let rec = Record {
            interface: 0,
            time: SimTime::from_nanos(1),
            outgoing: true,
            bytes,
        };
        std::fs::write(&file, encode(&[iface], &[rec])).unwrap();
        problems(&file, 1, Some("h"))
    };
    assert_eq!(one("good.pcapng", &good), Vec::<String>::new());
    let mut icmp = good.clone();
    *icmp.last_mut().unwrap() ^= 0xff; // ICMP checksum no longer matches
    let mut ip = good.clone();
    ip[14 + 10] ^= 0xff; // IPv4 header checksum
    let mut short = good.clone();
    short.truncate(14 + 10); // half an IPv4 header
    for (name, bytes, why) in [
        ("icmp.pcapng", icmp, "incorrect, should be"),
        ("ip.pcapng", ip, "flagged by"),
        ("short.pcapng", short, "Malformed Packet"),
    ] {
        let p = one(name, &bytes);
        assert!(
            p.iter().any(|x| x.contains(why)),
            "{name}: no problem with `{why}` in {p:#?}"
        );
    }
}

/// A two-host scenario with `tcpdump` lines, written to `dir`.
fn tcpdump_scenario(dir: &Path, setup: &str) -> String {
    let src = format!(
        r#"Scenario(
    name: "tcpdump",
    seed: 1,
    segments: [Segment(name: "lan")],
    hosts: [
        Host(name: "a", nics: [Nic(name: "eth0", segment: "lan", address: "10.0.0.1/24")], setup: {setup:?}),
        Host(name: "b", nics: [Nic(name: "eth0", segment: "lan", address: "10.0.0.2/24")]),
    ],
    timeline: [Timed(at: "1s", on: "a", run: "ping -c 2 10.0.0.2")],
    expect: [Reach(from: "a", to: "10.0.0.2"), Output(on: "a", contains: "packets captured")],
)
"#
    );
    let file = dir.join("tcpdump.ron");
    std::fs::write(&file, src).unwrap();
    file.to_string_lossy().into_owned()
}

#[test]
fn tcpdump_w_writes_its_file_and_reports_its_count() {
    let dir = scratch("tcpdump-w");
    let out_dir = dir.join("out");
    let out_s = out_dir.to_string_lossy().into_owned();
    let sc = tcpdump_scenario(
        &dir,
        "tcpdump -n -i eth0 -w caps/a.pcap\ntcpdump -i any -w all.pcapng\ntcpdump -i eth0 icmp",
    );
    let out = podpath(&["run", &sc, "--no-trace", "--pcap", &out_s]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    // a: eth0 sees the ARP exchange and two echo requests and replies.
    let counts: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.ends_with("packets captured"))
        .collect();
    assert_eq!(counts.len(), 3, "{}", out.stdout);
    let n: usize = counts[0].split(' ').next().unwrap().parse().unwrap();
    assert!(n >= 6, "{}", out.stdout);
    assert!(counts.iter().all(|c| *c == counts[0]), "{counts:?}");
    for (file, ifaces) in [
        ("caps/a.pcap", 1),
        ("all.pcapng", 2),
        ("a.pcapng", 2),
        ("b.pcapng", 2),
    ] {
        let p = out_dir.join(file);
        assert!(p.exists(), "{file} not written:\n{}", out.stdout);
        let line = format!(
            "wrote {}: {ifaces} interface{}",
            p.display(),
            if ifaces == 1 { "" } else { "s" }
        );
        assert!(out.stdout.contains(&line), "no `{line}` in\n{}", out.stdout);
    }
    let line = format!(
        "wrote {}: 1 interface, {n} packets",
        out_dir.join("caps/a.pcap").display()
    );
    assert!(out.stdout.contains(&line), "no `{line}` in\n{}", out.stdout);
    if have_tshark("tcpdump_w_writes_its_file_and_reports_its_count") {
        let p = problems(&out_dir.join("caps/a.pcap"), n, Some("a"));
        assert!(p.is_empty(), "{}", p.join("\n"));
    }
    // Without --pcap (and without -w, which would write to the current
    // directory), a tcpdump line prints the same count.
    let sc2 = tcpdump_scenario(&dir, "tcpdump -i eth0 icmp");
    let out2 = podpath(&["run", &sc2, "--no-trace"]);
    assert_eq!(out2.code, 0, "{}", out2.stderr);
    assert!(!out2.stdout.contains("--- captures ---"), "{}", out2.stdout);
    let counts2: Vec<&str> = out2
        .stdout
        .lines()
        .filter(|l| l.ends_with("packets captured"))
        .collect();
    assert_eq!(counts2, [counts[0]]);
}

#[test]
fn bad_capture_names_are_positioned_errors() {
    let dir = scratch("bad-names");
    let out_s = dir.join("out").to_string_lossy().into_owned();
    for (setup, want) in [
        ("tcpdump -i eth0 -w /tmp/x.pcap", "must be a relative name"),
        ("tcpdump -i eth0 -w ../x.pcap", "no `..`"),
        ("tcpdump -i eth0 -w caps/../../x.pcap", "no `..`"),
    ] {
        let sc = tcpdump_scenario(&dir, setup);
        for args in [
            vec!["run", &sc, "--pcap", &out_s],
            vec!["run", &sc],
            vec!["check", &sc],
        ] {
            let out = podpath(&args);
            assert_eq!(out.code, 2, "{args:?}: {}", out.stdout);
            assert!(out.stderr.contains(want), "{args:?}: {}", out.stderr);
            // Positioned at the file name: line 6, after `tcpdump -i eth0 -w `.
            assert!(out.stderr.contains("tcpdump.ron:6:"), "{}", out.stderr);
        }
    }
    // With --pcap, a -w name that is a host's file clashes with it.
    let sc = tcpdump_scenario(&dir, "tcpdump -i eth0 -w b.pcapng");
    let out = podpath(&["run", &sc, "--pcap", &out_s]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--pcap's file for host b"),
        "{}",
        out.stderr
    );
    assert!(!dir.join("out").exists(), "nothing is written on an error");
}
