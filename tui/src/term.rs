//! The terminal: raw mode, the alternate screen, the event loop. The
//! terminal is restored on every way out: a normal quit, an error (the
//! guard's `Drop`), a panic (a panic hook restores it before the message
//! prints) and Ctrl-C (raw mode delivers it as a key, which quits).

use std::io::{self, IsTerminal, Stdout, stdout};
use std::sync::Once;
use std::time::Duration;

use crossterm::event::{self, Event};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use crossterm::{cursor, execute};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::app::{Action, App, action_for_key};
use crate::session::Session;
use crate::ui;

/// Wall-clock time between two simulated instants while playing.
pub const TICK: Duration = Duration::from_millis(150);

/// Puts the terminal back as it was (idempotent).
pub fn restore_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), LeaveAlternateScreen, cursor::Show);
}

/// Raw mode and the alternate screen while alive.
pub struct TerminalGuard(());

impl TerminalGuard {
    pub fn enter() -> io::Result<TerminalGuard> {
        install_panic_hook();
        enable_raw_mode()?;
        let guard = TerminalGuard(());
        execute!(stdout(), EnterAlternateScreen, cursor::Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal();
    }
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// Runs the UI on the terminal until the user quits, with packet `packet`
/// selected first if given.
pub fn run_terminal(mut session: Session, packet: Option<u64>) -> io::Result<()> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(io::Error::other(
            "it needs a terminal (standard input and output are not one); `podpath run` and `podpath trace` print text",
        ));
    }
    let _guard = TerminalGuard::enter()?;
    let mut terminal: Terminal<CrosstermBackend<Stdout>> =
        Terminal::new(CrosstermBackend::new(stdout()))?;
    terminal.clear()?;
    let mut app = App::new(&session);
    if let Some(id) = packet {
        app.update(
            &mut session,
            Action::Select {
                packet: id,
                step: 0,
            },
        );
    }
    loop {
        // `draw` picks up a resized window by itself.
        terminal.draw(|f| ui::draw(f, &session, &app))?;
        if app.should_quit() {
            break;
        }
        let wait = if app.playing() {
            TICK
        } else {
            Duration::from_millis(500)
        };
        if event::poll(wait)? {
            match event::read()? {
                Event::Key(k) => {
                    if let Some(a) = action_for_key(&app, k) {
                        app.update(&mut session, a);
                    }
                }
                Event::Resize(..) => terminal.autoresize()?,
                _ => {}
            }
        } else if app.playing() {
            app.update(&mut session, Action::Tick);
        }
    }
    Ok(())
}
