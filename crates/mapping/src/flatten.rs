//! `@flatten` and the reference's `flattenObject`: nested keys joined with a separator, later keys
//! overwriting earlier identical ones, arrays flattened by index unless `omitArrays`.

use std::borrow::Cow;

use serde_json::Value;

use crate::out::{ObjBuilder, Out};

/// Flattens a resolved value from the empty prefix (what `@flatten` does).
pub(crate) fn flatten_out<'a>(value: Out<'a>, separator: &str, omit_arrays: bool) -> Out<'a> {
    flatten_with_prefix(value, "", separator, omit_arrays)
}

/// Flattens a resolved value under `prefix`.
pub(crate) fn flatten_with_prefix<'a>(
    value: Out<'a>,
    prefix: &str,
    separator: &str,
    omit_arrays: bool,
) -> Out<'a> {
    let mut into = ObjBuilder::default();
    walk(value, prefix, separator, omit_arrays, &mut into);
    into.finish()
}

fn join(prefix: &str, separator: &str, key: &str) -> String {
    // An empty prefix counts as no prefix (it is falsy in the reference).
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}{separator}{key}")
    }
}

fn walk<'a>(
    value: Out<'a>,
    prefix: &str,
    separator: &str,
    omit_arrays: bool,
    into: &mut ObjBuilder<'a>,
) {
    let descend = match value.type_name() {
        "object" => true,
        "array" => !omit_arrays,
        _ => false,
    };
    if !descend {
        into.insert(Cow::Owned(prefix.to_owned()), value);
        return;
    }
    let mut visit = |key: &str, child: Out<'a>| {
        walk(
            child,
            &join(prefix, separator, key),
            separator,
            omit_arrays,
            into,
        );
    };
    match value {
        Out::Ref(Value::Object(map)) => map.iter().for_each(|(k, v)| visit(k, Out::Ref(v))),
        Out::Ref(Value::Array(items)) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| visit(&i.to_string(), Out::Ref(v))),
        Out::Own(Value::Object(map)) => map.into_iter().for_each(|(k, v)| visit(&k, Out::Own(v))),
        Out::Own(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .for_each(|(i, v)| visit(&i.to_string(), Out::Own(v))),
        Out::Obj(entries) => entries.into_iter().for_each(|(k, v)| visit(&k, v)),
        Out::Arr(items) => items
            .into_iter()
            .enumerate()
            .for_each(|(i, v)| visit(&i.to_string(), v)),
        Out::Absent | Out::Ref(_) | Out::Own(_) => {}
    }
}
