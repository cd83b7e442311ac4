//! The HTML report in a real browser: Debian's `chromium`, headless, renders the report of the
//! shipped runbook's rehearsal (`docs/report/journal.json`, a real run's journal), runs a
//! script through the page's DOM that finds every pair of text labels drawn over each other
//! and every script error, and takes the screenshots the README shows (`docs/report.png`, the
//! top of the page, and `docs/report-timeline.png`, Phase 3's section; written there
//! with `REPORT_SCREENSHOT=update`). Where `chromium` is not installed the test says
//! so and passes without checking anything.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Appended to the report: records script errors, then, once the page is laid out, every pair
/// of `<text>` labels in one SVG whose boxes intersect, into `#layout-check` as JSON.
const CHECK: &str = r#"<pre id="layout-check"></pre><script>
window.__errors = window.__errors || [];
window.addEventListener('error', e => window.__errors.push(String(e.message)));
(function () {
  const overlaps = [];
  document.querySelectorAll('svg').forEach((svg, n) => {
    const boxes = Array.from(svg.querySelectorAll('text'))
      .map(t => ({ text: t.textContent, r: t.getBoundingClientRect() }))
      .filter(b => b.r.width > 0 && b.r.height > 0);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i].r, b = boxes[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 1 && h > 1) overlaps.push('svg ' + n + ': "' + boxes[i].text + '" over "' + boxes[j].text + '"');
      }
    }
  });
  document.getElementById('layout-check').textContent =
    JSON.stringify({ svgs: document.querySelectorAll('svg').length, overlaps: overlaps, errors: window.__errors });
})();
</script>"#;

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

#[test]
fn the_shipped_runbooks_report_draws_no_label_over_another_and_runs_without_a_script_error() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: Debian's `chromium` is not installed (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = workspace().join("docs/report");
    let out = dir.path().join("report");
    let run = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "render"])
        .arg(&journal)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "report render: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    let checked = dir.path().join("checked.html");
    std::fs::write(
        &checked,
        html.replace("</body>", &format!("{CHECK}</body>")),
    )
    .unwrap();
    let dom = headless_at(
        browser,
        dir.path(),
        &checked,
        &["--dump-dom", "--virtual-time-budget=2000"],
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let json = dom
        .split("<pre id=\"layout-check\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the check script did not run: {dom}"))
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let layout: serde_json::Value = serde_json::from_str(&json).unwrap();
    let list = |key: &str| -> Vec<String> {
        layout[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert!(layout["svgs"].as_u64() > Some(0), "no timeline drawn");
    assert_eq!(list("errors"), Vec::<String>::new(), "script errors");
    assert_eq!(
        list("overlaps"),
        Vec::<String>::new(),
        "labels drawn over each other"
    );

    // The page as a reader sees its top (the summary, the findings), and one scenario's section
    // alone, Phase 3's (its timeline: flows, steps, containers restarted, Telegram's backlog and
    // delay, and the rollback's).
    let first = dir.path().join("first.html");
    std::fs::write(
        &first,
        html.replace(
            "</head>",
            "<style>body > *:not(section[id=\"phase3/as-written\"]){display:none}</style></head>",
        ),
    )
    .unwrap();
    for (page, name, height) in [
        (&checked, "report.png", "2200"),
        (&first, "report-timeline.png", "1100"),
    ] {
        let png = dir.path().join(name);
        let shot = headless_at(
            browser,
            dir.path(),
            page,
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size=1000,{height}"),
            ],
        );
        assert!(
            png.exists(),
            "no screenshot: {}",
            String::from_utf8_lossy(&shot.stderr)
        );
        let docs = workspace().join("docs").join(name);
        if std::env::var("REPORT_SCREENSHOT").as_deref() == Ok("update") {
            std::fs::copy(&png, &docs).unwrap();
        }
        assert!(
            docs.exists(),
            "docs/{name}: run with REPORT_SCREENSHOT=update"
        );
    }
}

/// `browser`, headless, on `page`, with `extra` arguments and a profile under `dir`.
fn headless_at(browser: &str, dir: &Path, page: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}
