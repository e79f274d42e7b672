//! Crop pre-pass planning (python_api.py) and roi_subset validation.

use totalseg_core::tasks::{
    CropOptions, CropPrePass, CropSource, PrePassModel, Task, TaskError, TaskRegistry, Variant,
};

fn task(name: &str) -> Task {
    TaskRegistry::new()
        .task(name, Variant::Default)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn plan(task: &Task, options: &CropOptions<'_>) -> CropPrePass {
    task.crop_pre_pass(options)
        .expect("plans")
        .unwrap_or_else(|| panic!("{}: expected a crop pre-pass", task.name))
}

fn coarse_model(pre_pass: &CropPrePass) -> PrePassModel {
    match &pre_pass.source {
        CropSource::Model(model) => **model,
        CropSource::Task(task) => panic!("expected a coarse model, got task {task}"),
    }
}

#[test]
fn default_crop_uses_the_6mm_total_model_with_20mm_margin() {
    let liver_vessels = task("liver_vessels");
    let pre_pass = plan(&liver_vessels, &CropOptions::default());
    let coarse = coarse_model(&pre_pass);
    assert_eq!(coarse.model.dataset_id, 298);
    assert_eq!(coarse.model.trainer, "nnUNetTrainer_4000epochs_NoMirroring");
    assert_eq!(coarse.model.folds, totalseg_core::tasks::Folds::List(&[0]));
    assert_eq!(coarse.resolution_mm, [6.0; 3]);
    assert_eq!(coarse.task_name, "total");
    assert_eq!(coarse.step_size, 0.8);
    assert_eq!(pre_pass.classes, [(5, "liver")]);
    // The task's own crop_addon (20) and e.g. pleural_pericard_effusion's 50 are overridden.
    assert_eq!(pre_pass.addon_mm, [20; 3]);
    let effusion = plan(&task("pleural_pericard_effusion"), &CropOptions::default());
    assert_eq!(effusion.addon_mm, [20; 3]);
}

#[test]
fn robust_crop_uses_the_3mm_total_model() {
    // lung_vessels asks for robust crop itself.
    let lung = plan(&task("lung_vessels"), &CropOptions::default());
    let coarse = coarse_model(&lung);
    assert_eq!(
        (coarse.model.dataset_id, coarse.resolution_mm),
        (297, [3.0; 3])
    );
    assert_eq!(lung.classes.len(), 5);
    assert_eq!(lung.classes[0], (10, "lung_upper_lobe_left"));
    // --robust_crop on a task without it.
    let options = CropOptions {
        robust_crop: true,
        ..CropOptions::default()
    };
    let liver_vessels = plan(&task("liver_vessels"), &options);
    assert_eq!(coarse_model(&liver_vessels).model.dataset_id, 297);
}

#[test]
fn mr_tasks_crop_with_the_3mm_total_mr_model() {
    let segments = plan(&task("liver_segments_mr"), &CropOptions::default());
    let coarse = coarse_model(&segments);
    assert_eq!(coarse.model.dataset_id, 852);
    assert_eq!(coarse.model.trainer, "nnUNetTrainer_2000epochs_NoMirroring");
    assert_eq!(coarse.resolution_mm, [3.0; 3]);
    assert_eq!(coarse.task_name, "total_mr");
    assert_eq!(coarse.step_size, 0.8);
    assert_eq!(segments.classes, [(5, "liver")]);
}

#[test]
fn body_class_crops_use_the_6mm_body_model() {
    let muscles = plan(&task("abdominal_muscles"), &CropOptions::default());
    let coarse = coarse_model(&muscles);
    assert_eq!(coarse.model.dataset_id, 300);
    assert_eq!(coarse.model.trainer, "nnUNetTrainer");
    assert_eq!(coarse.task_name, "body");
    assert_eq!(coarse.step_size, 0.5, "predicted under task name 'body'");
    assert_eq!(coarse.postprocessing.keep_largest_blob, ["body_trunc"]);
    assert_eq!(muscles.classes, [(1, "body_trunc")]);
    assert_eq!(muscles.addon_mm, [20; 3]);
}

#[test]
fn crop_model_tasks_crop_to_another_task_with_their_own_margin() {
    let teeth = plan(&task("teeth"), &CropOptions::default());
    assert_eq!(teeth.source, CropSource::Task("craniofacial_structures"));
    assert_eq!(teeth.classes, [(2, "teeth_lower"), (7, "teeth_upper")]);
    assert_eq!(teeth.addon_mm, [10; 3]);
}

#[test]
fn heartchambers_remove_outside_mask_comes_from_the_crop_model() {
    let heart = plan(&task("heartchambers_highres"), &CropOptions::default());
    assert_eq!(
        coarse_model(&heart).model.dataset_id,
        297,
        "task asks for robust crop"
    );
    assert_eq!(heart.classes, [(51, "heart")]);
    let (labels, remove) = heart.remove_outside.expect("remove outside");
    assert_eq!(labels, [51, 52, 63]);
    assert_eq!(remove.dilation_mm, 10.0);
}

#[test]
fn roi_subset_crops_total_to_its_classes() {
    let total = task("total");
    let subset = total
        .validate_roi_subset(&["brain", "liver"])
        .expect("valid");
    let options = CropOptions {
        roi_subset: Some(&subset),
        ..CropOptions::default()
    };
    let pre_pass = plan(&total, &options);
    assert_eq!(coarse_model(&pre_pass).model.dataset_id, 298);
    assert_eq!(pre_pass.classes, [(5, "liver"), (90, "brain")]);
    assert_eq!(pre_pass.addon_mm, [20; 3]);
    let robust = CropOptions {
        roi_subset_robust: true,
        ..options
    };
    assert_eq!(coarse_model(&plan(&total, &robust)).model.dataset_id, 297);

    let total_mr = task("total_mr");
    let mr_subset = total_mr.validate_roi_subset(&["liver"]).expect("valid");
    let mr_options = CropOptions {
        roi_subset: Some(&mr_subset),
        ..CropOptions::default()
    };
    assert_eq!(
        coarse_model(&plan(&total_mr, &mr_options)).model.dataset_id,
        852
    );
}

#[test]
fn total_v3_l6_cannot_be_cropped_by_the_total_crop_model() {
    let v3 = task("total_v3");
    let subset = v3
        .validate_roi_subset(&["vertebrae_L6"])
        .expect("valid for total_v3");
    let err = v3
        .crop_pre_pass(&CropOptions {
            roi_subset: Some(&subset),
            ..CropOptions::default()
        })
        .unwrap_err();
    assert_eq!(
        err,
        TaskError::CropClassUnavailable {
            task: "total_v3",
            crop_task: "total",
            class: "vertebrae_L6".to_string()
        }
    );
}

#[test]
fn body_seg_crops_to_the_body_model_with_the_task_margin() {
    let body_seg = CropOptions {
        body_seg: true,
        ..CropOptions::default()
    };
    let total = task("total");
    assert_eq!(total.crop_pre_pass(&CropOptions::default()), Ok(None));
    let pre_pass = plan(&total, &body_seg);
    let coarse = coarse_model(&pre_pass);
    assert_eq!(
        (coarse.model.dataset_id, coarse.resolution_mm),
        (300, [6.0; 3])
    );
    assert_eq!(coarse.step_size, 0.5);
    assert_eq!(
        pre_pass.classes,
        [(1, "body_trunc"), (2, "body_extremities")]
    );
    assert_eq!(pre_pass.addon_mm, [3; 3], "DEFAULT_CONFIG crop_addon");
    // Ignored for _mr tasks; superseded by a task's own crop.
    assert_eq!(task("total_mr").crop_pre_pass(&body_seg), Ok(None));
    let liver = plan(&task("liver_vessels"), &body_seg);
    assert_eq!(coarse_model(&liver).model.dataset_id, 298);
}

#[test]
fn roi_subset_validation() {
    let total = task("total");
    let subset = total
        .validate_roi_subset(&["liver", "spleen", "liver"])
        .expect("valid");
    assert_eq!(subset.entries(), &[(1, "spleen"), (5, "liver")]);
    assert!(subset.contains_label(5) && !subset.contains_label(2));
    assert!(subset.contains("spleen"));
    assert_eq!(subset.task(), "total");

    let err = total
        .validate_roi_subset(&["livr", "spleen", "hart", "qqqqqqqq"])
        .unwrap_err();
    let TaskError::UnknownClasses {
        task: task_name,
        unknown,
    } = &err
    else {
        panic!("expected UnknownClasses, got {err:?}");
    };
    assert_eq!(*task_name, "total");
    let names: Vec<_> = unknown.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["livr", "hart", "qqqqqqqq"]);
    assert_eq!(unknown[0].suggestions.first(), Some(&"liver"));
    assert_eq!(unknown[1].suggestions.first(), Some(&"heart"));
    assert!(unknown[2].suggestions.is_empty());
    let message = err.to_string();
    assert!(
        message.starts_with("unknown classes for task 'total': 'livr' (did you mean 'liver'"),
        "{message}"
    );
    assert!(message.contains("'qqqqqqqq'"), "{message}");

    assert_eq!(
        task("liver_vessels").validate_roi_subset(&["liver"]),
        Err(TaskError::RoiSubsetNotSupported {
            task: "liver_vessels"
        })
    );
    let empty: [&str; 0] = [];
    assert_eq!(
        total.validate_roi_subset(&empty),
        Err(TaskError::EmptyRoiSubset { task: "total" })
    );
}

#[test]
fn roi_subset_runs_only_the_needed_parts() {
    let total = task("total");
    let subset = total
        .validate_roi_subset(&["liver", "brain"])
        .expect("valid");
    let ids: Vec<u16> = total
        .models_for_roi_subset(&subset)
        .iter()
        .map(|m| m.dataset_id)
        .collect();
    assert_eq!(ids, [291, 294]);
    let fast = TaskRegistry::new()
        .task("total", Variant::Fast)
        .expect("fast");
    let fast_subset = fast.validate_roi_subset(&["brain"]).expect("valid");
    assert_eq!(fast.models_for_roi_subset(&fast_subset).len(), 1);
}

#[test]
fn locate_class_names_model_and_labels() {
    let total = task("total");
    let brain = total.locate_class("brain").expect("brain");
    assert_eq!((brain.output_label, brain.dataset_id), (90, 294));
    assert_eq!(
        total.models[3].labels.name(brain.model_label),
        Some("brain")
    );
    let rib = total.locate_class("rib_left_1").expect("rib");
    assert_eq!(rib.dataset_id, 295);
    assert!(total.locate_class("nope").is_none());
    let mr = task("total_mr");
    assert_eq!(mr.locate_class("liver").map(|l| l.dataset_id), Some(850));
}
