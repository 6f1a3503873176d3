//! Envoy under valgrind's callgrind: start it with instrumentation off, switch instrumentation on
//! and off around a batch of requests (`callgrind_control -i on|off`), dump the counts
//! (`callgrind_control -d`) and read the dump's `totals:` (instructions executed by every thread
//! of the process, JIT code included); plus a per-function reading of a dump for profiles.
//!
//! Envoy runs with flags V8's and LuaJIT's generated code needs under valgrind:
//! `--smc-check=all-non-file` (code written into anonymous memory is re-checked before it runs)
//! and `--vex-iropt-register-updates=allregs-at-mem-access` (exact registers at every memory
//! access, which V8's out-of-bounds trap handler reads from a signal context). Neither changes
//! what is counted.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use easy_jwt_testbed::http::{Conn, Request, Response};
use serde_json::Value;

/// valgrind and the callgrind helper scripts.
#[derive(Debug, Clone)]
pub struct Tools {
    pub valgrind: PathBuf,
    pub control: PathBuf,
    pub annotate: PathBuf,
    /// `valgrind-3.19.0`.
    pub version: String,
}

impl Tools {
    /// `valgrind` (a path, or a name looked up on `PATH`) and `callgrind_control` /
    /// `callgrind_annotate` next to it (else on `PATH`). `Err` names what is missing.
    pub fn find(valgrind: &Path) -> Result<Tools, String> {
        let out = Command::new(valgrind)
            .arg("--version")
            .output()
            .map_err(|e| format!("{}: {e}", valgrind.display()))?;
        if !out.status.success() {
            return Err(format!("`{} --version` failed", valgrind.display()));
        }
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let sibling = |name: &str| {
            let next_to = valgrind.parent().map(|d| d.join(name));
            match next_to {
                Some(p) if p.is_file() => p,
                _ => PathBuf::from(name),
            }
        };
        let control = sibling("callgrind_control");
        let annotate = sibling("callgrind_annotate");
        for tool in [&control, &annotate] {
            let ok = Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok();
            if !ok {
                return Err(format!(
                    "{} not found (it comes with valgrind; it needs perl)",
                    tool.display()
                ));
            }
        }
        Ok(Tools {
            valgrind: valgrind.to_path_buf(),
            control,
            annotate,
            version,
        })
    }
}

/// A running Envoy under callgrind. Dropping it stops it (SIGTERM, SIGKILL after 20 s).
pub struct CallgrindEnvoy {
    child: Child,
    tools: Tools,
    dir: PathBuf,
    admin: SocketAddr,
    listeners: BTreeMap<String, SocketAddr>,
    out_base: PathBuf,
    dumps: u32,
    maps: Vec<Mapping>,
}

/// How Envoy is started.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub envoy: &'a Path,
    /// The bootstrap, as Envoy JSON.
    pub bootstrap: &'a Value,
    /// Where the bootstrap, the logs and the callgrind dumps go (created; emptied first).
    pub dir: &'a Path,
    /// How long to wait for `/ready` to say `LIVE`.
    pub timeout: Duration,
    pub log_level: &'a str,
}

