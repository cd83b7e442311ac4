//! `replica <service>`: one replica service in the foreground, inside its container (built by
//! `harness::binary` with `cargo rustc -p xtask --bin replica`, statically linked).

fn main() {
    fixtures::main_from_args()
}
