//! End-to-end CPU benchmark: our `totalseg --fast` against the official `TotalSegmentator --fast`,
//! same machine, same run, same input, same (synthetic) model at the real widths.
//!
//! The model is dataset 297 (`total --fast`, 3 mm) in the official nnU-Net layout at the released
//! architecture (PlainConvUNet, 5 stages, 32-64-128-256-320 features, patch 112x112x128,
//! 118 outputs) with seeded torch default-init weights, written once into `<work>/weights` by
//! `tools/bench/make_fullwidth_model.py`. Both tools read the same `checkpoint_final.pth`
//! (ours converts it at start-up: a fresh `TOTALSEG_HOME_DIR` per run, so that is timed too).
//!
//! Each run is wrapped in `/usr/bin/time -f "%e %M"` (wall seconds, peak RSS in KiB of the
//! process tree's largest member). Printed: every wall time and peak RSS, the best of
//! `--repeats`, the ratio official/ours, and the Dice per class of our multilabel output against
//! the official one (mean and worst over the classes present in either). Usage:
//!
//! ```text
//! cargo run --release -p totalseg-benches --bin fast_vs_official -- \
//!     [--totalseg target/release/totalseg] [--work /tmp/totalseg-bench] \
//!     [--input ../shared/data/totalseg-examples/example_ct.nii.gz] [--repeats 1] [--no-official]
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use totalseg_benches::{dice_per_class, print_dice};

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

const DATASET_297: &str = "Dataset297_TotalSegmentator_total_3mm_1559subj";
const MODEL_DIR_297: &str = "nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres";

/// Command-line options of the bench.
struct Options {
    totalseg: PathBuf,
    work: PathBuf,
    input: PathBuf,
    repeats: usize,
    run_official: bool,
}

impl Options {
    fn parse(args: &[String]) -> BenchResult<Self> {
        let value = |flag: &str| -> Option<String> {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1))
                .cloned()
        };
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        Ok(Self {
            totalseg: value("--totalseg")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("target/release/totalseg")),
            work: value("--work")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/tmp/totalseg-bench")),
            input: value("--input")
                .map(PathBuf::from)
                .unwrap_or_else(|| repo.join("../shared/data/totalseg-examples/example_ct.nii.gz")),
            repeats: value("--repeats")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or(1),
            run_official: !args.iter().any(|a| a == "--no-official"),
        })
    }
}

/// Wall time and peak resident memory of one process run.
#[derive(Clone, Copy, Debug)]
struct RunCost {
    wall_s: f64,
    peak_rss_mib: f64,
}

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = Options::parse(&args)?;
    if opts.repeats == 0 {
        return Err("--repeats must be at least 1".into());
    }
    let totalseg = fs::canonicalize(&opts.totalseg)
        .map_err(|e| format!("our binary {}: {e}", opts.totalseg.display()))?;
    let input = fs::canonicalize(&opts.input)
        .map_err(|e| format!("input {}: {e}", opts.input.display()))?;
    fs::create_dir_all(&opts.work)?;
    let work = fs::canonicalize(&opts.work)?;
    let weights = ensure_model(&work)?;

    let official = opts.run_official && official_available();
    if opts.run_official && !official {
        println!("official side SKIPPED: `python3 -c \"import totalsegmentator\"` failed");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rayon_threads = std::env::var("RAYON_NUM_THREADS").ok();
    println!("input: {}", input.display());
    println!("weights: {}", weights.display());
    println!(
        "threads: ours = rayon, {} (available_parallelism {cores}{}); official = torch.set_num_threads(cpu_count) = {}",
        rayon_threads.as_deref().unwrap_or("all cores"),
        rayon_threads
            .as_ref()
            .map_or(String::new(), |_| ", RAYON_NUM_THREADS set".into()),
        if official {
            python_cpu_count().unwrap_or_else(|| "?".into())
        } else {
            "-".into()
        }
    );

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let ours_out = work.join("ours.nii.gz");
    let official_out = work.join("official.nii.gz");
    for repeat in 0..opts.repeats {
        let cost = run_ours(&totalseg, &input, &weights, &work, &ours_out)?;
        println!("repeat {repeat}: ours     {}", describe(cost));
        ours.push(cost);
        if official {
            let cost = run_official(&input, &weights, &work, &official_out)?;
            println!("repeat {repeat}: official {}", describe(cost));
            theirs.push(cost);
        }
    }

    println!(
        "\n=== total --fast --ml -d cpu, {} repeat(s) ===",
        opts.repeats
    );
    let best_ours = best(&ours);
    println!(
        "ours     best {}  all {:?}",
        describe(best_ours),
        walls(&ours)
    );
    if let Some(best_theirs) = (!theirs.is_empty()).then(|| best(&theirs)) {
        println!(
            "official best {}  all {:?}",
            describe(best_theirs),
            walls(&theirs)
        );
        println!(
            "ratio official/ours: wall {:.2}x, peak RSS {:.2}x",
            best_theirs.wall_s / best_ours.wall_s,
            best_theirs.peak_rss_mib / best_ours.peak_rss_mib
        );
        let dice = dice_per_class(&ours_out, &official_out)?;
        print_dice(&dice);
    }
    println!("load average now: {}", load_average());
    Ok(())
}

