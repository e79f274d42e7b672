//! Models stay loaded (on their device) across images and parts: the provider converts and
//! loads each model once and hands out the same `Arc` afterwards. Uses the committed 5-part
//! synthetic fixtures (tiny widths) converted into a temporary folder.

use std::sync::Arc;

use burn_flex::{Flex, FlexDevice};
use totalseg_core::tasks::{TaskOptions, TaskRegistry};
use totalseg_io::weights::{DirOverrides, NoProgress, StoreDirs, StoreOptions, WeightsStore};
use totalseg_nn::Precision;
use totalsegmentator::models::{BatchSizePolicy, BurnModelProvider};
use totalsegmentator::pipeline::ModelProvider;

fn fixture_weights() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/pipeline/weights")
}

fn provider(dir: &std::path::Path, batch: BatchSizePolicy) -> BurnModelProvider<Flex> {
    let overrides = DirOverrides {
        home: Some(dir.join("home")),
        weights_dir: Some(fixture_weights()),
        converted_dir: Some(dir.join("converted")),
    };
    let options = StoreOptions {
        offline: true,
        ..StoreOptions::from_env()
    };
    let store = WeightsStore::new(StoreDirs::from_env(&overrides), options);
    BurnModelProvider::<Flex>::new(
        store,
        FlexDevice,
        Precision::F32,
        batch,
        Box::new(NoProgress),
    )
}

#[test]
fn each_part_is_loaded_once_and_shared_afterwards() {
    let dir = tempfile::tempdir().expect("temp dir");
    let provider = provider(dir.path(), BatchSizePolicy::Fixed(2));
    let task = TaskRegistry::new()
        .resolve("total", TaskOptions::default())
        .expect("total task");
    assert_eq!(task.models.len(), 5);
    let first: Vec<_> = task
        .models
        .iter()
        .map(|spec| provider.model(spec).expect("model loads"))
        .collect();
    assert_eq!(provider.loaded_models(), 5);
    // A second image: every part comes from the cache, nothing is reloaded.
    for (spec, loaded) in task.models.iter().zip(&first) {
        let again = provider.model(spec).expect("cached model");
        assert!(Arc::ptr_eq(loaded, &again), "{} was reloaded", loaded.name);
        assert_eq!(again.network.batch_size(), 2);
    }
    assert_eq!(provider.loaded_models(), 5);
}

#[test]
fn the_free_memory_policy_sizes_batches_per_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    // 40 GiB free: the tiny fixture network fits the maximum batch; no reading: one tile.
    let roomy = provider(
        dir.path(),
        BatchSizePolicy::FromFreeMemory(Arc::new(|| Some(40 << 30))),
    );
    let unknown = provider(
        dir.path(),
        BatchSizePolicy::FromFreeMemory(Arc::new(|| None)),
    );
    let task = TaskRegistry::new()
        .resolve(
            "total",
            TaskOptions {
                variant: totalseg_core::tasks::Variant::Fast,
                ..TaskOptions::default()
            },
        )
        .expect("total --fast");
    let spec = &task.models[0];
    assert_eq!(
        roomy.model(spec).expect("model").network.batch_size(),
        totalsegmentator::models::batch_size::MAX_BATCH_SIZE
    );
    assert_eq!(unknown.model(spec).expect("model").network.batch_size(), 1);
}
