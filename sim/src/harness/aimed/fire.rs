//! Making an armed edit: right after the operator's write it aims at, or at its deadline.

use sei_operator_core::cluster::ObjectRef;
use serde_json::Value;

use super::AimedEdit;
use crate::apiserver::json::Fields;
use crate::harness::state::WorldState;
use crate::harness::trace::Category;

/// Called right after each write of the operator's: makes every armed edit whose moment it is.
pub fn after_write(world: &mut WorldState, key: &ObjectRef, verb: &str, stored: &Value) {
    let mut due = Vec::new();
    for (index, edit) in world.aimed_edits.iter_mut().enumerate() {
        if !edit.fired && edit.matches(key, verb, stored) {
            edit.fired = true;
            due.push(index);
        }
    }
    for index in due {
        let edit = world.aimed_edits[index].clone();
        let moment = format!("right after the operator's {verb} {key}");
        apply(world, &edit, &moment);
    }
}

/// Makes an armed edit now (at its moment, or at its deadline), as the harness's edit: read, change, replace.
pub fn apply(world: &mut WorldState, edit: &AimedEdit, moment: &str) {
    let Some(mut value) = world.api.store.get(&edit.deployment, None).cloned() else {
        world.record(Category::Write, format_args!("harness aimed edit of {} skipped: it is gone", edit.deployment));
        return;
    };
    for (path, new) in &edit.set {
        crate::scenario::set_path(&mut value, path, new.clone());
    }
    let text = match world.api.store.replace(value) {
        Ok(written) => {
            let version = written.metadata_field("resourceVersion").and_then(Value::as_str).unwrap_or("-");
            format!("harness replace {} rv={version} (aimed edit, {moment})", edit.deployment)
        }
        Err(error) => format!("harness aimed edit of {} failed: {error}", edit.deployment),
    };
    world.record(Category::Write, text);
}
