//! `guest-bench`: the guest side of a request, counted in the in-process host: wasm instructions
//! (wasmtime fuel) and hostcalls per request on every path of the plugin, next to the no-op
//! plugin and the call-and-resume floor; then the artifact's size. `envoy-bench` (`make bench`)
//! prints the same table after the Envoy figures; this runs it alone, in seconds, without Envoy
//! or valgrind. See `easy_jwt_bench::guest` for what a request goes through.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use easy_jwt_bench::guest::{self, Inputs};
use easy_jwt_bench::scenario::plugin_config;
use easy_jwt_bench::table::{int, Table};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "guest-bench",
    about = "Wasm instructions and hostcalls per request of plugin.wasm, in the in-process host"
)]
struct Args {
    /// The release artifact.
    #[arg(long, default_value = "plugin.wasm")]
    plugin: PathBuf,
    /// The no-op baseline plugin.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm-release/noop_plugin.wasm"
    )]
    noop: PathBuf,
    /// The call-and-resume floor plugin (the row is skipped when the file is missing).
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm-release/call_floor_plugin.wasm"
    )]
    call_floor: PathBuf,
    /// The header floor (`-p header-floor-plugin`); skipped when missing.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm-release/header_floor_plugin.wasm"
    )]
    header_floor: PathBuf,
    /// Base plugin configuration (the token server is set to the raw cluster `token-server`).
    #[arg(long, default_value = "deploy/plugin-config.json")]
    config: PathBuf,
    /// Measured requests per path.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Unmeasured requests per path first.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("guest-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let inputs = Inputs {
        plugin: args.plugin.clone(),
        noop: args.noop.clone(),
        call_floor: args.call_floor.is_file().then(|| args.call_floor.clone()),
        header_floor: args
            .header_floor
            .is_file()
            .then(|| args.header_floor.clone()),
        config: plugin_config(&args.config)?,
    };
    let rows = guest::measure(&inputs, args.warmup, args.requests)?;
    let mut table = Table::new(&["path", ">wasm instructions/request", ">hostcalls/request"]);
    for row in &rows {
        table.row(vec![
            row.name.to_string(),
            int(row.instructions),
            format!("{:.2}", row.hostcalls),
        ]);
    }
    println!("{}", table.render());
    let size = std::fs::metadata(&args.plugin)
        .map_err(|e| format!("cannot stat {}: {e}", args.plugin.display()))?
        .len();
    println!("{}: {} bytes", args.plugin.display(), int(size as f64));
    Ok(())
}
