//! Source positions for scenario files.
//!
//! Every error about a scenario file names `file:line:column`, where the line
//! and the column are 1-based and the column counts characters (Unicode scalar
//! values), not bytes, so that a line holding non-ASCII text (a Chinese
//! comment, `"µs"`) still points at the right character.
//!
//! Two sources of errors need positions:
//!
//! 1. Errors raised by `ron` itself (syntax, unknown field, wrong type, missing
//!    field). [`ron_error_pos`] turns the span of a [`ron::error::SpannedError`]
//!    into a [`Pos`] pointing *at* the offending token.
//!
//!    What ron 0.12.3 reports: `Position { line, col }` is 1-based in both;
//!    lines are counted by `'\n'` only, and `col` is one plus the number of
//!    *characters* since the last `'\n'` (so it already counts chars, and a
//!    `'\r'` before a `'\n'` never matters). The span is
//!    `prev_cursor..cursor` of ron's parser at the moment of the error: `start`
//!    is where the last token consumption began, `end` is the parser cursor.
//!    Depending on the error, `start` is the offending token itself (unknown
//!    field, unknown variant, wrong struct name), the whitespace/comments
//!    *before* it (wrong type: `seed: "x"` gives start = the space after `:`,
//!    end = the `"`), the token where something else was expected (missing
//!    comma: start = end = the next token; missing field: the `)`), the
//!    inside of a literal (an error of the value's own `Deserialize`, e.g.
//!    `Ipv4Addr`: start = just after the opening quote, end = after the
//!    closing one; out-of-bounds integer: start = after the sign and `0x`),
//!    the inside of an escape sequence (invalid escape), the `"` of an
//!    unterminated `r#"`, the end of the text (`Eof`, possibly on a trailing
//!    empty line), or the end of an inner comment (unclosed nested block
//!    comment). [`ron_error_pos`] normalises all of these; see its
//!    documentation.
//!
//! 2. Errors found after deserialization, in the semantic layer ("the 6th
//!    setup command of the 3rd host is not a valid `ip route` command"). ron
//!    keeps no spans for values, so [`SpanTree`] re-parses the text with a
//!    small RON parser of its own and records the span of every value, which
//!    can then be looked up by a path of [`PathSeg`]s, down to a character
//!    inside a (multi-line, escaped or raw) string literal
//!    ([`SpanTree::string_pos`]).
//!
//! Nothing here panics, whatever the input; parsing is linear in the size of
//! the text and nesting deeper than [`MAX_DEPTH`] is refused (`None`) rather
//! than recursed into.

use std::fmt;

/// Deepest nesting of `()`, `[]`, `{}` and `Some(..)` that [`SpanTree::parse`]
/// accepts (ron's own default recursion limit is the same).
pub const MAX_DEPTH: usize = 128;

/// A position in a source text: 1-based line, 1-based column counted in
/// characters (Unicode scalar values). Lines are separated by `'\n'` only (as
/// ron counts them), so in a CRLF file the `'\r'` is the last character of its
/// line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// A range of a source text. `end`/`byte_end` are exclusive: they point just
/// past the last character (for a value ending a line, at the `'\n'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
    pub byte_start: usize,
    pub byte_end: usize,
}

/// One step of a path into a RON document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathSeg<'a> {
    /// A named field of a struct or of a struct-like enum variant
    /// (`Ping(to: "x")`). Raw identifiers match without their `r#`. Looks
    /// through `Some(..)` and through newtype wrappers (`Foo(x)` where `x`
    /// has the field); on a map it matches a key like [`PathSeg::Key`].
    Field(&'a str),
    /// The i-th element of a list, of a tuple, of a tuple struct or tuple
    /// variant (the positional fields), or the i-th entry of a map or of a
    /// named struct, in source order. Looks through `Some(..)`.
    Index(usize),
    /// The value of a map entry whose key decodes to this string (string or
    /// char keys are compared after decoding escapes; other keys by their
    /// source text, e.g. `Key("80")` for `{ 80: "http" }`). On a struct it
    /// matches a field name. If a key occurs twice, the last one wins (as a
    /// map insertion would). Looks through `Some(..)`.
    Key(&'a str),
}

/// The spans of every value of a RON document. See the module documentation.
///
/// ```
/// use scenarios::spans::{PathSeg::*, Pos, SpanTree};
///
/// let src = "// µs\n(hosts: [Host(cmds: [\"ip route add\\ndefault via x\"])])";
/// let tree = SpanTree::parse(src).unwrap();
/// let cmd = [Field("hosts"), Index(0), Field("cmds"), Index(0)];
/// assert_eq!(tree.locate(&cmd).unwrap().start, Pos { line: 2, col: 22 });
/// // `via`: char 8 of line 1 of the decoded string, after the `\n` escape.
/// assert_eq!(tree.string_pos(&cmd, 1, 8), Some(Pos { line: 2, col: 45 }));
/// ```
#[derive(Clone, Debug)]
pub struct SpanTree {
    src: Box<str>,
    line_starts: Vec<usize>,
    nodes: Vec<Node>,
    root: usize,
}

#[derive(Clone, Debug)]
struct Node {
    start: usize,
    end: usize,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// Numbers, ranges, booleans, `None`, unit structs / variants.
    Scalar,
    /// A string or byte string literal.
    Str(Lit),
    /// A char or byte literal.
    Char(Lit),
    /// `(..)`, `Name(..)`, `[..]`, `{..}`, `Some(..)`.
    Seq { bracket: Bracket, items: Vec<Item> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bracket {
    Paren,
    List,
    Map,
    Some,
}

#[derive(Clone, Copy, Debug)]
struct Item {
    key: Key,
    value: usize,
}

#[derive(Clone, Copy, Debug)]
enum Key {
    /// A positional element.
    None,
    /// A named field: byte range of the identifier as written (`r#` included).
    Field(usize, usize),
    /// A map key: its node.
    Value(usize),
}

/// The content of a string or char literal: the bytes between the delimiters
/// and how to decode them.
#[derive(Clone, Copy, Debug)]
struct Lit {
    content_start: usize,
    content_end: usize,
    style: Style,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `"..."`: escapes and line continuations.
    Escaped,
    /// `b"..."`: as `Escaped`, but a `\xHH` is one unit on its own.
    EscapedBytes,
    /// `r#"..."#`, `br".."`: verbatim.
    Raw,
    /// `'.'`: escapes but no line continuation; `\x` must be ASCII.
    Char,
    /// `b'.'`: escapes, `\x` any byte.
    Byte,
}

// ---------------------------------------------------------------------------
// Positions

/// The [`Pos`] of byte offset `byte` in `src` (clamped to the text, and moved
/// back to a character boundary if it is inside a character).
#[must_use]
pub fn pos_at(src: &str, byte: usize) -> Pos {
    let byte = floor_boundary(src, byte);
    let before = src.get(..byte).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before.get(line_start..).unwrap_or("").chars().count() + 1;
    Pos {
        line: to_u32(line),
        col: to_u32(col),
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn floor_boundary(src: &str, byte: usize) -> usize {
    let mut b = byte.min(src.len());
    while !src.is_char_boundary(b) {
        b -= 1;
    }
    b
}

/// The byte offset of a ron `Position` (1-based line, 1-based char column).
/// A column past the end of its line gives the end of that line (its `'\n'`);
/// a line past the end of the text gives the end of the text.
fn byte_of_line_col(src: &str, line: usize, col: usize) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match src.get(start..).and_then(|rest| rest.find('\n')) {
            Some(i) => start += i + 1,
            None => return src.len(),
        }
    }
    let rest = src.get(start..).unwrap_or("");
    let mut byte = start;
    for (n, c) in rest.chars().enumerate() {
        if n + 1 >= col || c == '\n' {
            return byte;
        }
        byte += c.len_utf8();
    }
    src.len()
}

// ---------------------------------------------------------------------------
// ron's errors

/// Where a ron error points, as a 1-based line and a 1-based character column
/// *at* the offending token.
///
/// ron's span (see the module documentation) is first converted to byte
/// offsets `start`/`end` (its columns already count characters). Then:
///
/// * in general the position is `start` moved forward over whitespace and
///   comments, as long as that does not go past `end` (so `seed: "x"` points
///   at the `"`, not at the space before it; an unknown field or variant
///   points at its name; a missing comma or field at the token found
///   instead, e.g. the `)` that closes a struct lacking a field);
/// * `Eof`, and any error whose position would only be followed by whitespace,
///   points just after the last non-whitespace character of the text;
/// * `UnclosedBlockComment` points at the `/*` that opens the unclosed
///   (outermost) comment, not at the inner comment ron was last in;
/// * `InvalidEscape` points at the backslash of the offending escape (for a
///   `\x` sequence that is not valid UTF-8, at the first `\x` of the run);
/// * `InvalidIntegerDigit` points at the offending digit;
/// * a position inside a literal (ron points after the opening quote of a
///   string for errors of the value's own `Deserialize`, e.g. an invalid
///   IP address, or after its last line continuation; after the sign or the
///   `0x`/`0o`/`0b` prefix of an out-of-bounds integer) is moved to the start
///   of the literal;
/// * `ExpectedStringEnd` points at the opening quote (or `r#`) of the
///   unterminated string.
#[must_use]
pub fn ron_error_pos(src: &str, err: &ron::error::SpannedError) -> Pos {
    use ron::error::Error as E;

    let start = byte_of_line_col(src, err.span.start.line, err.span.start.col);
    let end = byte_of_line_col(src, err.span.end.line, err.span.end.col);
    let byte = match &err.code {
        E::Eof => eof_byte(src),
        E::UnclosedBlockComment => unclosed_comment_start(src).unwrap_or(start),
        E::InvalidEscape(msg) => escape_start(src, start, end, msg),
        E::InvalidIntegerDigit { .. } => end,
        E::ExpectedStringEnd => string_start(src, next_token(src, start, end)),
        _ => {
            let p = next_token(src, start, end);
            enclosing_literal_start(src, p).unwrap_or_else(|| {
                let p = literal_start(src, p, end).unwrap_or(p);
                if src.as_bytes().get(p).is_some_and(u8::is_ascii_digit) {
                    number_start(src, p)
                } else {
                    p
                }
            })
        }
    };
    let byte = if skip_ws_comments(src, byte) >= src.len() {
        eof_byte(src).min(byte)
    } else {
        byte
    };
    pos_at(src, byte)
}

/// Just after the last non-whitespace character.
fn eof_byte(src: &str) -> usize {
    src.trim_end_matches(is_ron_ws).len()
}

/// `start` moved over whitespace and comments, unless that passes `end`.
fn next_token(src: &str, start: usize, end: usize) -> usize {
    if start > end {
        // ron reset its cursor back to `end` after a failed attempt.
        return skip_ws_comments(src, end);
    }
    let p = skip_ws_comments(src, start);
    if p <= end { p } else { start }
}

/// Skips whitespace and (closed) comments from `i`; stops at an unclosed
/// block comment or a lone `/`.
fn skip_ws_comments(src: &str, i: usize) -> usize {
    let mut p = Parser::new(src);
    p.i = floor_boundary(src, i);
    // An unclosed comment stops the skipping at its start.
    let _ = p.ws();
    p.i
}

fn unclosed_comment_start(src: &str) -> Option<usize> {
    let mut p = Parser::new(src);
    if p.document().is_some() {
        return None;
    }
    p.unclosed_comment
}

fn escape_start(src: &str, start: usize, end: usize, msg: &str) -> usize {
    let (lo, hi) = (start.min(end), start.max(end));
    let b = src.as_bytes();
    let Some(mut bs) = src.get(..hi).and_then(|s| s.rfind('\\')) else {
        return next_token(src, start, end);
    };
    // ron's start is at most a few bytes after the backslash (`\u{10FFFF}`).
    if bs + 12 < lo {
        return next_token(src, start, end);
    }
    if msg.contains("byte-escaped") {
        while bs >= 4
            && b.get(bs - 4) == Some(&b'\\')
            && b.get(bs - 3) == Some(&b'x')
            && b.get(bs - 2).is_some_and(u8::is_ascii_hexdigit)
            && b.get(bs - 1).is_some_and(u8::is_ascii_hexdigit)
        {
            bs -= 4;
        }
    }
    bs
}

/// The start of the literal (string, char, number) that `p` is strictly
/// inside of, if any: ron points after the opening quote of a string it
/// consumed (for errors of the value's `Deserialize`), after the sign or
/// base prefix of a number, after the last line continuation of a string.
/// Found by parsing the text up to its first syntax error: everything before
/// ron's error is valid RON.
fn enclosing_literal_start(src: &str, p: usize) -> Option<usize> {
    let mut parser = Parser::new(src);
    let _ = parser.document();
    parser
        .nodes
        .iter()
        .find(|n| !matches!(n.kind, Kind::Seq { .. }) && n.start < p && p < n.end)
        .map(|n| n.start)
}

/// Without a parse: if `p` is just inside the opening quote of a string literal that ends at
/// `end` (ron's span of a string it consumed), the start of that literal.
fn literal_start(src: &str, p: usize, end: usize) -> Option<usize> {
    if p == 0 || src.as_bytes().get(p - 1) != Some(&b'"') {
        return None;
    }
    let q = string_start(src, p - 1);
    let mut parser = Parser::new(src);
    parser.i = q;
    let node = parser.value()?;
    let is_str = matches!(
        parser.nodes.get(node),
        Some(Node {
            kind: Kind::Str(_),
            ..
        })
    );
    (is_str && parser.i == end).then_some(q)
}

/// From the opening `"` of a string literal back to its `r#..`/`b` prefix.
fn string_start(src: &str, quote: usize) -> usize {
    let b = src.as_bytes();
    if b.get(quote) != Some(&b'"') {
        return quote;
    }
    let mut q = quote;
    while q > 0 && b.get(q - 1) == Some(&b'#') {
        q -= 1;
    }
    if q > 0 && b.get(q - 1) == Some(&b'r') {
        q -= 1;
    } else if q == quote {
        // `b"..."`
        return if quote > 0 && b.get(quote - 1) == Some(&b'b') {
            quote - 1
        } else {
            quote
        };
    } else {
        return quote;
    }
    if q > 0 && b.get(q - 1) == Some(&b'b') {
        q - 1
    } else {
        q
    }
}

/// Moves back from the digits of an integer over its base prefix and sign.
fn number_start(src: &str, digits: usize) -> usize {
    let before = src.get(..digits).unwrap_or("");
    let mut p = digits;
    if before.ends_with("0x") || before.ends_with("0o") || before.ends_with("0b") {
        p -= 2;
    }
    if src.get(..p).is_some_and(|s| s.ends_with(['+', '-'])) {
        p -= 1;
    }
    p
}

// ---------------------------------------------------------------------------
// Character classes (as ron's parser)

const fn is_ron_ws(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\n'
            | '\r'
            | '\x0B'
            | '\x0C'
            | '\u{85}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// XID_Start, approximated from above: any non-ASCII character that is not
/// whitespace counts (in valid RON, such a character outside strings and
/// comments can only be part of an identifier).
fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!c.is_ascii() && !is_ron_ws(c))
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric() || (!c.is_ascii() && !is_ron_ws(c))
}

fn is_raw_ident_char(c: char) -> bool {
    is_ident_continue(c) || matches!(c, '.' | '+' | '-')
}

fn hex_val(b: u8) -> Option<u32> {
    char::from(b).to_digit(16)
}

fn hex2(b: &[u8], i: usize) -> Option<u8> {
    let hi = hex_val(*b.get(i)?)?;
    let lo = hex_val(*b.get(i + 1)?)?;
    u8::try_from(hi * 16 + lo).ok()
}

// ---------------------------------------------------------------------------
// Literal decoding

/// Decodes the escape whose backslash is at `i`. Returns the decoded char
/// (`None` for a line continuation, which produces nothing) and the offset
/// after the escape; `None` if the escape is invalid.
fn decode_escape(b: &[u8], i: usize, style: Style) -> Option<(Option<char>, usize)> {
    let c = *b.get(i + 1)?;
    let simple = match c {
        b'\'' => Some('\''),
        b'"' => Some('"'),
        b'\\' => Some('\\'),
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'0' => Some('\0'),
        _ => None,
    };
    if let Some(ch) = simple {
        return Some((Some(ch), i + 2));
    }
    match c {
        b'\n' | b'\r' if matches!(style, Style::Escaped | Style::EscapedBytes) => {
            let mut j = i + 2;
            if c == b'\r' {
                if b.get(j) != Some(&b'\n') {
                    return None;
                }
                j += 1;
            }
            while matches!(b.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                j += 1;
            }
            Some((None, j))
        }
        b'x' => {
            let first = hex2(b, i + 2)?;
            if first < 0x80 || matches!(style, Style::EscapedBytes | Style::Byte) {
                return Some((Some(char::from(first)), i + 4));
            }
            if style == Style::Char {
                return None;
            }
            let len = match first {
                0xC0..=0xDF => 2,
                0xE0..=0xEF => 3,
                0xF0..=0xF7 => 4,
                _ => return None,
            };
            let mut bytes = [first, 0, 0, 0];
            let mut j = i + 4;
            for slot in bytes.iter_mut().take(len).skip(1) {
                if b.get(j) != Some(&b'\\') || b.get(j + 1) != Some(&b'x') {
                    return None;
                }
                *slot = hex2(b, j + 2)?;
                j += 4;
            }
            let ch = std::str::from_utf8(bytes.get(..len)?)
                .ok()?
                .chars()
                .next()?;
            Some((Some(ch), j))
        }
        b'u' => {
            if b.get(i + 2) != Some(&b'{') {
                return None;
            }
            let mut j = i + 3;
            let mut v: u32 = 0;
            let mut digits = 0;
            while digits < 6 {
                let d = *b.get(j)?;
                if d == b'}' {
                    break;
                }
                v = v * 16 + hex_val(d)?;
                digits += 1;
                j += 1;
            }
            if digits == 0 || b.get(j) != Some(&b'}') {
                return None;
            }
            Some((Some(char::from_u32(v)?), j + 1))
        }
        _ => None,
    }
}

/// The decoded characters of a literal, each with the byte offset in the
/// source where its representation starts. Stops at the first invalid escape.
struct Units<'s> {
    src: &'s str,
    i: usize,
    end: usize,
    style: Style,
}

impl Iterator for Units<'_> {
    type Item = (usize, char);

    fn next(&mut self) -> Option<(usize, char)> {
        loop {
            if self.i >= self.end {
                return None;
            }
            let at = self.i;
            if self.style != Style::Raw && self.src.as_bytes().get(at) == Some(&b'\\') {
                let Some((ch, next)) = decode_escape(self.src.as_bytes(), at, self.style) else {
                    self.i = self.end;
                    return None;
                };
                self.i = next;
                match ch {
                    Some(ch) => return Some((at, ch)),
                    None => continue,
                }
            }
            let ch = self.src.get(at..)?.chars().next()?;
            self.i = at + ch.len_utf8();
            return Some((at, ch));
        }
    }
}

