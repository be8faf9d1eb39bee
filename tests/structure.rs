//! The shape of the code, checked so that it stays as README's Development section says:
//! the library's top-level modules depend on one another without a cycle (a module's
//! dependencies are the `crate::NAME` paths outside its comments and test modules), and
//! no source file grows past [`MAX_LINES`] lines (a file that long holds several concerns;
//! split it). Reads `src/` as text; needs no model.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The most lines a file under `src/` or `tests/` may have.
const MAX_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The code of a file without its comments and its `#[cfg(test)] mod tests { … }`
/// (which comes last in every file that has one).
fn code_of(text: &str) -> String {
    let text = text
        .split("#[cfg(test)]\nmod tests {")
        .next()
        .unwrap_or_default();
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules each `crate::NAME` path in `code` names.
fn dependencies(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            // use crate::{a::X, b, c::{…}}: the first segment of each top-level item.
            let mut items = vec![0];
            let mut depth = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        items.push(i);
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => items.push(i),
                    _ => {}
                }
            }
            items
                .windows(2)
                .filter_map(|w| {
                    group[w[0]..w[1]]
                        .trim_matches([',', ' ', '\n'])
                        .split("::")
                        .next()
                })
                .collect()
        } else {
            vec![rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .next()
                .unwrap_or("")]
        };
        found.extend(
            names
                .into_iter()
                .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
                .map(str::to_string),
        );
    }
    found
}

/// The library's module graph: each top-level module (a file `src/NAME.rs` or a
/// directory `src/NAME/`) and the other top-level modules its code uses.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.iter().next().unwrap().to_str().unwrap();
        let is_test = relative.file_name().is_some_and(|n| n == "tests.rs")
            || relative.iter().any(|part| part == "tests");
        if first == "bin" || first == "main.rs" || first == "lib.rs" || is_test {
            continue;
        }
        let module = first.trim_end_matches(".rs").to_string();
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let uses = dependencies(&code);
        graph.entry(module.clone()).or_default().extend(uses);
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    for (module, uses) in graph.iter_mut() {
        uses.retain(|m| m != module && modules.contains(m));
    }
    graph
}

/// A cycle in `graph`, as the list of modules around it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    // Depth-first search; `path` holds the modules being visited.
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in &graph[module] {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|module| visit(module, graph, &mut done, &mut Vec::new()))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = module_graph();
    for (module, uses) in &graph {
        println!(
            "{module} -> {}",
            Vec::from_iter(uses.iter().cloned()).join(" ")
        );
    }
    assert!(graph.len() >= 20, "{graph:?}");
    // The graph is what the code says: a few edges every reader can check.
    assert!(graph["pool"].contains("engine"));
    assert!(graph["server"].contains("pool"));
    assert!(graph["bench"].contains("info"));
    assert!(graph["audio"].is_empty());
    assert_eq!(find_cycle(&graph), None);
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
            graph.entry(to.to_string()).or_default();
        }
        graph
    };
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    assert_eq!(
        find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        dependencies("use crate::{audio::X, pool, vad::{a, b}};\nlet x = crate::metrics::Y;"),
        BTreeSet::from(["audio", "metrics", "pool", "vad"].map(String::from))
    );
}

#[test]
fn no_source_file_is_too_long() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("tests"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "node_modules"))
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines (split them by concern): {long:?}"
    );
}
