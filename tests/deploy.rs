//! The deployment files parse and say what README promises: the Kubernetes manifests
//! (probes on /ready and /health, a grace period longer than the shutdown timeout, a
//! Service without affinity), the systemd unit (SIGTERM, restart on failure, hardening)
//! and the balancer's nginx config (`nginx -t`, when nginx is installed).

mod common;

use std::process::Command;

use common::manifest_dir;
use yaml_rust2::{Yaml, YamlLoader};

fn read(path: &str) -> String {
    std::fs::read_to_string(manifest_dir().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn get<'a>(yaml: &'a Yaml, path: &[&str]) -> &'a Yaml {
    path.iter().fold(yaml, |node, key| &node[*key])
}

#[test]
fn kubernetes_manifests_parse_with_probes_and_a_service() {
    let docs = YamlLoader::load_from_str(&read("deploy/kubernetes.yaml")).expect("valid YAML");
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Deployment", "Deployment", "Service"]);
    for deployment in &docs[..2] {
        let spec = get(deployment, &["spec", "template", "spec"]);
        let container = &spec["containers"][0];
        let probe = |kind: &str| {
            get(container, &[kind, "httpGet", "path"])
                .as_str()
                .unwrap_or_else(|| panic!("{kind} missing"))
                .to_string()
        };
        assert_eq!(probe("readinessProbe"), "/ready");
        assert_eq!(probe("livenessProbe"), "/health");
        let grace = spec["terminationGracePeriodSeconds"].as_i64().unwrap();
        let shutdown = container["env"]
            .as_vec()
            .unwrap()
            .iter()
            .find(|e| e["name"].as_str() == Some("SHUTDOWN_TIMEOUT"))
            .map_or(5, |e| e["value"].as_str().unwrap().parse::<i64>().unwrap());
        assert!(
            grace > shutdown + 3,
            "grace period {grace} s, shutdown {shutdown} s"
        );
    }
    let gpu = &docs[1];
    assert_eq!(gpu["spec"]["replicas"].as_i64(), Some(0));
    let limits =
        get(gpu, &["spec", "template", "spec", "containers"])[0]["resources"]["limits"].clone();
    assert_eq!(limits["nvidia.com/gpu"].as_i64(), Some(1));
    let service = &docs[2];
    assert_eq!(service["spec"]["sessionAffinity"].as_str(), Some("None"));
    assert_eq!(
        service["spec"]["selector"]["app.kubernetes.io/name"].as_str(),
        Some("reswhis")
    );
}

#[test]
fn the_systemd_unit_stops_with_sigterm_and_restarts_on_failure() {
    let unit = read("deploy/reswhis.service");
    let settings: Vec<(&str, &str)> = unit
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect();
    let value = |key: &str| settings.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    assert_eq!(value("KillSignal"), Some("SIGTERM"));
    assert_eq!(value("Restart"), Some("on-failure"));
    assert_eq!(value("NoNewPrivileges"), Some("yes"));
    assert_eq!(value("ProtectSystem"), Some("strict"));
    assert!(value("ExecStart").is_some_and(|e| e.contains("reswhis")));
    let stop: u64 = value("TimeoutStopSec").unwrap().parse().unwrap();
    let shutdown: u64 = settings
        .iter()
        .find_map(|(k, v)| {
            (*k == "Environment")
                .then_some(v)?
                .strip_prefix("SHUTDOWN_TIMEOUT=")
        })
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        stop > shutdown + 3,
        "TimeoutStopSec {stop} vs SHUTDOWN_TIMEOUT {shutdown}"
    );
}

#[test]
fn the_balancer_config_passes_nginx_t() {
    let nginx = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/sbin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    let Some(nginx) = nginx else {
        println!("nginx not installed: skipping `nginx -t`");
        return;
    };
    let prefix = std::env::temp_dir().join(format!("reswhis-nginx-t-{}", std::process::id()));
    std::fs::create_dir_all(&prefix).unwrap();
    let output = Command::new(nginx)
        .arg("-p")
        .arg(&prefix)
        .arg("-c")
        .arg(manifest_dir().join("deploy/nginx-balanced.conf"))
        .arg("-t")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&prefix);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "nginx -t failed:\n{log}");
    assert!(log.contains("syntax is ok"), "{log}");
}
