//! A test of the tree's shape: no module imports one that imports it back, directly or
//! through others. Read from the sources (`use crate::...` and `super::` paths outside test
//! code), since rustc accepts circles that make a module impossible to understand alone.

use std::collections::{BTreeMap, BTreeSet};

use camino::{Utf8Path, Utf8PathBuf};

/// Every module of `src`, by path (`release::rpm_repo`), with its source file.
fn modules(src: &Utf8Path) -> BTreeMap<String, Utf8PathBuf> {
    let mut found = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in folder.read_dir_utf8().unwrap() {
            let path = entry.unwrap().path().to_path_buf();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension() == Some("rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut parts: Vec<&str> = relative.components().map(|c| c.as_str()).collect();
                if matches!(parts.last(), Some(&"mod") | Some(&"main")) {
                    parts.pop();
                }
                found.insert(parts.join("::"), path);
            }
        }
    }
    found
}

/// The modules `name` imports: the longest module path each `crate::` or `super::` path
/// names. A child's own declaration (`mod x;`) is no import.
fn imports(name: &str, source: &str, modules: &BTreeMap<String, Utf8PathBuf>) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or("");
    let parent: Vec<&str> =
        name.split("::").collect::<Vec<_>>().split_last().map(|(_, p)| p.to_vec()).unwrap_or_default();
    let mut found = BTreeSet::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            let path: Vec<&str> = rest
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let full: Vec<&str> = base.iter().copied().chain(path).collect();
            if let Some(module) =
                (1..=full.len()).rev().map(|k| full[..k].join("::")).find(|m| modules.contains_key(m))
            {
                if module != name {
                    found.insert(module);
                }
            }
        }
    }
    found
}

/// A circle in `graph`, if there is one: the modules on it, in import order.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut circle = path[start..].to_vec();
            circle.push(module.to_string());
            return Some(circle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in graph.get(module).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|module| visit(module, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Utf8Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    assert!(modules.contains_key("net::registry") && modules.contains_key(""), "{:?}", modules.keys());
    let graph: BTreeMap<String, BTreeSet<String>> = modules
        .iter()
        .map(|(name, path)| (name.clone(), imports(name, &std::fs::read_to_string(path).unwrap(), &modules)))
        .collect();
    assert!(graph["net::registry"].contains("net::credentials"), "the scan misses imports");
    if let Some(circle) = find_circle(&graph) {
        panic!("an import circle: {}", circle.join(" -> "));
    }
}

#[test]
fn a_circle_is_found_and_named() {
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
            .into_iter()
            .map(|(m, deps)| (m.to_string(), deps.into_iter().map(str::to_string).collect()))
            .collect();
    assert_eq!(find_circle(&graph).unwrap(), ["a", "b", "c", "a"]);
    let mut acyclic = graph.clone();
    acyclic.get_mut("c").unwrap().clear();
    assert_eq!(find_circle(&acyclic), None);
}
