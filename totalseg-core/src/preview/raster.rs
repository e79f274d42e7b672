//! A small software renderer for what the preview's VTK scene holds: opaque triangle meshes
//! lit by the default headlight (diffuse only, two-sided, per-pixel normals) and one
//! textured image slice, seen through the parallel camera that fury's
//! `reset_camera_tight(margin_factor=1.02)` sets up, near and far clipping included.

use super::surface::Surface;

/// The camera of `Scene.reset_camera_tight` for a window of `width` x `height` pixels:
/// looking down -z at the middle of the scene's x/y bounds, from
/// `max(w / aspect, h) / sin(15°) / 2 * margin` above z = 0.
pub(crate) struct Camera {
    /// Window size in pixels.
    pub width: usize,
    pub height: usize,
    /// Samples per pixel along each axis: the frame is drawn `samples` times larger and
    /// averaged down, standing in for the multisampling of VTK's window.
    samples: usize,
    center: [f64; 2],
    /// Half the visible height in world units (`SetParallelScale`).
    parallel_scale: f64,
    /// z of the camera; depth along the view is `camera_z - z`.
    camera_z: f64,
    near: f64,
    far: f64,
}

const MARGIN_FACTOR: f64 = 1.02;
/// VTK's default view angle, degrees.
const VIEW_ANGLE: f64 = 30.0;
/// `vtkRenderer::ClippingRangeExpansion`.
const CLIPPING_RANGE_EXPANSION: f64 = 0.5;
/// `vtkRenderer::NearClippingPlaneTolerance` with a 24-bit depth buffer.
const NEAR_CLIPPING_PLANE_TOLERANCE: f64 = 0.001;

impl Camera {
    /// `bounds` are the scene's `[min, max]` corners.
    pub fn fitting(bounds: [[f64; 3]; 2], width: usize, height: usize, samples: usize) -> Camera {
        let aspect = width as f64 / height as f64;
        let [low, high] = bounds;
        let (w, h) = (high[0] - low[0], high[1] - low[1]);
        let center = [low[0] + w / 2.0, low[1] + h / 2.0];
        let extent = (w / aspect).max(h);
        let distance = extent / (VIEW_ANGLE.to_radians() / 2.0).sin() / 2.0;
        let camera_z = distance * MARGIN_FACTOR;
        // vtkRenderer::ResetCameraClippingRange(bounds).
        let (mut near, mut far) = (f64::INFINITY, 1e-18f64);
        for z in [low[2], high[2]] {
            let d = camera_z - z;
            near = near.min(d);
            far = far.max(d);
        }
        near = near.max(0.0);
        near = 0.99 * near - (far - near) * CLIPPING_RANGE_EXPANSION;
        far = 1.01 * far + (far - near) * CLIPPING_RANGE_EXPANSION;
        if near >= far {
            near = 0.01 * far;
        }
        near = near.max(NEAR_CLIPPING_PLANE_TOLERANCE * far);
        Camera {
            width,
            height,
            samples: samples.max(1),
            center,
            parallel_scale: extent / 2.0 * MARGIN_FACTOR,
            camera_z,
            near,
            far,
        }
    }

    /// Size of the sample grid the frame is drawn on.
    fn grid(&self) -> [usize; 2] {
        [self.width * self.samples, self.height * self.samples]
    }

    /// Sample-grid coordinates (y up) of a world point.
    fn to_window(&self, x: f64, y: f64) -> [f64; 2] {
        let [w, h] = self.grid();
        let per_unit = h as f64 / (2.0 * self.parallel_scale);
        [
            (x - self.center[0]) * per_unit + w as f64 / 2.0,
            (y - self.center[1]) * per_unit + h as f64 / 2.0,
        ]
    }

    /// World point at the centre of sample (`px`, `py`), y up.
    fn to_world(&self, px: usize, py: usize) -> [f64; 2] {
        let [w, h] = self.grid();
        let units = 2.0 * self.parallel_scale / h as f64;
        [
            (px as f64 + 0.5 - w as f64 / 2.0) * units + self.center[0],
            (py as f64 + 0.5 - h as f64 / 2.0) * units + self.center[1],
        ]
    }

    fn clips(&self, z: f64) -> bool {
        let depth = self.camera_z - z;
        depth < self.near || depth > self.far
    }
}

/// The frame on the sample grid: colours (0..1, y up) and the z of what each sample shows.
pub(crate) struct Canvas<'a> {
    camera: &'a Camera,
    color: Vec<[f32; 3]>,
    depth: Vec<f64>,
}

/// An image slice parallel to the window at height `z`: texel `(a, b)` sits at
/// `origin + (a, b) * spacing` and has colour `texels[a * rows + b]`.
pub(crate) struct ImageSlice {
    pub origin: [f64; 2],
    pub spacing: [f64; 2],
    pub size: [usize; 2],
    pub z: f64,
    pub texels: Vec<[f32; 3]>,
}