/// Writes the full-width synthetic 297 model once; returns the weights folder.
fn ensure_model(work: &Path) -> BenchResult<PathBuf> {
    let weights = work.join("weights");
    let checkpoint = weights
        .join(DATASET_297)
        .join(MODEL_DIR_297)
        .join("fold_0/checkpoint_final.pth");
    if checkpoint.is_file() {
        return Ok(weights);
    }
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/bench/make_fullwidth_model.py");
    println!(
        "writing the full-width model into {} ...",
        weights.display()
    );
    let status = Command::new("python3")
        .arg(&script)
        .arg(&weights)
        .status()?;
    if !status.success() || !checkpoint.is_file() {
        return Err(format!("{} failed ({status})", script.display()).into());
    }
    Ok(weights)
}

fn official_available() -> bool {
    Command::new("python3")
        .args(["-c", "import totalsegmentator"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn python_cpu_count() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import multiprocessing; print(multiprocessing.cpu_count())",
        ])
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A fresh, empty folder under `work` (removed first if a previous run left it).
fn fresh_dir(work: &Path, name: &str) -> BenchResult<PathBuf> {
    let dir = work.join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn run_ours(
    totalseg: &Path,
    input: &Path,
    weights: &Path,
    work: &Path,
    out: &Path,
) -> BenchResult<RunCost> {
    let home = fresh_dir(work, "home-ours")?;
    let mut cmd = Command::new(totalseg);
    cmd.arg("-i")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args([
            "--fast",
            "--ml",
            "-d",
            "cpu",
            "--offline",
            "-q",
            "--weights-dir",
        ])
        .arg(weights)
        .env("TOTALSEG_HOME_DIR", &home)
        .env_remove("TOTALSEG_WEIGHTS_PATH");
    timed(cmd, &work.join("ours.log"))
}

fn run_official(input: &Path, weights: &Path, work: &Path, out: &Path) -> BenchResult<RunCost> {
    let home = fresh_dir(work, "home-official")?;
    // No usage-statistics POST (it would time the network), disclaimer already shown.
    fs::write(
        home.join("config.json"),
        r#"{"totalseg_id": "totalseg_BENCH", "send_usage_stats": false, "prediction_counter": 0, "statistics_disclaimer_shown": true}"#,
    )?;
    let mut cmd = Command::new("TotalSegmentator");
    cmd.arg("-i")
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--fast", "--ml", "-d", "cpu"])
        .env("TOTALSEG_HOME_DIR", &home)
        .env("TOTALSEG_WEIGHTS_PATH", weights);
    timed(cmd, &work.join("official.log"))
}

/// Runs `cmd` under `/usr/bin/time -f "%e %M"`; its output goes to `log`.
fn timed(cmd: Command, log: &Path) -> BenchResult<RunCost> {
    let time_file = log.with_extension("time");
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .args(["-f", "%e %M", "-o"])
        .arg(&time_file)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    let log_file = fs::File::create(log)?;
    let status = wrapped
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .status()?;
    if !status.success() {
        return Err(format!(
            "{:?} failed ({status}), see {}",
            cmd.get_program(),
            log.display()
        )
        .into());
    }
    parse_time_output(&fs::read_to_string(&time_file)?)
        .ok_or_else(|| format!("unexpected /usr/bin/time output in {}", time_file.display()).into())
}

/// Parses the last line of `/usr/bin/time -f "%e %M"`: wall seconds, peak RSS in KiB.
fn parse_time_output(text: &str) -> Option<RunCost> {
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let mut fields = line.split_whitespace();
    let wall_s = fields.next()?.parse().ok()?;
    let peak_kib: f64 = fields.next()?.parse().ok()?;
    Some(RunCost {
        wall_s,
        peak_rss_mib: peak_kib / 1024.0,
    })
}

fn best(costs: &[RunCost]) -> RunCost {
    let mut best = costs[0];
    for c in costs {
        if c.wall_s < best.wall_s {
            best = *c;
        }
    }
    best
}

fn walls(costs: &[RunCost]) -> Vec<f64> {
    costs.iter().map(|c| c.wall_s).collect()
}

fn describe(cost: RunCost) -> String {
    format!(
        "wall {:.1} s, peak RSS {:.0} MiB",
        cost.wall_s, cost.peak_rss_mib
    )
}

fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_gnu_time_line_after_program_output() {
        let cost = parse_time_output("Command exited\n12.34 204800\n").expect("parsed");
        assert!((cost.wall_s - 12.34).abs() < 1e-12);
        assert!((cost.peak_rss_mib - 200.0).abs() < 1e-12);
        assert!(parse_time_output("garbage").is_none());
    }

    #[test]
    fn best_is_fastest_wall() {
        let runs = [
            RunCost {
                wall_s: 3.0,
                peak_rss_mib: 1.0,
            },
            RunCost {
                wall_s: 2.0,
                peak_rss_mib: 5.0,
            },
        ];
        assert_eq!(best(&runs).wall_s, 2.0);
        assert_eq!(best(&runs).peak_rss_mib, 5.0);
    }
}
