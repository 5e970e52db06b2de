//! Tokenising and parsing one line of the command language.
//!
//! [`split_words`] splits a line as a POSIX shell splits a *simple command*:
//! blanks separate words, `'...'` and `"..."` quote (nothing is expanded: `$X`
//! stays literal), a backslash escapes the next character, and `#` at the start
//! of a word begins a comment. Unquoted shell operators (`|`, `&`, `;`, `<`,
//! `>`, `(`, `)`, backquote) are errors: a line is one command.
//!
//! [`parse_line`] follows the real tools' own argument parsers (iproute2 6.1,
//! procps sysctl, net-tools arp, iputils ping, tcpdump, kmod modprobe): keyword
//! abbreviations resolve in iproute2's order of precedence (`matches()`, first
//! table entry wins: `ip r` is route, `ip a s` is address show, `ip link s` is
//! link *set*), and error messages reuse the tool's wording, prefixed with the
//! tool and object (`ip route: Error: either "to" is duplicate, or "vai" is a
//! garbage.`). Things the real tool accepts but the simulator does not model are
//! errors that say so and name the word.
//!
//! Representation choices (what the typed [`Command`] means):
//! - `sysctl` keys are stored as the path under `/proc/sys`, components joined
//!   with `/` (`net/ipv4/ip_forward`, `net/ipv4/conf/vxlan.1/rp_filter`). The
//!   conversion is procps' own: if the first separator in the key is a dot,
//!   dots and slashes swap (`net.ipv4.conf.vxlan/1.rp_filter` names
//!   `vxlan.1`, while `net.ipv4.conf.vxlan.1.rp_filter` becomes
//!   `net/ipv4/conf/vxlan/1/rp_filter`, which does not exist, exactly as on
//!   Linux); if it is a slash the key is already a path. To print a key as
//!   sysctl does, swap `/` and `.` again.
//! - `ip link add ... type veth mtu N peer ...` is an error, as in iproute2
//!   (verified against iproute2 6.1: options after `type veth` must start with
//!   `peer`; the first device's options go before `type`).
//! - `ip addr add ... label L` is accepted and the label dropped; `brd +` / `brd -`
//!   are computed here (`+`: host bits set, `-`: host bits clear; nothing for
//!   /31 and /32, as iproute2 does).
//! - `ip rule ... from all` / `to all` are stored as `None` (no selector).
//! - `ttl inherit` / `ttl 0` (ipip) and `ttl auto` (vxlan) are stored as `None`
//!   (the kernel default).
//! - `ip neigh change` is parsed as `NeighCmd::Add { replace: true, .. }`.
//! - `ip route del` with no type keyword carries `RouteType::Unicast`.
//! - `tcpdump` display flags are ignored and a filter expression is accepted
//!   but stored nowhere (only `-i` and `-w` are kept).
//! - `ping` requires `-c` (without it ping runs forever).
//! - `arp -s` / `arp -d` require `-i DEV` (the typed neighbour commands need a
//!   device; Linux would pick the device from the route to the address).

use std::borrow::Cow;
use std::fmt::Display;
use std::net::Ipv4Addr;

use sim_core::net::Ipv4Net;
use sim_core::trace::RouteType;
use sim_core::wire::MacAddr;

use super::{
    AddrCmd, Command, CommandKind, FdbCmd, FdbState, LinkCmd, LinkKind, LinkSet, NeighCmd,
    NetnsCmd, NexthopSpec, NudState, ParseError, PingCmd, PingSource, PmtuMode, RouteCmd,
    RouteSpec, RuleCmd, RuleSpec, Scope, TABLE_DEFAULT, TABLE_LOCAL, TABLE_MAIN, TableId,
    TunnelArgs, TunnelCmd, VxlanArgs,
};

/// One shell word: its text with quotes and escapes removed, and the 0-based
/// character column of its first character (an opening quote, if quoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word<'a> {
    pub text: Cow<'a, str>,
    pub col: usize,
}

impl Word<'_> {
    fn s(&self) -> &str {
        &self.text
    }
}

type R<T> = Result<T, ParseError>;

/// `nc` and `iperf3`.
#[path = "traffic.rs"]
mod traffic;

/// `bird`, `birdc`, `pkill bird`.
#[path = "bird.rs"]
mod bird;

fn perr(col: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        col,
        message: message.into(),
    }
}

/// The programs [`parse_line`] knows, in the order the error message lists them.
const PROGRAMS: &[&str] = &[
    "ip",
    "bridge",
    "arp",
    "sysctl",
    "modprobe",
    "iptables",
    "iptables-save",
    "iptables-restore",
    "conntrack",
    "ping",
    "traceroute",
    "tcpdump",
    "nc",
    "iperf3",
    "bird",
    "birdc",
    "pkill",
    "killall",
];

fn is_program(s: &str) -> bool {
    PROGRAMS.contains(&s) || matches!(s, "iptables-legacy" | "iptables-nft" | "sudo")
}

// ---------------------------------------------------------------------------
// Words
// ---------------------------------------------------------------------------

struct Builder {
    col: usize,
    start: usize,
    buf: String,
    simple: bool,
}

impl Builder {
    fn new(col: usize, start: usize) -> Self {
        Builder {
            col,
            start,
            buf: String::new(),
            simple: true,
        }
    }
    fn finish(self, line: &str, end: usize) -> Word<'_> {
        let text = if self.simple {
            Cow::Borrowed(&line[self.start..end])
        } else {
            Cow::Owned(self.buf)
        };
        Word {
            text,
            col: self.col,
        }
    }
}

/// Splits a line into shell words (see the module documentation).
pub fn split_words(line: &str) -> Result<Vec<Word<'_>>, ParseError> {
    let mut words = Vec::new();
    let mut it = line.char_indices().enumerate();
    let mut cur: Option<Builder> = None;
    while let Some((col, (byte, c))) = it.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if let Some(b) = cur.take() {
                    words.push(b.finish(line, byte));
                }
            }
            '#' if cur.is_none() => return Ok(words),
            '\'' => {
                let b = cur.get_or_insert_with(|| Builder::new(col, byte));
                b.simple = false;
                loop {
                    match it.next() {
                        Some((_, (_, '\''))) => break,
                        Some((_, (_, ch))) => b.buf.push(ch),
                        None => {
                            return Err(perr(
                                col,
                                "unterminated single quote: expected a closing ' before the end of the line",
                            ));
                        }
                    }
                }
            }
            '"' => {
                let b = cur.get_or_insert_with(|| Builder::new(col, byte));
                b.simple = false;
                let unterminated = || {
                    perr(
                        col,
                        "unterminated double quote: expected a closing \" before the end of the line",
                    )
                };
                loop {
                    match it.next() {
                        Some((_, (_, '"'))) => break,
                        Some((_, (_, '\\'))) => match it.next() {
                            Some((_, (_, ch @ ('"' | '\\' | '$' | '`')))) => b.buf.push(ch),
                            Some((_, (_, '\n'))) => {}
                            Some((_, (_, ch))) => {
                                b.buf.push('\\');
                                b.buf.push(ch);
                            }
                            None => return Err(unterminated()),
                        },
                        Some((_, (_, ch))) => b.buf.push(ch),
                        None => return Err(unterminated()),
                    }
                }
            }
            '\\' => {
                let b = cur.get_or_insert_with(|| Builder::new(col, byte));
                b.simple = false;
                match it.next() {
                    Some((_, (_, '\n'))) => {}
                    Some((_, (_, ch))) => b.buf.push(ch),
                    None => {
                        return Err(perr(
                            col,
                            "trailing backslash: line continuations are not supported, join the lines",
                        ));
                    }
                }
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '`' => {
                return Err(perr(
                    col,
                    format!(
                        "unquoted \"{c}\" is shell syntax the simulator does not run: expected one \
                         simple command per line (no pipes, redirections, lists or subshells); \
                         quote it if it is an argument"
                    ),
                ));
            }
            _ => {
                let b = cur.get_or_insert_with(|| Builder::new(col, byte));
                b.buf.push(c);
            }
        }
    }
    if let Some(b) = cur.take() {
        words.push(b.finish(line, line.len()));
    }
    Ok(words)
}

// ---------------------------------------------------------------------------
// Lines
// ---------------------------------------------------------------------------

/// Parses one line of a setup script or timeline.
pub fn parse_line(line: &str) -> Result<Command, ParseError> {
    if let Some(h) = find_heredoc(line)? {
        return Err(perr(
            h.col,
            "a here-document (<<) takes the lines that follow it: it is read only in a script",
        ));
    }
    parse_simple(line, None)
}

/// Parses a command line; `heredoc` is the here-document ending it, if any
/// (only iptables-restore reads one; iptables-restore needs one).
fn parse_simple(line: &str, heredoc: Option<&Heredoc>) -> Result<Command, ParseError> {
    let text = match heredoc {
        Some(h) => &line[..h.byte],
        None => line,
    };
    let cmd = parse_words(text)?;
    let restore = matches!(cmd.kind, CommandKind::IptablesRestore { .. });
    match heredoc {
        Some(h) if !restore => Err(perr(
            h.col,
            "only iptables-restore reads a here-document: expected a command without \"<<\"",
        )),
        None if restore => {
            let col = split_words(text)?
                .iter()
                .find(|w| w.s() == "iptables-restore")
                .map_or(0, |w| w.col);
            Err(perr(
                col,
                "iptables-restore reads its rules from standard input: give them as a \
                 here-document (`iptables-restore <<EOF`, the rules, then `EOF`)",
            ))
        }
        _ => Ok(cmd),
    }
}

fn parse_words(line: &str) -> Result<Command, ParseError> {
    check_comment_prompt(line)?;
    check_prompt(line)?;
    let words = split_words(line)?;
    if words.is_empty() {
        return Ok(Command {
            netns: None,
            kind: CommandKind::Noop,
        });
    }
    let mut w: &[Word] = &words;
    if w[0].s() == "sudo" {
        w = &w[1..];
        if w.is_empty() {
            return Err(perr(
                words[0].col,
                "sudo: expected a command after \"sudo\"",
            ));
        }
    }
    if w[0].s() == "set" {
        return parse_set(w);
    }
    parse_command(w, None)
}

// ---------------------------------------------------------------------------
// Scripts and here-documents
// ---------------------------------------------------------------------------

/// A here-document operator ending a command line: `<<EOF`, `<<'EOF'`,
/// `<< "EOF"`, `<<-EOF`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Heredoc {
    /// Character column and byte offset of the `<<`.
    col: usize,
    byte: usize,
    delimiter: String,
    /// Any part of the delimiter quoted: the shell expands nothing in the body.
    quoted: bool,
}

/// The unquoted `<<` of a line and its delimiter, if the line has one.
fn find_heredoc(line: &str) -> R<Option<Heredoc>> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut k = 0;
    let mut word_start = true;
    while k < chars.len() {
        let (byte, c) = chars[k];
        match c {
            '\'' => {
                k += 1;
                while k < chars.len() && chars[k].1 != '\'' {
                    k += 1;
                }
            }
            '"' => {
                k += 1;
                while k < chars.len() && chars[k].1 != '"' {
                    if chars[k].1 == '\\' {
                        k += 1;
                    }
                    k += 1;
                }
            }
            '\\' => k += 1,
            '#' if word_start => return Ok(None),
            '<' if chars.get(k + 1).is_some_and(|x| x.1 == '<') => {
                return heredoc_operator(&chars, k, byte).map(Some);
            }
            _ => {}
        }
        word_start = c == ' ' || c == '\t';
        k += 1;
    }
    Ok(None)
}

/// Reads the operator at character `k` (the first `<` of `<<`).
fn heredoc_operator(chars: &[(usize, char)], k: usize, byte: usize) -> R<Heredoc> {
    let bad = |col: usize, what: &str| {
        perr(
            col,
            format!(
                "{what}: expected a here-document operator at the end of the line (`<<EOF`, \
                 `<<'EOF'`), its lines following"
            ),
        )
    };
    let mut i = k + 2;
    if chars.get(i).is_some_and(|x| x.1 == '<') {
        return Err(bad(k, "here-strings (<<<) are not supported"));
    }
    if chars.get(i).is_some_and(|x| x.1 == '-') {
        i += 1;
    }
    while chars.get(i).is_some_and(|x| x.1 == ' ' || x.1 == '\t') {
        i += 1;
    }
    let start = i;
    let mut delimiter = String::new();
    let mut quoted = false;
    while let Some(&(_, c)) = chars.get(i) {
        match c {
            ' ' | '\t' => break,
            '\'' | '"' => {
                quoted = true;
                i += 1;
                while let Some(&(_, d)) = chars.get(i) {
                    if d == c {
                        break;
                    }
                    delimiter.push(d);
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(bad(start, "unterminated quote in the delimiter"));
                }
            }
            '\\' => {
                quoted = true;
                i += 1;
                if let Some(&(_, d)) = chars.get(i) {
                    delimiter.push(d);
                }
            }
            '|' | '&' | ';' | '<' | '>' | '(' | ')' | '`' | '$' => {
                return Err(bad(i, &format!("unexpected \"{c}\" in the delimiter")));
            }
            _ => delimiter.push(c),
        }
        i += 1;
    }
    if delimiter.is_empty() {
        return Err(bad(k, "no delimiter after \"<<\""));
    }
    while chars.get(i).is_some_and(|x| x.1 == ' ' || x.1 == '\t') {
        i += 1;
    }
    if let Some(&(_, c)) = chars.get(i)
        && c != '#'
    {
        return Err(bad(i, &format!("unexpected \"{c}\" after the delimiter")));
    }
    Ok(Heredoc {
        col: k,
        byte,
        delimiter,
        quoted,
    })
}

/// One command of a script, as [`parse_script`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptCommand {
    /// Its first line (0-based).
    pub line: usize,
    /// How many lines it spans (a here-document's lines and terminator included).
    pub lines: usize,
    /// The text as a shell runs it: the command line trimmed, then a
    /// here-document's lines and its terminator, each trimmed.
    pub text: String,
    /// The command, or the line (0-based, in the script) and error.
    pub result: Result<Command, (usize, ParseError)>,
}

/// Splits a script into commands: one per line, except that a line ending
/// in a here-document operator (`iptables-restore <<EOF`) takes the lines
/// after it up to the terminator (a line holding only the delimiter; the
/// indentation of a scenario's script is ignored, on the terminator as on
/// the lines). Blank and comment lines come back as `Noop` commands.
pub fn parse_script(script: &str) -> Vec<ScriptCommand> {
    let lines: Vec<&str> = script
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let heredoc = match find_heredoc(line) {
            Ok(h) => h,
            Err(e) => {
                out.push(ScriptCommand {
                    line: i,
                    lines: 1,
                    text: line.trim().to_string(),
                    result: Err((i, e)),
                });
                i += 1;
                continue;
            }
        };
        let Some(h) = heredoc else {
            out.push(ScriptCommand {
                line: i,
                lines: 1,
                text: line.trim().to_string(),
                result: parse_simple(line, None).map_err(|e| (i, e)),
            });
            i += 1;
            continue;
        };
        let end = (i + 1..lines.len()).find(|&j| lines[j].trim() == h.delimiter);
        let body_end = end.unwrap_or(lines.len());
        let body: Vec<&str> = lines[i + 1..body_end].iter().map(|l| l.trim()).collect();
        let mut text = line.trim().to_string();
        for b in &body {
            text.push('\n');
            text.push_str(b);
        }
        text.push('\n');
        text.push_str(&h.delimiter);
        let result = match end {
            None => Err((
                i,
                perr(
                    h.col,
                    format!(
                        "here-document delimited by the end of the script: expected a line \
                         `{}` after its lines",
                        h.delimiter
                    ),
                ),
            )),
            Some(_) => parse_simple(line, Some(&h))
                .map_err(|e| (i, e))
                .and_then(|cmd| expand_check(&lines, i, body_end, &h).map(|()| cmd)),
        };
        let result = result.map(|mut cmd| {
            if let CommandKind::IptablesRestore { input, .. } = &mut cmd.kind {
                for b in &body {
                    input.push_str(b);
                    input.push('\n');
                }
            }
            cmd
        });
        out.push(ScriptCommand {
            line: i,
            lines: body_end + usize::from(end.is_some()) - i,
            text,
            result,
        });
        i = body_end + 1;
    }
    out
}

/// With an unquoted delimiter the shell would expand `$`, backquotes and
/// backslashes in the lines; the simulator does not, so it refuses them.
fn expand_check(
    lines: &[&str],
    from: usize,
    to: usize,
    h: &Heredoc,
) -> Result<(), (usize, ParseError)> {
    if h.quoted {
        return Ok(());
    }
    for (j, l) in lines.iter().enumerate().take(to).skip(from + 1) {
        if let Some(col) = l.chars().position(|c| matches!(c, '$' | '`' | '\\')) {
            let c = l.chars().nth(col).unwrap_or('$');
            return Err((
                j,
                perr(
                    col,
                    format!(
                        "unquoted here-document delimiter: the shell would expand \"{c}\" in its \
                         lines, which the simulator does not do: quote the delimiter \
                         (<<'{}')",
                        h.delimiter
                    ),
                ),
            ));
        }
    }
    Ok(())
}

/// `# ip link ...`: a root prompt pasted with the command, not a comment.
fn check_comment_prompt(line: &str) -> R<()> {
    let lead = line.chars().take_while(|c| *c == ' ' || *c == '\t').count();
    let rest: String = line.chars().skip(lead).collect();
    if let Some(after) = rest.strip_prefix("# ")
        && let Some(first) = after.split_whitespace().next()
        && is_program(first)
    {
        return Err(perr(
            lead,
            format!(
                "\"# {first} ...\" looks like a command after a root shell prompt: remove the \
                         \"# \" prompt (a comment must not start with a command name)"
            ),
        ));
    }
    Ok(())
}

/// Shell prompts pasted with the command (`$ `, `[root@host ~]# `,
/// `user@host:~$ `), checked on the raw line so that a pipeline after the
/// prompt still reports the prompt.
fn check_prompt(line: &str) -> R<()> {
    let col = line.chars().take_while(|c| c.is_whitespace()).count();
    let toks: Vec<&str> = line.split_whitespace().take(3).collect();
    let Some(first) = toks.first().copied() else {
        return Ok(());
    };
    let prompt_err = |p: &str| {
        Err(perr(
            col,
            format!("\"{p}\" looks like a shell prompt: remove it and paste only the command"),
        ))
    };
    if first == "$" || first == "%" {
        return prompt_err(first);
    }
    if first.starts_with('[')
        && let Some(k) = toks
            .iter()
            .position(|t| t.ends_with("]#") || t.ends_with("]$"))
    {
        return prompt_err(&toks[..=k].join(" "));
    }
    if (first.ends_with('#') || first.ends_with('$')) && first.contains('@') {
        return prompt_err(first);
    }
    Ok(())
}

fn parse_set(w: &[Word]) -> R<Command> {
    let noop = Command {
        netns: None,
        kind: CommandKind::Noop,
    };
    let bad = |x: &Word| {
        perr(
            x.col,
            format!(
                "set: unsupported argument \"{}\": expected a combination of -e, -u, -x and -o pipefail",
                x.text
            ),
        )
    };
    if w.len() == 1 {
        return Err(perr(
            w[0].col,
            "set: expected options (a combination of -e, -u, -x and -o pipefail)",
        ));
    }
    let mut i = 1;
    while i < w.len() {
        let x = &w[i];
        let t = x.s();
        let Some(flags) = t.strip_prefix('-').or_else(|| t.strip_prefix('+')) else {
            return Err(bad(x));
        };
        if flags.is_empty() {
            return Err(bad(x));
        }
        let mut wants_o = false;
        for (k, ch) in flags.chars().enumerate() {
            match ch {
                'e' | 'u' | 'x' => {}
                'o' if k + 1 == flags.chars().count() => wants_o = true,
                _ => return Err(bad(x)),
            }
        }
        if wants_o {
            i += 1;
            match w.get(i) {
                Some(o) if o.s() == "pipefail" => {}
                Some(o) => return Err(bad(o)),
                None => {
                    return Err(perr(
                        x.col,
                        format!("set: \"{t}\" must be followed by \"pipefail\""),
                    ));
                }
            }
        }
        i += 1;
    }
    Ok(noop)
}

/// Parses a command (after `sudo` or `ip netns exec NS`); `exec_ns` is the
/// namespace of an enclosing `ip netns exec`.
fn parse_command(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let prog = &w[0];
    match prog.s() {
        "ip" => parse_ip(w, exec_ns),
        "bridge" => parse_bridge(w, exec_ns),
        "arp" => parse_arp(w, exec_ns),
        "sysctl" => parse_sysctl(w, exec_ns),
        "modprobe" => parse_modprobe(w, exec_ns),
        "iptables" | "iptables-legacy" | "iptables-nft" => Ok(Command {
            netns: exec_ns,
            kind: CommandKind::Iptables {
                args: w[1..].iter().map(|x| x.text.to_string()).collect(),
                args_cols: w[1..].iter().map(|x| x.col).collect(),
            },
        }),
        "iptables-save" => parse_iptables_save(w, exec_ns),
        "iptables-restore" => parse_iptables_restore(w, exec_ns),
        "conntrack" => parse_conntrack(w, exec_ns),
        "ping" => parse_ping(w, exec_ns),
        "traceroute" => parse_traceroute(w, exec_ns),
        "tcpdump" => parse_tcpdump(w, exec_ns),
        "nc" => traffic::parse_nc(w, exec_ns),
        "iperf3" => traffic::parse_iperf3(w, exec_ns),
        "bird" => bird::parse_bird(w, exec_ns),
        "birdc" => bird::parse_birdc(w, exec_ns),
        "pkill" | "killall" => bird::parse_kill(w, exec_ns),
        other => Err(perr(
            prog.col,
            format!(
                "unknown command \"{other}\": expected one of {}",
                PROGRAMS.join(", ")
            ),
        )),
    }
}

// ---------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------

/// iproute2's `matches(arg, full)`: `arg` is a non-empty prefix of `full`.
fn matches(arg: &str, full: &str) -> bool {
    !arg.is_empty() && full.starts_with(arg)
}

/// First entry of an iproute2 keyword table that `t` selects: entries marked
/// `true` match by prefix (`matches`), the others only exactly (`strcmp`).
/// Returns the entry's value and full name.
fn lookup<T: Copy>(t: &str, table: &[(&'static str, bool, T)]) -> Option<(T, &'static str)> {
    table
        .iter()
        .find(|(name, prefix, _)| {
            if *prefix {
                matches(t, name)
            } else {
                t == *name
            }
        })
        .map(|(name, _, v)| (*v, *name))
}

/// strtoul(s, 0) as iproute2's get_u32/get_unsigned use it: `0x` hex, leading
/// `0` octal, else decimal; no sign, no blanks, no trailing characters.
fn strtoul0(s: &str) -> Option<u64> {
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

fn get_u32(s: &str) -> Option<u32> {
    strtoul0(s).and_then(|v| u32::try_from(v).ok())
}

fn get_u16(s: &str) -> Option<u16> {
    strtoul0(s).and_then(|v| u16::try_from(v).ok())
}

fn get_u8(s: &str) -> Option<u8> {
    strtoul0(s).and_then(|v| u8::try_from(v).ok())
}

/// iproute2's get_integer for an MTU: a non-negative int.
fn get_mtu(s: &str) -> Option<u32> {
    strtoul0(s)
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v <= i32::MAX as u32)
}

/// Plain decimal (what ping, tcpdump and friends take).
fn decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

enum AddrErr {
    Bad,
    /// A form iproute2/inet_aton accepts (`10/8`, `010.0.0.1`, `0x0a.0.0.1`)
    /// but the simulator does not.
    Abbreviated,
}

fn ipv4(s: &str) -> Result<Ipv4Addr, AddrErr> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(a);
    }
    let parts: Vec<&str> = s.split('.').collect();
    if (1..=4).contains(&parts.len()) && parts.iter().all(|p| strtoul0(p).is_some_and(|v| v <= 255))
    {
        Err(AddrErr::Abbreviated)
    } else {
        Err(AddrErr::Bad)
    }
}

fn abbreviated_msg(w: &Word) -> String {
    format!(
        "Error: \"{}\": abbreviated, octal or hex IPv4 forms are not supported by the simulator: \
         write four decimal octets (a.b.c.d)",
        w.text
    )
}

fn is_multicast(a: Ipv4Addr) -> bool {
    a.octets()[0] & 0xf0 == 0xe0
}

/// iproute2's check_ifname (the kernel's dev_valid_name, less the `:` rule).
fn valid_ifname(s: &str) -> bool {
    !s.is_empty() && s.len() < 16 && !s.chars().any(|c| c == '/' || c.is_whitespace())
}

/// check_altifname: like an ifname but up to 127 bytes.
fn valid_altifname(s: &str) -> bool {
    !s.is_empty() && s.len() < 128 && !s.chars().any(|c| c == '/' || c.is_whitespace())
}

/// `ip netns` names: no `/`, not `.` or `..`, not empty.
fn valid_netns_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && !s.contains('/') && s != "." && s != ".."
}

enum MacErr {
    Invalid,
    Len(usize),
}

/// ll_addr_a2n: colon-separated bytes of one or two hex digits.
fn mac_bytes(s: &str) -> Result<MacAddr, MacErr> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut out = [0u8; 6];
    for (k, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MacErr::Invalid);
        }
        if k < 6 {
            out[k] = u8::from_str_radix(p, 16).map_err(|_| MacErr::Invalid)?;
        }
    }
    if parts.len() != 6 {
        return Err(MacErr::Len(parts.len()));
    }
    Ok(MacAddr::from(out))
}

fn table_id(s: &str) -> Option<TableId> {
    match s {
        "main" => Some(TABLE_MAIN),
        "local" => Some(TABLE_LOCAL),
        "default" => Some(TABLE_DEFAULT),
        "unspec" => Some(0),
        _ => get_u32(s),
    }
}

fn scope_of(s: &str) -> Option<Result<Scope, ()>> {
    let named = match s {
        "global" => Some(Scope::Global),
        "site" => Some(Scope::Site),
        "link" => Some(Scope::Link),
        "host" => Some(Scope::Host),
        "nowhere" => Some(Scope::Nowhere),
        _ => None,
    };
    if let Some(sc) = named {
        return Some(Ok(sc));
    }
    let n = get_u8(s)?;
    Some(
        [
            Scope::Global,
            Scope::Site,
            Scope::Link,
            Scope::Host,
            Scope::Nowhere,
        ]
        .into_iter()
        .find(|sc| sc.value() == n)
        .ok_or(()),
    )
}

fn proto_of(s: &str) -> Option<u8> {
    const PROTOS: &[(&str, u8)] = &[
        ("unspec", 0),
        ("redirect", 1),
        ("kernel", 2),
        ("boot", 3),
        ("static", 4),
        ("gated", 8),
        ("ra", 9),
        ("mrt", 10),
        ("zebra", 11),
        ("bird", 12),
        ("dnrouted", 13),
        ("xorp", 14),
        ("ntk", 15),
        ("dhcp", 16),
        ("keepalived", 18),
        ("babel", 42),
        ("openr", 99),
        ("bgp", 186),
        ("isis", 187),
        ("ospf", 188),
        ("rip", 189),
        ("eigrp", 192),
    ];
    PROTOS
        .iter()
        .find(|(n, _)| *n == s)
        .map(|(_, v)| *v)
        .or_else(|| get_u8(s))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rtn {
    Known(RouteType),
    Unsupported,
}

/// rtnl_rtntype_a2n (route and rule types).
fn rtntype(s: &str) -> Option<Rtn> {
    use RouteType as T;
    let r = if s == "local" {
        Rtn::Known(T::Local)
    } else if s == "nat" {
        Rtn::Unsupported
    } else if matches(s, "broadcast") || s == "brd" {
        Rtn::Known(T::Broadcast)
    } else if matches(s, "anycast") || matches(s, "multicast") {
        Rtn::Unsupported
    } else if matches(s, "prohibit") {
        Rtn::Known(T::Prohibit)
    } else if matches(s, "unreachable") {
        Rtn::Known(T::Unreachable)
    } else if matches(s, "blackhole") {
        Rtn::Known(T::Blackhole)
    } else if matches(s, "xresolve") {
        Rtn::Unsupported
    } else if matches(s, "unicast") {
        Rtn::Known(T::Unicast)
    } else if s == "throw" {
        Rtn::Unsupported
    } else {
        match strtoul0(s)? {
            1 => Rtn::Known(T::Unicast),
            2 => Rtn::Known(T::Local),
            3 => Rtn::Known(T::Broadcast),
            6 => Rtn::Known(T::Blackhole),
            7 => Rtn::Known(T::Unreachable),
            8 => Rtn::Known(T::Prohibit),
            0..=255 => Rtn::Unsupported,
            _ => return None,
        }
    };
    Some(r)
}

/// A cursor over the words of one tool invocation, with the context used to
/// prefix its error messages.
struct Cur<'w, 'a> {
    w: &'w [Word<'a>],
    i: usize,
    ctx: &'static str,
    /// The address family is known to be inet (`-4`, or an address was already
    /// parsed): iproute2 then says "inet prefix" rather than "any valid prefix".
    inet: bool,
}

