//! easy-jwt: token-server authentication for Envoy-based gateways (Higress, Istio, Envoy) as one
//! proxy-wasm plugin (ABI 0.2.1). See `docs/architecture.md` for the request's path through the
//! [`core`] (decides, no hostcalls) and the [`proxy`] adapter (hostcalls).

pub mod core;
pub mod proxy;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| {
        Box::new(proxy::filter::Root::new(std::rc::Rc::new(proxy::host::Envoy)))
    });
}}
