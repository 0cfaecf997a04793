//! A component of another world: it exports `greet`, not a Projector interface.

wit_bindgen::generate!({
    inline: "package test:other; world other { export greet: func() -> string; }",
});

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
struct Component;

impl Guest for Component {
    fn greet() -> String {
        "hello".into()
    }
}

#[cfg(target_arch = "wasm32")]
export!(Component);