impl<'w, 'a> Cur<'w, 'a> {
    fn new(w: &'w [Word<'a>], i: usize, ctx: &'static str, inet: bool) -> Self {
        Cur { w, i, ctx, inet }
    }
    fn peek(&self) -> Option<&'w Word<'a>> {
        self.w.get(self.i)
    }
    fn next(&mut self) -> Option<&'w Word<'a>> {
        let r = self.w.get(self.i);
        if r.is_some() {
            self.i += 1;
        }
        r
    }
    /// NEXT_ARG(): the value of keyword `kw`.
    fn need(&mut self, kw: &Word, what: &str) -> R<&'w Word<'a>> {
        match self.w.get(self.i) {
            Some(x) => {
                self.i += 1;
                Ok(x)
            }
            None => Err(self.e(
                kw.col,
                format!(
                    "Command line is not complete: \"{}\" must be followed by {what}",
                    kw.text
                ),
            )),
        }
    }
    fn e(&self, col: usize, msg: impl Display) -> ParseError {
        perr(col, format!("{}: {msg}", self.ctx))
    }
    fn garbage(&self, key: &str, w: &Word) -> ParseError {
        self.e(
            w.col,
            format!(
                "Error: either \"{key}\" is duplicate, or \"{}\" is a garbage.",
                w.text
            ),
        )
    }
    fn invarg(&self, what: &str, w: &Word) -> ParseError {
        self.e(
            w.col,
            format!("Error: argument \"{}\" is wrong: {what}", w.text),
        )
    }
    fn duparg(&self, key: &str, w: &Word) -> ParseError {
        self.e(
            w.col,
            format!(
                "Error: duplicate \"{key}\": \"{}\" is the second value.",
                w.text
            ),
        )
    }
    fn unsupported(&self, w: &Word, expected: &str) -> ParseError {
        self.e(
            w.col,
            format!(
                "\"{}\" is valid for the real tool but not supported by the simulator; expected {expected}",
                w.text
            ),
        )
    }
    fn fam(&self) -> &'static str {
        if self.inet { "inet" } else { "any valid" }
    }
    /// get_addr: an IPv4 address.
    fn addr(&mut self, w: &Word) -> R<Ipv4Addr> {
        match ipv4(w.s()) {
            Ok(a) => {
                self.inet = true;
                Ok(a)
            }
            Err(AddrErr::Abbreviated) => Err(self.e(w.col, abbreviated_msg(w))),
            Err(AddrErr::Bad) => Err(self.e(
                w.col,
                format!(
                    "Error: {} address is expected rather than \"{}\".",
                    self.fam(),
                    w.text
                ),
            )),
        }
    }
    /// get_prefix: `A.B.C.D[/LEN]`, or `default`/`all`/`any` (0.0.0.0/0).
    fn prefix(&mut self, w: &Word) -> R<Ipv4Net> {
        let s = w.s();
        if matches!(s, "default" | "all" | "any") {
            return Ok(Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                len: 0,
            });
        }
        let bad = |c: &Self| {
            c.e(
                w.col,
                format!(
                    "Error: {} prefix is expected rather than \"{}\".",
                    c.fam(),
                    w.text
                ),
            )
        };
        let (a, l) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr = match ipv4(a) {
            Ok(a) => a,
            Err(AddrErr::Abbreviated) => return Err(self.e(w.col, abbreviated_msg(w))),
            Err(AddrErr::Bad) => return Err(bad(self)),
        };
        let len = match l {
            None => 32,
            Some(l) => match decimal(l) {
                Some(n) if n <= 32 && (l == "0" || !l.starts_with('0')) => n as u8,
                _ if strtoul0(l).is_some_and(|n| n <= 32) || ipv4(l).is_ok() => {
                    return Err(self.e(
                        w.col,
                        format!(
                            "Error: \"{}\": write the prefix length as a decimal number 0..32 \
                             (netmask, octal and hex forms are not supported by the simulator)",
                            w.text
                        ),
                    ));
                }
                _ => return Err(bad(self)),
            },
        };
        self.inet = true;
        Ok(Ipv4Net { addr, len })
    }
    fn lladdr(&self, w: &Word) -> R<MacAddr> {
        match mac_bytes(w.s()) {
            Ok(m) => Ok(m),
            Err(MacErr::Invalid) => Err(self.e(
                w.col,
                format!(
                    "\"{}\" is invalid lladdr: expected xx:xx:xx:xx:xx:xx",
                    w.text
                ),
            )),
            Err(MacErr::Len(n)) => Err(self.e(
                w.col,
                format!(
                    "\"{}\": Invalid address length {n} - must be 6 bytes",
                    w.text
                ),
            )),
        }
    }
    fn ifname(&self, w: &'w Word<'a>, what: &str) -> R<String> {
        if valid_ifname(w.s()) {
            Ok(w.text.to_string())
        } else {
            Err(self.invarg(&format!("\"{what}\" not a valid ifname"), w))
        }
    }
    fn no_more(&mut self, expected: &str) -> R<()> {
        match self.next() {
            None => Ok(()),
            Some(x) => Err(self.e(
                x.col,
                format!("unexpected argument \"{}\": expected {expected}", x.text),
            )),
        }
    }
}

fn set_once<T>(c: &Cur, slot: &mut Option<T>, v: T, key: &str, w: &Word) -> R<()> {
    if slot.is_some() {
        return Err(c.duparg(key, w));
    }
    *slot = Some(v);
    Ok(())
}

// ---------------------------------------------------------------------------
// ip
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IpObj {
    Addr,
    Route,
    Rule,
    Neigh,
    Link,
    Tunnel,
    Netns,
    Other,
}

