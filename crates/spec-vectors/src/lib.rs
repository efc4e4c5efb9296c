//! Test support: loads the reference conformance vectors from the project's copy
//! (`conformance/vectors/`, see its `PROVENANCE.md`) and applies Junction's deliberate divergences
//! (`conformance/divergences/`), so every conformance test sees the expectation that holds for
//! Junction and the list of divergences lives in one place.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// The divergence ids that `shared/design.md` §5 defines.
pub const DIVERGENCE_IDS: [&str; 5] = ["D1", "D2", "D3", "D4", "D5"];

/// Why vectors could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file is not the JSON we expect.
    #[error("{path} is not valid: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One conformance vector, with Junction's expectation already substituted where a divergence
/// applies.
#[derive(Debug, Clone)]
pub struct Vector {
    /// The vector's name (unique within its file).
    pub name: String,
    /// The whole vector object.
    pub body: Map<String, Value>,
    /// The divergence id (`D1`…`D5`) when Junction deliberately differs from the reference.
    pub divergence: Option<String>,
}

impl Vector {
    /// A member of the vector, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.body.get(key)
    }

    /// Whether the vector has a member (present, even when `null`).
    pub fn has(&self, key: &str) -> bool {
        self.body.contains_key(key)
    }
}

#[derive(Debug, Deserialize)]
struct DivergenceEntry {
    vector: String,
    divergence: String,
    why: String,
    /// Members that replace the vector's own `expected*` members.
    junction: Map<String, Value>,
}

/// The project's copy of the conformance vectors: `conformance/vectors/` of the repository, so
/// that the tests read nothing outside it (`scripts/check-vectors` keeps it in step with the
/// specification).
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/vectors")
}

fn divergences_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/divergences")
}

fn read_json(path: &Path) -> Result<Value, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|err| LoadError::Invalid {
        path: path.to_path_buf(),
        reason: err.to_string(),
    })
}

/// Loads every vector of `file` (e.g. `"fql.json"`), replacing the expectation of each vector that
/// `conformance/divergences/<file>` lists. A divergence that names no vector, or an unknown
/// divergence id, is an error, so the list cannot go stale silently.
pub fn load(file: &str) -> Result<Vec<Vector>, LoadError> {
    let path = vectors_dir().join(file);
    let document = read_json(&path)?;
    let raw = document
        .get("vectors")
        .and_then(Value::as_array)
        .ok_or_else(|| LoadError::Invalid {
            path: path.clone(),
            reason: "no \"vectors\" array".into(),
        })?;

    let mut divergences = load_divergences(file)?;
    let mut vectors = Vec::with_capacity(raw.len());
    for item in raw {
        let Value::Object(body) = item else {
            return Err(LoadError::Invalid {
                path: path.clone(),
                reason: "a vector is not an object".into(),
            });
        };
        let name = body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut vector = Vector {
            name,
            body: body.clone(),
            divergence: None,
        };
        if let Some(entry) = divergences.remove(&vector.name) {
            apply(&mut vector, entry);
        }
        vectors.push(vector);
    }
    if let Some(stale) = divergences.keys().next() {
        return Err(LoadError::Invalid {
            path: divergences_dir().join(file),
            reason: format!("divergence names no vector of {file}: {stale:?}"),
        });
    }
    Ok(vectors)
}

fn apply(vector: &mut Vector, entry: DivergenceEntry) {
    vector
        .body
        .retain(|key, _| !key.starts_with("expected") && !entry.junction.contains_key(key));
    vector.body.extend(entry.junction);
    vector
        .body
        .insert("divergence_why".into(), Value::String(entry.why));
    vector.divergence = Some(entry.divergence);
}

fn load_divergences(file: &str) -> Result<HashMap<String, DivergenceEntry>, LoadError> {
    let path = divergences_dir().join(file);
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let entries: Vec<DivergenceEntry> =
        serde_json::from_value(read_json(&path)?).map_err(|err| LoadError::Invalid {
            path: path.clone(),
            reason: err.to_string(),
        })?;
    let mut by_name = HashMap::new();
    for entry in entries {
        if !DIVERGENCE_IDS.contains(&entry.divergence.as_str()) {
            return Err(LoadError::Invalid {
                path: path.clone(),
                reason: format!("unknown divergence id {:?}", entry.divergence),
            });
        }
        if entry.why.trim().is_empty() {
            return Err(LoadError::Invalid {
                path: path.clone(),
                reason: format!("divergence of {:?} gives no reason", entry.vector),
            });
        }
        let name = entry.vector.clone();
        if by_name.insert(name.clone(), entry).is_some() {
            return Err(LoadError::Invalid {
                path: path.clone(),
                reason: format!("vector {name:?} listed twice"),
            });
        }
    }
    Ok(by_name)
}

/// Collects conformance failures so one run reports every failing vector, not just the first.
#[derive(Debug, Default)]
pub struct Report {
    ran: usize,
    failures: Vec<String>,
}

impl Report {
    /// Records the outcome of one vector: `Err(why)` is a failure.
    pub fn record(&mut self, vector: &Vector, outcome: Result<(), String>) {
        self.ran += 1;
        if let Err(why) = outcome {
            let tag = vector
                .divergence
                .as_deref()
                .map(|id| format!(" [{id}]"))
                .unwrap_or_default();
            self.failures.push(format!("{}{tag}: {why}", vector.name));
        }
    }

    /// Number of vectors recorded.
    pub fn ran(&self) -> usize {
        self.ran
    }

    /// Panics with every failure listed when any vector failed (for use in tests).
    #[allow(clippy::panic)]
    pub fn finish(self, area: &str) {
        assert!(self.ran > 0, "{area}: no vector ran");
        if !self.failures.is_empty() {
            panic!(
                "{area}: {} of {} vectors failed:\n{}",
                self.failures.len(),
                self.ran,
                self.failures.join("\n")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vector_file_loads_with_its_divergences() {
        for file in [
            "fql.json",
            "mapping-kit.json",
            "validation.json",
            "chartmogul.json",
        ] {
            let vectors = load(file).unwrap();
            assert!(!vectors.is_empty(), "{file} has no vectors");
        }
    }
}