/// The lines of one string value, located (see [`SpanTree::string_lines`]).
pub struct StringLines<'t> {
    tree: &'t SpanTree,
    lit: Lit,
    /// Where each decoded line's first unit starts in the source.
    starts: Vec<usize>,
}

impl StringLines<'_> {
    /// As [`SpanTree::string_pos`], for line `line_idx` of this string.
    #[must_use]
    pub fn pos(&self, line_idx: usize, char_idx: usize) -> Option<Pos> {
        let start = *self.starts.get(line_idx)?;
        let units = Units {
            src: &self.tree.src,
            i: start,
            end: self.lit.content_end,
            style: self.lit.style,
        };
        let mut col = 0;
        for (at, ch) in units {
            if col == char_idx {
                return Some(self.tree.pos(at));
            }
            if ch == '\n' {
                return None;
            }
            col += 1;
        }
        (col == char_idx).then(|| self.tree.pos(self.lit.content_end))
    }

    /// How many lines the string has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

// ---------------------------------------------------------------------------
// Parser

struct Parser<'s> {
    s: &'s str,
    b: &'s [u8],
    i: usize,
    depth: usize,
    nodes: Vec<Node>,
    /// Set when the parse fails on an unclosed block comment: its start.
    unclosed_comment: Option<usize>,
}

