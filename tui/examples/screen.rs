//! Prints a screen of the UI for a scenario (development aid):
//! `cargo run -p podpath-tui --example screen -- FILE PACKET STEP [W H] [keys]`.
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let sc = scenarios::load_file(&a[1]).expect("scenario");
    let mut s = tui::Session::run(&sc, &Default::default());
    let mut app = tui::App::new(&s);
    app.update(
        &mut s,
        tui::Action::Select {
            packet: a[2].parse().unwrap(),
            step: a[3].parse::<usize>().unwrap() - 1,
        },
    );
    let w = a.get(4).map_or(80, |x| x.parse().unwrap());
    let h = a.get(5).map_or(24, |x| x.parse().unwrap());
    for c in a
        .get(6)
        .map(|s| s.chars().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let k = crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char(c));
        if let Some(act) = tui::app::action_for_key(&app, k) {
            app.update(&mut s, act);
        }
    }
    print!("{}", tui::render_to_string(&s, &app, w, h));
}
