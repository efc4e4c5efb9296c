//! `removeEmptyValues`: before validation the reference drops `null` where the schema does not
//! allow it and `""` where it does not expect a string (and every top-level `""`), so that
//! Ajv's coercion never turns an unmapped value into `0`, `false` or `""`.

use serde_json::Value;

use crate::compile::{Items, Node};

/// Cleans `value` in place; returns `false` when the value itself is removed (absent).
pub(crate) fn clean(node: &Node, value: &mut Value, is_root: bool) -> bool {
    let Node::Schema(s) = node else {
        return true;
    };
    if !s.has_type_or_enum {
        return true;
    }
    match value {
        Value::Array(items) => {
            // Elements are filtered, not cleaned: only scalars can come back absent.
            if let Some(Items::Single(item)) = &s.items
                && items.iter().any(|e| scalar_removed(item, e))
            {
                items.retain(|e| !scalar_removed(item, e));
            }
            true
        }
        Value::Object(map) => {
            if !s.has_properties {
                return true;
            }
            map.retain(|key, v| match v {
                // Other scalars are kept whatever their schema says: no lookup needed.
                Value::Bool(_) | Value::Number(_) => true,
                Value::String(text) if !text.is_empty() => true,
                Value::String(_) if is_root => false,
                _ => s
                    .properties
                    .get(key)
                    .is_none_or(|child| clean(child, v, false)),
            });
            true
        }
        Value::Null => s.type_lists_null,
        Value::String(text) if text.is_empty() => s.type_lists_string,
        _ => true,
    }
}

fn scalar_removed(item: &Node, element: &Value) -> bool {
    let Node::Schema(s) = item else {
        return false;
    };
    if !s.has_type_or_enum {
        return false;
    }
    match element {
        Value::Null => !s.type_lists_null,
        Value::String(text) if text.is_empty() => !s.type_lists_string,
        _ => false,
    }
}
