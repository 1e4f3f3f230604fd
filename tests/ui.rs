//! The dashboard on a real terminal (tmux): `procrun ui` attached to a
//! `start` running beside it, and `procrun start --ui`. What the screen
//! shows is read back as text; what the keys did is checked through
//! `procrun ps --json`; the terminal's settings before and after are
//! compared. Every wait is bounded.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use support::tmux::Tmux;
use support::{Project, Running, Test, WAIT, procrun_quoted};

/// A private runtime directory, so that clients find the socket.
fn runtime() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temp dir")
}

fn rt_env(rt: &Path) -> [(&'static str, String); 1] {
    [("XDG_RUNTIME_DIR", rt.display().to_string())]
}

/// `procrun ps --json` for the app in `dir`.
fn ps(dir: &Path, rt: &Path) -> Vec<Value> {
    let out = Test::in_dir(dir)
        .env("XDG_RUNTIME_DIR", rt)
        .args(["ps", "--json"])
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    serde_json::from_str::<Value>(&out.stdout)
        .expect("JSON")
        .as_array()
        .cloned()
        .expect("a list")
}

fn instance(dir: &Path, rt: &Path, name: &str) -> Value {
    ps(dir, rt)
        .into_iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in ps"))
}

/// Waits (at most [`WAIT`]) until `name` in `ps` satisfies `pred`.
#[track_caller]
fn wait_ps(dir: &Path, rt: &Path, name: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let i = instance(dir, rt, name);
        if pred(&i) {
            return i;
        }
        assert!(Instant::now() < deadline, "{name} never {what}: {i}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn tmux(dir: &Path, rt: &Path, command: &str, width: u16, height: u16) -> Tmux {
    assert!(
        support::tmux::available(),
        "these tests need tmux (.ci/run installs it)"
    );
    let env = rt_env(rt);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Tmux::start(dir, &env, command, width, height)
}

#[track_caller]
fn assert_terminal_restored(t: &Tmux) {
    assert_eq!(
        t.format("#{alternate_on}"),
        "0",
        "the alternate screen is left"
    );
    let (before, after) = t.stty();
    assert_eq!(
        before, after,
        "the terminal settings (stty -g) differ after the dashboard"
    );
}

#[track_caller]
fn assert_gone(mark: &str) {
    let deadline = Instant::now() + WAIT;
    while !support::running::marked(mark).is_empty() {
        if Instant::now() > deadline {
            let left = support::running::marked(mark);
            let names: Vec<String> = left
                .iter()
                .map(|&p| support::running::describe(p))
                .collect();
            // Nothing of this test outlives it, failed or not.
            for pid in left {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
            panic!("left running: {names:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A worker whose output tries to clear the screen and set the title.
const APP: &str = "web: echo web up; exec sleep 60\n\
worker: printf 'needle-42\\n\\033[2J\\033[H\\033]2;evil-title\\007after the clear\\n'; exec sleep 60\n";

/// `procrun start --ui` for `app` in an 80×24 window.
fn start_ui(app: &Project, rt: &Path) -> Tmux {
    let command = format!(
        "{} start -p {} --ui",
        procrun_quoted(),
        support::free_port()
    );
    tmux(app.path(), rt, &command, 80, 24)
}

fn start(rt: &Path) -> Running {
    let mut r = Test::new()
        .procfile(APP)
        .env("XDG_RUNTIME_DIR", rt)
        .start(&[]);
    r.wait_for("after the clear");
    r.wait_for("web up");
    r
}

#[test]
fn ui_shows_every_instance_and_its_keys_act_on_the_selected_one() {
    let rt = runtime();
    let mut r = start(rt.path());
    let t = tmux(
        r.path(),
        rt.path(),
        &format!("{} ui", procrun_quoted()),
        120,
        40,
    );
    let screen = t.wait_screen("both instances running", |s| {
        s.contains("● web.1") && s.contains("● worker.1") && s.contains("after the clear")
    });
    // The child's escape sequences reached neither the screen nor the title.
    assert!(screen.starts_with("┌ procrun · "), "{screen}");
    assert!(screen.contains("worker.1 | needle-42"), "{screen}");
    assert_ne!(t.format("#{pane_title}"), "evil-title");

    // r restarts the selected instance: a new pid, one restart.
    let before = instance(r.path(), rt.path(), "web.1");
    t.keys(&["j"]);
    t.wait_for("web.1 · following");
    t.keys(&["r"]);
    let after = wait_ps(r.path(), rt.path(), "web.1", "restarted", |i| {
        i["restarts"] == 1 && i["state"] == "running"
    });
    assert_ne!(after["pid"], before["pid"]);
    t.wait_for(&format!("web.1 started with pid {}", after["pid"]));
    assert_eq!(instance(r.path(), rt.path(), "worker.1")["restarts"], 0);

    // s stops it, S starts it again.
    t.keys(&["s"]);
    wait_ps(r.path(), rt.path(), "web.1", "stopped", |i| {
        i["state"] == "stopped"
    });
    t.wait_for("■ web.1");
    t.keys(&["S"]);
    wait_ps(r.path(), rt.path(), "web.1", "started", |i| {
        i["state"] == "running"
    });

    // / finds a line of the selected instance.
    t.keys(&["j", "/"]);
    t.type_text("needle");
    t.keys(&["Enter"]);
    let screen = t.wait_for("worker.1 · paused (G follows) · /needle");
    assert!(screen.contains("needle-42"), "{screen}");

    // 80×24: the list moves above the output.
    t.resize(80, 24);
    let screen = t.wait_screen("the stacked layout", |s| {
        let lines: Vec<&str> = s.lines().collect();
        lines.len() == 24
            && lines[0].starts_with("┌ procrun")
            && !lines[0].contains("worker.1 ·")
            && lines.iter().skip(3).any(|l| l.starts_with("┌ worker.1 ·"))
    });
    assert!(screen.lines().all(|l| l.chars().count() <= 80), "{screen}");

    // q leaves the dashboard; the app runs on.
    t.keys(&["q"]);
    assert_eq!(t.wait_code(), 0, "{}", t.screen());
    assert_terminal_restored(&t);
    assert_eq!(
        instance(r.path(), rt.path(), "worker.1")["state"],
        "running"
    );
    assert_gone(&t.mark);
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}

#[test]
fn start_ui_asks_before_stopping_the_app_and_gives_the_terminal_back() {
    let rt = runtime();
    let app = Project::with_procfile("web: echo up; exec sleep 60\nworker: exec sleep 60\n");
    let port = support::free_port();
    let command = format!("{} start -p {port} --ui", procrun_quoted());
    let t = tmux(app.path(), rt.path(), &command, 80, 24);
    t.wait_screen("the dashboard", |s| {
        s.contains("● web.1") && s.contains("web.1    | up")
    });
    t.keys(&["q"]);
    t.wait_for("Stop the app (2 processes running) and quit?");
    t.keys(&["n"]);
    t.wait_screen("the question gone", |s| !s.contains("Stop the app"));
    assert_eq!(instance(app.path(), rt.path(), "web.1")["state"], "running");
    t.keys(&["q"]);
    t.wait_for("Stop the app");
    t.keys(&["y"]);
    assert_eq!(t.wait_code(), 143, "quit stops the app as SIGTERM would");
    assert_terminal_restored(&t);
    // The prefixed output went to the log ring only, not to the terminal.
    let screen = t.screen();
    assert!(!screen.contains("| up"), "{screen}");
    assert_gone(&t.mark);
}

#[test]
fn start_ui_says_when_the_app_has_ended_and_waits_for_a_key() {
    let rt = runtime();
    let app = Project::with_procfile("web: echo going; sleep 0.5; exit 3\n");
    let t = start_ui(&app, rt.path());
    let screen = t.wait_for("the app has stopped (exit code 3)");
    assert!(screen.contains("press any key"), "{screen}");
    assert!(screen.contains("web.1 exited with code 3"), "{screen}");
    t.keys(&["x"]);
    assert_eq!(t.wait_code(), 3);
    assert_terminal_restored(&t);
    assert_gone(&t.mark);
}

/// Closing the terminal ends the dashboard and, under `start --ui`, the
/// app: nothing is left running, and nothing spins on the dead terminal.
#[test]
fn a_closed_terminal_ends_the_dashboard_and_leaves_nothing_behind() {
    let rt = runtime();
    // `start --ui`, the app running.
    let app = Project::with_procfile("web: echo web up; exec sleep 60\n");
    let t = start_ui(&app, rt.path());
    t.wait_for("web up");
    t.close();
    assert_gone(&t.mark);
    // `start --ui`, the app ended, the dashboard waiting for a key.
    let app = Project::with_procfile("web: echo going; exit 3\n");
    let t = start_ui(&app, rt.path());
    t.wait_for("press any key");
    t.close();
    assert_gone(&t.mark);
    // `procrun ui` beside a `start`: the dashboard ends, the app runs on.
    let started = start(rt.path());
    let t = tmux(
        started.path(),
        rt.path(),
        &format!("{} ui", procrun_quoted()),
        80,
        24,
    );
    t.wait_for("web.1");
    t.close();
    assert_gone(&t.mark);
    wait_ps(started.path(), rt.path(), "web.1", "running", |i| {
        i["state"] == "running"
    });
}

#[test]
fn without_a_terminal_or_a_running_app_the_dashboard_says_why() {
    Test::new()
        .procfile("web: sleep 1\n")
        .args(["ui"])
        .code(2)
        .stderr_has("the dashboard needs a terminal")
        .run();
    let out = Test::new()
        .procfile("web: echo should not start\n")
        .args(["start", "--ui"])
        .code(2)
        .stderr_has("the dashboard needs a terminal")
        .run();
    assert!(!out.stdout.contains("should not start"), "{}", out.stdout);
    let rt = runtime();
    let run = Test::new()
        .procfile("web: sleep 1\n")
        .env("XDG_RUNTIME_DIR", rt.path())
        .args(["ui"])
        .pty();
    let (status, output) = run.finish();
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("procrun is not running for"), "{output}");
    assert!(
        !output.contains("\x1b[?1049h"),
        "the screen was never taken: {output:?}"
    );
}

/// The pane's inner size (rows, columns) on `screen`: between the borders
/// of the pane whose title starts with `title`.
fn pane_size(screen: &str, title: &str) -> (usize, usize) {
    let lines: Vec<&str> = screen.lines().collect();
    let top = lines
        .iter()
        .position(|l| l.starts_with(&format!("┌ {title}")))
        .unwrap_or_else(|| panic!("no pane titled {title}:\n{screen}"));
    let bottom = top
        + lines[top..]
            .iter()
            .position(|l| l.starts_with('└'))
            .unwrap_or_else(|| panic!("the pane has no bottom:\n{screen}"));
    let width = lines[top].chars().count();
    (bottom - top - 1, width - 2)
}

/// An instance on a terminal that answers each line it reads, and says
/// its terminal's size when asked; one on pipes.
const TTY_APP: &str = "echo: while IFS= read -r l; do if [ \"$l\" = size ]; then echo \"size: $(stty size)\"; else echo \"got: $l\"; fi; done\n\
plain: echo plain up; exec sleep 60\n";

#[test]
fn enter_connects_the_pane_to_a_tty_instance_and_ctrl_bracket_detaches() {
    let rt = runtime();
    let mut r = Test::new()
        .procfile(TTY_APP)
        .env("XDG_RUNTIME_DIR", rt.path())
        .start(&["--tty=echo", "--can-die=echo"]);
    r.wait_for("plain up");
    let pid = r.pid_of("echo.1");
    let t = tmux(
        r.path(),
        rt.path(),
        &format!("{} ui", procrun_quoted()),
        100,
        30,
    );
    t.wait_screen("both instances running", |s| {
        s.contains("● echo.1") && s.contains("● plain.1")
    });
    t.keys(&["j"]);
    t.wait_for("echo.1 · following");
    t.keys(&["Enter"]);
    let title = format!("echo.1 · connected (pid {pid}) · Ctrl-] detaches");
    let screen = t.wait_for(&title);

    // Typed text reaches the program; its answer is drawn in the pane.
    t.type_text("hello there");
    t.keys(&["Enter"]);
    let screen_after = t.wait_for("got: hello there");
    assert!(
        screen_after
            .lines()
            .any(|l| l.starts_with("│got: hello there ")),
        "{screen_after}"
    );
    // Its terminal has the pane's size, and follows the window's.
    let (rows, cols) = pane_size(&screen, "echo.1 · connected");
    t.type_text("size");
    t.keys(&["Enter"]);
    t.wait_for(&format!("size: {rows} {cols}"));
    t.resize(80, 24);
    let screen = t.wait_screen("the pane redrawn at 80×24", |s| {
        let lines: Vec<&str> = s.lines().collect();
        let top = lines
            .iter()
            .position(|l| l.starts_with("┌ echo.1 · connected"));
        top.is_some_and(|top| {
            lines[top].chars().count() == 80 && lines[top..].iter().any(|l| l.starts_with('└'))
        })
    });
    let (rows, cols) = pane_size(&screen, "echo.1 · connected");
    assert_eq!(cols, 78, "{screen}");
    t.type_text("size");
    t.keys(&["Enter"]);
    t.wait_for(&format!("size: {rows} {cols}"));

    // Ctrl-] detaches: the dashboard is back, the instance runs on.
    t.keys(&["C-]"]);
    t.wait_for("detached from echo.1; it keeps running");
    let screen = t.wait_for("echo.1 · following");
    assert!(!screen.contains("connected (pid"), "{screen}");
    let i = instance(r.path(), rt.path(), "echo.1");
    assert_eq!(i["state"], "running", "{i}");
    assert_eq!(i["pid"].as_i64(), Some(i64::from(pid)), "the same process");

    // An instance on pipes cannot be connected to, and the status says why.
    t.keys(&["j"]);
    t.wait_for("plain.1 · following");
    t.keys(&["Enter"]);
    t.wait_for("plain.1 runs without a terminal: start it with `procrun start --tty=plain`");

    // Ctrl-C goes to the instance (its terminal interrupts the loop): the
    // view says it ended and is left.
    t.keys(&["k", "Enter"]);
    t.wait_for("echo.1 · connected");
    t.keys(&["C-c"]);
    t.wait_for("echo.1 has exited: disconnected");
    t.wait_screen("the list back", |s| !s.contains("echo.1 · connected"));
    wait_ps(r.path(), rt.path(), "echo.1", "ended", |i| {
        i["pid"].is_null()
    });

    t.keys(&["q"]);
    assert_eq!(t.wait_code(), 0, "{}", t.screen());
    assert_terminal_restored(&t);
    assert_gone(&t.mark);
    assert_eq!(instance(r.path(), rt.path(), "plain.1")["state"], "running");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}
