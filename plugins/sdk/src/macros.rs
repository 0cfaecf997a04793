//! `projection!` and `upcaster!`: export a type as the plugin's implementation.

/// Exports a [`Projection`](crate::Projection) as this component's `handler`.
#[macro_export]
macro_rules! projection {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exports;
            impl $crate::__projection::exports::projector::plugin::handler::Guest for Exports {
                fn describe() -> $crate::Manifest {
                    <$t as $crate::Projection>::manifest()
                }
                fn handle(events: ::std::vec::Vec<$crate::Event>) -> ::std::vec::Vec<$crate::Outcome> {
                    <$t as $crate::Projection>::handle_batch(&events)
                }
            }
            $crate::__projection::export_projection!(Exports);
        };
    };
}

/// Exports an [`Upcaster`](crate::Upcaster) as this component's `upcasting`.
#[macro_export]
macro_rules! upcaster {
    ($t:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exports;
            impl $crate::__upcaster::exports::projector::plugin::upcasting::Guest for Exports {
                fn describe() -> $crate::UpcasterManifest {
                    <$t as $crate::Upcaster>::manifest()
                }
                fn upcast(event: $crate::Event) -> ::std::result::Result<::std::vec::Vec<$crate::Event>, ::std::string::String> {
                    <$t as $crate::Upcaster>::upcast(event)
                }
            }
            $crate::__upcaster::export_upcaster!(Exports);
        };
    };
}