impl<'s> Parser<'s> {
    fn new(s: &'s str) -> Self {
        Parser {
            s,
            b: s.as_bytes(),
            i: 0,
            depth: 0,
            nodes: Vec::new(),
            unclosed_comment: None,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn peek_at(&self, k: usize) -> Option<u8> {
        self.b.get(self.i + k).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.s.get(self.i..)?.chars().next()
    }

    fn rest(&self) -> &'s str {
        self.s.get(self.i..).unwrap_or("")
    }

    fn push(&mut self, start: usize, end: usize, kind: Kind) -> usize {
        self.nodes.push(Node { start, end, kind });
        self.nodes.len() - 1
    }

    /// Skips whitespace and comments. Fails on an unclosed block comment
    /// (leaving `i` at its start). A lone `/` is left for the caller.
    fn ws(&mut self) -> Option<()> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0B | 0x0C) => self.i += 1,
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    self.i = match self.rest().find('\n') {
                        Some(n) => self.i + n + 1,
                        None => self.b.len(),
                    };
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                Some(c) if c >= 0x80 => match self.peek_char() {
                    Some(ch) if is_ron_ws(ch) => self.i += ch.len_utf8(),
                    _ => return Some(()),
                },
                _ => return Some(()),
            }
        }
    }

    fn block_comment(&mut self) -> Option<()> {
        let start = self.i;
        let mut j = self.i + 2;
        let mut level = 1_usize;
        while level > 0 {
            let Some(n) = self
                .b
                .get(j..)
                .and_then(|r| r.iter().position(|&c| c == b'/' || c == b'*'))
            else {
                self.unclosed_comment = Some(start);
                return None;
            };
            j += n;
            match (self.b.get(j), self.b.get(j + 1)) {
                (Some(b'/'), Some(b'*')) => {
                    level += 1;
                    j += 2;
                }
                (Some(b'*'), Some(b'/')) => {
                    level -= 1;
                    j += 2;
                }
                _ => j += 1,
            }
        }
        self.i = j;
        Some(())
    }

    /// `ws [attributes ws] value ws EOF`
    fn document(&mut self) -> Option<usize> {
        self.ws()?;
        while self.peek() == Some(b'#') {
            self.attribute()?;
            self.ws()?;
        }
        let root = self.value()?;
        self.ws()?;
        if self.i == self.b.len() {
            Some(root)
        } else {
            None
        }
    }

    /// `#![enable(...)]`, `#![type = "..."]`: checked loosely.
    fn attribute(&mut self) -> Option<()> {
        self.i += 1; // '#'
        self.ws()?;
        self.expect(b'!')?;
        self.ws()?;
        self.expect(b'[')?;
        loop {
            self.ws()?;
            match self.peek()? {
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                b'"' => {
                    self.escaped_literal(self.i, Style::Escaped)?;
                }
                _ => {
                    let ch = self.peek_char()?;
                    self.i += ch.len_utf8();
                }
            }
        }
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// Whether a raw string (`r"`, `r#"`, `r##`) starts `k` bytes ahead
    /// (at an `r`).
    fn raw_string_at(&self, k: usize) -> bool {
        self.peek_at(k) == Some(b'r')
            && match self.peek_at(k + 1) {
                Some(b'"') => true,
                Some(b'#') => matches!(self.peek_at(k + 2), Some(b'"' | b'#')),
                _ => false,
            }
    }

    fn value(&mut self) -> Option<usize> {
        let start = self.i;
        match self.peek()? {
            b'(' => self.seq(start, Bracket::Paren),
            b'[' => self.seq(start, Bracket::List),
            b'{' => self.seq(start, Bracket::Map),
            b'"' => self.escaped_literal(start, Style::Escaped),
            b'\'' => self.char_literal(start, Style::Char),
            b'0'..=b'9' | b'+' | b'-' | b'.' => self.number_or_range(),
            b'r' if self.raw_string_at(0) => self.raw_literal(start),
            b'b' if self.peek_at(1) == Some(b'"') => {
                self.i += 1;
                self.escaped_literal(start, Style::EscapedBytes)
            }
            b'b' if self.raw_string_at(1) => {
                self.i += 1;
                self.raw_literal(start)
            }
            b'b' if self.peek_at(1) == Some(b'\'') => self.number_or_range(),
            _ => {
                let (is, ie) = self.ident()?;
                self.ident_value(is, ie)
            }
        }
    }

    /// An identifier (`r#` raw identifiers included) at `i`.
    fn ident(&mut self) -> Option<(usize, usize)> {
        let start = self.i;
        if self.rest().starts_with("r#") {
            let len: usize = self
                .s
                .get(start + 2..)?
                .chars()
                .take_while(|&c| is_raw_ident_char(c))
                .map(char::len_utf8)
                .sum();
            if len == 0 {
                return None;
            }
            self.i = start + 2 + len;
            return Some((start, self.i));
        }
        let first = self.peek_char()?;
        if !is_ident_start(first) {
            return None;
        }
        let len: usize = self
            .rest()
            .chars()
            .skip(1)
            .take_while(|&c| is_ident_continue(c))
            .map(char::len_utf8)
            .sum();
        self.i = start + first.len_utf8() + len;
        Some((start, self.i))
    }

    /// The value starting with the identifier `is..ie` (already consumed).
    fn ident_value(&mut self, is: usize, ie: usize) -> Option<usize> {
        let name = self.s.get(is..ie)?;
        match name {
            "true" | "false" | "None" => return Some(self.push(is, ie, Kind::Scalar)),
            "inf" | "inff32" | "inff64" | "NaN" | "NaNf32" | "NaNf64" => {
                self.range_tail()?;
                return Some(self.push(is, self.i, Kind::Scalar));
            }
            _ => {}
        }
        self.ws()?;
        if self.peek() == Some(b'(') {
            let bracket = if name == "Some" {
                Bracket::Some
            } else {
                Bracket::Paren
            };
            self.seq(is, bracket)
        } else {
            Some(self.push(is, ie, Kind::Scalar))
        }
    }

    /// `( .. )`, `[ .. ]`, `{ .. }` at `i`; the node starts at `start` (the
    /// name, if any).
    fn seq(&mut self, start: usize, bracket: Bracket) -> Option<usize> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        let close = match bracket {
            Bracket::Paren | Bracket::Some => b')',
            Bracket::List => b']',
            Bracket::Map => b'}',
        };
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws()?;
            if self.peek()? == close {
                self.i += 1;
                break;
            }
            let item = match bracket {
                Bracket::Map => {
                    let key = self.value()?;
                    self.ws()?;
                    self.expect(b':')?;
                    self.ws()?;
                    Item {
                        key: Key::Value(key),
                        value: self.value()?,
                    }
                }
                Bracket::List => Item {
                    key: Key::None,
                    value: self.value()?,
                },
                Bracket::Paren | Bracket::Some => self.paren_item()?,
            };
            items.push(item);
            self.ws()?;
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        self.depth -= 1;
        Some(self.push(start, self.i, Kind::Seq { bracket, items }))
    }

    /// `name: value` or `value` inside parentheses.
    fn paren_item(&mut self) -> Option<Item> {
        let c = self.peek_char()?;
        let ident_ahead = (is_ident_start(c) || self.rest().starts_with("r#"))
            && !self.raw_string_at(0)
            && !(c == 'b' && matches!(self.peek_at(1), Some(b'"' | b'\'')))
            && !(c == 'b' && self.raw_string_at(1));
        if !ident_ahead {
            return Some(Item {
                key: Key::None,
                value: self.value()?,
            });
        }
        let (is, ie) = self.ident()?;
        let after = self.i;
        self.ws()?;
        if self.peek() == Some(b':') {
            self.i += 1;
            self.ws()?;
            return Some(Item {
                key: Key::Field(is, ie),
                value: self.value()?,
            });
        }
        self.i = after;
        Some(Item {
            key: Key::None,
            value: self.ident_value(is, ie)?,
        })
    }

    /// `"..."` (or `b"..."`, with `i` at the quote); the node starts at
    /// `start`.
    fn escaped_literal(&mut self, start: usize, style: Style) -> Option<usize> {
        let content_start = self.i + 1;
        let mut j = content_start;
        loop {
            j += self
                .b
                .get(j..)?
                .iter()
                .position(|&c| c == b'"' || c == b'\\')?;
            if self.b.get(j) == Some(&b'"') {
                break;
            }
            j = decode_escape(self.b, j, style)?.1;
        }
        self.i = j + 1;
        let lit = Lit {
            content_start,
            content_end: j,
            style,
        };
        Some(self.push(start, self.i, Kind::Str(lit)))
    }

    /// `r#"..."#` (or `br..`, with `i` at the `r`); the node starts at `start`.
    fn raw_literal(&mut self, start: usize) -> Option<usize> {
        let hashes = self
            .b
            .get(self.i + 1..)?
            .iter()
            .take_while(|&&c| c == b'#')
            .count();
        let quote = self.i + 1 + hashes;
        if self.b.get(quote) != Some(&b'"') {
            return None;
        }
        let content_start = quote + 1;
        let mut terminator = String::with_capacity(hashes + 1);
        terminator.push('"');
        terminator.extend(std::iter::repeat_n('#', hashes));
        let content_end = content_start + self.s.get(content_start..)?.find(&terminator)?;
        self.i = content_end + terminator.len();
        let lit = Lit {
            content_start,
            content_end,
            style: Style::Raw,
        };
        Some(self.push(start, self.i, Kind::Str(lit)))
    }

    /// `'c'` or (with `i` after the `b`) `b'c'`.
    fn char_literal(&mut self, start: usize, style: Style) -> Option<usize> {
        let content_start = self.i + 1;
        self.i = content_start;
        if self.peek()? == b'\\' {
            self.i = decode_escape(self.b, self.i, style)?.1;
        } else {
            let ch = self.peek_char()?;
            self.i += ch.len_utf8();
        }
        let content_end = self.i;
        self.expect(b'\'')?;
        let lit = Lit {
            content_start,
            content_end,
            style,
        };
        Some(self.push(start, self.i, Kind::Char(lit)))
    }

    /// A number, byte literal or range (`1..5`, `..=3`, `..`).
    fn number_or_range(&mut self) -> Option<usize> {
        let start = self.i;
        if self.rest().starts_with("..") {
            self.range_tail()?;
        } else {
            self.number()?;
            self.range_tail()?;
        }
        Some(self.push(start, self.i, Kind::Scalar))
    }

    /// After a number: `..`, `..=`, optionally followed by a number.
    fn range_tail(&mut self) -> Option<()> {
        if !self.rest().starts_with("..") {
            return Some(());
        }
        self.i += 2;
        if self.peek() == Some(b'=') {
            self.i += 1;
        }
        let more = match self.peek() {
            Some(b'0'..=b'9' | b'+' | b'-' | b'.') => true,
            Some(b'b') => self.peek_at(1) == Some(b'\''),
            Some(b'i' | b'N') => self.rest().starts_with("inf") || self.rest().starts_with("NaN"),
            _ => false,
        };
        if more { self.number() } else { Some(()) }
    }

    /// A number token: sign, digits / `inf` / `NaN`, base prefix, fraction,
    /// exponent, `_`, type suffix; or a byte literal `b'c'`.
    fn number(&mut self) -> Option<()> {
        if self.rest().starts_with("b'") {
            self.i += 1;
            let start = self.i - 1;
            self.char_literal(start, Style::Byte)?;
            // The node pushed for the literal is not needed: the caller makes
            // one for the whole number / range.
            self.nodes.pop();
            return Some(());
        }
        if matches!(self.peek(), Some(b'+' | b'-')) {
            self.i += 1;
        }
        match self.peek()? {
            b'i' | b'N' => {
                let (is, ie) = self.ident()?;
                let word = self.s.get(is..ie)?;
                let base = word
                    .strip_suffix("f32")
                    .or_else(|| word.strip_suffix("f64"))
                    .unwrap_or(word);
                return if base == "inf" || base == "NaN" {
                    Some(())
                } else {
                    None
                };
            }
            b'0'..=b'9' => {}
            b'.' if self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) => {}
            _ => return None,
        }
        let hex = self.rest().starts_with("0x");
        loop {
            match self.peek() {
                Some(c) if c.is_ascii_alphanumeric() || c == b'_' => self.i += 1,
                Some(b'.') if !hex && self.peek_at(1) != Some(b'.') => self.i += 1,
                Some(b'+' | b'-')
                    if !hex && matches!(self.b.get(self.i.wrapping_sub(1)), Some(b'e' | b'E')) =>
                {
                    self.i += 1;
                }
                _ => return Some(()),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The span tree

impl SpanTree {
    /// Parses `src` into a span tree; `None` if the text is not RON (or nests
    /// deeper than [`MAX_DEPTH`]). Linear in the length of `src`.
    #[must_use]
    pub fn parse(src: &str) -> Option<SpanTree> {
        let mut p = Parser::new(src);
        let root = p.document()?;
        let mut line_starts = vec![0];
        line_starts.extend(
            src.bytes()
                .enumerate()
                .filter(|&(_, c)| c == b'\n')
                .map(|(i, _)| i + 1),
        );
        Some(SpanTree {
            src: src.into(),
            line_starts,
            nodes: p.nodes,
            root,
        })
    }

    /// The source text the tree was parsed from.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.src
    }

    /// The [`Pos`] of a byte offset of the source (clamped to the text).
    #[must_use]
    pub fn pos(&self, byte: usize) -> Pos {
        let byte = floor_boundary(&self.src, byte);
        let line = self.line_starts.partition_point(|&ls| ls <= byte).max(1);
        let line_start = self.line_starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .src
            .get(line_start..byte)
            .map_or(0, |s| s.chars().count())
            + 1;
        Pos {
            line: to_u32(line),
            col: to_u32(col),
        }
    }

    /// The span of the byte range `start..end` of the source.
    #[must_use]
    pub fn span(&self, start: usize, end: usize) -> Span {
        Span {
            start: self.pos(start),
            end: self.pos(end),
            byte_start: start,
            byte_end: end,
        }
    }

    /// The span of the value at `path` (the whole document for an empty
    /// path). A value inside `Some(..)` that the path ends on is given with
    /// its `Some(..)`.
    #[must_use]
    pub fn locate(&self, path: &[PathSeg]) -> Option<Span> {
        let (node, _) = self.resolve(path)?;
        let n = self.nodes.get(node)?;
        Some(self.span(n.start, n.end))
    }

    /// The span of the field name (as written, `r#` included) or map key that
    /// selects the last segment of `path`; `None` for an empty path or a
    /// positional element.
    #[must_use]
    pub fn key_span(&self, path: &[PathSeg]) -> Option<Span> {
        let (_, key) = self.resolve(path)?;
        match key? {
            Key::None => None,
            Key::Field(s, e) => Some(self.span(s, e)),
            Key::Value(k) => {
                let n = self.nodes.get(k)?;
                Some(self.span(n.start, n.end))
            }
        }
    }

    /// For a string value at `path` (looking through `Some(..)` and newtype
    /// wrappers): the position in the file of character `char_idx` (0-based,
    /// in chars) of line `line_idx` (0-based; lines of the *decoded* string
    /// split at `'\n'`). Escapes (`\n`, `\"`, `\\`, `\u{..}`, `\x..`, line
    /// continuations) are accounted for; in a raw string the text is verbatim.
    /// `char_idx` may be one past the end of the line: the position of what
    /// ends it (the `\n` escape or newline, or the closing quote).
    /// Also works on char literals. `None` if there is no such string or
    /// character.
    #[must_use]
    pub fn string_pos(&self, path: &[PathSeg], line_idx: usize, char_idx: usize) -> Option<Pos> {
        let lit = self.string_lit(path)?;
        let (mut line, mut col) = (0, 0);
        for (at, ch) in self.units(lit) {
            if line == line_idx && col == char_idx {
                return Some(self.pos(at));
            }
            if ch == '\n' {
                if line == line_idx {
                    return None;
                }
                line += 1;
                col = 0;
            } else {
                col += 1;
            }
        }
        (line == line_idx && col == char_idx).then(|| self.pos(lit.content_end))
    }

    /// The lines of the string value at `path` (as [`SpanTree::string_pos`]
    /// finds it), located once so that positions in many lines cost what
    /// each line costs, not what the lines before it cost: a scenario's
    /// setup script of a million lines is located in one pass.
    #[must_use]
    pub fn string_lines(&self, path: &[PathSeg]) -> Option<StringLines<'_>> {
        let lit = self.string_lit(path)?;
        let mut starts = vec![lit.content_start];
        let mut units = self.units(lit);
        while let Some((_, ch)) = units.next() {
            if ch == '\n' {
                starts.push(units.i);
            }
        }
        Some(StringLines {
            tree: self,
            lit,
            starts,
        })
    }

    /// The literal of the string (or char) value at `path`, looking through
    /// `Some(..)` and newtype wrappers.
    fn string_lit(&self, path: &[PathSeg]) -> Option<Lit> {
        let (mut node, _) = self.resolve(path)?;
        loop {
            match &self.nodes.get(node)?.kind {
                Kind::Str(lit) | Kind::Char(lit) => return Some(*lit),
                Kind::Seq {
                    bracket: Bracket::Paren | Bracket::Some,
                    items,
                } => match items.as_slice() {
                    [
                        Item {
                            key: Key::None,
                            value,
                        },
                    ] => node = *value,
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    fn units(&self, lit: Lit) -> Units<'_> {
        Units {
            src: &self.src,
            i: lit.content_start,
            end: lit.content_end,
            style: lit.style,
        }
    }

    /// The node at `path` and the key that selected it.
    fn resolve(&self, path: &[PathSeg]) -> Option<(usize, Option<Key>)> {
        let mut node = self.root;
        let mut key = None;
        for seg in path {
            let (n, k) = self.step(node, *seg)?;
            node = n;
            key = Some(k);
        }
        Some((node, key))
    }

    /// `Some(x)` → `x`.
    fn unwrap_some(&self, mut node: usize) -> usize {
        // Each step goes to a node created earlier, so this terminates; the
        // bound is only belt and braces.
        for _ in 0..=MAX_DEPTH {
            match self.nodes.get(node).map(|n| &n.kind) {
                Some(Kind::Seq {
                    bracket: Bracket::Some,
                    items,
                }) => match items.as_slice() {
                    [
                        Item {
                            key: Key::None,
                            value,
                        },
                    ] => node = *value,
                    _ => return node,
                },
                _ => return node,
            }
        }
        node
    }

    fn step(&self, node: usize, seg: PathSeg) -> Option<(usize, Key)> {
        let mut node = self.unwrap_some(node);
        for _ in 0..=MAX_DEPTH {
            let Kind::Seq { bracket, items } = &self.nodes.get(node)?.kind else {
                return None;
            };
            let name = match seg {
                PathSeg::Index(i) => return items.get(i).map(|it| (it.value, it.key)),
                PathSeg::Field(name) | PathSeg::Key(name) => name,
            };
            if let Some(it) = items.iter().rev().find(|it| self.key_matches(it.key, name)) {
                return Some((it.value, it.key));
            }
            // A newtype (variant) around a struct is transparent to fields.
            match (seg, bracket, items.as_slice()) {
                (
                    PathSeg::Field(_),
                    Bracket::Paren,
                    [
                        Item {
                            key: Key::None,
                            value,
                        },
                    ],
                ) => {
                    node = self.unwrap_some(*value);
                }
                _ => return None,
            }
        }
        None
    }

    fn key_matches(&self, key: Key, name: &str) -> bool {
        match key {
            Key::None => false,
            Key::Field(s, e) => {
                let ident = self.src.get(s..e).unwrap_or("");
                ident.strip_prefix("r#").unwrap_or(ident) == name
            }
            Key::Value(k) => match self.nodes.get(k) {
                Some(Node {
                    kind: Kind::Str(lit) | Kind::Char(lit),
                    ..
                }) => self.units(*lit).map(|(_, c)| c).eq(name.chars()),
                Some(Node {
                    kind: Kind::Scalar,
                    start,
                    end,
                }) => self.src.get(*start..*end) == Some(name),
                _ => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde::de::DeserializeOwned;

    // -- helpers -------------------------------------------------------------

    fn p(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }

    /// Position of the `nth` (0-based) occurrence of `needle`.
    fn at_nth(src: &str, needle: &str, nth: usize) -> Pos {
        let (byte, _) = src
            .match_indices(needle)
            .nth(nth)
            .expect("needle in source");
        pos_at(src, byte)
    }

    fn at(src: &str, needle: &str) -> Pos {
        assert_eq!(
            src.matches(needle).count(),
            1,
            "needle {needle:?} must be unique"
        );
        at_nth(src, needle, 0)
    }

    fn ron_err<T: DeserializeOwned + std::fmt::Debug>(src: &str) -> (ron::error::Error, Pos) {
        let err = ron::from_str::<T>(src).expect_err("the source must not deserialize");
        let pos = ron_error_pos(src, &err);
        (err.code, pos)
    }

    fn tree(src: &str) -> SpanTree {
        SpanTree::parse(src).unwrap_or_else(|| panic!("not parsed: {src}"))
    }

    fn text(src: &str, span: Span) -> &str {
        &src[span.byte_start..span.byte_end]
    }

    use PathSeg::{Field as F, Index as I, Key as K};

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Host {
        name: String,
        cmds: Vec<String>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    enum Step {
        Ping { to: String },
        Wait(u32),
        Stop,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Scen {
        seed: u64,
        hosts: Vec<Host>,
        #[serde(default)]
        steps: Vec<Step>,
        #[serde(default)]
        small: u8,
        #[serde(default)]
        ip: Option<std::net::Ipv4Addr>,
        #[serde(default)]
        c: Option<char>,
    }

    // -- pos_at --------------------------------------------------------------

    #[test]
    fn pos_at_counts_chars_and_lines() {
        let src = "ab\nµs中x\r\n\nz";
        assert_eq!(pos_at(src, 0), p(1, 1));
        assert_eq!(pos_at(src, 2), p(1, 3)); // the '\n'
        assert_eq!(pos_at(src, 3), p(2, 1)); // 'µ'
        assert_eq!(pos_at(src, 5), p(2, 2)); // 's' (µ is 2 bytes)
        assert_eq!(pos_at(src, 6), p(2, 3)); // '中'
        assert_eq!(pos_at(src, 9), p(2, 4)); // 'x' (中 is 3 bytes)
        assert_eq!(pos_at(src, 10), p(2, 5)); // '\r' is a char of line 2
        assert_eq!(pos_at(src, 12), p(3, 1));
        assert_eq!(pos_at(src, 13), p(4, 1));
        assert_eq!(pos_at(src, src.len()), p(4, 2));
        // Clamped, and moved back to a char boundary.
        assert_eq!(pos_at(src, 1000), p(4, 2));
        assert_eq!(pos_at(src, 7), p(2, 3));
        assert_eq!(pos_at("", 0), p(1, 1));
        assert_eq!(p(3, 14).to_string(), "3:14");
    }

    #[test]
    fn byte_of_line_col_inverts_pos_at() {
        let src = "ab\nµs中x\r\n\nz";
        for byte in (0..=src.len()).filter(|&b| src.is_char_boundary(b)) {
            let pos = pos_at(src, byte);
            assert_eq!(
                byte_of_line_col(src, pos.line as usize, pos.col as usize),
                byte
            );
        }
        assert_eq!(byte_of_line_col(src, 1, 99), 2);
        assert_eq!(byte_of_line_col(src, 99, 1), src.len());
    }

    /// `string_lines` (one pass) finds what `string_pos` (a scan from the
    /// string's start) finds, at every character of every line, in escaped
    /// and raw strings, with escapes, line continuations and non-ASCII text.
    #[test]
    fn string_lines_agree_with_string_pos() {
        let src =
            "(a: \"x\\ny µs\\n\\tz\\\n  w\\n\", b: r#\"\nip a\n  é b\n\"#, c: Some(\"q\\nr\"))";
        let tree = tree(src);
        for f in ["a", "b", "c"] {
            let path = [PathSeg::Field(f)];
            let sl = tree.string_lines(&path).unwrap();
            for line in 0..sl.len() + 1 {
                for col in 0..12 {
                    assert_eq!(
                        sl.pos(line, col),
                        tree.string_pos(&path, line, col),
                        "{f} line {line} col {col}"
                    );
                }
            }
        }
        assert!(tree.string_lines(&[PathSeg::Field("zz")]).is_none());
    }

    #[test]
    fn tree_pos_agrees_with_pos_at() {
        let src = "// 中文注释 µs\n(a: \"é\",\r\n b: [1, 2])\n";
        let t = tree(src);
        for byte in 0..=src.len() + 2 {
            assert_eq!(t.pos(byte), pos_at(src, byte), "byte {byte}");
        }
    }

    // -- what ron reports ----------------------------------------------------

    #[test]
    fn ron_spans_are_one_based_char_columns_of_its_cursor() {
        // Unknown field: start = the name (in chars: µ is 2 bytes), end = after it.
        let e = ron::from_str::<Scen>("Scen(seed: 1, hosts: [], µµµbogus: 3)").unwrap_err();
        assert_eq!((e.span.start.line, e.span.start.col), (1, 26));
        assert_eq!((e.span.end.line, e.span.end.col), (1, 34));
        // Wrong type: start = the whitespace before the value, end = the value.
        let e = ron::from_str::<Scen>("(seed: \"x\", hosts: [])").unwrap_err();
        assert_eq!((e.span.start.col, e.span.end.col), (7, 8));
        // Out-of-bounds integer: start = after the sign.
        let e = ron::from_str::<Scen>("(seed: -1, hosts: [])").unwrap_err();
        assert_eq!((e.span.start.col, e.span.end.col), (9, 10));
        // Lines count '\n'; a previous line of multibyte text does not matter.
        let e = ron::from_str::<Scen>("// 中文\n(seed: 1, hosts: [], bögus: 3)").unwrap_err();
        assert_eq!((e.span.start.line, e.span.start.col), (2, 22));
    }

    // -- ron_error_pos -------------------------------------------------------

    #[test]
    fn unknown_field_points_at_its_name() {
        let src = "Scen(seed: 1, hosts: [], µµµbogus: 3)";
        let (code, pos) = ron_err::<Scen>(src);
        assert!(matches!(code, ron::error::Error::NoSuchStructField { .. }));
        assert_eq!(pos, p(1, 26));
        assert_eq!(pos, at(src, "µµµbogus"));

        let src = "// 场景 µs\n(\n  seed: 1, /* 注释 */ hosts: [\n    Host(name: \"é\", cmds: [], µ: 1),\n  ],\n)";
        let (_, pos) = ron_err::<Scen>(src);
        assert_eq!(pos, p(4, 31));
        assert_eq!(pos, at(src, "µ: 1"));

        let src = "(seed: 1, /* c */ bogus: [])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "bogus"));
    }

    #[test]
    fn wrong_type_points_at_the_value_not_the_space_before() {
        let src = "(seed: \"x\", hosts: [])";
        let (code, pos) = ron_err::<Scen>(src);
        assert_eq!(code, ron::error::Error::ExpectedInteger);
        assert_eq!(pos, p(1, 8));

        let src = "(seed: /* 种子 */\n   \"x\", hosts: [])";
        assert_eq!(ron_err::<Scen>(src).1, p(2, 4));

        let src = "(seed: 1, hosts: {})";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "{"));

        let src = "(seed: 1, hosts: [Host(name: 5, cmds: [])])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "5"));

        let src = "(seed: 1, hosts: [], c: Some(\"ab\"))";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "\"ab\""));

        let src = "(seed: 1, hosts: [], steps: [Wait(\"a\")])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "\"a\""));

        let src = "(seed: 1, hosts: [], steps: [Ping(to: 3)])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "3"));

        let src = "(seed: _1, hosts: [])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "_1"));
    }

    #[test]
    fn missing_comma_points_at_the_token_found() {
        let src = "(seed: 1 hosts: [])";
        let (code, pos) = ron_err::<Scen>(src);
        assert_eq!(code, ron::error::Error::ExpectedComma);
        assert_eq!(pos, at(src, "hosts"));

        let src = "(seed: 1 /* c */ hosts: [])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "hosts"));

        let src = "(seed: 1, hosts: [Host(name: \"µ\", cmds: [\"a\" \"b\"])])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "\"b\""));

        let src = "(\n  seed: 1\n  hosts: [],\n)";
        assert_eq!(ron_err::<Scen>(src).1, p(3, 3));
    }

    #[test]
    fn unterminated_string_points_at_its_opening_quote() {
        let src = "(seed: 1, hosts: [Host(name: \"a, cmds: [])])";
        let (code, pos) = ron_err::<Scen>(src);
        assert_eq!(code, ron::error::Error::ExpectedStringEnd);
        assert_eq!(pos, at(src, "\"a"));

        let src = "(seed: 1, hosts: [Host(name: \"中文\", cmds: [r#\"ip route\"])])";
        let (code, pos) = ron_err::<Scen>(src);
        assert_eq!(code, ron::error::Error::ExpectedStringEnd);
        assert_eq!(pos, at(src, "r#"));
    }

    #[test]
    fn multibyte_characters_before_the_error_count_as_one_column() {
        let src = "(seed: 1, hosts: [Host(name: \"µs 中文\", cmds: [\"ü\", 7])])";
        let (code, pos) = ron_err::<Scen>(src);
        assert_eq!(code, ron::error::Error::ExpectedString);
        assert_eq!(pos, p(1, 51));
        assert_eq!(pos, at(src, "7"));

        let src = "  (seed: 1,\n   hosts: [\n     Host(name: \"é\", cmds: [\"ü\", 7])])";
        assert_eq!(ron_err::<Scen>(src).1, p(3, 34));
    }

    #[test]
    fn missing_field_points_at_the_closing_paren() {
        let src = "(seed: 1, hosts: [Host(name: \"a\")])";
        let (code, pos) = ron_err::<Scen>(src);
        assert!(matches!(
            code,
            ron::error::Error::MissingStructField { field: "cmds", .. }
        ));
        assert_eq!(pos, at(src, ")]"));

        let src = "(seed: 1)\n";
        assert_eq!(ron_err::<Scen>(src).1, p(1, 9));
    }

    #[test]
    fn variants_and_struct_names_point_at_the_name() {
        let src = "(seed: 1, hosts: [], steps: [Pong(to: \"x\")])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "Pong"));

        let src = "(seed: 1, hosts: [], steps: [Ping(too: \"a\")])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "too"));

        let src = "(seed: 1, hosts: [Hast(name: \"x\", cmds: [])])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "Hast"));

        let src = "(seed: 1, hosts: [], steps: [Ping(to: \"a\", to: \"b\")])";
        assert_eq!(ron_err::<Scen>(src).1, at_nth(src, "to", 1));

        let src = "(seed: 1, hosts: [], steps: [Wait])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "])"));
    }

    #[test]
    fn end_of_file_points_after_the_last_character() {
        let src = "(seed: 1, hosts: [],";
        let (code, pos) = ron_err::<Scen>(src);
        assert_eq!(code, ron::error::Error::Eof);
        assert_eq!(pos, p(1, 21));

        let src = "(seed: 1, hosts: [], // x";
        assert_eq!(ron_err::<Scen>(src).1, p(1, 26));

        // ron points at the empty line after the text; we point after the `[`.
        let src = "(seed: 1,\n hosts: [\n\n  \n";
        let err = ron::from_str::<Scen>(src).unwrap_err();
        assert_eq!(err.span.end.line, 5);
        assert_eq!(ron_error_pos(src, &err), p(2, 10));
    }

    #[test]
    fn unclosed_block_comment_points_at_its_opening() {
        let src = "(seed: 1, hosts: [], /* a /* b */ c";
        let (code, pos) = ron_err::<Scen>(src);
        assert_eq!(code, ron::error::Error::UnclosedBlockComment);
        assert_eq!(pos, at(src, "/* a"));

        let src = "(seed: 1, /* 一 */ hosts: [\n /* 二 /* 三 */\n */ /* 四\n ]";
        assert_eq!(ron_err::<Scen>(src).1, p(3, 5));
    }

    #[test]
    fn invalid_escape_points_at_the_backslash() {
        let src = "(seed: 1, hosts: [Host(name: \"µ\", cmds: [\"a\\q\"])])";
        let (code, pos) = ron_err::<Scen>(src);
        assert!(matches!(code, ron::error::Error::InvalidEscape(_)));
        assert_eq!(pos, at(src, "\\q"));

        let src = "(seed: 1, hosts: [Host(name: \"x\", cmds: [\"a\\u{zz}\"])])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "\\u"));

        let src = "(seed: 1, hosts: [Host(name: \"x\", cmds: [\"a\\u{D800}\"])])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "\\u"));

        let src = "(seed: 1, hosts: [Host(name: \"x\", cmds: [\"a\\\\\\xff\\x41\"])])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "\\xff"));

        let src = "(seed: 1, hosts: [], c: Some('\\q'))";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "\\q"));
    }

    #[test]
    fn integer_errors_point_at_the_literal_or_digit() {
        let src = "(seed: -1, hosts: [])";
        assert_eq!(
            ron_err::<Scen>(src),
            (ron::error::Error::IntegerOutOfBounds, at(src, "-1"))
        );

        let src = "(seed: 1, hosts: [], small: 0x1FF)";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "0x1FF"));

        let src = "(seed: 1, hosts: [], small: -0x1)";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "-0x1"));

        let src = "(seed: 1, hosts: [], small: 1_000)";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "1_000"));

        let src = "(seed: 99999999999999999999999, hosts: [])";
        assert_eq!(ron_err::<Scen>(src).1, at_nth(src, "9", 0));

        let src = "(seed: 0b102, hosts: [])";
        let (code, pos) = ron_err::<Scen>(src);
        assert!(matches!(
            code,
            ron::error::Error::InvalidIntegerDigit {
                digit: '2',
                base: 2
            }
        ));
        assert_eq!(pos, at(src, "2"));
    }

    #[test]
    fn other_ron_errors() {
        let src = "(seed: 1, hosts: []) x";
        assert_eq!(
            ron_err::<Scen>(src),
            (ron::error::Error::TrailingCharacters, at(src, "x"))
        );

        let src = "(seed: 1, hosts: [], ip: Some(  /* c */  \"1.2.3.x\"  ))";
        let (code, pos) = ron_err::<Scen>(src);
        assert!(matches!(code, ron::error::Error::Message(_)));
        assert_eq!(pos, at(src, "\"1.2"));

        let src = "(seed: 1, hosts: [], steps: [Ping(to: \"a\" / )])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "/"));

        let src = "#![enable(nope)]\n(seed: 1, hosts: [])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "nope"));

        let src = "(seed: 1, hosts: [], c: Some('ab'))";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "'ab'"));

        let src = "(seed: 1, hosts: [], steps: [Wait(1, 2)])";
        assert_eq!(ron_err::<Scen>(src).1, at(src, "2)")); // the extra element

        let src = "";
        assert_eq!(ron_err::<Scen>(src).1, p(1, 1));
    }

    #[derive(Deserialize, Debug)]
    #[serde(try_from = "i64")]
    struct Positive(#[allow(dead_code)] i64);

    impl TryFrom<i64> for Positive {
        type Error = String;
        fn try_from(v: i64) -> Result<Self, String> {
            if v > 0 {
                Ok(Positive(v))
            } else {
                Err(format!("must be positive, got {v}"))
            }
        }
    }

    #[derive(Deserialize, Debug)]
    #[serde(try_from = "String")]
    struct Word(#[allow(dead_code)] String);

    impl TryFrom<String> for Word {
        type Error = &'static str;
        fn try_from(v: String) -> Result<Self, &'static str> {
            if v.contains(' ') {
                Err("no spaces allowed")
            } else {
                Ok(Word(v))
            }
        }
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Custom {
        #[serde(default)]
        p: Vec<Positive>,
        #[serde(default)]
        w: Vec<Word>,
    }

    #[test]
    fn errors_of_a_values_own_deserialize_point_at_the_literal() {
        // ron points after the opening quote / sign / prefix; we at the literal.
        for (src, needle) in [
            ("(p: [1, -5])", "-5"),
            ("(p: [1, 0x0])", "0x0"),
            ("(p: [1, /* 零 */ -0b0])", "-0b0"),
            ("(w: [\"ok\", \"a b\"])", "\"a b\""),
            ("(w: [\"µ\", r#\"a \"b\"\"#])", "r#"),
            ("(w: [\"中\", \"a\\\n      b c\"])", "\"a"),
            ("(w: [b\"x y\"])", "b\""),
        ] {
            let err = ron::from_str::<Custom>(src).expect_err(src);
            assert_eq!(ron_error_pos(src, &err), at(src, needle), "{src} {err:?}");
        }
        // Also when the rest of the text is not RON.
        let src = "(w: [\"ok\", \"a b\", ]]]] /* unclosed";
        let err = ron::from_str::<Custom>(src).unwrap_err();
        assert_eq!(ron_error_pos(src, &err), at(src, "\"a b"));
    }

    #[test]
    fn crlf_files() {
        let src = "(\r\n  seed: 1,\r\n  hosts: [],\r\n  bad: 1\r\n)\r\n";
        assert_eq!(ron_err::<Scen>(src).1, p(4, 3));
        let src = "(\r\n  seed: \"1\",\r\n  hosts: [],\r\n)\r\n";
        assert_eq!(ron_err::<Scen>(src).1, p(2, 9));
    }

    // -- SpanTree: locate / key_span -----------------------------------------

    const SCENARIO: &str = r####"#![enable(implicit_some)]
// 场景：两个主机 — latency in µs
Scenario(
    seed: 42,
    name: "demo µs",
    hosts: [
        /* 第一台 */ Host(name: "a", cmds: ["ip link set lo up"]),
        Host(
            name: "b", // 注释
            cmds: [
                "ip addr add 10.0.0.2/24 dev eth0",
                r#"ip route add "default" via 10.0.0.1"#,
            ],
        ),
    ],
    steps: [
        Ping(to: "b"),
        Wait(1_000),
        Stop,
        Run(Script(body: "a\nb")),
    ],
    opt: Some((1, [2, 3])),
    limits: { "cpu": 2, "内存": Some(Lim(max: 0x10)), 80: "http", 'c': 1.5e-3 },
    r#type: Unit,
    empty: (),
    range: 1..=5,
)
"####;

    #[test]
    fn locate_nested_paths() {
        let t = tree(SCENARIO);
        let loc = |path: &[PathSeg]| t.locate(path).unwrap_or_else(|| panic!("{path:?}"));

        let s = loc(&[F("seed")]);
        assert_eq!(text(SCENARIO, s), "42");
        assert_eq!(s.start, p(4, 11));
        assert_eq!(s.end, p(4, 13));

        let s = loc(&[F("hosts"), I(0)]);
        assert_eq!(
            text(SCENARIO, s),
            "Host(name: \"a\", cmds: [\"ip link set lo up\"])"
        );
        assert_eq!(s.start, p(7, 19));

        let s = loc(&[F("hosts"), I(1), F("cmds"), I(1)]);
        assert_eq!(
            text(SCENARIO, s),
            "r#\"ip route add \"default\" via 10.0.0.1\"#"
        );
        assert_eq!(s.start, p(12, 17));
        assert_eq!(s.end, p(12, 57));

        let s = loc(&[F("hosts"), I(1), F("name")]);
        assert_eq!(s.start, p(9, 19));

        assert_eq!(text(SCENARIO, loc(&[F("steps"), I(0), F("to")])), "\"b\"");
        assert_eq!(text(SCENARIO, loc(&[F("steps"), I(1), I(0)])), "1_000");
        assert_eq!(text(SCENARIO, loc(&[F("steps"), I(2)])), "Stop");
        assert_eq!(text(SCENARIO, loc(&[F("opt")])), "Some((1, [2, 3]))");
        assert_eq!(text(SCENARIO, loc(&[F("opt"), I(1), I(1)])), "3");
        assert_eq!(text(SCENARIO, loc(&[F("limits"), K("cpu")])), "2");
        assert_eq!(
            text(SCENARIO, loc(&[F("limits"), K("内存"), F("max")])),
            "0x10"
        );
        assert_eq!(text(SCENARIO, loc(&[F("limits"), K("80")])), "\"http\"");
        assert_eq!(text(SCENARIO, loc(&[F("limits"), K("c")])), "1.5e-3");
        assert_eq!(
            text(SCENARIO, loc(&[F("limits"), I(1)])),
            "Some(Lim(max: 0x10))"
        );
        assert_eq!(text(SCENARIO, loc(&[F("type")])), "Unit");
        assert_eq!(text(SCENARIO, loc(&[F("empty")])), "()");
        assert_eq!(text(SCENARIO, loc(&[F("range")])), "1..=5");
        // Newtype variants are transparent to fields.
        assert_eq!(
            text(SCENARIO, loc(&[F("steps"), I(3), F("body")])),
            "\"a\\nb\""
        );
        assert_eq!(
            text(SCENARIO, loc(&[F("steps"), I(3), I(0)])),
            "Script(body: \"a\\nb\")"
        );

        let root = loc(&[]);
        assert_eq!(root.start, p(3, 1));
        assert_eq!(text(SCENARIO, root).chars().last(), Some(')'));

        for missing in [
            &[F("nope")][..],
            &[F("hosts"), I(2)],
            &[F("seed"), I(0)],
            &[F("hosts"), F("name")],
            &[F("limits"), K("gpu")],
            &[F("steps"), I(2), F("x")],
            &[F("steps"), I(1), F("x")],
        ] {
            assert_eq!(t.locate(missing), None, "{missing:?}");
        }
    }

    #[test]
    fn key_spans() {
        let t = tree(SCENARIO);
        let key = |path: &[PathSeg]| t.key_span(path).map(|s| text(SCENARIO, s));
        assert_eq!(key(&[F("seed")]), Some("seed"));
        assert_eq!(key(&[F("type")]), Some("r#type"));
        assert_eq!(key(&[F("hosts"), I(1), F("name")]), Some("name"));
        assert_eq!(
            t.key_span(&[F("hosts"), I(1), F("name")]).map(|s| s.start),
            Some(p(9, 13))
        );
        assert_eq!(key(&[F("limits"), K("内存")]), Some("\"内存\""));
        assert_eq!(key(&[F("limits"), K("c")]), Some("'c'"));
        assert_eq!(key(&[F("limits"), I(2)]), Some("80"));
        assert_eq!(key(&[F("steps"), I(3), F("body")]), Some("body"));
        assert_eq!(key(&[F("hosts"), I(0)]), None);
        assert_eq!(key(&[]), None);
        assert_eq!(key(&[F("nope")]), None);
    }

    #[test]
    fn comments_between_items_and_trailing_commas() {
        let src =
            "( /* a */ x /* b */ : /* c */ [ 1 /* d */ , // e\n 2 , ] , // f\n y: ( 3 , ) , )";
        let t = tree(src);
        assert_eq!(text(src, t.locate(&[F("x"), I(1)]).unwrap()), "2");
        assert_eq!(t.locate(&[F("x"), I(1)]).unwrap().start, p(2, 2));
        assert_eq!(text(src, t.locate(&[F("y"), I(0)]).unwrap()), "3");
        assert_eq!(text(src, t.key_span(&[F("x")]).unwrap()), "x");
        assert_eq!(t.locate(&[F("x"), I(2)]), None);
    }

    #[test]
    fn some_is_transparent() {
        let src = "(a: Some(Some((x: Some([7, 8])))), b: Some(x: 1), c: Some(\"s\"))";
        let t = tree(src);
        assert_eq!(
            text(src, t.locate(&[F("a")]).unwrap()),
            "Some(Some((x: Some([7, 8]))))"
        );
        assert_eq!(
            text(src, t.locate(&[F("a"), F("x")]).unwrap()),
            "Some([7, 8])"
        );
        assert_eq!(text(src, t.locate(&[F("a"), F("x"), I(1)]).unwrap()), "8");
        assert_eq!(text(src, t.locate(&[F("b"), F("x")]).unwrap()), "1");
        assert_eq!(t.string_pos(&[F("c")], 0, 0), Some(at(src, "s\"")));
    }

    #[test]
    fn newtypes_are_transparent_to_fields_only() {
        let src = "[Run(Script(body: \"x\")), Wrap((a: 1)), Tup(1, 2), Wrap(Some(Inner(k: 2)))]";
        let t = tree(src);
        assert_eq!(text(src, t.locate(&[I(0), F("body")]).unwrap()), "\"x\"");
        assert_eq!(
            text(src, t.locate(&[I(0), I(0), F("body")]).unwrap()),
            "\"x\""
        );
        assert_eq!(text(src, t.locate(&[I(1), F("a")]).unwrap()), "1");
        assert_eq!(text(src, t.locate(&[I(3), F("k")]).unwrap()), "2");
        assert_eq!(t.locate(&[I(2), F("a")]), None);
        assert_eq!(text(src, t.locate(&[I(2), I(1)]).unwrap()), "2");
        assert_eq!(t.string_pos(&[I(0)], 0, 0), None);
        assert_eq!(t.string_pos(&[I(0), I(0)], 0, 0), None);
        assert_eq!(t.string_pos(&[I(0), F("body")], 0, 0), Some(at(src, "x\"")));
    }

    #[test]
    fn maps_with_all_kinds_of_keys() {
        let src = r#"{ "a\"b": 1, r"raw\n": 2, "\u{e9}t\u{e9}": 3, -5: 4, true: 5, 'x': 6, Foo: 7, (1, 2): 8, "a\"b": 9 }"#;
        let t = tree(src);
        let get = |k: &str| t.locate(&[K(k)]).map(|s| text(src, s));
        assert_eq!(get("a\"b"), Some("9")); // the last one wins
        assert_eq!(get("raw\\n"), Some("2"));
        assert_eq!(get("été"), Some("3"));
        assert_eq!(get("-5"), Some("4"));
        assert_eq!(get("true"), Some("5"));
        assert_eq!(get("x"), Some("6"));
        assert_eq!(get("Foo"), Some("7"));
        assert_eq!(get("a\\\"b"), None);
        assert_eq!(text(src, t.locate(&[I(7)]).unwrap()), "8");
        assert_eq!(text(src, t.key_span(&[I(7)]).unwrap()), "(1, 2)");
        // Field also matches map keys, Key also matches field names.
        assert_eq!(get("Foo"), t.locate(&[F("Foo")]).map(|s| text(src, s)));
        let src2 = "(a: 1)";
        assert_eq!(
            tree(src2).locate(&[K("a")]).map(|s| text(src2, s)),
            Some("1")
        );
    }

    #[test]
    fn all_value_forms_parse() {
        let src = r###"#![enable(implicit_some, unwrap_newtypes)]
        #![type = "scen ] ario"]
        (
            ints: [0, -1, +7, 1_000, 0x1F_ff, 0b1010, 0o17, 1u8, -3_i64, 0xFFu16],
            floats: [1.5, -2.5e-3, 1e10, 1E+3, .5, 1., inf, -inf, +NaN, NaN, 2.0f32, inff64, 1_000.000_1],
            ranges: [1..5, 1..=5, ..3, ..=3, .., 0.5..1.5, -1..-2, b'a'..b'z', 1.., ..inf],
            chars: ['a', '中', '\'', '\\', '\n', '\u{1F600}', '\x41', ''', '"'],
            bytes: [b'a', b'\x00', b"by\xfftes", br#"raw "bytes""#],
            strings: ["", "\"", r"", r#""#, r##"a "# b"##, "multi
line", "cont\
               inued"],
            units: [(), Unit, None, true, false],
            struct: Name(a: 1), tuple: (1, "two", [3]), named_tuple: Pair(1, 2),
            nested: [[[[[]]]]], map: {}, r#raw-ident.x: 1, ünïcode_名: 2,
        )
        "###;
        let t = tree(src);
        assert_eq!(text(src, t.locate(&[F("ints"), I(4)]).unwrap()), "0x1F_ff");
        assert_eq!(text(src, t.locate(&[F("ints"), I(9)]).unwrap()), "0xFFu16");
        assert_eq!(
            text(src, t.locate(&[F("floats"), I(1)]).unwrap()),
            "-2.5e-3"
        );
        assert_eq!(text(src, t.locate(&[F("floats"), I(5)]).unwrap()), "1.");
        assert_eq!(text(src, t.locate(&[F("ranges"), I(6)]).unwrap()), "-1..-2");
        assert_eq!(
            text(src, t.locate(&[F("ranges"), I(7)]).unwrap()),
            "b'a'..b'z'"
        );
        assert_eq!(text(src, t.locate(&[F("ranges"), I(9)]).unwrap()), "..inf");
        assert_eq!(text(src, t.locate(&[F("chars"), I(7)]).unwrap()), "'''");
        assert_eq!(
            text(src, t.locate(&[F("bytes"), I(3)]).unwrap()),
            "br#\"raw \"bytes\"\"#"
        );
        assert_eq!(
            text(src, t.locate(&[F("strings"), I(4)]).unwrap()),
            "r##\"a \"# b\"##"
        );
        assert_eq!(text(src, t.locate(&[F("units"), I(2)]).unwrap()), "None");
        assert_eq!(text(src, t.locate(&[F("raw-ident.x")]).unwrap()), "1");
        assert_eq!(text(src, t.locate(&[F("ünïcode_名")]).unwrap()), "2");
        assert_eq!(text(src, t.locate(&[F("named_tuple"), I(1)]).unwrap()), "2");
        assert_eq!(
            text(src, t.locate(&[F("nested"), I(0), I(0), I(0)]).unwrap()),
            "[[]]"
        );
        // Everything here is RON as far as ron itself is concerned too.
        ron::from_str::<ron::Value>(src).expect("valid RON");
    }

    #[test]
    fn a_bare_value_document() {
        for (src, want) in [
            ("5", "5"),
            (" \"x\" ", "\"x\""),
            ("Unit // c", "Unit"),
            ("[]", "[]"),
        ] {
            assert_eq!(text(src, tree(src).locate(&[]).unwrap()), want);
        }
    }

    #[test]
    fn not_ron_gives_none() {
        for src in [
            "",
            "   ",
            "// only a comment",
            "(a: 1",
            "(a: 1))",
            "(a 1)",
            "(a: 1 b: 2)",
            "[1 2]",
            "{\"a\" 1}",
            "{\"a\": }",
            "\"unterminated",
            "\"bad \\q escape\"",
            "\"bad \\u{110000}\"",
            "\"bad \\u{}\"",
            "\"\\xff\"",
            "r#\"unterminated\"",
            "r#x\"",
            "'ab'",
            "'\\xff'",
            "(a: 1) /* unclosed",
            "(a: /* /* */ 1)",
            "(a: @)",
            "(a: 1) x",
            "#![enable(x)",
            "# (a: 1)",
            "(a: -)",
            "(a: .x)",
            "(a: 1, /)",
            "Foo(",
            "Some(1",
            "r#",
        ] {
            assert!(SpanTree::parse(src).is_none(), "{src:?} parsed");
        }
    }

    #[test]
    fn nesting_is_capped() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(SpanTree::parse(&ok).is_some());
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(SpanTree::parse(&too_deep).is_none());
        let mixed = "Some((a: {1: [".repeat(40) + &"]})))".repeat(40);
        assert!(SpanTree::parse(&mixed).is_none());
        // No stack overflow on absurd nesting, open or closed.
        assert!(SpanTree::parse(&"[".repeat(1_000_000)).is_none());
        assert!(SpanTree::parse(&"Some(".repeat(1_000_000)).is_none());
        assert!(SpanTree::parse(&"(a:".repeat(1_000_000)).is_none());
    }

    #[test]
    fn large_documents() {
        // ~4 MB; must parse in linear time (a quadratic parser would not
        // finish this test).
        let mut src = String::from("(hosts: [\n");
        for i in 0..20_000 {
            src.push_str(&format!(
                "  Host(name: \"h{i}\", // 注释 µs\n    cmds: [\"ip link set eth{i} up\", r#\"echo \"{i}\"\"#, \"a\\nb\\u{{e9}}\"],\n    /* block {i} */ opt: Some({i}), map: {{ \"k\": [{i}, {i}.5] }}),\n"
            ));
        }
        src.push_str("])\n");
        let t = tree(&src);
        let s = t.locate(&[F("hosts"), I(19_999), F("cmds"), I(1)]).unwrap();
        assert_eq!(text(&src, s), "r#\"echo \"19999\"\"#");
        assert_eq!(s.start.line, 2 + 19_999 * 3 + 1);
        assert_eq!(
            t.string_pos(&[F("hosts"), I(19_999), F("cmds"), I(2)], 1, 1),
            Some(p(60_000, 63))
        );

        // Pathological shapes stay linear too.
        let escapes = format!("\"{}\"", "\\n\\u{e9}\\\"".repeat(200_000));
        assert!(SpanTree::parse(&escapes).is_some());
        let comment = format!("/*{}*/ 1", "* / *".repeat(400_000));
        assert!(SpanTree::parse(&comment).is_some());
        let hashes = format!("r{}\"x\"{}", "#".repeat(100_000), "#".repeat(100_000));
        assert!(SpanTree::parse(&hashes).is_some());
        let unclosed_hashes = format!("[r{}\"{}", "#".repeat(100_000), "\"#".repeat(100_000));
        assert!(SpanTree::parse(&unclosed_hashes).is_none());
        let idents = format!("[{}]", "Abc, ".repeat(400_000));
        assert!(SpanTree::parse(&idents).is_some());
    }

    // -- SpanTree: string_pos ------------------------------------------------

    #[test]
    fn string_pos_after_multibyte_text() {
        let src = "(name: \"中文µs\", cmd: \"ip route add 中 via x\")";
        let t = tree(src);
        assert_eq!(t.string_pos(&[F("name")], 0, 0), Some(p(1, 9)));
        assert_eq!(t.string_pos(&[F("name")], 0, 3), Some(p(1, 12)));
        assert_eq!(t.string_pos(&[F("name")], 0, 4), Some(p(1, 13))); // the closing quote
        assert_eq!(t.string_pos(&[F("name")], 0, 5), None);
        assert_eq!(t.string_pos(&[F("name")], 1, 0), None);
        // "via" is the 15th char of the command.
        assert_eq!(t.string_pos(&[F("cmd")], 0, 15), Some(at(src, "via")));
        assert_eq!(t.string_pos(&[F("cmd")], 0, 15), Some(p(1, 37)));
    }

    #[test]
    fn string_pos_in_raw_strings() {
        let src = "// µ\n(script: r##\"ip link set \"eth0\" up\n  ip route add default via \"# 10.0.0.1\n\n中 end\"##, raw0: r\"a\\nb\")";
        let t = tree(src);
        let path = [F("script")];
        assert_eq!(t.string_pos(&path, 0, 0), Some(p(2, 14)));
        assert_eq!(t.string_pos(&path, 0, 12), Some(at(src, "\"eth0\"")));
        assert_eq!(t.string_pos(&path, 0, 21), Some(p(2, 35))); // end of line 0: the newline
        assert_eq!(t.string_pos(&path, 0, 22), None);
        assert_eq!(t.string_pos(&path, 1, 0), Some(p(3, 1)));
        assert_eq!(t.string_pos(&path, 1, 27), Some(at(src, "\"# 10")));
        assert_eq!(t.string_pos(&path, 2, 0), Some(p(4, 1))); // an empty line
        assert_eq!(t.string_pos(&path, 2, 1), None);
        assert_eq!(t.string_pos(&path, 3, 0), Some(p(5, 1)));
        assert_eq!(t.string_pos(&path, 3, 2), Some(at(src, "end")));
        assert_eq!(t.string_pos(&path, 3, 5), Some(at(src, "\"##")));
        assert_eq!(t.string_pos(&path, 4, 0), None);
        // No escapes in raw strings.
        assert_eq!(t.string_pos(&[F("raw0")], 0, 2), Some(at(src, "nb")));
        assert_eq!(t.string_pos(&[F("raw0")], 1, 0), None);
    }

    #[test]
    fn string_pos_in_escaped_strings() {
        let src = "(s: \"ip link\\nip route add \\\"x\\\" via\\\\y\\n\\u{4e2d}\\u{1F600}z\\x41\\xc3\\xa9!\\t\\\n        cont\ntrue line\")";
        let t = tree(src);
        let path = [F("s")];
        // line 0: "ip link"
        assert_eq!(t.string_pos(&path, 0, 0), Some(at(src, "ip link")));
        assert_eq!(t.string_pos(&path, 0, 7), Some(at(src, "\\nip route"))); // the `\n` ending it
        // line 1: `ip route add "x" via\y`
        assert_eq!(t.string_pos(&path, 1, 0), Some(at(src, "ip route")));
        assert_eq!(t.string_pos(&path, 1, 13), Some(at(src, "\\\"x")));
        assert_eq!(t.string_pos(&path, 1, 14), Some(at(src, "x\\\"")));
        assert_eq!(t.string_pos(&path, 1, 15), Some(at(src, "\\\" via")));
        assert_eq!(t.string_pos(&path, 1, 17), Some(at(src, "via")));
        assert_eq!(t.string_pos(&path, 1, 20), Some(at(src, "\\\\y")));
        assert_eq!(t.string_pos(&path, 1, 21), Some(at(src, "y\\n")));
        // line 2: 中😀zAé!\t + continuation + "cont" then a real newline
        assert_eq!(t.string_pos(&path, 2, 0), Some(at(src, "\\u{4e2d}")));
        assert_eq!(t.string_pos(&path, 2, 1), Some(at(src, "\\u{1F600}")));
        assert_eq!(t.string_pos(&path, 2, 2), Some(at(src, "z\\x41")));
        assert_eq!(t.string_pos(&path, 2, 3), Some(at(src, "\\x41")));
        assert_eq!(t.string_pos(&path, 2, 4), Some(at(src, "\\xc3"))); // é from two \x
        assert_eq!(t.string_pos(&path, 2, 5), Some(at(src, "!")));
        assert_eq!(t.string_pos(&path, 2, 6), Some(at(src, "\\t")));
        assert_eq!(t.string_pos(&path, 2, 7), Some(at(src, "cont")));
        assert_eq!(t.string_pos(&path, 2, 7), Some(p(2, 9)));
        assert_eq!(t.string_pos(&path, 2, 11), Some(p(2, 13))); // the literal newline
        // line 3: "true line" on the next file line
        assert_eq!(t.string_pos(&path, 3, 0), Some(p(3, 1)));
        assert_eq!(t.string_pos(&path, 3, 5), Some(at(src, "line\"")));
        assert_eq!(t.string_pos(&path, 3, 9), Some(at(src, "\")")));
        assert_eq!(t.string_pos(&path, 3, 10), None);
        assert_eq!(t.string_pos(&path, 4, 0), None);
        // The decoded string agrees with ron's.
        #[derive(Deserialize)]
        struct S {
            s: String,
        }
        let decoded = ron::from_str::<S>(src).unwrap().s;
        assert_eq!(
            decoded,
            "ip link\nip route add \"x\" via\\y\n中😀zAé!\tcont\ntrue line"
        );
    }

    #[test]
    fn string_pos_with_crlf_continuation_and_chars() {
        let src = "(a: \"x\\\r\n   y\", b: 'é', c: b\"\\xffz\", d: [\"\"])";
        let t = tree(src);
        assert_eq!(t.string_pos(&[F("a")], 0, 1), Some(at(src, "y")));
        assert_eq!(t.string_pos(&[F("b")], 0, 0), Some(at(src, "é")));
        assert_eq!(t.string_pos(&[F("b")], 0, 1), Some(at(src, "', c")));
        assert_eq!(t.string_pos(&[F("c")], 0, 1), Some(at(src, "z")));
        assert_eq!(t.string_pos(&[F("d"), I(0)], 0, 0), Some(at(src, "\"]")));
        assert_eq!(t.string_pos(&[F("d"), I(0)], 0, 1), None);
        assert_eq!(t.string_pos(&[F("d")], 0, 0), None);
        assert_eq!(t.string_pos(&[F("zz")], 0, 0), None);
    }

    #[test]
    fn string_pos_in_the_scenario() {
        let t = tree(SCENARIO);
        let cmd = [F("hosts"), I(1), F("cmds"), I(1)];
        // `"default"` is char 13 of `ip route add "default" via 10.0.0.1`.
        assert_eq!(t.string_pos(&cmd, 0, 13), Some(p(12, 33)));
        assert_eq!(
            t.string_pos(&[F("steps"), I(3), F("body")], 1, 0),
            Some(p(20, 30))
        );
        assert_eq!(t.string_pos(&[F("name")], 0, 5), Some(at(SCENARIO, "µs\"")));
    }

    // -- properties ----------------------------------------------------------

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// A generated RON value.
        #[derive(Clone, Debug)]
        enum G {
            Num(&'static str),
            Str(String, bool),
            Char(char),
            Unit,
            Ident(&'static str),
            Some(Box<G>),
            List(Vec<G>),
            Tuple(Option<&'static str>, Vec<G>),
            Struct(Option<&'static str>, Vec<G>),
            Map(String, Vec<G>),
        }

        const NUMS: &[&str] = &[
            "0", "-1", "+7", "1_000", "0x1F", "0b101", "0o17", "1.5", "-2.5e-3", "1e10", ".5",
            "1.", "inf", "-inf", "NaN", "1u8", "2.0f32", "1..5", "1..=5", "..3", "b'a'", "true",
            "false",
        ];
        const NAMES: &[&str] = &["Host", "Ping", "Ünï", "名字", "_x"];
        const FIELDS: &[&str] = &["a", "hosts", "µs", "r#type", "名", "_f"];
        const WS: &[&str] = &[
            "",
            " ",
            "\n",
            "  ",
            "/* c */",
            "// 注释 µs\n",
            "\t",
            "/* a /* b */ c */",
            "\r\n",
            "\u{2028}",
            " /* 中 */\n ",
        ];

        fn text_strategy() -> impl Strategy<Value = String> {
            prop::collection::vec(
                prop_oneof![
                    any::<char>(),
                    Just('"'),
                    Just('\\'),
                    Just('\n'),
                    Just('#'),
                    Just('µ'),
                    Just(' '),
                    Just('a'),
                ],
                0..10,
            )
            .prop_map(|cs| cs.into_iter().collect())
        }

        fn g_strategy() -> impl Strategy<Value = G> {
            let leaf = prop_oneof![
                2 => prop::sample::select(NUMS).prop_map(G::Num),
                3 => (text_strategy(), any::<bool>()).prop_map(|(s, raw)| G::Str(s, raw)),
                1 => any::<char>().prop_map(G::Char),
                1 => Just(G::Unit),
                1 => prop::sample::select(NAMES).prop_map(G::Ident),
            ];
            leaf.prop_recursive(6, 96, 6, |inner| {
                let name = prop::option::of(prop::sample::select(NAMES));
                prop_oneof![
                    inner.clone().prop_map(|g| G::Some(Box::new(g))),
                    prop::collection::vec(inner.clone(), 0..5).prop_map(G::List),
                    (name.clone(), prop::collection::vec(inner.clone(), 0..4))
                        .prop_map(|(n, v)| G::Tuple(n, v)),
                    (name, prop::collection::vec(inner.clone(), 0..5))
                        .prop_map(|(n, v)| G::Struct(n, v)),
                    (text_strategy(), prop::collection::vec(inner, 0..4))
                        .prop_map(|(k, v)| G::Map(k, v)),
                ]
            })
        }

        #[derive(Clone, Debug)]
        enum Seg {
            Field(String),
            Index(usize),
            Key(String),
        }

        /// A value: its path, byte range, and the byte range of its key.
        type ValueRecord = (Vec<Seg>, usize, usize, Option<(usize, usize)>);
        /// A string: its path, each decoded char with the byte where it is
        /// written, and the byte of the closing delimiter.
        type StringRecord = (Vec<Seg>, Vec<(char, usize)>, usize);

        #[derive(Default)]
        struct Out {
            text: String,
            choices: Vec<u8>,
            next: usize,
            values: Vec<ValueRecord>,
            strings: Vec<StringRecord>,
        }

        impl Out {
            fn choice(&mut self, n: usize) -> usize {
                let c = self
                    .choices
                    .get(self.next % self.choices.len().max(1))
                    .copied()
                    .unwrap_or(0);
                self.next += 1;
                usize::from(c) % n
            }
            fn ws(&mut self) {
                let w = WS[self.choice(WS.len())];
                self.text.push_str(w);
            }
            fn comma(&mut self, last: bool) {
                if !last || self.choice(2) == 0 {
                    self.ws();
                    self.text.push(',');
                }
            }

            /// Renders a string literal, recording where each char is.
            fn string(&mut self, s: &str, raw: bool, path: &[Seg]) {
                let mut chars = Vec::new();
                if raw {
                    let mut run = 0;
                    let mut max_run = 0;
                    for c in s.chars() {
                        run = if c == '#' { run + 1 } else { 0 };
                        max_run = max_run.max(run);
                    }
                    let hashes = "#".repeat(max_run + 1);
                    self.text.push('r');
                    self.text.push_str(&hashes);
                    self.text.push('"');
                    for c in s.chars() {
                        chars.push((c, self.text.len()));
                        self.text.push(c);
                    }
                    let end = self.text.len();
                    self.text.push('"');
                    self.text.push_str(&hashes);
                    self.strings.push((path.to_vec(), chars, end));
                    return;
                }
                self.text.push('"');
                for c in s.chars() {
                    // A line continuation, only before a char it cannot swallow.
                    if !matches!(c, ' ' | '\t' | '\n' | '\r') && self.choice(6) == 0 {
                        self.text.push_str("\\\n   \t");
                    }
                    chars.push((c, self.text.len()));
                    match c {
                        '"' => self.text.push_str("\\\""),
                        '\\' => self.text.push_str("\\\\"),
                        '\n' if self.choice(2) == 0 => self.text.push_str("\\n"),
                        _ if self.choice(4) == 0 => {
                            self.text.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
                        }
                        _ if c.is_ascii() && self.choice(3) == 0 => {
                            self.text.push_str(&format!("\\x{:02x}", u32::from(c)));
                        }
                        _ => self.text.push(c),
                    }
                }
                let end = self.text.len();
                self.text.push('"');
                self.strings.push((path.to_vec(), chars, end));
            }

            fn render(
                &mut self,
                g: &G,
                path: &mut Vec<Seg>,
                key: Option<(usize, usize)>,
                record: bool,
            ) {
                let start = self.text.len();
                match g {
                    G::Num(n) => self.text.push_str(n),
                    G::Str(s, raw) => self.string(s, *raw, path),
                    G::Char(c) => match c {
                        '\'' => self.text.push_str("'\\''"),
                        '\\' => self.text.push_str("'\\\\'"),
                        c => {
                            self.text.push('\'');
                            self.text.push(*c);
                            self.text.push('\'');
                        }
                    },
                    G::Unit => self.text.push_str("()"),
                    G::Ident(n) => self.text.push_str(n),
                    G::Some(inner) => {
                        self.text.push_str("Some");
                        self.ws();
                        self.text.push('(');
                        self.ws();
                        // Transparent: the inner value has the same path, and
                        // the path names the `Some(..)`.
                        self.render(inner, path, None, false);
                        self.comma(true);
                        self.ws();
                        self.text.push(')');
                    }
                    G::List(items) | G::Tuple(_, items) => {
                        let (open, close) = match g {
                            G::List(_) => ('[', ']'),
                            _ => ('(', ')'),
                        };
                        if let G::Tuple(Some(name), _) = g {
                            self.text.push_str(name);
                            self.ws();
                        }
                        self.text.push(open);
                        for (i, item) in items.iter().enumerate() {
                            self.ws();
                            path.push(Seg::Index(i));
                            self.render(item, path, None, true);
                            path.pop();
                            self.comma(i + 1 == items.len());
                        }
                        self.ws();
                        self.text.push(close);
                    }
                    G::Struct(name, items) => {
                        if let Some(name) = name {
                            self.text.push_str(name);
                            self.ws();
                        }
                        self.text.push('(');
                        for (i, item) in items.iter().enumerate() {
                            self.ws();
                            let field = format!("{}{i}", FIELDS[self.choice(FIELDS.len())]);
                            let ks = self.text.len();
                            self.text.push_str(&field);
                            let ke = self.text.len();
                            self.ws();
                            self.text.push(':');
                            self.ws();
                            let lookup = field.strip_prefix("r#").unwrap_or(&field).to_owned();
                            path.push(Seg::Field(lookup));
                            self.render(item, path, Some((ks, ke)), true);
                            path.pop();
                            self.comma(i + 1 == items.len());
                        }
                        self.ws();
                        self.text.push(')');
                    }
                    G::Map(prefix, items) => {
                        self.text.push('{');
                        for (i, item) in items.iter().enumerate() {
                            self.ws();
                            let k = format!("{prefix}{i}");
                            let ks = self.text.len();
                            let raw = self.choice(2) == 0;
                            self.string(&k, raw, &[]);
                            self.strings.pop();
                            let ke = self.text.len();
                            self.ws();
                            self.text.push(':');
                            self.ws();
                            path.push(Seg::Key(k));
                            self.render(item, path, Some((ks, ke)), true);
                            path.pop();
                            self.comma(i + 1 == items.len());
                        }
                        self.ws();
                        self.text.push('}');
                    }
                }
                if record {
                    self.values
                        .push((path.clone(), start, self.text.len(), key));
                }
            }
        }

        fn segs(path: &[Seg]) -> Vec<PathSeg<'_>> {
            path.iter()
                .map(|s| match s {
                    Seg::Field(f) => PathSeg::Field(f),
                    Seg::Index(i) => PathSeg::Index(*i),
                    Seg::Key(k) => PathSeg::Key(k),
                })
                .collect()
        }

        fn render(g: &G, choices: Vec<u8>) -> Out {
            let mut out = Out {
                choices,
                ..Out::default()
            };
            out.ws();
            out.render(g, &mut Vec::new(), None, true);
            out.ws();
            out
        }

        /// The position is inside the text (or just past the end of a line).
        fn in_bounds(src: &str, pos: Pos) -> bool {
            let Some(line) = src.split('\n').nth(pos.line as usize - 1) else {
                return false;
            };
            pos.line >= 1 && pos.col >= 1 && pos.col as usize <= line.chars().count() + 1
        }

        fn exercise(src: &str) {
            if let Some(t) = SpanTree::parse(src) {
                for path in [
                    &[][..],
                    &[PathSeg::Index(0)],
                    &[PathSeg::Field("a0")],
                    &[PathSeg::Key("0")],
                    &[
                        PathSeg::Index(0),
                        PathSeg::Index(1),
                        PathSeg::Field("hosts1"),
                    ],
                ] {
                    if let Some(span) = t.locate(path) {
                        assert!(span.byte_start <= span.byte_end && span.byte_end <= src.len());
                    }
                    let _ = t.key_span(path);
                    for line in 0..3 {
                        for col in 0..4 {
                            if let Some(pos) = t.string_pos(path, line, col) {
                                assert!(in_bounds(src, pos));
                            }
                        }
                    }
                }
            }
            if let Err(e) = ron::from_str::<ron::Value>(src) {
                let pos = ron_error_pos(src, &e);
                assert!(in_bounds(src, pos), "{pos:?} {e:?} in {src:?}");
            }
            if let Err(e) = ron::from_str::<super::Scen>(src) {
                let pos = ron_error_pos(src, &e);
                assert!(in_bounds(src, pos), "{pos:?} {e:?} in {src:?}");
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn arbitrary_strings_never_panic(src in any::<String>()) {
                exercise(&src);
            }

            #[test]
            fn ron_shaped_soup_never_panics(
                src in "[\\[\\](){}:,\"'#!r/*\\\\a-zA-Z0-9 \n\r._+=µ中-]{0,80}"
            ) {
                exercise(&src);
            }

            #[test]
            fn generated_documents_map_back_to_their_text(
                g in g_strategy(),
                choices in prop::collection::vec(any::<u8>(), 1..64),
            ) {
                let out = render(&g, choices);
                let src = out.text.as_str();
                prop_assert!(ron::from_str::<ron::Value>(src).is_ok(), "ron rejects {:?}", src);
                let t = SpanTree::parse(src);
                prop_assert!(t.is_some(), "not parsed: {:?}", src);
                let t = t.unwrap();
                for (path, start, end, key) in &out.values {
                    let span = t.locate(&segs(path));
                    prop_assert_eq!(span, Some(t.span(*start, *end)), "{:?} in {:?}", path, src);
                    prop_assert_eq!(span.map(|s| s.start), Some(pos_at(src, *start)));
                    let key_span = t.key_span(&segs(path)).map(|s| (s.byte_start, s.byte_end));
                    prop_assert_eq!(key_span, *key, "{:?} in {:?}", path, src);
                }
                for (path, chars, end) in &out.strings {
                    let path = segs(path);
                    let (mut line, mut col) = (0, 0);
                    for &(c, byte) in chars {
                        prop_assert_eq!(t.string_pos(&path, line, col), Some(pos_at(src, byte)), "{:?}", src);
                        if c == '\n' {
                            line += 1;
                            col = 0;
                        } else {
                            col += 1;
                        }
                    }
                    prop_assert_eq!(t.string_pos(&path, line, col), Some(pos_at(src, *end)));
                    prop_assert_eq!(t.string_pos(&path, line, col + 1), None);
                    prop_assert_eq!(t.string_pos(&path, line + 1, 0), None);
                }
            }

            #[test]
            fn mutated_documents_never_panic(
                g in g_strategy(),
                choices in prop::collection::vec(any::<u8>(), 1..64),
                edits in prop::collection::vec((any::<prop::sample::Index>(), 0..4_u8, any::<char>()), 1..4),
            ) {
                let mut src = render(&g, choices).text;
                for (idx, op, c) in edits {
                    let boundaries: Vec<usize> =
                        (0..=src.len()).filter(|&b| src.is_char_boundary(b)).collect();
                    let at = boundaries[idx.index(boundaries.len())];
                    match op {
                        0 => src.truncate(at),
                        1 => src.insert(at, c),
                        2 => {
                            let next = boundaries.iter().copied().find(|&b| b > at).unwrap_or(at);
                            src.replace_range(at..next, "");
                        }
                        _ => src.insert_str(at, ["\"", "(", ")", "/*", "r#\"", "\\", ",", "'", "]"][usize::from(u8::try_from(u32::from(c) % 9).unwrap_or(0))]),
                    }
                }
                exercise(&src);
                // Whatever ron accepts, the span tree parses too.
                if ron::from_str::<ron::Value>(&src).is_ok() {
                    prop_assert!(SpanTree::parse(&src).is_some(), "{:?}", src);
                }
            }
        }
    }
}
