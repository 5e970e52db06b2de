//! The loader never panics, whatever it is fed (bounded number of cases in CI).

use proptest::prelude::*;

fn ron_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        "[a-z]{0,6}".prop_map(|s| format!("\"{s}\"")),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("true".to_string()),
        Just("None".to_string()),
        Just("()".to_string()),
        Just("\"ip route add 10.0.0.0/8 via 1.2.3.4\"".to_string()),
        Just("r#\"\nip link add name a type veth peer name b\nping -c 1 1.2.3.4\n\"#".to_string()),
        "[ -~]{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let field = prop_oneof![
            Just("name"),
            Just("hosts"),
            Just("segments"),
            Just("setup"),
            Just("nics"),
            Just("timeline"),
            Just("expect"),
            Just("seed"),
            Just("at"),
            Just("on"),
            Just("run"),
            Just("segment"),
            Just("limits"),
            Just("bogus")
        ];
        let sname = prop_oneof![
            Just(""),
            Just("Scenario"),
            Just("Host"),
            Just("Segment"),
            Just("Nic"),
            Just("Timed"),
            Just("Reach"),
            Just("Limits")
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            (sname, prop::collection::vec((field, inner), 0..5)).prop_map(|(n, fs)| {
                format!(
                    "{n}({})",
                    fs.iter()
                        .map(|(f, v)| format!("{f}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = scenarios::load_str("fuzz.ron", &s);
    }

    #[test]
    fn ron_shaped_input_never_panics(v in ron_value()) {
        let _ = scenarios::load_str("fuzz.ron", &v);
        let whole = format!("Scenario(name: \"x\", hosts: [Host(name: \"a\", setup: {v})])");
        if let Ok(sc) = scenarios::load_str("fuzz.ron", &whole) {
            let opts = scenarios::RunOptions { max_events: Some(10_000), until: Some(sim_core::time::SimTime::from_nanos(1_000_000_000)), seed: None, ..Default::default() };
            let _ = scenarios::run(&sc, &opts);
        }
    }

    #[test]
    fn arbitrary_command_lines_never_panic(line in "[ -~]{0,80}") {
        let _ = sim_models::cmd::parse_line(&line);
        let src = format!("Scenario(name: \"x\", hosts: [Host(name: \"a\", setup: {line:?})])");
        if let Ok(sc) = scenarios::load_str("fuzz.ron", &src) {
            let opts = scenarios::RunOptions { max_events: Some(10_000), until: Some(sim_core::time::SimTime::from_nanos(1_000_000_000)), seed: None, ..Default::default() };
            let _ = scenarios::run(&sc, &opts);
        }
    }
}
