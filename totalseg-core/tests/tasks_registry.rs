//! Task registry: every task resolves to model folders and URLs; variants, step sizes, folds.

use std::path::Path;

use totalseg_core::tasks::{
    DatasetWeights, Folds, ModelSize, TaskError, TaskOptions, TaskRegistry, Variant, WeightsSource,
    TOTALSEGMENTATOR_VERSION,
};

const URL_BASE: &str = "https://github.com/wasserth/TotalSegmentator/releases/download/";

fn registry() -> TaskRegistry {
    TaskRegistry::new()
}

#[test]
fn generated_from_2_18() {
    assert_eq!(TOTALSEGMENTATOR_VERSION, "2.18.0");
    assert_eq!(registry().version(), "2.18.0");
}

#[test]
fn has_every_task_of_2_18_except_the_developer_test_task() {
    let names: Vec<_> = registry().task_names().collect();
    // registry.py TASKS has 53 entries; `test` is skipped.
    assert_eq!(names.len(), 52);
    assert_eq!(registry().skipped_tasks().len(), 1);
    assert_eq!(registry().skipped_tasks()[0].0, "test");
    assert!(!names.contains(&"test"));
    for name in [
        "total",
        "total_v3",
        "total_mr",
        "body",
        "body_mr",
        "lung_vessels",
        "cerebral_bleed",
        "hip_implant",
        "pleural_pericard_effusion",
        "head_glands_cavities",
        "headneck_bones_vessels",
        "head_muscles",
        "headneck_muscles",
        "liver_vessels",
        "oculomotor_muscles",
        "vertebrae_body",
        "vertebrae_mr",
        "kidney_cysts",
        "breasts",
        "liver_segments",
        "liver_lesions",
        "craniofacial_structures",
        "abdominal_muscles",
        "teeth",
        "trunk_cavities",
        "lung_nodules",
        "heartchambers_highres",
        "appendicular_bones",
        "tissue_types",
        "brain_structures",
        "coronary_arteries",
        "vertebrae_pp_refined",
        "brain_aneurysm",
    ] {
        assert!(names.contains(&name), "missing task {name}");
    }
    assert_eq!(names[0], "total", "command-line order");
}

#[test]
fn every_task_and_variant_resolves_to_model_folders() {
    let registry = registry();
    for info in registry.tasks() {
        for variant in info.variants() {
            let task = registry
                .task(info.name(), variant)
                .unwrap_or_else(|e| panic!("{} {variant}: {e}", info.name()));
            assert_eq!(task.variant, variant);
            assert!(!task.models.is_empty(), "{}", info.name());
            for model in &task.models {
                let folder = model.dataset_folder_name();
                // nnU-Net finds the folder by the zero-padded id prefix.
                let prefix = format!("Dataset{:03}_", model.dataset_id);
                assert!(folder.starts_with(&prefix), "{folder} vs {prefix}");
                assert_eq!(model.plans, "nnUNetPlans");
                assert_eq!(
                    model.trainer_folder_name(),
                    format!("{}__nnUNetPlans__{}", model.trainer, model.configuration)
                );
                assert_eq!(
                    model.model_dir(Path::new("/w")),
                    Path::new("/w")
                        .join(folder)
                        .join(model.trainer_folder_name())
                );
                assert!(
                    ["3d_fullres", "3d_fullres_high", "3d_lowres_high"]
                        .contains(&model.configuration),
                    "{}",
                    model.configuration
                );
            }
        }
    }
}

#[test]
fn weights_urls_follow_the_release_scheme() {
    let registry = registry();
    let mut unreleased = Vec::new();
    for info in registry.tasks() {
        for variant in info.variants() {
            let task = registry.task(info.name(), variant).expect("resolves");
            for model in &task.models {
                match model.weights.source {
                    WeightsSource::GithubRelease { tag } => {
                        assert!(!task.licensed, "{}", task.name);
                        assert_eq!(
                            model.download_url(),
                            Some(format!(
                                "{URL_BASE}{tag}/{}.zip",
                                model.dataset_folder_name()
                            ))
                        );
                        assert!(tag.starts_with('v') && tag.ends_with("-weights"), "{tag}");
                    }
                    WeightsSource::LicenseServer { .. } => {
                        assert!(task.licensed, "{}", task.name);
                        assert_eq!(model.download_url(), None);
                    }
                    WeightsSource::Unreleased => unreleased.push(task.name),
                }
            }
        }
    }
    // Only the high-resolution test model (957, version "TODO") has no download in 2.18.
    assert_eq!(unreleased, ["total_highres_test"]);
}

