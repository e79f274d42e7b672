//! Averaging the logits of several folds as nnU-Net's `predict_logits_from_preprocessed_data`
//! does: the fp16 fold results are summed in fp16 on the CPU, then divided by the count.

use half::f16;
use half::slice::HalfFloatSliceExt;
use ndarray::{Array4, ArrayView4, Zip};

use super::SlidingWindowError;

/// `prediction += fold_logits` on fp16 tensors: each sum computed in f32, rounded to fp16.
pub fn add_fold_logits(
    total: &mut Array4<f16>,
    fold: ArrayView4<f16>,
) -> Result<(), SlidingWindowError> {
    if total.shape() != fold.shape() {
        return Err(SlidingWindowError::FoldShapeMismatch {
            expected: total.shape().to_vec(),
            actual: fold.shape().to_vec(),
        });
    }
    Zip::from(total)
        .and(fold)
        .par_for_each(|t, &f| *t = f16::from_f32(t.to_f32() + f.to_f32()));
    Ok(())
}

/// `prediction /= num_folds` on an fp16 tensor (f32 division rounded to fp16). One fold
/// leaves the logits unchanged, as nnU-Net skips the division then.
pub fn average_fold_logits(total: &mut Array4<f16>, num_folds: usize) {
    if num_folds <= 1 {
        return;
    }
    let divisor = num_folds as f32;
    match total.as_slice_mut() {
        Some(values) => {
            const BLOCK: usize = 4096;
            let mut buffer = vec![0.0f32; BLOCK];
            for block in values.chunks_mut(BLOCK) {
                let buffer = &mut buffer[..block.len()];
                block.convert_to_f32_slice(buffer);
                buffer.iter_mut().for_each(|v| *v /= divisor);
                block.convert_from_f32_slice(buffer);
            }
        }
        None => total.mapv_inplace(|v| f16::from_f32(v.to_f32() / divisor)),
    }
}
