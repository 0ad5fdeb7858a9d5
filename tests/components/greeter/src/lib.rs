//! A library component for host tests: `greet` answers with the serving
//! component's `greeting` variable, so a test sees both the call across
//! components and the configuration the library inherits.

spin_sdk::wit_bindgen::generate!({
    runtime_path: "::spin_sdk::wit_bindgen::rt",
    world: "greeter",
    path: "wit",
});

struct Greeter;

impl exports::gatehouse::fixture::greet::Guest for Greeter {
    async fn greet(name: String) -> String {
        match spin_sdk::variables::get("greeting").await {
            Ok(greeting) => format!("{greeting}, {name}"),
            Err(e) => format!("no greeting ({e:?}), {name}"),
        }
    }
}

export!(Greeter);
