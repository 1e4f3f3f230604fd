//! `procrun start`: when lines are coloured (issue 3, "Output").

#[path = "support/processes.rs"]
mod processes;
mod support;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use processes::{Running, unique_port};
use support::Project;

const WEB_COLOR: &str = "\x1b[36m";
const SYSTEM_COLOR: &str = "\x1b[1m";

fn project() -> Project {
    // web ends the run once worker has printed its line.
    Project::with_procfile(
        "web: while [ ! -e ready ]; do sleep 0.01; done; echo hello\nworker: echo w; touch ready; exec sleep 30\n",
    )
}

/// Output through a pipe.
fn piped(args: &[&str], env: &[(&str, &str)]) -> String {
    let p = project();
    let port = unique_port();
    let mut all = vec!["start", "-p", &port];
    all.extend_from_slice(args);
    let mut r = Running::start(&p, &all, env);
    assert_eq!(r.wait_exit(), Some(0));
    r.transcript()
}

/// Output through a pseudo-terminal.
fn on_a_tty(args: &[&str], env: &[(&str, &str)]) -> String {
    let p = project();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = std::process::Command::new(support::procrun_path());
    cmd.arg("start")
        .args(["-p", &unique_port()])
        .args(args)
        .current_dir(p.path())
        .env_remove("NO_COLOR")
        .env_remove("PROCRUN_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave))
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("spawn procrun");
    drop(cmd); // closes our copy of the terminal's slave side
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once procrun (the last holder of the slave side) is gone.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        out
    });
    let deadline = std::time::Instant::now() + processes::WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("procrun on a pty did not exit");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(status.code(), Some(0));
    String::from_utf8_lossy(&reader.join().expect("reader")).into_owned()
}

#[test]
fn no_colour_on_a_pipe() {
    let out = piped(&[], &[]);
    assert!(out.contains("| hello"), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
}

#[test]
fn color_always_colours_a_pipe_even_with_no_color() {
    let out = piped(&["--color", "always"], &[("NO_COLOR", "1")]);
    assert!(out.contains(WEB_COLOR), "{out:?}");
    assert!(out.contains(SYSTEM_COLOR), "{out:?}");
    assert!(
        out.contains("web.1    |\x1b[0m hello"),
        "the prefix only is coloured: {out:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn colour_on_a_terminal() {
    let out = on_a_tty(&[], &[]);
    assert!(out.contains("hello"), "{out:?}");
    assert!(out.contains(WEB_COLOR), "{out:?}");
    assert!(
        out.contains("\x1b[33m"),
        "worker has the next colour: {out:?}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn no_color_or_color_never_turn_it_off_on_a_terminal() {
    for (args, env) in [
        (&[][..], &[("NO_COLOR", "1")][..]),
        (&["--color", "never"][..], &[][..]),
    ] {
        let out = on_a_tty(args, env);
        assert!(out.contains("hello"), "{out:?}");
        assert!(!out.contains('\x1b'), "{args:?} {env:?}: {out:?}");
    }
}