/// ip.c's object table, in order (the first match wins).
const IP_OBJECTS: &[(&str, bool, IpObj)] = &[
    ("address", true, IpObj::Addr),
    ("addrlabel", true, IpObj::Other),
    ("maddress", true, IpObj::Other),
    ("route", true, IpObj::Route),
    ("rule", true, IpObj::Rule),
    ("neighbor", true, IpObj::Neigh),
    ("neighbour", true, IpObj::Neigh),
    ("ntable", true, IpObj::Other),
    ("ntbl", true, IpObj::Other),
    ("link", true, IpObj::Link),
    ("l2tp", true, IpObj::Other),
    ("fou", true, IpObj::Other),
    ("ila", true, IpObj::Other),
    ("macsec", true, IpObj::Other),
    ("tunnel", true, IpObj::Tunnel),
    ("tunl", true, IpObj::Tunnel),
    ("tuntap", true, IpObj::Other),
    ("tap", true, IpObj::Other),
    ("token", true, IpObj::Other),
    ("tcpmetrics", true, IpObj::Other),
    ("tcp_metrics", true, IpObj::Other),
    ("monitor", true, IpObj::Other),
    ("xfrm", true, IpObj::Other),
    ("mroute", true, IpObj::Other),
    ("mrule", true, IpObj::Other),
    ("netns", true, IpObj::Netns),
    ("netconf", true, IpObj::Other),
    ("vrf", true, IpObj::Other),
    ("sr", true, IpObj::Other),
    ("nexthop", true, IpObj::Other),
    ("mptcp", true, IpObj::Other),
    ("ioam", true, IpObj::Other),
    ("help", true, IpObj::Other),
    ("stats", true, IpObj::Other),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IpOpt {
    Netns,
    Inet,
    Ignored,
    Other,
}

/// ip.c's global options, in order (after one leading `-` of `--opt` is dropped).
const IP_OPTIONS: &[(&str, bool, IpOpt)] = &[
    ("-loops", true, IpOpt::Other),
    ("-family", true, IpOpt::Other),
    ("-4", false, IpOpt::Inet),
    ("-6", false, IpOpt::Other),
    ("-0", false, IpOpt::Other),
    ("-M", false, IpOpt::Other),
    ("-B", false, IpOpt::Other),
    ("-human", true, IpOpt::Other),
    ("-human-readable", true, IpOpt::Other),
    ("-iec", true, IpOpt::Other),
    ("-stats", true, IpOpt::Ignored),
    ("-statistics", true, IpOpt::Ignored),
    ("-details", true, IpOpt::Ignored),
    ("-resolve", true, IpOpt::Other),
    ("-oneline", true, IpOpt::Other),
    ("-timestamp", true, IpOpt::Other),
    ("-tshort", true, IpOpt::Other),
    ("-Version", true, IpOpt::Other),
    ("-force", true, IpOpt::Other),
    ("-batch", true, IpOpt::Other),
    ("-brief", true, IpOpt::Other),
    ("-json", true, IpOpt::Other),
    ("-pretty", true, IpOpt::Other),
    ("-rcvbuf", true, IpOpt::Other),
    ("-color", true, IpOpt::Other),
    ("-help", true, IpOpt::Other),
    ("-netns", true, IpOpt::Netns),
    ("-Numeric", true, IpOpt::Other),
    ("-all", true, IpOpt::Other),
    ("-echo", true, IpOpt::Other),
];

/// Parses `-n NS`-style global options of `ip`/`bridge`; returns the index of
/// the object word, the namespace and whether `-4` was given.
fn global_opts(
    w: &[Word],
    prog: &str,
    table: &[(&'static str, bool, IpOpt)],
    exec_ns: &Option<String>,
) -> R<(usize, Option<String>, bool)> {
    let mut i = 1;
    let mut netns: Option<String> = None;
    let mut inet = false;
    while let Some(o) = w.get(i) {
        let t = o.s();
        if !t.starts_with('-') {
            break;
        }
        if t == "--" {
            i += 1;
            break;
        }
        let opt = if t.starts_with("--") { &t[1..] } else { t };
        match lookup(opt, table) {
            Some((IpOpt::Netns, _)) => {
                let Some(v) = w.get(i + 1) else {
                    return Err(perr(
                        o.col,
                        format!(
                            "{prog}: Command line is not complete: \"{t}\" must be followed by a network namespace name"
                        ),
                    ));
                };
                if exec_ns.is_some() {
                    return Err(perr(
                        o.col,
                        format!(
                            "{prog}: \"{t}\" inside \"ip netns exec\": nested namespaces are not supported"
                        ),
                    ));
                }
                if netns.is_some() {
                    return Err(perr(
                        o.col,
                        format!(
                            "{prog}: duplicate \"{t}\": \"{}\" is the second value",
                            v.text
                        ),
                    ));
                }
                if !valid_netns_name(v.s()) {
                    return Err(perr(
                        v.col,
                        format!("{prog}: Invalid netns name \"{}\"", v.text),
                    ));
                }
                netns = Some(v.text.to_string());
                i += 2;
                continue;
            }
            Some((IpOpt::Inet, _)) => inet = true,
            Some((IpOpt::Ignored, _)) => {}
            Some((IpOpt::Other, full)) => {
                return Err(perr(
                    o.col,
                    format!(
                        "{prog}: option \"{t}\" ({full}) is valid for the real tool but not supported \
                         by the simulator; expected -n NETNS, -4, -d or -s"
                    ),
                ));
            }
            None => {
                return Err(perr(
                    o.col,
                    format!("{prog}: Option \"{t}\" is unknown, try \"{prog} -help\"."),
                ));
            }
        }
        i += 1;
    }
    Ok((i, netns, inet))
}

fn parse_ip(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let (i, opt_ns, inet) = global_opts(w, "ip", IP_OPTIONS, &exec_ns)?;
    let Some(objw) = w.get(i) else {
        return Err(perr(
            w[i - 1].col,
            "ip: expected an object after \"ip\" (link, address, route, rule, neigh, netns or tunnel)",
        ));
    };
    let netns = exec_ns.or(opt_ns);
    let obj = match lookup(objw.s(), IP_OBJECTS) {
        None => {
            return Err(perr(
                objw.col,
                format!("ip: Object \"{}\" is unknown, try \"ip help\".", objw.text),
            ));
        }
        Some((IpObj::Other, full)) => {
            return Err(perr(
                objw.col,
                format!(
                    "ip: object \"{}\" ({full}) is valid for the real tool but not supported by the \
                     simulator; expected link, address, route, rule, neigh, netns or tunnel",
                    objw.text
                ),
            ));
        }
        Some((o, _)) => o,
    };
    let kind = match obj {
        IpObj::Link => ip_link(&mut Cur::new(w, i + 1, "ip link", inet))?,
        IpObj::Addr => ip_addr(&mut Cur::new(w, i + 1, "ip address", inet))?,
        IpObj::Route => ip_route(&mut Cur::new(w, i + 1, "ip route", inet))?,
        IpObj::Rule => ip_rule(&mut Cur::new(w, i + 1, "ip rule", inet))?,
        IpObj::Neigh => ip_neigh(&mut Cur::new(w, i + 1, "ip neigh", inet))?,
        IpObj::Tunnel => ip_tunnel(&mut Cur::new(w, i + 1, "ip tunnel", inet))?,
        IpObj::Netns => return ip_netns(&mut Cur::new(w, i + 1, "ip netns", inet), netns),
        IpObj::Other => unreachable!("handled above"),
    };
    Ok(Command { netns, kind })
}

fn unknown_verb(c: &Cur, v: &Word, help: &str) -> ParseError {
    c.e(
        v.col,
        format!("Command \"{}\" is unknown, try \"{help}\".", v.text),
    )
}

fn unsupported_verb(c: &Cur, v: &Word, full: &str, expected: &str) -> ParseError {
    c.e(
        v.col,
        format!(
            "\"{}\" ({full}) is valid for the real tool but not supported by the simulator; expected {expected}",
            v.text
        ),
    )
}

// --- ip link ---------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LinkVerb {
    Add,
    Set,
    Replace,
    Delete,
    Show,
    Other,
}

const LINK_VERBS: &[(&str, bool, LinkVerb)] = &[
    ("add", true, LinkVerb::Add),
    ("set", true, LinkVerb::Set),
    ("change", true, LinkVerb::Set),
    ("replace", true, LinkVerb::Replace),
    ("delete", true, LinkVerb::Delete),
    ("show", true, LinkVerb::Show),
    ("lst", true, LinkVerb::Show),
    ("list", true, LinkVerb::Show),
    ("xstats", true, LinkVerb::Other),
    ("afstats", true, LinkVerb::Other),
    ("property", true, LinkVerb::Other),
    ("help", true, LinkVerb::Other),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LinkMode {
    Add,
    Peer,
    Set,
    Del,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lk {
    Up,
    Down,
    Name,
    Address,
    Mtu,
    Netns,
    Master,
    Nomaster,
    Type,
    Other,
}

/// iplink_parse's keywords, in order.
const IPLINK_KW: &[(&str, bool, Lk)] = &[
    ("up", false, Lk::Up),
    ("down", false, Lk::Down),
    ("name", false, Lk::Name),
    ("index", false, Lk::Other),
    ("link", true, Lk::Other),
    ("address", true, Lk::Address),
    ("broadcast", true, Lk::Other),
    ("brd", false, Lk::Other),
    ("txqueuelen", true, Lk::Other),
    ("qlen", false, Lk::Other),
    ("txqlen", true, Lk::Other),
    ("mtu", false, Lk::Mtu),
    ("xdpgeneric", false, Lk::Other),
    ("xdpdrv", false, Lk::Other),
    ("xdpoffload", false, Lk::Other),
    ("xdp", false, Lk::Other),
    ("netns", false, Lk::Netns),
    ("multicast", false, Lk::Other),
    ("allmulticast", false, Lk::Other),
    ("promisc", false, Lk::Other),
    ("trailers", false, Lk::Other),
    ("arp", false, Lk::Other),
    ("carrier", false, Lk::Other),
    ("vf", false, Lk::Other),
    ("master", false, Lk::Master),
    ("vrf", false, Lk::Other),
    ("nomaster", false, Lk::Nomaster),
    ("dynamic", true, Lk::Other),
    ("type", true, Lk::Type),
    ("alias", true, Lk::Other),
    ("group", false, Lk::Other),
    ("mode", false, Lk::Other),
    ("state", false, Lk::Other),
    ("numtxqueues", false, Lk::Other),
    ("numrxqueues", false, Lk::Other),
    ("addrgenmode", false, Lk::Other),
    ("link-netns", false, Lk::Other),
    ("link-netnsid", false, Lk::Other),
    ("protodown", false, Lk::Other),
    ("protodown_reason", false, Lk::Other),
    ("gso_max_size", false, Lk::Other),
    ("gso_max_segs", false, Lk::Other),
    ("gro_max_size", false, Lk::Other),
    ("parentdev", false, Lk::Other),
];

#[derive(Default)]
struct LinkArgs<'w, 'a> {
    dev: Option<&'w Word<'a>>,
    /// `dev` was set by `name` (iproute2's `dev == name` pointer test).
    dev_is_name: bool,
    name: Option<&'w Word<'a>>,
    up: Option<bool>,
    mtu: Option<u32>,
    address: Option<MacAddr>,
    master: Option<Option<String>>,
    netns: Option<String>,
    kind: Option<&'w Word<'a>>,
}

fn link_mode_expected(mode: LinkMode) -> &'static str {
    match mode {
        LinkMode::Add => "[name] NAME [mtu N] [address MAC] type KIND ...",
        LinkMode::Peer => "peer [name] NAME [mtu N] [address MAC] [netns NS]",
        LinkMode::Set => {
            "[dev] DEV followed by up, down, mtu N, address MAC, master BR, nomaster, netns NS or name NEW"
        }
        LinkMode::Del => "[dev] DEV",
    }
}

/// iplink_parse: the generic link options (up to and including `type KIND`).
fn iplink_parse<'w, 'a>(c: &mut Cur<'w, 'a>, mode: LinkMode) -> R<LinkArgs<'w, 'a>> {
    use LinkMode as M;
    let mut a = LinkArgs::default();
    while let Some(w) = c.next() {
        let t = w.s();
        match lookup(t, IPLINK_KW).map(|x| x.0) {
            Some(k @ (Lk::Up | Lk::Down)) if mode == M::Set => a.up = Some(k == Lk::Up),
            Some(Lk::Name) if mode != M::Del => {
                let v = c.need(w, "a device name")?;
                if a.name.is_some() {
                    return Err(c.duparg("name", v));
                }
                c.ifname(v, "name")?;
                a.name = Some(v);
                if a.dev.is_none() {
                    a.dev = Some(v);
                    a.dev_is_name = true;
                }
            }
            Some(Lk::Address) if mode != M::Del => {
                let v = c.need(w, "a MAC address (xx:xx:xx:xx:xx:xx)")?;
                let m = c.lladdr(v)?;
                set_once(c, &mut a.address, m, "address", v)?;
            }
            Some(Lk::Mtu) if mode != M::Del => {
                let v = c.need(w, "a number")?;
                let Some(m) = get_mtu(v.s()) else {
                    return Err(c.invarg("Invalid \"mtu\" value", v));
                };
                set_once(c, &mut a.mtu, m, "mtu", v)?;
            }
            Some(Lk::Netns) if matches!(mode, M::Set | M::Peer) => {
                let v = c.need(w, "a network namespace name")?;
                if !valid_netns_name(v.s()) {
                    return Err(c.invarg("Invalid \"netns\" value", v));
                }
                set_once(c, &mut a.netns, v.text.to_string(), "netns", v)?;
            }
            Some(Lk::Master) if mode == M::Set => {
                let v = c.need(w, "a bridge name")?;
                let name = c.ifname(v, "master")?;
                set_once(c, &mut a.master, Some(name), "master", v)?;
            }
            Some(Lk::Nomaster) if mode == M::Set => set_once(c, &mut a.master, None, "master", w)?,
            Some(Lk::Type) if mode == M::Add => {
                a.kind = Some(c.need(w, "a link type (veth, bridge, dummy, vxlan or ipip)")?);
                break;
            }
            Some(Lk::Type) if mode == M::Peer => {
                let v = c.need(w, "a link type")?;
                return Err(c.duparg("type", v));
            }
            Some(_) => return Err(c.unsupported(w, link_mode_expected(mode))),
            None => {
                let v = if t == "dev" {
                    c.need(w, "a device name")?
                } else if matches(t, "help") {
                    return Err(c.unsupported(w, link_mode_expected(mode)));
                } else {
                    w
                };
                if a.dev.is_some() && !a.dev_is_name {
                    return Err(c.garbage("dev", v));
                }
                if !valid_altifname(v.s()) {
                    return Err(c.invarg("\"dev\" not a valid ifname", v));
                }
                a.dev = Some(v);
                a.dev_is_name = false;
            }
        }
    }
    Ok(a)
}

/// The name of a device being created (`name N` or a bare `N`, not both).
fn created_name(c: &Cur, a: &LinkArgs, at: &Word, what: &str) -> R<String> {
    if let (Some(_), Some(d)) = (a.name, a.dev)
        && !a.dev_is_name
    {
        return Err(c.e(
            d.col,
            "both \"name\" and \"dev\" cannot be used when creating devices.",
        ));
    }
    match a.dev {
        Some(d) => Ok(d.text.to_string()),
        None => Err(c.e(
            at.col,
            format!("{what}: expected a device name (the simulator does not invent names as the kernel does)"),
        )),
    }
}

fn ip_link(c: &mut Cur) -> R<CommandKind> {
    let Some(v) = c.next() else {
        return Ok(CommandKind::Link(LinkCmd::Show { dev: None }));
    };
    let verb = match lookup(v.s(), LINK_VERBS) {
        None => return Err(unknown_verb(c, v, "ip link help")),
        Some((LinkVerb::Replace | LinkVerb::Other, full)) => {
            return Err(unsupported_verb(c, v, full, "add, set, delete or show"));
        }
        Some((verb, _)) => verb,
    };
    let cmd = match verb {
        LinkVerb::Add => link_add(c, v)?,
        LinkVerb::Set => {
            let a = iplink_parse(c, LinkMode::Set)?;
            let Some(dev) = a.dev else {
                return Err(c.e(
                    v.col,
                    "Not enough information: \"dev\" argument is required.",
                ));
            };
            LinkCmd::Set(LinkSet {
                dev: dev.text.to_string(),
                up: a.up,
                mtu: a.mtu,
                address: a.address,
                master: a.master,
                netns: a.netns,
                name: if a.dev_is_name {
                    None
                } else {
                    a.name.map(|n| n.text.to_string())
                },
            })
        }
        LinkVerb::Delete => {
            let a = iplink_parse(c, LinkMode::Del)?;
            let Some(dev) = a.dev else {
                return Err(c.e(
                    v.col,
                    "Not enough information: \"dev\" argument is required.",
                ));
            };
            LinkCmd::Del {
                dev: dev.text.to_string(),
            }
        }
        LinkVerb::Show => LinkCmd::Show {
            dev: show_dev(c, LINK_SHOW_KW)?,
        },
        LinkVerb::Replace | LinkVerb::Other => unreachable!("handled above"),
    };
    Ok(CommandKind::Link(cmd))
}

/// Known selectors of `ip link show` / `ip addr show|flush` (ipaddr_list_flush_or_save).
const LINK_SHOW_KW: &[&str] = &[
    "to",
    "scope",
    "up",
    "label",
    "master",
    "vrf",
    "type",
    "nomaster",
    "dynamic",
    "permanent",
    "tentative",
    "-tentative",
    "deprecated",
    "-deprecated",
    "home",
    "-home",
    "nodad",
    "-nodad",
    "mngtmpaddr",
    "-mngtmpaddr",
    "noprefixroute",
    "-noprefixroute",
    "autojoin",
    "-autojoin",
    "secondary",
    "temporary",
    "-secondary",
    "-temporary",
    "primary",
    "-primary",
];

/// `[dev] DEV` of a show/flush command.
fn show_dev(c: &mut Cur, known: &[&str]) -> R<Option<String>> {
    let mut dev: Option<String> = None;
    while let Some(w) = c.next() {
        let t = w.s();
        if known.contains(&t) || (t != "dev" && matches(t, "help")) {
            return Err(c.unsupported(w, "[dev] DEV"));
        }
        let v = if t == "dev" {
            c.need(w, "a device name")?
        } else {
            w
        };
        if dev.is_some() {
            return Err(c.garbage("dev", v));
        }
        dev = Some(v.text.to_string());
    }
    Ok(dev)
}

const KNOWN_LINK_KINDS: &[&str] = &[
    "vlan",
    "macvlan",
    "macvtap",
    "ipvlan",
    "ipvtap",
    "gre",
    "gretap",
    "ip6gre",
    "ip6gretap",
    "erspan",
    "ip6erspan",
    "geneve",
    "bond",
    "team",
    "vrf",
    "sit",
    "ip6tnl",
    "vti",
    "vti6",
    "ifb",
    "nlmon",
    "wireguard",
    "macsec",
    "bareudp",
    "vxcan",
    "can",
    "xfrm",
    "hsr",
    "netdevsim",
    "amt",
    "gtp",
    "virt_wifi",
    "rmnet",
    "lowpan",
    "ipoib",
    "bridge_slave",
    "bond_slave",
];

const BRIDGE_OPTS: &[&str] = &[
    "fdb_flush",
    "forward_delay",
    "hello_time",
    "max_age",
    "ageing_time",
    "stp_state",
    "priority",
    "group_fwd_mask",
    "group_address",
    "no_linklocal_learn",
    "vlan_filtering",
    "vlan_protocol",
    "vlan_default_pvid",
    "vlan_stats_enabled",
    "vlan_stats_per_port",
    "mcast_snooping",
    "mcast_vlan_snooping",
    "mcast_router",
    "mcast_query_use_ifaddr",
    "mcast_querier",
    "mcast_hash_elasticity",
    "mcast_hash_max",
    "mcast_last_member_count",
    "mcast_startup_query_count",
    "mcast_last_member_interval",
    "mcast_membership_interval",
    "mcast_querier_interval",
    "mcast_query_interval",
    "mcast_query_response_interval",
    "mcast_startup_query_interval",
    "mcast_stats_enabled",
    "mcast_igmp_version",
    "mcast_mld_version",
    "nf_call_iptables",
    "nf_call_ip6tables",
    "nf_call_arptables",
];

fn link_add(c: &mut Cur, verb: &Word) -> R<LinkCmd> {
    let a = iplink_parse(c, LinkMode::Add)?;
    let Some(kind_w) = a.kind else {
        return Err(c.e(
            verb.col,
            "Not enough information: \"type\" argument is required",
        ));
    };
    let name = created_name(c, &a, verb, "ip link add")?;
    let kind = match kind_w.s() {
        "veth" => veth_opts(c, kind_w)?,
        "bridge" => {
            if let Some(x) = c.next() {
                return Err(if BRIDGE_OPTS.contains(&x.s()) {
                    c.unsupported(x, "nothing after \"type bridge\"")
                } else {
                    c.e(
                        x.col,
                        format!(
                            "bridge: unknown command \"{}\"?: expected nothing after \"type bridge\"",
                            x.text
                        ),
                    )
                });
            }
            LinkKind::Bridge
        }
        "dummy" => {
            if let Some(x) = c.next() {
                return Err(c.e(
                    x.col,
                    format!(
                        "Garbage instead of arguments \"{} ...\". Try \"ip link help\". (expected nothing after \"type dummy\")",
                        x.text
                    ),
                ));
            }
            LinkKind::Dummy
        }
        "vxlan" => LinkKind::Vxlan(vxlan_opts(c)?),
        "ipip" => LinkKind::Ipip(iptnl_opts(c)?),
        k if KNOWN_LINK_KINDS.contains(&k) => {
            return Err(c.unsupported(kind_w, "a link type of veth, bridge, dummy, vxlan or ipip"));
        }
        _ => {
            return Err(c.e(
                kind_w.col,
                format!(
                    "Error: Unknown device type. (\"{}\": expected veth, bridge, dummy, vxlan or ipip)",
                    kind_w.text
                ),
            ));
        }
    };
    Ok(LinkCmd::Add {
        name,
        kind,
        mtu: a.mtu,
        address: a.address,
    })
}

fn veth_opts(c: &mut Cur, kind_w: &Word) -> R<LinkKind> {
    let Some(p) = c.next() else {
        return Err(c.e(
            kind_w.col,
            "type veth: expected \"peer [name] NAME\" (the simulator does not invent a peer name)",
        ));
    };
    if p.s() != "peer" {
        return Err(c.e(
            p.col,
            format!(
                "Usage: ip link <options> type veth [peer <options>]: expected \"peer\" rather than \"{}\" \
                 (options of the first device go before \"type\")",
                p.text
            ),
        ));
    }
    let pa = iplink_parse(c, LinkMode::Peer)?;
    let peer = created_name(c, &pa, p, "peer")?;
    Ok(LinkKind::Veth {
        peer,
        peer_mtu: pa.mtu,
        peer_address: pa.address,
        peer_netns: pa.netns,
    })
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Vx {
    Id,
    Group,
    Remote,
    Local,
    Dev,
    Ttl,
    Srcport,
    Dstport,
    Learning(bool),
    Proxy(bool),
    L2miss(bool),
    L3miss(bool),
    Help,
    Other,
}

/// vxlan_parse_opt's keywords, in order (all by prefix).
const VXLAN_KW: &[(&str, bool, Vx)] = &[
    ("id", true, Vx::Id),
    ("vni", true, Vx::Id),
    ("group", true, Vx::Group),
    ("remote", true, Vx::Remote),
    ("local", true, Vx::Local),
    ("dev", true, Vx::Dev),
    ("ttl", true, Vx::Ttl),
    ("hoplimit", true, Vx::Ttl),
    ("tos", true, Vx::Other),
    ("dsfield", true, Vx::Other),
    ("df", true, Vx::Other),
    ("label", true, Vx::Other),
    ("flowlabel", true, Vx::Other),
    ("ageing", true, Vx::Other),
    ("maxaddress", true, Vx::Other),
    ("port", true, Vx::Srcport),
    ("srcport", true, Vx::Srcport),
    ("dstport", true, Vx::Dstport),
    ("nolearning", true, Vx::Learning(false)),
    ("learning", true, Vx::Learning(true)),
    ("noproxy", true, Vx::Proxy(false)),
    ("proxy", true, Vx::Proxy(true)),
    ("norsc", true, Vx::Other),
    ("rsc", true, Vx::Other),
    ("nol2miss", true, Vx::L2miss(false)),
    ("l2miss", true, Vx::L2miss(true)),
    ("nol3miss", true, Vx::L3miss(false)),
    ("l3miss", true, Vx::L3miss(true)),
    ("udpcsum", true, Vx::Other),
    ("noudpcsum", true, Vx::Other),
    ("udp6zerocsumtx", true, Vx::Other),
    ("noudp6zerocsumtx", true, Vx::Other),
    ("udp6zerocsumrx", true, Vx::Other),
    ("noudp6zerocsumrx", true, Vx::Other),
    ("remcsumtx", true, Vx::Other),
    ("noremcsumtx", true, Vx::Other),
    ("remcsumrx", true, Vx::Other),
    ("noremcsumrx", true, Vx::Other),
    ("external", true, Vx::Other),
    ("noexternal", true, Vx::Other),
    ("gbp", true, Vx::Other),
    ("gpe", true, Vx::Other),
    ("vnifilter", true, Vx::Other),
    ("novnifilter", true, Vx::Other),
    ("help", true, Vx::Help),
];

const VXLAN_EXPECTED: &str = "vxlan options id|vni N, dstport P, local A, remote A, group A, dev D, \
     ttl N, srcport MIN MAX, [no]learning, [no]proxy, [no]l2miss, [no]l3miss";

fn vxlan_opts(c: &mut Cur) -> R<VxlanArgs> {
    let mut v = VxlanArgs::default();
    let mut seen_ttl = false;
    let mut seen_group = false;
    let mut seen = [false; 4];
    while let Some(w) = c.next() {
        let Some((k, _)) = lookup(w.s(), VXLAN_KW) else {
            return Err(c.e(
                w.col,
                format!(
                    "vxlan: unknown command \"{}\"?: expected {VXLAN_EXPECTED}",
                    w.text
                ),
            ));
        };
        match k {
            Vx::Id => {
                let x = c.need(w, "a VNI (0-16777215)")?;
                let Some(n) = get_u32(x.s()).filter(|n| *n < 1 << 24) else {
                    return Err(c.invarg("invalid id", x));
                };
                set_once(c, &mut v.vni, n, "id", x)?;
            }
            Vx::Group | Vx::Remote => {
                let key = if k == Vx::Group { "group" } else { "remote" };
                let x = c.need(w, "an IPv4 address")?;
                let a = c.addr(x)?;
                if seen_group {
                    return Err(c.duparg(key, x));
                }
                seen_group = true;
                if k == Vx::Group {
                    if !is_multicast(a) {
                        return Err(c.invarg("invalid group address", x));
                    }
                    v.group = Some(a);
                } else {
                    if is_multicast(a) {
                        return Err(c.invarg("invalid remote address", x));
                    }
                    v.remote = Some(a);
                }
            }
            Vx::Local => {
                let x = c.need(w, "an IPv4 address")?;
                let a = c.addr(x)?;
                if is_multicast(a) {
                    return Err(c.invarg("invalid local address", x));
                }
                set_once(c, &mut v.local, a, "local", x)?;
            }
            Vx::Dev => {
                let x = c.need(w, "a device name")?;
                let d = c.ifname(x, "dev")?;
                set_once(c, &mut v.dev, d, "dev", x)?;
            }
            Vx::Ttl => {
                let x = c.need(w, "a TTL (1..255 or auto)")?;
                if seen_ttl {
                    return Err(c.duparg("ttl", x));
                }
                seen_ttl = true;
                match x.s() {
                    "auto" => v.ttl = None,
                    "inherit" => return Err(c.unsupported(x, "a TTL of 1..255 or auto")),
                    s => match strtoul0(s) {
                        None => return Err(c.invarg("invalid TTL", x)),
                        Some(n) if n > 255 => return Err(c.invarg("TTL must be <= 255", x)),
                        Some(0) => v.ttl = None,
                        Some(n) => v.ttl = Some(n as u8),
                    },
                }
            }
            Vx::Srcport => {
                let lo = c.need(w, "MIN MAX ports")?;
                if v.srcport.is_some() {
                    return Err(c.duparg("srcport", lo));
                }
                let Some(lo_n) = get_u16(lo.s()) else {
                    return Err(c.invarg("min port", lo));
                };
                let hi = c.need(w, "MIN MAX ports")?;
                let Some(hi_n) = get_u16(hi.s()) else {
                    return Err(c.invarg("max port", hi));
                };
                v.srcport = Some((lo_n, hi_n));
            }
            Vx::Dstport => {
                let x = c.need(w, "a UDP port")?;
                let Some(p) = get_u16(x.s()) else {
                    return Err(c.invarg("dst port", x));
                };
                set_once(c, &mut v.dstport, p, "dstport", x)?;
            }
            Vx::Learning(b) | Vx::Proxy(b) | Vx::L2miss(b) | Vx::L3miss(b) => {
                let slot = match k {
                    Vx::Learning(_) => 0,
                    Vx::Proxy(_) => 1,
                    Vx::L2miss(_) => 2,
                    _ => 3,
                };
                if seen[slot] {
                    return Err(c.duparg(w.s(), w));
                }
                seen[slot] = true;
                match slot {
                    0 => v.learning = Some(b),
                    1 => v.proxy = b,
                    2 => v.l2miss = b,
                    _ => v.l3miss = b,
                }
            }
            Vx::Help | Vx::Other => return Err(c.unsupported(w, VXLAN_EXPECTED)),
        }
    }
    Ok(v)
}

const IPTNL_USAGE: &str =
    "Usage: ... ipip [ remote ADDR ] [ local ADDR ] [ ttl TTL ] [ dev PHYS_DEV ]";

/// link_iptnl.c's keywords, in order.
const IPTNL_KW: &[(&str, bool, u8)] = &[
    ("remote", false, 1),
    ("local", false, 2),
    ("dev", true, 3),
    ("ttl", true, 4),
    ("hoplimit", true, 4),
    ("hlim", true, 4),
    ("tos", true, 0),
    ("tclass", true, 0),
    ("dsfield", true, 0),
    ("nopmtudisc", false, 0),
    ("pmtudisc", false, 0),
    ("6rd-prefix", false, 0),
    ("6rd-relay_prefix", false, 0),
    ("6rd-reset", false, 0),
    ("encap", false, 0),
    ("encap-sport", false, 0),
    ("encap-dport", false, 0),
    ("encap-csum", false, 0),
    ("noencap-csum", false, 0),
    ("encap-udp6-csum", false, 0),
    ("noencap-udp6-csum", false, 0),
    ("encap-remcsum", false, 0),
    ("noencap-remcsum", false, 0),
    ("noencap", false, 0),
    ("external", false, 0),
    ("fwmark", false, 0),
    ("mode", false, 0),
];

/// `any` or an address (None for `any`/0.0.0.0).
fn tunnel_addr(c: &mut Cur, x: &Word, tunnel_wording: bool) -> R<Option<Ipv4Addr>> {
    if x.s() == "any" {
        return Ok(None);
    }
    let a = if tunnel_wording {
        match ipv4(x.s()) {
            Ok(a) => a,
            Err(AddrErr::Abbreviated) => return Err(c.e(x.col, abbreviated_msg(x))),
            Err(AddrErr::Bad) => {
                return Err(c.e(
                    x.col,
                    format!(
                        "Error: an IP address is expected rather than \"{}\"",
                        x.text
                    ),
                ));
            }
        }
    } else {
        c.addr(x)?
    };
    Ok(Some(a).filter(|a| !a.is_unspecified()))
}

fn tunnel_ttl(c: &Cur, x: &Word) -> R<Option<u8>> {
    if x.s() == "inherit" {
        return Ok(None);
    }
    match get_u8(x.s()) {
        Some(0) => Ok(None),
        Some(n) => Ok(Some(n)),
        None => Err(c.invarg("invalid TTL", x)),
    }
}

fn iptnl_opts(c: &mut Cur) -> R<TunnelArgs> {
    let mut t = TunnelArgs::default();
    while let Some(w) = c.next() {
        match lookup(w.s(), IPTNL_KW).map(|x| x.0) {
            Some(1) => {
                let x = c.need(w, "an IPv4 address")?;
                t.remote = tunnel_addr(c, x, false)?;
            }
            Some(2) => {
                let x = c.need(w, "an IPv4 address")?;
                t.local = tunnel_addr(c, x, false)?;
            }
            Some(3) => {
                let x = c.need(w, "a device name")?;
                t.dev = Some(c.ifname(x, "dev")?);
            }
            Some(4) => {
                let x = c.need(w, "a TTL (1..255 or inherit)")?;
                t.ttl = tunnel_ttl(c, x)?;
            }
            Some(_) => return Err(c.unsupported(w, "ipip options remote A, local A, ttl N, dev D")),
            None => {
                return Err(c.e(
                    w.col,
                    format!("{IPTNL_USAGE}: unknown argument \"{}\"", w.text),
                ));
            }
        }
    }
    Ok(t)
}

// --- ip address --------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum AddrVerb {
    Add,
    Del,
    Show,
    Flush,
    Other,
}

const ADDR_VERBS: &[(&str, bool, AddrVerb)] = &[
    ("add", true, AddrVerb::Add),
    ("change", true, AddrVerb::Other),
    ("chg", false, AddrVerb::Other),
    ("replace", true, AddrVerb::Other),
    ("delete", true, AddrVerb::Del),
    ("list", true, AddrVerb::Show),
    ("show", true, AddrVerb::Show),
    ("lst", true, AddrVerb::Show),
    ("flush", true, AddrVerb::Flush),
    ("save", true, AddrVerb::Other),
    ("showdump", true, AddrVerb::Other),
    ("restore", true, AddrVerb::Other),
    ("help", true, AddrVerb::Other),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ak {
    Broadcast,
    Scope,
    Dev,
    Label,
    Other,
}

/// ipaddr_modify's keywords, in order.
const ADDR_KW: &[(&str, bool, Ak)] = &[
    ("peer", false, Ak::Other),
    ("remote", false, Ak::Other),
    ("broadcast", true, Ak::Broadcast),
    ("brd", false, Ak::Broadcast),
    ("anycast", false, Ak::Other),
    ("scope", false, Ak::Scope),
    ("dev", false, Ak::Dev),
    ("label", false, Ak::Label),
    ("metric", true, Ak::Other),
    ("priority", true, Ak::Other),
    ("preference", true, Ak::Other),
    ("valid_lft", true, Ak::Other),
    ("preferred_lft", true, Ak::Other),
    ("home", false, Ak::Other),
    ("nodad", false, Ak::Other),
    ("mngtmpaddr", false, Ak::Other),
    ("noprefixroute", false, Ak::Other),
    ("autojoin", false, Ak::Other),
    ("proto", false, Ak::Other),
];

fn ip_addr(c: &mut Cur) -> R<CommandKind> {
    let Some(v) = c.next() else {
        return Ok(CommandKind::Addr(AddrCmd::Show { dev: None }));
    };
    let verb = match lookup(v.s(), ADDR_VERBS) {
        None => return Err(unknown_verb(c, v, "ip address help")),
        Some((AddrVerb::Other, full)) => {
            return Err(unsupported_verb(c, v, full, "add, delete, show or flush"));
        }
        Some((verb, _)) => verb,
    };
    let cmd = match verb {
        AddrVerb::Add | AddrVerb::Del => addr_modify(c, v, verb == AddrVerb::Add)?,
        AddrVerb::Show => AddrCmd::Show {
            dev: show_dev(c, LINK_SHOW_KW)?,
        },
        AddrVerb::Flush => {
            if c.peek().is_none() {
                return Err(c.e(v.col, "Flush requires arguments: expected [dev] DEV"));
            }
            let dev = show_dev(c, LINK_SHOW_KW)?.expect("arguments were present");
            AddrCmd::Flush { dev }
        }
        AddrVerb::Other => unreachable!("handled above"),
    };
    Ok(CommandKind::Addr(cmd))
}

fn addr_modify(c: &mut Cur, verb: &Word, add: bool) -> R<AddrCmd> {
    let mut local: Option<Ipv4Net> = None;
    let mut dev: Option<String> = None;
    let mut brd: Option<(&Word, Option<Ipv4Addr>)> = None;
    let mut scope: Option<Scope> = None;
    while let Some(w) = c.next() {
        match lookup(w.s(), ADDR_KW).map(|x| x.0) {
            Some(Ak::Broadcast) => {
                let x = c.need(w, "an address, + or -")?;
                if brd.is_some() {
                    return Err(c.duparg("broadcast", x));
                }
                let a = match x.s() {
                    "+" | "-" => None,
                    _ => Some(c.addr(x)?),
                };
                brd = Some((x, a));
            }
            Some(Ak::Scope) => {
                let x = c.need(w, "a scope (global, site, link, host)")?;
                match scope_of(x.s()) {
                    Some(Ok(s)) => scope = Some(s),
                    Some(Err(())) => {
                        return Err(c.unsupported(x, "global, site, link, host or nowhere"));
                    }
                    None => return Err(c.invarg("invalid scope value.", x)),
                }
            }
            Some(Ak::Dev) => dev = Some(c.need(w, "a device name")?.text.to_string()),
            Some(Ak::Label) => {
                c.need(w, "a label")?;
            }
            Some(Ak::Other) => {
                return Err(c.unsupported(
                    w,
                    "ADDR[/PLEN] dev DEV [broadcast A|+|-] [scope S] [label L]",
                ));
            }
            None => {
                let x = if w.s() == "local" {
                    c.need(w, "an address")?
                } else {
                    w
                };
                if matches(x.s(), "help") {
                    return Err(c.unsupported(x, "ADDR[/PLEN] dev DEV"));
                }
                if local.is_some() {
                    return Err(c.garbage("local", x));
                }
                local = Some(c.prefix(x)?);
            }
        }
    }
    let Some(dev) = dev else {
        return Err(c.e(
            verb.col,
            "Not enough information: \"dev\" argument is required.",
        ));
    };
    let Some(addr) = local else {
        return Err(c.e(verb.col, "expected an address (ADDR[/PLEN]) before \"dev\""));
    };
    if !add {
        return Ok(AddrCmd::Del { addr, dev });
    }
    let broadcast = match brd {
        None => None,
        Some((_, Some(a))) => Some(a),
        Some((x, None)) if addr.len <= 30 => {
            let host = if addr.len == 0 {
                u32::MAX
            } else {
                u32::MAX >> addr.len
            };
            let base = u32::from(addr.addr);
            Some(Ipv4Addr::from(if x.s() == "+" {
                base | host
            } else {
                base & !host
            }))
        }
        Some((_, None)) => None,
    };
    Ok(AddrCmd::Add {
        addr,
        dev,
        broadcast,
        scope,
    })
}

// --- ip route ----------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RouteVerb {
    Add,
    Replace,
    Del,
    Show,
    Get,
    Flush,
    Other,
}

const ROUTE_VERBS: &[(&str, bool, RouteVerb)] = &[
    ("add", true, RouteVerb::Add),
    ("change", true, RouteVerb::Other),
    ("chg", false, RouteVerb::Other),
    ("replace", true, RouteVerb::Replace),
    ("prepend", true, RouteVerb::Other),
    ("append", true, RouteVerb::Other),
    ("test", true, RouteVerb::Other),
    ("delete", true, RouteVerb::Del),
    ("list", true, RouteVerb::Show),
    ("show", true, RouteVerb::Show),
    ("lst", true, RouteVerb::Show),
    ("get", true, RouteVerb::Get),
    ("flush", true, RouteVerb::Flush),
    ("save", true, RouteVerb::Other),
    ("restore", true, RouteVerb::Other),
    ("showdump", true, RouteVerb::Other),
    ("help", true, RouteVerb::Other),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rk {
    Src,
    Via,
    Metric,
    Scope,
    Mtu,
    Onlink,
    Nexthop,
    Proto,
    Table,
    Dev,
    Other,
}

/// iproute_modify's keywords, in order.
const ROUTE_KW: &[(&str, bool, Rk)] = &[
    ("src", false, Rk::Src),
    ("as", false, Rk::Other),
    ("via", false, Rk::Via),
    ("from", false, Rk::Other),
    ("tos", false, Rk::Other),
    ("dsfield", true, Rk::Other),
    ("expires", false, Rk::Other),
    ("metric", true, Rk::Metric),
    ("priority", true, Rk::Metric),
    ("preference", false, Rk::Metric),
    ("scope", false, Rk::Scope),
    ("mtu", false, Rk::Mtu),
    ("hoplimit", false, Rk::Other),
    ("advmss", false, Rk::Other),
    ("reordering", true, Rk::Other),
    ("rtt", false, Rk::Other),
    ("rto_min", false, Rk::Other),
    ("window", false, Rk::Other),
    ("cwnd", false, Rk::Other),
    ("ssthresh", false, Rk::Other),
    ("realms", true, Rk::Other),
    ("initcwnd", false, Rk::Other),
    ("initrwnd", false, Rk::Other),
    ("features", false, Rk::Other),
    ("quickack", false, Rk::Other),
    ("congctl", false, Rk::Other),
    ("rttvar", false, Rk::Other),
    ("fastopen_no_cookie", true, Rk::Other),
    ("onlink", true, Rk::Onlink),
    ("nexthop", false, Rk::Nexthop),
    ("nhid", false, Rk::Other),
    ("protocol", true, Rk::Proto),
    ("table", true, Rk::Table),
    ("vrf", true, Rk::Other),
    ("dev", false, Rk::Dev),
    ("oif", false, Rk::Dev),
    ("pref", true, Rk::Other),
    ("encap", false, Rk::Other),
    ("ttl-propagate", false, Rk::Other),
];

const ROUTE_EXPECTED: &str = "[TYPE] PREFIX [via A] [dev D] [src A] [onlink] [table T] [metric N] \
     [scope S] [proto P] [mtu N] [nexthop via A dev D weight N ...]";

fn ip_route(c: &mut Cur) -> R<CommandKind> {
    let Some(v) = c.next() else {
        return Ok(CommandKind::Route(RouteCmd::Show {
            table: None,
            dev: None,
        }));
    };
    let verb = match lookup(v.s(), ROUTE_VERBS) {
        None => return Err(unknown_verb(c, v, "ip route help")),
        Some((RouteVerb::Other, full)) => {
            return Err(unsupported_verb(
                c,
                v,
                full,
                "add, replace, delete, show, get or flush",
            ));
        }
        Some((verb, _)) => verb,
    };
    let cmd = match verb {
        RouteVerb::Add => RouteCmd::Add(route_modify(c, v)?),
        RouteVerb::Replace => RouteCmd::Replace(route_modify(c, v)?),
        RouteVerb::Del => RouteCmd::Del(route_modify(c, v)?),
        RouteVerb::Show => {
            let (table, dev) = route_select(c)?;
            RouteCmd::Show { table, dev }
        }
        RouteVerb::Flush => {
            if c.peek().is_none() {
                return Err(c.e(
                    v.col,
                    "\"ip route flush\" requires arguments: expected [table T] [dev D]",
                ));
            }
            let (table, dev) = route_select(c)?;
            RouteCmd::Flush { table, dev }
        }
        RouteVerb::Get => route_get(c, v)?,
        RouteVerb::Other => unreachable!("handled above"),
    };
    Ok(CommandKind::Route(cmd))
}

fn route_modify(c: &mut Cur, verb: &Word) -> R<RouteSpec> {
    if c.peek().is_none() {
        return Err(c.e(
            verb.col,
            format!("Usage: ip route {{ add | del | replace }} ROUTE: expected {ROUTE_EXPECTED}"),
        ));
    }
    let mut rtype: Option<RouteType> = None;
    let mut prefix: Option<Ipv4Net> = None;
    let mut gateway = None;
    let mut dev = None;
    let mut src = None;
    let mut onlink = false;
    let mut table = None;
    let mut metric = None;
    let mut scope = None;
    let mut proto = None;
    let mut mtu = None;
    let mut nexthops = Vec::new();
    while let Some(w) = c.next() {
        match lookup(w.s(), ROUTE_KW).map(|x| x.0) {
            Some(Rk::Src) => {
                let x = c.need(w, "an IPv4 address")?;
                src = Some(c.addr(x)?);
            }
            Some(Rk::Via) => {
                if gateway.is_some() {
                    return Err(c.invarg("use nexthop syntax to specify multiple via", w));
                }
                let mut x = c.need(w, "an IPv4 address")?;
                if x.s() == "inet" {
                    x = c.need(x, "an IPv4 address")?;
                } else if matches!(x.s(), "inet6" | "mpls" | "bridge" | "link") {
                    return Err(c.unsupported(x, "an IPv4 address"));
                }
                gateway = Some(c.addr(x)?);
            }
            Some(Rk::Metric) => {
                let x = c.need(w, "a number")?;
                let Some(n) = get_u32(x.s()) else {
                    return Err(c.invarg("\"metric\" value is invalid", x));
                };
                metric = Some(n);
            }
            Some(Rk::Scope) => {
                let x = c.need(w, "a scope (global, site, link, host, nowhere)")?;
                match scope_of(x.s()) {
                    Some(Ok(s)) => scope = Some(s),
                    Some(Err(())) => {
                        return Err(c.unsupported(x, "global, site, link, host or nowhere"));
                    }
                    None => return Err(c.invarg("invalid \"scope\" value", x)),
                }
            }
            Some(Rk::Mtu) => {
                let x = c.need(w, "a number")?;
                if x.s() == "lock" {
                    return Err(c.unsupported(x, "mtu N"));
                }
                let Some(n) = get_u32(x.s()) else {
                    return Err(c.invarg("\"mtu\" value is invalid", x));
                };
                mtu = Some(n);
            }
            Some(Rk::Onlink) => onlink = true,
            Some(Rk::Nexthop) => {
                c.i -= 1;
                nexthops = parse_nexthops(c)?;
                break;
            }
            Some(Rk::Proto) => {
                let x = c.need(w, "a protocol (kernel, boot, static, ... or a number)")?;
                let Some(p) = proto_of(x.s()) else {
                    return Err(c.invarg("\"protocol\" value is invalid", x));
                };
                proto = Some(p);
            }
            Some(Rk::Table) => {
                let x = c.need(w, "a table (main, local, default or a number)")?;
                let Some(t) = table_id(x.s()) else {
                    return Err(c.invarg("\"table\" value is invalid", x));
                };
                table = Some(t);
            }
            Some(Rk::Dev) => dev = Some(c.need(w, "a device name")?.text.to_string()),
            Some(Rk::Other) => return Err(c.unsupported(w, ROUTE_EXPECTED)),
            None => {
                let mut x = if w.s() == "to" {
                    c.need(w, "a prefix")?
                } else {
                    w
                };
                if !x.s().starts_with(|ch: char| ch.is_ascii_digit())
                    && let Some(t) = rtntype(x.s())
                {
                    let Rtn::Known(t) = t else {
                        return Err(c.unsupported(
                                x,
                                "a route type of unicast, local, broadcast, blackhole, unreachable or prohibit",
                            ));
                    };
                    rtype = Some(t);
                    x = c.need(x, "a prefix")?;
                }
                if matches(x.s(), "help") {
                    return Err(c.unsupported(x, ROUTE_EXPECTED));
                }
                if prefix.is_some() {
                    return Err(c.garbage("to", x));
                }
                prefix = Some(c.prefix(x)?);
            }
        }
    }
    let Some(prefix) = prefix else {
        return Err(c.e(
            verb.col,
            "Usage: ip route { add | del | replace } ROUTE: expected a destination PREFIX or \"default\"",
        ));
    };
    Ok(RouteSpec {
        rtype: rtype.unwrap_or(RouteType::Unicast),
        prefix,
        gateway,
        dev,
        src,
        onlink,
        table,
        metric,
        scope,
        proto,
        mtu,
        nexthops,
    })
}

fn parse_nexthops(c: &mut Cur) -> R<Vec<NexthopSpec>> {
    let mut out = Vec::new();
    while let Some(w) = c.next() {
        if w.s() != "nexthop" {
            return Err(c.e(
                w.col,
                format!(
                    "Error: \"nexthop\" or end of line is expected instead of \"{}\"",
                    w.text
                ),
            ));
        }
        if c.peek().is_none() {
            return Err(c.e(w.col, "Error: unexpected end of line after \"nexthop\""));
        }
        let mut nh = NexthopSpec {
            gateway: None,
            dev: None,
            weight: 1,
            onlink: false,
        };
        while let Some(x) = c.peek() {
            match x.s() {
                "via" => {
                    c.i += 1;
                    let mut a = c.need(x, "an IPv4 address")?;
                    if a.s() == "inet" {
                        a = c.need(a, "an IPv4 address")?;
                    }
                    nh.gateway = Some(c.addr(a)?);
                }
                "dev" => {
                    c.i += 1;
                    nh.dev = Some(c.need(x, "a device name")?.text.to_string());
                }
                "weight" => {
                    c.i += 1;
                    let a = c.need(x, "a number 1..256")?;
                    match get_u32(a.s()) {
                        Some(n @ 1..=256) => nh.weight = n,
                        _ => return Err(c.invarg("\"weight\" is invalid", a)),
                    }
                }
                "onlink" => {
                    c.i += 1;
                    nh.onlink = true;
                }
                s if s == "encap" || matches(s, "realms") => {
                    return Err(c.unsupported(x, "nexthop options via A, dev D, weight N, onlink"));
                }
                _ => break,
            }
        }
        out.push(nh);
    }
    Ok(out)
}

/// Known selectors of `ip route show|flush` (iproute_list_flush_or_save).
const ROUTE_SELECTORS: &[&str] = &[
    "vrf", "cached", "cloned", "tos", "dsfield", "protocol", "iif", "mark", "metric", "priority",
    "via", "src", "realms", "realm", "scope", "type", "root", "match", "exact", "from", "to",
];

fn route_select(c: &mut Cur) -> R<(Option<TableId>, Option<String>)> {
    let mut table = None;
    let mut dev = None;
    while let Some(w) = c.next() {
        let t = w.s();
        if matches(t, "table") {
            let x = c.need(w, "a table (main, local, default, all or a number)")?;
            let id = match x.s() {
                "all" => 0,
                s => match table_id(s) {
                    Some(id) => id,
                    None if s == "cache" => {
                        return Err(c.unsupported(x, "main, local, default, all or a number"));
                    }
                    None => return Err(c.invarg("table id value is invalid", x)),
                },
            };
            table = Some(id);
        } else if t == "dev" || t == "oif" {
            dev = Some(c.need(w, "a device name")?.text.to_string());
        } else if ROUTE_SELECTORS.iter().any(|s| matches(t, s)) {
            return Err(c.unsupported(w, "[table T] [dev D]"));
        } else {
            let Ok(_) = c.prefix(w) else {
                return Err(c.e(
                    w.col,
                    format!(
                        "Error: {} prefix is expected rather than \"{}\".",
                        c.fam(),
                        w.text
                    ),
                ));
            };
            return Err(c.unsupported(w, "[table T] [dev D] (prefix selectors are not modelled)"));
        }
    }
    Ok((table, dev))
}

/// iproute_get's keywords.
const ROUTE_GET_KW: &[(&str, bool, u8)] = &[
    ("tos", false, 0),
    ("dsfield", true, 0),
    ("from", false, 1),
    ("iif", false, 2),
    ("mark", false, 3),
    ("oif", false, 4),
    ("dev", false, 4),
    ("vrf", true, 0),
    ("uid", false, 0),
    ("fibmatch", true, 0),
    ("as", false, 0),
    ("sport", false, 0),
    ("dport", false, 0),
    ("ipproto", false, 0),
    ("connected", true, 0),
];

fn route_get(c: &mut Cur, verb: &Word) -> R<RouteCmd> {
    let mut dst = None;
    let mut from = None;
    let mut iif = None;
    let mut oif = None;
    let mut mark = None;
    while let Some(w) = c.next() {
        match lookup(w.s(), ROUTE_GET_KW).map(|x| x.0) {
            Some(1) => {
                let x = c.need(w, "an IPv4 address")?;
                let p = c.prefix(x)?;
                if p.len != 32 && x.s().contains('/') {
                    return Err(c.unsupported(x, "a single address after \"from\""));
                }
                from = Some(p.addr);
            }
            Some(2) => iif = Some(c.need(w, "a device name")?.text.to_string()),
            Some(3) => {
                let x = c.need(w, "a number")?;
                let Some(m) = get_u32(x.s()) else {
                    return Err(c.invarg("invalid mark value", x));
                };
                mark = Some(m);
            }
            Some(4) => oif = Some(c.need(w, "a device name")?.text.to_string()),
            Some(_) => {
                return Err(c.unsupported(w, "ADDRESS [from A] [iif D] [oif D] [mark N]"));
            }
            None => {
                let x = if w.s() == "to" {
                    c.need(w, "an address")?
                } else {
                    w
                };
                if matches(x.s(), "help") {
                    return Err(c.unsupported(x, "ADDRESS [from A] [iif D] [oif D] [mark N]"));
                }
                let p = c.prefix(x)?;
                if dst.is_some() {
                    return Err(c.garbage("to", x));
                }
                dst = Some(p.addr);
            }
        }
    }
    let Some(dst) = dst else {
        return Err(c.e(verb.col, "need at least a destination address"));
    };
    Ok(RouteCmd::Get {
        dst,
        from,
        iif,
        oif,
        mark,
    })
}

// --- ip rule -----------------------------------------------------------------

const RULE_VERBS: &[(&str, bool, u8)] = &[
    ("list", true, 0),
    ("lst", true, 0),
    ("show", true, 0),
    ("save", true, 9),
    ("restore", true, 9),
    ("add", true, 1),
    ("delete", true, 2),
    ("flush", true, 9),
    ("help", true, 9),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Uk {
    Not,
    From,
    To,
    Pref,
    Fwmark,
    Table,
    Iif,
    Oif,
    Other,
}

/// iprule_modify's keywords, in order.
const RULE_KW: &[(&str, bool, Uk)] = &[
    ("not", false, Uk::Not),
    ("from", false, Uk::From),
    ("to", false, Uk::To),
    ("preference", true, Uk::Pref),
    ("order", true, Uk::Pref),
    ("priority", true, Uk::Pref),
    ("tos", false, Uk::Other),
    ("dsfield", true, Uk::Other),
    ("fwmark", false, Uk::Fwmark),
    ("realms", true, Uk::Other),
    ("protocol", true, Uk::Other),
    ("table", true, Uk::Table),
    ("lookup", false, Uk::Table),
    ("suppress_prefixlength", true, Uk::Other),
    ("sup_pl", false, Uk::Other),
    ("suppress_ifgroup", true, Uk::Other),
    ("sup_group", false, Uk::Other),
    ("dev", false, Uk::Iif),
    ("iif", false, Uk::Iif),
    ("oif", false, Uk::Oif),
    ("l3mdev", false, Uk::Other),
    ("uidrange", false, Uk::Other),
    ("ipproto", false, Uk::Other),
    ("sport", false, Uk::Other),
    ("dport", false, Uk::Other),
];

const RULE_EXPECTED: &str = "[not] [from P] [to P] [iif D] [oif D] [fwmark M[/MASK]] [priority N] \
     [lookup T] [blackhole|unreachable|prohibit]";

fn ip_rule(c: &mut Cur) -> R<CommandKind> {
    let Some(v) = c.next() else {
        return Ok(CommandKind::Rule(RuleCmd::Show));
    };
    let cmd = match lookup(v.s(), RULE_VERBS) {
        None => return Err(unknown_verb(c, v, "ip rule help")),
        Some((0, _)) => {
            c.no_more("nothing after \"ip rule show\" (selectors are not modelled)")?;
            RuleCmd::Show
        }
        Some((1, _)) => RuleCmd::Add(rule_modify(c, v, "\"ip rule add\" requires arguments.")?),
        Some((2, _)) => RuleCmd::Del(rule_modify(c, v, "\"ip rule del\" requires arguments.")?),
        Some((_, full)) => return Err(unsupported_verb(c, v, full, "add, delete or show")),
    };
    Ok(CommandKind::Rule(cmd))
}

fn rule_modify(c: &mut Cur, verb: &Word, empty: &str) -> R<RuleSpec> {
    if c.peek().is_none() {
        return Err(c.e(verb.col, format!("{empty} expected {RULE_EXPECTED}")));
    }
    let mut r = RuleSpec {
        priority: None,
        from: None,
        to: None,
        iif: None,
        oif: None,
        fwmark: None,
        table: None,
        action: None,
        not: false,
    };
    let mut seen_from = false;
    let mut seen_to = false;
    while let Some(w) = c.next() {
        match lookup(w.s(), RULE_KW).map(|x| x.0) {
            Some(Uk::Not) => r.not = true,
            Some(k @ (Uk::From | Uk::To)) => {
                let x = c.need(w, "a prefix or \"all\"")?;
                let p = c.prefix(x)?;
                let p = if matches!(x.s(), "all" | "any" | "default") {
                    None
                } else {
                    Some(p)
                };
                let (seen, slot, key) = if k == Uk::From {
                    (&mut seen_from, &mut r.from, "from")
                } else {
                    (&mut seen_to, &mut r.to, "to")
                };
                if *seen {
                    return Err(c.duparg(key, x));
                }
                *seen = true;
                *slot = p;
            }
            Some(Uk::Pref) => {
                let x = c.need(w, "a number")?;
                let Some(n) = get_u32(x.s()) else {
                    return Err(c.invarg("preference value is invalid", x));
                };
                set_once(c, &mut r.priority, n, "preference", x)?;
            }
            Some(Uk::Fwmark) => {
                let x = c.need(w, "MARK[/MASK]")?;
                let (m, mask) = match x.s().split_once('/') {
                    Some((m, k)) => (m, Some(k)),
                    None => (x.s(), None),
                };
                let Some(mark) = get_u32(m) else {
                    let shown = Word {
                        text: Cow::Borrowed(m),
                        col: x.col,
                    };
                    return Err(c.invarg("fwmark value is invalid", &shown));
                };
                let mask = match mask {
                    None => u32::MAX,
                    Some(k) => match get_u32(k) {
                        Some(k) => k,
                        None => {
                            let shown = Word {
                                text: Cow::Borrowed(k),
                                col: x.col,
                            };
                            return Err(c.invarg("fwmask value is invalid", &shown));
                        }
                    },
                };
                set_once(c, &mut r.fwmark, (mark, mask), "fwmark", x)?;
            }
            Some(Uk::Table) => {
                let x = c.need(w, "a table (main, local, default or a number)")?;
                let Some(t) = table_id(x.s()) else {
                    return Err(c.invarg("invalid table ID", x));
                };
                set_once(c, &mut r.table, t, "table", x)?;
            }
            Some(Uk::Iif) => {
                let x = c.need(w, "a device name")?;
                let d = c.ifname(x, "iif\"/\"dev")?;
                set_once(c, &mut r.iif, d, "iif", x)?;
            }
            Some(Uk::Oif) => {
                let x = c.need(w, "a device name")?;
                let d = c.ifname(x, "oif")?;
                set_once(c, &mut r.oif, d, "oif", x)?;
            }
            Some(Uk::Other) => return Err(c.unsupported(w, RULE_EXPECTED)),
            None => {
                let x = if w.s() == "type" {
                    c.need(w, "a rule type")?
                } else {
                    w
                };
                let t = x.s();
                if matches(t, "help") || matches(t, "goto") || matches(t, "nop") {
                    return Err(c.unsupported(x, RULE_EXPECTED));
                }
                match rtntype(t) {
                    None => return Err(c.invarg("Failed to parse rule type", x)),
                    Some(Rtn::Known(RouteType::Unicast)) => r.action = None,
                    Some(Rtn::Known(
                        a @ (RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit),
                    )) => r.action = Some(a),
                    Some(_) => {
                        return Err(c.unsupported(
                            x,
                            "a rule action of blackhole, unreachable or prohibit",
                        ));
                    }
                }
            }
        }
    }
    Ok(r)
}

// --- ip neigh ----------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum NeighVerb {
    Add,
    Change,
    Replace,
    Del,
    Show,
    Flush,
    Other,
}

const NEIGH_VERBS: &[(&str, bool, NeighVerb)] = &[
    ("add", true, NeighVerb::Add),
    ("change", true, NeighVerb::Change),
    ("chg", false, NeighVerb::Change),
    ("replace", true, NeighVerb::Replace),
    ("delete", true, NeighVerb::Del),
    ("get", true, NeighVerb::Other),
    ("show", true, NeighVerb::Show),
    ("lst", true, NeighVerb::Show),
    ("list", true, NeighVerb::Show),
    ("flush", true, NeighVerb::Flush),
    ("help", true, NeighVerb::Other),
];

/// ipneigh_modify's keywords, in order.
const NEIGH_KW: &[(&str, bool, u8)] = &[
    ("lladdr", true, 1),
    ("nud", false, 2),
    ("proxy", true, 3),
    ("router", false, 0),
    ("use", false, 0),
    ("managed", false, 0),
    ("extern_learn", true, 0),
    ("dev", false, 4),
    ("protocol", true, 0),
];

fn nud_state(s: &str) -> Option<Result<NudState, ()>> {
    let st = if matches(s, "permanent") {
        NudState::Permanent
    } else if matches(s, "reachable") {
        NudState::Reachable
    } else if s == "noarp" {
        NudState::Noarp
    } else if s == "none" {
        return Some(Err(()));
    } else if s == "stale" {
        NudState::Stale
    } else if s == "incomplete" {
        NudState::Incomplete
    } else if s == "delay" {
        NudState::Delay
    } else if s == "probe" {
        NudState::Probe
    } else if matches(s, "failed") {
        NudState::Failed
    } else {
        return match strtoul0(s)? {
            0x01 => Some(Ok(NudState::Incomplete)),
            0x02 => Some(Ok(NudState::Reachable)),
            0x04 => Some(Ok(NudState::Stale)),
            0x08 => Some(Ok(NudState::Delay)),
            0x10 => Some(Ok(NudState::Probe)),
            0x20 => Some(Ok(NudState::Failed)),
            0x40 => Some(Ok(NudState::Noarp)),
            0x80 => Some(Ok(NudState::Permanent)),
            0 => Some(Err(())),
            _ => None,
        };
    };
    Some(Ok(st))
}

fn ip_neigh(c: &mut Cur) -> R<CommandKind> {
    let Some(v) = c.next() else {
        return Ok(CommandKind::Neigh(NeighCmd::Show { dev: None }));
    };
    let verb = match lookup(v.s(), NEIGH_VERBS) {
        None => return Err(unknown_verb(c, v, "ip neigh help")),
        Some((NeighVerb::Other, full)) => {
            return Err(unsupported_verb(
                c,
                v,
                full,
                "add, replace, change, delete, show or flush",
            ));
        }
        Some((verb, _)) => verb,
    };
    let cmd = match verb {
        NeighVerb::Show => NeighCmd::Show {
            dev: neigh_select(c)?,
        },
        NeighVerb::Flush => {
            if c.peek().is_none() {
                return Err(c.e(v.col, "Flush requires arguments: expected [dev D] or all"));
            }
            NeighCmd::Flush {
                dev: neigh_select(c)?,
            }
        }
        _ => neigh_modify(c, v, verb)?,
    };
    Ok(CommandKind::Neigh(cmd))
}

fn neigh_modify(c: &mut Cur, verb: &Word, kind: NeighVerb) -> R<NeighCmd> {
    let mut lladdr = None;
    let mut state = NudState::Permanent;
    let mut proxy = false;
    let mut dev: Option<String> = None;
    let mut dst: Option<Ipv4Addr> = None;
    while let Some(w) = c.next() {
        match lookup(w.s(), NEIGH_KW).map(|x| x.0) {
            Some(1) => {
                let x = c.need(w, "a MAC address")?;
                let m = c.lladdr(x)?;
                set_once(c, &mut lladdr, m, "lladdr", x)?;
            }
            Some(2) => {
                let x = c.need(
                    w,
                    "a state (permanent, reachable, stale, noarp, delay, probe)",
                )?;
                state = match nud_state(x.s()) {
                    Some(Ok(s)) => s,
                    Some(Err(())) => {
                        return Err(
                            c.unsupported(x, "permanent, reachable, stale, noarp, delay or probe")
                        );
                    }
                    None => return Err(c.invarg("nud state is bad", x)),
                };
            }
            Some(3) => {
                let x = c.need(w, "an address")?;
                if matches(x.s(), "help") {
                    return Err(c.unsupported(x, "proxy ADDR"));
                }
                if dst.is_some() {
                    return Err(c.duparg("address", x));
                }
                dst = Some(c.addr(x)?);
                proxy = true;
            }
            Some(4) => dev = Some(c.need(w, "a device name")?.text.to_string()),
            Some(_) => {
                return Err(c.unsupported(w, "ADDR [lladdr MAC] dev DEV [nud STATE] [proxy ADDR]"));
            }
            None => {
                let x = if w.s() == "to" {
                    c.need(w, "an address")?
                } else {
                    w
                };
                if matches(x.s(), "help") {
                    return Err(c.unsupported(x, "ADDR [lladdr MAC] dev DEV [nud STATE]"));
                }
                if dst.is_some() {
                    return Err(c.garbage("to", x));
                }
                dst = Some(c.addr(x)?);
            }
        }
    }
    let (Some(dev), Some(addr)) = (dev, dst) else {
        return Err(c.e(
            verb.col,
            "Device and destination are required arguments. Expected ADDR [lladdr MAC] dev DEV",
        ));
    };
    Ok(match kind {
        NeighVerb::Del => NeighCmd::Del { addr, dev },
        _ => NeighCmd::Add {
            addr,
            lladdr,
            dev,
            state,
            replace: matches!(kind, NeighVerb::Replace | NeighVerb::Change),
            proxy,
        },
    })
}

fn neigh_select(c: &mut Cur) -> R<Option<String>> {
    const KNOWN: &[&str] = &["master", "vrf", "unused", "nud", "proxy", "nomaster"];
    let mut dev = None;
    while let Some(w) = c.next() {
        let t = w.s();
        if t == "dev" {
            let x = c.need(w, "a device name")?;
            dev = Some(x.text.to_string());
        } else if KNOWN.contains(&t) {
            return Err(c.unsupported(w, "[dev D] [all]"));
        } else {
            let x = if t == "to" { c.need(w, "a prefix")? } else { w };
            if matches(x.s(), "help") {
                return Err(c.unsupported(x, "[dev D] [all]"));
            }
            let Ok(p) = c.prefix(x) else {
                return Err(c.invarg("to value is invalid", x));
            };
            if p.len != 0 {
                return Err(c.unsupported(x, "[dev D] [all] (prefix selectors are not modelled)"));
            }
        }
    }
    Ok(dev)
}

// --- ip netns ----------------------------------------------------------------

const NETNS_VERBS: &[(&str, bool, u8)] = &[
    ("list", true, 0),
    ("show", true, 0),
    ("lst", true, 0),
    ("list-id", true, 9),
    ("help", true, 9),
    ("identify", true, 9),
    ("pids", true, 9),
    ("exec", true, 3),
    ("monitor", true, 9),
    ("delete", true, 2),
    ("add", true, 1),
    ("set", true, 9),
    ("attach", true, 9),
];

fn ip_netns(c: &mut Cur, outer_ns: Option<String>) -> R<Command> {
    let Some(v) = c.next() else {
        return Ok(Command {
            netns: outer_ns,
            kind: CommandKind::Netns(NetnsCmd::List),
        });
    };
    if let Some(n) = c.peek()
        && !valid_netns_name(n.s())
    {
        return Err(c.e(n.col, format!("Invalid netns name \"{}\"", n.text)));
    }
    let verb = match lookup(v.s(), NETNS_VERBS) {
        None => return Err(unknown_verb(c, v, "ip netns help")),
        Some((9, full)) => {
            return Err(unsupported_verb(c, v, full, "add, delete, list or exec"));
        }
        Some((verb, _)) => verb,
    };
    let name = |c: &mut Cur| -> R<String> {
        match c.next() {
            Some(n) => Ok(n.text.to_string()),
            None => Err(c.e(v.col, "No netns name specified")),
        }
    };
    let kind = match verb {
        0 => {
            c.no_more("nothing after \"ip netns list\"")?;
            NetnsCmd::List
        }
        1 => {
            let n = name(c)?;
            c.no_more("a single namespace name")?;
            NetnsCmd::Add(n)
        }
        2 => {
            let n = name(c)?;
            c.no_more("a single namespace name")?;
            NetnsCmd::Del(n)
        }
        _ => {
            let n = name(c)?;
            if outer_ns.is_some() {
                return Err(c.e(
                    v.col,
                    "\"ip netns exec\" inside another namespace (ip -n or ip netns exec): nested namespaces are not supported",
                ));
            }
            let rest = &c.w[c.i..];
            if rest.is_empty() {
                return Err(c.e(
                    v.col,
                    format!("No command specified after \"ip netns exec {n}\""),
                ));
            }
            return parse_command(rest, Some(n));
        }
    };
    Ok(Command {
        netns: outer_ns,
        kind: CommandKind::Netns(kind),
    })
}

// --- ip tunnel ---------------------------------------------------------------

const TUNNEL_VERBS: &[(&str, bool, u8)] = &[
    ("add", true, 1),
    ("change", true, 9),
    ("delete", true, 2),
    ("show", true, 0),
    ("lst", true, 0),
    ("list", true, 0),
    ("prl", true, 9),
    ("6rd", true, 9),
    ("help", true, 9),
];

/// iptunnel.c parse_args' keywords.
const TUNNEL_KW: &[(&str, bool, u8)] = &[
    ("mode", false, 1),
    ("key", false, 0),
    ("ikey", false, 0),
    ("okey", false, 0),
    ("seq", false, 0),
    ("iseq", false, 0),
    ("oseq", false, 0),
    ("csum", false, 0),
    ("icsum", false, 0),
    ("ocsum", false, 0),
    ("nopmtudisc", false, 0),
    ("pmtudisc", false, 0),
    ("remote", false, 2),
    ("local", false, 3),
    ("dev", false, 4),
    ("ttl", false, 5),
    ("hoplimit", false, 5),
    ("hlim", false, 5),
    ("tos", false, 0),
    ("tclass", false, 0),
    ("dsfield", true, 0),
    ("ignore-df", false, 0),
    ("noignore-df", false, 0),
];

const TUNNEL_EXPECTED: &str = "NAME mode ipip [local A] [remote A] [ttl N] [dev D]";

fn ip_tunnel(c: &mut Cur) -> R<CommandKind> {
    let Some(v) = c.next() else {
        return Ok(CommandKind::Tunnel(TunnelCmd::Show { name: None }));
    };
    let verb = match lookup(v.s(), TUNNEL_VERBS) {
        None => {
            return Err(c.e(
                v.col,
                format!("Command \"{}\" is unknown, try \"ip tunnel help\"", v.text),
            ));
        }
        Some((9, full)) => return Err(unsupported_verb(c, v, full, "add, delete or show")),
        Some((verb, _)) => verb,
    };
    let mut name: Option<String> = None;
    let mut mode: Option<&Word> = None;
    let mut args = TunnelArgs::default();
    while let Some(w) = c.next() {
        let k = lookup(w.s(), TUNNEL_KW).map(|x| x.0);
        if verb != 1 && k.is_some() {
            return Err(c.unsupported(w, "a tunnel name"));
        }
        match k {
            Some(1) => {
                let x = c.need(w, "a tunnel mode (ipip)")?;
                match x.s() {
                    "ipip" | "ip/ip" => {}
                    "gre" | "gre/ip" | "sit" | "ipv6/ip" | "isatap" | "vti" => {
                        return Err(c.unsupported(x, "mode ipip"));
                    }
                    _ => {
                        return Err(c.e(
                            x.col,
                            format!("Unknown tunnel mode \"{}\": expected ipip", x.text),
                        ));
                    }
                }
                mode = Some(x);
            }
            Some(2) => {
                let x = c.need(w, "an IPv4 address")?;
                args.remote = tunnel_addr(c, x, true)?;
            }
            Some(3) => {
                let x = c.need(w, "an IPv4 address")?;
                args.local = tunnel_addr(c, x, true)?;
            }
            Some(4) => args.dev = Some(c.need(w, "a device name")?.text.to_string()),
            Some(5) => {
                let x = c.need(w, "a TTL (1..255 or inherit)")?;
                args.ttl = tunnel_ttl(c, x)?;
            }
            Some(_) => return Err(c.unsupported(w, TUNNEL_EXPECTED)),
            None => {
                let x = if w.s() == "name" {
                    c.need(w, "a tunnel name")?
                } else if matches(w.s(), "help") {
                    return Err(c.unsupported(w, TUNNEL_EXPECTED));
                } else {
                    w
                };
                if name.is_some() {
                    return Err(c.garbage("name", x));
                }
                name = Some(c.ifname(x, "name")?);
            }
        }
    }
    let cmd = match verb {
        0 => TunnelCmd::Show { name },
        2 => TunnelCmd::Del {
            name: name.ok_or_else(|| c.e(v.col, "expected a tunnel name after \"del\""))?,
        },
        _ => {
            if mode.is_none() {
                return Err(c.e(
                    v.col,
                    "cannot determine tunnel mode (ipip, gre, vti or sit): expected \"mode ipip\"",
                ));
            }
            let name = name.ok_or_else(|| {
                c.e(
                    v.col,
                    "expected a tunnel name (the simulator does not invent names)",
                )
            })?;
            TunnelCmd::Add { name, args }
        }
    };
    Ok(CommandKind::Tunnel(cmd))
}

// ---------------------------------------------------------------------------
// bridge
// ---------------------------------------------------------------------------

const BRIDGE_OPTIONS: &[(&str, bool, IpOpt)] = &[
    ("-help", true, IpOpt::Other),
    ("-Version", true, IpOpt::Other),
    ("-stats", true, IpOpt::Ignored),
    ("-statistics", true, IpOpt::Ignored),
    ("-details", true, IpOpt::Ignored),
    ("-oneline", true, IpOpt::Other),
    ("-timestamp", true, IpOpt::Other),
    ("-family", true, IpOpt::Other),
    ("-4", false, IpOpt::Inet),
    ("-6", false, IpOpt::Other),
    ("-netns", true, IpOpt::Netns),
    ("-compressvlans", true, IpOpt::Other),
    ("-force", true, IpOpt::Other),
    ("-json", true, IpOpt::Other),
    ("-pretty", true, IpOpt::Other),
    ("-batch", true, IpOpt::Other),
    ("-color", true, IpOpt::Other),
];

const BRIDGE_OBJECTS: &[(&str, bool, bool)] = &[
    ("link", true, false),
    ("fdb", true, true),
    ("mdb", true, false),
    ("vlan", true, false),
    ("vni", true, false),
    ("monitor", true, false),
    ("help", true, false),
];

const FDB_VERBS: &[(&str, bool, u8)] = &[
    ("add", true, 1),
    ("append", true, 2),
    ("replace", true, 3),
    ("delete", true, 4),
    ("get", true, 9),
    ("show", true, 0),
    ("lst", true, 0),
    ("list", true, 0),
    ("flush", true, 9),
    ("help", true, 9),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fk {
    Dev,
    Dst,
    Port,
    Vni,
    SelfFlag,
    Master,
    State(FdbState),
    Other,
}

/// fdb_modify's keywords, in order.
const FDB_KW: &[(&str, bool, Fk)] = &[
    ("dev", false, Fk::Dev),
    ("dst", false, Fk::Dst),
    ("nhid", false, Fk::Other),
    ("port", false, Fk::Port),
    ("vni", false, Fk::Vni),
    ("src_vni", false, Fk::Other),
    ("via", false, Fk::Other),
    ("self", false, Fk::SelfFlag),
    ("master", true, Fk::Master),
    ("router", true, Fk::Other),
    ("local", true, Fk::State(FdbState::Permanent)),
    ("permanent", true, Fk::State(FdbState::Permanent)),
    ("temp", true, Fk::State(FdbState::Static)),
    ("static", true, Fk::State(FdbState::Static)),
    ("dynamic", true, Fk::State(FdbState::Dynamic)),
    ("vlan", true, Fk::Other),
    ("use", true, Fk::Other),
    ("extern_learn", true, Fk::Other),
    ("sticky", true, Fk::Other),
];

const FDB_EXPECTED: &str =
    "MAC dev DEV [dst A] [master|self] [permanent|static|dynamic] [port P] [vni N]";

fn parse_bridge(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let (i, opt_ns, inet) = global_opts(w, "bridge", BRIDGE_OPTIONS, &exec_ns)?;
    let netns = exec_ns.or(opt_ns);
    let Some(objw) = w.get(i) else {
        return Err(perr(
            w[i - 1].col,
            "bridge: expected an object after \"bridge\" (fdb)",
        ));
    };
    match lookup(objw.s(), BRIDGE_OBJECTS) {
        None => {
            return Err(perr(
                objw.col,
                format!(
                    "bridge: Object \"{}\" is unknown, try \"bridge help\".",
                    objw.text
                ),
            ));
        }
        Some((false, full)) => {
            return Err(perr(
                objw.col,
                format!(
                    "bridge: object \"{}\" ({full}) is valid for the real tool but not supported by \
                     the simulator; expected fdb",
                    objw.text
                ),
            ));
        }
        Some((true, _)) => {}
    }
    let c = &mut Cur::new(w, i + 1, "bridge fdb", inet);
    let Some(v) = c.next() else {
        return Ok(Command {
            netns,
            kind: CommandKind::Fdb(FdbCmd::Show {
                dev: None,
                br: None,
            }),
        });
    };
    let verb = match lookup(v.s(), FDB_VERBS) {
        None => return Err(unknown_verb(c, v, "bridge fdb help")),
        Some((9, full)) => {
            return Err(unsupported_verb(
                c,
                v,
                full,
                "add, append, replace, delete or show",
            ));
        }
        Some((verb, _)) => verb,
    };
    let kind = if verb == 0 {
        let mut dev = None;
        let mut br = None;
        while let Some(x) = c.next() {
            match x.s() {
                "dev" | "brport" => dev = Some(c.need(x, "a device name")?.text.to_string()),
                "br" => br = Some(c.need(x, "a bridge name")?.text.to_string()),
                _ => return Err(c.unsupported(x, "[dev D] [br B]")),
            }
        }
        FdbCmd::Show { dev, br }
    } else {
        fdb_modify(c, v, verb)?
    };
    Ok(Command {
        netns,
        kind: CommandKind::Fdb(kind),
    })
}

fn fdb_modify(c: &mut Cur, verb: &Word, kind: u8) -> R<FdbCmd> {
    let mut dev: Option<String> = None;
    let mut dst: Option<Ipv4Addr> = None;
    let mut port: Option<u16> = None;
    let mut vni: Option<u32> = None;
    let mut self_ = false;
    let mut master = false;
    let mut state: Option<FdbState> = None;
    let mut addr: Option<&Word> = None;
    while let Some(w) = c.next() {
        match lookup(w.s(), FDB_KW).map(|x| x.0) {
            Some(Fk::Dev) => dev = Some(c.need(w, "a device name")?.text.to_string()),
            Some(Fk::Dst) => {
                let x = c.need(w, "an IPv4 address")?;
                if dst.is_some() {
                    return Err(c.garbage("dst", x));
                }
                dst = Some(c.addr(x)?);
            }
            Some(Fk::Port) if kind != 4 => {
                let x = c.need(w, "a UDP port")?;
                let Some(p) = get_u16(x.s()) else {
                    return Err(c.invarg("invalid port", x));
                };
                port = Some(p);
            }
            Some(Fk::Vni) if kind != 4 => {
                let x = c.need(w, "a VNI")?;
                let Some(n) = get_u32(x.s()) else {
                    return Err(c.invarg("invalid VNI", x));
                };
                vni = Some(n);
            }
            Some(Fk::SelfFlag) => self_ = true,
            Some(Fk::Master) => master = true,
            Some(Fk::State(s)) => {
                if state.is_some() {
                    return Err(c.duparg("state", w));
                }
                state = Some(s);
            }
            Some(_) => return Err(c.unsupported(w, FDB_EXPECTED)),
            None => {
                let x = if w.s() == "to" {
                    c.need(w, "a MAC address")?
                } else {
                    w
                };
                if matches(x.s(), "help") {
                    return Err(c.unsupported(x, FDB_EXPECTED));
                }
                if addr.is_some() {
                    return Err(c.garbage("to", x));
                }
                addr = Some(x);
            }
        }
    }
    let (Some(dev), Some(addr)) = (dev, addr) else {
        return Err(c.e(
            verb.col,
            format!("Device and address are required arguments. Expected {FDB_EXPECTED}"),
        ));
    };
    let Ok(mac) = mac_bytes(addr.s()).map_err(|_| ()).and_then(|m| {
        if addr.s().split(':').all(|p| p.len() <= 2) {
            Ok(m)
        } else {
            Err(())
        }
    }) else {
        return Err(c.e(
            addr.col,
            format!(
                "Invalid mac address {}: expected xx:xx:xx:xx:xx:xx",
                addr.text
            ),
        ));
    };
    Ok(if kind == 4 {
        FdbCmd::Del {
            mac,
            dev,
            dst,
            master,
            self_,
        }
    } else {
        FdbCmd::Add {
            mac,
            dev,
            dst,
            append: kind == 2,
            replace: kind == 3,
            master,
            self_,
            state: state.unwrap_or_default(),
            port,
            vni,
        }
    })
}

// ---------------------------------------------------------------------------
// getopt-style tools
// ---------------------------------------------------------------------------

/// One option or operand from [`getopt`].
enum Item<'w, 'a> {
    /// `at` is the word holding the option letter; `arg` its argument (a
    /// separate word, or the rest of the cluster as in `-c1`).
    Opt {
        c: char,
        arg: Option<Word<'a>>,
        at: &'w Word<'a>,
    },
    Operand(&'w Word<'a>),
}

struct OptSpec {
    prog: &'static str,
    /// Supported letters without an argument.
    flags: &'static str,
    /// Supported letters taking an argument.
    with_arg: &'static str,
    /// Letters the real tool knows but the simulator does not model.
    known: &'static str,
    /// Long options and the letter each stands for.
    long: &'static [(&'static str, char)],
    expected: &'static str,
}

/// GNU getopt: option clusters (`-vvvnnn`), attached or separate arguments
/// (`-c1`, `-c 1`), operands interleaved with options, `--` ends options.
fn getopt<'w, 'a>(w: &'w [Word<'a>], spec: &OptSpec) -> R<Vec<Item<'w, 'a>>> {
    let mut out = Vec::new();
    let mut i = 1;
    let mut only_operands = false;
    let unsupported = |at: &Word, what: &str| {
        perr(
            at.col,
            format!(
                "{}: option {what} is valid for the real tool but not supported by the simulator; expected {}",
                spec.prog, spec.expected
            ),
        )
    };
    while i < w.len() {
        let x = &w[i];
        i += 1;
        let t = x.s();
        if only_operands || !t.starts_with('-') || t == "-" {
            out.push(Item::Operand(x));
            continue;
        }
        if t == "--" {
            only_operands = true;
            continue;
        }
        if let Some(long) = t.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let Some(&(_, letter)) = spec.long.iter().find(|(n, _)| *n == name) else {
                return Err(perr(
                    x.col,
                    format!(
                        "{}: unrecognized option '{t}': expected {}",
                        spec.prog, spec.expected
                    ),
                ));
            };
            if spec.with_arg.contains(letter) {
                let arg = match value {
                    Some(v) => Word {
                        text: Cow::Owned(v.to_string()),
                        col: x.col,
                    },
                    None => match w.get(i) {
                        Some(a) => {
                            i += 1;
                            a.clone()
                        }
                        None => {
                            return Err(perr(
                                x.col,
                                format!("{}: option '--{name}' requires an argument", spec.prog),
                            ));
                        }
                    },
                };
                out.push(Item::Opt {
                    c: letter,
                    arg: Some(arg),
                    at: x,
                });
            } else if spec.flags.contains(letter) {
                if value.is_some() {
                    return Err(perr(
                        x.col,
                        format!("{}: option '--{name}' doesn't allow an argument", spec.prog),
                    ));
                }
                out.push(Item::Opt {
                    c: letter,
                    arg: None,
                    at: x,
                });
            } else {
                return Err(unsupported(x, &format!("\"{t}\"")));
            }
            continue;
        }
        let body: Vec<char> = t.chars().skip(1).collect();
        let mut k = 0;
        while k < body.len() {
            let ch = body[k];
            k += 1;
            if spec.with_arg.contains(ch) {
                let arg = if k < body.len() {
                    Word {
                        text: Cow::Owned(body[k..].iter().collect()),
                        col: x.col,
                    }
                } else {
                    match w.get(i) {
                        Some(a) => {
                            i += 1;
                            a.clone()
                        }
                        None => {
                            return Err(perr(
                                x.col,
                                format!(
                                    "{}: option requires an argument -- '{ch}': expected {}",
                                    spec.prog, spec.expected
                                ),
                            ));
                        }
                    }
                };
                out.push(Item::Opt {
                    c: ch,
                    arg: Some(arg),
                    at: x,
                });
                break;
            } else if spec.flags.contains(ch) {
                out.push(Item::Opt {
                    c: ch,
                    arg: None,
                    at: x,
                });
            } else if spec.known.contains(ch) {
                return Err(unsupported(x, &format!("-{ch}")));
            } else {
                return Err(perr(
                    x.col,
                    format!(
                        "{}: invalid option -- '{ch}': expected {}",
                        spec.prog, spec.expected
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// The argument of an option letter (getopt guarantees one for `with_arg` letters).
fn opt_arg<'a>(arg: Option<Word<'a>>, at: &Word<'a>) -> Word<'a> {
    arg.unwrap_or_else(|| at.clone())
}

// --- arp ---------------------------------------------------------------------

const ARP_SPEC: OptSpec = OptSpec {
    prog: "arp",
    flags: "adensv",
    with_arg: "iHtAp",
    known: "fDNVh?",
    long: &[
        ("all", 'a'),
        ("delete", 'd'),
        ("numeric", 'n'),
        ("set", 's'),
        ("device", 'i'),
        ("verbose", 'v'),
        ("hw-type", 'H'),
        ("protocol", 'A'),
        ("file", 'f'),
        ("use-device", 'D'),
        ("help", 'h'),
        ("version", 'V'),
    ],
    expected: "arp -s ADDR MAC -i DEV, arp -d ADDR -i DEV or arp -n|-a",
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ArpMode {
    Show,
    Set,
    Del,
}

fn parse_arp(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut mode = ArpMode::Show;
    let mut mode_at: &Word = &w[0];
    let mut dev: Option<(String, usize)> = None;
    let mut operands = Vec::new();
    for item in getopt(w, &ARP_SPEC)? {
        match item {
            Item::Operand(x) => operands.push(x),
            Item::Opt {
                c: c @ ('s' | 'd'),
                at,
                ..
            } => {
                let m = if c == 's' { ArpMode::Set } else { ArpMode::Del };
                if mode != ArpMode::Show && mode != m {
                    return Err(perr(at.col, "arp: -s and -d cannot be combined"));
                }
                mode = m;
                mode_at = at;
            }
            Item::Opt { c: 'i', arg, at } => {
                let a = opt_arg(arg, at);
                dev = Some((a.text.to_string(), at.col));
            }
            Item::Opt {
                c: c @ ('H' | 't' | 'A' | 'p'),
                arg,
                at,
            } => {
                let a = opt_arg(arg, at);
                let ok = if matches!(c, 'H' | 't') {
                    "ether"
                } else {
                    "inet"
                };
                if a.s() != ok {
                    return Err(perr(
                        a.col,
                        format!(
                            "arp: \"{}\" is not supported by the simulator: expected -{c} {ok}",
                            a.text
                        ),
                    ));
                }
            }
            Item::Opt { .. } => {}
        }
    }
    let host = |k: usize| -> R<Ipv4Addr> {
        let Some(x) = operands.get(k) else {
            return Err(perr(mode_at.col, "arp: need host name"));
        };
        match ipv4(x.s()) {
            Ok(a) => Ok(a),
            Err(AddrErr::Abbreviated) => Err(perr(x.col, format!("arp: {}", abbreviated_msg(x)))),
            Err(AddrErr::Bad) => Err(perr(
                x.col,
                format!(
                    "arp: {}: Host name lookup failure (the simulator has no DNS: use an IPv4 address)",
                    x.text
                ),
            )),
        }
    };
    let need_dev = |what: &str| -> R<String> {
        match &dev {
            Some((d, _)) => Ok(d.clone()),
            None => Err(perr(
                mode_at.col,
                format!(
                    "arp: \"arp {what}\" without -i is not supported by the simulator: add -i DEV"
                ),
            )),
        }
    };
    let kind = match mode {
        ArpMode::Show => {
            if let Some(x) = operands.first() {
                return Err(perr(
                    x.col,
                    format!(
                        "arp: \"{}\": showing one host is not supported by the simulator; expected arp -n or arp -a",
                        x.text
                    ),
                ));
            }
            if let Some((_, col)) = dev {
                return Err(perr(
                    col,
                    "arp: -i with a table display is not supported by the simulator; expected arp -n or arp -a",
                ));
            }
            NeighCmd::ArpShow
        }
        ArpMode::Set => {
            let addr = host(0)?;
            let Some(hw) = operands.get(1) else {
                return Err(perr(operands[0].col, "arp: need hardware address"));
            };
            let Ok(mac) = mac_bytes(hw.s()) else {
                return Err(perr(
                    hw.col,
                    format!(
                        "arp: invalid hardware address \"{}\": expected xx:xx:xx:xx:xx:xx",
                        hw.text
                    ),
                ));
            };
            let mut proxy = false;
            for x in &operands[2..] {
                match x.s() {
                    "pub" => proxy = true,
                    "temp" | "netmask" | "dontpub" | "auto" | "trail" => {
                        return Err(perr(
                            x.col,
                            format!(
                                "arp: \"{}\" is valid for the real tool but not supported by the simulator; expected [pub]",
                                x.text
                            ),
                        ));
                    }
                    _ => {
                        return Err(perr(
                            x.col,
                            format!(
                                "arp: unexpected argument \"{}\": Usage: arp [-v] [-i <if>] -s <host> <hwaddr> [pub]",
                                x.text
                            ),
                        ));
                    }
                }
            }
            let dev = need_dev("-s")?;
            NeighCmd::Add {
                addr,
                lladdr: Some(mac),
                dev,
                state: NudState::Permanent,
                replace: true,
                proxy,
            }
        }
        ArpMode::Del => {
            let addr = host(0)?;
            if let Some(x) = operands.get(1) {
                return Err(perr(
                    x.col,
                    format!(
                        "arp: unexpected argument \"{}\": Usage: arp [-v] [-i <if>] -d <host>",
                        x.text
                    ),
                ));
            }
            let dev = need_dev("-d")?;
            NeighCmd::Del { addr, dev }
        }
    };
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Neigh(kind),
    })
}

// --- sysctl ------------------------------------------------------------------

const SYSCTL_SPEC: OptSpec = OptSpec {
    prog: "sysctl",
    flags: "wqox",
    with_arg: "",
    known: "aAXbeNnpfrdhVSDE",
    long: &[
        ("write", 'w'),
        ("quiet", 'q'),
        ("all", 'a'),
        ("binary", 'b'),
        ("ignore", 'e'),
        ("names", 'N'),
        ("values", 'n'),
        ("load", 'p'),
        ("pattern", 'r'),
        ("help", 'h'),
        ("version", 'V'),
        ("system", 'S'),
        ("dry-run", 'D'),
        ("deprecated", 'E'),
    ],
    expected: "sysctl [-w] [-q] KEY[=VALUE]",
};

/// procps' key conversion (see the module docs): the path under /proc/sys.
fn sysctl_key(k: &str) -> String {
    let swapped: String = match k.find(['.', '/']).map(|i| k.as_bytes()[i]) {
        Some(b'.') => k
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => k.to_string(),
    };
    swapped
        .split('/')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

fn parse_sysctl(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut write = false;
    let mut operands = Vec::new();
    for item in getopt(w, &SYSCTL_SPEC)? {
        match item {
            Item::Operand(x) => operands.push(x),
            Item::Opt { c: 'w', .. } => write = true,
            Item::Opt { .. } => {}
        }
    }
    let Some(x) = operands.first() else {
        return Err(perr(
            w[0].col,
            "sysctl: no variables specified: expected KEY or KEY=VALUE",
        ));
    };
    if let Some(y) = operands.get(1) {
        if y.s().starts_with('=') || x.s().ends_with('=') {
            return Err(perr(
                y.col,
                "sysctl: command line(0): invalid syntax, continuing... (write KEY=VALUE without blanks)",
            ));
        }
        return Err(perr(
            y.col,
            format!(
                "sysctl: \"{}\": one variable per line is supported by the simulator; put it on its own line",
                y.text
            ),
        ));
    }
    let (key, value) = match x.s().split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None if write => {
            return Err(perr(
                x.col,
                format!(
                    "sysctl: command line(0): invalid syntax, continuing... (\"{}\" must be of the form name=value)",
                    x.text
                ),
            ));
        }
        None => (x.s(), None),
    };
    let key = sysctl_key(key);
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(perr(
            x.col,
            format!(
                "sysctl: malformed setting \"{}\": expected KEY[=VALUE]",
                x.text
            ),
        ));
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Sysctl { key, value },
    })
}

// --- modprobe ----------------------------------------------------------------

const MODPROBE_SPEC: OptSpec = OptSpec {
    prog: "modprobe",
    flags: "vq",
    with_arg: "",
    known: "abcdDfiInorRsSVhCw",
    long: &[
        ("verbose", 'v'),
        ("quiet", 'q'),
        ("remove", 'r'),
        ("all", 'a'),
        ("dry-run", 'n'),
    ],
    expected: "modprobe [-v] MODULE",
};

fn parse_modprobe(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut operands = Vec::new();
    for item in getopt(w, &MODPROBE_SPEC)? {
        if let Item::Operand(x) = item {
            operands.push(x);
        }
    }
    let Some(m) = operands.first() else {
        return Err(perr(
            w[0].col,
            "modprobe: ERROR: missing parameters: expected modprobe [-v] MODULE",
        ));
    };
    if let Some(p) = operands.get(1) {
        return Err(perr(
            p.col,
            format!(
                "modprobe: module parameter \"{}\" is valid for the real tool but not supported by the simulator; expected modprobe [-v] MODULE",
                p.text
            ),
        ));
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Modprobe {
            module: m.text.to_string(),
        },
    })
}

// --- ping --------------------------------------------------------------------

const PING_SPEC: OptSpec = OptSpec {
    prog: "ping",
    flags: "nq4",
    with_arg: "csMIiWt",
    known: "6?aAbBCdDefFhlLmNOpQrRSTUvVw3",
    long: &[],
    expected: "ping -c N [-s SIZE] [-M do|dont|want] [-I SRC|DEV] [-i SECS] [-W SECS] [-t TTL] [-n] [-q] DEST",
};

/// Seconds with an optional fraction (`0.2`, `.5`, `3`), in milliseconds.
fn secs_to_ms(s: &str) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, f),
        None => (s, ""),
    };
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut ms = whole.checked_mul(1000)?;
    for (k, b) in frac.bytes().take(3).enumerate() {
        ms += u64::from(b - b'0') * [100, 10, 1][k];
    }
    Some(ms)
}

fn range_err(prog: &str, x: &Word, lo: u64, hi: u64) -> ParseError {
    perr(
        x.col,
        format!(
            "{prog}: invalid argument: '{}': out of range: {lo} <= value <= {hi}",
            x.text
        ),
    )
}

fn parse_ping(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut count = None;
    let mut size = 56;
    let mut pmtu = PmtuMode::Want;
    let mut source = None;
    let mut interval_ms = 1000;
    let mut timeout_ms = 10_000;
    let mut ttl = None;
    let mut operands = Vec::new();
    for item in getopt(w, &PING_SPEC)? {
        let (c, x) = match item {
            Item::Operand(x) => {
                operands.push(x);
                continue;
            }
            Item::Opt { arg: None, .. } => continue,
            Item::Opt {
                c, arg: Some(a), ..
            } => (c, a),
        };
        let invalid = || perr(x.col, format!("ping: invalid argument: '{}'", x.text));
        match c {
            'c' => {
                let n = decimal(x.s()).ok_or_else(invalid)?;
                if n == 0 || n > u64::from(u32::MAX) {
                    return Err(range_err("ping", &x, 1, u64::from(u32::MAX)));
                }
                count = Some(n as u32);
            }
            's' => {
                let n = decimal(x.s()).ok_or_else(invalid)?;
                if n > 65507 {
                    return Err(perr(
                        x.col,
                        format!(
                            "ping: packet size {} is too large. Maximum is 65507",
                            x.text
                        ),
                    ));
                }
                size = n as u32;
            }
            'M' => {
                pmtu = match x.s() {
                    "do" => PmtuMode::Do,
                    "dont" => PmtuMode::Dont,
                    "want" => PmtuMode::Want,
                    _ => {
                        return Err(perr(
                            x.col,
                            format!(
                                "ping: invalid -M argument: {}: expected do, dont or want",
                                x.text
                            ),
                        ));
                    }
                }
            }
            'I' => {
                source = Some(match ipv4(x.s()) {
                    Ok(a) => PingSource::Addr(a),
                    Err(_) => PingSource::Dev(x.text.to_string()),
                });
            }
            'i' => {
                interval_ms = secs_to_ms(x.s()).ok_or_else(|| {
                    perr(
                        x.col,
                        format!(
                            "ping: bad timing interval: {}: expected seconds such as 0.2",
                            x.text
                        ),
                    )
                })?;
            }
            'W' => {
                timeout_ms = secs_to_ms(x.s()).ok_or_else(|| {
                    perr(
                        x.col,
                        format!("ping: bad linger time: {}: expected seconds", x.text),
                    )
                })?;
            }
            't' => {
                let n = decimal(x.s()).ok_or_else(invalid)?;
                if n > 255 {
                    return Err(range_err("ping", &x, 0, 255));
                }
                ttl = Some(n as u8);
            }
            _ => {}
        }
    }
    let Some(d) = operands.first() else {
        return Err(perr(
            w[0].col,
            "ping: usage error: Destination address required",
        ));
    };
    if let Some(x) = operands.get(1) {
        return Err(perr(
            x.col,
            format!(
                "ping: \"{}\": more than one destination (source-routed hops) is not supported by the simulator",
                x.text
            ),
        ));
    }
    let dst = match ipv4(d.s()) {
        Ok(a) => a,
        Err(AddrErr::Abbreviated) => {
            return Err(perr(d.col, format!("ping: {}", abbreviated_msg(d))));
        }
        Err(AddrErr::Bad) => {
            return Err(perr(
                d.col,
                format!(
                    "ping: {}: Name or service not known (the simulator has no DNS: use an IPv4 address)",
                    d.text
                ),
            ));
        }
    };
    let Some(count) = count else {
        return Err(perr(
            w[0].col,
            "ping without -c would run forever: add -c N",
        ));
    };
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Ping(PingCmd {
            dst,
            count,
            size,
            pmtu,
            source,
            interval_ms,
            timeout_ms,
            ttl,
        }),
    })
}

