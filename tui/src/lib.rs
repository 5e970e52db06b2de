//! podpath's terminal UI: step through a packet's path, forward and back,
//! with the tables each step consulted, as they were at that moment.
//!
//! - [`session`]: the run, driven event by event, every trace record kept,
//!   packets indexed, tables snapshotted as they change ([`snap`]).
//! - [`app`]: the UI state; it changes only through [`app::Action`]s.
//! - [`ui`]: widgets rendering from a borrowed [`ui::View`].
//! - [`term`]: the terminal and the event loop ([`run_terminal`]).
//! - [`graph`]: the topology as Graphviz DOT/SVG with a packet's path.
//!
//! See `docs/tui.md`.

pub mod app;
pub mod graph;
pub mod session;
pub mod snap;
pub mod term;
pub mod ui;

pub use app::{Action, App};
pub use session::Session;
pub use term::run_terminal;

/// The screen as text, rendered on a test backend of the given size
/// (trailing spaces trimmed): for tests and snapshots.
pub fn render_to_string(session: &Session, app: &App, width: u16, height: u16) -> String {
    let buf = render_to_buffer(session, app, width, height);
    buffer_text(&buf)
}

/// The screen rendered into a buffer of the given size.
pub fn render_to_buffer(
    session: &Session,
    app: &App,
    width: u16,
    height: u16,
) -> ratatui::buffer::Buffer {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut term = ratatui::Terminal::new(backend).expect("a test terminal");
    term.draw(|f| ui::draw(f, session, app))
        .expect("drawing on a test terminal");
    term.backend().buffer().clone()
}

/// A buffer's text, one line per row, trailing spaces trimmed.
pub fn buffer_text(buf: &ratatui::buffer::Buffer) -> String {
    let a = buf.area;
    let mut out = String::new();
    for y in a.y..a.y + a.height {
        let mut line = String::new();
        let mut skip = 0;
        for x in a.x..a.x + a.width {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            let c = &buf[(x, y)];
            let sym = c.symbol();
            line.push_str(sym);
            // A wide symbol covers the next cell.
            skip = ratatui::text::Span::raw(sym).width().saturating_sub(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
