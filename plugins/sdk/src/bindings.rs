//! The guest bindings of the WIT contract, one module per world. The upcaster
//! world reuses the projection world's types and log import, so a plugin sees
//! one `Event` type whichever world it implements.

pub mod projection {
    wit_bindgen::generate!({
        world: "projection",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "projector_sdk::__projection",
        export_macro_name: "export_projection",
        additional_derives: [PartialEq],
    });
}

pub mod upcaster {
    wit_bindgen::generate!({
        world: "upcaster",
        path: "../../wit",
        pub_export_macro: true,
        default_bindings_module: "projector_sdk::__upcaster",
        export_macro_name: "export_upcaster",
        with: {
            "projector:plugin/types@0.1.0": crate::bindings::types,
            "projector:plugin/log@0.1.0": crate::bindings::log,
        },
    });
}

pub use projection::projector::plugin::{log, types};