// --- traceroute --------------------------------------------------------------

const TRACEROUTE_SPEC: OptSpec = OptSpec {
    prog: "traceroute",
    flags: "n",
    with_arg: "",
    known: "abcdefghijklmopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    long: &[],
    expected: "traceroute [-n] DEST",
};

fn parse_traceroute(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut numeric = false;
    let mut operands = Vec::new();
    for item in getopt(w, &TRACEROUTE_SPEC)? {
        match item {
            Item::Operand(x) => operands.push(x),
            Item::Opt { .. } => numeric = true,
        }
    }
    let Some(d) = operands.first() else {
        return Err(perr(
            w[0].col,
            "traceroute: Specify \"host\" missing argument: expected traceroute [-n] DEST",
        ));
    };
    if let Some(x) = operands.get(1) {
        return Err(perr(
            x.col,
            format!(
                "traceroute: packet length \"{}\" is valid for the real tool but not supported by the simulator; expected traceroute [-n] DEST",
                x.text
            ),
        ));
    }
    let dst = match ipv4(d.s()) {
        Ok(a) => a,
        Err(AddrErr::Abbreviated) => {
            return Err(perr(d.col, format!("traceroute: {}", abbreviated_msg(d))));
        }
        Err(AddrErr::Bad) => {
            return Err(perr(
                d.col,
                format!(
                    "traceroute: {}: Name or service not known (the simulator has no DNS: use an IPv4 address)",
                    d.text
                ),
            ));
        }
    };
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Traceroute { dst, numeric },
    })
}

