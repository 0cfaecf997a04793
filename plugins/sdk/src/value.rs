//! Conversions from Rust values into property values.

use crate::{Scalar, Value};

macro_rules! scalar_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl From<$t> for Scalar {
            fn from($v: $t) -> Self { $e }
        }
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::One(v.into()) }
        }
    )*};
}

scalar_from! {
    bool => |v| Scalar::Boolean(v),
    i32 => |v| Scalar::Integer(v.into()),
    i64 => |v| Scalar::Integer(v),
    u32 => |v| Scalar::Integer(v.into()),
    f64 => |v| Scalar::Float(v),
    String => |v| Scalar::Text(v),
    &str => |v| Scalar::Text(v.to_owned()),
    &String => |v| Scalar::Text(v.clone()),
}

impl<T: Into<Scalar>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        Value::One(v.map_or(Scalar::Null, Into::into))
    }
}

impl<T: Into<Scalar>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Many(v.into_iter().map(Into::into).collect())
    }
}
