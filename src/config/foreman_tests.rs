use super::*;

fn ok(text: &str) -> Foreman {
    parse(PathBuf::from(".foreman"), text).expect("valid")
}

fn errors(text: &str) -> String {
    let e = parse(PathBuf::from(".foreman"), text).expect_err("invalid");
    crate::diagnostic::render_all(&e, false)
}

fn scalar(text: &str) -> Value {
    Value::Scalar {
        text: text.to_owned(),
        quoted: false,
    }
}

#[test]
fn reads_what_foreman_writes() {
    let f = ok(
        "---\n# chatwoot\nprocfile: Procfile.dev\nport: 3000 # the web port\nno_timestamp: true\nenv: '.env.dev'\nformation: \"web=1, worker=2\"\n",
    );
    let got: Vec<(&str, &Value)> = f
        .entries
        .iter()
        .map(|e| (e.key.as_str(), &e.value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("procfile", &scalar("Procfile.dev")),
            ("port", &scalar("3000")),
            ("no-timestamp", &scalar("true")),
            (
                "env",
                &Value::Scalar {
                    text: ".env.dev".into(),
                    quoted: true
                }
            ),
            (
                "formation",
                &Value::Scalar {
                    text: "web=1, worker=2".into(),
                    quoted: true
                }
            ),
        ]
    );
    assert_eq!(f.get("port").map(|e| (e.at.line, e.at.col)), Some((4, 7)));
    assert!(f.warnings.is_empty());
}

#[test]
fn lists_and_crlf() {
    let f = ok("env: [.env, '.env.local']\r\n");
    assert_eq!(
        f.entries[0].value,
        Value::List(vec![".env".into(), ".env.local".into()])
    );
    let f = ok("env:\n  - .env\n  - \".env.local\"\nport: 5\n");
    assert_eq!(
        f.entries[0].value,
        Value::List(vec![".env".into(), ".env.local".into()])
    );
    assert_eq!(f.entries[1].value, scalar("5"));
    let f = ok("\u{feff}app: it's\nuser: 'it''s'\n");
    assert_eq!(f.entries[0].value, scalar("it's"));
    assert_eq!(
        f.entries[1].value,
        Value::Scalar {
            text: "it's".into(),
            quoted: true
        }
    );
}

#[test]
fn unknown_and_ignored_keys_warn() {
    let f = ok("procfiel: P\ntemplate: t\nfrobnicate: 1\n");
    let w = crate::diagnostic::render_all(&f.warnings, false);
    assert!(
        w.contains("unknown key `procfiel`") && w.contains("did you mean `procfile`?"),
        "{w}"
    );
    assert!(
        w.contains("`template` is a foreman option procrun has no counterpart for"),
        "{w}"
    );
    assert!(
        w.contains("unknown key `frobnicate`") && w.contains("procrun reads: procfile"),
        "{w}"
    );
}

#[test]
fn everything_else_is_a_located_error() {
    insta::assert_snapshot!(errors(
        "port 3000\nroot:\n  nested: map\nenv: \"open\nprocfile: &a P\nport: 1\nport: 2\n- stray\napp: {a: 1}\nuser: 'x' y\nlog: [a,\ncolor:yes\n"
    ));
}