// --- tcpdump -----------------------------------------------------------------

/// `--immediate-mode` maps to this pseudo-letter.
const IMMEDIATE: char = '\u{1}';

const TCPDUMP_SPEC: OptSpec = OptSpec {
    prog: "tcpdump",
    flags: "nvepqtlxXAS\u{1}",
    with_arg: "iw",
    known: "abBcCdDEfFGhHIjJKLmMNOQrsTuUVWyYzZ#",
    long: &[
        ("immediate-mode", IMMEDIATE),
        ("interface", 'i'),
        ("number", '#'),
        ("count", 'c'),
        ("list-interfaces", 'D'),
        ("help", 'h'),
        ("version", 'V'),
    ],
    expected: "tcpdump [-i DEV] [-w FILE] [-n] [-v] [-e] [-p] [--immediate-mode] [EXPRESSION]",
};

fn parse_tcpdump(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut dev = None;
    let mut write = None;
    for item in getopt(w, &TCPDUMP_SPEC)? {
        match item {
            Item::Opt { c: 'i', arg, at } => dev = Some(opt_arg(arg, at).text.to_string()),
            Item::Opt { c: 'w', arg, at } => write = Some(opt_arg(arg, at).text.to_string()),
            // Display flags and the filter expression change nothing the
            // simulator records.
            Item::Opt { .. } | Item::Operand(_) => {}
        }
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::Tcpdump { dev, write },
    })
}

// --- iptables-save, iptables-restore, conntrack -------------------------------

/// iptables' tables, as `-t` names them.
const IPT_TABLES: &[&str] = &["filter", "nat", "mangle", "raw", "security"];

const IPTABLES_SAVE_SPEC: OptSpec = OptSpec {
    prog: "iptables-save",
    flags: "c",
    with_arg: "t",
    known: "bdMf46hV",
    long: &[
        ("counters", 'c'),
        ("table", 't'),
        ("dump", 'd'),
        ("modprobe", 'M'),
        ("file", 'f'),
        ("help", 'h'),
        ("version", 'V'),
    ],
    expected: "iptables-save [-c] [-t TABLE]",
};

fn parse_iptables_save(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut table = None;
    let mut counters = false;
    for item in getopt(w, &IPTABLES_SAVE_SPEC)? {
        match item {
            Item::Opt { c: 'c', .. } => counters = true,
            Item::Opt { c: 't', arg, at } => {
                let a = opt_arg(arg, at);
                if !IPT_TABLES.contains(&a.s()) {
                    return Err(perr(
                        a.col,
                        format!(
                            "iptables-save: Table `{}' does not exist: expected one of {}",
                            a.s(),
                            IPT_TABLES.join(", ")
                        ),
                    ));
                }
                table = Some(a.text.to_string());
            }
            Item::Opt { .. } => {}
            Item::Operand(x) => {
                return Err(perr(
                    x.col,
                    "iptables-save: Unknown arguments found on commandline: expected iptables-save [-c] [-t TABLE]",
                ));
            }
        }
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::IptablesSave { table, counters },
    })
}

const IPTABLES_RESTORE_SPEC: OptSpec = OptSpec {
    prog: "iptables-restore",
    flags: "nc",
    with_arg: "",
    known: "bvVthMTwW",
    long: &[
        ("noflush", 'n'),
        ("counters", 'c'),
        ("verbose", 'v'),
        ("version", 'V'),
        ("test", 't'),
        ("help", 'h'),
        ("modprobe", 'M'),
        ("table", 'T'),
        ("wait", 'w'),
        ("wait-interval", 'W'),
    ],
    expected: "iptables-restore [-n|--noflush] [-c] <<EOF",
};

fn parse_iptables_restore(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    let mut noflush = false;
    let mut counters = false;
    for item in getopt(w, &IPTABLES_RESTORE_SPEC)? {
        match item {
            Item::Opt { c: 'n', .. } => noflush = true,
            Item::Opt { c: 'c', .. } => counters = true,
            Item::Opt { .. } => {}
            Item::Operand(x) => {
                return Err(perr(
                    x.col,
                    format!(
                        "iptables-restore: reading rules from a file (\"{}\") is not supported: give \
                         them as a here-document (`iptables-restore <<EOF`, the rules, then `EOF`)",
                        x.s()
                    ),
                ));
            }
        }
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::IptablesRestore {
            noflush,
            counters,
            input: String::new(),
        },
    })
}

