//! Border following on a binary image, as OpenCV's
//! `findContours(mask, RETR_TREE, CHAIN_APPROX_SIMPLE)` does it (Suzuki & Abe 1985, OpenCV's
//! `icvFetchContourEx`): the contours TotalSegmentator's RT-STRUCT output (through rt_utils)
//! is made of.
//!
//! Foreground is 8-connected. Outer borders and hole borders are both traced along
//! foreground pixels; straight horizontal, vertical and diagonal runs keep only their end
//! points. Contours come in OpenCV's order: a depth-first walk of the nesting tree in which
//! each level lists the later-found contour first.

use ndarray::ArrayView2;

/// One border.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contour {
    /// Its corner points, `[x (column), y (row)]`.
    pub points: Vec<[i32; 2]>,
    /// A hole border (inside a foreground region) rather than an outer one.
    pub is_hole: bool,
    /// The enclosing contour (index into the returned list), `None` at the top level.
    pub parent: Option<usize>,
}

/// OpenCV's chain-code steps: direction `s` moves by `STEPS[s]` as `(dx, dy)`.
const STEPS: [(isize, isize); 8] = [
    (1, 0),
    (1, -1),
    (0, -1),
    (-1, -1),
    (-1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

/// A contour while scanning: found in raster order, labelled `index + 2` in the image.
struct Found {
    points: Vec<[i32; 2]>,
    is_hole: bool,
    parent: Option<usize>,
}

/// The contours of `mask` (rows, columns), in OpenCV's order.
///
/// ```
/// use ndarray::array;
/// use totalseg_core::contours::find_contours;
/// let ring = array![
///     [true, true, true],
///     [true, false, true],
///     [true, true, true],
/// ];
/// let contours = find_contours(ring.view());
/// assert_eq!(contours[0].points, vec![[0, 0], [0, 2], [2, 2], [2, 0]]);
/// assert!(contours[1].is_hole && contours[1].parent == Some(0));
/// assert_eq!(contours[1].points, vec![[0, 1], [1, 0], [2, 1], [1, 2]]);
/// ```
pub fn find_contours(mask: ArrayView2<bool>) -> Vec<Contour> {
    let (h, w) = mask.dim();
    // A one-pixel frame of background, as cv::findContours pads the image.
    let stride = w + 2;
    let mut img = vec![0i32; (h + 2) * stride];
    for ((r, c), &on) in mask.indexed_iter() {
        img[(r + 1) * stride + c + 1] = i32::from(on);
    }
    let deltas: [isize; 8] = STEPS.map(|(dx, dy)| dy * stride as isize + dx);
    let label_of = |value: i32| value.unsigned_abs() as usize - 2;
    let mut found: Vec<Found> = Vec::new();

    for y in 1..=h {
        let row = y * stride;
        let mut prev = 0i32;
        let mut lnbd_x = 0usize;
        let mut x = 1;
        while x <= w {
            let p = img[row + x];
            if p != prev {
                let outer_start = prev == 0 && p == 1;
                let hole_start = p == 0 && prev >= 1;
                if outer_start || hole_start {
                    if hole_start && prev != 1 {
                        lnbd_x = x - 1;
                    }
                    let is_hole = !outer_start;
                    let parent = if lnbd_x == 0 {
                        None
                    } else {
                        let border = label_of(img[row + lnbd_x]);
                        if found[border].is_hole == is_hole {
                            found[border].parent
                        } else {
                            Some(border)
                        }
                    };
                    let start = x - usize::from(is_hole);
                    lnbd_x = start;
                    let label = i32::try_from(found.len() + 2).unwrap_or(i32::MAX);
                    let points = follow_border(
                        &mut img,
                        &deltas,
                        row + start,
                        is_hole,
                        label,
                        [start as i32 - 1, y as i32 - 1],
                    );
                    found.push(Found {
                        points,
                        is_hole,
                        parent,
                    });
                    // OpenCV resumes after the start pixel, re-reading it (now marked).
                    prev = img[row + x];
                    x += 1;
                    continue;
                }
                prev = p;
                if p != 0 && p != 1 {
                    lnbd_x = x;
                }
            }
            x += 1;
        }
    }
    in_tree_order(found)
}

/// Follows one border from `start` (an index into the padded image), marking it with
/// `label` (negative where the border's right side is background, as OpenCV's `nbd | 0x80`),
/// and returns its corner points beginning at `origin`.
fn follow_border(
    img: &mut [i32],
    deltas: &[isize; 8],
    start: usize,
    is_hole: bool,
    label: i32,
    origin: [i32; 2],
) -> Vec<[i32; 2]> {
    let at = |i: usize, s: usize| (i as isize + deltas[s & 7]) as usize;
    let mut points = Vec::new();
    let mut pt = origin;
    let s_start = if is_hole { 0 } else { 4 };
    let mut s = s_start;
    // The first foreground neighbour, turning clockwise from the background side.
    let first = loop {
        s = (s + 7) & 7;
        let i1 = at(start, s);
        if img[i1] != 0 {
            break Some(i1);
        }
        if s == s_start {
            break None;
        }
    };
    let Some(i1) = first else {
        img[start] = -label;
        points.push(pt);
        return points;
    };
    let mut i3 = start;
    let mut prev_s = s ^ 4;
    loop {
        let s_end = s;
        let mut i4;
        loop {
            s += 1;
            i4 = at(i3, s);
            if img[i4] != 0 {
                break;
            }
        }
        s &= 7;
        if s >= 1 && s - 1 < s_end {
            img[i3] = -label;
        } else if img[i3] == 1 {
            img[i3] = label;
        }
        if s != prev_s {
            points.push(pt);
            prev_s = s;
        }
        pt[0] += STEPS[s].0 as i32;
        pt[1] += STEPS[s].1 as i32;
        if i4 == start && i3 == i1 {
            break;
        }
        i3 = i4;
        s = (s + 4) & 7;
    }
    points
}

/// OpenCV's output order (`cvTreeToNodeSeq` over a tree built by `cvInsertNodeIntoTree`,
/// which puts each new contour first among its siblings): depth first, later-found siblings
/// first. Parents are renumbered to the new positions.
fn in_tree_order(found: Vec<Found>) -> Vec<Contour> {
    let mut top: Vec<usize> = Vec::new();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); found.len()];
    for (i, f) in found.iter().enumerate() {
        match f.parent {
            Some(p) => children[p].insert(0, i),
            None => top.insert(0, i),
        }
    }
    let mut order = Vec::with_capacity(found.len());
    let mut stack: Vec<usize> = top.into_iter().rev().collect();
    while let Some(i) = stack.pop() {
        order.push(i);
        stack.extend(children[i].iter().rev());
    }
    let mut position = vec![0; found.len()];
    for (new, &old) in order.iter().enumerate() {
        position[old] = new;
    }
    let mut found: Vec<Option<Found>> = found.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&old| found[old].take())
        .map(|f| Contour {
            points: f.points,
            is_hole: f.is_hole,
            parent: f.parent.map(|p| position[p]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn single_pixel_and_lines() {
        let mut m = Array2::from_elem((3, 5), false);
        m[[1, 1]] = true;
        assert_eq!(find_contours(m.view())[0].points, vec![[1, 1]]);
        m.row_mut(1).fill(true);
        assert_eq!(find_contours(m.view())[0].points, vec![[0, 1], [4, 1]]);
        assert!(find_contours(Array2::from_elem((2, 2), false).view()).is_empty());
    }

    #[test]
    fn later_siblings_come_first() {
        // Two blobs: the lower one is found second and listed first.
        let mut m = Array2::from_elem((5, 3), false);
        m[[0, 1]] = true;
        m[[4, 1]] = true;
        let c = find_contours(m.view());
        assert_eq!(c[0].points, vec![[1, 4]]);
        assert_eq!(c[1].points, vec![[1, 0]]);
        assert!(c.iter().all(|c| c.parent.is_none() && !c.is_hole));
    }
}
