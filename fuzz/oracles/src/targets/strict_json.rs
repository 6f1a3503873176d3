//! The oracle of fuzz target `strict_json`: the plugin's JSON reading on serde_json
//! (`core::strict`, used for the configuration, the token server's answer and JWT claims) against
//! plain `serde_json::from_slice` on arbitrary bytes, and the same bytes as a configuration and as
//! a token-server answer.
//!
//! Invariants: both accept the same documents, except that the strict reader refuses a member
//! named twice in one object (found here independently), with an error naming that member and
//! giving a position; what both accept they read the same; a document with a repeated member is
//! never a configuration and never allows a request.

use crate::harness::config;
use easy_jwt::core::auth::{self, AuthResponse, Verdict};
use easy_jwt::core::config::Config;
use easy_jwt::core::route_rules::RuleSet;
use easy_jwt::core::strict;
use std::sync::OnceLock;

fn mapped() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        config(
            r#"{"tokenServerFQDN":"t.dns","tokenServerPort":1,
                "authResponseHeaders":{"role":"x-role","n":"x-n","o":"x-o"}}"#,
        )
    })
}

pub fn check(data: &[u8]) {
    let ours = strict::from_slice(data);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    let duplicated = has_duplicates(data);
    match (&ours, &theirs) {
        (Ok(ours), Ok(theirs)) => {
            assert!(!duplicated, "accepted a repeated member");
            assert_eq!(ours, theirs, "read differently");
        }
        (Err(error), Ok(_)) => {
            let why = error.to_string();
            assert!(
                duplicated && why.starts_with("duplicate key `") && error.line() > 0,
                "only serde_json accepts {:?}: {why}",
                String::from_utf8_lossy(data)
            );
        }
        (Ok(ours), Err(error)) => panic!("only the strict reader accepts {ours:?}: {error}"),
        (Err(_), Err(_)) => {}
    }

    // As a configuration: a duplicate is a syntax error, never a loaded configuration.
    match RuleSet::parse(data) {
        Ok(_) => assert!(
            ours.is_ok(),
            "a configuration serde_json refuses was loaded"
        ),
        Err(error) => assert!(!error.to_string().is_empty()),
    }

    // As the token server's 200 answer.
    let verdict = auth::judge(
        mapped(),
        AuthResponse {
            status: Some(200),
            body: data,
        },
    );
    match verdict {
        Verdict::Allowed(identity) => {
            assert!(ours.is_ok(), "allowed on an unreadable or ambiguous answer");
            assert!(identity.uid.parse::<u64>().is_ok());
            for value in identity.fields.iter().flatten() {
                assert!(
                    !value.chars().any(char::is_control),
                    "{value:?} in a header"
                );
            }
        }
        Verdict::Denied(_) => panic!("a 200 is never a denial"),
        Verdict::Failed(_) => {}
    }
}

/// Whether some object of the document names a member twice (serde_json keeps the last).
fn has_duplicates(data: &[u8]) -> bool {
    // Re-read with a serde visitor that sees every member, not the map serde_json builds.
    struct Detect(bool);
    impl<'de> serde::de::Visitor<'de> for &mut Detect {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                self.0 |= !seen.insert(key);
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
    }
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Detect {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut detect = Detect(false);
    let mut reader = serde_json::Deserializer::from_slice(data);
    serde::de::DeserializeSeed::deserialize(&mut detect, &mut reader).is_ok()
        && reader.end().is_ok()
        && detect.0
}
