//! VM start-up: link, instantiate, `_initialize` + `main`, root context create/vm_start/configure
//! (docs/host-semantics.md §1).

use wasmtime::{Linker, Store, Val};

use super::{Outcome, Vm, VmConfig};
use crate::env::HostEnv;
use crate::error::HostError;
use crate::guest::Guest;
use crate::hostcalls;
use crate::plugin::Plugin;
use crate::state::{Phase, VmState, ROOT_CONTEXT_ID};
use crate::wasi;

pub(super) fn start(plugin: &Plugin, env: &HostEnv, cfg: VmConfig) -> Result<Vm, HostError> {
    let linker = linker(plugin)?;
    let seed = env.clock.now_nanos() ^ u64::from(std::process::id());
    let mut store = Store::new(plugin.engine(), VmState::new(cfg, env.clone(), seed));
    let meter = super::Meter::install(&mut store, plugin)?;
    let instance = linker
        .instantiate(&mut store, plugin.module())
        .map_err(|e| HostError::Link(format!("{e:#}")))?;
    let memory = instance
        .get_memory(&mut store, "memory")
        .ok_or_else(|| HostError::Link("module exports no memory".to_string()))?;
    let guest = Guest::lookup(&instance, &mut store)?;
    let alloc = Guest::allocator(&instance, &mut store)?;
    store.data_mut().memory = Some(memory);
    store.data_mut().alloc = Some(alloc);
    let mut vm = Vm {
        store,
        guest,
        configured: false,
        failed: None,
        events: Vec::new(),
        meter,
    };
    vm.initialize()?;
    vm.start_root()?;
    Ok(vm)
}

/// WASI + proxy hostcalls; any other function import is a stub that traps only if called
/// ("unknown import: `env::name` has not been defined").
fn linker(plugin: &Plugin) -> Result<Linker<VmState>, HostError> {
    let mut linker = Linker::new(plugin.engine());
    let link_err = |e: wasmtime::Error| HostError::Link(format!("{e:#}"));
    wasi::add_to_linker(&mut linker).map_err(link_err)?;
    hostcalls::add_to_linker(&mut linker).map_err(link_err)?;
    linker
        .define_unknown_imports_as_traps(plugin.module())
        .map_err(link_err)?;
    Ok(linker)
}

impl Vm {
    /// `_initialize` then `main(0,0)` if exported, else `_start`; only logging/WASI allowed.
    fn initialize(&mut self) -> Result<(), HostError> {
        self.store.data_mut().phase = Phase::Startup;
        let result = self.run_init_exports();
        self.store.data_mut().phase = Phase::Running;
        result.map_err(|e| HostError::Trap(format!("{e:#}")))
    }

    fn run_init_exports(&mut self) -> wasmtime::Result<()> {
        if let Some(init) = self.guest.initialize.clone() {
            init.call(&mut self.store, ())?;
            if let Some(main) = self.guest.main {
                let ty = main.ty(&self.store);
                let params: Vec<Val> = ty.params().map(|_| Val::I32(0)).collect();
                let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
                main.call(&mut self.store, &params, &mut results)?;
            }
        } else if let Some(start) = self.guest.start.clone() {
            start.call(&mut self.store, ())?;
        }
        Ok(())
    }

    /// Root context 1: create(1, 0), vm_start(1, vm_cfg_len), configure(1, plugin_cfg_len).
    fn start_root(&mut self) -> Result<(), HostError> {
        let root = self.store.data_mut().next_context();
        debug_assert_eq!(root, ROOT_CONTEXT_ID);
        let create = self.guest.on_context_create.clone();
        let outcome = self.invoke_root(create, (root, 0));
        self.expect_ok(outcome)?;
        let vm_cfg_len = len32(&self.store.data().cfg.vm_configuration);
        let vm_start = self.guest.on_vm_start.clone();
        let outcome = self.invoke_root(vm_start, (root, vm_cfg_len));
        if self.expect_ok(outcome)? == Some(0) {
            return Err(HostError::Other(
                "proxy_on_vm_start returned false".to_string(),
            ));
        }
        let cfg_len = len32(&self.store.data().cfg.plugin_configuration);
        let configure = self.guest.on_configure.clone();
        self.store.data_mut().phase = Phase::Configure;
        let outcome = self.invoke_root(configure, (root, cfg_len));
        self.store.data_mut().phase = Phase::Running;
        self.configured = self.expect_ok(outcome)? != Some(0);
        Ok(())
    }

    fn invoke_root<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        func: Option<wasmtime::TypedFunc<P, R>>,
        params: P,
    ) -> Outcome<R> {
        self.invoke(func, ROOT_CONTEXT_ID, params)
    }

    fn expect_ok<R>(&self, outcome: Outcome<R>) -> Result<Option<R>, HostError> {
        match outcome {
            Outcome::Missing => Ok(None),
            Outcome::Done(r) => Ok(Some(r)),
            Outcome::Trapped => Err(HostError::Trap(
                self.failed.clone().unwrap_or_else(|| "trap".to_string()),
            )),
        }
    }
}

fn len32(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}
