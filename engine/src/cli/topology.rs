//! `strom-engine run --dry-run`: the plan's vertices, their parallelism and inputs.

use crate::plan::Plan;

/// One line per vertex: `name ×parallelism <- input (partitioning), …`.
pub fn describe(plan: &Plan) -> Vec<String> {
    plan.vertices
        .iter()
        .map(|v| {
            let inputs: Vec<String> = v
                .inputs
                .iter()
                .map(|e| {
                    let late = if e.port == 1 { " late output" } else { "" };
                    format!("{}{late} ({:?})", plan.vertices[e.from].name, e.partition)
                })
                .collect();
            format!(
                "{} ×{}{}",
                v.name,
                v.parallelism,
                if inputs.is_empty() {
                    String::new()
                } else {
                    format!(" <- {}", inputs.join(", "))
                }
            )
        })
        .collect()
}
