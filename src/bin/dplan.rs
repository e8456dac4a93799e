//! `dplan`: the command-line tool (generate, train, sample, eval, bench, replay, modes).
fn main() {}