/// `conntrack -L [conntrack]` / `conntrack --dump`: the only command modelled.
fn parse_conntrack(w: &[Word], exec_ns: Option<String>) -> R<Command> {
    const EXPECTED: &str = "expected conntrack -L";
    // conntrack-tools' commands and options (conntrack.c), for the message.
    const KNOWN: &[&str] = &[
        "-I",
        "-U",
        "-D",
        "-G",
        "-E",
        "-F",
        "-A",
        "-C",
        "-S",
        "-h",
        "-V",
        "-s",
        "-d",
        "-r",
        "-q",
        "-p",
        "-t",
        "-u",
        "-e",
        "-a",
        "-z",
        "-m",
        "-i",
        "-f",
        "-o",
        "-n",
        "-g",
        "-j",
        "-w",
        "-l",
        "-c",
        "-b",
        "--create",
        "--update",
        "--delete",
        "--get",
        "--event",
        "--flush",
        "--count",
        "--stats",
        "--help",
        "--version",
        "--src",
        "--dst",
        "--reply-src",
        "--reply-dst",
        "--proto",
        "--timeout",
        "--status",
        "--zero",
        "--mark",
        "--output",
        "--src-nat",
        "--dst-nat",
        "--family",
        "--buffer-size",
        "--zone",
        "--label",
    ];
    let mut listed = false;
    let mut i = 1;
    while let Some(x) = w.get(i) {
        let t = x.s();
        if !listed && (t == "-L" || t == "--dump") {
            listed = true;
            if w.get(i + 1).is_some_and(|n| n.s() == "conntrack") {
                i += 1;
            }
        } else if t.starts_with('-')
            && KNOWN
                .iter()
                .any(|k| t == *k || t.starts_with(&format!("{k}=")))
        {
            return Err(perr(
                x.col,
                format!(
                    "conntrack: option \"{t}\" is valid for the real tool but not supported by the simulator; {EXPECTED}"
                ),
            ));
        } else if t.starts_with('-') {
            return Err(perr(
                x.col,
                format!("conntrack v1.4.7 (conntrack-tools): unknown option `{t}': {EXPECTED}"),
            ));
        } else if listed
            && w.get(i - 1)
                .is_some_and(|p| p.s() == "-L" || p.s() == "--dump")
        {
            return Err(perr(
                x.col,
                format!(
                    "conntrack: table \"{t}\" is not supported by the simulator (only the conntrack table is): {EXPECTED}"
                ),
            ));
        } else {
            return Err(perr(
                x.col,
                format!("conntrack v1.4.7 (conntrack-tools): unknown type `{t}': {EXPECTED}"),
            ));
        }
        i += 1;
    }
    if !listed {
        return Err(perr(
            w[0].col,
            format!("conntrack: no command given: {EXPECTED}"),
        ));
    }
    Ok(Command {
        netns: exec_ns,
        kind: CommandKind::ConntrackList,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(line: &str) -> Command {
        parse_line(line).unwrap_or_else(|e| panic!("{line:?} failed: col {} {}", e.col, e.message))
    }
    fn kind(line: &str) -> CommandKind {
        ok(line).kind
    }
    fn err(line: &str) -> ParseError {
        match parse_line(line) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(e) => e,
        }
    }
    /// Character column of the `nth` (0-based) occurrence of `needle`.
    /// (Whole words only: the needle must be bounded by blanks or the line ends.)
    fn col_of(line: &str, needle: &str, nth: usize) -> usize {
        let (byte, _) = line
            .match_indices(needle)
            .filter(|(b, m)| {
                let before = line[..*b].chars().next_back();
                let after = line[b + m.len()..].chars().next();
                before.is_none_or(char::is_whitespace) && after.is_none_or(char::is_whitespace)
            })
            .nth(nth)
            .expect("needle in line");
        line[..byte].chars().count()
    }
    /// The error is at the (first) occurrence of `word` and its message names it
    /// and contains `msg`.
    fn err_at(line: &str, word: &str, msg: &str) -> ParseError {
        err_at_nth(line, word, 0, msg)
    }
    fn err_at_nth(line: &str, word: &str, nth: usize, msg: &str) -> ParseError {
        let e = err(line);
        assert_eq!(
            e.col,
            col_of(line, word, nth),
            "{line:?}: wrong column for {word:?}: {}",
            e.message
        );
        assert!(
            e.message.contains(msg),
            "{line:?}: message {:?} lacks {msg:?}",
            e.message
        );
        e
    }
    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn mac(s: &str) -> MacAddr {
        s.parse::<MacAddr>().expect("valid MAC")
    }
    fn noop() -> Command {
        Command {
            netns: None,
            kind: CommandKind::Noop,
        }
    }
    fn in_ns(ns: &str, kind: CommandKind) -> Command {
        Command {
            netns: Some(ns.to_string()),
            kind,
        }
    }
    fn root(kind: CommandKind) -> Command {
        Command { netns: None, kind }
    }
    fn rs(prefix: &str) -> RouteSpec {
        RouteSpec {
            rtype: RouteType::Unicast,
            prefix: net(prefix),
            gateway: None,
            dev: None,
            src: None,
            onlink: false,
            table: None,
            metric: None,
            scope: None,
            proto: None,
            mtu: None,
            nexthops: vec![],
        }
    }
    fn set(dev: &str) -> LinkSet {
        LinkSet {
            dev: dev.to_string(),
            ..LinkSet::default()
        }
    }
    fn sysctl(key: &str, value: Option<&str>) -> CommandKind {
        CommandKind::Sysctl {
            key: key.to_string(),
            value: value.map(str::to_string),
        }
    }
    fn rule() -> RuleSpec {
        RuleSpec {
            priority: None,
            from: None,
            to: None,
            iif: None,
            oif: None,
            fwmark: None,
            table: None,
            action: None,
            not: false,
        }
    }
    fn ping(dst: &str, count: u32) -> PingCmd {
        PingCmd {
            dst: a(dst),
            count,
            size: 56,
            pmtu: PmtuMode::Want,
            source: None,
            interval_ms: 1000,
            timeout_ms: 10_000,
            ttl: None,
        }
    }

    // --- the seed article (VXLAN and IPIP listings, prompts stripped) -------

    fn iptables(line: &str) -> CommandKind {
        let words: Vec<&str> = line.split(' ').skip(1).collect();
        let mut cols = Vec::new();
        let mut col = line.find(' ').unwrap() + 1;
        for w in &words {
            cols.push(col);
            col += w.chars().count() + 1;
        }
        CommandKind::Iptables {
            args: words.iter().map(|w| w.to_string()).collect(),
            args_cols: cols,
        }
    }

    fn vxlan_node(node: u8, peer: u8) -> Vec<(String, Command)> {
        let l = |s: &str| {
            s.replace("{n}", &node.to_string())
                .replace("{p}", &peer.to_string())
        };
        vec![
            ("set -ux".into(), noop()),
            (
                "sysctl -w net.ipv4.ip_forward=1".into(),
                root(sysctl("net/ipv4/ip_forward", Some("1"))),
            ),
            (
                "sysctl -w net.ipv4.conf.all.proxy_arp=1".into(),
                root(sysctl("net/ipv4/conf/all/proxy_arp", Some("1"))),
            ),
            (
                "sysctl -w net.ipv4.conf.all.rp_filter=0".into(),
                root(sysctl("net/ipv4/conf/all/rp_filter", Some("0"))),
            ),
            (
                "iptables -A FORWARD -d 172.16.0.0/16 -j ACCEPT".into(),
                root(iptables("iptables -A FORWARD -d 172.16.0.0/16 -j ACCEPT")),
            ),
            (
                "iptables -A FORWARD -s 172.16.0.0/16 -j ACCEPT".into(),
                root(iptables("iptables -A FORWARD -s 172.16.0.0/16 -j ACCEPT")),
            ),
            ("".into(), noop()),
            (
                "ip link add vxlan.1 type vxlan vni 1".into(),
                root(CommandKind::Link(LinkCmd::Add {
                    name: "vxlan.1".into(),
                    kind: LinkKind::Vxlan(VxlanArgs {
                        vni: Some(1),
                        ..VxlanArgs::default()
                    }),
                    mtu: None,
                    address: None,
                })),
            ),
            (
                "ip link set vxlan.1 up".into(),
                root(CommandKind::Link(LinkCmd::Set(LinkSet {
                    up: Some(true),
                    ..set("vxlan.1")
                }))),
            ),
            (
                l("ip addr add 172.16.{n}.0/32 dev vxlan.1"),
                root(CommandKind::Addr(AddrCmd::Add {
                    addr: net(&l("172.16.{n}.0/32")),
                    dev: "vxlan.1".into(),
                    broadcast: None,
                    scope: None,
                })),
            ),
            (
                l("ip route add 172.16.{p}.0/24 via 172.16.{p}.0 dev vxlan.1 onlink"),
                root(CommandKind::Route(RouteCmd::Add(RouteSpec {
                    gateway: Some(a(&l("172.16.{p}.0"))),
                    dev: Some("vxlan.1".into()),
                    onlink: true,
                    ..rs(&l("172.16.{p}.0/24"))
                }))),
            ),
            (
                "ip netns add test3".into(),
                root(CommandKind::Netns(NetnsCmd::Add("test3".into()))),
            ),
            (
                "ip link set br-veth3 up".into(),
                root(CommandKind::Link(LinkCmd::Set(LinkSet {
                    up: Some(true),
                    ..set("br-veth3")
                }))),
            ),
            (
                "ip link set netns test3 dev veth3".into(),
                root(CommandKind::Link(LinkCmd::Set(LinkSet {
                    netns: Some("test3".into()),
                    ..set("veth3")
                }))),
            ),
            (
                l("ip route add 172.16.{n}.1/32 dev br-veth3"),
                root(CommandKind::Route(RouteCmd::Add(RouteSpec {
                    dev: Some("br-veth3".into()),
                    ..rs(&l("172.16.{n}.1/32"))
                }))),
            ),
            (
                "ip netns exec test3 ip link set veth3 up".into(),
                in_ns(
                    "test3",
                    CommandKind::Link(LinkCmd::Set(LinkSet {
                        up: Some(true),
                        ..set("veth3")
                    })),
                ),
            ),
            (
                l("ip netns exec test3 ip addr add 172.16.{n}.1/24 dev veth3"),
                in_ns(
                    "test3",
                    CommandKind::Addr(AddrCmd::Add {
                        addr: net(&l("172.16.{n}.1/24")),
                        dev: "veth3".into(),
                        broadcast: None,
                        scope: None,
                    }),
                ),
            ),
            (
                "ip netns exec test3 ip route add 169.254.1.1 dev veth3".into(),
                in_ns(
                    "test3",
                    CommandKind::Route(RouteCmd::Add(RouteSpec {
                        dev: Some("veth3".into()),
                        ..rs("169.254.1.1/32")
                    })),
                ),
            ),
            (
                l(
                    "ip netns exec test3 ip route add default via 169.254.1.1 dev veth3 src 172.16.{n}.1",
                ),
                in_ns(
                    "test3",
                    CommandKind::Route(RouteCmd::Add(RouteSpec {
                        gateway: Some(a("169.254.1.1")),
                        dev: Some("veth3".into()),
                        src: Some(a(&l("172.16.{n}.1"))),
                        ..rs("0.0.0.0/0")
                    })),
                ),
            ),
        ]
    }

    #[test]
    fn seed_article_vxlan_listings() {
        for (node, peer) in [(1, 2), (2, 1)] {
            for (line, want) in vxlan_node(node, peer) {
                assert_eq!(ok(&line), want, "{line}");
            }
        }
    }

    #[test]
    fn seed_article_veth_mtu_after_type_is_an_error_as_in_iproute2() {
        // iproute2 6.1 prints "Usage: ip link <options> type veth [peer <options>]"
        // and exits 1: after "type veth" only "peer ..." may follow.
        let line = "ip link add name veth3 type veth mtu 1450 peer name br-veth3 mtu 1450";
        let e = err_at(
            line,
            "mtu",
            "Usage: ip link <options> type veth [peer <options>]",
        );
        assert!(e.message.contains("\"mtu\""), "{}", e.message);
        // The form iproute2 accepts: first device's options before "type".
        assert_eq!(
            kind("ip link add name veth3 mtu 1450 type veth peer name br-veth3 mtu 1450"),
            CommandKind::Link(LinkCmd::Add {
                name: "veth3".into(),
                kind: LinkKind::Veth {
                    peer: "br-veth3".into(),
                    peer_mtu: Some(1450),
                    peer_address: None,
                    peer_netns: None,
                },
                mtu: Some(1450),
                address: None,
            })
        );
    }

    #[test]
    fn seed_article_arp_and_fdb() {
        assert_eq!(ok("# 此处的mac地址是另一台主机上ip a命令查看得到"), noop());
        assert_eq!(
            kind("arp -s 172.16.2.0 2a:c5:85:90:a7:65 -i vxlan.1"),
            CommandKind::Neigh(NeighCmd::Add {
                addr: a("172.16.2.0"),
                lladdr: Some(mac("2a:c5:85:90:a7:65")),
                dev: "vxlan.1".into(),
                state: NudState::Permanent,
                replace: true,
                proxy: false,
            })
        );
        assert_eq!(
            kind("bridge fdb append 2a:c5:85:90:a7:65 dev vxlan.1 dst 192.168.56.2"),
            CommandKind::Fdb(FdbCmd::Add {
                mac: mac("2a:c5:85:90:a7:65"),
                dev: "vxlan.1".into(),
                dst: Some(a("192.168.56.2")),
                append: true,
                replace: false,
                master: false,
                self_: false,
                state: FdbState::Permanent,
                port: None,
                vni: None,
            })
        );
        // Indented in the article.
        assert_eq!(
            kind("  arp -s 172.16.1.0 9e:e9:bd:69:a1:a9 -i vxlan.1"),
            CommandKind::Neigh(NeighCmd::Add {
                addr: a("172.16.1.0"),
                lladdr: Some(mac("9e:e9:bd:69:a1:a9")),
                dev: "vxlan.1".into(),
                state: NudState::Permanent,
                replace: true,
                proxy: false,
            })
        );
        assert_eq!(
            kind("bridge fdb append 9e:e9:bd:69:a1:a9 dev vxlan.1 dst 192.168.56.6"),
            CommandKind::Fdb(FdbCmd::Add {
                mac: mac("9e:e9:bd:69:a1:a9"),
                dev: "vxlan.1".into(),
                dst: Some(a("192.168.56.6")),
                append: true,
                replace: false,
                master: false,
                self_: false,
                state: FdbState::Permanent,
                port: None,
                vni: None,
            })
        );
    }

    #[test]
    fn seed_article_ipip_listing() {
        let route = |dst: &str, gw: &str, src: &str| {
            CommandKind::Route(RouteCmd::Add(RouteSpec {
                gateway: Some(a(gw)),
                dev: Some("tunl0".into()),
                src: Some(a(src)),
                onlink: true,
                ..rs(dst)
            }))
        };
        let dummy0 = CommandKind::Link(LinkCmd::Add {
            name: "dummy0".into(),
            kind: LinkKind::Dummy,
            mtu: None,
            address: None,
        });
        let addr = |s: &str| {
            CommandKind::Addr(AddrCmd::Add {
                addr: net(s),
                dev: "dummy0".into(),
                broadcast: None,
                scope: None,
            })
        };
        let host_route = |s: &str| {
            CommandKind::Route(RouteCmd::Add(RouteSpec {
                dev: Some("dummy".into()),
                ..rs(s)
            }))
        };
        let up = |d: &str| {
            CommandKind::Link(LinkCmd::Set(LinkSet {
                up: Some(true),
                ..set(d)
            }))
        };
        let cases = vec![
            (
                "ip tunnel add mytunl0 mode ipip local 192.168.56.2",
                CommandKind::Tunnel(TunnelCmd::Add {
                    name: "mytunl0".into(),
                    args: TunnelArgs {
                        local: Some(a("192.168.56.2")),
                        ..TunnelArgs::default()
                    },
                }),
            ),
            (
                "modprobe ipip",
                CommandKind::Modprobe {
                    module: "ipip".into(),
                },
            ),
            ("ip link set tunl0 up", up("tunl0")),
            (
                "ip route add 172.16.3.0/24 via 192.168.56.6 dev tunl0 src 192.168.56.6 onlink",
                route("172.16.3.0/24", "192.168.56.6", "192.168.56.6"),
            ),
            ("ip link add dummy0 type dummy", dummy0.clone()),
            ("ip addr add 172.16.2.1 dev dummy0", addr("172.16.2.1/32")),
            (
                "ip route add 172.16.2.1 dev dummy",
                host_route("172.16.2.1/32"),
            ),
            ("ip link set dummy up", up("dummy")),
            ("ip link set tunl0 up", up("tunl0")),
            (
                "ip route add 172.16.2.0/24 via 192.168.56.2 dev tunl0 src 192.168.56.2 onlink",
                route("172.16.2.0/24", "192.168.56.2", "192.168.56.2"),
            ),
            ("ip link add dummy0 type dummy", dummy0),
            ("ip addr add 172.16.3.1 dev dummy0", addr("172.16.3.1/32")),
            (
                "ip route add 172.16.3.1 dev dummy",
                host_route("172.16.3.1/32"),
            ),
            ("ip link set dummy up", up("dummy")),
            (
                "tcpdump -vvvnnn -i tunl0",
                CommandKind::Tcpdump {
                    dev: Some("tunl0".into()),
                    write: None,
                },
            ),
            ("# 或抓取主机网卡的数据包", CommandKind::Noop),
            ("# 或根据目的ip抓取ipip单向报文", CommandKind::Noop),
            (
                "tcpdump -i enp0s3 \"ip proto 4 and (ip[20+16:1]=172 and ip[20+17:1]=16 and ip[20+18:1]=3 and ip[20+19:1]=1)\"",
                CommandKind::Tcpdump {
                    dev: Some("enp0s3".into()),
                    write: None,
                },
            ),
            ("# 或双向报文", CommandKind::Noop),
            (
                "tcpdump -i enp0s3 \"ip proto 4 and ( (ip[20+12:1]=172 and ip[20+13:1]=16 and ip[20+14:1]=3 and ip[20+15:1]=1) or (ip[20+16:1]=172 and ip[20+17:1]=16 and ip[20+18:1]=2 and ip[20+19:1]=1) )\"",
                CommandKind::Tcpdump {
                    dev: Some("enp0s3".into()),
                    write: None,
                },
            ),
            (
                "ip route add 172.16.3.0/24 dev br0",
                CommandKind::Route(RouteCmd::Add(RouteSpec {
                    dev: Some("br0".into()),
                    ..rs("172.16.3.0/24")
                })),
            ),
            (
                "iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -o tunl0 -j TCPMSS --set-mss 1440",
                iptables(
                    "iptables -t mangle -A FORWARD -p tcp --tcp-flags SYN,RST SYN -o tunl0 -j TCPMSS --set-mss 1440",
                ),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(kind(line), want, "{line}");
        }
    }

    #[test]
    fn seed_article_lines_that_are_errors() {
        // Shell pipelines, a typo, and a tool the simulator does not have.
        err_at("lsmod | grep ipip", "|", "one simple command per line");
        let e = err_at("lsmod", "lsmod", "unknown command \"lsmod\"");
        assert_eq!(
            e.message,
            "unknown command \"lsmod\": expected one of ip, bridge, arp, sysctl, modprobe, iptables, iptables-save, iptables-restore, conntrack, ping, traceroute, tcpdump, nc, iperf3, bird, birdc, pkill, killall"
        );
        // The article's nc lines parse (cmd/traffic.rs has their tests).
        assert!(matches!(kind("nc -kl 172.16.2.1 8888"), CommandKind::Nc(_)));
        assert!(matches!(
            kind("nc -s 172.16.3.1 172.16.2.1 8888"),
            CommandKind::Nc(_)
        ));
        err_at(
            "tcpdum -vvvnnn -i enp0s3 host 192.168.56.6",
            "tcpdum",
            "unknown command \"tcpdum\"",
        );
        // The article's prompts must be removed by the scenario author.
        for line in [
            "[root@localhost ~]# ip link add dummy0 type dummy",
            "[root@localhost ~]# ip route add 172.16.2.1 dev dummy",
            "[root@localhost ~]# nc -kl 172.16.2.1 8888",
        ] {
            let e = err(line);
            assert_eq!(e.col, 0, "{line}");
            assert!(
                e.message.contains("[root@localhost ~]#") && e.message.contains("prompt"),
                "{}",
                e.message
            );
        }
        let e = err("[root@localhost ~]# lsmod | grep ipip");
        assert!(e.message.contains("prompt"), "{}", e.message);
    }

    // --- shell words ---------------------------------------------------------

    #[test]
    fn split_words_quotes_escapes_and_columns() {
        let line = r#"a 'b c' "d\"e" f\ g  h"i"'j' $X"#;
        let w = split_words(line).unwrap();
        let texts: Vec<&str> = w.iter().map(|w| w.s()).collect();
        assert_eq!(texts, ["a", "b c", "d\"e", "f g", "hij", "$X"]);
        let cols: Vec<usize> = w.iter().map(|w| w.col).collect();
        assert_eq!(cols, [0, 2, 8, 15, 21, 29]);
        assert!(matches!(w[0].text, Cow::Borrowed(_)));
        assert!(matches!(w[1].text, Cow::Owned(_)));
        // Double quotes keep backslashes that escape nothing.
        assert_eq!(split_words(r#""a\b""#).unwrap()[0].s(), "a\\b");
        // Empty quoted word.
        assert_eq!(split_words("x '' y").unwrap().len(), 3);
        // Comments start only at a word start.
        let w = split_words("ip a#b # c d").unwrap();
        assert_eq!(w.iter().map(|w| w.s()).collect::<Vec<_>>(), ["ip", "a#b"]);
        assert!(split_words("   ").unwrap().is_empty());
        assert!(split_words("# only a comment").unwrap().is_empty());
    }

    #[test]
    fn split_words_errors() {
        let e = split_words("ip link set 'veth3 up").unwrap_err();
        assert_eq!(e.col, 12);
        assert!(e.message.contains("unterminated single quote"));
        let e = split_words("echo \"abc").unwrap_err();
        assert_eq!(e.col, 5);
        assert!(e.message.contains("unterminated double quote"));
        let e = split_words("网卡 'x").unwrap_err();
        assert_eq!(e.col, 3);
        let e = split_words("ip link \\").unwrap_err();
        assert_eq!(e.col, 8);
        for (line, col) in [
            ("a | b", 2),
            ("a;b", 1),
            ("a > f", 2),
            ("a && b", 2),
            ("(a)", 0),
            ("a `b`", 2),
        ] {
            assert_eq!(split_words(line).unwrap_err().col, col, "{line}");
        }
        // Quoted operators are plain characters.
        assert_eq!(split_words("a '|' \"&&\" \\;").unwrap().len(), 4);
    }

    #[test]
    fn quoting_in_commands() {
        assert_eq!(
            kind(r#"ip link set "veth3" up"#),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                up: Some(true),
                ..set("veth3")
            }))
        );
        assert_eq!(
            kind(r#"ip link set ve"th"'3' up"#),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                up: Some(true),
                ..set("veth3")
            }))
        );
        assert_eq!(
            kind(r"ip link set veth\3 up"),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                up: Some(true),
                ..set("veth3")
            }))
        );
        assert_eq!(
            kind(r#"sysctl -w "net.ipv4.ip_forward=1""#),
            sysctl("net/ipv4/ip_forward", Some("1"))
        );
        assert_eq!(
            kind("ip link set veth3 up   # bring it up"),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                up: Some(true),
                ..set("veth3")
            }))
        );
        // A quoted word containing a blank is still one (invalid) device name.
        err_at("ip link set 'veth 3' up", "'veth 3'", "not a valid ifname");
        err_at(
            "ip link show | grep veth",
            "|",
            "one simple command per line",
        );
    }

    #[test]
    fn multibyte_columns_are_chars() {
        let line = "ip link set 网卡 mtu abc";
        let e = err(line);
        assert_eq!(e.col, 19);
        assert_eq!(
            e.message,
            "ip link: Error: argument \"abc\" is wrong: Invalid \"mtu\" value"
        );
        let line = "ip route add 10.0.0.0/8 dev 网卡0 vai 1.2.3.4";
        let e = err_at(line, "vai", "\"vai\" is a garbage");
        assert_eq!(e.col, 32);
        let line = "ip netns exec 名字 ip link set ü up foo";
        err_at(line, "foo", "\"foo\" is a garbage");
        // Quoted multibyte word before the error.
        let line = "ip addr add 10.0.0.1/24 dev 'é' bogus";
        err_at(
            line,
            "bogus",
            "either \"local\" is duplicate, or \"bogus\" is a garbage.",
        );
    }

    // --- shell no-ops, prompts, sudo -----------------------------------------

    #[test]
    fn shell_noops() {
        for line in [
            "",
            "   ",
            "# a comment",
            "#!/bin/bash",
            "set -ux",
            "set -x",
            "set -e",
            "set -eux",
            "set -u -x",
            "set -o pipefail",
            "set -euxo pipefail",
            "set -e -o pipefail",
            "set +x",
        ] {
            assert_eq!(ok(line), noop(), "{line}");
        }
        err_at("set -v", "-v", "set: unsupported argument \"-v\"");
        err_at("set -o nounset", "nounset", "\"nounset\"");
        err_at("set -o", "-o", "pipefail");
        err_at("set", "set", "set: expected options");
        err_at("set foo", "foo", "\"foo\"");
    }

    #[test]
    fn prompts_are_errors() {
        err_at("$ ip link", "$", "prompt");
        err_at("# ip link show", "#", "prompt");
        err_at("  # sysctl -w net.ipv4.ip_forward=1", "#", "prompt");
        err_at("root@node1:~# ip a", "root@node1:~#", "prompt");
        err_at("[vagrant@node1 ~]$ ip a", "[vagrant@node1", "prompt");
        // A comment that merely mentions a tool is fine.
        assert_eq!(ok("# the ip command below adds a route"), noop());
    }

    #[test]
    fn sudo_is_skipped() {
        assert_eq!(
            kind("sudo ip link show"),
            CommandKind::Link(LinkCmd::Show { dev: None })
        );
        assert_eq!(
            ok("sudo ip netns exec ns1 ip link show"),
            in_ns("ns1", CommandKind::Link(LinkCmd::Show { dev: None }))
        );
        assert_eq!(ok("sudo set -x"), noop());
        err_at("sudo", "sudo", "expected a command");
        err_at_nth("sudo sudo ip a", "sudo", 1, "unknown command \"sudo\"");
    }

    #[test]
    fn unknown_programs() {
        err_at(
            "ifconfig eth0 up",
            "ifconfig",
            "unknown command \"ifconfig\": expected one of ip,",
        );
        err_at(
            "ip netns exec ns1 bash -c 'ip a'",
            "bash",
            "unknown command \"bash\"",
        );
        err_at("ip netns exec ns1 set -x", "set", "unknown command \"set\"");
    }

    // --- ip: global options and abbreviations --------------------------------

    #[test]
    fn ip_object_and_verb_abbreviations() {
        let route_show = CommandKind::Route(RouteCmd::Show {
            table: None,
            dev: None,
        });
        for line in [
            "ip r",
            "ip ro",
            "ip rou",
            "ip route",
            "ip ro sh",
            "ip r s",
            "ip r list",
            "ip r l",
            "ip route lst",
        ] {
            assert_eq!(kind(line), route_show, "{line}");
        }
        for line in [
            "ip a",
            "ip ad",
            "ip addr",
            "ip address",
            "ip a s",
            "ip a sh",
            "ip a list",
            "ip a l",
        ] {
            assert_eq!(
                kind(line),
                CommandKind::Addr(AddrCmd::Show { dev: None }),
                "{line}"
            );
        }
        for line in [
            "ip n",
            "ip ne",
            "ip neigh",
            "ip neighbor",
            "ip neighbour",
            "ip n s",
            "ip neighbou",
        ] {
            assert_eq!(
                kind(line),
                CommandKind::Neigh(NeighCmd::Show { dev: None }),
                "{line}"
            );
        }
        for line in [
            "ip l",
            "ip li",
            "ip lin",
            "ip link",
            "ip link sh",
            "ip l list",
            "ip link l",
        ] {
            assert_eq!(
                kind(line),
                CommandKind::Link(LinkCmd::Show { dev: None }),
                "{line}"
            );
        }
        for line in [
            "ip ru",
            "ip rul",
            "ip rule",
            "ip ru s",
            "ip rule list",
            "ip ru l",
        ] {
            assert_eq!(kind(line), CommandKind::Rule(RuleCmd::Show), "{line}");
        }
        for line in [
            "ip t",
            "ip tu",
            "ip tun",
            "ip tunnel",
            "ip tunl",
            "ip tunl show",
            "ip tun ls",
        ] {
            assert_eq!(
                kind(line),
                CommandKind::Tunnel(TunnelCmd::Show { name: None }),
                "{line}"
            );
        }
        for line in [
            "ip net",
            "ip netn",
            "ip netns",
            "ip netns list",
            "ip netns l",
            "ip netns show",
        ] {
            assert_eq!(kind(line), CommandKind::Netns(NetnsCmd::List), "{line}");
        }
        // `ip link s` is set (set precedes show in iproute2's table).
        assert_eq!(
            kind("ip link s eth0 up"),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                up: Some(true),
                ..set("eth0")
            }))
        );
        assert_eq!(
            kind("ip link d eth0"),
            CommandKind::Link(LinkCmd::Del { dev: "eth0".into() })
        );
        assert_eq!(
            kind("ip link del dev eth0"),
            CommandKind::Link(LinkCmd::Del { dev: "eth0".into() })
        );
        assert_eq!(
            kind("ip link change eth0 mtu 1400"),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                mtu: Some(1400),
                ..set("eth0")
            }))
        );
        assert_eq!(
            kind("ip a s dev eth0"),
            CommandKind::Addr(AddrCmd::Show {
                dev: Some("eth0".into())
            })
        );
        assert_eq!(
            kind("ip ad sh eth0"),
            CommandKind::Addr(AddrCmd::Show {
                dev: Some("eth0".into())
            })
        );
        assert_eq!(
            kind("ip a f dev eth0"),
            CommandKind::Addr(AddrCmd::Flush { dev: "eth0".into() })
        );
        assert_eq!(
            kind("ip r a 10.0.0.0/8 dev x"),
            CommandKind::Route(RouteCmd::Add(RouteSpec {
                dev: Some("x".into()),
                ..rs("10.0.0.0/8")
            }))
        );
        assert_eq!(
            kind("ip r d 10.0.0.0/8"),
            CommandKind::Route(RouteCmd::Del(rs("10.0.0.0/8")))
        );
        assert_eq!(
            kind("ip r r 10.0.0.0/8 dev x"),
            CommandKind::Route(RouteCmd::Replace(RouteSpec {
                dev: Some("x".into()),
                ..rs("10.0.0.0/8")
            }))
        );
        assert!(matches!(
            kind("ip r g 1.2.3.4"),
            CommandKind::Route(RouteCmd::Get { .. })
        ));
        assert!(matches!(
            kind("ip r f table main"),
            CommandKind::Route(RouteCmd::Flush { .. })
        ));
        assert!(matches!(
            kind("ip ru a from all lookup 100"),
            CommandKind::Rule(RuleCmd::Add(_))
        ));
        assert!(matches!(
            kind("ip ru d pref 100"),
            CommandKind::Rule(RuleCmd::Del(_))
        ));
        assert_eq!(
            kind("ip netns a x"),
            CommandKind::Netns(NetnsCmd::Add("x".into()))
        );
        assert_eq!(
            kind("ip netns d x"),
            CommandKind::Netns(NetnsCmd::Del("x".into()))
        );
        assert_eq!(
            kind("ip netns del x"),
            CommandKind::Netns(NetnsCmd::Del("x".into()))
        );
        assert_eq!(
            ok("ip netns e x ip a"),
            in_ns("x", CommandKind::Addr(AddrCmd::Show { dev: None }))
        );
        assert_eq!(
            kind("ip t d t1"),
            CommandKind::Tunnel(TunnelCmd::Del { name: "t1".into() })
        );
        // Objects the simulator does not model, and unknown ones.
        err_at(
            "ip m",
            "m",
            "(maddress) is valid for the real tool but not supported",
        );
        err_at("ip x", "x", "(xfrm)");
        err_at("ip s", "s", "(sr)");
        err_at(
            "ip bogus",
            "bogus",
            "ip: Object \"bogus\" is unknown, try \"ip help\".",
        );
        err_at("ip ''", "''", "Object \"\" is unknown");
        err_at(
            "ip link ''",
            "''",
            "Command \"\" is unknown, try \"ip link help\".",
        );
        err_at(
            "ip link bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"ip link help\".",
        );
        err_at(
            "ip route bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"ip route help\".",
        );
        err_at("ip link replace x type dummy", "replace", "(replace)");
        err_at(
            "ip route append 10.0.0.0/8 dev x",
            "append",
            "not supported",
        );
        err_at(
            "ip route change 10.0.0.0/8 dev x",
            "change",
            "not supported",
        );
        err_at("ip route p 10.0.0.0/8 dev x", "p", "(prepend)");
        err_at("ip a c 10.0.0.1/8 dev x", "c", "(change)");
        err_at("ip", "ip", "expected an object");
    }

    #[test]
    fn ip_global_options() {
        let show = CommandKind::Route(RouteCmd::Show {
            table: None,
            dev: None,
        });
        for line in [
            "ip -n ns1 r",
            "ip -netns ns1 r",
            "ip --netns ns1 r",
            "ip -net ns1 r",
            "ip -4 -n ns1 -d -s r",
            "ip -s -s -details -statistics -n ns1 r",
        ] {
            assert_eq!(ok(line), in_ns("ns1", show.clone()), "{line}");
        }
        assert_eq!(ok("ip -4 r"), root(show.clone()));
        assert_eq!(ok("ip -- r"), root(show));
        err_at(
            "ip -nets ns1 r",
            "-nets",
            "ip: Option \"-nets\" is unknown, try \"ip -help\".",
        );
        err_at("ip -z link", "-z", "Option \"-z\" is unknown");
        err_at(
            "ip -j link",
            "-j",
            "(-json) is valid for the real tool but not supported",
        );
        err_at("ip -6 route", "-6", "not supported");
        err_at("ip -br a", "-br", "(-brief)");
        err_at("ip -n", "-n", "Command line is not complete");
        err_at_nth("ip -n a -n b link", "-n", 1, "duplicate");
        err_at("ip -n a/b link", "a/b", "Invalid netns name \"a/b\"");
        // -4 switches iproute2's wording from "any valid" to "inet".
        err_at(
            "ip -4 route add foo",
            "foo",
            "ip route: Error: inet prefix is expected rather than \"foo\".",
        );
    }

    // --- ip netns -------------------------------------------------------------

    #[test]
    fn ip_netns() {
        assert_eq!(
            ok("ip netns exec ns1 sysctl -w net.ipv4.ip_forward=1"),
            in_ns("ns1", sysctl("net/ipv4/ip_forward", Some("1")))
        );
        assert_eq!(
            ok("ip netns exec ns1 ping -c 1 10.0.0.1"),
            in_ns("ns1", CommandKind::Ping(ping("10.0.0.1", 1)))
        );
        assert_eq!(
            ok("ip netns exec ns1 iptables -L"),
            in_ns(
                "ns1",
                CommandKind::Iptables {
                    args: vec!["-L".into()],
                    args_cols: vec![27]
                }
            )
        );
        assert_eq!(
            ok("ip -n ns1 netns add ns2"),
            in_ns("ns1", CommandKind::Netns(NetnsCmd::Add("ns2".into())))
        );
        err_at("ip netns add", "add", "No netns name specified");
        err_at("ip netns exec", "exec", "No netns name specified");
        err_at("ip netns exec ns1", "exec", "No command specified");
        err_at("ip netns add a b", "b", "unexpected argument \"b\"");
        err_at("ip netns add ..", "..", "Invalid netns name \"..\"");
        let line = "ip netns exec a ip netns exec b ip a";
        err_at_nth(line, "exec", 1, "nested namespaces are not supported");
        err_at(
            "ip netns exec a ip -n b link",
            "-n",
            "nested namespaces are not supported",
        );
        err_at(
            "ip -n a netns exec b ip link",
            "exec",
            "nested namespaces are not supported",
        );
        err_at(
            "ip netns bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"ip netns help\".",
        );
        err_at("ip netns pids x", "pids", "not supported");
    }

    // --- ip link --------------------------------------------------------------

    #[test]
    fn ip_link_add() {
        assert_eq!(
            kind("ip link add veth0 type veth peer name veth1"),
            CommandKind::Link(LinkCmd::Add {
                name: "veth0".into(),
                kind: LinkKind::Veth {
                    peer: "veth1".into(),
                    peer_mtu: None,
                    peer_address: None,
                    peer_netns: None
                },
                mtu: None,
                address: None,
            })
        );
        assert_eq!(
            kind(
                "ip link add dev veth0 mtu 0x5aa address 02:00:00:00:00:01 type veth peer veth1 address 2:0:0:0:0:2 netns ns1 mtu 9000"
            ),
            CommandKind::Link(LinkCmd::Add {
                name: "veth0".into(),
                kind: LinkKind::Veth {
                    peer: "veth1".into(),
                    peer_mtu: Some(9000),
                    peer_address: Some(mac("02:00:00:00:00:02")),
                    peer_netns: Some("ns1".into()),
                },
                mtu: Some(1450),
                address: Some(mac("02:00:00:00:00:01")),
            })
        );
        assert_eq!(
            kind("ip link add br0 type bridge"),
            CommandKind::Link(LinkCmd::Add {
                name: "br0".into(),
                kind: LinkKind::Bridge,
                mtu: None,
                address: None
            })
        );
        assert_eq!(
            kind(
                "ip link add vx0 type vxlan id 42 dstport 4789 local 10.0.0.1 remote 10.0.0.2 dev eth0 ttl 64 srcport 1000 2000 nolearning proxy l2miss l3miss"
            ),
            CommandKind::Link(LinkCmd::Add {
                name: "vx0".into(),
                kind: LinkKind::Vxlan(VxlanArgs {
                    vni: Some(42),
                    dstport: Some(4789),
                    local: Some(a("10.0.0.1")),
                    remote: Some(a("10.0.0.2")),
                    group: None,
                    dev: Some("eth0".into()),
                    ttl: Some(64),
                    srcport: Some((1000, 2000)),
                    learning: Some(false),
                    proxy: true,
                    l2miss: true,
                    l3miss: true,
                }),
                mtu: None,
                address: None,
            })
        );
        // vxlan abbreviations resolve in vxlan_parse_opt's order: "d" is dev, "l" local, "n" nolearning.
        assert_eq!(
            kind("ip link add vx0 type vxlan v 7 g 239.1.1.1 d eth0 l 10.0.0.1 n ttl auto"),
            CommandKind::Link(LinkCmd::Add {
                name: "vx0".into(),
                kind: LinkKind::Vxlan(VxlanArgs {
                    vni: Some(7),
                    group: Some(a("239.1.1.1")),
                    dev: Some("eth0".into()),
                    local: Some(a("10.0.0.1")),
                    learning: Some(false),
                    ..VxlanArgs::default()
                }),
                mtu: None,
                address: None,
            })
        );
        // learning after nolearning is a duplicate in iproute2.
        err_at(
            "ip link add vx0 type vxlan vni 1 nolearning learning",
            "learning",
            "duplicate \"learning\"",
        );
        assert_eq!(
            kind("ip link add ipip1 type ipip local 10.0.0.1 remote 10.0.0.2 ttl 64 dev eth0"),
            CommandKind::Link(LinkCmd::Add {
                name: "ipip1".into(),
                kind: LinkKind::Ipip(TunnelArgs {
                    local: Some(a("10.0.0.1")),
                    remote: Some(a("10.0.0.2")),
                    ttl: Some(64),
                    dev: Some("eth0".into()),
                }),
                mtu: None,
                address: None,
            })
        );
        assert_eq!(
            kind("ip link add ipip1 type ipip local any ttl inherit"),
            CommandKind::Link(LinkCmd::Add {
                name: "ipip1".into(),
                kind: LinkKind::Ipip(TunnelArgs::default()),
                mtu: None,
                address: None,
            })
        );
    }

    #[test]
    fn ip_link_add_errors() {
        err_at(
            "ip link add x3 foo type dummy",
            "foo",
            "ip link: Error: either \"dev\" is duplicate, or \"foo\" is a garbage.",
        );
        err_at(
            "ip link add x5 name x6 type dummy",
            "x5",
            "both \"name\" and \"dev\" cannot be used when creating devices.",
        );
        err_at(
            "ip link add name x5 x6 type dummy",
            "x6",
            "both \"name\" and \"dev\"",
        );
        err_at(
            "ip link add name x1 type veth peer name y1 mtu 1400 foo",
            "foo",
            "both \"name\" and \"dev\"",
        );
        err_at(
            "ip link add x1 type veth peer name y1 mtu abc",
            "abc",
            "Error: argument \"abc\" is wrong: Invalid \"mtu\" value",
        );
        err_at(
            "ip link add x1 type veth peer y1 type dummy",
            "dummy",
            "duplicate \"type\"",
        );
        err_at(
            "ip link add x1 type veth foo",
            "foo",
            "Usage: ip link <options> type veth [peer <options>]",
        );
        err_at(
            "ip link add x1 type veth",
            "veth",
            "expected \"peer [name] NAME\"",
        );
        err_at(
            "ip link add x1 type veth peer mtu 1400",
            "peer",
            "peer: expected a device name",
        );
        err_at(
            "ip link add x3 mtu abc type dummy",
            "abc",
            "Invalid \"mtu\" value",
        );
        err_at(
            "ip link add x3 mtu 99999999999 type dummy",
            "99999999999",
            "Invalid \"mtu\" value",
        );
        err_at(
            "ip link add x3 address zz type dummy",
            "zz",
            "\"zz\" is invalid lladdr",
        );
        err_at(
            "ip link add x3 address 12:34 type dummy",
            "12:34",
            "Invalid address length 2 - must be 6 bytes",
        );
        err_at(
            "ip link add x7",
            "add",
            "Not enough information: \"type\" argument is required",
        );
        err_at(
            "ip link add",
            "add",
            "Not enough information: \"type\" argument is required",
        );
        err_at("ip link add type dummy", "add", "expected a device name");
        err_at(
            "ip link add x2 type bogus",
            "bogus",
            "Error: Unknown device type.",
        );
        err_at(
            "ip link add x2 type macvlan",
            "macvlan",
            "not supported by the simulator",
        );
        err_at(
            "ip link add x2 type",
            "type",
            "Command line is not complete",
        );
        err_at(
            "ip link add x4 type dummy extra",
            "extra",
            "Garbage instead of arguments \"extra ...\"",
        );
        err_at(
            "ip link add x4 type bridge extra",
            "extra",
            "bridge: unknown command \"extra\"?",
        );
        err_at(
            "ip link add x4 type bridge stp_state 1",
            "stp_state",
            "not supported by the simulator",
        );
        err_at(
            "ip link add x4 up type dummy",
            "up",
            "not supported by the simulator",
        );
        err_at(
            "ip link add x4 netns n type dummy",
            "netns",
            "not supported",
        );
        err_at(
            "ip link add 'a b' type dummy",
            "'a b'",
            "\"dev\" not a valid ifname",
        );
        err_at(
            "ip link add name aaaaaaaaaaaaaaaaa type dummy",
            "aaaaaaaaaaaaaaaaa",
            "\"name\" not a valid ifname",
        );
        // vxlan
        err_at(
            "ip link add vx2 type vxlan vni abc",
            "abc",
            "Error: argument \"abc\" is wrong: invalid id",
        );
        err_at(
            "ip link add vx2 type vxlan vni 16777216",
            "16777216",
            "invalid id",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 foo",
            "foo",
            "vxlan: unknown command \"foo\"?",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 dstport 99999",
            "99999",
            "argument \"99999\" is wrong: dst port",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 ttl 300",
            "300",
            "argument \"300\" is wrong: TTL must be <= 255",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 ttl abc",
            "abc",
            "invalid TTL",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 srcport 10",
            "srcport",
            "Command line is not complete",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 srcport x 10",
            "x",
            "min port",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 vni 2",
            "2",
            "duplicate \"id\": \"2\" is the second value.",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 remote 239.1.1.1",
            "239.1.1.1",
            "invalid remote address",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 group 10.0.0.1",
            "10.0.0.1",
            "invalid group address",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 remote 10.0.0.1 group 239.1.1.1",
            "239.1.1.1",
            "duplicate \"group\"",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 local 1.2.3",
            "1.2.3",
            "four decimal octets",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 local foo",
            "foo",
            "address is expected rather than \"foo\"",
        );
        err_at(
            "ip link add vx2 type vxlan vni 1 gbp",
            "gbp",
            "not supported by the simulator",
        );
        // ipip
        err_at("ip link add ip1 type ipip foo", "foo", "Usage: ... ipip");
        err_at("ip link add ip1 type ipip ttl 300", "300", "invalid TTL");
        err_at(
            "ip link add ip1 type ipip local foo",
            "foo",
            "address is expected rather than \"foo\"",
        );
        err_at(
            "ip link add ip1 type ipip encap fou",
            "encap",
            "not supported",
        );
    }

    #[test]
    fn ip_link_set_del_show() {
        assert_eq!(
            kind(
                "ip link set dev eth0 down mtu 1400 address 02:00:00:00:00:09 master br0 netns ns1 name eth9"
            ),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                dev: "eth0".into(),
                up: Some(false),
                mtu: Some(1400),
                address: Some(mac("02:00:00:00:00:09")),
                master: Some(Some("br0".into())),
                netns: Some("ns1".into()),
                name: Some("eth9".into()),
            }))
        );
        assert_eq!(
            kind("ip link set eth0 nomaster up down"),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                up: Some(false),
                master: Some(None),
                ..set("eth0")
            }))
        );
        assert_eq!(
            kind("ip link set name eth9 dev eth0"),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                name: Some("eth9".into()),
                ..set("eth0")
            }))
        );
        assert_eq!(
            kind("ip link set eth0"),
            CommandKind::Link(LinkCmd::Set(set("eth0")))
        );
        assert_eq!(
            kind("ip link set eth0 a 2:0:0:0:0:1"),
            CommandKind::Link(LinkCmd::Set(LinkSet {
                address: Some(mac("02:00:00:00:00:01")),
                ..set("eth0")
            }))
        );
        assert_eq!(
            kind("ip link show eth0"),
            CommandKind::Link(LinkCmd::Show {
                dev: Some("eth0".into())
            })
        );
        assert_eq!(
            kind("ip link show dev eth0"),
            CommandKind::Link(LinkCmd::Show {
                dev: Some("eth0".into())
            })
        );
        err_at(
            "ip link set dev va foo",
            "foo",
            "Error: either \"dev\" is duplicate, or \"foo\" is a garbage.",
        );
        err_at_nth(
            "ip link set va va",
            "va",
            1,
            "either \"dev\" is duplicate, or \"va\" is a garbage.",
        );
        err_at(
            "ip link set va mtu abc",
            "abc",
            "ip link: Error: argument \"abc\" is wrong: Invalid \"mtu\" value",
        );
        err_at("ip link set va mtu -1", "-1", "Invalid \"mtu\" value");
        err_at(
            "ip link set va mtu 1400 mtu 1300",
            "1300",
            "Error: duplicate \"mtu\": \"1300\" is the second value.",
        );
        err_at(
            "ip link set va master",
            "master",
            "Command line is not complete: \"master\" must be followed by",
        );
        err_at(
            "ip link set va address 12:34",
            "12:34",
            "Invalid address length 2",
        );
        err_at("ip link set va type veth", "type", "not supported");
        err_at(
            "ip link set va promisc on",
            "promisc",
            "not supported by the simulator",
        );
        err_at("ip link set va txq 100", "txq", "not supported");
        err_at(
            "ip link set up",
            "set",
            "Not enough information: \"dev\" argument is required.",
        );
        err_at(
            "ip link del",
            "del",
            "Not enough information: \"dev\" argument is required.",
        );
        err_at("ip link del va mtu 100", "mtu", "not supported");
        err_at(
            "ip link show dev lo extra",
            "extra",
            "Error: either \"dev\" is duplicate, or \"extra\" is a garbage.",
        );
        err_at("ip link show up", "up", "not supported");
        err_at("ip link set dev", "dev", "Command line is not complete");
    }

    // --- ip address -----------------------------------------------------------

    #[test]
    fn ip_addr() {
        let add = |addr: &str, brd: Option<&str>, scope: Option<Scope>| {
            CommandKind::Addr(AddrCmd::Add {
                addr: net(addr),
                dev: "eth0".into(),
                broadcast: brd.map(a),
                scope,
            })
        };
        assert_eq!(
            kind("ip addr add 10.0.0.1/24 dev eth0"),
            add("10.0.0.1/24", None, None)
        );
        assert_eq!(
            kind("ip addr add 10.0.0.1/24 brd + dev eth0"),
            add("10.0.0.1/24", Some("10.0.0.255"), None)
        );
        assert_eq!(
            kind("ip addr add 10.0.0.1/24 broadcast - dev eth0"),
            add("10.0.0.1/24", Some("10.0.0.0"), None)
        );
        assert_eq!(
            kind("ip addr add 10.0.0.1/31 brd + dev eth0"),
            add("10.0.0.1/31", None, None)
        );
        assert_eq!(
            kind("ip addr add 10.0.0.1/24 b 10.0.0.127 dev eth0"),
            add("10.0.0.1/24", Some("10.0.0.127"), None)
        );
        assert_eq!(
            kind("ip addr add local 127.0.0.2/8 dev eth0 scope host label eth0:1"),
            add("127.0.0.2/8", None, Some(Scope::Host))
        );
        assert_eq!(
            kind("ip addr add 10.0.0.1/24 dev eth0 scope 253"),
            add("10.0.0.1/24", None, Some(Scope::Link))
        );
        assert_eq!(
            kind("ip addr add 10.0.0.1 dev eth0"),
            add("10.0.0.1/32", None, None)
        );
        assert_eq!(
            kind("ip addr del 10.0.0.1/24 dev eth0"),
            CommandKind::Addr(AddrCmd::Del {
                addr: net("10.0.0.1/24"),
                dev: "eth0".into()
            })
        );
        assert_eq!(
            kind("ip addr flush eth0"),
            CommandKind::Addr(AddrCmd::Flush { dev: "eth0".into() })
        );
        assert_eq!(
            kind("ip addr show"),
            CommandKind::Addr(AddrCmd::Show { dev: None })
        );
        err_at(
            "ip addr add foo dev va",
            "foo",
            "ip address: Error: any valid prefix is expected rather than \"foo\".",
        );
        err_at(
            "ip addr add 10.2.0.1/33 dev va",
            "10.2.0.1/33",
            "any valid prefix is expected rather than \"10.2.0.1/33\".",
        );
        err_at(
            "ip addr add 10.2.0.1/24",
            "add",
            "Not enough information: \"dev\" argument is required.",
        );
        err_at("ip addr add dev va", "add", "expected an address");
        err_at(
            "ip addr add 10.2.0.1/24 dev va foo",
            "foo",
            "Error: either \"local\" is duplicate, or \"foo\" is a garbage.",
        );
        err_at(
            "ip addr add 10.2.0.1/24 dev va brd foo",
            "foo",
            "address is expected rather than \"foo\".",
        );
        err_at(
            "ip addr add 10.2.0.1/24 dev va scope foo",
            "foo",
            "Error: argument \"foo\" is wrong: invalid scope value.",
        );
        err_at(
            "ip addr add 10.2.0.1/24 dev va valid_lft 10",
            "valid_lft",
            "not supported by the simulator",
        );
        err_at("ip addr add 10/8 dev va", "10/8", "four decimal octets");
        err_at(
            "ip addr add 10.0.0.1/255.0.0.0 dev va",
            "10.0.0.1/255.0.0.0",
            "decimal number 0..32",
        );
        err_at(
            "ip addr add 010.0.0.1/8 dev va",
            "010.0.0.1/8",
            "four decimal octets",
        );
        err_at("ip addr flush", "flush", "Flush requires arguments");
        err_at("ip addr show dev", "dev", "Command line is not complete");
        err_at(
            "ip addr show eth0 eth1",
            "eth1",
            "either \"dev\" is duplicate",
        );
        err_at("ip addr show up", "up", "not supported");
        err_at(
            "ip addr bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"ip address help\".",
        );
    }

    // --- ip route -------------------------------------------------------------

    #[test]
    fn ip_route_modify() {
        assert_eq!(
            kind(
                "ip route add to 10.0.0.0/8 via inet 192.168.0.1 dev eth0 src 192.168.0.2 table 100 metric 10 scope link proto static mtu 1400"
            ),
            CommandKind::Route(RouteCmd::Add(RouteSpec {
                gateway: Some(a("192.168.0.1")),
                dev: Some("eth0".into()),
                src: Some(a("192.168.0.2")),
                table: Some(100),
                metric: Some(10),
                scope: Some(Scope::Link),
                proto: Some(4),
                mtu: Some(1400),
                ..rs("10.0.0.0/8")
            }))
        );
        let spec = |line: &str| match kind(line) {
            CommandKind::Route(RouteCmd::Add(s) | RouteCmd::Replace(s) | RouteCmd::Del(s)) => s,
            k => panic!("{line}: {k:?}"),
        };
        assert_eq!(
            spec("ip route add default via 1.1.1.1").prefix,
            Ipv4Net::DEFAULT
        );
        assert_eq!(
            spec("ip route add blackhole 10.0.0.0/8").rtype,
            RouteType::Blackhole
        );
        assert_eq!(
            spec("ip route add unreachable 10.0.0.0/8").rtype,
            RouteType::Unreachable
        );
        assert_eq!(
            spec("ip route add u 10.0.0.0/8").rtype,
            RouteType::Unreachable
        );
        assert_eq!(
            spec("ip route add uni 10.0.0.0/8 dev x").rtype,
            RouteType::Unicast
        );
        assert_eq!(
            spec("ip route add prohibit 10.0.0.0/8").rtype,
            RouteType::Prohibit
        );
        assert_eq!(
            spec("ip route add local 10.0.0.1 dev lo table local").rtype,
            RouteType::Local
        );
        assert_eq!(
            spec("ip route add broadcast 10.0.0.255 dev x").rtype,
            RouteType::Broadcast
        );
        assert_eq!(
            spec("ip route add to unicast 10.0.0.0/8 dev x").rtype,
            RouteType::Unicast
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x table main").table,
            Some(TABLE_MAIN)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x table local").table,
            Some(TABLE_LOCAL)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x t default").table,
            Some(TABLE_DEFAULT)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x table 0x64").table,
            Some(100)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x proto kernel").proto,
            Some(2)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x proto boot").proto,
            Some(3)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x proto bird").proto,
            Some(12)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x proto bgp").proto,
            Some(186)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x proto zebra").proto,
            Some(11)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x proto 42").proto,
            Some(42)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x preference 5").metric,
            Some(5)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x priority 6").metric,
            Some(6)
        );
        assert_eq!(spec("ip route add 10.0.0.0/8 dev x prio 7").metric, Some(7));
        assert_eq!(spec("ip route add 10.0.0.0/8 dev x m 8").metric, Some(8));
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x scope host").scope,
            Some(Scope::Host)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x scope global").scope,
            Some(Scope::Global)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x scope site").scope,
            Some(Scope::Site)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 dev x scope nowhere").scope,
            Some(Scope::Nowhere)
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 oif x").dev.as_deref(),
            Some("x")
        );
        assert!(spec("ip route add 10.0.0.0/8 via 1.1.1.1 dev x o").onlink);
        // Host bits set: parsed; the kernel's "Invalid prefix" check belongs to the executor.
        assert_eq!(
            spec("ip route add 10.9.0.0/8 dev x").prefix,
            net("10.9.0.0/8")
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 nexthop via 1.1.1.1 dev a weight 2 onlink nexthop via 2.2.2.2 dev b").nexthops,
            vec![
                NexthopSpec { gateway: Some(a("1.1.1.1")), dev: Some("a".into()), weight: 2, onlink: true },
                NexthopSpec { gateway: Some(a("2.2.2.2")), dev: Some("b".into()), weight: 1, onlink: false },
            ]
        );
        assert_eq!(
            spec("ip route add 10.0.0.0/8 nexthop dev a weight 256").nexthops[0].weight,
            256
        );
        assert!(matches!(
            kind("ip route replace 10.0.0.0/8 dev x"),
            CommandKind::Route(RouteCmd::Replace(_))
        ));
        assert_eq!(
            kind("ip route del default"),
            CommandKind::Route(RouteCmd::Del(rs("0.0.0.0/0")))
        );
        assert_eq!(
            kind("ip route delete 10.0.0.0/8 via 1.1.1.1"),
            CommandKind::Route(RouteCmd::Del(RouteSpec {
                gateway: Some(a("1.1.1.1")),
                ..rs("10.0.0.0/8")
            }))
        );
    }

    #[test]
    fn ip_route_modify_errors() {
        let e = err_at(
            "ip route add 10.0.0.0/8 vai 1.2.3.4",
            "vai",
            "\"vai\" is a garbage",
        );
        assert_eq!(e.col, 24);
        assert_eq!(
            e.message,
            "ip route: Error: either \"to\" is duplicate, or \"vai\" is a garbage."
        );
        let e = err_at("ip route add 1.2.3.0/24 foo", "foo", "");
        assert_eq!(
            e.message,
            "ip route: Error: either \"to\" is duplicate, or \"foo\" is a garbage."
        );
        err_at(
            "ip route add 10.0.0.0/8 10.1.0.0/8",
            "10.1.0.0/8",
            "either \"to\" is duplicate, or \"10.1.0.0/8\" is a garbage.",
        );
        err_at(
            "ip route add foo",
            "foo",
            "Error: any valid prefix is expected rather than \"foo\".",
        );
        err_at(
            "ip route add 10.0.0.0/33 dev va",
            "10.0.0.0/33",
            "any valid prefix is expected rather than \"10.0.0.0/33\".",
        );
        err_at(
            "ip route add 10.0.0.0/8 via foo",
            "foo",
            "Error: inet address is expected rather than \"foo\".",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va metric abc",
            "abc",
            "Error: argument \"abc\" is wrong: \"metric\" value is invalid",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va table foo",
            "foo",
            "argument \"foo\" is wrong: \"table\" value is invalid",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va table all",
            "all",
            "\"table\" value is invalid",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va proto foo",
            "foo",
            "argument \"foo\" is wrong: \"protocol\" value is invalid",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va scope foo",
            "foo",
            "argument \"foo\" is wrong: invalid \"scope\" value",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va scope 7",
            "7",
            "not supported",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va mtu abc",
            "abc",
            "argument \"abc\" is wrong: \"mtu\" value is invalid",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va mtu lock 1400",
            "lock",
            "not supported",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev va src abc",
            "abc",
            "inet address is expected rather than \"abc\".",
        );
        err_at_nth(
            "ip route add 10.0.0.0/8 via 1.1.1.1 via 2.2.2.2",
            "via",
            1,
            "argument \"via\" is wrong: use nexthop syntax to specify multiple via",
        );
        err_at(
            "ip route add 10.0.0.0/8 via",
            "via",
            "Command line is not complete: \"via\" must be followed by",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev",
            "dev",
            "Command line is not complete",
        );
        err_at("ip route add", "add", "Usage: ip route");
        err_at(
            "ip route add via 10.1.0.5 dev va",
            "add",
            "expected a destination PREFIX",
        );
        err_at(
            "ip route add 10.0.0.0/8 blackhole",
            "blackhole",
            "Command line is not complete",
        );
        err_at(
            "ip route add nat 10.0.0.0/8",
            "nat",
            "not supported by the simulator",
        );
        err_at("ip route add throw 10.0.0.0/8", "throw", "not supported");
        err_at(
            "ip route add 10.0.0.0/8 dev x pref high",
            "pref",
            "not supported",
        );
        err_at(
            "ip route add 10.0.0.0/8 dev x realms 5",
            "realms",
            "not supported",
        );
        err_at(
            "ip route add 10.0.0.0/8 via inet6 ::1",
            "inet6",
            "not supported",
        );
        err_at(
            "ip route add 10.0.0.0/8 nexthop via 10.1.0.2 dev va weight 0",
            "0",
            "Error: argument \"0\" is wrong: \"weight\" is invalid",
        );
        err_at(
            "ip route add 10.0.0.0/8 nexthop via 10.1.0.2 dev va weight 257",
            "257",
            "\"weight\" is invalid",
        );
        err_at(
            "ip route add 10.0.0.0/8 nexthop foo",
            "foo",
            "Error: \"nexthop\" or end of line is expected instead of \"foo\"",
        );
        err_at(
            "ip route add 10.0.0.0/8 nexthop via 10.1.0.2 dev va foo",
            "foo",
            "\"nexthop\" or end of line is expected instead of \"foo\"",
        );
        err_at(
            "ip route add 10.0.0.0/8 nexthop via 10.1.0.2 table 5",
            "table",
            "\"nexthop\" or end of line",
        );
        err_at(
            "ip route add 10.61.0.0/16 nexthop",
            "nexthop",
            "Error: unexpected end of line after \"nexthop\"",
        );
        err_at(
            "ip route add 10.0.0.0/8 nexthop via 1.1.1.1 realms 3",
            "realms",
            "not supported",
        );
    }

    #[test]
    fn ip_route_show_get_flush() {
        assert_eq!(
            kind("ip route show table all"),
            CommandKind::Route(RouteCmd::Show {
                table: Some(0),
                dev: None
            })
        );
        assert_eq!(
            kind("ip route list table 100 dev eth0"),
            CommandKind::Route(RouteCmd::Show {
                table: Some(100),
                dev: Some("eth0".into())
            })
        );
        assert_eq!(
            kind("ip r s t local"),
            CommandKind::Route(RouteCmd::Show {
                table: Some(TABLE_LOCAL),
                dev: None
            })
        );
        assert_eq!(
            kind("ip route flush dev eth0"),
            CommandKind::Route(RouteCmd::Flush {
                table: None,
                dev: Some("eth0".into())
            })
        );
        assert_eq!(
            kind("ip route get 10.0.0.1 from 192.168.0.1 iif eth0 oif eth1 mark 0x10"),
            CommandKind::Route(RouteCmd::Get {
                dst: a("10.0.0.1"),
                from: Some(a("192.168.0.1")),
                iif: Some("eth0".into()),
                oif: Some("eth1".into()),
                mark: Some(16),
            })
        );
        assert_eq!(
            kind("ip route get to 10.0.0.1"),
            CommandKind::Route(RouteCmd::Get {
                dst: a("10.0.0.1"),
                from: None,
                iif: None,
                oif: None,
                mark: None
            })
        );
        err_at(
            "ip route show foo",
            "foo",
            "Error: any valid prefix is expected rather than \"foo\".",
        );
        err_at("ip route show 10.0.0.0/8", "10.0.0.0/8", "not supported");
        err_at("ip route show proto kernel", "proto", "not supported");
        err_at(
            "ip route show table foo",
            "foo",
            "table id value is invalid",
        );
        err_at(
            "ip route flush",
            "flush",
            "\"ip route flush\" requires arguments",
        );
        err_at(
            "ip route flush foo",
            "foo",
            "any valid prefix is expected rather than \"foo\".",
        );
        err_at("ip route get", "get", "need at least a destination address");
        err_at(
            "ip route get foo",
            "foo",
            "Error: any valid prefix is expected rather than \"foo\".",
        );
        err_at(
            "ip route get 1.2.3.4 foo",
            "foo",
            "Error: inet prefix is expected rather than \"foo\".",
        );
        err_at(
            "ip route get 1.2.3.4 5.6.7.8",
            "5.6.7.8",
            "either \"to\" is duplicate",
        );
        err_at("ip route get 1.2.3.4 mark x", "x", "invalid mark value");
        err_at("ip route get 1.2.3.4 fibmatch", "fibmatch", "not supported");
    }

    // --- ip rule --------------------------------------------------------------

    #[test]
    fn ip_rule() {
        assert_eq!(
            kind(
                "ip rule add not from 10.0.0.0/8 to 192.168.0.0/16 iif eth0 oif eth1 fwmark 0x1/0xff priority 100 lookup 200"
            ),
            CommandKind::Rule(RuleCmd::Add(RuleSpec {
                priority: Some(100),
                from: Some(net("10.0.0.0/8")),
                to: Some(net("192.168.0.0/16")),
                iif: Some("eth0".into()),
                oif: Some("eth1".into()),
                fwmark: Some((1, 0xff)),
                table: Some(200),
                action: None,
                not: true,
            }))
        );
        assert_eq!(
            kind("ip rule add from all lookup main pref 32766"),
            CommandKind::Rule(RuleCmd::Add(RuleSpec {
                table: Some(TABLE_MAIN),
                priority: Some(32766),
                ..rule()
            }))
        );
        assert_eq!(
            kind("ip rule add from 10.0.0.0/8 blackhole"),
            CommandKind::Rule(RuleCmd::Add(RuleSpec {
                from: Some(net("10.0.0.0/8")),
                action: Some(RouteType::Blackhole),
                ..rule()
            }))
        );
        assert_eq!(
            kind("ip rule add fwmark 7 type prohibit order 5"),
            CommandKind::Rule(RuleCmd::Add(RuleSpec {
                fwmark: Some((7, u32::MAX)),
                action: Some(RouteType::Prohibit),
                priority: Some(5),
                ..rule()
            }))
        );
        assert_eq!(
            kind("ip rule add dev eth0 table 5 unreachable"),
            CommandKind::Rule(RuleCmd::Add(RuleSpec {
                iif: Some("eth0".into()),
                table: Some(5),
                action: Some(RouteType::Unreachable),
                ..rule()
            }))
        );
        assert_eq!(
            kind("ip rule del pref 100"),
            CommandKind::Rule(RuleCmd::Del(RuleSpec {
                priority: Some(100),
                ..rule()
            }))
        );
        err_at(
            "ip rule add from foo",
            "foo",
            "ip rule: Error: any valid prefix is expected rather than \"foo\".",
        );
        err_at(
            "ip rule add foo",
            "foo",
            "Error: argument \"foo\" is wrong: Failed to parse rule type",
        );
        err_at(
            "ip rule add from all lookup foo",
            "foo",
            "Error: argument \"foo\" is wrong: invalid table ID",
        );
        err_at(
            "ip rule add from all lookup 100 pref abc",
            "abc",
            "argument \"abc\" is wrong: preference value is invalid",
        );
        err_at(
            "ip rule add fwmark abc lookup 100",
            "abc",
            "argument \"abc\" is wrong: fwmark value is invalid",
        );
        err_at(
            "ip rule add fwmark 0x1/foo lookup 100",
            "0x1/foo",
            "argument \"foo\" is wrong: fwmask value is invalid",
        );
        err_at("ip rule add pref 1 pref 2", "2", "duplicate \"preference\"");
        err_at("ip rule add goto 5", "goto", "not supported");
        err_at("ip rule add from all nat 1.2.3.4", "nat", "not supported");
        err_at("ip rule add uidrange 1-2", "uidrange", "not supported");
        err_at("ip rule add", "add", "\"ip rule add\" requires arguments.");
        err_at("ip rule del", "del", "\"ip rule del\" requires arguments.");
        err_at("ip rule show table main", "table", "unexpected argument");
        err_at("ip rule flush", "flush", "not supported");
        err_at(
            "ip rule bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"ip rule help\".",
        );
    }

    // --- ip neigh -------------------------------------------------------------

    #[test]
    fn ip_neigh() {
        let add = |state: NudState, replace: bool| {
            CommandKind::Neigh(NeighCmd::Add {
                addr: a("10.0.0.2"),
                lladdr: Some(mac("02:00:00:00:00:02")),
                dev: "eth0".into(),
                state,
                replace,
                proxy: false,
            })
        };
        assert_eq!(
            kind("ip neigh add 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0"),
            add(NudState::Permanent, false)
        );
        assert_eq!(
            kind("ip n a 10.0.0.2 l 2:0:0:0:0:2 dev eth0 nud reachable"),
            add(NudState::Reachable, false)
        );
        assert_eq!(
            kind("ip neigh replace to 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud stale"),
            add(NudState::Stale, true)
        );
        assert_eq!(
            kind("ip neigh change 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud noarp"),
            add(NudState::Noarp, true)
        );
        assert_eq!(
            kind("ip neigh chg 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud delay"),
            add(NudState::Delay, true)
        );
        assert_eq!(
            kind("ip neigh add 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud probe"),
            add(NudState::Probe, false)
        );
        assert_eq!(
            kind("ip neigh add 10.0.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud perm"),
            add(NudState::Permanent, false)
        );
        assert_eq!(
            kind("ip neigh add proxy 10.0.0.2 dev eth0"),
            CommandKind::Neigh(NeighCmd::Add {
                addr: a("10.0.0.2"),
                lladdr: None,
                dev: "eth0".into(),
                state: NudState::Permanent,
                replace: false,
                proxy: true,
            })
        );
        assert_eq!(
            kind("ip neigh del 10.0.0.2 dev eth0"),
            CommandKind::Neigh(NeighCmd::Del {
                addr: a("10.0.0.2"),
                dev: "eth0".into()
            })
        );
        assert_eq!(
            kind("ip neigh show dev eth0"),
            CommandKind::Neigh(NeighCmd::Show {
                dev: Some("eth0".into())
            })
        );
        assert_eq!(
            kind("ip neigh flush dev eth0"),
            CommandKind::Neigh(NeighCmd::Flush {
                dev: Some("eth0".into())
            })
        );
        assert_eq!(
            kind("ip neigh flush all"),
            CommandKind::Neigh(NeighCmd::Flush { dev: None })
        );
        err_at(
            "ip neigh add 10.1.0.9 lladdr zz dev va",
            "zz",
            "\"zz\" is invalid lladdr",
        );
        err_at(
            "ip neigh add foo lladdr 11:22:33:44:55:66 dev va",
            "foo",
            "Error: any valid address is expected rather than \"foo\".",
        );
        err_at(
            "ip neigh add 10.1.0.9 lladdr 11:22:33:44:55:66",
            "add",
            "Device and destination are required arguments",
        );
        err_at(
            "ip neigh del 10.1.0.9",
            "del",
            "Device and destination are required arguments",
        );
        err_at(
            "ip neigh add 10.1.0.9 lladdr 11:22:33:44:55:66 dev va nud foo",
            "foo",
            "Error: argument \"foo\" is wrong: nud state is bad",
        );
        err_at(
            "ip neigh add 10.1.0.9 dev va nud none",
            "none",
            "not supported",
        );
        err_at(
            "ip neigh add 10.1.0.9 lladdr 11:22:33:44:55:66 dev va foo",
            "foo",
            "Error: either \"to\" is duplicate, or \"foo\" is a garbage.",
        );
        err_at(
            "ip neigh add 10.1.0.9 lladdr 11:22:33:44:55:66 dev va proxy",
            "proxy",
            "Command line is not complete",
        );
        err_at(
            "ip neigh add 10.1.0.9 dev va router",
            "router",
            "not supported",
        );
        err_at("ip neigh show foo", "foo", "to value is invalid");
        err_at("ip neigh show 10.0.0.0/8", "10.0.0.0/8", "not supported");
        err_at("ip neigh show nud stale", "nud", "not supported");
        err_at("ip neigh flush", "flush", "Flush requires arguments");
        err_at("ip neigh get 10.0.0.1 dev x", "get", "not supported");
        err_at(
            "ip neigh bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"ip neigh help\".",
        );
    }

    // --- ip tunnel ------------------------------------------------------------

    #[test]
    fn ip_tunnel() {
        assert_eq!(
            kind("ip tunnel add name t1 mode ipip remote 10.0.0.2 local 10.0.0.1 ttl 64 dev eth0"),
            CommandKind::Tunnel(TunnelCmd::Add {
                name: "t1".into(),
                args: TunnelArgs {
                    local: Some(a("10.0.0.1")),
                    remote: Some(a("10.0.0.2")),
                    ttl: Some(64),
                    dev: Some("eth0".into()),
                },
            })
        );
        assert_eq!(
            kind("ip tunnel add t1 mode ip/ip remote any ttl inherit"),
            CommandKind::Tunnel(TunnelCmd::Add {
                name: "t1".into(),
                args: TunnelArgs::default()
            })
        );
        assert_eq!(
            kind("ip tunnel del t1"),
            CommandKind::Tunnel(TunnelCmd::Del { name: "t1".into() })
        );
        assert_eq!(
            kind("ip tunnel show t1"),
            CommandKind::Tunnel(TunnelCmd::Show {
                name: Some("t1".into())
            })
        );
        err_at(
            "ip tunnel add t1 mode gre local 1.1.1.1",
            "gre",
            "not supported by the simulator",
        );
        err_at(
            "ip tunnel add t1 mode foo",
            "foo",
            "Unknown tunnel mode \"foo\"",
        );
        err_at(
            "ip tunnel add t1 mode ipip local foo",
            "foo",
            "Error: an IP address is expected rather than \"foo\"",
        );
        err_at(
            "ip tunnel add t1 mode ipip foo",
            "foo",
            "Error: either \"name\" is duplicate, or \"foo\" is a garbage.",
        );
        err_at(
            "ip tunnel add t1 mode ipip ttl 300",
            "300",
            "Error: argument \"300\" is wrong: invalid TTL",
        );
        err_at(
            "ip tunnel add t1 local 1.1.1.1",
            "add",
            "cannot determine tunnel mode (ipip, gre, vti or sit)",
        );
        err_at("ip tunnel add mode ipip", "add", "expected a tunnel name");
        err_at("ip tunnel add t1 mode ipip key 5", "key", "not supported");
        err_at("ip tunnel del", "del", "expected a tunnel name");
        err_at("ip tunnel del t1 mode ipip", "mode", "not supported");
        err_at(
            "ip tunnel bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"ip tunnel help\"",
        );
        err_at("ip tunnel change t1 ttl 3", "change", "not supported");
    }

    // --- bridge ---------------------------------------------------------------

    #[test]
    fn bridge_fdb() {
        assert_eq!(
            ok(
                "bridge -n ns1 fdb add 02:00:00:00:00:01 dev vx0 dst 10.0.0.2 self static port 4789 vni 5"
            ),
            in_ns(
                "ns1",
                CommandKind::Fdb(FdbCmd::Add {
                    mac: mac("02:00:00:00:00:01"),
                    dev: "vx0".into(),
                    dst: Some(a("10.0.0.2")),
                    append: false,
                    replace: false,
                    master: false,
                    self_: true,
                    state: FdbState::Static,
                    port: Some(4789),
                    vni: Some(5),
                })
            )
        );
        assert_eq!(
            kind("bridge fdb replace 2:0:0:0:0:1 dev veth0 master dynamic"),
            CommandKind::Fdb(FdbCmd::Add {
                mac: mac("02:00:00:00:00:01"),
                dev: "veth0".into(),
                dst: None,
                append: false,
                replace: true,
                master: true,
                self_: false,
                state: FdbState::Dynamic,
                port: None,
                vni: None,
            })
        );
        assert_eq!(
            kind("bridge fdb del 02:00:00:00:00:01 dev vx0 dst 10.0.0.2 self"),
            CommandKind::Fdb(FdbCmd::Del {
                mac: mac("02:00:00:00:00:01"),
                dev: "vx0".into(),
                dst: Some(a("10.0.0.2")),
                master: false,
                self_: true,
            })
        );
        assert_eq!(
            kind("bridge fdb"),
            CommandKind::Fdb(FdbCmd::Show {
                dev: None,
                br: None
            })
        );
        assert_eq!(
            kind("bridge f s dev vx0 br br0"),
            CommandKind::Fdb(FdbCmd::Show {
                dev: Some("vx0".into()),
                br: Some("br0".into())
            })
        );
        assert!(matches!(
            kind("bridge f a 00:00:00:00:00:00 dev vx0 dst 1.2.3.4"),
            CommandKind::Fdb(FdbCmd::Add { .. })
        ));
        err_at("bridge fdb add zz dev va", "zz", "Invalid mac address zz");
        err_at(
            "bridge fdb add 11:22:33:44:55:66 dev va dst foo",
            "foo",
            "Error: any valid address is expected rather than \"foo\".",
        );
        err_at(
            "bridge fdb add 11:22:33:44:55:66 dev va foo",
            "foo",
            "bridge fdb: Error: either \"to\" is duplicate, or \"foo\" is a garbage.",
        );
        err_at(
            "bridge fdb add 11:22:33:44:55:66",
            "add",
            "Device and address are required arguments.",
        );
        err_at(
            "bridge fdb add 11:22:33:44:55:66 dev vx0 port abc",
            "abc",
            "Error: argument \"abc\" is wrong: invalid port",
        );
        err_at(
            "bridge fdb add 11:22:33:44:55:66 dev vx0 vni abc",
            "abc",
            "Error: argument \"abc\" is wrong: invalid VNI",
        );
        err_at(
            "bridge fdb add 11:22:33:44:55:66 dev vx0 static permanent",
            "permanent",
            "duplicate \"state\"",
        );
        err_at(
            "bridge fdb add 11:22:33:44:55:66 dev vx0 vlan 5",
            "vlan",
            "not supported",
        );
        err_at(
            "bridge fdb del 11:22:33:44:55:66 dev vx0 vni 5",
            "vni",
            "not supported",
        );
        err_at("bridge fdb show foo", "foo", "not supported");
        err_at(
            "bridge fdb bogus",
            "bogus",
            "Command \"bogus\" is unknown, try \"bridge fdb help\".",
        );
        err_at(
            "bridge bogus",
            "bogus",
            "Object \"bogus\" is unknown, try \"bridge help\".",
        );
        err_at("bridge link", "link", "not supported");
        err_at("bridge -j fdb", "-j", "not supported");
        err_at("bridge", "bridge", "expected an object");
    }

    // --- arp ------------------------------------------------------------------

    #[test]
    fn arp() {
        let add = CommandKind::Neigh(NeighCmd::Add {
            addr: a("10.1.0.9"),
            lladdr: Some(mac("11:22:33:44:55:66")),
            dev: "va".into(),
            state: NudState::Permanent,
            replace: true,
            proxy: false,
        });
        for line in [
            "arp -s 10.1.0.9 11:22:33:44:55:66 -i va",
            "arp -i va -s 10.1.0.9 11:22:33:44:55:66",
            "arp -iva -s 10.1.0.9 11:22:33:44:55:66",
            "arp --set 10.1.0.9 11:22:33:44:55:66 --device va",
            "arp -v -H ether -s 10.1.0.9 11:22:33:44:55:66 -i va",
        ] {
            assert_eq!(kind(line), add, "{line}");
        }
        assert!(matches!(
            kind("arp -s 10.1.0.9 11:22:33:44:55:66 -i va pub"),
            CommandKind::Neigh(NeighCmd::Add { proxy: true, .. })
        ));
        assert_eq!(
            kind("arp -d 10.1.0.9 -i va"),
            CommandKind::Neigh(NeighCmd::Del {
                addr: a("10.1.0.9"),
                dev: "va".into()
            })
        );
        for line in [
            "arp",
            "arp -n",
            "arp -a",
            "arp -an",
            "arp -na",
            "arp -e",
            "arp -a -n",
        ] {
            assert_eq!(kind(line), CommandKind::Neigh(NeighCmd::ArpShow), "{line}");
        }
        err_at(
            "arp -s 10.1.0.9 zz -i va",
            "zz",
            "arp: invalid hardware address",
        );
        err_at(
            "arp -s foo 11:22:33:44:55:66 -i va",
            "foo",
            "arp: foo: Host name lookup failure",
        );
        err_at(
            "arp -s 10.1.0.9 -i va",
            "10.1.0.9",
            "arp: need hardware address",
        );
        err_at("arp -s", "-s", "arp: need host name");
        err_at(
            "arp -s 10.1.0.9 11:22:33:44:55:66",
            "-s",
            "without -i is not supported",
        );
        err_at("arp -d 10.1.0.9", "-d", "without -i is not supported");
        err_at("arp -d foo -i va", "foo", "Host name lookup failure");
        err_at(
            "arp -s 10.1.0.9 11:22:33:44:55:66 -i va extra",
            "extra",
            "unexpected argument \"extra\"",
        );
        err_at(
            "arp -s 10.1.0.9 11:22:33:44:55:66 -i va temp",
            "temp",
            "not supported",
        );
        err_at("arp -x", "-x", "arp: invalid option -- 'x'");
        err_at("arp -f", "-f", "not supported");
        err_at("arp -i", "-i", "option requires an argument -- 'i'");
        err_at("arp -H ax25 -a", "ax25", "not supported");
        err_at("arp -n 10.0.0.1", "10.0.0.1", "not supported");
        err_at(
            "arp -s 1.2.3.4 11:22:33:44:55:66 -d 1.2.3.4",
            "-d",
            "cannot be combined",
        );
    }

    // --- sysctl, modprobe -----------------------------------------------------

    #[test]
    fn sysctl_keys() {
        assert_eq!(
            kind("sysctl net.ipv4.ip_forward"),
            sysctl("net/ipv4/ip_forward", None)
        );
        assert_eq!(
            kind("sysctl net/ipv4/ip_forward"),
            sysctl("net/ipv4/ip_forward", None)
        );
        assert_eq!(
            kind("sysctl -q net.ipv4.ip_forward"),
            sysctl("net/ipv4/ip_forward", None)
        );
        assert_eq!(
            kind("sysctl net.ipv4.ip_forward=1"),
            sysctl("net/ipv4/ip_forward", Some("1"))
        );
        assert_eq!(
            kind("sysctl -qw net.ipv4.ip_forward=1"),
            sysctl("net/ipv4/ip_forward", Some("1"))
        );
        assert_eq!(
            kind("sysctl -w -q net.ipv4.ip_forward=1"),
            sysctl("net/ipv4/ip_forward", Some("1"))
        );
        assert_eq!(
            kind("sysctl --write net.ipv4.ip_forward=1"),
            sysctl("net/ipv4/ip_forward", Some("1"))
        );
        // Device names with dots: slash form, or dotted form with '/' for the dot (procps).
        assert_eq!(
            kind("sysctl -w net/ipv4/conf/vxlan.1/rp_filter=2"),
            sysctl("net/ipv4/conf/vxlan.1/rp_filter", Some("2"))
        );
        assert_eq!(
            kind("sysctl net.ipv4.conf.vxlan/1.rp_filter"),
            sysctl("net/ipv4/conf/vxlan.1/rp_filter", None)
        );
        // The ambiguous dotted form means what it means to procps: a nonexistent path.
        assert_eq!(
            kind("sysctl net.ipv4.conf.vxlan.1.rp_filter=0"),
            sysctl("net/ipv4/conf/vxlan/1/rp_filter", Some("0"))
        );
        assert_eq!(
            kind("sysctl -w net.ipv4.ping_group_range='0 1'"),
            sysctl("net/ipv4/ping_group_range", Some("0 1"))
        );
        err_at(
            "sysctl -w net.ipv4.ip_forward",
            "net.ipv4.ip_forward",
            "invalid syntax",
        );
        err_at("sysctl -w net.ipv4.ip_forward = 1", "=", "invalid syntax");
        err_at("sysctl -w a.b=1 c.d=2", "c.d=2", "one variable per line");
        err_at("sysctl", "sysctl", "no variables specified");
        err_at("sysctl -w", "sysctl", "no variables specified");
        err_at("sysctl -q", "sysctl", "no variables specified");
        err_at("sysctl -a", "-a", "not supported");
        err_at("sysctl -p", "-p", "not supported");
        err_at("sysctl --system", "--system", "not supported");
        err_at("sysctl -z x", "-z", "sysctl: invalid option -- 'z'");
        err_at("sysctl =1", "=1", "malformed setting");
    }

    #[test]
    fn modprobe() {
        assert_eq!(
            kind("modprobe ipip"),
            CommandKind::Modprobe {
                module: "ipip".into()
            }
        );
        assert_eq!(
            kind("modprobe -v br_netfilter"),
            CommandKind::Modprobe {
                module: "br_netfilter".into()
            }
        );
        err_at("modprobe", "modprobe", "missing parameters");
        err_at("modprobe -v", "modprobe", "missing parameters");
        err_at("modprobe ip_vs foo=1", "foo=1", "module parameter");
        err_at("modprobe -r ipip", "-r", "not supported");
        err_at("modprobe -Z ipip", "-Z", "invalid option");
    }

    // --- ping, traceroute, tcpdump, iptables ---------------------------------

    #[test]
    fn ping_options() {
        assert_eq!(
            kind("ping -c 1 10.0.0.1"),
            CommandKind::Ping(ping("10.0.0.1", 1))
        );
        assert_eq!(
            kind("ping -c1 10.0.0.1"),
            CommandKind::Ping(ping("10.0.0.1", 1))
        );
        assert_eq!(
            kind("ping 10.0.0.1 -c 3"),
            CommandKind::Ping(ping("10.0.0.1", 3))
        );
        assert_eq!(
            kind("ping -nqc 2 10.0.0.1"),
            CommandKind::Ping(ping("10.0.0.1", 2))
        );
        assert_eq!(
            kind("ping -4 -c 5 -s 1472 -M do -I 10.0.0.2 -i 0.2 -W 1.5 -t 3 10.0.0.1"),
            CommandKind::Ping(PingCmd {
                size: 1472,
                pmtu: PmtuMode::Do,
                source: Some(PingSource::Addr(a("10.0.0.2"))),
                interval_ms: 200,
                timeout_ms: 1500,
                ttl: Some(3),
                ..ping("10.0.0.1", 5)
            })
        );
        assert_eq!(
            kind("ping -c 1 -M dont -I eth0 -i .5 -W 2 10.0.0.1"),
            CommandKind::Ping(PingCmd {
                pmtu: PmtuMode::Dont,
                source: Some(PingSource::Dev("eth0".into())),
                interval_ms: 500,
                timeout_ms: 2000,
                ..ping("10.0.0.1", 1)
            })
        );
        err_at(
            "ping 10.0.0.1",
            "ping",
            "ping without -c would run forever: add -c N",
        );
        err_at(
            "ping -c abc 1.2.3.4",
            "abc",
            "ping: invalid argument: 'abc'",
        );
        err_at(
            "ping -c 0 1.2.3.4",
            "0",
            "ping: invalid argument: '0': out of range: 1 <= value <=",
        );
        err_at(
            "ping -c 1 -M foo 1.2.3.4",
            "foo",
            "ping: invalid -M argument: foo",
        );
        err_at("ping -c 1 -s abc 1.2.3.4", "abc", "invalid argument: 'abc'");
        err_at(
            "ping -c 1 -s 70000 1.2.3.4",
            "70000",
            "packet size 70000 is too large. Maximum is 65507",
        );
        err_at("ping -c 1 -z 1.2.3.4", "-z", "ping: invalid option -- 'z'");
        err_at("ping -c 1 -w 5 1.2.3.4", "-w", "not supported");
        err_at(
            "ping -c 1 -i abc 1.2.3.4",
            "abc",
            "ping: bad timing interval: abc",
        );
        err_at(
            "ping -c 1 -W abc 1.2.3.4",
            "abc",
            "ping: bad linger time: abc",
        );
        err_at(
            "ping -c 1 -t 300 1.2.3.4",
            "300",
            "ping: invalid argument: '300': out of range: 0 <= value <= 255",
        );
        err_at(
            "ping -c 1",
            "ping",
            "ping: usage error: Destination address required",
        );
        err_at("ping -c", "-c", "option requires an argument -- 'c'");
        err_at(
            "ping -c 1 example.com",
            "example.com",
            "ping: example.com: Name or service not known",
        );
        err_at("ping -c 1 10.1", "10.1", "four decimal octets");
        err_at(
            "ping -c 1 10.0.0.1 10.0.0.2",
            "10.0.0.2",
            "more than one destination",
        );
    }

    #[test]
    fn traceroute_tcpdump_iptables() {
        assert_eq!(
            kind("traceroute -n 10.0.0.1"),
            CommandKind::Traceroute {
                dst: a("10.0.0.1"),
                numeric: true
            }
        );
        assert_eq!(
            kind("traceroute 10.0.0.1"),
            CommandKind::Traceroute {
                dst: a("10.0.0.1"),
                numeric: false
            }
        );
        err_at("traceroute", "traceroute", "missing argument");
        err_at("traceroute -I 10.0.0.1", "-I", "not supported");
        err_at(
            "traceroute host.example",
            "host.example",
            "Name or service not known",
        );
        err_at("traceroute 10.0.0.1 60", "60", "packet length");

        let td = |dev: Option<&str>, write: Option<&str>| CommandKind::Tcpdump {
            dev: dev.map(str::to_string),
            write: write.map(str::to_string),
        };
        assert_eq!(kind("tcpdump"), td(None, None));
        assert_eq!(
            kind("tcpdump -i any -w /tmp/x.pcap -nn -e -p --immediate-mode icmp"),
            td(Some("any"), Some("/tmp/x.pcap"))
        );
        assert_eq!(
            kind("tcpdump -ieth0 -vv host 10.0.0.1 and udp port 4789"),
            td(Some("eth0"), None)
        );
        assert_eq!(
            kind("tcpdump host 10.0.0.1 -i eth0"),
            td(Some("eth0"), None)
        );
        assert_eq!(kind("tcpdump -i eth0 -- -weird"), td(Some("eth0"), None));
        err_at("tcpdump -c 5 -i eth0", "-c", "not supported");
        err_at("tcpdump -i", "-i", "option requires an argument -- 'i'");
        err_at(
            "tcpdump --bogus",
            "--bogus",
            "unrecognized option '--bogus'",
        );
        err_at("tcpdump -g", "-g", "tcpdump: invalid option -- 'g'");

        assert_eq!(
            kind("iptables-nft -t nat -A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE"),
            CommandKind::Iptables {
                args: [
                    "-t",
                    "nat",
                    "-A",
                    "POSTROUTING",
                    "-s",
                    "10.0.0.0/8",
                    "-j",
                    "MASQUERADE"
                ]
                .map(String::from)
                .to_vec(),
                args_cols: vec![13, 16, 20, 23, 35, 38, 49, 52],
            }
        );
        assert_eq!(
            kind("iptables-legacy -L"),
            CommandKind::Iptables {
                args: vec!["-L".into()],
                args_cols: vec![16]
            }
        );
        assert_eq!(
            kind("iptables -m comment --comment 'a b' -j ACCEPT"),
            CommandKind::Iptables {
                args: ["-m", "comment", "--comment", "a b", "-j", "ACCEPT"]
                    .map(String::from)
                    .to_vec(),
                args_cols: vec![9, 12, 20, 30, 36, 39],
            }
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(strtoul0("0"), Some(0));
        assert_eq!(strtoul0("010"), Some(8));
        assert_eq!(strtoul0("0x1F"), Some(31));
        assert_eq!(strtoul0("0x"), None);
        assert_eq!(strtoul0("08"), None);
        assert_eq!(strtoul0("-1"), None);
        assert_eq!(strtoul0(""), None);
        assert_eq!(secs_to_ms("0.2"), Some(200));
        assert_eq!(secs_to_ms("1.2345"), Some(1234));
        assert_eq!(secs_to_ms("."), None);
        assert_eq!(secs_to_ms("-1"), None);
        assert_eq!(sysctl_key("net.ipv4.ip_forward"), "net/ipv4/ip_forward");
        assert_eq!(sysctl_key("/net//ipv4/"), "net/ipv4");
        assert_eq!(sysctl_key("kernel"), "kernel");
        assert!(
            matches("a", "address") && !matches("", "address") && !matches("addresses", "address")
        );
    }

    /// Words the structured fuzzer combines, covering every parser.
    const VOCAB: &[&str] = &[
        "ip",
        "-n",
        "-4",
        "-d",
        "-s",
        "link",
        "l",
        "addr",
        "a",
        "route",
        "r",
        "rule",
        "neigh",
        "n",
        "netns",
        "exec",
        "tunnel",
        "add",
        "del",
        "set",
        "show",
        "s",
        "flush",
        "get",
        "replace",
        "change",
        "type",
        "veth",
        "peer",
        "name",
        "vxlan",
        "ipip",
        "dummy",
        "bridge",
        "vni",
        "id",
        "dstport",
        "srcport",
        "mtu",
        "address",
        "up",
        "down",
        "master",
        "nomaster",
        "dev",
        "via",
        "src",
        "onlink",
        "table",
        "metric",
        "scope",
        "proto",
        "nexthop",
        "weight",
        "default",
        "blackhole",
        "from",
        "to",
        "lookup",
        "fwmark",
        "pref",
        "lladdr",
        "nud",
        "proxy",
        "mode",
        "local",
        "remote",
        "ttl",
        "fdb",
        "append",
        "dst",
        "self",
        "static",
        "arp",
        "-s",
        "-i",
        "-an",
        "sysctl",
        "-w",
        "modprobe",
        "iptables",
        "ping",
        "-c",
        "-M",
        "do",
        "-I",
        "-W",
        "traceroute",
        "tcpdump",
        "--immediate-mode",
        "sudo",
        "set",
        "-ux",
        "1",
        "0x10",
        "300",
        "10.0.0.1",
        "10.0.0.0/8",
        "1.2.3",
        "02:00:00:00:00:01",
        "zz",
        "eth0",
        "ns1",
        "main",
        "all",
        "net.ipv4.ip_forward=1",
        "'",
        "\"",
        "\\",
        "#",
        "|",
        "网卡",
        "",
    ];

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC*") {
            if let Err(e) = parse_line(&s) {
                prop_assert!(e.col <= s.chars().count());
            }
        }

        #[test]
        fn arbitrary_bytes_as_text_never_panic(s in any::<String>()) {
            let _ = parse_line(&s);
            let _ = split_words(&s);
        }

        #[test]
        fn vocabulary_sentences_never_panic(
            words in prop::collection::vec(prop::sample::select(VOCAB), 0..14),
            sep in prop::sample::select(&[" ", "  ", "\t"][..]),
        ) {
            let line = words.join(sep);
            if let Err(e) = parse_line(&line) {
                prop_assert!(e.col <= line.chars().count(), "{line:?}: col {} beyond the line", e.col);
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}

#[cfg(test)]
mod netfilter_tool_tests {
    use super::*;

    fn kind(line: &str) -> CommandKind {
        parse_line(line)
            .unwrap_or_else(|e| panic!("{line:?}: col {} {}", e.col, e.message))
            .kind
    }

    /// The error's column is that of `word`'s first occurrence, and its message contains `msg`.
    fn err_at(line: &str, word: &str, msg: &str) {
        let e = match parse_line(line) {
            Ok(c) => panic!("{line:?} parsed as {c:?}"),
            Err(e) => e,
        };
        let byte = line.find(word).expect("word in line");
        assert_eq!(
            e.col,
            line[..byte].chars().count(),
            "{line:?}: {}",
            e.message
        );
        assert!(e.message.contains(msg), "{line:?}: {}", e.message);
    }

    #[test]
    fn iptables_save_takes_getopts_options() {
        let save = |table: Option<&str>, counters| CommandKind::IptablesSave {
            table: table.map(str::to_string),
            counters,
        };
        assert_eq!(kind("iptables-save"), save(None, false));
        assert_eq!(kind("iptables-save -c"), save(None, true));
        assert_eq!(kind("iptables-save -t nat"), save(Some("nat"), false));
        assert_eq!(kind("iptables-save -ct nat"), save(Some("nat"), true));
        assert_eq!(kind("iptables-save -tnat -c"), save(Some("nat"), true));
        assert_eq!(
            kind("iptables-save --counters --table=mangle"),
            save(Some("mangle"), true)
        );
        assert_eq!(
            parse_line("ip netns exec b iptables-save -t security").unwrap(),
            Command {
                netns: Some("b".into()),
                kind: save(Some("security"), false)
            }
        );
        err_at(
            "iptables-save -x",
            "-x",
            "iptables-save: invalid option -- 'x'",
        );
        err_at(
            "iptables-save -t",
            "-t",
            "iptables-save: option requires an argument -- 't'",
        );
        err_at(
            "iptables-save -t nosuch",
            "nosuch",
            "iptables-save: Table `nosuch' does not exist",
        );
        err_at(
            "iptables-save extra",
            "extra",
            "iptables-save: Unknown arguments found on commandline",
        );
        err_at(
            "iptables-save -M /sbin/modprobe",
            "-M",
            "not supported by the simulator",
        );
        err_at(
            "iptables-save --bogus",
            "--bogus",
            "unrecognized option '--bogus'",
        );
    }

    #[test]
    fn iptables_restore_needs_a_here_document() {
        err_at(
            "iptables-restore",
            "iptables-restore",
            "give them as a here-document",
        );
        err_at(
            "ip netns exec b iptables-restore -n",
            "iptables-restore",
            "standard input",
        );
        err_at(
            "iptables-restore rules.txt",
            "rules.txt",
            "reading rules from a file",
        );
        err_at(
            "iptables-restore --bogus <<EOF",
            "<<",
            "read only in a script",
        );
        err_at("iptables-restore <<<x", "<<<", "here-strings");
    }

    #[test]
    fn conntrack_lists_only() {
        assert_eq!(kind("conntrack -L"), CommandKind::ConntrackList);
        assert_eq!(kind("conntrack --dump"), CommandKind::ConntrackList);
        assert_eq!(kind("conntrack -L conntrack"), CommandKind::ConntrackList);
        assert_eq!(
            parse_line("ip netns exec b conntrack -L")
                .unwrap()
                .netns
                .as_deref(),
            Some("b")
        );
        err_at("conntrack", "conntrack", "no command given");
        err_at(
            "conntrack -L -x",
            "-x",
            "conntrack v1.4.7 (conntrack-tools): unknown option `-x'",
        );
        err_at(
            "conntrack -L extra",
            "extra",
            "not supported by the simulator (only the conntrack table is)",
        );
        err_at("conntrack -F", "-F", "not supported by the simulator");
        err_at(
            "conntrack -L -p icmp",
            "-p",
            "not supported by the simulator",
        );
    }

    #[test]
    fn a_script_gives_a_here_document_to_iptables_restore() {
        let script = "ip link set lo up\n  iptables-restore --noflush <<'EOF'\n  *filter\n  :KUBE-X - [0:0]\n  -A KUBE-X -j ACCEPT -m comment --comment \"a b\"\n  COMMIT\n  EOF\nconntrack -L";
        let cmds = parse_script(script);
        assert_eq!(cmds.len(), 3, "{cmds:?}");
        assert_eq!((cmds[1].line, cmds[1].lines), (1, 6));
        assert_eq!(
            cmds[1].text,
            "iptables-restore --noflush <<'EOF'\n*filter\n:KUBE-X - [0:0]\n-A KUBE-X -j ACCEPT -m comment --comment \"a b\"\nCOMMIT\nEOF"
        );
        assert_eq!(
            cmds[1].result,
            Ok(Command {
                netns: None,
                kind: CommandKind::IptablesRestore {
                    noflush: true,
                    counters: false,
                    input: "*filter\n:KUBE-X - [0:0]\n-A KUBE-X -j ACCEPT -m comment --comment \"a b\"\nCOMMIT\n".into()
                }
            })
        );
        assert_eq!(cmds[2].line, 7);
        assert_eq!(
            cmds[2].result.as_ref().unwrap().kind,
            CommandKind::ConntrackList
        );
    }

    #[test]
    fn here_document_errors_are_positioned() {
        // No terminator: at the operator.
        let cmds = parse_script("iptables-restore <<EOF\n*filter\nCOMMIT");
        assert_eq!(cmds.len(), 1);
        let (line, e) = cmds[0].result.clone().unwrap_err();
        assert_eq!((line, e.col), (0, 17), "{}", e.message);
        assert!(e.message.contains("expected a line `EOF`"), "{}", e.message);
        // An unquoted delimiter: the shell would expand `$`.
        let cmds =
            parse_script("iptables-restore <<EOF\n*nat\n-A OUTPUT -d $IP -j ACCEPT\nEOF\nip link");
        assert_eq!(cmds.len(), 2);
        let (line, e) = cmds[0].result.clone().unwrap_err();
        assert_eq!((line, e.col), (2, 13), "{}", e.message);
        assert!(e.message.contains("(<<'EOF')"), "{}", e.message);
        // A here-document for a command that reads none; the lines are its own.
        let cmds = parse_script("ip link <<EOF\n*nat\nEOF");
        assert_eq!(cmds.len(), 1);
        let (line, e) = cmds[0].result.clone().unwrap_err();
        assert_eq!((line, e.col), (0, 8), "{}", e.message);
        assert!(e.message.contains("only iptables-restore"), "{}", e.message);
        // Something after the delimiter.
        let cmds = parse_script("iptables-restore <<EOF | x\nEOF");
        let (_, e) = cmds[0].result.clone().unwrap_err();
        assert_eq!(e.col, 23, "{}", e.message);
        // `<<` quoted is an ordinary argument (and the line parses as before).
        let cmds = parse_script("iptables -A INPUT -m comment --comment '<<x' -j ACCEPT");
        assert!(cmds[0].result.is_ok(), "{cmds:?}");
    }
}
