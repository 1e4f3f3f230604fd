//! `procrun start`: when lines are coloured.

mod support;

use support::Test;

const WEB_COLOR: &str = "\x1b[36m";
const SYSTEM_COLOR: &str = "\x1b[1m";

fn test() -> Test {
    // web ends the run once worker has printed its line.
    Test::new().procfile(
        "web: while [ ! -e ready ]; do sleep 0.01; done; echo hello\nworker: echo w; touch ready; exec sleep 30\n",
    )
}

/// Output through a pipe.
fn piped(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut t = test().args(["start", "-p", &support::free_port().to_string()]);
    for (k, v) in env {
        t = t.env(k, v);
    }
    let out = t.args(args).code(0).run();
    out.lines.join("\n")
}

/// Output through a pseudo-terminal, as from an interactive shell.
fn on_a_tty(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut t = test().args(["start", "-p", &support::free_port().to_string()]);
    for (k, v) in env {
        t = t.env(k, v);
    }
    let (status, output) = t.args(args).pty().finish();
    assert_eq!(status.code(), Some(0), "{output:?}");
    output
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
