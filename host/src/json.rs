//! The contract's property values as JSON: how the embedded graph stores them
//! and how `plugins try` shows them. A float that JSON cannot hold (NaN, ±∞)
//! becomes null.

use serde_json::Value as Json;

use crate::{Scalar, Value};

pub fn value(v: &Value) -> Json {
    match v {
        Value::One(s) => scalar(s),
        Value::Many(list) => list.iter().map(scalar).collect(),
    }
}

pub fn scalar(s: &Scalar) -> Json {
    match s {
        Scalar::Null => Json::Null,
        Scalar::Boolean(b) => (*b).into(),
        Scalar::Integer(i) => (*i).into(),
        Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Into::into),
        Scalar::Text(t) => t.as_str().into(),
    }
}
