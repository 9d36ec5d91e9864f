//! The `callrec` command line.

fn main() {
    println!("callrec");
}