#[test]
fn release_tags_match_the_reference_notes() {
    let expected: &[(&str, &[u16])] = &[
        (
            "v2.0.0-weights",
            &[
                291, 292, 293, 294, 295, 297, 298, 299, 300, 258, 150, 260, 315,
            ],
        ),
        ("v2.3.0-weights", &[775, 776, 777, 778, 779]),
        ("v2.4.0-weights", &[351, 8]),
        (
            "v2.5.0-weights",
            &[
                850, 851, 852, 853, 597, 598, 756, 117, 913, 570, 576, 591, 589, 115, 952, 113,
                343, 615, 305, 803, 789, 527, 552,
            ],
        ),
        ("v3.0.0-weights", &[831, 832, 833, 834, 835, 836, 837]),
    ];
    for (tag, ids) in expected {
        for &id in *ids {
            let weights = DatasetWeights::find(id).unwrap_or_else(|| panic!("no weights for {id}"));
            assert_eq!(weights.release_tag(), Some(*tag), "dataset {id}");
        }
    }
    let released = DatasetWeights::all()
        .iter()
        .filter(|w| w.release_tag().is_some())
        .count();
    let listed: usize = expected.iter().map(|(_, ids)| ids.len()).sum();
    assert_eq!(released, listed, "every released dataset is in the notes");
}

#[test]
fn known_folder_names_and_urls() {
    let w = DatasetWeights::find(8).expect("liver vessels weights");
    assert_eq!(w.folder_name, "Dataset008_HepaticVessel");
    assert_eq!(
        w.download_url().as_deref(),
        Some("https://github.com/wasserth/TotalSegmentator/releases/download/v2.4.0-weights/Dataset008_HepaticVessel.zip")
    );
    let heart = DatasetWeights::find(301).expect("heartchambers weights");
    assert!(heart.is_licensed());
    assert_eq!(
        heart.source,
        WeightsSource::LicenseServer {
            task: "heartchambers_highres"
        }
    );
    // Shared dataset: libs.py's inverted dict keeps the last task.
    assert_eq!(
        DatasetWeights::find(857).map(|w| w.source),
        Some(WeightsSource::LicenseServer {
            task: "thigh_shoulder_muscles_mr"
        })
    );
    assert!(DatasetWeights::find(1).is_none());
}

#[test]
fn total_variants() {
    let registry = registry();
    let default = registry.task("total", Variant::Default).expect("total");
    assert_eq!(default.dataset_ids(), [291, 292, 293, 294, 295]);
    assert_eq!(default.models[0].trainer, "nnUNetTrainerNoMirroring");
    assert_eq!(default.resolution_mm, Some([1.5; 3]));
    assert!(default.is_multi_model());
    let fast = registry.task("total", Variant::Fast).expect("total fast");
    assert_eq!(fast.dataset_ids(), [297]);
    assert_eq!(
        fast.models[0].trainer,
        "nnUNetTrainer_4000epochs_NoMirroring"
    );
    assert_eq!(fast.resolution_mm, Some([3.0; 3]));
    assert!(!fast.is_multi_model());
    let fastest = registry
        .task("total", Variant::Fastest)
        .expect("total fastest");
    assert_eq!(fastest.dataset_ids(), [298]);
    assert_eq!(fastest.resolution_mm, Some([6.0; 3]));
    for task in [&default, &fast, &fastest] {
        assert_eq!(task.step_size, 0.8);
        assert_eq!(task.folds(), Folds::List(&[0]));
        assert_eq!(task.class_map.len(), 117);
    }
    assert_eq!(
        fast.models[0].relative_model_dir(),
        Path::new("Dataset297_TotalSegmentator_total_3mm_1559subj")
            .join("nnUNetTrainer_4000epochs_NoMirroring__nnUNetPlans__3d_fullres")
    );
}

#[test]
fn total_mr_and_total_v3_variants() {
    let registry = registry();
    let mr = registry
        .task("total_mr", Variant::Default)
        .expect("total_mr");
    assert_eq!(mr.dataset_ids(), [850, 851]);
    assert_eq!(mr.models[0].trainer, "nnUNetTrainer_2000epochs_NoMirroring");
    assert_eq!(
        registry
            .task("total_mr", Variant::Fast)
            .expect("fast")
            .dataset_ids(),
        [852]
    );
    assert_eq!(
        registry
            .task("total_mr", Variant::Fastest)
            .expect("fastest")
            .dataset_ids(),
        [853]
    );
    let v3 = registry
        .task("total_v3", Variant::Default)
        .expect("total_v3");
    assert_eq!(v3.dataset_ids(), [831, 832, 833, 834, 835]);
    assert_eq!(
        registry
            .task("total_v3", Variant::Fast)
            .expect("fast")
            .dataset_ids(),
        [836]
    );
    assert_eq!(
        registry
            .task("total_v3", Variant::Fastest)
            .expect("fastest")
            .dataset_ids(),
        [837]
    );
    for task in ["total_mr", "total_v3"] {
        for variant in Variant::ALL {
            assert_eq!(
                registry.task(task, variant).expect("resolves").step_size,
                0.8
            );
        }
    }
}

