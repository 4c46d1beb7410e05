//! A scenario file runs like the equivalent flags (later flags override its keys), and
//! `compare` overlays two results in one table and one plot.

mod common;
use common::*;

#[test]
fn scenario_runs_with_overrides_and_compare_renders() {
    let server = HttpServer::start(HttpOpts::default());
    let dir = out_dir("scenario");
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("get.toml");
    std::fs::write(
        &scenario,
        "mode = \"http\"\nname = \"get-fixed\"\ndescription = \"fixed GET\"\nurl = \"http://127.0.0.1:1\"\npath = \"/x\"\nconnections = 2\nduration = \"300ms\"\nwarmup = \"0s\"\nquiet = true\n",
    )
    .unwrap();
    let (a, b) = (dir.join("a"), dir.join("b"));
    for (out, rate) in [(&a, "max"), (&b, "500")] {
        let o = loadgen(&[
            "run",
            scenario.to_str().unwrap(),
            "--url",
            &server.url(),
            "--rate",
            rate,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let r = result(&a);
    assert_eq!(r["name"], "get-fixed");
    assert!(r["scenario_file"].as_str().unwrap().ends_with("get.toml"));
    assert!(r["effective_args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "/x"));
    assert_eq!(result(&b)["mode"], "open-loop");
    let cmp = dir.join("cmp");
    let o = loadgen(&[
        "compare",
        a.join("result.json").to_str().unwrap(),
        b.join("result.json").to_str().unwrap(),
        "--labels",
        "closed,open",
        "--out",
        cmp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("| closed |") && md.contains("| open |"), "{md}");
    assert_eq!(
        std::fs::read_to_string(cmp.join("compare.svg"))
            .unwrap()
            .matches("<polyline")
            .count(),
        2
    );
}
