//! `cargo lab watch`: re-grade on every save.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use notify::{RecursiveMode, Watcher};

use super::test;
use crate::course::{Course, Lab};
use crate::ui;

pub fn watch(course: &Course, lab: &Lab) -> Result<bool> {
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && (event.kind.is_modify() || event.kind.is_create())
            && event
                .paths
                .iter()
                .any(|p| p.extension().is_some_and(|e| e == "rs"))
        {
            let _ = tx.send(());
        }
    })?;
    for dir in ["src", "tests"] {
        let path = lab.dir.join(dir);
        if path.is_dir() {
            watcher.watch(&path, RecursiveMode::Recursive)?;
        }
    }
    let term = console::Term::stdout();
    loop {
        let _ = term.clear_screen();
        test(course, lab)?;
        println!(
            "\n{}",
            ui::dim(&format!(
                "Watching {}/src: save to re-grade, Ctrl-C to stop.",
                lab.rel_dir(&course.root)
            ))
        );
        rx.recv().context("file watcher stopped")?;
        // Editors write in several steps: let a burst of events settle into one re-grade.
        while rx.recv_timeout(Duration::from_millis(300)).is_ok() {}
    }
}