#[test]
fn total_v3_small_uses_resenc_plans_on_every_variant() {
    let registry = registry();
    for variant in Variant::ALL {
        let task = registry
            .resolve(
                "total_v3",
                TaskOptions {
                    variant,
                    model_size: ModelSize::Small,
                },
            )
            .expect("total_v3 small");
        assert!(task
            .models
            .iter()
            .all(|m| m.plans == "nnUNetResEncUNetLPlans_8"));
        assert!(task.models[0]
            .trainer_folder_name()
            .contains("__nnUNetResEncUNetLPlans_8__"));
    }
    let err = registry
        .resolve(
            "total",
            TaskOptions {
                variant: Variant::Default,
                model_size: ModelSize::Small,
            },
        )
        .unwrap_err();
    assert_eq!(err, TaskError::ModelSizeNotSupported { task: "total" });
}

#[test]
fn body_fastest_falls_back_to_fast() {
    let registry = registry();
    for task in ["body", "body_mr"] {
        let info = registry.info(task).expect("info");
        assert_eq!(
            info.variants().collect::<Vec<_>>(),
            [Variant::Default, Variant::Fast]
        );
        let fastest = registry.task(task, Variant::Fastest).expect("fastest");
        assert_eq!(fastest.variant, Variant::Fast);
        assert_eq!(fastest.requested_variant, Variant::Fastest);
        assert_eq!(fastest.resolution_mm, Some([6.0; 3]));
    }
    assert_eq!(
        registry
            .task("body", Variant::Fast)
            .expect("fast")
            .dataset_ids(),
        [300]
    );
    assert_eq!(
        registry
            .task("body_mr", Variant::Fast)
            .expect("fast")
            .dataset_ids(),
        [598]
    );
    let body = registry.task("body", Variant::Default).expect("body");
    assert_eq!(body.dataset_ids(), [299]);
    assert_eq!(body.step_size, 0.5);
    assert_eq!(body.postprocessing.keep_largest_blob, ["body_trunc"]);
    let blobs = body
        .postprocessing
        .remove_small_blobs
        .expect("body blob filter");
    assert_eq!(blobs.classes, ["body_extremities"]);
    assert_eq!(blobs.min_volume_mm3, 50_000.0);
    assert!(body.postprocessing.derived_body_masks);
}

#[test]
fn fast_is_rejected_where_the_package_rejects_it() {
    let registry = registry();
    let err = registry.task("liver_vessels", Variant::Fast).unwrap_err();
    assert_eq!(
        err,
        TaskError::VariantNotSupported {
            task: "liver_vessels",
            variant: Variant::Fast
        }
    );
    assert_eq!(
        err.to_string(),
        "task 'liver_vessels' does not work with option --fast"
    );
    // get_task_config only checks --fast; --fastest runs the task's only mode.
    let fastest = registry
        .task("liver_vessels", Variant::Fastest)
        .expect("fastest ignored");
    assert_eq!(fastest.variant, Variant::Default);
    // vertebrae_mr and lung_vessels have no disallow_fast: --fast runs the normal model.
    for task in ["vertebrae_mr", "lung_vessels"] {
        let fast = registry.task(task, Variant::Fast).expect("fast ignored");
        assert_eq!(fast.variant, Variant::Default);
    }
}

#[test]
fn step_size_is_0_5_outside_the_total_family() {
    let registry = registry();
    for info in registry.tasks() {
        let task = registry
            .task(info.name(), Variant::Default)
            .expect("resolves");
        let expected = if ["total", "total_v3", "total_mr"].contains(&info.name()) {
            0.8
        } else {
            0.5
        };
        assert_eq!(task.step_size, expected, "{}", info.name());
    }
}

