//! Prints the FlinkJob CRD: `cargo run -p strom-crds --bin crdgen > crds/flinkjob.yaml`.

fn main() {
    print!("{}", strom_crds::crd_yaml());
}
