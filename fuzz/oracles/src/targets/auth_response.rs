//! The oracle of fuzz target `auth_response`: `auth::judge` and `auth::on_response` on arbitrary token-server
//! answers.
//!
//! Input: bytes 1–2 the status (big endian), byte 3 flags (bit 0 no status = reset, bit 1
//! `failOpen`, bit 2 mapped response headers, bit 3 a non-default template), then the body.
//! Invariants: only a 200 with a non-negative integer uid allows; 401/403 always refuse; other
//! answers fail closed (or fail open, without a uid, when configured); error bodies are JSON.

use crate::harness::{check_decision, config};
use easy_jwt::core::auth::{self, AuthResponse, Decision, Pending, Verdict};
use easy_jwt::core::config::{Config, FAIL_OPEN_HEADER};
use easy_jwt::core::request::HeaderEdit;
use easy_jwt::core::stats::Stat;
use std::sync::OnceLock;

const BASE: &str = r#""tokenServerFQDN":"token-server.dns","tokenServerPort":9090"#;

fn configs() -> &'static [Config; 16] {
    static CONFIGS: OnceLock<[Config; 16]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        std::array::from_fn(|flags| {
            let mut json = format!("{{{BASE}");
            if flags & 2 != 0 {
                json.push_str(r#","failOpen":true"#);
            }
            if flags & 4 != 0 {
                json.push_str(r#","authResponseHeaders":{"role":"x-role","tenant":"x-tenant"}"#);
            }
            if flags & 8 != 0 {
                json.push_str(r#","responseErrorBody":"{\"error\":{\"code\":401,\"text\":\"%s\"}}","tokenServerFailureStatusCode":503"#);
            }
            json.push('}');
            config(&json)
        })
    })
}

pub fn check(data: &[u8]) {
    let [hi, lo, flags, body @ ..] = data else {
        return;
    };
    let status = (flags & 1 == 0).then(|| u16::from_be_bytes([*hi, *lo]));
    let index = usize::from(flags & 14);
    let Some(config) = configs().get(index) else {
        return;
    };
    let response = AuthResponse { status, body };
    let verdict = auth::judge(config, response);
    match &verdict {
        Verdict::Allowed(identity) => {
            assert_eq!(status, Some(200));
            assert!(identity.uid.parse::<u64>().is_ok(), "{:?}", identity.uid);
            assert_eq!(identity.fields.len(), config.response_headers.len());
        }
        Verdict::Denied(_) => assert!(matches!(status, Some(401 | 403))),
        Verdict::Failed(_) => assert!(!matches!(status, Some(401 | 403))),
    }
    let pending = Pending::new("token".into(), Vec::new(), Vec::new(), false);
    let decision = auth::on_response(config, pending, response);
    check_decision(config, &decision, true);
    match (&verdict, &decision) {
        (Verdict::Allowed(identity), Decision::Continue { edits, stat }) => {
            assert_eq!(*stat, Stat::Allowed);
            let uid = HeaderEdit::Set(
                config.uid_header.as_str().into(),
                identity.uid.as_str().into(),
            );
            assert_eq!(edits.first(), Some(&uid));
        }
        (Verdict::Denied(_), Decision::Reply { reply, stat }) => {
            assert_eq!((reply.status, *stat), (config.deny_status, Stat::Denied));
        }
        (Verdict::Failed(_), Decision::Reply { reply, stat }) => {
            assert!(!config.fail_open);
            assert_eq!(
                (reply.status, *stat),
                (config.failure_status, Stat::TokenServerFailure)
            );
        }
        (Verdict::Failed(_), Decision::Continue { edits, stat }) => {
            assert!(config.fail_open);
            assert_eq!(*stat, Stat::FailOpen);
            assert_eq!(
                edits.first(),
                Some(&HeaderEdit::Remove(config.uid_header.as_str().into()))
            );
            let marker = HeaderEdit::Set(FAIL_OPEN_HEADER.into(), "true".into());
            assert!(edits.contains(&marker));
        }
        (verdict, decision) => panic!("{verdict:?} became {decision:?}"),
    }
}
