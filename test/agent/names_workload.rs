// names_workload.rs -- a Rust program (rustc -O, no frame pointers), built
// twice by e2e.agent_names: with the legacy mangling (rustc's default) and
// with v0 (-C symbol-mangling-version=v0).  firn-agent's profile must name
// its functions as `nm -C` does and keep the mangled names as system_name.
//
//   names_workload [SECONDS]   spins until killed (or for SECONDS)
//
// Prints "ready PID" once spinning.  The hot chain is
//   main -> names_workload::work::run -> <Mixer>::spin

use std::sync::atomic::{AtomicU64, Ordering};

// Every result is stored here: a call whose result nobody uses may be
// removed (LLVM infers that spin has no side effects).
static SINK: AtomicU64 = AtomicU64::new(0);

mod work {
    use super::{Ordering, SINK};

    pub struct Mixer {
        pub mult: u64,
    }

    impl Mixer {
        #[inline(never)]
        pub fn spin(&self, mut x: u64) -> u64 {
            for _ in 0..20000 {
                x = x.wrapping_mul(self.mult).wrapping_add(1442695040888963407);
            }
            x
        }
    }

    #[inline(never)]
    pub fn run(m: &Mixer, rounds: u32) -> u64 {
        let mut x = 1u64;
        for _ in 0..rounds {
            x = m.spin(x) + 1; // not a tail call: spin stays a frame
            SINK.store(x, Ordering::Relaxed);
        }
        x
    }
}

fn main() {
    let seconds: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    println!("ready {}", std::process::id());
    let m = work::Mixer { mult: 6364136223846793005 };
    let start = std::time::Instant::now();
    while seconds == 0 || start.elapsed().as_secs() < seconds {
        work::run(&m, 100);
    }
    println!("{}", SINK.load(Ordering::Relaxed));
}
