//! Rewriting a scenario's namespace names into the harness's unique ones.
//!
//! A command line stays verbatim except for the words that name a network
//! namespace, found at the positions iproute2's own grammar gives them (the
//! words come from podpath's parser, `split_words`, so positions are the
//! parser's): `ip netns add|del|exec NAME`, `ip -n NAME` / `ip -netns NAME`,
//! `netns NAME` in `ip link add|set`, `bridge -n NAME`, and recursively the
//! command after `ip netns exec NAME`.

use sim_models::cmd::{Word, split_words};

/// iproute2's `matches()`: a non-empty prefix of the keyword.
fn prefix_of(arg: &str, full: &str) -> bool {
    !arg.is_empty() && full.starts_with(arg)
}

/// Global options of `ip` and `bridge` that take an argument.
fn takes_arg(opt: &str) -> bool {
    matches!(
        opt,
        "b" | "batch" | "rc" | "rcvbuf" | "l" | "loops" | "f" | "family"
    )
}

/// Indexes of the words naming a namespace in the command starting at `start`.
fn ns_words(w: &[Word], start: usize, out: &mut Vec<usize>) {
    let mut i = start;
    if w.get(i).is_some_and(|x| x.text == "sudo") {
        i += 1;
    }
    let Some(prog) = w.get(i) else { return };
    let is_ip = prog.text == "ip";
    if !is_ip && prog.text != "bridge" {
        return;
    }
    i += 1;
    while let Some(x) = w.get(i) {
        let Some(opt) = x.text.strip_prefix('-') else {
            break;
        };
        let opt = opt.strip_prefix('-').unwrap_or(opt);
        if opt == "n" || opt == "netns" {
            out.push(i + 1);
            i += 2;
        } else if takes_arg(opt) {
            i += 2;
        } else {
            i += 1;
        }
    }
    if !is_ip {
        return;
    }
    let Some(obj) = w.get(i) else { return };
    let obj = obj.text.as_ref();
    if obj.len() >= 3 && prefix_of(obj, "netns") {
        // ip netns SUB NAME [CMD...]; iproute2 tries list/add/attach/set/delete/identify/pids/exec in order.
        let Some(sub) = w.get(i + 1).map(|x| x.text.as_ref()) else {
            return;
        };
        let names_one = ["add", "attach", "set", "delete", "exec"]
            .iter()
            .any(|k| prefix_of(sub, k))
            && !prefix_of(sub, "list")
            && !prefix_of(sub, "identify");
        if names_one && i + 2 < w.len() {
            out.push(i + 2);
            if prefix_of(sub, "exec") && !prefix_of(sub, "delete") {
                ns_words(w, i + 3, out);
            }
        }
    } else if prefix_of(obj, "link") {
        for (j, x) in w.iter().enumerate().skip(i + 1) {
            if x.text == "netns" && j + 1 < w.len() {
                out.push(j + 1);
            }
        }
    }
}

/// Rewrites the namespace names of `line` with `map` (scenario name to real
/// name), leaving every other character as written.
pub fn rewrite(text: &str, map: &dyn Fn(&str) -> String) -> Result<String, String> {
    // A here-document's lines follow its command's line unchanged.
    let (line, rest) = match text.split_once('\n') {
        Some((l, r)) => (l, Some(r)),
        None => (text, None),
    };
    let head = match line.find("<<") {
        Some(i) => &line[..i],
        None => line,
    };
    let mut out = rewrite_line(head, map)?;
    out.push_str(&line[head.len()..]);
    if let Some(r) = rest {
        out.push('\n');
        out.push_str(r);
    }
    Ok(out)
}

fn rewrite_line(line: &str, map: &dyn Fn(&str) -> String) -> Result<String, String> {
    let words = split_words(line).map_err(|e| e.message)?;
    let mut idx = Vec::new();
    ns_words(&words, 0, &mut idx);
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut pos = 0;
    idx.sort_unstable();
    idx.dedup();
    for i in idx {
        let Some(word) = words.get(i) else { continue };
        let len = word.text.chars().count();
        let written: String = chars
            .get(word.col..word.col + len)
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        if written != word.text {
            return Err(format!(
                "namespace name {:?} at column {} is quoted or escaped: the harness rewrites only plain words",
                word.text, word.col
            ));
        }
        out.extend(&chars[pos..word.col]);
        out.push_str(&map(&word.text));
        pos = word.col + len;
    }
    out.extend(&chars[pos..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(n: &str) -> String {
        format!("ppk1s0-node1-{n}")
    }

    #[test]
    fn rewrites_only_namespace_words() {
        let cases = [
            ("ip netns add test3", "ip netns add ppk1s0-node1-test3"),
            (
                "ip netns exec test3 ip link set veth3 up",
                "ip netns exec ppk1s0-node1-test3 ip link set veth3 up",
            ),
            (
                "ip link set netns test3 dev veth3",
                "ip link set netns ppk1s0-node1-test3 dev veth3",
            ),
            (
                "ip link add name veth-a type veth peer name eth0 netns pod-a",
                "ip link add name veth-a type veth peer name eth0 netns ppk1s0-node1-pod-a",
            ),
            (
                "ip -n pod1 addr add 10.0.0.1/24 dev eth0",
                "ip -n ppk1s0-node1-pod1 addr add 10.0.0.1/24 dev eth0",
            ),
            (
                "  ip  netns exec pod1 ip -n pod2 link   # test3",
                "  ip  netns exec ppk1s0-node1-pod1 ip -n ppk1s0-node1-pod2 link   # test3",
            ),
            (
                "ip neigh add 1.2.3.4 dev test3",
                "ip neigh add 1.2.3.4 dev test3",
            ),
            ("ip netns list", "ip netns list"),
            ("sudo ip netns del x", "sudo ip netns del ppk1s0-node1-x"),
            (
                "ip netns exec p1 bridge -n p2 fdb show",
                "ip netns exec ppk1s0-node1-p1 bridge -n ppk1s0-node1-p2 fdb show",
            ),
        ];
        for (a, b) in cases {
            assert_eq!(rewrite(a, &m).unwrap(), b, "{a}");
        }
        assert!(rewrite("ip netns add 'a'", &m).is_err());
    }
}