impl<'a> Canvas<'a> {
    pub fn new(camera: &'a Camera) -> Canvas<'a> {
        let [w, h] = camera.grid();
        let n = w * h;
        Canvas {
            camera,
            color: vec![[0.0; 3]; n],
            depth: vec![f64::NEG_INFINITY; n],
        }
    }

    /// Draws `surface` moved by `offset`, coloured `color` and lit by the headlight.
    pub fn draw_surface(&mut self, surface: &Surface, color: [f64; 3], offset: [f64; 3]) {
        let camera = self.camera;
        let projected: Vec<([f64; 2], f64)> = surface
            .vertices
            .iter()
            .map(|v| {
                let [x, y, z] = [0, 1, 2].map(|a| f64::from(v[a]) + offset[a]);
                (camera.to_window(x, y), z)
            })
            .collect();
        for (t, normals) in surface.triangles.iter().zip(&surface.normals) {
            let [a, b, c] = t.map(|v| projected[v as usize]);
            self.draw_triangle([a, b, c], normals.map(|n| n.map(f64::from)), color);
        }
    }

    fn draw_triangle(
        &mut self,
        corners: [([f64; 2], f64); 3],
        normals: [[f64; 3]; 3],
        color: [f64; 3],
    ) {
        let camera = self.camera;
        let [grid_width, grid_height] = camera.grid();
        let [(p0, _), (p1, _), (p2, _)] = corners;
        let area = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p2[0] - p0[0]) * (p1[1] - p0[1]);
        if area == 0.0 || !area.is_finite() {
            return;
        }
        // Counter-clockwise in window coordinates is front-facing; back faces are lit with
        // their normal turned round (VTK's two-sided lighting).
        let facing = if area > 0.0 { 1.0 } else { -1.0 };
        let min_x = p0[0].min(p1[0]).min(p2[0]);
        let max_x = p0[0].max(p1[0]).max(p2[0]);
        let min_y = p0[1].min(p1[1]).min(p2[1]);
        let max_y = p0[1].max(p1[1]).max(p2[1]);
        let first_x = (min_x - 0.5).ceil().max(0.0) as usize;
        let first_y = (min_y - 0.5).ceil().max(0.0) as usize;
        let last_x = ((max_x - 0.5).floor()).min(grid_width as f64 - 1.0);
        let last_y = ((max_y - 0.5).floor()).min(grid_height as f64 - 1.0);
        if last_x < 0.0 || last_y < 0.0 {
            return;
        }
        let (last_x, last_y) = (last_x as usize, last_y as usize);
        let edge = |a: [f64; 2], b: [f64; 2], p: [f64; 2]| {
            (b[0] - a[0]) * (p[1] - a[1]) - (p[0] - a[0]) * (b[1] - a[1])
        };
        for py in first_y..=last_y {
            for px in first_x..=last_x {
                let p = [px as f64 + 0.5, py as f64 + 0.5];
                let w0 = edge(p1, p2, p) / area;
                let w1 = edge(p2, p0, p) / area;
                let w2 = edge(p0, p1, p) / area;
                if w0 < 0.0 || w1 < 0.0 || w2 < 0.0 {
                    continue;
                }
                let z = w0 * corners[0].1 + w1 * corners[1].1 + w2 * corners[2].1;
                let index = py * grid_width + px;
                if z <= self.depth[index] || camera.clips(z) {
                    continue;
                }
                let n =
                    [0, 1, 2].map(|k| w0 * normals[0][k] + w1 * normals[1][k] + w2 * normals[2][k]);
                let length = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                let diffuse = if length > 0.0 {
                    (facing * n[2] / length).max(0.0)
                } else {
                    0.0
                };
                self.depth[index] = z;
                self.color[index] = color.map(|c| (c * diffuse) as f32);
            }
        }
    }

