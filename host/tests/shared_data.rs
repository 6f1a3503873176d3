//! docs/host-semantics.md §2 shared data: process-wide, CAS with a global counter, cas ignored
//! for a new key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::{HostEnv, StreamProps, Vm};

fn shared(vm: &mut Vm, key: &str, value: &str, cas: Option<u32>) -> String {
    let id = vm.new_stream(StreamProps::default());
    let mut h = request("shared");
    h.push(("x-probe-key".into(), key.into()));
    h.push(("x-probe-value".into(), value.into()));
    if let Some(cas) = cas {
        h.push(("x-probe-cas".into(), cas.to_string()));
    }
    vm.on_request_headers(id, h, true);
    vm.take_logs()
        .into_iter()
        .find_map(|r| r.message.strip_prefix("probe: shared ").map(str::to_string))
        .unwrap()
}

#[test]
fn cas_rules_across_vms() {
    let env = HostEnv::new();
    let mut one = Vm::start(probe(), &env, config("{}")).unwrap();
    let mut two = Vm::start(probe(), &env, config("{}")).unwrap();
    // New key: the cas is ignored; first cas of the global counter is 1.
    assert_eq!(
        shared(&mut one, "k", "a", Some(42)),
        "set=Ok(()) value=Some(\"a\") cas=Some(1)"
    );
    // Visible from the other VM; a stale cas is refused.
    assert_eq!(
        shared(&mut two, "k", "b", Some(7)),
        "set=Err(CasMismatch) value=Some(\"a\") cas=Some(1)"
    );
    assert_eq!(
        shared(&mut two, "k", "b", Some(1)),
        "set=Ok(()) value=Some(\"b\") cas=Some(2)"
    );
    assert_eq!(
        shared(&mut one, "other", "x", None),
        "set=Ok(()) value=Some(\"x\") cas=Some(3)"
    );
    // An empty value reads back as (None, Some(cas)).
    assert_eq!(
        shared(&mut one, "k", "", None),
        "set=Ok(()) value=None cas=Some(4)"
    );
    assert_eq!(env.shared_data.get("probe-vm", "k"), Some((Vec::new(), 4)));
}
