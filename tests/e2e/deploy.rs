//! The shipped configurations, fed to the real artifact in Envoy: `deploy/plugin-config.json`
//! (the one `envoy.yaml` embeds and `make dev` uses) and the JSON Higress builds from
//! `deploy/higress/wasmplugin.yaml`, applied to the right ingress only.

use crate::common::*;
use easy_jwt_testbed::http::Request;
use std::process::Command;
use std::sync::OnceLock;

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| start_worlds(sites, Setup::default()))
}

/// The plugin configuration Higress delivers for `deploy/higress/wasmplugin.yaml`, as
/// `tests/deploy/check_manifests.py` builds it (after checking the manifests).
fn higress_delivered() -> &'static str {
    static DELIVERED: OnceLock<String> = OnceLock::new();
    DELIVERED.get_or_init(|| {
        let out =
            std::env::temp_dir().join(format!("easy-jwt-higress-{}.json", std::process::id()));
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
        let delivered = std::fs::read_to_string(&out).unwrap();
        let _ = std::fs::remove_file(out);
        delivered
    })
}

fn sites(_: &mut Backends) -> Vec<Site> {
    vec![
        raw_site("shipped", include_str!("../../deploy/plugin-config.json")),
        raw_site("higress", higress_delivered())
            .route("higress-course/ingress-foo", "/foo/", ECHO_CLUSTER)
            .route("other/ingress", "/other/", ECHO_CLUSTER),
    ]
}

#[test]
fn it_accepts_the_envoy_yaml_and_make_dev_configuration() {
    each(worlds(), |world| {
        // tokenServerFQDN + tokenServerPort name CLUSTER, the reference token server's.
        assert_eq!(
            uid(&world.get("shipped", "/hello", &valid_token(100))),
            "100"
        );
        assert_eq!(uid(&world.send("shipped", &Request::get("/healthz"))), "0");
    });
}

#[test]
fn it_applies_the_higress_wasmplugin_to_its_ingress_only() {
    let json: serde_json::Value = serde_json::from_str(higress_delivered()).unwrap();
    assert_eq!(
        json["_rules_"][0]["_match_route_"][0],
        "higress-course/ingress-foo"
    );
    each(worlds(), |world| {
        assert_eq!(
            uid(&world.get("higress", "/foo/hello", &valid_token(100))),
            "100"
        );
        let (status, _) = error(&world.send("higress", &Request::get("/foo/hello")));
        assert_eq!(status, 401);
        let elsewhere = world.send(
            "higress",
            &Request::get("/other/hello").header("x-auth-user", "kept"),
        );
        assert_eq!(
            echoed(&elsewhere, "x-auth-user"),
            ["kept"],
            "other ingresses are untouched"
        );
    });
}