#[test]
fn task_specific_settings() {
    let registry = registry();
    let lung = registry
        .task("lung_vessels", Variant::Default)
        .expect("lung_vessels");
    assert_eq!(lung.dataset_ids(), [117]);
    assert_eq!(lung.models[0].trainer, "nnUNetTrainerSkeletonRecall");
    assert_eq!(lung.resolution_mm, Some([0.703125, 0.703125, 1.0]));
    assert!(lung.robust_crop);
    assert_eq!(lung.crop_classes.map(<[_]>::len), Some(5));

    let bleed = registry
        .task("cerebral_bleed", Variant::Default)
        .expect("cerebral_bleed");
    assert_eq!(bleed.resolution_mm, None, "native spacing");
    assert_eq!(bleed.crop_classes, Some(&["brain"][..]));

    let effusion = registry
        .task("pleural_pericard_effusion", Variant::Default)
        .expect("effusion");
    assert_eq!(effusion.folds(), Folds::AllAvailable);
    assert_eq!(effusion.crop_addon_mm, [50, 50, 50]);

    let annulus = registry
        .task("aorta_annulus", Variant::Default)
        .expect("annulus");
    assert_eq!(annulus.folds(), Folds::List(&[0, 1, 2, 3, 4]));
    assert!(annulus.licensed);

    let teeth = registry.task("teeth", Variant::Default).expect("teeth");
    assert_eq!(teeth.models[0].configuration, "3d_lowres_high");
    assert_eq!(teeth.crop_model, Some("craniofacial_structures"));

    let head = registry
        .task("head_glands_cavities", Variant::Default)
        .expect("head");
    assert_eq!(head.models[0].configuration, "3d_fullres_high");
    assert_eq!(head.resolution_mm, Some([0.75, 0.75, 1.0]));

    let oculo = registry
        .task("oculomotor_muscles", Variant::Default)
        .expect("oculo");
    assert_eq!(
        oculo.resolution_mm,
        Some([0.47251562774181366, 0.47251562774181366, 0.8500002026557922])
    );

    let heart = registry
        .task("heartchambers_highres", Variant::Default)
        .expect("heartchambers");
    let remove = heart.postprocessing.remove_outside.expect("remove outside");
    assert_eq!(remove.classes, ["heart", "aorta", "inferior_vena_cava"]);
    assert_eq!(remove.dilation_mm, 10.0);

    let aneurysm = registry.info("brain_aneurysm").expect("aneurysm");
    assert_eq!(aneurysm.modality().as_str(), "MR");
    assert!(aneurysm.info_message().is_some_and(|m| m.contains("TOF")));
}

#[test]
fn vertebrae_pp_refined_predicts_as_vertebrae_pp() {
    let registry = registry();
    let refined = registry
        .task("vertebrae_pp_refined", Variant::Default)
        .expect("refined");
    assert_eq!(refined.prediction_task, "vertebrae_pp");
    assert_eq!(refined.dataset_ids(), [803]);
    assert!(refined.postprocessing.vertebrae_pp);
    assert!(refined.postprocessing.vertebrae_body_refinement);
    let body = refined
        .refinement_model()
        .expect("ok")
        .expect("refinement model");
    assert_eq!(body.model.dataset_id, 305);
    assert_eq!(body.model.trainer, "nnUNetTrainer_DASegOrd0");
    assert_eq!(body.resolution_mm, [1.5; 3]);
    assert_eq!(body.step_size, 0.5);
    assert_eq!(body.task_name, "vertebrae_body");
    let plain = registry.task("vertebrae_pp", Variant::Default).expect("pp");
    assert!(plain.postprocessing.vertebrae_pp);
    assert!(!plain.postprocessing.vertebrae_body_refinement);
    assert_eq!(plain.refinement_model(), Ok(None));
}

#[test]
fn licensed_flags_match_weights_sources() {
    let registry = registry();
    let licensed: Vec<_> = registry
        .tasks()
        .filter(|t| t.licensed())
        .map(|t| t.name())
        .collect();
    assert_eq!(licensed.len(), 18);
    for name in [
        "heartchambers_highres",
        "appendicular_bones",
        "tissue_types",
        "coronary_arteries",
    ] {
        assert!(licensed.contains(&name), "{name}");
    }
    for name in ["total", "lung_vessels", "teeth", "liver_segments"] {
        assert!(!licensed.contains(&name), "{name}");
    }
}

#[test]
fn unknown_task_names_suggest_close_ones() {
    let err = registry().task("totl", Variant::Default).unwrap_err();
    let TaskError::UnknownTask(unknown) = &err else {
        panic!("expected UnknownTask, got {err:?}");
    };
    assert_eq!(unknown.name, "totl");
    assert_eq!(unknown.suggestions.first(), Some(&"total"));
    assert!(err
        .to_string()
        .starts_with("unknown task 'totl' (did you mean 'total'"));
    let err = registry().info("liver_vesels").unwrap_err();
    assert!(err.to_string().contains("'liver_vessels'"), "{err}");
    let err = registry().info("zzzzzz").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown task 'zzzzzz'; run --list-tasks to see all tasks"
    );
}
