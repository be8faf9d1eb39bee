//! The web page, for real: headless Chromium with a fake microphone playing jfk.wav
//! talks to the real server, and the page must show the JFK sentence.
//!
//! Drives `tests/browser/page.test.mjs` (playwright-core with the system Chromium; no
//! browser download). Needs `node`/`npm` and `chromium` (`apt-get install chromium`).
//! Screenshots land in tests/artifacts/.
//!
//!     cargo test --release --test browser -- --nocapture

mod common;

use std::path::Path;
use std::process::Command;

fn chromium_path() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_string())
}

fn run(command: &mut Command, what: &str) -> std::process::Output {
    command.output().unwrap_or_else(|e| {
        panic!("cannot run {what}: {e} (install Node.js 18+ with npm, e.g. `apt-get install nodejs npm`)")
    })
}

/// Installs playwright-core (from package-lock.json) unless it is already there.
fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return;
    }
    eprintln!("tests/browser/node_modules missing: running `npm ci`");
    let output = run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
        "npm",
    );
    assert!(
        output.status.success(),
        "`npm ci` in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_page_transcribes_a_fake_microphone() {
    let chromium = chromium_path();
    assert!(
        Path::new(&chromium).is_file(),
        "Chromium not found at {chromium}: `apt-get install chromium` (or set CHROMIUM to its path)"
    );
    let audio = common::shared_audio("jfk.wav");
    assert!(audio.is_file(), "test audio {} not found", audio.display());
    let dir = common::manifest_dir().join("tests/browser");
    ensure_node_modules(&dir);

    let server = common::TestServer::start(&[]);
    let url = format!("http://{}", server.addr);
    eprintln!("server at {url}; running node tests/browser/page.test.mjs");
    let output = run(
        Command::new("node")
            .arg(dir.join("page.test.mjs"))
            .current_dir(common::manifest_dir())
            .env("RESWHIS_URL", &url)
            .env("CHROMIUM", &chromium),
        "node",
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("--- page.test.mjs stdout ---\n{stdout}");
    println!("--- page.test.mjs stderr ---\n{stderr}");
    if !output.status.success() {
        println!("--- server log ---\n{}", server.log());
    }
    assert!(
        output.status.success(),
        "the browser test failed ({}): {}",
        output.status,
        stderr
            .lines()
            .find(|l| l.starts_with("FAIL"))
            .unwrap_or("see the output above")
    );
}
