//! Every layer shape of the TotalSegmentator 1.5 mm network at one patch size, ours (the
//! `NetworkOps` of the CPU backend) against PyTorch CPU (`torch.set_num_threads` = ours),
//! timed in the same run: 3x3x3 convolutions (strided and not), the transposed convolutions,
//! InstanceNorm + LeakyReLU and the 1x1x1 head.
//!
//! `cargo bench -p totalseg-nn --bench layers_vs_torch -- [--patch 128] [--repeats 3]`
//!
//! Prints ms per call, GFLOP/s (or GB/s moved for the norms) and ours/torch time per shape.
//! The PyTorch side is skipped when `python3 -c "import torch"` fails.

use std::process::Command;
use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use burn_flex::{Flex, FlexDevice};
use totalseg_nn::{ConvParams, NetworkOps, NormParams};

/// One benchmarked layer: kind, in channels, out channels, input side, stride.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Layer {
    kind: Kind,
    cin: usize,
    cout: usize,
    side: usize,
    stride: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Conv3,
    Conv1,
    ConvTranspose,
    NormLeakyRelu,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Conv3 => "conv3",
            Kind::Conv1 => "conv1",
            Kind::ConvTranspose => "tconv",
            Kind::NormLeakyRelu => "norm+lrelu",
        }
    }
}

impl Layer {
    fn out_side(&self) -> usize {
        match self.kind {
            Kind::ConvTranspose => self.side * self.stride,
            _ => self.side.div_ceil(self.stride),
        }
    }

    /// Multiply-adds x 2, or for the norm the bytes read and written (two reads, one write).
    fn work(&self) -> f64 {
        let out = self.out_side().pow(3) as f64;
        match self.kind {
            Kind::Conv3 => 2.0 * out * 27.0 * (self.cin * self.cout) as f64,
            Kind::Conv1 => 2.0 * out * (self.cin * self.cout) as f64,
            Kind::ConvTranspose => {
                2.0 * (self.side.pow(3) * self.cin * self.cout * self.stride.pow(3)) as f64
            }
            Kind::NormLeakyRelu => 3.0 * 4.0 * out * self.cin as f64,
        }
    }
}

