//! The shipped configurations, fed to the real artifact: `deploy/plugin-config.json` (the one
//! `envoy.yaml` embeds and `make dev` uses) and the JSON Higress builds from
//! `deploy/higress/wasmplugin.yaml`, applied to the right ingress only.

mod common;

use common::*;
use std::process::Command;

#[test]
fn it_accepts_the_envoy_yaml_and_make_dev_configuration() {
    let cfg = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/plugin-config.json"
    ))
    .unwrap();
    let mut gw = Gateway::start(&cfg, Answerer::Fixed(answer(200, r#"{"uid":100}"#)));
    assert_eq!(gw.send(Req::get("/hello").bearer("t")).uid(), "100");
    assert_eq!(gw.calls[0].cluster, CLUSTER);
    assert_eq!(gw.send(Req::get("/healthz")).uid(), "0");
}

#[test]
fn it_applies_the_higress_wasmplugin_to_its_ingress_only() {
    let out = std::env::temp_dir().join(format!("easy-jwt-higress-{}.json", std::process::id()));
    // The deploy checks' venv (`make pyenv`: PyYAML, hash-locked), not whatever python3 is first.
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/target/pyenv/bin/python");
    assert!(
        std::path::Path::new(python).exists(),
        "{python} is missing: run `make pyenv`"
    );
    let status = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/deploy/check_manifests.py"
        ))
        .arg(&out)
        .status()
        .expect("target/pyenv/bin/python runs tests/deploy/check_manifests.py");
    assert!(status.success(), "manifest checks failed");
    let delivered = std::fs::read(&out).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&delivered).unwrap();
    assert_eq!(
        json["_rules_"][0]["_match_route_"][0],
        "higress-course/ingress-foo"
    );

    let mut gw = Gateway::start(&delivered, Answerer::Fixed(answer(200, r#"{"uid":100}"#)));
    let on_ingress = gw.send(
        Req::get("/hello")
            .bearer("t")
            .route("higress-course/ingress-foo"),
    );
    assert_eq!(on_ingress.uid(), "100");
    let (status, _) = gw
        .send(Req::get("/hello").route("higress-course/ingress-foo"))
        .error();
    assert_eq!(status, 401);
    let elsewhere = gw.send(
        Req::get("/hello")
            .route("other/ingress")
            .header("x-auth-user", "kept"),
    );
    assert_eq!(
        elsewhere.values("x-auth-user"),
        vec!["kept".to_string()],
        "other ingresses are untouched"
    );
    let _ = std::fs::remove_file(out);
}