    /// Draws an image slice, its colours interpolated linearly between texel centres and
    /// unlit (as `vtkImageActor`).
    pub fn draw_image_slice(&mut self, slice: &ImageSlice) {
        let camera = self.camera;
        let [columns, rows] = slice.size;
        if columns == 0 || rows == 0 || camera.clips(slice.z) {
            return;
        }
        let extent = [0, 1].map(|a| (slice.size[a] - 1) as f64 * slice.spacing[a]);
        let [grid_width, grid_height] = camera.grid();
        for py in 0..grid_height {
            for px in 0..grid_width {
                let [x, y] = camera.to_world(px, py);
                let u = (x - slice.origin[0]) / slice.spacing[0];
                let v = (y - slice.origin[1]) / slice.spacing[1];
                if !(0.0..=extent[0] / slice.spacing[0]).contains(&u)
                    || !(0.0..=extent[1] / slice.spacing[1]).contains(&v)
                {
                    continue;
                }
                let index = py * grid_width + px;
                if slice.z <= self.depth[index] {
                    continue;
                }
                let (a, fa) = split(u, columns);
                let (b, fb) = split(v, rows);
                let texel = |a: usize, b: usize| slice.texels[a * rows + b];
                let mut color = [0f32; 3];
                for (da, wa) in [(0, 1.0 - fa), (1, fa)] {
                    for (db, wb) in [(0, 1.0 - fb), (1, fb)] {
                        let w = (wa * wb) as f32;
                        if w == 0.0 {
                            continue;
                        }
                        let t = texel((a + da).min(columns - 1), (b + db).min(rows - 1));
                        for k in 0..3 {
                            color[k] += w * t[k];
                        }
                    }
                }
                self.depth[index] = slice.z;
                self.color[index] = color;
            }
        }
    }

    /// The frame as 8-bit RGB rows, top row first, each pixel the mean of its samples.
    pub fn into_rgb(self) -> Vec<u8> {
        let camera = self.camera;
        let (width, height, n) = (camera.width, camera.height, camera.samples);
        let grid_width = width * n;
        let mut rgb = Vec::with_capacity(width * height * 3);
        for py in (0..height).rev() {
            for px in 0..width {
                let mut sum = [0f32; 3];
                for sy in py * n..(py + 1) * n {
                    for c in &self.color[sy * grid_width + px * n..sy * grid_width + (px + 1) * n] {
                        for k in 0..3 {
                            sum[k] += c[k];
                        }
                    }
                }
                let count = (n * n) as f32;
                rgb.extend(sum.map(|v| ((v / count).clamp(0.0, 1.0) * 255.0).round() as u8));
            }
        }
        rgb
    }
}

/// Integer part (kept below the last texel) and fraction of a texel coordinate.
fn split(u: f64, count: usize) -> (usize, f64) {
    let floor = u.floor().max(0.0) as usize;
    let base = floor.min(count.saturating_sub(2));
    (base, (u - base as f64).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_fits_the_wider_side_with_a_2_percent_margin() {
        // 100 x 10 world units in a 200 x 10 pixel window: the height decides, 10 * 1.02.
        let camera = Camera::fitting([[0.0, 0.0, 0.0], [100.0, 10.0, 5.0]], 200, 10, 1);
        assert!((camera.parallel_scale - 5.1).abs() < 1e-12);
        assert_eq!(camera.center, [50.0, 5.0]);
        // 400 x 10 units in the same window: the width decides, 400 / 20 = 20 high.
        let camera = Camera::fitting([[0.0, 0.0, 0.0], [400.0, 10.0, 5.0]], 200, 10, 1);
        assert!((camera.parallel_scale - 10.2).abs() < 1e-12);
        let [x, _] = camera.to_window(0.0, 0.0);
        assert!((x - (200.0 - 200.0 / 1.02) / 2.0).abs() < 1e-9);
    }

    #[test]
    fn what_lies_above_the_camera_is_clipped() {
        // The camera sits at about 1.93 * 10 * 1.02 = 19.7 above z = 0.
        let camera = Camera::fitting([[0.0, 0.0, -50.0], [10.0, 10.0, 50.0]], 10, 10, 1);
        assert!((camera.camera_z - 10.0 / (15f64.to_radians().sin() * 2.0) * 1.02).abs() < 1e-9);
        assert!(!camera.clips(0.0));
        assert!(!camera.clips(-50.0));
        assert!(camera.clips(25.0));
    }

    #[test]
    fn a_triangle_facing_the_light_takes_its_full_colour_and_hides_what_is_behind() {
        let camera = Camera::fitting([[0.0, 0.0, 0.0], [10.0, 10.0, 1.0]], 10, 10, 3);
        let mut canvas = Canvas::new(&camera);
        let square = |z: f32| Surface {
            vertices: vec![
                [-5.0, -5.0, z],
                [15.0, -5.0, z],
                [15.0, 15.0, z],
                [-5.0, 15.0, z],
            ],
            triangles: vec![[0, 1, 2], [0, 2, 3]],
            normals: vec![[[0.0, 0.0, 1.0]; 3]; 2],
        };
        canvas.draw_surface(&square(1.0), [0.5, 1.0, 0.25], [0.0; 3]);
        canvas.draw_surface(&square(0.0), [1.0, 0.0, 0.0], [0.0; 3]);
        let rgb = canvas.into_rgb();
        assert!(
            rgb.chunks(3).all(|p| p == [128, 255, 64]),
            "{:?}",
            &rgb[..6]
        );
    }
}