impl CallgrindEnvoy {
    /// Writes the bootstrap, runs `valgrind --tool=callgrind --instr-atstart=no … envoy
    /// --concurrency 1` and waits until it is `LIVE`, then reads its listeners' addresses.
    pub fn start(tools: &Tools, launch: &Launch<'_>) -> Result<CallgrindEnvoy, String> {
        let dir = launch.dir;
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
        }
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let config = dir.join("bootstrap.json");
        let text = serde_json::to_string_pretty(launch.bootstrap)
            .map_err(|e| format!("bootstrap does not render: {e}"))?;
        fs::write(&config, text).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
        let admin_file = dir.join("admin-address");
        let out_base = dir.join("callgrind.out");
        let file = |name: &str| {
            fs::File::create(dir.join(name)).map_err(|e| format!("cannot create {name}: {e}"))
        };
        let child = Command::new(&tools.valgrind)
            .arg("--tool=callgrind")
            .arg("--instr-atstart=no")
            .arg("--smc-check=all-non-file")
            .arg("--vex-iropt-register-updates=allregs-at-mem-access")
            .arg(format!("--callgrind-out-file={}", out_base.display()))
            .arg(format!("--log-file={}", dir.join("valgrind.log").display()))
            .arg(launch.envoy)
            .arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--concurrency")
            .arg("1")
            .arg("--disable-hot-restart")
            .arg("--log-level")
            .arg(launch.log_level)
            .arg("--component-log-level")
            .arg(format!("wasm:{}", launch.log_level))
            .arg("--log-path")
            .arg(dir.join("envoy.log"))
            .stdin(Stdio::null())
            .stdout(file("stdout.txt")?)
            .stderr(file("stderr.txt")?)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", tools.valgrind.display()))?;
        let mut envoy = CallgrindEnvoy {
            child,
            tools: tools.clone(),
            dir: dir.to_path_buf(),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            listeners: BTreeMap::new(),
            out_base,
            dumps: 0,
            maps: Vec::new(),
        };
        let deadline = Instant::now() + launch.timeout;
        let admin = loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err(format!(
                    "Envoy under valgrind exited ({status}) before it was ready:\n{}",
                    envoy.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Envoy under valgrind not LIVE within {:?}:\n{}",
                    launch.timeout,
                    envoy.log_tail()
                ));
            }
            let addr: Option<SocketAddr> = fs::read_to_string(&admin_file)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if let Some(addr) = addr {
                if let Ok(resp) = admin_get(addr, "/ready") {
                    if resp.status == 200 && resp.text().trim() == "LIVE" {
                        break addr;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        envoy.admin = admin;
        let resp = admin_get(admin, "/listeners?format=json")
            .map_err(|e| format!("admin /listeners: {e}"))?;
        let listeners: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("admin /listeners is not JSON: {e}"))?;
        envoy.listeners = parse_listeners(&listeners);
        envoy.maps = read_maps(envoy.pid());
        let maps_text: String = envoy
            .maps
            .iter()
            .map(|m| format!("{:x}-{:x} {:x} {}\n", m.start, m.end, m.offset, m.path))
            .collect();
        let _ = fs::write(dir.join("maps.txt"), maps_text);
        Ok(envoy)
    }

    /// The process id (valgrind runs Envoy in its own process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's memory mappings once it was ready (also in `maps.txt`).
    pub fn maps(&self) -> &[Mapping] {
        &self.maps
    }

    /// The directory of the bootstrap, logs and dumps.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bound address of listener `name`.
    pub fn listener(&self, name: &str) -> Result<SocketAddr, String> {
        self.listeners.get(name).copied().ok_or_else(|| {
            format!(
                "Envoy has no listener {name:?} (it has {:?})",
                self.listeners.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Every counter and gauge (admin `/stats?format=json`).
    pub fn stats(&self) -> Result<BTreeMap<String, i64>, String> {
        let resp = admin_get(self.admin, "/stats?format=json")
            .map_err(|e| format!("admin /stats: {e}"))?;
        let v: Value = serde_json::from_slice(&resp.body)
            .map_err(|e| format!("admin /stats is not JSON: {e}"))?;
        let mut out = BTreeMap::new();
        let stats = v.get("stats").and_then(Value::as_array);
        for s in stats.into_iter().flatten() {
            let name = s.get("name").and_then(Value::as_str);
            let value = s.get("value").and_then(Value::as_i64);
            if let (Some(name), Some(value)) = (name, value) {
                out.insert(name.to_owned(), value);
            }
        }
        Ok(out)
    }

    /// `callgrind_control -i on|off`.
    pub fn instrument(&self, on: bool) -> Result<(), String> {
        self.control(&["-i", if on { "on" } else { "off" }])
    }

    /// `callgrind_control -z`: zeroes the counts.
    pub fn zero(&self) -> Result<(), String> {
        self.control(&["-z"])
    }

    /// `callgrind_control -d`: dumps the counts since the last dump (or zero) into the next
    /// `callgrind.out.<n>`, waits until it is complete, and returns its path.
    pub fn dump(&mut self) -> Result<PathBuf, String> {
        self.control(&["-d"])?;
        self.dumps += 1;
        let path = PathBuf::from(format!("{}.{}", self.out_base.display(), self.dumps));
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(text) = fs::read_to_string(&path) {
                if text.lines().any(|l| l.starts_with("totals:")) {
                    return Ok(path);
                }
            }
            if Instant::now() > deadline {
                return Err(format!("callgrind dump {} did not appear", path.display()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn control(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new(&self.tools.control)
            .args(args)
            .arg(self.pid().to_string())
            .output()
            .map_err(|e| format!("{}: {e}", self.tools.control.display()))?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !text.contains("OK") {
            return Err(format!(
                "`callgrind_control {} {}` failed: {}",
                args.join(" "),
                self.pid(),
                text.trim()
            ));
        }
        Ok(())
    }

    /// The last lines of Envoy's and valgrind's logs, for errors.
    pub fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["valgrind.log", "envoy.log", "stderr.txt", "stdout.txt"] {
            let text = fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines.get(lines.len().saturating_sub(15)..).unwrap_or(&[]);
            if !tail.is_empty() {
                out.push_str(&format!("--- {name} ---\n{}\n", tail.join("\n")));
            }
        }
        out
    }
}

impl Drop for CallgrindEnvoy {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn admin_get(admin: SocketAddr, path: &str) -> std::io::Result<Response> {
    let mut conn = Conn::try_open(admin)?;
    conn.set_timeout(Duration::from_secs(120));
    conn.try_send(&Request::get(path).header("connection", "close"))
}

fn parse_listeners(v: &Value) -> BTreeMap<String, SocketAddr> {
    let mut out = BTreeMap::new();
    let listeners = v.get("listener_statuses").and_then(Value::as_array);
    for l in listeners.into_iter().flatten() {
        let sa = l.get("local_address").and_then(|a| a.get("socket_address"));
        let (Some(name), Some(ip), Some(port)) = (
            l.get("name").and_then(Value::as_str),
            sa.and_then(|a| a.get("address")).and_then(Value::as_str),
            sa.and_then(|a| a.get("port_value")).and_then(Value::as_u64),
        ) else {
            continue;
        };
        if let Ok(addr) = format!("{ip}:{port}").parse() {
            out.insert(name.to_owned(), addr);
        }
    }
    out
}

/// The `totals:` of a callgrind dump: instructions executed (Ir) by every thread.
pub fn totals(dump: &Path) -> Result<u64, String> {
    let text =
        fs::read_to_string(dump).map_err(|e| format!("cannot read {}: {e}", dump.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{} has no totals: line", dump.display()))
}

/// One function of a dump.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnKey {
    /// The object file (`???` when valgrind has none for the code).
    pub object: String,
    /// The function (a hex address when valgrind has no symbol for it).
    pub function: String,
}

impl FnKey {
    /// The function's address, when it is named by one.
    pub fn address(&self) -> Option<u64> {
        let hex = self.function.strip_prefix("0x")?;
        u64::from_str_radix(hex, 16).ok()
    }
}

/// One line of `/proc/<pid>/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    /// The file, or empty for anonymous memory.
    pub path: String,
}

/// `/proc/<pid>/maps` (under valgrind: the guest's mappings and valgrind's own).
pub fn read_maps(pid: u32) -> Vec<Mapping> {
    let text = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (start, end) = parts.next()?.split_once('-')?;
            let _perms = parts.next()?;
            let offset = parts.next()?;
            let _dev = parts.next()?;
            let _inode = parts.next()?;
            let path = parts.collect::<Vec<_>>().join(" ");
            Some(Mapping {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
                path,
            })
        })
        .collect()
}

/// Says where a dump's function comes from and names what valgrind could not: the Envoy binary
/// is stripped, and valgrind attributes only its `.text` to it — tcmalloc's `google_malloc`
/// section (malloc, free, operator new/delete) shows up as `???` like generated code does. The
/// binary's load address (from `/proc/<pid>/maps`), its section table (`readelf -SW`) and its
/// exported symbols (`nm -DC`) sort that out.
///
/// callgrind names an unnamed function of an object by its address in the object's own address
/// space (the ELF's virtual address), and an unnamed function outside any object by its run-time
/// address.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    binary: String,
    /// Where the binary's virtual address 0 is mapped.
    base: Option<u64>,
    /// (start, end, name) of the binary's sections, at their ELF virtual addresses.
    sections: Vec<(u64, u64, String)>,
    /// Exported symbols at their ELF virtual addresses.
    symbols: HashMap<u64, String>,
    maps: Vec<Mapping>,
}

impl Resolver {
    /// For the Envoy binary `envoy` mapped as `maps` says.
    pub fn new(envoy: &Path, maps: &[Mapping]) -> Resolver {
        let binary = envoy
            .canonicalize()
            .unwrap_or_else(|_| envoy.to_path_buf())
            .to_string_lossy()
            .into_owned();
        let base = maps
            .iter()
            .find(|m| m.path == binary && m.offset == 0)
            .map(|m| m.start);
        let mut resolver = Resolver {
            binary: binary.clone(),
            base,
            maps: maps.to_vec(),
            ..Resolver::default()
        };
        if base.is_none() {
            return resolver;
        }
        let run = |tool: &str, args: &[&str]| {
            Command::new(tool)
                .args(args)
                .arg(&binary)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        for line in run("readelf", &["-SW"]).lines() {
            let Some((_, rest)) = line.split_once(']') else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(name), Some(addr), Some(size)) = (f.first(), f.get(2), f.get(4)) {
                if let (Ok(addr), Ok(size)) =
                    (u64::from_str_radix(addr, 16), u64::from_str_radix(size, 16))
                {
                    if addr > 0 {
                        resolver
                            .sections
                            .push((addr, addr + size, (*name).to_string()));
                    }
                }
            }
        }
        for line in run("nm", &["-DC", "--defined-only"]).lines() {
            let mut f = line.splitn(3, ' ');
            if let (Some(addr), Some(_kind), Some(name)) = (f.next(), f.next(), f.next()) {
                if let Ok(addr) = u64::from_str_radix(addr, 16) {
                    let name = name.trim();
                    // Prefer the plain name over glibc's aliases (`malloc`, not `__libc_malloc`).
                    let entry = resolver.symbols.entry(addr).or_default();
                    if entry.is_empty() || (entry.starts_with("__") && !name.starts_with("__")) {
                        *entry = name.to_string();
                    }
                }
            }
        }
        resolver
    }

    fn section(&self, addr: u64) -> Option<&str> {
        self.sections
            .iter()
            .find(|(start, end, _)| (*start..*end).contains(&addr))
            .map(|(_, _, name)| name.as_str())
    }

    fn in_binary(&self, addr: u64) -> bool {
        self.maps
            .iter()
            .any(|m| m.path == self.binary && (m.start..m.end).contains(&addr))
    }

    /// The binary's virtual address of `key`'s function, if it is in the binary.
    fn vaddr(&self, key: &FnKey) -> Option<u64> {
        let addr = key.address()?;
        if key.object == self.binary {
            return Some(addr);
        }
        if self.in_binary(addr) {
            return addr.checked_sub(self.base?);
        }
        None
    }

    /// `JIT` (generated code in anonymous memory: V8's wasm code and builtins it copied there,
    /// LuaJIT's traces), `tcmalloc` (the binary's `google_malloc` section), `envoy` (the rest of
    /// the binary), `libc`, or another object's file name.
    pub fn origin(&self, key: &FnKey) -> String {
        if key.object == "???" || key.object.is_empty() || key.object == self.binary {
            if let Some(vaddr) = self.vaddr(key) {
                return match self.section(vaddr) {
                    Some("google_malloc") | Some("malloc_hook") => "tcmalloc".to_string(),
                    _ => "envoy".to_string(),
                };
            }
            return if key.object == self.binary {
                "envoy".to_string()
            } else {
                "JIT".to_string()
            };
        }
        let file = Path::new(&key.object)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| key.object.clone());
        if file.starts_with("libc.so") {
            "libc".to_string()
        } else {
            file
        }
    }

    /// The function's name: valgrind's, else the binary's exported symbol at that address,
    /// else the address (with its section when it is not `.text`).
    pub fn label(&self, key: &FnKey) -> String {
        let Some(vaddr) = self.vaddr(key) else {
            return key.function.clone();
        };
        if let Some(name) = self.symbols.get(&vaddr) {
            return name.clone();
        }
        match self.section(vaddr) {
            Some(".text") | None => key.function.clone(),
            Some(section) => format!("{} [{section}]", key.function),
        }
    }
}

/// Self cost (Ir) per function of a callgrind dump (what `callgrind_annotate` sorts by), read
/// from the file: cost lines add to the current `ob=`/`fn=`; the cost line after a `calls=` line
/// is the call's inclusive cost and is skipped.
pub fn self_costs(dump: &Path) -> Result<HashMap<FnKey, u64>, String> {
    let text =
        fs::read_to_string(dump).map_err(|e| format!("cannot read {}: {e}", dump.display()))?;
    let mut positions = 1usize;
    let mut objects: HashMap<String, String> = HashMap::new();
    let mut functions: HashMap<String, String> = HashMap::new();
    let mut object = String::new();
    let mut function = String::new();
    let mut skip_next = false;
    let mut out: HashMap<FnKey, u64> = HashMap::new();
    // `(id) name` defines id; `(id)` refers to it; plain `name` (uncompressed) is the name.
    let resolve = |map: &mut HashMap<String, String>, spec: &str| -> String {
        let spec = spec.trim();
        if let Some(rest) = spec.strip_prefix('(') {
            if let Some((id, name)) = rest.split_once(')') {
                let name = name.trim();
                if name.is_empty() {
                    return map.get(id).cloned().unwrap_or_default();
                }
                map.insert(id.to_string(), name.to_string());
                return name.to_string();
            }
        }
        spec.to_string()
    };
    for line in text.lines() {
        let first = line.chars().next();
        match first {
            Some(c) if c.is_ascii_digit() || c == '+' || c == '-' || c == '*' => {
                if skip_next {
                    skip_next = false;
                    continue;
                }
                let ir = line
                    .split_whitespace()
                    .nth(positions)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if ir > 0 {
                    *out.entry(FnKey {
                        object: object.clone(),
                        function: function.clone(),
                    })
                    .or_default() += ir;
                }
            }
            _ => {
                if let Some(rest) = line.strip_prefix("positions:") {
                    positions = rest.split_whitespace().count().max(1);
                } else if let Some(rest) = line.strip_prefix("ob=") {
                    object = resolve(&mut objects, rest);
                } else if let Some(rest) = line.strip_prefix("fn=") {
                    function = resolve(&mut functions, rest);
                    // `name'2` is `name` one recursion level down: the same function.
                    if let Some((name, level)) = function.rsplit_once('\'') {
                        if !level.is_empty() && level.bytes().all(|b| b.is_ascii_digit()) {
                            function = name.to_string();
                        }
                    }
                } else if let Some(rest) = line.strip_prefix("cob=") {
                    resolve(&mut objects, rest);
                } else if let Some(rest) = line.strip_prefix("cfn=") {
                    resolve(&mut functions, rest);
                } else if line.starts_with("calls=") {
                    skip_next = true;
                }
            }
        }
    }
    Ok(out)
}

/// `callgrind_annotate <dump>`: its function lines (sorted by self Ir), the first `top`.
pub fn annotate(tools: &Tools, dump: &Path, top: usize) -> Result<Vec<String>, String> {
    let out = Command::new(&tools.annotate)
        .arg("--inclusive=no")
        .arg("--threshold=100")
        .arg(dump)
        .output()
        .map_err(|e| format!("{}: {e}", tools.annotate.display()))?;
    if !out.status.success() {
        return Err(format!(
            "callgrind_annotate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = Vec::new();
    let mut in_functions = false;
    for line in text.lines() {
        if line.contains("file:function") {
            in_functions = true;
            continue;
        }
        if !in_functions || line.starts_with("---") || line.trim().is_empty() {
            if in_functions && !lines.is_empty() && line.trim().is_empty() {
                break;
            }
            continue;
        }
        lines.push(line.to_string());
        if lines.len() >= top {
            break;
        }
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_costs_skip_call_costs_and_merge_recursion_levels() {
        let dump = "# callgrind format\nversion: 1\npositions: line\nevents: Ir\nsummary: 0\n\n\
                    ob=(1) /usr/lib/libc.so.6\nfl=(1) x.c\nfn=(1) memcpy\n10 5\n+1 7\n\n\
                    ob=(2)\nfn=(2) 0x0000000000001000\n0 100\ncob=(1)\ncfn=(1)\ncalls=3 0\n0 999\n\
                    -1 20\nfn=(3) 0x0000000000001000'2\n0 1\n\ntotals: 133\n";
        let path =
            std::env::temp_dir().join(format!("envoy-bench-test-{}.out", std::process::id()));
        fs::write(&path, dump).unwrap_or_default();
        let costs = self_costs(&path).unwrap_or_default();
        let total = totals(&path).unwrap_or(0);
        let _ = fs::remove_file(&path);
        let key = |o: &str, f: &str| FnKey {
            object: o.to_string(),
            function: f.to_string(),
        };
        assert_eq!(costs.get(&key("/usr/lib/libc.so.6", "memcpy")), Some(&12));
        assert_eq!(costs.get(&key("", "0x0000000000001000")), Some(&121));
        assert_eq!(costs.len(), 2);
        assert_eq!(total, 133);
        assert_eq!(key("", "0x0000000000001000").address(), Some(0x1000));
    }

    #[test]
    fn parses_proc_maps_lines() {
        let maps = read_maps(std::process::id());
        assert!(maps.iter().any(|m| m.end > m.start && !m.path.is_empty()));
    }
}
