//! A corpus of malformed grid files (tests/grids/bad/*.toml). The first line of each says where
//! the error must point and what it must say: `# expect: LINE:COL text`. Every file must give
//! exactly that error — never a panic, never a different message.

use std::path::Path;

use rnnsweep::grid::Grid;
use rnnsweep::plan::Plan;

fn error_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match std::panic::catch_unwind(|| Grid::parse(path, &text).and_then(|s| Plan::expand(&s))) {
        Ok(Ok(_)) => panic!(
            "{}: expected an error, the grid was accepted",
            path.display()
        ),
        Ok(Err(e)) => e.to_string(),
        Err(_) => panic!("{}: parsing panicked", path.display()),
    }
}

#[test]
fn every_malformed_grid_gives_its_specific_located_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grids/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus should hold at least 30 cases, has {}",
        files.len()
    );
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("first line: # expect: LINE:COL text");
        let (loc, want) = expect.split_once(' ').unwrap();
        let err = error_of(f);
        let head = format!("{}:{loc}: ", f.display());
        if !err.starts_with(&head) || !err.contains(want) {
            failures.push(format!(
                "{}\n  want {loc} …{want}…\n  got  {}",
                f.display(),
                err.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn unreadable_file_is_an_error_naming_it() {
    let e = Grid::load(Path::new("no/such/grid.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("no/such/grid.toml: cannot read the grid file"),
        "{e}"
    );
}
