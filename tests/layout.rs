//! The architecture, checked: the core never reaches the host (no `proxy_wasm`, no adapter
//! module), and the plugin (`src/`) has no import cycle between its modules (see
//! docs/architecture.md).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bin") {
                out.extend(sources(&path));
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// `core/auth.rs` → `core::auth`; `core/mod.rs` → `core`; `lib.rs` → `` (the crate root).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its `#[cfg(test)]` tail (test modules may import anything).
fn non_test_code(text: &str) -> &str {
    text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text)
}

/// Paths a file imports from its own crate: `crate::a::b` and `super::x`, resolved to modules.
fn imports(module: &str, text: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
    let mut out = BTreeSet::new();
    for line in non_test_code(text).lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        for (prefix, base) in [("crate::", ""), ("super::", parent)] {
            for (index, _) in line.match_indices(prefix) {
                let rest = line.get(index + prefix.len()..).unwrap_or_default();
                let path: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut candidate = base.to_string();
                let mut found = None;
                for segment in path.split("::").filter(|s| !s.is_empty()) {
                    if !candidate.is_empty() {
                        candidate.push_str("::");
                    }
                    candidate.push_str(segment);
                    if modules.contains(&candidate) {
                        found = Some(candidate.clone());
                    }
                }
                if let Some(target) = found {
                    if target != module && !module.starts_with(&format!("{target}::")) {
                        out.insert(target);
                    }
                }
            }
        }
    }
    out
}

/// The module graph of a crate's `src` directory.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = sources(src);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    files
        .iter()
        .map(|file| {
            let module = module_of(src, file);
            let text = fs::read_to_string(file).unwrap();
            let edges = imports(&module, &text, &modules);
            (module, edges)
        })
        .collect()
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            for next in self.graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.to_string());
                    if top == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !walk.index.contains_key(node.as_str()) {
            walk.visit(node);
        }
    }
    walk.found
}

#[test]
fn the_core_never_reaches_the_host() {
    let core = root().join("src/core");
    for file in sources(&core) {
        let text = fs::read_to_string(&file).unwrap();
        for forbidden in ["proxy_wasm", "crate::proxy", "hostio"] {
            assert!(
                !text.contains(forbidden),
                "{} names `{forbidden}`: the core decides, the adapter makes hostcalls",
                file.display()
            );
        }
    }
}

#[test]
fn the_plugin_has_no_import_cycle() {
    let graph = graph(&root().join("src"));
    assert!(graph.contains_key("core::auth") && graph["proxy::filter"].contains("core::auth"));
    assert_eq!(cycles(&graph), Vec::<Vec<String>>::new());
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(cycles(&graph), vec![vec!["a", "b", "c"]]);
}

#[test]
fn unsafe_code_lives_in_the_one_hostcall_module() {
    let imports = root().join("src/proxy/imports.rs");
    for file in sources(&root().join("src")) {
        let text = fs::read_to_string(&file).unwrap();
        for forbidden in ["no_mangle", "no_std", "global_allocator", "panic_handler"] {
            assert!(
                !text.contains(&format!("#[{forbidden}"))
                    && !text.contains(&format!("#![{forbidden}")),
                "{} uses `{forbidden}`: the SDK owns the exports, std the allocator",
                file.display()
            );
        }
        let has_unsafe = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .any(|line| {
                line.contains("unsafe {")
                    || line.contains("unsafe fn")
                    || line.contains("unsafe impl")
            });
        assert!(
            !has_unsafe || file == imports,
            "{} has `unsafe`: only src/proxy/imports.rs may",
            file.display()
        );
    }
}
