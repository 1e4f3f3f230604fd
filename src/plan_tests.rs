//! The plan's unit tests: formation, ports, PORT and PS, policies, errors.
use super::*;
use std::path::Path;

fn procfile(text: &str) -> Procfile {
    crate::procfile::parse(Path::new("Procfile"), text).expect("parses")
}

fn plan(
    text: &str,
    formation: &str,
    selected: &[&str],
    port: Option<u16>,
) -> Result<Plan, Vec<Diagnostic>> {
    let request = PlanRequest {
        formation: crate::formation::parse(formation).expect("formation"),
        selected: selected.iter().map(|s| s.to_string()).collect(),
        port,
        root: PathBuf::from("/app"),
    };
    build(&procfile(text), &EnvSet::default(), &request, &|_| None)
}

fn summary(p: &Plan) -> Vec<(String, u16)> {
    p.instances
        .iter()
        .map(|i| (i.name.clone(), i.port))
        .collect()
}

fn s(list: &[(&str, u16)]) -> Vec<(String, u16)> {
    list.iter().map(|(a, b)| (a.to_string(), *b)).collect()
}

const PF: &str = "web: a\nworker: b\nclock: c\n";

#[test]
fn formation_and_ports() {
    type Case<'a> = (&'a str, &'a [&'a str], Option<u16>, &'a [(&'a str, u16)]);
    let cases: &[Case] = &[
        (
            "",
            &[],
            None,
            &[("web.1", 5000), ("worker.1", 5100), ("clock.1", 5200)],
        ),
        ("web=2", &[], None, &[("web.1", 5000), ("web.2", 5001)]),
        (
            "all=2,clock=0",
            &[],
            Some(3000),
            &[
                ("web.1", 3000),
                ("web.2", 3001),
                ("worker.1", 3100),
                ("worker.2", 3101),
            ],
        ),
        ("", &["clock"], None, &[("clock.1", 5200)]),
        (
            "clock=3",
            &["clock", "web"],
            None,
            &[
                ("web.1", 5000),
                ("clock.1", 5200),
                ("clock.2", 5201),
                ("clock.3", 5202),
            ],
        ),
        ("all=0,worker=1", &[], None, &[("worker.1", 5100)]),
    ];
    for (formation, selected, port, want) in cases {
        let p = plan(PF, formation, selected, *port).expect("plans");
        assert_eq!(summary(&p), s(want), "-m {formation:?} {selected:?}");
    }
}

#[test]
fn policies_reach_types_and_instances() {
    let worker = Policy {
        restart: crate::policy::Restart::Always,
        port: false,
        ..Policy::default()
    };
    let policies = IndexMap::from([("worker".to_owned(), worker)]);
    let request = PlanRequest {
        formation: crate::formation::parse("worker=2").expect("formation"),
        root: PathBuf::from("/app"),
        ..PlanRequest::default()
    };
    let p = build_with(
        &procfile(PF),
        &EnvSet::default(),
        &request,
        &policies,
        &|_| None,
    )
    .expect("plans");
    assert_eq!(p.types[0].policy, Policy::default());
    assert_eq!(p.types[1].policy, worker);
    for i in &p.instances {
        assert_eq!(i.policy, worker);
        assert!(!i.env.iter().any(|(k, _)| k == "PORT"), "{:?}", i.env);
        assert!(i.env.contains(&("PS".into(), i.name.clone())));
    }
    // Its port range stays reserved: the numbers do not move.
    assert_eq!(summary(&p), s(&[("worker.1", 5100), ("worker.2", 5101)]));
}

#[test]
fn instances_get_port_and_ps() {
    let p = plan(PF, "web=2", &[], None).expect("plans");
    let web2 = &p.instances[1];
    assert!(web2.env.contains(&("PORT".into(), "5001".into())));
    assert!(web2.env.contains(&("PS".into(), "web.2".into())));
    assert_eq!(web2.cwd, PathBuf::from("/app"));
}

#[test]
fn base_port_precedence() {
    let mut env = EnvSet::default();
    env.vars.insert(
        "PORT".into(),
        crate::env::EnvVar {
            value: "6000".into(),
            source: ".env".into(),
            line: 1,
        },
    );
    let inherited = |k: &str| (k == "PORT").then(|| "7000".to_owned());
    let request = |port| PlanRequest {
        port,
        root: "/".into(),
        ..PlanRequest::default()
    };
    let pf = procfile(PF);
    assert_eq!(
        build(&pf, &env, &request(Some(4000)), &inherited)
            .expect("ok")
            .base_port,
        4000
    );
    assert_eq!(
        build(&pf, &env, &request(None), &inherited)
            .expect("ok")
            .base_port,
        6000
    );
    assert_eq!(
        build(&pf, &EnvSet::default(), &request(None), &inherited)
            .expect("ok")
            .base_port,
        7000
    );
    assert_eq!(
        build(&pf, &EnvSet::default(), &request(None), &|_| None)
            .expect("ok")
            .base_port,
        5000
    );
    let bad = |k: &str| (k == "PORT").then(|| "http".to_owned());
    assert!(build(&pf, &EnvSet::default(), &request(None), &bad).is_err());
}

#[test]
fn errors() {
    let e = plan(PF, "wbe=1", &[], None).expect_err("unknown");
    assert!(e[0].message.contains("unknown process type `wbe`"));
    assert_eq!(
        e[0].help.as_deref(),
        Some("did you mean `web`? `Procfile` defines: web, worker, clock")
    );
    let e = plan(PF, "", &["nope"], None).expect_err("unknown");
    assert_eq!(
        e[0].help.as_deref(),
        Some("`Procfile` defines: web, worker, clock")
    );
    let e = plan(PF, "all=0", &[], None).expect_err("nothing");
    assert!(e[0].message.contains("starts no process"));
    let e = plan(PF, "", &[], Some(65500)).expect_err("port overflow");
    assert!(
        e[0].message.contains("above the highest port 65535"),
        "{}",
        e[0].message
    );
    assert!(plan(PF, "web=0", &["web"], None).is_err());
}