/// The distinct layers of PlainConvUNet 32-64-128-256-320-320, strides 1-2-2-2-2-2, 2 convs
/// per stage, 25 classes (one `total` part), at patch `p`; with how often each occurs.
fn network_layers(p: usize) -> Vec<(Layer, usize)> {
    use Kind::{Conv1, Conv3, ConvTranspose, NormLeakyRelu};
    let features = [32, 64, 128, 256, 320, 320];
    let mut layers: Vec<(Layer, usize)> = Vec::new();
    let mut add = |kind, cin, cout, side, stride| {
        let layer = Layer {
            kind,
            cin,
            cout,
            side,
            stride,
        };
        match layers.iter_mut().find(|(l, _)| *l == layer) {
            Some((_, count)) => *count += 1,
            None => layers.push((layer, 1)),
        }
    };
    let mut side = p;
    let mut cin = 1;
    for (s, &f) in features.iter().enumerate() {
        let stride = if s == 0 { 1 } else { 2 };
        add(Conv3, cin, f, side, stride);
        side /= stride;
        add(Conv3, f, f, side, 1);
        // One InstanceNorm + LeakyReLU after each of the two convolutions.
        add(NormLeakyRelu, f, f, side, 1);
        add(NormLeakyRelu, f, f, side, 1);
        cin = f;
    }
    for s in (0..features.len() - 1).rev() {
        let (below, level) = (features[s + 1], features[s]);
        add(ConvTranspose, below, level, side, 2);
        side *= 2;
        add(Conv3, 2 * level, level, side, 1);
        add(Conv3, level, level, side, 1);
        add(NormLeakyRelu, level, level, side, 1);
        add(NormLeakyRelu, level, level, side, 1);
    }
    add(Conv1, features[0], 25, side, 1);
    layers
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<Flex, D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &FlexDevice)
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` (10 ms ticks); 0 where that file does not exist.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name: utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Wall and CPU seconds per call.
#[derive(Clone, Copy)]
struct Timing {
    wall: f64,
    cpu: f64,
}

/// Seconds per call of our implementation of `layer`.
fn ours(layer: &Layer, repeats: usize) -> Timing {
    let s = layer.side;
    let x = random([1, layer.cin, s, s, s]);
    let run: Box<dyn Fn()> = match layer.kind {
        Kind::Conv3 | Kind::Conv1 => {
            let k = if layer.kind == Kind::Conv3 { 3 } else { 1 };
            // Packed once, as the model's layers are at load time.
            let mut params = ConvParams {
                packed: None,
                weight: random([layer.cout, layer.cin, k, k, k]),
                bias: Some(random([layer.cout])),
            };
            params.packed = Flex::unet_pack_conv3d(&params);
            let stride = [layer.stride; 3];
            let padding = [(k - 1) / 2; 3];
            Box::new(move || {
                Flex::unet_conv3d(x.clone(), &params, stride, padding).into_data();
            })
        }
        Kind::ConvTranspose => {
            let st = layer.stride;
            let params = ConvParams {
                packed: None,
                weight: random([layer.cin, layer.cout, st, st, st]),
                bias: Some(random([layer.cout])),
            };
            Box::new(move || {
                Flex::unet_conv_transpose3d(x.clone(), &params, [st; 3]).into_data();
            })
        }
        Kind::NormLeakyRelu => {
            let norm = NormParams {
                affine: Some((random([layer.cin]), random([layer.cin]))),
                eps: 1e-5,
            };
            Box::new(move || {
                Flex::unet_instance_norm(x.clone(), &norm, Some(0.01)).into_data();
            })
        }
    };
    run();
    let start = Instant::now();
    let cpu = cpu_seconds();
    for _ in 0..repeats {
        run();
    }
    Timing {
        wall: start.elapsed().as_secs_f64() / repeats as f64,
        cpu: (cpu_seconds() - cpu) / repeats as f64,
    }
}

const TORCH_SCRIPT: &str = r#"
import sys, time, torch
import torch.nn.functional as F
repeats, threads = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
for line in sys.stdin:
    kind, cin, cout, side, stride = line.split()
    cin, cout, side, stride = int(cin), int(cout), int(side), int(stride)
    x = torch.randn(1, cin, side, side, side)
    if kind in ("conv3", "conv1"):
        k = 3 if kind == "conv3" else 1
        w, b = torch.randn(cout, cin, k, k, k), torch.randn(cout)
        f = lambda: F.conv3d(x, w, b, stride=stride, padding=(k - 1) // 2)
    elif kind == "tconv":
        w, b = torch.randn(cin, cout, stride, stride, stride), torch.randn(cout)
        f = lambda: F.conv_transpose3d(x, w, b, stride=stride)
    else:
        w, b = torch.randn(cin), torch.randn(cin)
        f = lambda: F.leaky_relu(F.instance_norm(x, weight=w, bias=b, eps=1e-5), 0.01)
    with torch.no_grad():
        f()
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            f()
        print((time.perf_counter() - start) / repeats, (time.process_time() - cpu) / repeats, flush=True)
"#;

/// Seconds per call of PyTorch for each layer, or `None` without torch.
fn torch(layers: &[Layer], repeats: usize, threads: usize) -> Option<Vec<Timing>> {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args([
            "-c",
            TORCH_SCRIPT,
            &repeats.to_string(),
            &threads.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    for l in layers {
        writeln!(
            stdin,
            "{} {} {} {} {}",
            l.kind.name(),
            l.cin,
            l.cout,
            l.side,
            l.stride
        )
        .ok()?;
    }
    drop(stdin);
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        println!("pytorch: failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let mut v = l.split_whitespace().map(|x| x.parse::<f64>().ok());
            Some(Timing {
                wall: v.next()??,
                cpu: v.next()??,
            })
        })
        .collect()
}

fn main() {
    let mut patch = 128;
    let mut repeats = 3;
    let mut threads = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--patch" | "--repeats" | "--threads" => {
                let Some(value) = args.next().and_then(|v| v.parse().ok()) else {
                    eprintln!("{arg} needs a number");
                    std::process::exit(2);
                };
                match arg.as_str() {
                    "--patch" => patch = value,
                    "--repeats" => repeats = value,
                    _ => threads = value,
                }
            }
            _ => {}
        }
    }
    if threads > 0 {
        // Our kernels run on rayon's global pool; size it like PyTorch's.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    }
    let threads = rayon::current_num_threads();
    Flex::seed(&FlexDevice, 1);
    let layers = network_layers(patch);
    let shapes: Vec<Layer> = layers.iter().map(|(l, _)| *l).collect();
    let ours_t: Vec<Timing> = shapes.iter().map(|l| ours(l, repeats)).collect();
    let torch_t = torch(&shapes, repeats, threads);
    println!(
        "patch {patch}^3, {threads} threads both, {repeats} repeats; rate = GFLOP/s of wall time \
         (norm: GB/s); ratio = ours/torch time, wall and CPU (all threads)"
    );
    println!(
        "{:<11}{:>5}{:>5}{:>6}{:>4}{:>4} {:>9}{:>8} {:>9}{:>8} {:>7}{:>7}",
        "layer",
        "in",
        "out",
        "side",
        "st",
        "n",
        "ours ms",
        "rate",
        "torch ms",
        "rate",
        "wall",
        "cpu"
    );
    let mut total_ours = (0.0, 0.0);
    let mut total_torch = (0.0, 0.0);
    for (i, (l, count)) in layers.iter().enumerate() {
        let o = ours_t[i];
        let n = *count as f64;
        total_ours.0 += o.wall * n;
        total_ours.1 += o.cpu * n;
        let work = l.work() / 1e9;
        let torch_cols = match &torch_t {
            Some(t) => {
                let t = t[i];
                total_torch.0 += t.wall * n;
                total_torch.1 += t.cpu * n;
                format!(
                    "{:>9.1}{:>8.1} {:>7.2}{:>7.2}",
                    t.wall * 1e3,
                    work / t.wall,
                    o.wall / t.wall,
                    o.cpu / t.cpu.max(1e-9)
                )
            }
            None => format!("{:>9}{:>8} {:>7}{:>7}", "-", "-", "-", "-"),
        };
        println!(
            "{:<11}{:>5}{:>5}{:>6}{:>4}{:>4} {:>9.1}{:>8.1} {}",
            l.kind.name(),
            l.cin,
            l.cout,
            l.side,
            l.stride,
            count,
            o.wall * 1e3,
            work / o.wall,
            torch_cols
        );
    }
    print!(
        "sum over the network's layers: ours {:.3} s wall, {:.3} s CPU",
        total_ours.0, total_ours.1
    );
    if torch_t.is_some() {
        print!(
            "; torch {:.3} s wall, {:.3} s CPU; ratio wall {:.2}, CPU {:.2}",
            total_torch.0,
            total_torch.1,
            total_ours.0 / total_torch.0,
            total_ours.1 / total_torch.1
        );
    }
    println!();
}
